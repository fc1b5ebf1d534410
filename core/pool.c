/*
 * pool.c -- see pool.h. Slots are handed out from the free list first, then
 * from the never-used tail, so a pool that never fills never touches (and
 * never makes resident) its tail pages.
 */
#include "core/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/check.h"

int
pool_init(struct pool *p, uint32_t cap, size_t size)
{
	memset(p, 0, sizeof(*p));
	p->size = (size + 63) & ~(size_t)63;
	p->cap = cap;
	p->free = UINT32_MAX;
	p->base =
	    mmap(NULL, p->size * cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->base == MAP_FAILED) {
		p->base = NULL;
		return -ENOMEM;
	}
	p->gen = calloc(cap, sizeof(*p->gen));
	p->next = calloc(cap, sizeof(*p->next));
	if (p->gen == NULL || p->next == NULL) {
		pool_fini(p);
		return -ENOMEM;
	}
	return 0;
}

void
pool_fini(struct pool *p)
{
	if (p->base != NULL)
		munmap(p->base, p->size * p->cap);
	free(p->gen);
	p->gen = NULL;
	free(p->next);
	p->next = NULL;
	p->base = NULL;
}

void *
pool_get(struct pool *p, uint32_t *slot)
{
	uint32_t s;
	void *obj;

	if (p->free != UINT32_MAX) {
		s = p->free;
		p->free = p->next[s];
	} else if (p->fresh < p->cap) {
		s = p->fresh++;
	} else {
		return NULL;
	}
	obj = pool_at(p, s);
	memset(obj, 0, p->size);
	p->used++;
	if (p->used > p->high)
		p->high = p->used;
	*slot = s;
	return obj;
}

void
pool_put(struct pool *p, uint32_t slot)
{
	BUG_ON(slot >= p->fresh || p->used == 0);
	p->gen[slot]++;
	p->next[slot] = p->free;
	p->free = slot;
	p->used--;
}

void *
pool_lookup(const struct pool *p, uint32_t slot, uint32_t gen)
{
	if (slot >= p->fresh || p->gen[slot] != gen)
		return NULL;
	return pool_at(p, slot);
}
