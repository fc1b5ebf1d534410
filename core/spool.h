/*
 * spool.h -- where a message's content waits between "DATA" and the
 * upstream's end-of-data reply.
 *
 * A spool is one contiguous reservation of address space (mmap with
 * MAP_NORESERVE) large enough for the biggest message in its stuffed wire
 * form; pages become resident only as content arrives. Contiguity lets the
 * content go to the upstream in one send (or one zero-copy send) without a
 * copy through user space. Spools are recycled per shard. Free spools stay
 * resident up to SPOOL_WARM_BUDGET bytes per shard, because faulting in 25
 * MiB of fresh pages per message cost more CPU than the relay itself; past
 * the budget a returned spool gives its pages beyond SPOOL_KEEP_BYTES back
 * to the kernel (MADV_DONTNEED), so memory follows the messages in flight.
 *
 * Rejected alternative for now: a memfd per message sent with splice.
 * DESIGN.md measured splice slower than copy on loopback, and a memfd costs
 * three system calls per message. Spilling to a file under a memory budget
 * comes with the forwarding issue.
 */
#ifndef SLUICE_CORE_SPOOL_H
#define SLUICE_CORE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/check.h"

#define SPOOL_KEEP_BYTES  (256 * 1024)	      /* resident bytes a trimmed spool keeps */
#define SPOOL_WARM_BUDGET (128 * 1024 * 1024) /* resident bytes of free spools per shard */

struct spool {
	struct spool *next; /* free-list link while free */
	char *base;	    /* owned: mmap reservation of cap bytes */
	size_t cap;	    /* reserved bytes */
	size_t len;	    /* bytes of content */
	size_t touched;	    /* high-water of len since the last trim */
};

struct spool_pool {
	struct spool *free; /* owned: recycled spools */
	size_t cap;	    /* reservation per spool */
	size_t warm;	    /* resident bytes (touched) of the free spools */
	unsigned out;	    /* spools handed out */
};

/* Spools of `cap` bytes each (the maximum stuffed message size). */
void spool_pool_init(struct spool_pool *sp, size_t cap);

/* Unmap every free spool. */
void spool_pool_fini(struct spool_pool *sp);

/* An empty spool, or NULL when the reservation fails (ENOMEM). */
struct spool *spool_get(struct spool_pool *sp);

/* Recycle a spool; trims it to SPOOL_KEEP_BYTES when the warm budget is spent. */
void spool_put(struct spool_pool *sp, struct spool *s);

/* --- inline implementation --- */

/* Append n bytes; false (nothing appended) when the spool would overflow. */
static inline bool
spool_append(struct spool *s, const void *p, size_t n)
{
	if (n > s->cap - s->len)
		return false;
	__builtin_memcpy(s->base + s->len, p, n);
	s->len += n;
	if (s->len > s->touched)
		s->touched = s->len;
	return true;
}

/* Bytes that can still be appended. */
static inline size_t
spool_room(const struct spool *s)
{
	return s->cap - s->len;
}

/* Account n bytes written directly at base + len (a recv into the spool). */
static inline void
spool_commit(struct spool *s, size_t n)
{
	BUG_ON(n > s->cap - s->len);
	s->len += n;
	if (s->len > s->touched)
		s->touched = s->len;
}

#endif /* SLUICE_CORE_SPOOL_H */
