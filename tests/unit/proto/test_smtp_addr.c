/*
 * test_smtp_addr.c -- RFC 5321 Mailbox grammar: dot-string and quoted local
 * parts, domains and address literals, SMTPUTF8, and the length limits at
 * N-1, N and N+1.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "proto/smtp_addr.h"

struct addr_case {
	const char *in; /* mailbox */
	bool utf8;	/* allow_utf8 */
	int rc;		/* expected return */
	bool quoted;	/* expected out.quoted (when rc == 0) */
	bool literal;	/* expected out.literal (when rc == 0) */
};

#define OK  0
#define BAD (-SLUICE_ESYNTAX)
#define BIG (-SLUICE_ELIMIT)

static const struct addr_case addr_cases[] = {
    {"user@example.org", false, OK, false, false},
    {"a@b", false, OK, false, false},
    {"first.last@sub.example.org", false, OK, false, false},
    {"x!#$%&'*+-/=?^_`{|}~@example.org", false, OK, false, false},
    {"USER@EXAMPLE.ORG", false, OK, false, false},
    {"a@1.2.3.example", false, OK, false, false},
    {"a@x-y.example", false, OK, false, false},
    {"a@123", false, OK, false, false},
    {"\"john doe\"@example.org", false, OK, true, false},
    {"\"\"@example.org", false, OK, true, false},
    {"\"a\\\"b\"@example.org", false, OK, true, false},
    {"\"a\\\\b\"@example.org", false, OK, true, false},
    {"\"a@b\"@example.org", false, OK, true, false},
    {"a@[192.0.2.1]", false, OK, false, true},
    {"a@[0.0.0.0]", false, OK, false, true},
    {"a@[255.255.255.255]", false, OK, false, true},
    {"a@[IPv6:2001:db8::1]", false, OK, false, true},
    {"a@[ipv6:2001:db8::1]", false, OK, false, true},
    {"a@[IPv6:1:2:3:4:5:6:7:8]", false, OK, false, true},
    {"a@[IPv6:::]", false, OK, false, true},
    {"a@[IPv6:::1]", false, OK, false, true},
    {"a@[IPv6:1::]", false, OK, false, true},
    {"a@[IPv6:1:2:3:4:5:6::]", false, OK, false, true},
    {"a@[IPv6:1:2:3:4:5:6:1.2.3.4]", false, OK, false, true},
    {"a@[IPv6:::ffff:192.0.2.1]", false, OK, false, true},
    {"a@[IPv6:1:2:3:4::1.2.3.4]", false, OK, false, true},

    {"", false, BAD, false, false},
    {"@", false, BAD, false, false},
    {"user", false, BAD, false, false},
    {"user@", false, BAD, false, false},
    {"@example.org", false, BAD, false, false},
    {".a@example.org", false, BAD, false, false},
    {"a.@example.org", false, BAD, false, false},
    {"a..b@example.org", false, BAD, false, false},
    {"a b@example.org", false, BAD, false, false},
    {"a(b)@example.org", false, BAD, false, false},
    {"a,b@example.org", false, BAD, false, false},
    {"a@b@example.org", false, BAD, false, false},
    {"\"a@example.org", false, BAD, false, false},
    {"\"a\"b@example.org", false, BAD, false, false},
    {"\"a\\\"@example.org", false, BAD, false, false},
    {"\"a\tb\"@example.org", false, BAD, false, false},
    {"a@.example.org", false, BAD, false, false},
    {"a@example.org.", false, BAD, false, false},
    {"a@example..org", false, BAD, false, false},
    {"a@-example.org", false, BAD, false, false},
    {"a@example-.org", false, BAD, false, false},
    {"a@exa_mple.org", false, BAD, false, false},
    {"a@exa mple.org", false, BAD, false, false},
    {"a@[192.0.2.256]", false, BAD, false, false},
    {"a@[192.0.2]", false, BAD, false, false},
    {"a@[192.0.2.1.5]", false, BAD, false, false},
    {"a@[1234.0.2.1]", false, BAD, false, false},
    {"a@[192.0.2.1", false, BAD, false, false},
    {"a@192.0.2.1]", false, BAD, false, false},
    {"a@[]", false, BAD, false, false},
    {"a@[IPv6:]", false, BAD, false, false},
    {"a@[IPv6:1:2:3:4:5:6:7]", false, BAD, false, false},
    {"a@[IPv6:1:2:3:4:5:6:7:8:9]", false, BAD, false, false},
    {"a@[IPv6:1:2:3:4:5:6:7::]", false, BAD, false, false},
    {"a@[IPv6:1::2::3]", false, BAD, false, false},
    {"a@[IPv6:12345::1]", false, BAD, false, false},
    {"a@[IPv6:g::1]", false, BAD, false, false},
    {"a@[IPv6:1:]", false, BAD, false, false},
    {"a@[IPv6::1]", false, BAD, false, false},
    {"a@[IPv6:1:2:3:4:5:6:7:1.2.3.4]", false, BAD, false, false},
    {"a@[IPv6:1.2.3.4::1]", false, BAD, false, false},
    {"a@[tag:content]", false, BAD, false, false},
    {"a@[2001:db8::1]", false, BAD, false, false},

    /* SMTPUTF8 (RFC 6531) */
    {"\xc3\xa9l\xc3\xa8ve@example.org", false, BAD, false, false},
    {"\xc3\xa9l\xc3\xa8ve@example.org", true, OK, false, false},
    {"user@\xc3\xa9"
     "cole.example",
     false, BAD, false, false},
    {"user@\xc3\xa9"
     "cole.example",
     true, OK, false, false},
    {"\"\xc3\xa9 x\"@example.org", true, OK, true, false},
    {"\xe2\x82\xac@example.org", true, OK, false, false},
    {"\xf0\x9f\x98\x80@example.org", true, OK, false, false},
    {"\xc3@example.org", true, BAD, false, false},
    {"\xc0\xaf@example.org", true, BAD, false, false},
    {"\xe0\x80\xaf@example.org", true, BAD, false, false},
    {"\xed\xa0\x80@example.org", true, BAD, false, false},
    {"\xf4\x90\x80\x80@example.org", true, BAD, false, false},
    {"\xf8\x88\x80\x80\x80@example.org", true, BAD, false, false},
    {"\x80@example.org", true, BAD, false, false},
    {"a@\xc3\xa9-.example", true, BAD, false, false},
    {"a@[\xc3\xa9]", true, BAD, false, false},
};

Test(smtp_addr, table_of_mailboxes)
{
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		struct smtp_addr a;
		int rc = smtp_addr_parse(c->in, strlen(c->in), c->utf8, &a);
		cr_expect_eq(rc, c->rc, "[%s] utf8=%d: rc %d, want %d", c->in, c->utf8, rc, c->rc);
		if (rc == 0 && c->rc == 0) {
			cr_expect_eq(a.quoted, c->quoted, "[%s] quoted", c->in);
			cr_expect_eq(a.literal, c->literal, "[%s] literal", c->in);
			cr_expect_eq(a.local.off, 0, "[%s]", c->in);
			cr_expect_eq(a.domain.off, a.local.len + 1, "[%s]", c->in);
			cr_expect_eq(a.domain.off + a.domain.len, strlen(c->in), "[%s]", c->in);
		}
	}
}

Test(smtp_addr, spans_point_at_local_part_and_domain)
{
	const char in[] = "\"a b\"@[IPv6:::1]";
	struct smtp_addr a;
	cr_assert_eq(smtp_addr_parse(in, sizeof(in) - 1, false, &a), 0);
	cr_assert_eq(a.local.off, 0);
	cr_assert_eq(a.local.len, 5);
	cr_assert_eq(a.domain.off, 6);
	cr_assert_eq(a.domain.len, 10);
	cr_assert(a.quoted);
	cr_assert(a.literal);
	cr_assert_not(a.utf8);
}

Test(smtp_addr, utf8_flag_is_set_only_for_non_ascii)
{
	struct smtp_addr a;
	cr_assert_eq(smtp_addr_parse("a@b.example", 11, true, &a), 0);
	cr_assert_not(a.utf8);
	const char d[] = "a@\xc3\xa9.example";
	cr_assert_eq(smtp_addr_parse(d, sizeof(d) - 1, true, &a), 0);
	cr_assert(a.utf8);
	const char l[] = "\xc3\xa9@b.example";
	cr_assert_eq(smtp_addr_parse(l, sizeof(l) - 1, true, &a), 0);
	cr_assert(a.utf8);
}

static int
parse_sized(size_t local, size_t domain_len)
{
	/* local part of `local` 'l's; domain of labels "ddd...d" joined by dots */
	char *b = malloc(local + 1 + domain_len);
	memset(b, 'l', local);
	b[local] = '@';
	char *d = b + local + 1;
	for (size_t i = 0; i < domain_len; i++)
		d[i] = (i % 60 == 59) ? '.' : 'd'; /* labels of 59 octets */
	if (domain_len > 0 && d[domain_len - 1] == '.')
		d[domain_len - 1] = 'd';
	struct smtp_addr a;
	int rc = smtp_addr_parse(b, local + 1 + domain_len, false, &a);
	free(b);
	return rc;
}

Test(smtp_addr, local_part_limit_at_n_minus_1_n_and_n_plus_1)
{
	cr_assert_eq(parse_sized(SMTP_ADDR_MAX_LOCAL - 1, 10), 0);
	cr_assert_eq(parse_sized(SMTP_ADDR_MAX_LOCAL, 10), 0);
	cr_assert_eq(parse_sized(SMTP_ADDR_MAX_LOCAL + 1, 10), -SLUICE_ELIMIT);
}

Test(smtp_addr, quoted_local_part_limit_counts_the_quotes)
{
	char b[80];
	struct smtp_addr a;
	for (size_t inner = 61; inner <= 63; inner++) {
		b[0] = '"';
		memset(b + 1, 'q', inner);
		memcpy(b + 1 + inner, "\"@x", 3);
		int rc = smtp_addr_parse(b, inner + 4, false, &a);
		/* inner + 2 quotes: 63 and 64 fit, 65 does not */
		cr_assert_eq(rc, inner + 2 <= SMTP_ADDR_MAX_LOCAL ? 0 : -SLUICE_ELIMIT, "inner %zu",
			     inner);
	}
}

Test(smtp_addr, domain_limit_at_n_minus_1_n_and_n_plus_1)
{
	cr_assert_eq(parse_sized(1, SMTP_ADDR_MAX_DOMAIN - 1), 0);
	cr_assert_eq(parse_sized(1, SMTP_ADDR_MAX_DOMAIN), 0);
	cr_assert_eq(parse_sized(1, SMTP_ADDR_MAX_DOMAIN + 1), -SLUICE_ELIMIT);
	cr_assert(smtp_addr_is_domain(
		      "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", 70,
		      false) == false);
}

static bool
label_ok(size_t len)
{
	char b[80];
	memset(b, 'x', len);
	memcpy(b + len, ".example", 8);
	return smtp_addr_is_domain(b, len + 8, false);
}

Test(smtp_addr, label_limit_at_n_minus_1_n_and_n_plus_1)
{
	cr_assert(label_ok(SMTP_ADDR_MAX_LABEL - 1));
	cr_assert(label_ok(SMTP_ADDR_MAX_LABEL));
	cr_assert_not(label_ok(SMTP_ADDR_MAX_LABEL + 1));
}

Test(smtp_addr, postmaster_is_recognised_in_any_case_and_nothing_else)
{
	cr_assert(smtp_addr_is_postmaster("postmaster", 10));
	cr_assert(smtp_addr_is_postmaster("PostMaster", 10));
	cr_assert(smtp_addr_is_postmaster("POSTMASTER", 10));
	cr_assert_not(smtp_addr_is_postmaster("postmaste", 9));
	cr_assert_not(smtp_addr_is_postmaster("postmasters", 11));
	cr_assert_not(smtp_addr_is_postmaster("postmaster@x", 12));
	cr_assert_not(smtp_addr_is_postmaster("p\x0fstmaster", 10));
	struct smtp_addr a;
	cr_assert_lt(smtp_addr_parse("postmaster", 10, false, &a), 0,
		     "bare postmaster is not a Mailbox");
}

Test(smtp_addr, utf8_decoder_rejects_malformed_sequences)
{
	cr_assert_eq(smtp_addr_utf8_len("\xc3\xa9", 2), 2);
	cr_assert_eq(smtp_addr_utf8_len("\xe2\x82\xac", 3), 3);
	cr_assert_eq(smtp_addr_utf8_len("\xf0\x9f\x98\x80", 4), 4);
	cr_assert_eq(smtp_addr_utf8_len("\xf4\x8f\xbf\xbf", 4), 4);
	cr_assert_eq(smtp_addr_utf8_len("\xc3\xa9", 1), 0, "truncated by n");
	cr_assert_eq(smtp_addr_utf8_len("a", 1), 0, "ASCII is not a sequence");
	cr_assert_eq(smtp_addr_utf8_len("\xc1\xbf", 2), 0, "overlong");
	cr_assert_eq(smtp_addr_utf8_len("\xe0\x9f\xbf", 3), 0, "overlong");
	cr_assert_eq(smtp_addr_utf8_len("\xf0\x8f\xbf\xbf", 4), 0, "overlong");
	cr_assert_eq(smtp_addr_utf8_len("\xed\xbf\xbf", 3), 0, "surrogate");
	cr_assert_eq(smtp_addr_utf8_len("\xf4\x90\x80\x80", 4), 0, "above U+10FFFF");
	cr_assert_eq(smtp_addr_utf8_len("\xe2\x28\xa1", 3), 0, "bad continuation");
	cr_assert_eq(smtp_addr_utf8_len("", 0), 0);
}

Test(smtp_addr, literal_helper_accepts_only_bracketed_ip)
{
	cr_assert(smtp_addr_is_literal("[127.0.0.1]", 11));
	cr_assert(smtp_addr_is_literal("[IPv6:::1]", 10));
	cr_assert_not(smtp_addr_is_literal("127.0.0.1", 9));
	cr_assert_not(smtp_addr_is_literal("[127.0.0.1", 10));
	cr_assert_not(smtp_addr_is_literal("[", 1));
	cr_assert_not(smtp_addr_is_literal("[]", 2));
	cr_assert_not(smtp_addr_is_literal("[01.2.3.4.]", 11));
}
