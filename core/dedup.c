/*
 * dedup.c -- see dedup.h.
 */
#include "core/dedup.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int
dedup_init(struct dedup *d, uint64_t window_s)
{
	d->slots = calloc(DEDUP_SLOTS, sizeof(*d->slots));
	d->addr_bits = calloc(DEDUP_ADDR_BITS / 64, sizeof(*d->addr_bits));
	if (d->slots == NULL || d->addr_bits == NULL) {
		dedup_fini(d);
		return -ENOMEM;
	}
	d->window_s = window_s;
	atomic_store(&d->live, 0);
	return 0;
}

void
dedup_fini(struct dedup *d)
{
	free(d->slots);
	d->slots = NULL;
	free(d->addr_bits);
	d->addr_bits = NULL;
}

uint64_t
dedup_fingerprint(uint64_t content_hash, uint64_t addrs_sum, uint32_t naddrs)
{
	uint64_t v[3] = {content_hash, addrs_sum, naddrs};
	uint64_t fp = XXH3_64bits(v, sizeof(v));

	return fp != 0 ? fp : 1; /* 0 marks a free slot */
}

uint64_t
dedup_addr_hash(const char *addr)
{
	return XXH3_64bits(addr, strlen(addr));
}

uint64_t
dedup_content_hash(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

void
dedup_add(struct dedup *d, uint64_t fp, uint64_t now_s)
{
	struct dedup_slot *s = &d->slots[fp % DEDUP_SLOTS];

	/* expiry first: a reader that sees the new fp sees a valid expiry */
	atomic_store_explicit(&s->expires, now_s + d->window_s, memory_order_relaxed);
	atomic_store_explicit(&s->fp, fp, memory_order_release);
	atomic_fetch_add_explicit(&d->live, 1, memory_order_relaxed);
}

void
dedup_mark_addr(struct dedup *d, uint64_t addr_hash)
{
	uint64_t bit = addr_hash % DEDUP_ADDR_BITS;

	atomic_fetch_or_explicit(&d->addr_bits[bit / 64], 1ull << (bit % 64), memory_order_relaxed);
}

bool
dedup_addr_marked(const struct dedup *d, uint64_t addr_hash)
{
	uint64_t bit = addr_hash % DEDUP_ADDR_BITS;

	return atomic_load_explicit(&d->addr_bits[bit / 64], memory_order_relaxed) &
	       (1ull << (bit % 64));
}

bool
dedup_seen(const struct dedup *d, uint64_t fp, uint64_t now_s)
{
	const struct dedup_slot *s = &d->slots[fp % DEDUP_SLOTS];

	return atomic_load_explicit(&s->fp, memory_order_acquire) == fp &&
	       atomic_load_explicit(&s->expires, memory_order_relaxed) > now_s;
}
