/*
 * test_dns.c -- core/dns against a real authoritative server.
 *
 * Each test that needs answers starts its own NSD with the zone "dns.test"
 * below (tests/support/nsd_fixture: a free high port on 127.0.0.1 and ::1,
 * stopped in the suite's fini); without NSD those tests are reported as
 * skipped, never as passed.
 *
 * The test is the module's owner: the fixture's fd table fed by
 * dns_io.watch and a poll(2) loop with a bounded total wait, calling
 * dns_on_ready() and dns_tick(). The clock given to dns_tick() stands
 * still unless a test moves it (advance_clock), so expiry is tested to the
 * millisecond without sleeping; c-ares time-outs run on c-ares's own clock.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/dns.h"
#include "core/timer.h"
#include "tests/support/nsd_fixture.h"

#define RUN_BUDGET_MS	 5000 /* longest a test waits for answers */
#define SHUFFLE_ROUNDS	 300
#define ZONE_MINIMUM_TTL 30 /* SOA MINIMUM below: the negative TTL */

/* --- the zone --- */

static const char zone_head[] =
    "$ORIGIN dns.test.\n"
    "$TTL 300\n"
    "@        3600 IN SOA ns.dns.test. hostmaster.dns.test. 1 3600 600 86400 30\n"
    "@             IN NS    ns\n"
    "ns            IN A     127.0.0.1\n"
    /* preferences 5, three at 10, 20: served in this (unsorted) order */
    "mx       120  IN MX    10 mx-b\n"
    "mx       120  IN MX    20 mx-d\n"
    "mx       120  IN MX    10 mx-a\n"
    "mx       120  IN MX    5 mx-first\n"
    "mx       120  IN MX    10 mx-c\n"
    "mx-a          IN A     192.0.2.1\n"
    "mx-b          IN A     192.0.2.2\n"
    "mx-c          IN A     192.0.2.3\n"
    "mx-d          IN AAAA  2001:db8::d\n"
    "mx-first      IN A     192.0.2.5\n"
    "mx-first      IN AAAA  2001:db8::5\n"
    "short    1    IN MX    10 mx-a\n"
    "nullmx        IN MX    0 .\n"
    "implicit      IN A     192.0.2.80\n"
    "implicit      IN AAAA  2001:db8::80\n"
    "host          IN AAAA  2001:db8::10\n"
    "host          IN AAAA  2001:db8::11\n"
    "host          IN A     192.0.2.10\n"
    "host          IN A     192.0.2.11\n"
    "v4only        IN A     192.0.2.20\n"
    "alias         IN CNAME host\n"
    "nodata        IN TXT   \"no mail here\"\n"
    "upper         IN MX    10 MX-A.DNS.TEST.\n";

/* A label of 58 'x' and a two-digit index: "<60>.dns.test" is 69 bytes + NUL. */
static void
long_label(char *buf, size_t size, unsigned i)
{
	snprintf(buf, size, "%.58s%02u",
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i % 100);
}

/* The generated part: names that sit at the limits of dns.h. */
static void
zone_write_limits(FILE *f)
{
	char label[64];

	for (unsigned n = DNS_MX_MAX_HOSTS - 1; n <= DNS_MX_MAX_HOSTS + 1; n++)
		for (unsigned i = 1; i <= n; i++)
			fprintf(f, "mx%u IN MX %u h%u\n", n, i, i);
	/* 16 hosts of 70 bytes: only 14 fit DNS_MX_NAME_BYTES, and too big for UDP */
	for (unsigned i = 1; i <= DNS_MX_MAX_HOSTS; i++) {
		long_label(label, sizeof(label), i);
		fprintf(f, "longmx IN MX %u %s\n", i, label);
	}
	for (unsigned n = DNS_ADDR_MAX_V4; n <= DNS_ADDR_MAX_V4 + 1; n++)
		for (unsigned i = 1; i <= n; i++)
			fprintf(f, "a%u IN A 192.0.2.%u\n", n, 100 + i);
}

/* The whole zone file, for the fixture. */
static void
zone_write(FILE *f)
{
	fputs(zone_head, f);
	zone_write_limits(f);
}

/* --- the owner: a poll(2) loop --- */

static struct {
	struct nsd_owner io; /* what dns asked us to watch */
	uint64_t clock_ms;   /* the clock given to dns_tick(): frozen unless advanced */
	bool live;	     /* d is initialised */
} owner;

static struct dns d;

static const struct dns_io owner_io = {.ctx = &owner.io, .watch = nsd_owner_watch};

/* What the owner runs before each wait. */
static void
owner_dispatch(void)
{
	dns_dispatch(&d);
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

static void
advance_clock(uint64_t ms)
{
	owner.clock_ms += ms;
	dns_tick(&d, owner.clock_ms);
}

/* Defaults for the tests: the test's NSD, raw TTLs, a fixed seed. */
static struct dns_config
test_config(void)
{
	struct dns_config cfg;

	dns_config_default(&cfg);
	cfg.servers[0] = nsd_loopback(AF_INET, nsd_port());
	cfg.nservers = 1;
	cfg.timeout_ms = 1000;
	cfg.ttl_min_s = 0;
	cfg.seed = 42;
	return cfg;
}

static void
start(const struct dns_config *cfg)
{
	cr_assert_eq(dns_init(&d, cfg, &owner_io), 0);
	owner.live = true;
	/* from now on the cache's clock moves only by advance_clock(): exact expiry tests */
	owner.clock_ms = timer_now_ms();
	dns_tick(&d, owner.clock_ms);
}

static void
stop(void)
{
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

/* Start NSD and a resolver on it with the test defaults, changed by `tweak`. */
static void
start_on_nsd(void (*tweak)(struct dns_config *))
{
	struct dns_config cfg;

	nsd_start_or_skip("dns.test", zone_write);
	cfg = test_config();
	if (tweak != NULL)
		tweak(&cfg);
	start(&cfg);
}

/* --- collecting answers --- */

struct mx_got {
	unsigned calls;
	enum dns_status status;
	uint32_t ttl_s;
	unsigned nhosts;
	uint16_t pref[DNS_MX_MAX_HOSTS];
	char host[DNS_MX_MAX_HOSTS][DNS_NAME_MAX + 1];
};

struct addr_got {
	unsigned calls;
	enum dns_status status;
	uint32_t ttl_s;
	unsigned n6, n4;
	struct in6_addr v6[DNS_ADDR_MAX_V6];
	struct in_addr v4[DNS_ADDR_MAX_V4];
};

static void
got_mx(void *arg, const struct dns_mx_result *r)
{
	struct mx_got *g = arg;

	g->calls++;
	g->status = r->status;
	g->ttl_s = r->ttl_s;
	g->nhosts = r->nhosts;
	for (unsigned i = 0; i < r->nhosts; i++) {
		g->pref[i] = r->hosts[i].pref;
		snprintf(g->host[i], sizeof(g->host[i]), "%s", r->hosts[i].host);
	}
}

static void
got_addr(void *arg, const struct dns_addr_result *r)
{
	struct addr_got *g = arg;

	g->calls++;
	g->status = r->status;
	g->ttl_s = r->ttl_s;
	g->n6 = r->n6;
	g->n4 = r->n4;
	memcpy(g->v6, r->v6, r->n6 * sizeof(r->v6[0]));
	memcpy(g->v4, r->v4, r->n4 * sizeof(r->v4[0]));
}

static void
lookup_mx(const char *name, struct mx_got *g)
{
	unsigned want = g->calls + 1;

	cr_assert_eq(dns_query_mx(&d, name, got_mx, g, NULL), 0, "%s", name);
	run_until(&g->calls, want);
}

static void
lookup_addr(const char *name, struct addr_got *g)
{
	unsigned want = g->calls + 1;

	cr_assert_eq(dns_query_addr(&d, name, got_addr, g, NULL), 0, "%s", name);
	run_until(&g->calls, want);
}

static uint64_t
stat_of(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static bool
has_v4(const struct addr_got *g, const char *text)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, text, &a), 1);
	for (unsigned i = 0; i < g->n4; i++)
		if (g->v4[i].s_addr == a.s_addr)
			return true;
	return false;
}

static bool
has_v6(const struct addr_got *g, const char *text)
{
	struct in6_addr a;

	cr_assert_eq(inet_pton(AF_INET6, text, &a), 1);
	for (unsigned i = 0; i < g->n6; i++)
		if (memcmp(&g->v6[i], &a, sizeof(a)) == 0)
			return true;
	return false;
}

TestSuite(dns, .fini = teardown, .timeout = 60);

/* --- configuration and names, no server needed --- */

Test(dns, server_parse_takes_addresses_with_and_without_ports)
{
	static const struct {
		const char *text;
		int family;
		uint16_t port;
	} ok[] = {
	    {"127.0.0.1", AF_INET, 53},		{"127.0.0.1:5353", AF_INET, 5353},
	    {"10.1.2.3:65535", AF_INET, 65535}, {"::1", AF_INET6, 53},
	    {"[::1]:5353", AF_INET6, 5353},	{"[2001:db8::1]", AF_INET6, 53},
	    {"2001:db8::53", AF_INET6, 53}, /* unbracketed: all of it is the address */
	};
	static const char *const bad[] = {
	    "",
	    "localhost",
	    "127.0.0.1:",
	    "127.0.0.1:0",
	    "127.0.0.1:65536",
	    ":53",
	    "[::1",
	    "[::1]5353",
	    "[::1]:",
	    "[127.0.0.1]:53",
	    "1.2.3.4:53x",
	    "1.2.3.4:053535",
	    "999.1.1.1",
	    "[::1]:-1",
	};
	struct dns_server s;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(dns_server_parse(ok[i].text, &s), 0, "%s", ok[i].text);
		cr_assert_eq(s.family, ok[i].family, "%s", ok[i].text);
		cr_assert_eq(s.port, ok[i].port, "%s", ok[i].text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(dns_server_parse(bad[i], &s), -EINVAL, "%s", bad[i]);
}

Test(dns, init_refuses_a_config_it_cannot_honour)
{
	struct dns_config cfg;
	struct {
		const char *what;
		uint32_t *field;
	} zeroes[] = {
	    {"timeout_ms", &cfg.timeout_ms},
	    {"tries", &cfg.tries},
	    {"cache_entries", &cfg.cache_entries},
	    {"max_requests", &cfg.max_requests},
	};

	for (size_t i = 0; i < sizeof(zeroes) / sizeof(zeroes[0]); i++) {
		dns_config_default(&cfg);
		*zeroes[i].field = 0;
		cr_assert_eq(dns_init(&d, &cfg, &owner_io), -EINVAL, "%s = 0", zeroes[i].what);
	}
	dns_config_default(&cfg);
	cfg.nservers = DNS_MAX_SERVERS + 1;
	cr_assert_eq(dns_init(&d, &cfg, &owner_io), -EINVAL, "too many servers");
	dns_config_default(&cfg);
	cfg.nservers = 1; /* servers[0] left zeroed: no family */
	cr_assert_eq(dns_init(&d, &cfg, &owner_io), -EINVAL, "server without an address");
	dns_config_default(&cfg);
	cfg.ttl_min_s = cfg.ttl_max_s + 1;
	cr_assert_eq(dns_init(&d, &cfg, &owner_io), -EINVAL, "ttl floor above the cap");
}

/* A name of exactly `len` characters: labels of 50 separated by dots. */
static void
name_of_length(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (i % 51 == 50) ? '.' : 'a';
	buf[len] = '\0';
}

Test(dns, names_are_checked_at_the_limits_and_refused_without_a_callback)
{
	static const char *const bad[] = {
	    "",		".",	    "a..b.test", ".a.test", "a b.test", "a\\.test", "\xc3\xa9.test",
	    "a/b.test", "a.test..", "a\tb.test",
	};
	static const char *const good[] = {"_dmarc.example.com", "xn--bcher-kva.example",
					   "Example.COM.", "a-b.c_d.test"};
	char name[DNS_NAME_MAX + 3];
	struct dns_config cfg;
	struct mx_got g = {0};

	dns_config_default(&cfg);
	cfg.servers[0] = nsd_silent_server();
	cfg.nservers = 1;
	start(&cfg);
	name_of_length(name, DNS_NAME_MAX - 1);
	cr_assert_eq(dns_query_mx(&d, name, got_mx, &g, NULL), 0, "N-1");
	name_of_length(name, DNS_NAME_MAX);
	cr_assert_eq(dns_query_mx(&d, name, got_mx, &g, NULL), 0, "N");
	strcat(name, ".");
	cr_assert_eq(dns_query_mx(&d, name, got_mx, &g, NULL), 0, "N and a trailing dot");
	name_of_length(name, DNS_NAME_MAX + 1);
	cr_assert_eq(dns_query_mx(&d, name, got_mx, &g, NULL), -EINVAL, "N+1");
	memset(name, 'x', 62);
	memcpy(name + 62, ".test", 6);
	cr_assert_eq(dns_query_mx(&d, name, got_mx, &g, NULL), 0, "label 62");
	memset(name, 'x', 63);
	memcpy(name + 63, ".test", 6);
	cr_assert_eq(dns_query_mx(&d, name, got_mx, &g, NULL), 0, "label 63");
	memset(name, 'x', 64);
	memcpy(name + 64, ".test", 6);
	cr_assert_eq(dns_query_mx(&d, name, got_mx, &g, NULL), -EINVAL, "label 64");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(dns_query_mx(&d, bad[i], got_mx, &g, NULL), -EINVAL, "%s", bad[i]);
		cr_assert_eq(dns_query_addr(&d, bad[i], got_addr, &g, NULL), -EINVAL, "%s", bad[i]);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(dns_query_mx(&d, good[i], got_mx, &g, NULL), 0, "%s", good[i]);
	dns_dispatch(&d);
	cr_assert_eq(g.calls, 0);
	cr_assert_eq(stat_of(&d.stats.requests), 9);
}

/* --- MX answers --- */

struct shuffle_tally {
	unsigned calls;
	unsigned first_of_ten[3]; /* which of mx-a, mx-b, mx-c came first at preference 10 */
	unsigned bad_order;	  /* answers not sorted as the zone says */
};

static void
tally_mx(void *arg, const struct dns_mx_result *r)
{
	static const char *const ten[] = {"mx-a.dns.test", "mx-b.dns.test", "mx-c.dns.test"};
	struct shuffle_tally *t = arg;
	unsigned seen = 0;

	t->calls++;
	if (r->status != DNS_OK || r->nhosts != 5 ||
	    strcmp(r->hosts[0].host, "mx-first.dns.test") || r->hosts[0].pref != 5 ||
	    strcmp(r->hosts[4].host, "mx-d.dns.test") || r->hosts[4].pref != 20) {
		t->bad_order++;
		return;
	}
	for (unsigned i = 1; i <= 3; i++)
		for (unsigned k = 0; k < 3; k++)
			if (r->hosts[i].pref == 10 && strcmp(r->hosts[i].host, ten[k]) == 0) {
				seen |= 1u << k;
				if (i == 1)
					t->first_of_ten[k]++;
			}
	if (seen != 7)
		t->bad_order++;
}

Test(dns, mx_sorted_by_preference_and_shuffled_among_equals_on_every_answer)
{
	struct shuffle_tally t = {0};

	start_on_nsd(NULL);
	for (unsigned i = 1; i <= SHUFFLE_ROUNDS; i++) {
		cr_assert_eq(dns_query_mx(&d, "mx.dns.test", tally_mx, &t, NULL), 0);
		run_until(&t.calls, i);
	}
	cr_assert_eq(t.bad_order, 0);
	cr_assert_eq(stat_of(&d.stats.sent), 1, "one query, then the cache");
	/* each of three should lead about 100 times; 50..150 fails with p < 1e-6 */
	for (unsigned k = 0; k < 3; k++)
		cr_assert(t.first_of_ten[k] >= 50 && t.first_of_ten[k] <= 150,
			  "host %u led %u of %u", k, t.first_of_ten[k], SHUFFLE_ROUNDS);
}

static void
cap_ttl_at_60(struct dns_config *cfg)
{
	cfg->ttl_max_s = 60;
}

static void
floor_ttl_at_5(struct dns_config *cfg)
{
	cfg->ttl_min_s = 5;
}

Test(dns, mx_ttl_comes_from_the_answer)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.status, DNS_OK);
	cr_assert_eq(g.ttl_s, 120);
	lookup_mx("short.dns.test", &g);
	cr_assert_eq(g.ttl_s, 1);
}

Test(dns, mx_ttl_is_capped)
{
	struct mx_got g = {0};

	start_on_nsd(cap_ttl_at_60);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.ttl_s, 60);
}

Test(dns, mx_ttl_has_a_floor)
{
	struct mx_got g = {0};

	start_on_nsd(floor_ttl_at_5);
	lookup_mx("short.dns.test", &g);
	cr_assert_eq(g.ttl_s, 5);
}

Test(dns, null_mx_is_its_own_status)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("nullmx.dns.test", &g);
	cr_assert_eq(g.status, DNS_NULLMX);
	cr_assert_eq(g.nhosts, 0);
	cr_assert_eq(g.ttl_s, 300);
}

Test(dns, host_names_are_lowercase_and_lookups_ignore_case)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("UPPER.Dns.Test.", &g);
	cr_assert_eq(g.status, DNS_OK);
	cr_assert_eq(g.nhosts, 1);
	cr_assert_str_eq(g.host[0], "mx-a.dns.test");
	lookup_mx("upper.dns.test", &g);
	cr_assert_eq(stat_of(&d.stats.sent), 1, "same name, other case: a cache hit");
	cr_assert_eq(stat_of(&d.stats.hits), 1);
}

/* Destination as RFC 5321 5.1 says: MX, or the domain itself when it has none. */
struct route {
	unsigned done;
	enum dns_status mx_status;
	struct addr_got addr;
};

static void
route_addr(void *arg, const struct dns_addr_result *r)
{
	struct route *rt = arg;

	got_addr(&rt->addr, r);
	rt->done++;
}

static void
route_mx(void *arg, const struct dns_mx_result *r)
{
	static char domain[] = "implicit.dns.test";
	struct route *rt = arg;

	rt->mx_status = r->status;
	/* a new query from inside a callback: delivered before dispatch returns or later */
	if (r->status == DNS_NODATA)
		cr_assert_eq(dns_query_addr(&d, domain, route_addr, rt, NULL), 0);
	else
		rt->done++;
}

Test(dns, implicit_mx_nodata_then_the_domain_addresses)
{
	struct route rt = {0};

	start_on_nsd(NULL);
	cr_assert_eq(dns_query_mx(&d, "implicit.dns.test", route_mx, &rt, NULL), 0);
	run_until(&rt.done, 1);
	cr_assert_eq(rt.mx_status, DNS_NODATA);
	cr_assert_eq(rt.addr.status, DNS_OK);
	cr_assert_eq(rt.addr.n6, 1);
	cr_assert_eq(rt.addr.n4, 1);
	cr_assert(has_v6(&rt.addr, "2001:db8::80"));
	cr_assert(has_v4(&rt.addr, "192.0.2.80"));
}

Test(dns, mx_hosts_then_their_addresses)
{
	struct mx_got g = {0};
	struct addr_got a[5] = {{0}};
	unsigned done = 0;

	start_on_nsd(NULL);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.nhosts, 5);
	for (unsigned i = 0; i < g.nhosts; i++)
		cr_assert_eq(dns_query_addr(&d, g.host[i], got_addr, &a[i], NULL), 0);
	for (uint64_t end = timer_now_ms() + RUN_BUDGET_MS; done < 5 && timer_now_ms() < end;) {
		nsd_owner_round(&owner.io, &d, &owner.clock_ms, owner_dispatch);
		done = 0;
		for (unsigned i = 0; i < 5; i++)
			done += a[i].calls;
	}
	cr_assert_eq(done, 5);
	for (unsigned i = 0; i < g.nhosts; i++)
		cr_assert_eq(a[i].status, DNS_OK, "%s", g.host[i]);
	cr_assert_eq(a[0].n4, 1, "mx-first has A");
	cr_assert_eq(a[0].n6, 1, "and AAAA");
	cr_assert_eq(a[4].n4, 0, "mx-d has only AAAA");
	cr_assert_eq(a[4].n6, 1);
}

/* --- negative answers --- */

Test(dns, nxdomain_is_cached_for_the_soa_ttl)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("nope.dns.test", &g);
	cr_assert_eq(g.status, DNS_NXDOMAIN);
	cr_assert_eq(g.ttl_s, ZONE_MINIMUM_TTL, "RFC 2308: min(SOA TTL, MINIMUM)");
	lookup_mx("nope.dns.test", &g);
	cr_assert_eq(g.status, DNS_NXDOMAIN);
	cr_assert_eq(stat_of(&d.stats.sent), 1, "negative answers are cached");
	advance_clock(ZONE_MINIMUM_TTL * 1000 - 1);
	lookup_mx("nope.dns.test", &g);
	cr_assert_eq(stat_of(&d.stats.sent), 1, "one millisecond before expiry");
	advance_clock(1);
	lookup_mx("nope.dns.test", &g);
	cr_assert_eq(g.status, DNS_NXDOMAIN);
	cr_assert_eq(stat_of(&d.stats.sent), 2, "asked again at expiry");
}

static void
cap_neg_ttl_at_10(struct dns_config *cfg)
{
	cfg->neg_ttl_max_s = 10;
}

Test(dns, negative_ttl_is_capped)
{
	struct mx_got g = {0};

	start_on_nsd(cap_neg_ttl_at_10);
	lookup_mx("nope.dns.test", &g);
	cr_assert_eq(g.ttl_s, 10);
}

Test(dns, nodata_for_mx_and_for_both_address_families)
{
	struct mx_got g = {0};
	struct addr_got a = {0};

	start_on_nsd(NULL);
	lookup_mx("nodata.dns.test", &g);
	cr_assert_eq(g.status, DNS_NODATA);
	cr_assert_eq(g.ttl_s, ZONE_MINIMUM_TTL);
	lookup_addr("nodata.dns.test", &a);
	cr_assert_eq(a.status, DNS_NODATA);
	lookup_addr("gone.dns.test", &a);
	cr_assert_eq(a.status, DNS_NXDOMAIN);
	cr_assert_eq(stat_of(&d.stats.sent), 5);
}

/* --- addresses --- */

Test(dns, addresses_of_both_families)
{
	struct addr_got a = {0};

	start_on_nsd(NULL);
	lookup_addr("host.dns.test", &a);
	cr_assert_eq(a.status, DNS_OK);
	cr_assert_eq(a.n6, 2);
	cr_assert_eq(a.n4, 2);
	cr_assert(has_v6(&a, "2001:db8::10") && has_v6(&a, "2001:db8::11"));
	cr_assert(has_v4(&a, "192.0.2.10") && has_v4(&a, "192.0.2.11"));
	cr_assert_eq(a.ttl_s, 300);
	cr_assert_eq(stat_of(&d.stats.sent), 2, "AAAA and A");
}

Test(dns, one_family_missing_is_ok_and_asked_again_after_its_negative_ttl)
{
	struct addr_got a = {0};

	start_on_nsd(NULL);
	lookup_addr("v4only.dns.test", &a);
	cr_assert_eq(a.status, DNS_OK);
	cr_assert_eq(a.n6, 0);
	cr_assert_eq(a.n4, 1);
	cr_assert_eq(a.ttl_s, ZONE_MINIMUM_TTL, "the AAAA NODATA bounds the entry");
}

Test(dns, cname_is_followed)
{
	struct addr_got a = {0};

	start_on_nsd(NULL);
	lookup_addr("alias.dns.test", &a);
	cr_assert_eq(a.status, DNS_OK);
	cr_assert_eq(a.n6, 2);
	cr_assert_eq(a.n4, 2);
}

/* --- the cache --- */

Test(dns, cache_hit_sends_nothing_and_never_calls_back_inside_the_query)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(dns_query_mx(&d, "mx.dns.test", got_mx, &g, NULL), 0);
	cr_assert_eq(g.calls, 1, "a hit is queued, not called from dns_query_mx()");
	dns_dispatch(&d);
	cr_assert_eq(g.calls, 2);
	cr_assert_eq(g.status, DNS_OK);
	cr_assert_eq(g.nhosts, 5);
	cr_assert_eq(stat_of(&d.stats.sent), 1);
	cr_assert_eq(stat_of(&d.stats.hits), 1);
	cr_assert_eq(stat_of(&d.stats.requests), 2);
}

Test(dns, answers_expire_with_their_ttl)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("short.dns.test", &g);
	cr_assert_eq(g.ttl_s, 1);
	advance_clock(999);
	lookup_mx("short.dns.test", &g);
	cr_assert_eq(stat_of(&d.stats.sent), 1, "still fresh");
	cr_assert_eq(g.ttl_s, 1, "remaining TTL rounds up");
	advance_clock(1);
	lookup_mx("short.dns.test", &g);
	cr_assert_eq(stat_of(&d.stats.sent), 2, "expired: asked again");
	cr_assert_eq(g.status, DNS_OK);
}

Test(dns, identical_requests_in_flight_share_one_query)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(dns_query_mx(&d, "mx.dns.test", got_mx, &g, NULL), 0);
	cr_assert_eq(stat_of(&d.stats.sent), 1);
	cr_assert_eq(stat_of(&d.stats.coalesced), 9);
	run_until(&g.calls, 10);
	cr_assert_eq(g.status, DNS_OK);
	cr_assert_eq(g.nhosts, 5);
}

static void
four_entries(struct dns_config *cfg)
{
	cfg->cache_entries = 4;
}

Test(dns, cache_is_bounded_and_evicts_the_least_recently_used)
{
	static const char *const n[] = {"n1.dns.test", "n2.dns.test", "n3.dns.test",
					"n4.dns.test", "n5.dns.test", "n6.dns.test"};
	struct mx_got g = {0};

	start_on_nsd(four_entries);
	for (int i = 0; i < 4; i++)
		lookup_mx(n[i], &g);
	cr_assert_eq(stat_of(&d.stats.evictions), 0, "N entries fit");
	lookup_mx(n[0], &g); /* n1 used again: n2 is now the least recent */
	cr_assert_eq(stat_of(&d.stats.sent), 4);
	lookup_mx(n[4], &g);
	cr_assert_eq(stat_of(&d.stats.evictions), 1, "N+1 evicts one");
	lookup_mx(n[0], &g);
	cr_assert_eq(stat_of(&d.stats.sent), 5, "n1 stayed");
	lookup_mx(n[1], &g);
	cr_assert_eq(stat_of(&d.stats.sent), 6, "n2 was evicted");
	cr_assert_eq(stat_of(&d.stats.evictions), 2);
	cr_assert_eq(d.entries.used, 4, "never more than cache_entries");
	cr_assert_eq(g.status, DNS_NXDOMAIN);
}

Test(dns, busy_cache_and_too_many_requests_are_enobufs)
{
	struct dns_config cfg;
	struct mx_got g = {0};

	dns_config_default(&cfg);
	cfg.servers[0] = nsd_silent_server();
	cfg.nservers = 1;
	cfg.cache_entries = 2;
	cfg.max_requests = 3;
	start(&cfg);
	cr_assert_eq(dns_query_mx(&d, "a.test", got_mx, &g, NULL), 0);
	cr_assert_eq(dns_query_mx(&d, "b.test", got_mx, &g, NULL), 0);
	cr_assert_eq(dns_query_mx(&d, "c.test", got_mx, &g, NULL), -ENOBUFS,
		     "every entry is a lookup in flight");
	cr_assert_eq(dns_query_mx(&d, "a.test", got_mx, &g, NULL), 0, "joining one needs no entry");
	cr_assert_eq(dns_query_mx(&d, "a.test", got_mx, &g, NULL), -ENOBUFS, "max_requests");
	dns_dispatch(&d);
	cr_assert_eq(g.calls, 0);
	/* stop() with requests outstanding: no callback, everything released */
}

/* --- cancel --- */

struct self_cancel {
	uint64_t handle;
	unsigned calls;
	bool cancelled; /* what dns_cancel() said from inside the callback */
};

static void
cancel_self(void *arg, const struct dns_addr_result *r)
{
	struct self_cancel *s = arg;

	(void)r;
	s->calls++;
	s->cancelled = dns_cancel(&d, s->handle);
}

Test(dns, cancelled_requests_never_call_back)
{
	struct addr_got a1 = {0}, a2 = {0}, a3 = {0};
	struct self_cancel s = {0};
	uint64_t h1, h2, h3;

	start_on_nsd(NULL);
	cr_assert_eq(dns_query_addr(&d, "host.dns.test", got_addr, &a1, &h1), 0);
	cr_assert_eq(dns_query_addr(&d, "host.dns.test", got_addr, &a2, &h2), 0);
	cr_assert_neq(h1, 0);
	cr_assert_neq(h1, h2);
	cr_assert(dns_cancel(&d, h1), "pending: withdrawn");
	cr_assert_not(dns_cancel(&d, h1), "twice: no-op");
	run_until(&a2.calls, 1);
	cr_assert_eq(a1.calls, 0);
	cr_assert_not(dns_cancel(&d, h2), "after its callback: no-op");
	cr_assert_not(dns_cancel(&d, 0));

	cr_assert_eq(dns_query_addr(&d, "host.dns.test", got_addr, &a3, &h3), 0);
	cr_assert(dns_cancel(&d, h3), "a queued cache hit can be withdrawn too");
	dns_dispatch(&d);
	cr_assert_eq(a3.calls, 0);

	cr_assert_eq(dns_query_addr(&d, "host.dns.test", cancel_self, &s, &s.handle), 0);
	dns_dispatch(&d);
	cr_assert_eq(s.calls, 1);
	cr_assert_not(s.cancelled, "from its own callback: already gone");
	cr_assert_eq(stat_of(&d.stats.cancelled), 2);
}

Test(dns, a_lookup_whose_requests_were_all_cancelled_still_fills_the_cache)
{
	struct mx_got g = {0};
	uint64_t h;

	start_on_nsd(NULL);
	cr_assert_eq(dns_query_mx(&d, "mx.dns.test", got_mx, &g, &h), 0);
	cr_assert(dns_cancel(&d, h));
	run_idle();
	cr_assert_eq(g.calls, 0);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(stat_of(&d.stats.sent), 1);
	cr_assert_eq(stat_of(&d.stats.hits), 1);
}

/* --- failures --- */

static void
silent_config(struct dns_config *cfg, uint32_t fail_ttl_s)
{
	dns_config_default(cfg);
	cfg->servers[0] = nsd_silent_server();
	cfg->nservers = 1;
	cfg->timeout_ms = 100;
	cfg->tries = 1;
	cfg->fail_ttl_s = fail_ttl_s;
	cfg->seed = 42;
}

Test(dns, silent_server_times_out_and_the_failure_is_cached_briefly)
{
	struct dns_config cfg;
	struct mx_got g = {0};
	struct addr_got a = {0};
	uint64_t t0 = timer_now_ms();

	silent_config(&cfg, 5);
	start(&cfg);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.status, DNS_TIMEOUT);
	cr_assert_geq(timer_now_ms() - t0, 100, "not before the time-out");
	cr_assert_eq(g.ttl_s, 5);
	cr_assert_eq(stat_of(&d.stats.failures), 1);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.status, DNS_TIMEOUT);
	cr_assert_eq(stat_of(&d.stats.sent), 1, "within fail_ttl_s: from the cache");
	lookup_addr("host.dns.test", &a);
	cr_assert_eq(a.status, DNS_TIMEOUT);
	advance_clock(5000);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(stat_of(&d.stats.sent), 4, "after fail_ttl_s: asked again");
}

Test(dns, fail_ttl_zero_does_not_cache_failures)
{
	struct dns_config cfg;
	struct mx_got g = {0};

	silent_config(&cfg, 0);
	start(&cfg);
	lookup_mx("mx.dns.test", &g);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.status, DNS_TIMEOUT);
	cr_assert_eq(stat_of(&d.stats.sent), 2);
	cr_assert_eq(d.entries.used, 0, "nothing kept");
}

Test(dns, refused_is_a_temporary_failure)
{
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("example.org", &g); /* not NSD's zone: REFUSED */
	cr_assert_eq(g.status, DNS_TEMPFAIL);
	cr_assert_eq(stat_of(&d.stats.failures), 1);
}

static void
silent_then_nsd(struct dns_config *cfg)
{
	cfg->servers[1] = cfg->servers[0];
	cfg->servers[0] = nsd_silent_server();
	cfg->nservers = 2;
	cfg->timeout_ms = 100;
	cfg->tries = 1;
}

Test(dns, the_next_server_answers_when_the_first_is_silent)
{
	struct mx_got g = {0};

	start_on_nsd(silent_then_nsd);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.status, DNS_OK);
	cr_assert_eq(g.nhosts, 5);
}

static void
nsd_on_ipv6(struct dns_config *cfg)
{
	cfg->servers[0] = nsd_loopback(AF_INET6, nsd_port());
}

Test(dns, ipv6_server_with_a_port)
{
	struct mx_got g = {0};

	start_on_nsd(nsd_on_ipv6);
	lookup_mx("mx.dns.test", &g);
	cr_assert_eq(g.status, DNS_OK);
	cr_assert_eq(g.nhosts, 5);
}

/* --- limits --- */

Test(dns, mx_host_count_at_the_limit)
{
	char name[32];
	struct mx_got g = {0};

	start_on_nsd(NULL);
	for (unsigned n = DNS_MX_MAX_HOSTS - 1; n <= DNS_MX_MAX_HOSTS + 1; n++) {
		snprintf(name, sizeof(name), "mx%u.dns.test", n);
		lookup_mx(name, &g);
		cr_assert_eq(g.status, DNS_OK);
		cr_assert_eq(g.nhosts, n > DNS_MX_MAX_HOSTS ? DNS_MX_MAX_HOSTS : n, "%s", name);
		for (unsigned i = 0; i < g.nhosts; i++)
			cr_assert_eq(g.pref[i], i + 1, "the most preferred are kept, in order");
		cr_assert_eq(stat_of(&d.stats.truncated), n > DNS_MX_MAX_HOSTS, "%s", name);
	}
}

Test(dns, mx_name_bytes_at_the_limit_over_tcp)
{
	char label[64], want[80];
	struct mx_got g = {0};

	start_on_nsd(NULL);
	lookup_mx("longmx.dns.test", &g);
	cr_assert_gt(owner.io.pollout_seen, 0, "too big for UDP: c-ares connected over TCP");
	cr_assert_eq(g.status, DNS_OK);
	/* 70 bytes a host: 14 fit in DNS_MX_NAME_BYTES (980), a 15th would not (1050) */
	cr_assert_eq(g.nhosts, DNS_MX_NAME_BYTES / 70);
	for (unsigned i = 0; i < g.nhosts; i++) {
		long_label(label, sizeof(label), i + 1);
		snprintf(want, sizeof(want), "%s.dns.test", label);
		cr_assert_str_eq(g.host[i], want);
	}
	cr_assert_eq(stat_of(&d.stats.truncated), 1);
}

Test(dns, address_count_at_the_limit)
{
	struct addr_got a = {0};

	start_on_nsd(NULL);
	lookup_addr("a8.dns.test", &a);
	cr_assert_eq(a.n4, DNS_ADDR_MAX_V4);
	cr_assert_eq(stat_of(&d.stats.truncated), 0);
	lookup_addr("a9.dns.test", &a);
	cr_assert_eq(a.status, DNS_OK);
	cr_assert_eq(a.n4, DNS_ADDR_MAX_V4);
	cr_assert_eq(stat_of(&d.stats.truncated), 1);
}

/* --- lifetime --- */

Test(dns, fini_with_queries_in_flight_stops_watching_and_calls_nothing)
{
	struct dns_config cfg;
	struct mx_got g = {0};
	struct addr_got a = {0};

	silent_config(&cfg, 5);
	start(&cfg);
	cr_assert_eq(dns_query_mx(&d, "mx.dns.test", got_mx, &g, NULL), 0);
	cr_assert_eq(dns_query_addr(&d, "host.dns.test", got_addr, &a, NULL), 0);
	cr_assert_geq(owner.io.nfds, 1, "the query's socket is watched");
	cr_assert_geq(dns_timeout_ms(&d), 0);
	stop();
	cr_assert_eq(g.calls + a.calls, 0);
}

static void
dispatch_again(void *arg, const struct dns_mx_result *r)
{
	(void)arg;
	(void)r;
	dns_dispatch(&d);
}

Test(dns, dispatch_from_a_callback_is_a_bug, .signal = SIGABRT)
{
	struct dns_config cfg;
	unsigned never = 0;

	silent_config(&cfg, 5);
	start(&cfg);
	cr_assert_not_null(freopen("/dev/null", "w", stderr), "keep BUG_ON's line out of the log");
	cr_assert_eq(dns_query_mx(&d, "mx.dns.test", dispatch_again, NULL, NULL), 0);
	run_until(&never, 1);
}
