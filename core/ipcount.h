/*
 * ipcount.h -- connections per client address, per shard.
 *
 * An open-addressing hash table (linear probing, deletion by backward
 * shift, so no tombstones) from a client IP address to its number of live
 * sessions on this shard. Its capacity is fixed at start-up to twice the
 * session limit, so it can never fill. One shard only: no locking.
 */
#ifndef SLUICE_CORE_IPCOUNT_H
#define SLUICE_CORE_IPCOUNT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct ipcount_entry {
	uint8_t addr[16]; /* IPv4 as v4-mapped IPv6 */
	uint32_t count;	  /* 0 = empty slot */
};

struct ipcount {
	struct ipcount_entry *tab; /* owned: mask + 1 entries */
	uint32_t mask;		   /* capacity - 1, capacity a power of two */
};

/* A table for at least `max_keys` distinct addresses. 0 or -ENOMEM. */
int ipcount_init(struct ipcount *t, uint32_t max_keys);
void ipcount_fini(struct ipcount *t);

/*
 * Count one more connection from `sa` unless it already has `limit` (0 =
 * no limit). Returns true if counted, false if over the limit.
 */
bool ipcount_add(struct ipcount *t, const struct sockaddr_storage *sa, uint32_t limit);

/* Count one connection from `sa` fewer; it must have been counted. */
void ipcount_del(struct ipcount *t, const struct sockaddr_storage *sa);

#endif /* SLUICE_CORE_IPCOUNT_H */
