/*
 * test_zone_split.c -- the one-pass AVX2 split of the usual address and the
 * byte-wise split decide alike. zone_lookup() takes the one pass for an address
 * of at most 64 octets made of letters, digits, "+-_." before the '@' and an
 * ASCII domain, and the byte-wise path for anything else; a mistake in the fast
 * path would let an address through that the grammar refuses (a relay attempt
 * reaching a catch-all) or refuse one it takes. So random addresses, mostly
 * near the usual shape with every kind of defect mixed in, are looked up both
 * ways (zone_lookup_one_pass) and their decisions compared whole: action,
 * reply, zone, rule and destinations (tags appended included).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/zone.h"

#define SPLIT_ROUNDS 200000u /* random addresses compared */

static const char split_zones[] = "zone example.com subdomains=wildcard subaddress=+-_\n"
				  "alice@example.com forward alice@dest.test\n"
				  "bob.smith@example.com forward bob@dest.test\n"
				  "a_b@example.com forward ab@dest.test\n"
				  "*@example.com forward catch@dest.test\n"
				  "spam@example.com drop\n"
				  "old@example.com reject 550 5.1.1 Gone\n"
				  "zone own.test\n"
				  "bob@own.test forward bob@dest.test\n"
				  "x-y@own.test defer 451 4.2.1 Busy\n"
				  "zone tag.test subaddress=-+ tag=append\n"
				  "alice@tag.test forward alice@dest.test \"q r\"@dest.test\n"
				  "zone case.test local-case=sensitive\n"
				  "Alice@case.test forward alice@dest.test\n"
				  "alice@case.test forward lower@dest.test\n"
				  "zone b\xc3\xbc"
				  "cher.test\n"
				  "bob@b\xc3\xbc"
				  "cher.test forward bob@dest.test\n"
				  "verified-domain dest.test\n";

/* Pieces the generator joins; the defects are in their own lists. */
static const char *const split_locals[] = {
    "alice",
    "ALICE",
    "Alice",
    "bob",
    "bob.smith",
    "Bob.Smith",
    "a_b",
    "alice+x",
    "alice-x",
    "alice_x",
    "alice+x+y",
    "x-y",
    "spam",
    "old",
    "nobody",
    "q",
    "a.b.c",
    "0123456789",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
static const char *const split_domains[] = {"example.com",
					    "EXAMPLE.COM",
					    "Example.Com",
					    "own.test",
					    "tag.test",
					    "case.test",
					    "sub.example.com",
					    "a.b.example.com",
					    "other.test",
					    "xn--bcher-kva.test",
					    "b\xc3\xbc"
					    "cher.test",
					    "dest.test",
					    "e",
					    "a-b.example.com"};
static const char *const split_junk[] = {
    ".",	"..",	"@",	"%",	"!",	"#", "=", "~", "\"", " ",
    "\t",	"\\",	"[",	"]",	":",	"<", ">", "(", ",",  ";",
    "\xc3\xa9", "\x80", "\xff", "\x7f", "\x01", "-", "+", "_", "A",  "Z"};

static uint64_t
split_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

#define PICK(x, a) ((a)[split_rand(x) % (sizeof(a) / sizeof((a)[0]))])

/* Append s to buf[*n..cap), cut at cap. */
static void
split_put(char *buf, size_t *n, size_t cap, const char *s)
{
	size_t l = strlen(s);

	if (l > cap - *n)
		l = cap - *n;
	memcpy(buf + *n, s, l);
	*n += l;
}

/* One random address into buf (at most cap bytes): a local part, '@', a domain, each
 * with a defect now and then (a junk byte inserted, an '@' missing or doubled, a
 * trailing dot, a length past 64). Its length. */
static size_t
split_address(uint64_t *x, char *buf, size_t cap)
{
	size_t n = 0;
	unsigned r = (unsigned)(split_rand(x) % 100);

	split_put(buf, &n, cap, PICK(x, split_locals));
	if (r < 20)
		split_put(buf, &n, cap, PICK(x, split_junk));
	if (r < 8)
		split_put(buf, &n, cap, PICK(x, split_locals));
	if (r != 50)
		split_put(buf, &n, cap, "@");
	if (r == 51)
		split_put(buf, &n, cap, "@");
	split_put(buf, &n, cap, PICK(x, split_domains));
	if (r >= 60 && r < 72) {
		size_t at = n - (split_rand(x) % 4);
		const char *j = PICK(x, split_junk);

		if (at < n && strlen(j) == 1) /* replace a byte of the domain */
			buf[at] = j[0];
		else
			split_put(buf, &n, cap, j);
	}
	if (r >= 72 && r < 75)
		split_put(buf, &n, cap, ".");
	if (r >= 75 && r < 80) /* around the 32- and 64-octet edges */
		while (n < 30 + split_rand(x) % 40)
			split_put(buf, &n, cap, "a");
	return n;
}

/* The decision as one comparable line: JSON (action, zone, rule, destinations) and
 * the reply, which the JSON leaves out for a forward. */
static void
split_describe(const struct zone_decision *d, char *buf, size_t cap)
{
	size_t n = zone_decision_json(d, buf, cap);

	snprintf(buf + n, cap - n, " reply=%s", d->reply);
}

Test(zone_split, the_one_pass_and_the_byte_wise_split_decide_alike)
{
	struct zone_table *t = NULL;
	struct zone_decision *fast = malloc(sizeof(*fast)), *slow = malloc(sizeof(*slow));
	char err[256];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned by_action[5] = {0}, eligible = 0;

	if (!__builtin_cpu_supports("avx2"))
		cr_skip_test("no AVX2 on this CPU: both lookups would take the byte-wise path");
	cr_assert_not_null(fast);
	cr_assert_not_null(slow);
	cr_assert_eq(zone_table_load_string(split_zones, sizeof(split_zones) - 1, "split", &t, err,
					    sizeof(err)),
		     0, "load: %s", err);
	for (unsigned i = 0; i < SPLIT_ROUNDS; i++) {
		char addr[96], a[1024], b[1024];
		size_t len = split_address(&x, addr, sizeof(addr) - 1);

		zone_lookup_one_pass(true);
		zone_lookup(t, addr, len, fast);
		zone_lookup_one_pass(false);
		zone_lookup(t, addr, len, slow);
		split_describe(fast, a, sizeof(a));
		split_describe(slow, b, sizeof(b));
		cr_assert_str_eq(a, b, "address '%.*s' (%zu octets)", (int)len, addr, len);
		addr[len] = '\0'; /* for strspn: the lookups saw len octets, no NUL */
		by_action[fast->action]++;
		eligible +=
		    len <= 64 && strspn(addr, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
					      "VWXYZ0123456789+-_.@") == len;
	}
	zone_lookup_one_pass(true);
	/* the mix reached every kind of decision, and most addresses were the kind the
	 * one pass takes */
	cr_assert_gt(by_action[ZONE_FORWARD], SPLIT_ROUNDS / 10);
	cr_assert_gt(by_action[ZONE_REFUSE], SPLIT_ROUNDS / 10);
	cr_assert_gt(by_action[ZONE_DROP], 100);
	cr_assert_gt(by_action[ZONE_REJECT], 100);
	cr_assert_gt(by_action[ZONE_DEFER], 100);
	cr_assert_gt(eligible, SPLIT_ROUNDS / 2, "%u of %u the one pass could take", eligible,
		     SPLIT_ROUNDS);
	free(fast);
	free(slow);
	zone_table_free(t);
}
