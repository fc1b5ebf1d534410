/*
 * spool.c -- see spool.h.
 */
#include "core/spool.h"

#include <stdlib.h>
#include <sys/mman.h>

void
spool_pool_init(struct spool_pool *sp, size_t cap)
{
	sp->free = NULL;
	sp->cap = (cap + 4095) & ~(size_t)4095;
	sp->warm = 0;
	sp->out = 0;
}

void
spool_pool_fini(struct spool_pool *sp)
{
	struct spool *s;

	while ((s = sp->free) != NULL) {
		sp->free = s->next;
		munmap(s->base, s->cap);
		free(s);
	}
}

struct spool *
spool_get(struct spool_pool *sp)
{
	struct spool *s = sp->free;

	if (s != NULL) {
		sp->free = s->next;
		sp->warm -= s->touched;
	} else {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return NULL;
		s->cap = sp->cap;
		s->base = mmap(NULL, s->cap, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (s->base == MAP_FAILED) {
			free(s);
			return NULL;
		}
	}
	s->next = NULL;
	s->len = 0;
	sp->out++;
	return s;
}

void
spool_put(struct spool_pool *sp, struct spool *s)
{
	if (s->touched > SPOOL_KEEP_BYTES && sp->warm + s->touched > SPOOL_WARM_BUDGET) {
		/* give the pages of a large message back; keep the small head warm */
		madvise(s->base + SPOOL_KEEP_BYTES, s->touched - SPOOL_KEEP_BYTES, MADV_DONTNEED);
		s->touched = SPOOL_KEEP_BYTES;
	}
	sp->warm += s->touched;
	s->len = 0;
	s->next = sp->free;
	sp->free = s;
	sp->out--;
}
