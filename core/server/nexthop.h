/*
 * nexthop.h -- where to connect for one destination: the ordered list of
 * addresses to try, resolved asynchronously through core/dns (glue level).
 *
 * One struct nexthop per shard, beside its struct dns, touched only by that
 * shard's thread. nexthop_start() takes a destination as route/zone gives
 * it (host, explicit port, literal flag) and answers once, through a
 * callback, with a struct nexthop_result the caller owns:
 *
 *   [ip] literal      one candidate, that address (RFC 5321 4.1.3), no DNS;
 *   host with :port   the host's addresses, no MX lookup (explicit target);
 *   domain            RFC 5321 5.1: its MX hosts in the order core/dns gives
 *                     (preference, shuffled among equals), each host's IPv6
 *                     addresses first, then its IPv4 ones; no MX (NODATA):
 *                     the domain's own addresses, as an implicit MX of
 *                     preference 0; a null MX (RFC 7505): 556 5.1.10.
 *
 * The port is the explicit one, else req->mx_port (--mx-port, default 25),
 * literals without a port included: every delivery without a written port
 * goes where --mx-port says, so one knob points a test setup at its sink.
 *
 * The address lookups of all MX hosts run in parallel (core/dns coalesces
 * and caches them); the list is built in MX order once every host has
 * answered, or as soon as the hosts answered so far, taken in order, fill
 * the list: a slow backup MX then cannot delay delivery to the primary.
 * A host without addresses is skipped. When no candidate is left the
 * result is a failure with the reply sluice gives its client:
 *
 *   NEXTHOP_NULLMX    556 5.1.10  RFC 7505 4.1 (556 is RFC 7504's "domain
 *                                 does not accept mail");
 *   NEXTHOP_NXDOMAIN  550 5.1.2   the destination domain does not exist:
 *                                 RFC 3463 X.1.2, "bad destination system
 *                                 address" (the part right of "@" is not
 *                                 valid for mail);
 *   NEXTHOP_NOADDR    550 5.4.4   the domain exists but no MX host (or the
 *                                 implicit MX, or the explicit host) has an
 *                                 address: RFC 3463 X.4.4 "unable to route",
 *                                 whose own example is a lookup that returns
 *                                 only an SOA;
 *   NEXTHOP_TEMPFAIL  451 4.4.3   a lookup the answer depends on failed
 *                                 (SERVFAIL, REFUSED, time-out, or core/dns
 *                                 out of room): RFC 3463 X.4.3 "directory
 *                                 server failure", transient. A host that
 *                                 failed this way is skipped like one with
 *                                 no address, but if no candidate remains
 *                                 the failure is temporary, not permanent.
 * The replies name neither the domain nor the host: the destination is
 * where a zone forwards mail, which the sender has no business seeing; the
 * caller logs it.
 *
 * Caps. At most NEXTHOP_MAX_PER_FAMILY addresses of each family per host
 * (the first ones core/dns gives) and NEXTHOP_MAX_CANDIDATES in all, kept
 * in list order: the most preferred hosts first. With the per-host cap one
 * host with many addresses cannot fill the list alone, so a backup MX stays
 * reachable; a host without IPv6 connectivity still reaches the IPv4 ones.
 * result.truncated says something was left out (stats.truncated counts).
 *
 * Callbacks. A resolution nexthop_start() accepted (returns 0) calls back
 * exactly once unless cancelled first; a refused one never does. The
 * callback never runs inside nexthop_start() or nexthop_cancel(), not even
 * for a literal or a cache hit: DNS answers come through dns_dispatch(),
 * and literals wait on this module's own ready list, which only
 * nexthop_dispatch() runs. The owner therefore calls nexthop_dispatch()
 * where it called dns_dispatch() (once per loop iteration, before it
 * waits); it runs dns_dispatch() itself, until neither has work left.
 * A callback may start and cancel resolutions (its own handle is already
 * spent: nexthop_cancel() says false); it must not call nexthop_dispatch()
 * (BUG_ON), nexthop_fini(), nor what core/dns forbids in its callbacks.
 *
 * Lifetime. `out` belongs to the caller and must stay valid until the
 * callback or nexthop_cancel(); the module writes it only just before the
 * callback, which gets it back, so it keeps the list for as long as it
 * tries candidates. A session that goes away calls nexthop_cancel(handle):
 * every core/dns request of the resolution is cancelled and nothing is
 * called. Handles are (slot, generation) pairs, never 0: cancelling one
 * that completed or was cancelled is a harmless no-op.
 *
 * Memory: a fixed pool of resolutions (about 2.8 KiB each, resident once
 * used), sized at nexthop_init(); nothing is allocated per resolution.
 * Rejected alternative: the result inside the pool object, valid during
 * the callback only, as core/dns does. Every caller would copy 3 KiB into
 * storage of its own anyway, since it walks the list across many connects.
 */
#ifndef SLUICE_CORE_SERVER_NEXTHOP_H
#define SLUICE_CORE_SERVER_NEXTHOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/dns.h"
#include "core/pool.h"

#define NEXTHOP_MAX_CANDIDATES 16		 /* addresses in a result, in all */
#define NEXTHOP_MAX_PER_FAMILY 4		 /* addresses of one family taken from one host */
#define NEXTHOP_NAME_BYTES     DNS_MX_NAME_BYTES /* host names of a result, NULs included */
#define NEXTHOP_SMTP_PORT      25		 /* mx_port when the request leaves it 0 */

enum nexthop_status {
	NEXTHOP_OK,	  /* ncand >= 1 */
	NEXTHOP_NULLMX,	  /* 556 5.1.10: the domain accepts no mail (RFC 7505) */
	NEXTHOP_NXDOMAIN, /* 550 5.1.2: the destination domain does not exist */
	NEXTHOP_NOADDR,	  /* 550 5.4.4: no host with an address */
	NEXTHOP_TEMPFAIL, /* 451 4.4.3: a lookup failed; try later */
};

enum nexthop_route {
	NEXTHOP_MX,	  /* the domain's MX hosts */
	NEXTHOP_IMPLICIT, /* no MX: the domain's own addresses (RFC 5321 5.1) */
	NEXTHOP_EXPLICIT, /* host:port: the host's addresses, MX not asked */
	NEXTHOP_LITERAL,  /* [ip]: that address */
};

/* One destination, as route/zone's struct zone_dest gives it. */
struct nexthop_req {
	const char *host; /* domain (lowercase A-label) or, literal, the IP text without
			     brackets; copied by nexthop_start() */
	uint16_t port;	  /* explicit port; 0 = none: mx_port */
	uint16_t mx_port; /* --mx-port; 0 = NEXTHOP_SMTP_PORT */
	bool literal;	  /* written as [ip]: no DNS */
};

struct nexthop_cand {
	struct sockaddr_storage addr; /* AF_INET6 or AF_INET, port set (network order) */
	socklen_t addrlen;	      /* of the sockaddr_in6 or sockaddr_in in addr */
	uint16_t pref;		      /* MX preference; 0 for the other routes */
	uint16_t host;		      /* offset of the host name in the result's names[] */
};

struct nexthop_result {
	enum nexthop_status status;
	enum nexthop_route route;
	const char *reply; /* failure: static SMTP reply, no CRLF; NULL when NEXTHOP_OK */
	bool truncated;	   /* the caps left addresses or hosts out */
	unsigned ncand;	   /* candidates, 0 unless NEXTHOP_OK */
	struct nexthop_cand cand[NEXTHOP_MAX_CANDIDATES]; /* in the order to try */
	char names[NEXTHOP_NAME_BYTES]; /* NUL-terminated host names the candidates came
					   from: MX hosts as core/dns gives them (lowercase,
					   no trailing dot), else req->host as given */
};

typedef void nexthop_cb(void *arg, struct nexthop_result *r);

/* Counters: one writer (the shard), relaxed atomics for readers elsewhere. */
struct nexthop_stats {
	_Atomic uint64_t started;   /* nexthop_start() calls accepted */
	_Atomic uint64_t tempfail;  /* resolutions that ended NEXTHOP_TEMPFAIL */
	_Atomic uint64_t permfail;  /* ... NULLMX, NXDOMAIN or NOADDR */
	_Atomic uint64_t truncated; /* results with result.truncated */
	_Atomic uint64_t cancelled; /* resolutions cancelled before their callback */
};

struct nexthop_res;

struct nexthop_list {
	struct nexthop_res *head, *tail; /* not owned: pool objects */
};

struct nexthop {
	struct dns *dns;	   /* the shard's resolver; borrowed, outlives us */
	struct pool res;	   /* struct nexthop_res, one per resolution */
	struct nexthop_list live;  /* resolutions core/dns works for */
	struct nexthop_list ready; /* literals waiting for nexthop_dispatch() */
	bool dispatching;	   /* inside nexthop_dispatch(): no re-entry */
	struct nexthop_stats stats;
};

/*
 * Set up for the resolver `dns` (borrowed: it must outlive nh) with room
 * for `max_res` resolutions at once (>= 1). 0, -EINVAL or -ENOMEM.
 */
int nexthop_init(struct nexthop *nh, struct dns *dns, uint32_t max_res);

/*
 * Drop every resolution without calling back (their core/dns requests are
 * cancelled), then free. Call it before dns_fini().
 */
void nexthop_fini(struct nexthop *nh);

/*
 * Resolve `req` into *out and call cb(arg, out) once, later (see the top of
 * this file). 0 with *handle set (handle may be NULL if the caller never
 * cancels); or, and then no callback: -EINVAL (a literal that is no IP
 * address, a name core/dns refuses, no host), -ENOBUFS (max_res resolutions
 * outstanding, or core/dns out of requests or cache entries).
 */
int nexthop_start(struct nexthop *nh, const struct nexthop_req *req, struct nexthop_result *out,
		  nexthop_cb *cb, void *arg, uint64_t *handle);

/*
 * Withdraw a resolution: true if its callback was still to come (it never
 * will now, and `out` is the caller's again), false if it already ran, was
 * cancelled, or handle is 0.
 */
bool nexthop_cancel(struct nexthop *nh, uint64_t handle);

/*
 * Run completed resolutions: dns_dispatch() and this module's ready list,
 * in turn, until both are empty. The owner calls it before each wait.
 */
void nexthop_dispatch(struct nexthop *nh);

/* Static lowercase name of a status for logs: "ok", "nullmx", "nxdomain", ... */
const char *nexthop_status_name(enum nexthop_status st);

/* --- inline implementation --- */

/* The host name candidate `c` of `r` came from. */
static inline const char *
nexthop_host(const struct nexthop_result *r, const struct nexthop_cand *c)
{
	return r->names + c->host;
}

/*
 * The caller's connection loop: the candidate at *i and *i advanced, or
 * NULL when every one was tried (start with *i = 0). The caller moves on
 * after a connection failure or a 4xx greeting; the next candidate is
 * another address of the same host or the first of the next MX host.
 */
static inline const struct nexthop_cand *
nexthop_next(const struct nexthop_result *r, unsigned *i)
{
	return *i < r->ncand ? &r->cand[(*i)++] : NULL;
}

#endif /* SLUICE_CORE_SERVER_NEXTHOP_H */
