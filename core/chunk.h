/*
 * chunk.h -- per-shard free list of fixed-size byte chunks.
 *
 * Sessions borrow chunks for output that is waiting to be sent and for
 * input held while a session waits for an asynchronous answer; an idle
 * session holds none, which is what keeps memory per idle connection small.
 * Chunks are allocated on first demand up to a hard cap and then recycled;
 * when the cap is reached chunk_get() fails and the caller applies
 * backpressure. One shard only: no locking.
 */
#ifndef SLUICE_CORE_CHUNK_H
#define SLUICE_CORE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

struct chunk {
	struct chunk *next; /* free-list link while free; owner's use otherwise */
	uint32_t len;	    /* bytes used, owner's convention */
	uint32_t off;	    /* bytes already consumed, owner's convention */
	uint32_t size;	    /* bytes in data */
	char data[];	    /* size bytes */
};

struct chunk_pool {
	struct chunk *free; /* owned: free list */
	size_t size;	    /* usable bytes per chunk */
	uint32_t allocated; /* chunks ever allocated (<= cap) */
	uint32_t cap;	    /* hard limit on allocated */
	uint32_t used;	    /* chunks handed out now */
};

/* Set up an empty pool of chunks of `size` bytes, at most `cap` of them. */
void chunk_pool_init(struct chunk_pool *cp, size_t size, uint32_t cap);

/* Free every chunk on the free list; chunks still out are a bug. */
void chunk_pool_fini(struct chunk_pool *cp);

/* A chunk with len = off = 0, or NULL when the cap is reached or malloc fails. */
struct chunk *chunk_get(struct chunk_pool *cp);

/*
 * A chunk of at least n bytes: a pooled one when n fits, else a one-off
 * heap chunk (rare paths only, e.g. a large pipelined burst held while the
 * session waits). chunk_put() handles both.
 */
struct chunk *chunk_get_size(struct chunk_pool *cp, size_t n);

/* Give a chunk back. NULL is allowed and ignored. */
void chunk_put(struct chunk_pool *cp, struct chunk *c);

#endif /* SLUICE_CORE_CHUNK_H */
