/*
 * logring.h -- a shard's log lines on their way to stdout.
 *
 * The shard thread must never block on file I/O (DESIGN.md invariant 4),
 * and several shards writing to one stdout would interleave their lines.
 * So each shard appends whole lines to its own single-producer,
 * single-consumer byte ring, and the control thread, the one writer of
 * stdout, drains every ring with plain blocking writes. A line that does
 * not fit is dropped and counted, never split: a slow log pipeline costs
 * log lines, not mail.
 */
#ifndef SLUICE_CORE_LOGRING_H
#define SLUICE_CORE_LOGRING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logring {
	char *buf;	       /* owned: size bytes */
	size_t size;	       /* a power of two */
	_Atomic uint64_t head; /* written by the producer: bytes ever appended */
	char pad1[64];	       /* keep head and tail on separate cache lines */
	_Atomic uint64_t tail; /* written by the consumer: bytes ever drained */
	char pad2[64];
	_Atomic uint64_t dropped; /* lines dropped because the ring was full */
};

/* A ring of `size` bytes (rounded up to a power of two). 0 or -ENOMEM. */
int logring_init(struct logring *r, size_t size);
void logring_fini(struct logring *r);

/* Producer: append one whole line, or drop it (false) if it does not fit. */
bool logring_put(struct logring *r, const char *line, size_t len);

/*
 * Consumer: write everything buffered to fd with blocking write(2).
 * Returns the number of bytes written.
 */
size_t logring_drain(struct logring *r, int fd);

#endif /* SLUICE_CORE_LOGRING_H */
