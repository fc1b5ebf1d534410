/*
 * nsd_fixture.h -- a real authoritative DNS server for tests, and a poll(2)
 * owner for core/dns.
 *
 * nsd_start_or_skip() starts its own NSD (Debian's nsd package, installed
 * by tools/install-deps.sh) on 127.0.0.1 and ::1 at a free high port, with
 * one zone the test writes, in a temporary directory; nsd_stop() stops it
 * and removes the directory (call it from the suite's fini). NSD runs in
 * the foreground (-d) in its own process group; the test process becomes a
 * child subreaper, so stopping kills that group by its id and reaps every
 * NSD process, and NSD's main process gets SIGKILL if the test process
 * dies first (PR_SET_PDEATHSIG). Without NSD the test is reported as
 * skipped (cr_skip_test), never as passed.
 *
 * struct nsd_owner is the event-loop side a test lends core/dns: an fd
 * table fed by dns_io.watch (nsd_owner_watch, ctx = the owner) and one
 * bounded poll(2) round that hands ready fds to dns_on_ready(). The test
 * keeps its own clock for dns_tick(), so expiry stays under its control.
 *
 * One NSD per test process (Criterion forks one per test): the fixture
 * keeps its state in file-scope variables. Test-only code: failures are
 * Criterion assertions.
 */
#ifndef SLUICE_TESTS_SUPPORT_NSD_FIXTURE_H
#define SLUICE_TESTS_SUPPORT_NSD_FIXTURE_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dns.h"

#define NSD_OWNER_MAX_FDS 16 /* sockets core/dns may ask a test to watch */

/* Writes a whole zone file: $ORIGIN, SOA, NS and the test's records. */
typedef void nsd_zone_fn(FILE *f);

/*
 * Start NSD serving `zone` (e.g. "dns.test"), written by write_zone, and
 * wait until it answers the zone's SOA on both loopback addresses. Skips
 * the test when NSD is not installed; fails it when NSD does not come up.
 */
void nsd_start_or_skip(const char *zone, nsd_zone_fn *write_zone);

/* Stop NSD, close the silent server, remove the directory. Idempotent. */
void nsd_stop(void);

/* The port NSD serves on: UDP and TCP, 127.0.0.1 and ::1. */
uint16_t nsd_port(void);

/* A resolver address for core/dns: family's loopback at `port`. */
struct dns_server nsd_loopback(int family, uint16_t port);

/* A resolver address where nothing ever answers (a bound UDP socket nobody reads). */
struct dns_server nsd_silent_server(void);

/* A socket bound to family's loopback at `port` (0: any), or -1. */
int nsd_bind_loopback(int family, int type, uint16_t port);

struct nsd_owner {
	struct pollfd fds[NSD_OWNER_MAX_FDS]; /* what core/dns asked us to watch */
	unsigned nfds;			      /* entries in fds */
	unsigned pollout_seen;		      /* watch() calls with POLLOUT: a TCP connection */
};

/* dns_io.watch for a struct nsd_owner passed as ctx. */
void nsd_owner_watch(void *ctx, int fd, unsigned events);

/*
 * One round: poll what `d` watches, for at most its next time-out and
 * never more than 50 ms, and hand every ready fd to dns_on_ready(). The
 * caller ticks the clock.
 */
void nsd_owner_poll(struct nsd_owner *o, struct dns *d);

/*
 * The owner's loop as a shard runs it: each round calls dispatch(), polls
 * (nsd_owner_poll) and ticks `d` at *clock_ms. dispatch is dns_dispatch for
 * the DNS tests or a wider one (nexthop_dispatch, which includes it).
 */
typedef void nsd_dispatch_fn(void);

/* One round. */
void nsd_owner_round(struct nsd_owner *o, struct dns *d, const uint64_t *clock_ms,
		     nsd_dispatch_fn *dispatch);

/* Rounds until *count >= want, at most budget_ms; true if it got there. */
bool nsd_owner_run_until(struct nsd_owner *o, struct dns *d, const uint64_t *clock_ms,
			 nsd_dispatch_fn *dispatch, const unsigned *count, unsigned want,
			 uint64_t budget_ms);

/* Rounds until no query is in flight (then one last dispatch), at most
 * budget_ms; true if idle. */
bool nsd_owner_run_idle(struct nsd_owner *o, struct dns *d, const uint64_t *clock_ms,
			nsd_dispatch_fn *dispatch, uint64_t budget_ms);

#endif /* SLUICE_TESTS_SUPPORT_NSD_FIXTURE_H */
