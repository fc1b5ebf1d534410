/*
 * test_nexthop.c -- core/server/nexthop: from a destination to the ordered
 * list of addresses to try, against a real NSD serving the zone "nh.test"
 * below (tests/support/nsd_fixture; skipped, never passed, without NSD).
 *
 * The test owns core/dns as the shard does: the fixture's poll(2) round,
 * dns_tick() on a clock that stands still, and nexthop_dispatch() before
 * every wait. Every resolution goes through start_nh(), which flags the
 * time spent inside nexthop_start(): a callback that runs then is counted
 * and fails the test. Results are written into the collector's own
 * struct nexthop_result, which the callback checks it gets back.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/dns.h"
#include "core/server/nexthop.h"
#include "core/timer.h"
#include "tests/support/nsd_fixture.h"

#define RUN_BUDGET_MS  5000 /* longest a test waits for answers */
#define SHUFFLE_ROUNDS 40   /* both orders of two equal MX hosts: all one way has p = 2^-39 */
#define TEST_MAX_RES   64   /* resolutions at once in the tests */

/* --- the zone --- */

static const char zone_head[] =
    "$ORIGIN nh.test.\n"
    "$TTL 300\n"
    "@        3600 IN SOA ns.nh.test. hostmaster.nh.test. 1 3600 600 86400 30\n"
    "@             IN NS    ns\n"
    "ns            IN A     127.0.0.1\n"
    /* preferences 10, 10, 20, 30: both families, IPv4 only, IPv6 only, none */
    "mx            IN MX    20 v6only\n"
    "mx            IN MX    10 both\n"
    "mx            IN MX    30 bare\n"
    "mx            IN MX    10 v4only\n"
    "both          IN A     192.0.2.1\n"
    "both          IN AAAA  2001:db8::1\n"
    "both          IN A     192.0.2.2\n"
    "both          IN AAAA  2001:db8::2\n"
    "v4only        IN A     192.0.2.4\n"
    "v6only        IN AAAA  2001:db8::6\n"
    "bare          IN TXT   \"a host without addresses\"\n"
    "implicit      IN A     192.0.2.80\n"
    "implicit      IN AAAA  2001:db8::80\n"
    "nullmx        IN MX    0 .\n"
    "noaddr        IN TXT   \"no MX, no address\"\n"
    /* MX hosts that exist without addresses, or do not exist */
    "deadmx        IN MX    10 bare\n"
    "deadmx        IN MX    20 gone\n"
    /* mx.example.org is not NSD's zone: REFUSED, a temporary failure */
    "tempmx        IN MX    10 bare\n"
    "tempmx        IN MX    20 mx.example.org.\n"
    "partmx        IN MX    10 mx.example.org.\n"
    "partmx        IN MX    20 v4only\n"
    /* caps: x1, x2 give 8 candidates each, x7 gives 7 */
    "cap15         IN MX    10 x1\n"
    "cap15         IN MX    20 x7\n"
    "cap16         IN MX    10 x1\n"
    "cap16         IN MX    20 x2\n"
    "cap17         IN MX    10 x1\n"
    "cap17         IN MX    20 x2\n"
    "cap17         IN MX    30 v4only\n"
    "early         IN MX    10 x1\n"
    "early         IN MX    20 x2\n"
    "early         IN MX    30 slow\n"
    "slow          IN A     192.0.2.99\n";

/*
 * The generated part: hosts f3, f4, f5 with that many addresses of each
 * family (the per-family cap at N-1, N, N+1), x1 and x2 with
 * NEXTHOP_MAX_PER_FAMILY of each, x7 with one IPv4 address fewer.
 */
static void
zone_write_limits(FILE *f)
{
	for (unsigned n = NEXTHOP_MAX_PER_FAMILY - 1; n <= NEXTHOP_MAX_PER_FAMILY + 1; n++)
		for (unsigned i = 1; i <= n; i++)
			fprintf(f, "f%u IN AAAA 2001:db8:f%u::%u\nf%u IN A 203.0.113.%u\n", n, n, i,
				n, n * 10 + i);
	for (unsigned k = 1; k <= 2; k++)
		for (unsigned i = 1; i <= NEXTHOP_MAX_PER_FAMILY; i++)
			fprintf(f, "x%u IN AAAA 2001:db8:%u::%u\nx%u IN A 198.51.100.%u\n", k, k, i,
				k, k * 10 + i);
	for (unsigned i = 1; i <= NEXTHOP_MAX_PER_FAMILY; i++)
		fprintf(f, "x7 IN AAAA 2001:db8:7::%u\n", i);
	for (unsigned i = 1; i < NEXTHOP_MAX_PER_FAMILY; i++)
		fprintf(f, "x7 IN A 198.51.100.%u\n", 70 + i);
}

/* The whole zone file, for the fixture. */
static void
zone_write(FILE *f)
{
	fputs(zone_head, f);
	zone_write_limits(f);
}

/* --- the owner --- */

static struct {
	struct nsd_owner io; /* what core/dns asked us to watch */
	uint64_t clock_ms;   /* the clock given to dns_tick(): frozen */
	bool live;	     /* d and nh are initialised */
	bool in_start;	     /* inside nexthop_start() (start_nh) */
} owner;

static struct dns d;
static struct nexthop nh;

static const struct dns_io owner_io = {.ctx = &owner.io, .watch = nsd_owner_watch};

/* What the owner runs before each wait. */
static void
owner_dispatch(void)
{
	nexthop_dispatch(&nh);
}

/* Run the loop until *count reaches want. */
static void
run_until(const unsigned *count, unsigned want)
{
	cr_assert(nsd_owner_run_until(&owner.io, &d, &owner.clock_ms, owner_dispatch, count, want,
				      RUN_BUDGET_MS),
		  "%u answers of %u in %d ms", *count, want, RUN_BUDGET_MS);
}

/* Run the loop until no query is in flight. */
static void
run_idle(void)
{
	cr_assert(nsd_owner_run_idle(&owner.io, &d, &owner.clock_ms, owner_dispatch, RUN_BUDGET_MS),
		  "queries still in flight");
}

static struct dns_config
test_config(void)
{
	struct dns_config cfg;

	dns_config_default(&cfg);
	cfg.servers[0] = nsd_loopback(AF_INET, nsd_port());
	cfg.nservers = 1;
	cfg.timeout_ms = 1000;
	cfg.seed = 42;
	return cfg;
}

static void
start(const struct dns_config *cfg, uint32_t max_res)
{
	cr_assert_eq(dns_init(&d, cfg, &owner_io), 0);
	cr_assert_eq(nexthop_init(&nh, &d, max_res), 0);
	owner.live = true;
	owner.clock_ms = timer_now_ms();
	dns_tick(&d, owner.clock_ms);
}

static void
stop(void)
{
	nexthop_fini(&nh);
	dns_fini(&d);
	owner.live = false;
	cr_assert_eq(owner.io.nfds, 0, "dns_fini() left %u fds watched", owner.io.nfds);
}

static void
teardown(void)
{
	if (owner.live)
		stop();
	nsd_stop();
}

static void
start_on_nsd(void)
{
	struct dns_config cfg;

	nsd_start_or_skip("nh.test", zone_write);
	cfg = test_config();
	start(&cfg, TEST_MAX_RES);
}

/* A resolver that never answers: time-outs, or tests that need no DNS. */
static void
start_silent(uint32_t max_res)
{
	struct dns_config cfg;

	dns_config_default(&cfg);
	cfg.servers[0] = nsd_silent_server();
	cfg.nservers = 1;
	cfg.timeout_ms = 100;
	cfg.tries = 1;
	cfg.seed = 42;
	start(&cfg, max_res);
}

TestSuite(nexthop, .fini = teardown, .timeout = 60);

/* --- collecting results --- */

struct got {
	unsigned calls;
	unsigned inside_start;	 /* callbacks run inside nexthop_start(): must stay 0 */
	unsigned wrong_out;	 /* callbacks that got another result than r */
	struct nexthop_result r; /* the caller's storage, given as `out` */
};

static void
got_result(void *arg, struct nexthop_result *r)
{
	struct got *g = arg;

	g->calls++;
	g->inside_start += owner.in_start;
	g->wrong_out += r != &g->r;
}

static int
start_nh(const struct nexthop_req *req, struct got *g, nexthop_cb *cb, uint64_t *handle)
{
	int err;

	owner.in_start = true;
	err = nexthop_start(&nh, req, &g->r, cb, g, handle);
	owner.in_start = false;
	return err;
}

/* Resolve and wait for the answer, in g->r. */
static void
resolve(const struct nexthop_req *req, struct got *g)
{
	unsigned want = g->calls + 1;

	cr_assert_eq(start_nh(req, g, got_result, NULL), 0, "%s", req->host);
	run_until(&g->calls, want);
	cr_assert_eq(g->calls, want, "%s: one callback", req->host);
	cr_assert_eq(g->inside_start, 0, "%s: called back inside nexthop_start()", req->host);
	cr_assert_eq(g->wrong_out, 0);
}

static void
resolve_mx(const char *domain, struct got *g)
{
	resolve(&(struct nexthop_req){.host = domain}, g);
}

static uint64_t
stat_of(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Candidate i as "host [ip]:port/pref", in buf. */
static const char *
cand_str(const struct nexthop_result *r, unsigned i, char *buf, size_t size)
{
	const struct nexthop_cand *c = &r->cand[i];
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (c->addr.ss_family == AF_INET6 && c->addrlen == sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->addr;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	} else if (c->addr.ss_family == AF_INET && c->addrlen == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->addr;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	}
	snprintf(buf, size, "%s [%s]:%u/%u", nexthop_host(r, c), ip, port, c->pref);
	return buf;
}

/* Is candidate `want` ("host [ip]:port/pref") in r? */
static bool
has_cand(const struct nexthop_result *r, const char *want)
{
	char buf[512];

	for (unsigned i = 0; i < r->ncand; i++)
		if (strcmp(cand_str(r, i, buf, sizeof(buf)), want) == 0)
			return true;
	return false;
}

/*
 * The order rules: preferences never go down, a host's candidates are
 * adjacent, and within a host every IPv6 address comes before every IPv4.
 */
static void
assert_ordered(const struct nexthop_result *r)
{
	for (unsigned i = 1; i < r->ncand; i++) {
		const struct nexthop_cand *a = &r->cand[i - 1], *b = &r->cand[i];
		bool same = strcmp(nexthop_host(r, a), nexthop_host(r, b)) == 0;

		cr_assert_leq(a->pref, b->pref, "candidate %u", i);
		if (same)
			cr_assert_not(a->addr.ss_family == AF_INET && b->addr.ss_family == AF_INET6,
				      "%s: IPv4 before IPv6", nexthop_host(r, a));
		for (unsigned j = 0; !same && j + 1 < i; j++)
			cr_assert_str_neq(nexthop_host(r, &r->cand[j]), nexthop_host(r, b),
					  "%s is split", nexthop_host(r, b));
	}
}

static void
assert_failure(const struct got *g, enum nexthop_status st, const char *reply)
{
	cr_assert_eq(g->r.status, st, "%s, not %s", nexthop_status_name(st),
		     nexthop_status_name(g->r.status));
	cr_assert_eq(g->r.ncand, 0);
	cr_assert_not_null(g->r.reply);
	cr_assert_str_eq(g->r.reply, reply);
}

/* --- MX order --- */

Test(nexthop, mx_hosts_by_preference_each_ipv6_first_and_hosts_without_addresses_skipped)
{
	static const char *const want[] = {
	    "both.nh.test [2001:db8::1]:25/10", "both.nh.test [2001:db8::2]:25/10",
	    "both.nh.test [192.0.2.1]:25/10",	"both.nh.test [192.0.2.2]:25/10",
	    "v4only.nh.test [192.0.2.4]:25/10", "v6only.nh.test [2001:db8::6]:25/20",
	};
	struct got g = {0};
	char buf[512];

	start_on_nsd();
	resolve_mx("mx.nh.test", &g);
	cr_assert_eq(g.r.status, NEXTHOP_OK);
	cr_assert_eq(g.r.route, NEXTHOP_MX);
	cr_assert_null(g.r.reply);
	cr_assert_not(g.r.truncated);
	cr_assert_eq(g.r.ncand, ARRAY_SIZE(want), "bare.nh.test has no address: skipped");
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		cr_assert(has_cand(&g.r, want[i]), "%s missing", want[i]);
	assert_ordered(&g.r);
	cr_assert_str_eq(cand_str(&g.r, g.r.ncand - 1, buf, sizeof(buf)), want[5],
			 "preference 20 last");
	cr_assert_eq(stat_of(&d.stats.sent), 1 + 2 * 4, "one MX query, AAAA and A per host");
}

Test(nexthop, equal_preferences_come_in_both_orders_over_fresh_resolutions)
{
	unsigned first_both = 0, first_v4only = 0;
	struct got g = {0};

	start_on_nsd();
	for (unsigned i = 0; i < SHUFFLE_ROUNDS; i++) {
		resolve_mx("mx.nh.test", &g);
		cr_assert_eq(g.r.ncand, 6);
		assert_ordered(&g.r);
		first_both += strcmp(nexthop_host(&g.r, &g.r.cand[0]), "both.nh.test") == 0;
		first_v4only += strcmp(nexthop_host(&g.r, &g.r.cand[0]), "v4only.nh.test") == 0;
	}
	cr_assert_eq(first_both + first_v4only, SHUFFLE_ROUNDS, "a preference-10 host leads");
	cr_assert_gt(first_both, 0);
	cr_assert_gt(first_v4only, 0);
}

Test(nexthop, implicit_mx_is_the_domain_itself_at_preference_0)
{
	struct got g = {0};

	start_on_nsd();
	resolve_mx("implicit.nh.test", &g);
	cr_assert_eq(g.r.status, NEXTHOP_OK);
	cr_assert_eq(g.r.route, NEXTHOP_IMPLICIT);
	cr_assert_eq(g.r.ncand, 2);
	cr_assert(has_cand(&g.r, "implicit.nh.test [2001:db8::80]:25/0"));
	cr_assert(has_cand(&g.r, "implicit.nh.test [192.0.2.80]:25/0"));
	assert_ordered(&g.r);
}

/* --- ports --- */

Test(nexthop, mx_port_for_mx_implicit_and_bare_literals_explicit_port_otherwise)
{
	struct got g = {0};
	char buf[512];

	start_on_nsd();
	resolve(&(struct nexthop_req){.host = "mx.nh.test", .mx_port = 2525}, &g);
	for (unsigned i = 0; i < g.r.ncand; i++)
		cr_assert(strstr(cand_str(&g.r, i, buf, sizeof(buf)), "]:2525/") != NULL, "%s",
			  buf);
	resolve(&(struct nexthop_req){.host = "implicit.nh.test", .mx_port = 2525}, &g);
	cr_assert(has_cand(&g.r, "implicit.nh.test [192.0.2.80]:2525/0"));
	resolve(&(struct nexthop_req){.host = "192.0.2.7", .literal = true, .mx_port = 2525}, &g);
	cr_assert(has_cand(&g.r, "192.0.2.7 [192.0.2.7]:2525/0"));
	resolve(
	    &(struct nexthop_req){
		.host = "192.0.2.7", .literal = true, .port = 26, .mx_port = 2525},
	    &g);
	cr_assert(has_cand(&g.r, "192.0.2.7 [192.0.2.7]:26/0"));
	resolve(&(struct nexthop_req){.host = "v4only.nh.test", .port = 2526, .mx_port = 2525}, &g);
	cr_assert(has_cand(&g.r, "v4only.nh.test [192.0.2.4]:2526/0"));
}

Test(nexthop, explicit_port_asks_the_host_addresses_and_never_mx)
{
	struct got g = {0};

	start_on_nsd();
	resolve(&(struct nexthop_req){.host = "both.nh.test", .port = 2526}, &g);
	cr_assert_eq(g.r.status, NEXTHOP_OK);
	cr_assert_eq(g.r.route, NEXTHOP_EXPLICIT);
	cr_assert_eq(g.r.ncand, 4);
	cr_assert(has_cand(&g.r, "both.nh.test [2001:db8::1]:2526/0"));
	cr_assert(has_cand(&g.r, "both.nh.test [192.0.2.2]:2526/0"));
	assert_ordered(&g.r);
	cr_assert_eq(stat_of(&d.stats.sent), 2, "AAAA and A, no MX");
	/* mx.nh.test has MX records but no address of its own */
	resolve(&(struct nexthop_req){.host = "mx.nh.test", .port = 2526}, &g);
	assert_failure(&g, NEXTHOP_NOADDR,
		       "550 5.4.4 Unable to route: the destination has no mail server address");
	cr_assert_eq(g.r.route, NEXTHOP_EXPLICIT);
}

/* --- literals --- */

Test(nexthop, literals_give_one_candidate_through_dispatch_without_dns)
{
	struct got g = {0};

	start_silent(TEST_MAX_RES);
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "192.0.2.7", .literal = true}, &g,
			      got_result, NULL),
		     0);
	cr_assert_eq(g.calls, 0, "queued, not called from nexthop_start()");
	nexthop_dispatch(&nh);
	cr_assert_eq(g.calls, 1);
	cr_assert_eq(g.r.status, NEXTHOP_OK);
	cr_assert_eq(g.r.route, NEXTHOP_LITERAL);
	cr_assert_eq(g.r.ncand, 1);
	cr_assert(has_cand(&g.r, "192.0.2.7 [192.0.2.7]:25/0"));
	resolve(&(struct nexthop_req){.host = "2001:db8::7", .literal = true, .port = 2527}, &g);
	cr_assert_eq(g.r.ncand, 1);
	cr_assert(has_cand(&g.r, "2001:db8::7 [2001:db8::7]:2527/0"));
	cr_assert_eq(stat_of(&d.stats.requests), 0, "no DNS for a literal");
}

Test(nexthop, refused_starts_call_nothing_and_keep_no_slot)
{
	static const struct nexthop_req bad[] = {
	    {.host = "mail.example", .literal = true}, /* a literal must be an address */
	    {.host = "192.0.2.256", .literal = true},
	    {.host = "[192.0.2.1]", .literal = true}, /* brackets are the caller's to strip */
	    {.host = ""},
	    {.host = NULL},
	    {.host = "a..b.test"},		   /* core/dns refuses the name */
	    {.host = "bad name.test", .port = 25}, /* ... also for an explicit host */
	};
	struct got g = {0};

	start_silent(TEST_MAX_RES);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_assert_eq(start_nh(&bad[i], &g, got_result, NULL), -EINVAL, "%zu", i);
	run_idle();
	cr_assert_eq(g.calls, 0);
	cr_assert_eq(nh.res.used, 0);
	cr_assert_eq(stat_of(&nh.stats.started), 0);
}

/* --- failures --- */

Test(nexthop, null_mx_is_556_5_1_10)
{
	struct got g = {0};

	start_on_nsd();
	resolve_mx("nullmx.nh.test", &g);
	assert_failure(&g, NEXTHOP_NULLMX, "556 5.1.10 Recipient address has null MX");
	cr_assert_eq(stat_of(&d.stats.sent), 1, "no address lookup after a null MX");
	cr_assert_eq(stat_of(&nh.stats.permfail), 1);
}

Test(nexthop, nxdomain_is_550_5_1_2_for_the_domain_or_an_explicit_host)
{
	struct got g = {0};

	start_on_nsd();
	resolve_mx("nope.nh.test", &g);
	assert_failure(&g, NEXTHOP_NXDOMAIN, "550 5.1.2 Destination domain does not exist");
	resolve(&(struct nexthop_req){.host = "gone.nh.test", .port = 2525}, &g);
	assert_failure(&g, NEXTHOP_NXDOMAIN, "550 5.1.2 Destination domain does not exist");
}

Test(nexthop, no_mx_and_no_address_is_550_5_4_4)
{
	struct got g = {0};

	start_on_nsd();
	resolve_mx("noaddr.nh.test", &g);
	assert_failure(&g, NEXTHOP_NOADDR,
		       "550 5.4.4 Unable to route: the destination has no mail server address");
	cr_assert_eq(g.r.route, NEXTHOP_IMPLICIT);
}

Test(nexthop, mx_hosts_all_without_addresses_is_550_5_4_4)
{
	struct got g = {0};

	start_on_nsd();
	resolve_mx("deadmx.nh.test", &g); /* one host without addresses, one that does not exist */
	assert_failure(&g, NEXTHOP_NOADDR,
		       "550 5.4.4 Unable to route: the destination has no mail server address");
	cr_assert_eq(g.r.route, NEXTHOP_MX);
}

Test(nexthop, a_failed_mx_host_lookup_is_skipped_but_makes_an_empty_list_temporary)
{
	struct got g = {0};

	start_on_nsd();
	resolve_mx("partmx.nh.test", &g);
	cr_assert_eq(g.r.status, NEXTHOP_OK);
	cr_assert_eq(g.r.ncand, 1);
	cr_assert(has_cand(&g.r, "v4only.nh.test [192.0.2.4]:25/20"));
	resolve_mx("tempmx.nh.test", &g); /* no address (bare) and REFUSED */
	assert_failure(&g, NEXTHOP_TEMPFAIL,
		       "451 4.4.3 Destination lookup failed, try again later");
	cr_assert_eq(stat_of(&nh.stats.tempfail), 1);
}

Test(nexthop, silent_server_is_451_4_4_3)
{
	struct got g = {0};

	start_silent(TEST_MAX_RES);
	resolve_mx("mx.nh.test", &g);
	assert_failure(&g, NEXTHOP_TEMPFAIL,
		       "451 4.4.3 Destination lookup failed, try again later");
	cr_assert_eq(g.r.route, NEXTHOP_MX);
	resolve(&(struct nexthop_req){.host = "both.nh.test", .port = 2525}, &g);
	assert_failure(&g, NEXTHOP_TEMPFAIL,
		       "451 4.4.3 Destination lookup failed, try again later");
}

/* --- caps --- */

Test(nexthop, addresses_per_family_and_host_at_the_limit)
{
	char host[32], want[128];
	struct got g = {0};

	start_on_nsd();
	for (unsigned n = NEXTHOP_MAX_PER_FAMILY - 1; n <= NEXTHOP_MAX_PER_FAMILY + 1; n++) {
		unsigned kept = n < NEXTHOP_MAX_PER_FAMILY ? n : NEXTHOP_MAX_PER_FAMILY;

		snprintf(host, sizeof(host), "f%u.nh.test", n);
		resolve(&(struct nexthop_req){.host = host, .port = 25}, &g);
		cr_assert_eq(g.r.ncand, 2 * kept, "%s", host);
		cr_assert_eq(g.r.truncated, n > NEXTHOP_MAX_PER_FAMILY, "%s", host);
		assert_ordered(&g.r);
		for (unsigned i = 1; i <= kept; i++) {
			snprintf(want, sizeof(want), "%s [2001:db8:f%u::%u]:25/0", host, n, i);
			cr_assert(has_cand(&g.r, want), "%s missing", want);
		}
	}
	cr_assert_eq(stat_of(&nh.stats.truncated), 1);
}

Test(nexthop, candidates_in_all_at_the_limit_keep_the_most_preferred)
{
	static const struct {
		const char *domain;
		unsigned ncand;
		bool truncated;
	} cases[] = {
	    {"cap15.nh.test", NEXTHOP_MAX_CANDIDATES - 1, false},
	    {"cap16.nh.test", NEXTHOP_MAX_CANDIDATES, false},
	    {"cap17.nh.test", NEXTHOP_MAX_CANDIDATES, true},
	};
	struct got g = {0};

	start_on_nsd();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		resolve_mx(cases[i].domain, &g);
		cr_assert_eq(g.r.status, NEXTHOP_OK, "%s", cases[i].domain);
		cr_assert_eq(g.r.ncand, cases[i].ncand, "%s", cases[i].domain);
		cr_assert_eq(g.r.truncated, cases[i].truncated, "%s", cases[i].domain);
		assert_ordered(&g.r);
		cr_assert_str_eq(nexthop_host(&g.r, &g.r.cand[0]), "x1.nh.test");
	}
	cr_assert_not(has_cand(&g.r, "v4only.nh.test [192.0.2.4]:25/30"), "cut off by the cap");
}

struct warm {
	unsigned calls;
};

static void
warm_mx(void *arg, const struct dns_mx_result *r)
{
	(void)r;
	((struct warm *)arg)->calls++;
}

static void
warm_addr(void *arg, const struct dns_addr_result *r)
{
	(void)r;
	((struct warm *)arg)->calls++;
}

Test(nexthop, complete_as_soon_as_the_answered_hosts_fill_the_list)
{
	struct warm w = {0};
	struct got g = {0};

	start_on_nsd();
	/* MX and the first two hosts in the cache; slow.nh.test must still be asked */
	cr_assert_eq(dns_query_mx(&d, "early.nh.test", warm_mx, &w, NULL), 0);
	cr_assert_eq(dns_query_addr(&d, "x1.nh.test", warm_addr, &w, NULL), 0);
	cr_assert_eq(dns_query_addr(&d, "x2.nh.test", warm_addr, &w, NULL), 0);
	run_until(&w.calls, 3);
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "early.nh.test"}, &g, got_result, NULL),
		     0);
	nexthop_dispatch(&nh); /* cache hits only: no network round */
	cr_assert_eq(g.calls, 1, "did not wait for slow.nh.test");
	cr_assert_eq(g.r.ncand, NEXTHOP_MAX_CANDIDATES);
	cr_assert(g.r.truncated, "slow.nh.test was left out");
	cr_assert_eq(stat_of(&d.stats.cancelled), 1, "its lookup was withdrawn");
	run_idle();
	cr_assert_eq(g.calls, 1);
}

/* --- callbacks and cancellation --- */

Test(nexthop, cache_hits_wait_for_dispatch_too)
{
	struct got g = {0};

	start_on_nsd();
	resolve_mx("mx.nh.test", &g);
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "mx.nh.test"}, &g, got_result, NULL),
		     0);
	cr_assert_eq(g.calls, 1);
	nexthop_dispatch(&nh);
	cr_assert_eq(g.calls, 2, "answered from the cache within one dispatch");
	cr_assert_eq(g.r.ncand, 6);
	cr_assert_eq(g.inside_start, 0);
}

Test(nexthop, cancel_at_every_stage_calls_nothing_and_frees_everything)
{
	struct got g = {0};
	uint64_t h1, h2, h3;

	start_on_nsd();
	/* waiting for MX */
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "mx.nh.test"}, &g, got_result, &h1), 0);
	cr_assert_neq(h1, 0);
	cr_assert(nexthop_cancel(&nh, h1));
	cr_assert_not(nexthop_cancel(&nh, h1), "twice: no-op");
	cr_assert_eq(stat_of(&d.stats.cancelled), 1, "the MX request");
	run_idle();
	cr_assert_eq(g.calls, 0);

	/* waiting for the addresses of four MX hosts (the MX answer is cached now) */
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "mx.nh.test"}, &g, got_result, &h2), 0);
	dns_dispatch(&d); /* the MX hit: the four address lookups start */
	cr_assert(nexthop_cancel(&nh, h2));
	cr_assert_eq(stat_of(&d.stats.cancelled), 1 + 4, "every host's request");
	run_idle();
	cr_assert_eq(g.calls, 0);

	/* a literal waiting in the ready list */
	cr_assert_eq(
	    start_nh(&(struct nexthop_req){.host = "::1", .literal = true}, &g, got_result, &h3),
	    0);
	cr_assert(nexthop_cancel(&nh, h3));
	nexthop_dispatch(&nh);
	cr_assert_eq(g.calls, 0);

	cr_assert_not(nexthop_cancel(&nh, 0));
	cr_assert_eq(nh.res.used, 0);
	cr_assert_eq(d.waiters.used, 0, "no core/dns request left behind");
	cr_assert_eq(stat_of(&nh.stats.cancelled), 3);
}

struct self_cancel {
	struct got g;
	uint64_t handle;
	bool cancelled; /* what nexthop_cancel() said from inside the callback */
};

static void
cancel_self(void *arg, struct nexthop_result *r)
{
	struct self_cancel *s = arg;

	got_result(&s->g, r);
	s->cancelled = nexthop_cancel(&nh, s->handle);
}

Test(nexthop, cancel_after_or_inside_the_callback_is_a_no_op)
{
	struct self_cancel s = {0};

	start_on_nsd();
	cr_assert_eq(
	    start_nh(&(struct nexthop_req){.host = "mx.nh.test"}, &s.g, cancel_self, &s.handle), 0);
	run_until(&s.g.calls, 1);
	cr_assert_not(s.cancelled, "from its own callback: already spent");
	cr_assert_not(nexthop_cancel(&nh, s.handle), "after it");
	cr_assert_eq(s.g.r.status, NEXTHOP_OK, "the result is intact");
	cr_assert_eq(stat_of(&nh.stats.cancelled), 0);
}

/* A callback that starts two more resolutions: a literal and a DNS one. */
struct chain {
	struct got first, literal, dns;
};

static void
chain_more(void *arg, struct nexthop_result *r)
{
	struct chain *c = arg;

	got_result(&c->first, r);
	cr_assert_eq(nexthop_start(&nh, &(struct nexthop_req){.host = "192.0.2.9", .literal = true},
				   &c->literal.r, got_result, &c->literal, NULL),
		     0);
	cr_assert_eq(nexthop_start(&nh, &(struct nexthop_req){.host = "implicit.nh.test"},
				   &c->dns.r, got_result, &c->dns, NULL),
		     0);
	cr_assert_eq(c->literal.calls + c->dns.calls, 0, "not from inside nexthop_start()");
}

Test(nexthop, a_callback_may_start_more_and_dispatch_runs_them_all)
{
	struct chain c = {0};

	start_on_nsd();
	cr_assert_eq(nexthop_start(&nh, &(struct nexthop_req){.host = "10.0.0.1", .literal = true},
				   &c.first.r, chain_more, &c, NULL),
		     0);
	nexthop_dispatch(&nh);
	cr_assert_eq(c.first.calls, 1);
	cr_assert_eq(c.literal.calls, 1,
		     "a literal queued by a callback runs in the same dispatch");
	run_until(&c.dns.calls, 1);
	cr_assert_eq(c.dns.r.route, NEXTHOP_IMPLICIT);
	cr_assert_eq(c.dns.r.ncand, 2);
}

Test(nexthop, pool_is_bounded)
{
	struct got g[3] = {{0}};

	start_silent(2);
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "a.test"}, &g[0], got_result, NULL), 0);
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "::1", .literal = true}, &g[1],
			      got_result, NULL),
		     0);
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "::2", .literal = true}, &g[2],
			      got_result, NULL),
		     -ENOBUFS);
	nexthop_dispatch(&nh);
	cr_assert_eq(g[1].calls, 1, "N fit");
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "::2", .literal = true}, &g[2],
			      got_result, NULL),
		     0, "a slot is free again once its callback ran");
	nexthop_dispatch(&nh);
	cr_assert_eq(g[2].calls, 1);
	cr_assert_eq(g[0].calls, 0, "still waiting for the silent server");
}

Test(nexthop, init_refuses_no_resolver_or_no_room)
{
	struct dns_config cfg;

	dns_config_default(&cfg);
	cfg.servers[0] = nsd_silent_server();
	cfg.nservers = 1;
	cr_assert_eq(nexthop_init(&nh, NULL, 1), -EINVAL);
	cr_assert_eq(dns_init(&d, &cfg, &owner_io), 0);
	cr_assert_eq(nexthop_init(&nh, &d, 0), -EINVAL);
	dns_fini(&d);
}

Test(nexthop, fini_with_resolutions_outstanding_calls_nothing)
{
	struct got g = {0};

	start_silent(TEST_MAX_RES);
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "mx.nh.test"}, &g, got_result, NULL),
		     0);
	cr_assert_eq(
	    start_nh(&(struct nexthop_req){.host = "::1", .literal = true}, &g, got_result, NULL),
	    0);
	nexthop_fini(&nh);
	cr_assert_eq(d.waiters.used, 0, "its core/dns request was withdrawn");
	dns_fini(&d);
	owner.live = false;
	cr_assert_eq(g.calls, 0);
}

static void
dispatch_again(void *arg, struct nexthop_result *r)
{
	(void)arg;
	(void)r;
	nexthop_dispatch(&nh);
}

Test(nexthop, dispatch_from_a_callback_is_a_bug, .signal = SIGABRT)
{
	struct got g = {0};

	start_silent(TEST_MAX_RES);
	cr_assert_not_null(freopen("/dev/null", "w", stderr), "keep BUG_ON's line out of the log");
	cr_assert_eq(start_nh(&(struct nexthop_req){.host = "::1", .literal = true}, &g,
			      dispatch_again, NULL),
		     0);
	nexthop_dispatch(&nh);
}

/* --- the caller's loop --- */

Test(nexthop, next_walks_every_candidate_once_in_order)
{
	const struct nexthop_cand *c;
	struct got g = {0};
	unsigned i = 0, n = 0;

	start_on_nsd();
	resolve_mx("mx.nh.test", &g);
	while ((c = nexthop_next(&g.r, &i)) != NULL)
		cr_assert_eq(c, &g.r.cand[n++]);
	cr_assert_eq(n, g.r.ncand);
	cr_assert_null(nexthop_next(&g.r, &i), "and stays at the end");
}
