/*
 * pool.h -- fixed-capacity object pool with a free list and slot generations.
 *
 * A pool owns `cap` objects of one size in one allocation made at start-up.
 * Objects are addressed by slot index; each slot has a generation that is
 * bumped on every free, so (slot, gen) pairs carried in io_uring user_data
 * detect completions for objects that no longer exist. The capacity is a
 * hard limit: pool_get() fails rather than falling back to malloc, and the
 * caller turns that into backpressure (421, paused accept).
 *
 * Memory is reserved with mmap and only touched when a slot is first used,
 * so a large capacity costs address space, not resident memory.
 */
#ifndef SLUICE_CORE_POOL_H
#define SLUICE_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool {
	char *base;	/* owned: cap * size bytes (mmap) */
	uint32_t *gen;	/* owned: generation per slot */
	uint32_t *next; /* owned: free-list link per slot */
	uint32_t free;	/* head of the free list; UINT32_MAX when empty */
	uint32_t fresh; /* slots below this index have been used once */
	uint32_t cap;	/* number of slots */
	uint32_t used;	/* slots handed out now */
	uint32_t high;	/* high-water mark of used */
	size_t size;	/* bytes per object, rounded to 64 */
};

/* Reserve a pool of `cap` objects of `size` bytes. 0 or -ENOMEM. */
int pool_init(struct pool *p, uint32_t cap, size_t size);

/* Release the pool's memory. Objects still in use are a programmer error. */
void pool_fini(struct pool *p);

/*
 * Take a zeroed object; *slot receives its index. NULL when the pool is
 * exhausted. The object's generation is pool_gen(p, *slot).
 */
void *pool_get(struct pool *p, uint32_t *slot);

/* Return the object at `slot`; its generation changes. */
void pool_put(struct pool *p, uint32_t slot);

/* The object at `slot` if its generation is `gen`, else NULL (stale). */
void *pool_lookup(const struct pool *p, uint32_t slot, uint32_t gen);

/* --- inline implementation --- */

static inline uint32_t
pool_gen(const struct pool *p, uint32_t slot)
{
	return p->gen[slot];
}

static inline void *
pool_at(const struct pool *p, uint32_t slot)
{
	return p->base + (size_t)slot * p->size;
}

#endif /* SLUICE_CORE_POOL_H */
