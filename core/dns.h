/*
 * dns.h -- asynchronous DNS for one shard: c-ares driven by the owner's
 * event loop, with a bounded per-shard cache (level 2: I/O, no SMTP).
 *
 * One struct dns per shard, touched only by that shard's thread: no locks.
 * The module never blocks and never owns a thread or an fd set. The owner
 * (the shard) lends it an event loop through struct dns_io:
 *
 *   - watch(ctx, fd, events): start watching fd for POLLIN and/or POLLOUT,
 *     or stop watching it (events == 0). Stop always comes before c-ares
 *     closes the fd, so a poll on an fd number that was reused is the
 *     owner's stale completion, which dns_on_ready() tolerates (it reads
 *     a non-blocking socket that has nothing). watch() may be called from
 *     any dns_* function, dns_init() and dns_fini() included. With io_uring,
 *     prefer a one-shot POLL_ADD re-armed after each dns_on_ready(): c-ares
 *     expects level-triggered readiness (a TCP answer may be read in parts).
 *   - dns_on_ready(fd, revents) when a watched fd is ready;
 *   - dns_tick(now_ms) from the owner's periodic timer: it advances the
 *     module's clock (cache expiry) and runs c-ares time-outs. With a
 *     250 ms tick, time-outs fire up to 250 ms late; an owner that wants
 *     better can also wake up after dns_timeout_ms();
 *   - dns_dispatch() once per loop iteration, before the owner waits:
 *     it runs the callbacks of completed requests (see "Callbacks").
 *
 * Queries. dns_query_mx() asks for a domain's MX records, dns_query_addr()
 * for a host's AAAA and A records (two DNS queries, one request). The
 * caller resolves the destination of mail (RFC 5321 5.1) as:
 *   MX DNS_OK      -> hosts in order (sorted by preference, shuffled among
 *                     equal preferences on every delivery), then
 *                     dns_query_addr() for each host;
 *   MX DNS_NODATA  -> implicit MX: dns_query_addr() on the domain itself;
 *   MX DNS_NULLMX  -> the domain accepts no mail (RFC 7505): 556 5.1.10
 *                     (every MX host is "."; a "." among real hosts is
 *                     skipped);
 *   MX DNS_NXDOMAIN-> no such domain (permanent);
 *   DNS_TEMPFAIL, DNS_TIMEOUT -> try later (4xx).
 * Names are ASCII (A-labels; IDNA is the caller's job), at most
 * DNS_NAME_MAX characters without the optional trailing dot, labels of
 * 1..63 characters, no spaces, controls, backslashes or 8-bit bytes.
 *
 * Callbacks. A request that dns_query_*() accepted (returns 0) completes
 * exactly once unless it is cancelled first; one it refused (negative
 * return) never calls back. Callbacks never run inside dns_query_*() or
 * dns_cancel(), not even for a cache hit: every completion, hits included,
 * is queued and run by dns_dispatch(), which dns_on_ready() and dns_tick()
 * also call before they return. So a caller never sees re-entrancy, and
 * an owner that calls dns_dispatch() before each wait delivers cache hits
 * within the same loop iteration. A callback may start new queries and
 * cancel other requests (their completions are also run before
 * dns_dispatch() returns); it must not call dns_dispatch(), dns_on_ready(),
 * dns_tick() or dns_fini() (BUG_ON). The result and everything it points to
 * (host names, addresses) is valid only during the callback: copy what you
 * keep.
 *
 * Lifetime and cancellation. dns_query_*() hands back a handle, a
 * (slot, generation) pair packed in a uint64_t that is never 0. A caller
 * whose interest ends (the session is closing) calls dns_cancel(handle):
 * from then on its callback will not run. Cancelling a handle that already
 * completed or was cancelled is a harmless no-op (the generation no longer
 * matches), so a session may keep its handle and cancel it unconditionally
 * when it goes away. The DNS query itself keeps running and fills the
 * cache. dns_fini() drops every request without calling it: by then the
 * owner must have closed the sessions that asked.
 *
 * Cache. Entries are keyed by (query type, lowercase name) in a hash table
 * (XXH3 with a random per-instance seed, since names come from peers).
 * There are at most cache_entries of them, lookups in flight included; when
 * full, the least recently used idle entry is evicted (counted), and if
 * every entry is busy the query fails with -ENOBUFS (backpressure). Memory
 * is fixed at dns_init(): about 1.5 KiB of address space per entry, made
 * resident as entries are first used (core/pool), 48 bytes per request;
 * nothing is allocated per query by this module (c-ares allocates for the
 * queries it sends). An answer with more than DNS_MX_MAX_HOSTS hosts,
 * DNS_MX_NAME_BYTES of host names or DNS_ADDR_MAX_V6/V4 addresses keeps the
 * most preferred (MX) or the first ones (stats.truncated).
 * Expired entries are dropped when looked up or when they reach the LRU
 * tail; sweeping them would free nothing, the array is fixed.
 * Lifetimes:
 *   positive answers  the smallest TTL of the answer's records, clamped to
 *                     [ttl_min_s, ttl_max_s];
 *   NXDOMAIN, NODATA  RFC 2308: min(SOA TTL, SOA MINIMUM) from the authority
 *                     section, capped at neg_ttl_max_s; neg_ttl_default_s
 *                     when the answer carries no SOA;
 *   TEMPFAIL, TIMEOUT fail_ttl_s (0: not cached), so a dead domain costs
 *                     one time-out per fail_ttl_s, not one per session;
 *   addresses         the shorter lifetime of the AAAA and A halves: with
 *                     one family answered, the other failed or absent, the
 *                     entry is DNS_OK and that family is asked again after
 *                     fail_ttl_s or its negative TTL.
 * Identical requests coalesce: while a lookup is in flight, further
 * requests for the same (type, name) wait for it (stats.coalesced) instead
 * of sending another query.
 *
 * Errors: 0 or a negative errno (core/err.h): -EINVAL for a bad name or
 * server, -ENOBUFS when max_requests requests are outstanding or every
 * cache entry is busy, -ENOMEM/-EIO from dns_init().
 */
#ifndef SLUICE_CORE_DNS_H
#define SLUICE_CORE_DNS_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/pool.h"

#define DNS_MAX_SERVERS	  8    /* resolvers in a config */
#define DNS_NAME_MAX	  253  /* characters of a name, without the trailing dot */
#define DNS_MX_MAX_HOSTS  16   /* MX hosts kept per answer (most preferred first) */
#define DNS_MX_NAME_BYTES 1024 /* bytes of host names kept per MX answer */
#define DNS_ADDR_MAX_V6	  8    /* IPv6 addresses kept per host */
#define DNS_ADDR_MAX_V4	  8    /* IPv4 addresses kept per host */

enum dns_status {
	DNS_OK,	      /* records found */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_NODATA,   /* the name exists but has no record of this type */
	DNS_NULLMX,   /* MX only: the domain has a null MX (RFC 7505), no host */
	DNS_TEMPFAIL, /* SERVFAIL, REFUSED, unreachable or broken server: retry later */
	DNS_TIMEOUT,  /* no server answered in time: retry later */
};

/* One resolver, already parsed (config loading validates with dns_server_parse()). */
struct dns_server {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
	uint16_t port; /* UDP and TCP port, host order; 53 unless given */
};

struct dns_config {
	struct dns_server servers[DNS_MAX_SERVERS]; /* tried in order */
	unsigned nservers;			    /* 0: the system's resolvers (resolv.conf) */
	uint32_t timeout_ms;	    /* first try per server; c-ares doubles it per round */
	uint32_t tries;		    /* rounds over the server list, >= 1 */
	uint32_t cache_entries;	    /* cache capacity, lookups in flight included, >= 1 */
	uint32_t max_requests;	    /* caller requests outstanding at once, >= 1 */
	uint32_t ttl_min_s;	    /* floor on positive TTLs */
	uint32_t ttl_max_s;	    /* cap on positive TTLs */
	uint32_t neg_ttl_max_s;	    /* cap on NXDOMAIN/NODATA TTLs (RFC 2308) */
	uint32_t neg_ttl_default_s; /* negative TTL when the answer has no SOA */
	uint32_t fail_ttl_s;	    /* TEMPFAIL/TIMEOUT kept this long; 0 = not cached */
	uint64_t seed;		    /* shuffling and hashing; 0 = random at dns_init() */
};

/* The owner's event loop (see the top of this file). */
struct dns_io {
	void *ctx;					   /* passed back to watch() */
	void (*watch)(void *ctx, int fd, unsigned events); /* POLLIN|POLLOUT, 0 = stop */
};

struct dns_mx_host {
	uint16_t pref;	  /* MX preference; lower is tried first */
	const char *host; /* lowercase, no trailing dot; valid during the callback */
};

struct dns_mx_result {
	enum dns_status status;
	uint32_t ttl_s;			 /* seconds this answer stays cached */
	unsigned nhosts;		 /* > 0 only with DNS_OK */
	const struct dns_mx_host *hosts; /* sorted by pref, shuffled among equals */
};

struct dns_addr_result {
	enum dns_status status;	   /* DNS_OK when at least one address is known */
	uint32_t ttl_s;		   /* seconds this answer stays cached */
	unsigned n6, n4;	   /* addresses of each family */
	const struct in6_addr *v6; /* n6 IPv6 addresses; valid during the callback */
	const struct in_addr *v4;  /* n4 IPv4 addresses */
};

typedef void dns_mx_cb(void *arg, const struct dns_mx_result *r);
typedef void dns_addr_cb(void *arg, const struct dns_addr_result *r);

/* Counters: one writer (the shard), relaxed atomics for readers elsewhere. */
struct dns_stats {
	_Atomic uint64_t requests;  /* dns_query_*() calls accepted */
	_Atomic uint64_t hits;	    /* requests answered from the cache */
	_Atomic uint64_t coalesced; /* requests that joined a lookup in flight */
	_Atomic uint64_t sent;	    /* DNS queries handed to c-ares */
	_Atomic uint64_t failures;  /* lookups that ended TEMPFAIL or TIMEOUT */
	_Atomic uint64_t evictions; /* cache entries dropped to make room */
	_Atomic uint64_t truncated; /* answers with more records than we keep */
	_Atomic uint64_t cancelled; /* requests cancelled before their callback */
};

struct dns_entry;
struct dns_waiter;
struct ares_channeldata;

struct dns_wlist {
	struct dns_waiter *head, *tail; /* not owned: pool objects */
};

struct dns {
	struct ares_channeldata *channel; /* owned (ares_destroy) */
	struct dns_io io;		  /* the owner's loop */
	struct dns_config cfg;		  /* copy taken at dns_init() */
	struct pool entries;		  /* struct dns_entry, cfg.cache_entries of them */
	struct pool waiters;		  /* struct dns_waiter, cfg.max_requests of them */
	struct dns_entry **buckets;	  /* owned: hash heads, nbuckets of them */
	uint32_t nbuckets;		  /* power of two >= cfg.cache_entries */
	struct dns_entry *lru_head;	  /* most recently used idle entry */
	struct dns_entry *lru_tail;	  /* next to evict */
	struct dns_wlist ready;		  /* completed requests, in completion order */
	uint64_t now_ms;		  /* owner's monotonic clock, from dns_tick() */
	uint64_t hash_seed;		  /* XXH3 seed */
	uint64_t rng;			  /* shuffle state (splitmix64) */
	bool dispatching;		  /* inside dns_dispatch(): no re-entry */
	struct dns_stats stats;
};

/* Fill `cfg` with the defaults: system resolvers, 2 s x 2 tries, 4096 entries. */
void dns_config_default(struct dns_config *cfg);

/*
 * Parse "ADDR", "ADDR:PORT", "IPV6" or "[IPV6]:PORT" (PORT 1..65535, 53 when
 * absent) into `out`. 0 or -EINVAL. Host names are refused: no lookup to
 * find the resolver.
 */
int dns_server_parse(const char *s, struct dns_server *out);

/*
 * Create the resolver and the cache. `cfg` is copied; `io` must stay valid
 * until dns_fini(). 0, -EINVAL (bad config), -ENOMEM or -EIO (c-ares).
 */
int dns_init(struct dns *d, const struct dns_config *cfg, const struct dns_io *io);

/*
 * Destroy: watch(fd, 0) for each open socket, then free. No callback runs.
 * Polls still in flight at the owner must be dropped, not fed to dns_on_ready().
 */
void dns_fini(struct dns *d);

/*
 * Ask for the MX records of `domain` (the cache first). 0 with *handle set
 * (handle may be NULL if the caller never cancels), or -EINVAL / -ENOBUFS
 * and no callback.
 */
int dns_query_mx(struct dns *d, const char *domain, dns_mx_cb *cb, void *arg, uint64_t *handle);

/* Ask for the AAAA and A records of `host`; as dns_query_mx(). */
int dns_query_addr(struct dns *d, const char *host, dns_addr_cb *cb, void *arg, uint64_t *handle);

/*
 * Withdraw a request: true if its callback was still to come (it never will
 * now), false if it already ran, was cancelled, or handle is 0.
 */
bool dns_cancel(struct dns *d, uint64_t handle);

/* A watched fd is ready (revents: POLLIN, POLLOUT, POLLERR, POLLHUP). Then dispatches. */
void dns_on_ready(struct dns *d, int fd, unsigned revents);

/*
 * The owner's tick. now_ms is the owner's monotonic clock (timer_now_ms());
 * the cache's clock only moves here, so an entry may be served up to one
 * tick past its expiry. Runs c-ares time-outs, then dispatches.
 */
void dns_tick(struct dns *d, uint64_t now_ms);

/* Run the callbacks of completed requests, until none is left. */
void dns_dispatch(struct dns *d);

/* Milliseconds until the next c-ares time-out, or -1 when no query is in flight. */
int dns_timeout_ms(struct dns *d);

#endif /* SLUICE_CORE_DNS_H */
