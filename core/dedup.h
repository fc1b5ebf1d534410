/*
 * dedup.h -- fingerprints of deliveries that already happened, so a
 * sender's retry does not deliver twice (issue 5, "several destinations,
 * one reply").
 *
 * When a message fans out to several destinations and some accept while
 * others fail, the sender gets the failure and will retry the whole
 * message; when one client RCPT is refused by one of its destinations
 * while another took it, the sender will send that recipient again. Before
 * answering, the session records a fingerprint for each destination
 * address that got the message and will be sent it again: a hash of the
 * message content (the client's bytes, before our trace header) and of the
 * address. On the retry, a host whose every address is known is not sent
 * the message again; it counts as having said 250.
 *
 * The table is process-wide (a retry arrives on a new connection, which
 * may land on another shard), fixed in size and lock-free: slots of
 * (fingerprint, expiry) written with relaxed atomics. A slot taken by
 * another fingerprint forgets the older one: the cost is a duplicate, never
 * a loss, because only an exact fingerprint match skips a delivery. Limits
 * an operator should know (README): the window (dedup-window), per process
 * (a retry that reaches another node duplicates), the same content, and a
 * host skipped only when all its addresses in the retry are known (one with
 * a known and a new address gets the message, and the known one twice).
 */
#ifndef SLUICE_CORE_DEDUP_H
#define SLUICE_CORE_DEDUP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEDUP_SLOTS	(1u << 16) /* fingerprints kept at most (1 MiB) */
#define DEDUP_ADDR_BITS (1u << 20) /* the address filter (128 KiB) */

struct dedup_slot {
	_Atomic uint64_t fp;	  /* fingerprint; 0 = free */
	_Atomic uint64_t expires; /* unix seconds after which it is forgotten */
};

struct dedup {
	struct dedup_slot *slots;    /* DEDUP_SLOTS of them */
	_Atomic uint64_t *addr_bits; /* DEDUP_ADDR_BITS: addresses that ever got a fingerprint */
	uint64_t window_s;	     /* how long a fingerprint is kept */
	_Atomic uint64_t live;	     /* fingerprints ever added (0: skip hashing) */
};

/* 0 or -ENOMEM. */
int dedup_init(struct dedup *d, uint64_t window_s);
void dedup_fini(struct dedup *d);

/* The fingerprint of one host's delivery: content hash, addresses, count. */
uint64_t dedup_fingerprint(uint64_t content_hash, uint64_t addrs_sum, uint32_t naddrs);

/* Hash of one address, summed over a host's addresses (order does not matter). */
uint64_t dedup_addr_hash(const char *addr);

/* Hash of the message content. */
uint64_t dedup_content_hash(const void *p, size_t n);

/* Remember fp until now + window. */
void dedup_add(struct dedup *d, uint64_t fp, uint64_t now_s);

/*
 * The address filter: a bit per dedup_addr_hash(), set beside each
 * dedup_add() and never cleared. A message whose destinations have no bit
 * set cannot be a known delivery, so its content need not be hashed at all
 * (a false positive only costs that hash).
 */
void dedup_mark_addr(struct dedup *d, uint64_t addr_hash);
bool dedup_addr_marked(const struct dedup *d, uint64_t addr_hash);

/* Was fp delivered within the window? */
bool dedup_seen(const struct dedup *d, uint64_t fp, uint64_t now_s);

/* Has anything ever been added? (Callers skip hashing a message when not.) */
static inline bool
dedup_empty(const struct dedup *d)
{
	return atomic_load_explicit(&d->live, memory_order_relaxed) == 0;
}

#endif /* SLUICE_CORE_DEDUP_H */
