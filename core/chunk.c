/*
 * chunk.c -- see chunk.h.
 */
#include "core/chunk.h"

#include <stdlib.h>

#include "core/check.h"

void
chunk_pool_init(struct chunk_pool *cp, size_t size, uint32_t cap)
{
	cp->free = NULL;
	cp->size = size;
	cp->allocated = 0;
	cp->cap = cap;
	cp->used = 0;
}

void
chunk_pool_fini(struct chunk_pool *cp)
{
	struct chunk *c;

	while ((c = cp->free) != NULL) {
		cp->free = c->next;
		free(c);
	}
	cp->allocated = 0;
}

struct chunk *
chunk_get(struct chunk_pool *cp)
{
	struct chunk *c = cp->free;

	if (c != NULL) {
		cp->free = c->next;
	} else {
		if (cp->allocated >= cp->cap)
			return NULL;
		c = malloc(sizeof(*c) + cp->size);
		if (c == NULL)
			return NULL;
		cp->allocated++;
	}
	c->next = NULL;
	c->len = 0;
	c->off = 0;
	c->size = (uint32_t)cp->size;
	cp->used++;
	return c;
}

struct chunk *
chunk_get_size(struct chunk_pool *cp, size_t n)
{
	struct chunk *c;

	if (n <= cp->size)
		return chunk_get(cp);
	c = malloc(sizeof(*c) + n);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->len = 0;
	c->off = 0;
	c->size = (uint32_t)n;
	return c;
}

void
chunk_put(struct chunk_pool *cp, struct chunk *c)
{
	if (c == NULL)
		return;
	if (c->size != cp->size) {
		free(c); /* a one-off from chunk_get_size() */
		return;
	}
	BUG_ON(cp->used == 0);
	c->next = cp->free;
	cp->free = c;
	cp->used--;
}
