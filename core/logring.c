/*
 * logring.c -- see logring.h.
 */
#include "core/logring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
logring_init(struct logring *r, size_t size)
{
	size_t s = 4096;

	while (s < size)
		s <<= 1;
	memset(r, 0, sizeof(*r));
	r->buf = malloc(s);
	if (r->buf == NULL)
		return -ENOMEM;
	r->size = s;
	return 0;
}

void
logring_fini(struct logring *r)
{
	free(r->buf);
	r->buf = NULL;
}

bool
logring_put(struct logring *r, const char *line, size_t len)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	size_t off, first;

	if (len > r->size - (size_t)(head - tail)) {
		atomic_store_explicit(&r->dropped,
				      atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		return false;
	}
	off = (size_t)head & (r->size - 1);
	first = r->size - off < len ? r->size - off : len;
	memcpy(r->buf + off, line, first);
	memcpy(r->buf, line + first, len - first);
	atomic_store_explicit(&r->head, head + len, memory_order_release);
	return true;
}

size_t
logring_drain(struct logring *r, int fd)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t total = 0;

	while (tail < head) {
		size_t off = (size_t)tail & (r->size - 1);
		size_t n = (size_t)(head - tail);
		ssize_t w;

		if (n > r->size - off)
			n = r->size - off;
		w = write(fd, r->buf + off, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/* stdout is gone: discard rather than let shards fill up */
			tail = head;
			break;
		}
		tail += (uint64_t)w;
		total += (size_t)w;
	}
	atomic_store_explicit(&r->tail, tail, memory_order_release);
	return total;
}
