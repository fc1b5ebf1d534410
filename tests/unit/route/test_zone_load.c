/*
 * test_zone_load.c -- the zone file loader: accepted syntax (comments, CRLF,
 * options, tls-policy), counts, and one row per error kind with the exact
 * "FILE:LINE: reason" text; the first error wins and nothing is returned.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "route/zone.h"

struct load_case {
	const char *text; /* zone file */
	const char *err;  /* expected message */
};

#define Z "zone a.test\n"

static const struct load_case load_errors[] = {
    {"zone example.com\nzone EXAMPLE.com\n",
     "zones:2: zone example.com declared twice (first at line 1)"},
    {"zone b\xc3\xbc"
     "cher.test\nzone xn--bcher-kva.test\n",
     "zones:2: zone xn--bcher-kva.test declared twice (first at line 1)"},
    {"alice@example.com drop\n",
     "zones:1: no zone declared for example.com (a zone line must come first)"},
    {Z "x@sub.a.test drop\n",
     "zones:2: no zone declared for sub.a.test (a zone line must come first)"},
    {"zone\n", "zones:1: missing zone name"},
    {"zone a.test.\n", "zones:1: trailing dot in domain: 'a.test.'"},
    {"zone a..test\n", "zones:1: empty label in domain: 'a..test'"},
    {"zone -a.test\n", "zones:1: label starts with a hyphen: '-a.test'"},
    {"zone a_b.test\n", "zones:1: invalid character in domain: 'a_b.test'"},
    {"zone xn--zz.test\n", "zones:1: invalid A-label in domain: 'xn--zz.test'"},
    {"zone a.test foo=bar\n", "zones:1: unknown zone option 'foo'"},
    {"zone a.test wildcard\n", "zones:1: zone option 'wildcard' is not key=value"},
    {"zone a.test subaddress=a\n",
     "zones:1: subaddress separator 'a' is not one of #$&'*+-/=?^_`{|}~"},
    {"zone a.test subaddress=%\n",
     "zones:1: subaddress separator '%' is not one of #$&'*+-/=?^_`{|}~"},
    {"zone a.test subaddress=+-+-+-+-+\n", "zones:1: subaddress= takes 1 to 8 characters or off"},
    {"zone a.test subdomains=all\n", "zones:1: subdomains= takes none or wildcard"},
    {"zone a.test local-case=upper\n", "zones:1: local-case= takes insensitive or sensitive"},
    {"zone a.test tag=drop\n", "zones:1: tag= takes keep or append"},
    {"zone a.test tag=keep tag=append\n", "zones:1: zone option 'tag' given twice"},
    {Z "x@a.test\n", "zones:2: missing action"},
    {Z "x@a.test bounce\n", "zones:2: unknown action 'bounce'"},
    {Z "@a.test drop\n", "zones:2: rule address '@a.test' is not local@zone"},
    {Z "x@a.test drop\nX@a.test drop\n", "zones:3: duplicate rule for X@a.test (first at line 2)"},
    {Z "\"x\"@a.test drop\nx@a.test drop\n",
     "zones:3: duplicate rule for x@a.test (first at line 2)"},
    {Z "*@a.test drop\n*@A.TEST drop\n", "zones:3: duplicate rule for *@A.TEST (first at line 2)"},
    {Z "x@a.test drop now\n", "zones:2: unexpected field 'now'"},
    {Z "x@a.test reject 450 5.1.1 No\n", "zones:2: reject needs a 5xx reply code, not '450'"},
    {Z "x@a.test reject 5500 5.1.1 No\n", "zones:2: reject needs a 5xx reply code, not '5500'"},
    {Z "x@a.test reject 550 4.1.1 No\n",
     "zones:2: reject needs a 5.x.x enhanced status code, not '4.1.1'"},
    {Z "x@a.test reject 550 5.1 No\n",
     "zones:2: reject needs a 5.x.x enhanced status code, not '5.1'"},
    {Z "x@a.test reject 550 5.1.1000 No\n",
     "zones:2: reject needs a 5.x.x enhanced status code, not '5.1.1000'"},
    {Z "x@a.test reject 550 5.1.1\n", "zones:2: reject needs a reply text"},
    {Z "x@a.test reject 550 5.1.1   # only a comment\n", "zones:2: reject needs a reply text"},
    {Z "x@a.test reject\n", "zones:2: missing reply code"},
    {Z "x@a.test reject 550\n", "zones:2: missing enhanced status code"},
    {Z "x@a.test reject 550 5.1.1 caf\xc3\xa9\n", "zones:2: reply text must be printable ASCII"},
    {Z "x@a.test defer 550 4.2.1 Later\n", "zones:2: defer needs a 4xx reply code, not '550'"},
    {Z "x@a.test defer 451 5.2.1 Later\n",
     "zones:2: defer needs a 4.x.x enhanced status code, not '5.2.1'"},
    {Z "x@a.test forward\n", "zones:2: forward needs a destination"},
    {Z "x@a.test forward y@b.test|\n", "zones:2: empty destination"},
    {Z "x@a.test forward |y@b.test\n", "zones:2: empty destination"},
    {Z "x@a.test forward y\n", "zones:2: destination is not local@domain: 'y'"},
    {Z "x@a.test forward y@b.test:0\n", "zones:2: port out of range 1-65535: 'y@b.test:0'"},
    {Z "x@a.test forward y@b.test:65536\n", "zones:2: port out of range 1-65535: 'y@b.test:65536'"},
    {Z "x@a.test forward y@b.test:\n", "zones:2: invalid port: 'y@b.test:'"},
    {Z "x@a.test forward y@[300.1.1.1]\n", "zones:2: invalid address literal: 'y@[300.1.1.1]'"},
    {Z "x@a.test forward y@[IPv6:1::2::3]\n",
     "zones:2: invalid address literal: 'y@[IPv6:1::2::3]'"},
    {Z "x@a.test forward y@[192.0.2.1]x\n", "zones:2: invalid address literal: 'y@[192.0.2.1]x'"},
    {Z "x@a.test forward y@b.test.\n", "zones:2: trailing dot in domain: 'y@b.test.'"},
    {Z "x@a.test forward a.@b.test\n", "zones:2: misplaced dot in local part: 'a.@b.test'"},
    {Z "x@a.test forward a(b)@b.test\n",
     "zones:2: invalid character in local part (quote it): 'a(b)@b.test'"},
    {Z "x@a.test forward a@b a@c a@d a@e a@f a@g a@h a@i a@j a@k a@l a@m a@n a@o a@p a@q a@r\n",
     "zones:2: more than 16 destinations"},
    {Z "x@a.test forward a@b|a@c|a@d|a@e|a@f|a@g|a@h|a@i|a@j\n",
     "zones:2: more than 8 fallbacks in one destination"},
    {Z "\"x@a.test drop\n", "zones:2: unterminated quoted string"},
    {Z "x\"y\"@a.test drop\n",
     "zones:2: invalid character in local part (quote it): 'x\"y\"@a.test'"},
    {Z "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@a.test drop\n",
     "zones:2: local part longer than 64 octets: "
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@a.test'"},
    {Z "\xff@a.test drop\n", "zones:2: invalid UTF-8 in local part: '\xff@a.test'"},
    {"verified a@b.test:25\n", "zones:1: a verified address names no port: 'a@b.test:25'"},
    {"verified a\n", "zones:1: destination is not local@domain: 'a'"},
    {"verified\n", "zones:1: missing address"},
    {"verified-domain\n", "zones:1: missing domain"},
    {"verified-domain b.test extra\n", "zones:1: unexpected field 'extra'"},
    {"verified-domain [1.2.3]\n", "zones:1: invalid address literal: '[1.2.3]'"},
    {"tls-policy b.test maybe\n",
     "zones:1: tls-policy takes verify, opportunistic or none, not 'maybe'"},
    {"tls-policy b.test\n", "zones:1: missing tls policy"},
    {"tls-policy b.test none\ntls-policy B.test verify\n",
     "zones:2: tls-policy for b.test given twice (first at line 1)"},
    {"frobnicate x\n", "zones:1: unknown directive 'frobnicate'"},
    {"# c\n\n  \t\nzone a.test\nzone a.test\n",
     "zones:5: zone a.test declared twice (first at line 4)"},
    {"zone a.test\r\nzone a.test\r\n", "zones:2: zone a.test declared twice (first at line 1)"},
    /* first error wins */
    {"bogus\nzone a.test foo=1\n", "zones:1: unknown directive 'bogus'"},
};

TestSuite(zone_load);

Test(zone_load, every_error_kind_names_file_line_and_reason)
{
	for (size_t i = 0; i < ARRAY_SIZE(load_errors); i++) {
		const struct load_case *c = &load_errors[i];
		struct zone_table *t = (struct zone_table *)0x1; /* must stay untouched */
		char err[512];
		int rc =
		    zone_table_load_string(c->text, strlen(c->text), "zones", &t, err, sizeof(err));

		cr_expect_eq(rc, -SLUICE_ESYNTAX, "row %zu: rc %d", i, rc);
		cr_expect_eq(t, (struct zone_table *)0x1, "row %zu: *out was written", i);
		cr_expect_str_eq(err, c->err, "row %zu: got \"%s\"", i, err);
	}
}

Test(zone_load, a_nul_byte_and_an_overlong_line_are_errors)
{
	static const char nul[] = "zone a.test\nx@a.test\0 drop\n";
	struct zone_table *t = NULL;
	char err[256], *big;
	int rc;

	rc = zone_table_load_string(nul, sizeof(nul) - 1, "z", &t, err, sizeof(err));
	cr_expect_eq(rc, -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "z:2: NUL byte in line");

	big = malloc(ZONE_MAX_LINE + 16);
	cr_assert_not_null(big);
	memset(big, '#', ZONE_MAX_LINE + 1);
	big[ZONE_MAX_LINE + 1] = '\n';
	rc = zone_table_load_string(big, ZONE_MAX_LINE + 2, "z", &t, err, sizeof(err));
	cr_expect_eq(rc, -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "z:1: line longer than 8192 octets");
	/* N: a comment line of exactly ZONE_MAX_LINE octets is fine */
	rc = zone_table_load_string(big + 1, ZONE_MAX_LINE + 1, "z", &t, err, sizeof(err));
	cr_expect_eq(rc, 0, "%s", err);
	zone_table_free(t);
	free(big);
	big = NULL;
}

Test(zone_load, a_valid_file_counts_zones_and_rules)
{
	static const char text[] =
	    "# comment\r\n"
	    "\r\n"
	    "zone a.test subaddress=off subdomains=none local-case=insensitive "
	    "tag=keep   # trailing comment\n"
	    "zone b.test subaddress=+-_ subdomains=wildcard local-case=sensitive "
	    "tag=append\n"
	    "x@a.test drop\n"
	    "*@a.test reject 550 5.7.1 Go away # not part of the text\n"
	    "y@b.test defer 451 4.4.5 Later\n" /* 421 is refused: bug_defer_421_is_refused */
	    "\"z z\"@b.test forward \"q|r\"@c.test|s@[IPv6:::1]:25 t@c.test\n"
	    "tls-policy c.test verify\n"
	    "tls-policy d.test opportunistic\n"
	    "tls-policy e.test none\n"
	    "verified-domain c.test\n";
	struct zone_table *t = NULL;
	struct zone_decision *d = malloc(sizeof(*d));
	char err[256];
	int rc = zone_table_load_string(text, sizeof(text) - 1, "z", &t, err, sizeof(err));

	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_eq(zone_table_nzones(t), 2);
	cr_expect_eq(zone_table_nrules(t), 4);
	cr_expect_gt(zone_table_memory(t), 0);
	cr_expect_eq(zone_table_tls_policy(t, "c.test", 6), ZONE_TLS_VERIFY);
	cr_expect_eq(zone_table_tls_policy(t, "D.TEST", 6), ZONE_TLS_OPPORTUNISTIC);
	cr_expect_eq(zone_table_tls_policy(t, "e.test", 6), ZONE_TLS_NONE);
	cr_expect_eq(zone_table_tls_policy(t, "f.test", 6), ZONE_TLS_UNSET);

	zone_lookup(t, "q@a.test", 8, d);
	cr_expect_eq(d->action, ZONE_REJECT);
	cr_expect_str_eq(d->reply, "550 5.7.1 Go away");
	zone_lookup(t, "\"z z\"@b.test", 12, d);
	cr_assert_eq(d->action, ZONE_FORWARD);
	cr_assert_eq(d->ngroups, 2);
	cr_assert_eq(d->groups[0].n, 1); /* [IPv6:::1] is not verified */
	cr_expect_str_eq(d->groups[0].d[0].addr, "\"q|r\"@c.test");
	cr_expect_str_eq(d->groups[1].d[0].addr, "t@c.test");
	cr_expect_eq(d->unverified, 1);
	zone_table_free(t);
	free(d);
	d = NULL;
}

Test(zone_load, an_empty_file_is_an_empty_table)
{
	struct zone_table *t = NULL;
	struct zone_decision *d = malloc(sizeof(*d));
	char err[64];

	cr_assert_eq(zone_table_load_string("", 0, "z", &t, err, sizeof(err)), 0);
	cr_expect_eq(zone_table_nzones(t), 0);
	zone_lookup(t, "a@b.test", 8, d);
	cr_expect_str_eq(d->reply, "550 5.7.1 Relaying denied");
	zone_table_free(t);
	free(d);
	d = NULL;
}

Test(zone_load, a_file_loads_and_a_missing_file_says_why)
{
	char path[] = "/tmp/test_zone_XXXXXX", err[512], want[600];
	struct zone_table *t = NULL;
	int fd = mkstemp(path), rc;
	FILE *f;

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	fputs("zone a.test\nx@a.test drop\nzone a.test\n", f);
	fclose(f);
	rc = zone_table_load(path, &t, err, sizeof(err));
	cr_expect_eq(rc, -SLUICE_ESYNTAX);
	snprintf(want, sizeof(want), "%s:3: zone a.test declared twice (first at line 1)", path);
	cr_expect_str_eq(err, want);

	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("zone a.test\nx@a.test drop", f); /* no final LF */
	fclose(f);
	rc = zone_table_load(path, &t, err, sizeof(err));
	cr_expect_eq(rc, 0, "%s", err);
	cr_expect_eq(zone_table_nrules(t), 1);
	zone_table_free(t);
	unlink(path);

	rc = zone_table_load(path, &t, err, sizeof(err));
	cr_expect_eq(rc, -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	cr_expect_str_eq(err, want);
}

/*
 * Review finding: the loader mapped the file, so a writer truncating it
 * during a (re)load killed the process with SIGBUS. Now it reads into a
 * buffer: a load racing with truncation either succeeds or fails cleanly.
 * Criterion runs this in its own process, so a SIGBUS shows as a crash.
 */
struct truncator {
	const char *path;    /* file to shrink and regrow */
	const char *content; /* full text */
	size_t len;	     /* bytes of content */
	volatile int stop;   /* set by the test when the loads are done */
};

static void *
truncate_loop(void *arg)
{
	struct truncator *tr = arg;

	for (int i = 0; i < 2000 && !tr->stop; i++) {
		int fd = open(tr->path, O_WRONLY | O_TRUNC);

		if (fd < 0)
			break;
		/* rewrite in two halves, so loads also see half-written files */
		(void)!write(fd, tr->content, tr->len / 2);
		(void)!write(fd, tr->content + tr->len / 2, tr->len - tr->len / 2);
		close(fd);
	}
	return NULL;
}

Test(zone_load, bug_sigbus_when_zone_file_truncated_during_load)
{
	char path[] = "/tmp/test_zone_trunc_XXXXXX", msg[512];
	size_t cap = 4 << 20, len = 0, full = 0;
	char *text = malloc(cap);
	struct truncator tr;
	pthread_t th;
	int fd = mkstemp(path);

	cr_assert(fd >= 0 && text != NULL);
	len += (size_t)snprintf(text + len, cap - len,
				"zone example.com\nverified-domain dest.test\n");
	while (len + 64 < cap - 64 && full < 60000) {
		len += (size_t)snprintf(text + len, cap - len,
					"u%zu@example.com forward u%zu@dest.test\n", full, full);
		full++;
	}
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	tr = (struct truncator){.path = path, .content = text, .len = len};
	cr_assert_eq(pthread_create(&th, NULL, truncate_loop, &tr), 0);
	for (int i = 0; i < 30; i++) {
		struct zone_table *t = NULL;

		if (zone_table_load(path, &t, msg, sizeof(msg)) == 0) {
			/* a file caught between two writes may hold fewer rules, never more */
			cr_assert_leq(zone_table_nrules(t), full);
			zone_table_free(t);
		}
	}
	tr.stop = 1;
	pthread_join(th, NULL);
	unlink(path);
	free(text);
}

/* --- regressions and limits --- */

/* Load text; 0 or the error message in err. */
static int
load_err(const char *text, size_t len, struct zone_table **t, char *err, size_t errlen)
{
	*t = NULL;
	return zone_table_load_string(text, len, "zones", t, err, errlen);
}

/* A rule line with a reply of exactly n octets: "550 5.7.1 " + text. */
static size_t
reply_file(char *buf, size_t cap, const char *act, const char *code, size_t n)
{
	int k = snprintf(buf, cap, "zone a.test\nx@a.test %s %s ", act, code);

	cr_assert(k > 0 && (size_t)k + n + 2 < cap);
	memset(buf + k, 'x', n - strlen(code) - 1);
	k += (int)(n - strlen(code) - 1);
	buf[k++] = '\n';
	buf[k] = '\0';
	return (size_t)k;
}

Test(zone_load, bug_reply_line_over_510_octets_is_refused)
{
	char text[1024], err[256];
	struct zone_table *t;
	struct zone_decision *d = malloc(sizeof(*d));
	size_t len;

	cr_assert_not_null(d);
	/* 510 octets: code + enh + text, 512 with the CRLF */
	len = reply_file(text, sizeof(text), "reject", "550 5.7.1", 510);
	cr_assert_eq(load_err(text, len, &t, err, sizeof(err)), 0, "%s", err);
	zone_lookup(t, "x@a.test", 8, d);
	cr_expect_eq(d->action, ZONE_REJECT);
	cr_expect_eq(strlen(d->reply), 510);
	zone_table_free(t);
	len = reply_file(text, sizeof(text), "defer", "451 4.2.1", 510);
	cr_assert_eq(load_err(text, len, &t, err, sizeof(err)), 0, "%s", err);
	zone_table_free(t);

	len = reply_file(text, sizeof(text), "reject", "550 5.7.1", 511);
	cr_expect_eq(load_err(text, len, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect_null(t);
	cr_expect_str_eq(err, "zones:2: reply longer than 510 octets");
	len = reply_file(text, sizeof(text), "defer", "451 4.2.1", 600);
	cr_expect_eq(load_err(text, len, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "zones:2: reply longer than 510 octets");
	free(d);
	d = NULL;
}

Test(zone_load, bug_defer_421_is_refused)
{
	static const char text[] = "zone a.test\n"
				   "\n"
				   "x@a.test defer 421 4.4.5 Closing\n";
	struct zone_table *t;
	char err[256];

	cr_expect_eq(load_err(text, sizeof(text) - 1, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect_null(t);
	cr_expect_str_eq(err, "zones:3: defer cannot use 421 (it means closing the connection); "
			      "use 450 or 451");
	/* other 4xx codes are fine */
	cr_expect_eq(
	    load_err("zone a.test\nx@a.test defer 420 4.4.5 Later\n", 43, &t, err, sizeof(err)), 0,
	    "%s", err);
	zone_table_free(t);
}

Test(zone_load, bug_lookup_rechecks_local_part_syntax_empty_quoted_rule)
{
	static const char text[] = "zone a.test\n\"\"@a.test drop\n";
	struct zone_table *t;
	char err[256];

	cr_expect_eq(load_err(text, sizeof(text) - 1, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "zones:2: empty local part: '\"\"@a.test'");
}

Test(zone_load, limits_16_groups_and_8_fallbacks)
{
	char text[4096], err[256];
	struct zone_table *t;
	struct zone_decision *d = malloc(sizeof(*d));
	int k;

	cr_assert_not_null(d);
	/* 16 destinations, the last one with 8 fallbacks: accepted, all used */
	k = snprintf(text, sizeof(text), "zone a.test\nverified-domain d.test\nx@a.test forward");
	for (int g = 1; g <= 16; g++)
		k += snprintf(text + k, sizeof(text) - (size_t)k, " g%d@d.test", g);
	for (int f = 2; f <= 8; f++)
		k += snprintf(text + k, sizeof(text) - (size_t)k, "|f%d@d.test", f);
	text[k++] = '\n';
	cr_assert_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), 0, "%s", err);
	zone_lookup(t, "x@a.test", 8, d);
	cr_assert_eq(d->action, ZONE_FORWARD);
	cr_expect_eq(d->ngroups, 16);
	cr_expect_eq(d->groups[15].n, 8);
	cr_expect_str_eq(d->groups[15].d[7].addr, "f8@d.test");
	zone_table_free(t);

	/* 17 destinations, or 9 fallbacks: errors */
	k -= 1;
	k += snprintf(text + k, sizeof(text) - (size_t)k, "|f9@d.test\n");
	cr_expect_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "zones:3: more than 8 fallbacks in one destination");
	k = snprintf(text, sizeof(text), "zone a.test\nx@a.test forward");
	for (int g = 1; g <= 17; g++)
		k += snprintf(text + k, sizeof(text) - (size_t)k, " g%d@d.test", g);
	text[k++] = '\n';
	cr_expect_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "zones:2: more than 16 destinations");
	free(d);
	d = NULL;
}

Test(zone_load, limits_subaddress_8_characters)
{
	static const char ok[] = "zone a.test subaddress=+-=_~^#$\n"
				 "x@a.test drop\n";
	static const char bad[] = "zone a.test subaddress=+-=_~^#$&\n";
	struct zone_table *t;
	struct zone_decision *d = malloc(sizeof(*d));
	char err[256];

	cr_assert_not_null(d);
	cr_assert_eq(load_err(ok, sizeof(ok) - 1, &t, err, sizeof(err)), 0, "%s", err);
	zone_lookup(t, "x$y@a.test", 10, d); /* the 8th separator works */
	cr_expect_eq(d->action, ZONE_DROP);
	zone_table_free(t);
	cr_expect_eq(load_err(bad, sizeof(bad) - 1, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "zones:1: subaddress= takes 1 to 8 characters or off");
	free(d);
	d = NULL;
}

Test(zone_load, limits_local_part_64_octets)
{
	char l64[65], text[512], err[256];
	struct zone_table *t;
	int k;

	memset(l64, 'a', 64);
	l64[64] = '\0';
	k = snprintf(text, sizeof(text), "zone a.test\n%s@a.test drop\n\"%s\"@a.test drop\n", l64,
		     "b b bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	cr_assert_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(zone_table_nrules(t), 2);
	zone_table_free(t);
	k = snprintf(text, sizeof(text), "zone a.test\n%sa@a.test drop\n", l64);
	cr_expect_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect(strstr(err, "zones:2: local part longer than 64 octets") == err, "%s", err);
	k = snprintf(text, sizeof(text), "zone a.test\n\"%s \"@a.test drop\n", l64);
	cr_expect_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect(strstr(err, "zones:2: local part longer than 64 octets") == err, "%s", err);
}

/* "zone NAME\n" for a name of `total` octets: 63-octet labels, the last one shorter. */
static int
domain_file(char *text, size_t cap, size_t total)
{
	int k = snprintf(text, cap, "zone ");

	for (size_t i = 0; i < total; i++)
		text[k++] = (i % 64 == 63) ? '.' : 'a'; /* 63-octet labels */
	text[k++] = '\n';
	text[k] = '\0';
	return k;
}

Test(zone_load, limits_domain_253_octets_and_label_63)
{
	char text[600], err[256];
	struct zone_table *t;
	struct zone_decision *d = malloc(sizeof(*d));
	char addr[300];
	int k;

	cr_assert_not_null(d);
	/* 253 octets: 63.63.63.61 */
	k = domain_file(text, sizeof(text), 253);
	cr_assert_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), 0, "%s", err);
	memcpy(addr, "x@", 2);
	memcpy(addr + 2, text + 5, 253);
	zone_lookup(t, addr, 255, d);
	cr_expect_eq(d->action, ZONE_REFUSE);
	cr_expect(strncmp(d->reply, "550 5.1.1 ", 10) == 0, "%s", d->reply); /* ours */
	zone_table_free(t);
	/* 254 octets */
	k = domain_file(text, sizeof(text), 254);
	cr_expect_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect(strstr(err, "zones:1: domain longer than 253 octets") == err, "%s", err);
	/* a label of 63 octets, then 64 */
	k = snprintf(text, sizeof(text), "zone %.63s.test\n",
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	cr_assert_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), 0, "%s", err);
	zone_table_free(t);
	k = snprintf(text, sizeof(text), "zone %.64s.test\n",
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	cr_expect_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_expect(strstr(err, "zones:1: label longer than 63 octets") == err, "%s", err);
	free(d);
	d = NULL;
}

/* The prescan counts zone lines that start with "zone "; an indented one is a zone all
 * the same. The domains set must make room (it refused with "out of memory"). */
Test(zone_load, bug_indented_zone_lines_overflow_the_domains_set)
{
	static char text[16384];
	struct zone_decision *d = malloc(sizeof(*d));
	char addr[64];
	struct zone_table *t;
	char err[256];
	int k = 0;

	cr_assert_not_null(d);
	for (int i = 0; i < 200; i++)
		k += snprintf(text + k, sizeof(text) - (size_t)k,
			      "%szone z%d.test\nx@z%d.test drop\n", i % 2 ? " " : "\t", i, i);
	cr_assert_eq(load_err(text, (size_t)k, &t, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(zone_table_nzones(t), 200);
	for (int i = 0; i < 200; i++) {
		snprintf(addr, sizeof(addr), "x@z%d.test", i);
		zone_lookup(t, addr, strlen(addr), d);
		cr_expect_eq(d->action, ZONE_DROP, "%s: %s", addr, d->reply);
	}
	free(d);
	zone_table_free(t);
}
