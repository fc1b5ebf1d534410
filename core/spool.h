/*
 * spool.h -- where a message's content waits between "DATA" and the
 * upstream's end-of-data reply.
 *
 * A spool is one contiguous mapping large enough for the biggest message in
 * its stuffed wire form. Contiguity lets the content go to the upstream in
 * one send (or one zero-copy send) without a copy through user space, and
 * lets the session recv() straight into base + len. Spools are recycled per
 * shard.
 *
 * Two kinds:
 *
 * - Anonymous (fd == -1): mmap with MAP_NORESERVE; pages become resident
 *   only as content arrives. Every spool starts anonymous. Free anonymous
 *   spools stay resident up to SPOOL_WARM_BUDGET bytes per shard, because
 *   faulting in 25 MiB of fresh pages per message cost more CPU than the
 *   relay itself; past that a returned spool gives its pages beyond
 *   SPOOL_KEEP_BYTES back to the kernel (MADV_DONTNEED).
 * - File-backed (fd >= 0): an unlinked O_TMPFILE in the pool's directory
 *   (nothing to clean up after a crash), preallocated to cap with fallocate
 *   and mapped MAP_SHARED. Its pages are page cache: written back and
 *   reclaimable under memory pressure, not anonymous memory.
 *
 * Decision rule (the per-shard memory budget, config key spool-memory):
 * a message that grows past SPOOL_SPILL_AT is "large"; it may stay in
 * memory only while (large anonymous spools + 1) * cap <= budget
 * (spool_grow_ok). Otherwise the session moves it to a file spool between
 * two receives (spool_spill: one copy of at most SPOOL_SPILL_AT plus one
 * receive). So large messages hold at most `budget` of anonymous memory
 * per shard (15 of 25 MiB at the default 512M), small ones at most
 * SPOOL_SPILL_AT each, and a small message never touches the disk.
 * Rejected: choosing the kind at spool_get() by counting reservations --
 * it sent every message past the 15th in flight to a 33 MiB file, and
 * 4 KiB throughput fell from ~20,000 to 700 msgs/s (make bench).
 *
 * Why preallocate (fallocate) rather than leave the file sparse: a write
 * fault on a hole that the file system cannot back (ENOSPC) is a SIGBUS in
 * spool_append()'s memcpy, which would kill every session of the process.
 * Preallocation turns a full disk into a failure at spool_spill().
 *
 * Free file-backed spools are recycled, up to SPOOL_FREE_FILES per shard:
 * spool_put() punches the whole file out (FALLOC_FL_PUNCH_HOLE, which also
 * drops its page cache and its disk blocks) and keeps the fd and the
 * mapping; spool_spill() preallocates again. That is two system calls per
 * message instead of five (open, fallocate, mmap, munmap, close), and the
 * disk in use stays bounded by the file spools in use. Past
 * SPOOL_FREE_FILES, or when punching fails, the spool is unmapped and closed.
 *
 * Fallback: when a file-backed spool cannot be made (O_TMPFILE unsupported,
 * a missing directory, a full disk), spool_spill() keeps the message in
 * memory and counts it (fallback); the budget is then exceeded by those.
 *
 * Rejected alternative: a memfd per message sent with splice. DESIGN.md
 * measured splice slower than copy on loopback, and a memfd is anonymous
 * (shmem) memory anyway.
 */
#ifndef SLUICE_CORE_SPOOL_H
#define SLUICE_CORE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

#define SPOOL_KEEP_BYTES   (256 * 1024)	       /* resident bytes a trimmed spool keeps */
#define SPOOL_WARM_BUDGET  (128 * 1024 * 1024) /* resident bytes of free spools per shard */
#define SPOOL_FREE_FILES   32		       /* free file-backed spools kept per shard */
#define SPOOL_MAX_DIR	   1024		       /* spool directory, bytes incl. NUL */
#define SPOOL_SPILL_AT	   (1024 * 1024)       /* a message past this is large (spool.h) */
#define SPOOL_RELEASE_STEP (1024 * 1024)       /* file spool bytes unmapped at a time */

struct spool {
	struct spool *next;   /* free-list link while free */
	char *base;	      /* owned: mmap of cap bytes (anonymous or of fd) */
	size_t cap;	      /* reserved bytes */
	size_t len;	      /* bytes of content */
	uint32_t refs;	      /* holders: the session, then each upstream sending it */
	size_t touched;	      /* high-water of len since the last trim (or punch) */
	int fd;		      /* owned: the unlinked spool file, -1 = anonymous memory */
	bool large;	      /* anonymous and counted in large_out (spool_grow_ok) */
	size_t released;      /* file spools: bytes unmapped from us by spool_release_written */
	size_t sent_released; /* ... and again by spool_release_sent, after a send read them */
};

struct spool_pool {
	struct spool *free;	  /* owned: recycled anonymous spools */
	struct spool *free_files; /* owned: recycled file-backed spools (punched, empty) */
	size_t cap;		  /* reservation per spool */
	size_t budget;		  /* anonymous bytes: in-use reservations + warm */
	size_t warm;		  /* resident bytes (touched) of the free anonymous spools */
	unsigned out;		  /* spools handed out */
	unsigned anon_out;	  /* of which anonymous */
	unsigned large_out;	  /* of which anonymous and past SPOOL_SPILL_AT */
	unsigned nfree;		  /* length of free */
	unsigned nfree_files;	  /* length of free_files */
	uint64_t spilled;	  /* messages moved to a file-backed spool */
	uint64_t fallback;	  /* file-backed spools that could not be made: kept in memory */
	char dir[SPOOL_MAX_DIR];  /* directory of the O_TMPFILE spools */
};

/*
 * Spools of `cap` bytes each (the maximum stuffed message size); at most
 * `budget` bytes of anonymous memory for them (see the decision rule
 * above), file-backed spools beyond that in `dir` (truncated to
 * SPOOL_MAX_DIR - 1 bytes; it should be on disk, not tmpfs, for the budget
 * to mean anything).
 */
void spool_pool_init(struct spool_pool *sp, size_t cap, size_t budget, const char *dir);

/* Unmap (and close) every free spool. Spools still out are the caller's. */
void spool_pool_fini(struct spool_pool *sp);

/* An empty spool, or NULL when no memory can be reserved (ENOMEM). */
struct spool *spool_get(struct spool_pool *sp);

/*
 * s (anonymous, in use) has grown past SPOOL_SPILL_AT: true if it may stay
 * in memory (counted as large from now on), false if the caller must move
 * it with spool_spill(). Always true for a file spool or one already large.
 */
bool spool_grow_ok(struct spool_pool *sp, struct spool *s);

/*
 * Move s's content to a file-backed spool and give s back: returns the new
 * spool (len and content as s had), or s itself, counted large, when no
 * file spool can be made. No receive may be writing into s.
 */
struct spool *spool_spill(struct spool_pool *sp, struct spool *s);

/*
 * A file spool's content up to len, in whole SPOOL_RELEASE_STEP steps, is
 * dropped from this process's mapping (MADV_DONTNEED on a shared file
 * mapping keeps the data: it stays in the page cache, is written back and
 * can be reclaimed, and faults back in when the upstream send reads it).
 * So a spilled message does not count in our resident memory while it
 * arrives. No-op for anonymous spools.
 */
void spool_release_written(struct spool *s);

/*
 * The first `sent` bytes of a file spool went out (the upstream send read
 * them through the mapping, which faulted them back in): drop them from our
 * mapping again -- only what was not dropped by an earlier call, so a
 * message sent in many short sends costs no repeated work. No-op for
 * anonymous spools.
 */
void spool_release_sent(struct spool *s, size_t sent);

/* Recycle a spool: trims an anonymous one when the warm budget is spent, punches a file. */
void spool_put(struct spool_pool *sp, struct spool *s);

/*
 * One more holder for s: a message fanned out to several upstreams is sent
 * by each of them from the same spool, and freed by the last spool_put().
 */
static inline struct spool *
spool_ref(struct spool *s)
{
	s->refs++;
	return s;
}

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
