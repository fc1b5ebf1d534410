/*
 * test_zone_batch.c -- zone_lookup_batch() decides exactly like zone_lookup(),
 * address by address, across batch boundaries; and on a table big enough for
 * hash-tag collisions to happen (the batch probes by a 16-bit tag first and
 * must fall back to the full key compare), every hit and miss is still the
 * one the table was built to give.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/zone.h"

static const char small_text[] = "zone example.com subdomains=wildcard\n"
				 "alice@example.com forward alice@dest.test bob@dest2.test:2525\n"
				 "*@example.com forward catch@dest.test\n"
				 "spam@example.com drop\n"
				 "old@example.com reject 550 5.1.1 Gone\n"
				 "busy@example.com defer 451 4.2.1 Busy\n"
				 "zone own.example.com\n"
				 "bob@own.example.com forward bob@dest.test\n"
				 "zone tagged.test subaddress=-+ tag=append\n"
				 "alice@tagged.test forward alice@dest.test\n"
				 "zone exact.test subaddress=off local-case=sensitive\n"
				 "Alice@exact.test forward alice@dest.test\n"
				 "zone b\xc3\xbc"
				 "cher.example\n"
				 "bob@b\xc3\xbc"
				 "cher.example forward bob@dest.test\n"
				 "nowhere@own.example.com forward x@unverified.test\n"
				 "verified-domain dest.test\n"
				 "verified-domain dest2.test\n";

static const char *const small_addrs[] = {
    "alice@example.com",
    "ALICE@Example.COM",
    "alice+x@example.com",
    "nobody@example.com",
    "spam@example.com",
    "old@example.com",
    "busy@example.com",
    "x@deep.sub.example.com",
    "bob@own.example.com",
    "nobody@own.example.com",
    "nowhere@own.example.com",
    "alice-x@tagged.test",
    "alice+y@tagged.test",
    "Alice@exact.test",
    "alice@exact.test",
    "bob@b\xc3\xbc"
    "cher.example",
    "bob@xn--bcher-kva.example",
    "a%b@example.com",
    "\"alice@evil.test\"@example.com",
    "@relay.test:alice@example.com",
    "alice@example.com.",
    "alice@[192.0.2.1]",
    "alice@evil.test",
    "",
    "alice",
    "alice@",
    "\"alice@example.com",
};

static void
json_of(const struct zone_decision *d, char *buf, size_t cap)
{
	zone_decision_json(d, buf, cap);
}

Test(zone_batch, every_address_decides_as_zone_lookup_at_any_batch_size)
{
	enum { N = ARRAY_SIZE(small_addrs) * 3 }; /* several internal batches */
	struct zone_table *t = NULL;
	char err[256], a[4096], b[4096];
	const char *addrs[N];
	size_t lens[N];
	struct zone_decision *one = malloc(sizeof(*one)), *many = calloc(N, sizeof(*many));
	struct zone_decision *outs[N];

	cr_assert_eq(
	    zone_table_load_string(small_text, sizeof(small_text) - 1, "t", &t, err, sizeof(err)),
	    0, "load: %s", err);
	cr_assert(one != NULL && many != NULL);
	for (size_t i = 0; i < N; i++) {
		addrs[i] = small_addrs[i % ARRAY_SIZE(small_addrs)];
		lens[i] = strlen(addrs[i]);
		outs[i] = &many[i];
	}
	for (size_t n = 0; n <= N; n += (n < 20 ? 1 : 17)) {
		memset(many, 0xa5, N * sizeof(*many)); /* stale state must not leak through */
		zone_lookup_batch(t, addrs, lens, n, outs);
		for (size_t i = 0; i < n; i++) {
			zone_lookup(t, addrs[i], lens[i], one);
			json_of(one, a, sizeof(a));
			json_of(outs[i], b, sizeof(b));
			cr_expect_str_eq(b, a, "n=%zu row %zu <%s>", n, i, addrs[i]);
			cr_expect_str_eq(outs[i]->reply, one->reply, "n=%zu row %zu", n, i);
			cr_expect_eq(outs[i]->unverified, one->unverified, "n=%zu row %zu", n, i);
		}
	}
	free(one);
	free(many);
	zone_table_free(t);
}

enum { BIG_ZONES = 4000, BIG_RULES = 16, BIG_BATCH = 37 };

Test(zone_batch, a_big_table_gives_every_hit_and_miss_it_was_built_for)
{
	size_t cap = (size_t)BIG_ZONES * (BIG_RULES + 1) * 64 + 64, len = 0;
	char *text = malloc(cap), err[256], want[512], got[4096];
	struct zone_table *t = NULL;
	struct zone_decision *dec = calloc(BIG_BATCH, sizeof(*dec)), *outs[BIG_BATCH];
	char addr[BIG_BATCH][64];
	const char *addrs[BIG_BATCH];
	size_t lens[BIG_BATCH], k = 0, checked = 0;

	cr_assert(text != NULL && dec != NULL);
	len += (size_t)snprintf(text + len, cap - len, "verified-domain dest.test\n");
	for (unsigned z = 0; z < BIG_ZONES; z++) {
		len += (size_t)snprintf(text + len, cap - len, "zone z%u.test\n", z);
		for (unsigned r = 0; r < BIG_RULES; r++)
			len +=
			    (size_t)snprintf(text + len, cap - len,
					     "u%u@z%u.test forward u%u.%u@dest.test\n", r, z, r, z);
	}
	cr_assert_eq(zone_table_load_string(text, len, "big", &t, err, sizeof(err)), 0, "load: %s",
		     err);
	for (unsigned b = 0; b < BIG_BATCH; b++)
		outs[b] = &dec[b];
	/* every rule (hit), a missing local part (5.1.1) and an unserved domain (5.7.1) */
	for (unsigned z = 0; z < BIG_ZONES; z++) {
		for (unsigned r = 0; r < BIG_RULES + 2; r++) {
			if (r < BIG_RULES)
				snprintf(addr[k], sizeof(addr[k]), "u%u@z%u.test", r, z);
			else if (r == BIG_RULES)
				snprintf(addr[k], sizeof(addr[k]), "v%u@z%u.test", z, z);
			else
				snprintf(addr[k], sizeof(addr[k]), "u0@y%u.test", z);
			addrs[k] = addr[k];
			lens[k] = strlen(addr[k]);
			if (++k < BIG_BATCH && !(z == BIG_ZONES - 1 && r == BIG_RULES + 1))
				continue;
			zone_lookup_batch(t, addrs, lens, k, outs);
			for (size_t i = 0; i < k; i++) {
				unsigned rr, zz;

				if (sscanf(addrs[i], "u%u@z%u.test", &rr, &zz) == 2) {
					snprintf(want, sizeof(want),
						 "{\"zone\":\"z%u.test\",\"rule\":\"u%u@z%u.test\","
						 "\"action\":\"forward\",\"reply\":null,"
						 "\"destinations\":[[\"u%u.%u@dest.test\"]]}\n",
						 zz, rr, zz, rr, zz);
				} else if (addrs[i][0] == 'v') {
					snprintf(
					    want, sizeof(want),
					    "{\"zone\":\"%s\",\"rule\":null,\"action\":\"refuse\","
					    "\"reply\":\"550 5.1.1 <%s>: Recipient address "
					    "rejected: user unknown\",\"destinations\":[]}\n",
					    strchr(addrs[i], '@') + 1, addrs[i]);
				} else {
					snprintf(
					    want, sizeof(want),
					    "{\"zone\":null,\"rule\":null,\"action\":\"refuse\","
					    "\"reply\":\"550 5.7.1 Relaying denied\","
					    "\"destinations\":[]}\n");
				}
				zone_decision_json(outs[i], got, sizeof(got));
				cr_assert_str_eq(got, want, "<%s>: %s", addrs[i], got);
				checked++;
			}
			k = 0;
		}
	}
	cr_expect_eq(checked, (size_t)BIG_ZONES * (BIG_RULES + 2));
	free(dec);
	free(text);
	zone_table_free(t);
}

enum { MIX_ZONES = 3000 };

/* The lookup tests the domain against a Bloom filter of the domains set before it
 * probes anything: on a table of many lines of filter, every zone's own name, every
 * IDN zone's U-label and every subdomain of a wildcard zone must still be found (a
 * false negative would refuse mail we serve), and a subdomain of a zone without
 * wildcard is still not ours. */
Test(zone_batch, the_domain_filter_misses_no_zone_alias_or_wildcard_subdomain)
{
	size_t cap = (size_t)MIX_ZONES * 96 + 64, len = 0;
	char *text = malloc(cap), err[256], addr[96];
	struct zone_table *t = NULL;
	struct zone_decision *d = calloc(1, sizeof(*d));

	cr_assert(text != NULL && d != NULL);
	len += (size_t)snprintf(text + len, cap - len, "verified-domain dest.test\n");
	for (unsigned z = 0; z < MIX_ZONES; z++) {
		/* every third zone an IDN one written as a U-label ("bü<z>.test"), every
		 * fifth a wildcard */
		const char *idn = z % 3 == 0 ? "b\xc3\xbc" : "m";

		len += (size_t)snprintf(text + len, cap - len, "zone %s%u.test%s\n", idn, z,
					z % 5 == 0 ? " subdomains=wildcard" : "");
		len += (size_t)snprintf(text + len, cap - len,
					"*@%s%u.test forward c%u@dest.test\n", idn, z, z);
	}
	cr_assert_eq(zone_table_load_string(text, len, "mix", &t, err, sizeof(err)), 0, "load: %s",
		     err);
	for (unsigned z = 0; z < MIX_ZONES; z++) {
		const char *idn = z % 3 == 0 ? "b\xc3\xbc" : "m";
		char pattern[64];

		snprintf(pattern, sizeof(pattern), "*@%s%u.test", idn, z);
		snprintf(addr, sizeof(addr), "anyone@%s%u.test", idn, z);
		zone_lookup(t, addr, strlen(addr), d);
		cr_assert_eq(d->action, ZONE_FORWARD, "<%s>: %s", addr, d->reply);
		cr_assert_str_eq(d->rule, pattern, "<%s>", addr);
		snprintf(addr, sizeof(addr), "anyone@mx.%s%u.test", idn, z);
		zone_lookup(t, addr, strlen(addr), d);
		if (z % 5 == 0) {
			cr_assert_eq(d->action, ZONE_FORWARD, "<%s>: %s", addr, d->reply);
			cr_assert_str_eq(d->rule, pattern, "<%s>", addr);
		} else {
			cr_assert_eq(d->action, ZONE_REFUSE, "<%s>", addr);
			cr_assert_str_eq(d->reply, "550 5.7.1 Relaying denied", "<%s>", addr);
		}
		snprintf(addr, sizeof(addr), "anyone@q%u.test", z);
		zone_lookup(t, addr, strlen(addr), d);
		cr_assert_str_eq(d->reply, "550 5.7.1 Relaying denied", "<%s>", addr);
	}
	free(d);
	free(text);
	zone_table_free(t);
}
