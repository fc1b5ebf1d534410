/*
 * test_smtp_reply.c -- upstream reply framing (multi-line, strict codes,
 * bare LF/CR, the SMTP_REPLY_MAX cap at N-1/N/N+1, pipelined replies),
 * line access, enhanced status codes and EHLO capabilities.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_reply.h"
#include "tests/support/split_feeder.h"

struct reply_ctx {
	struct smtp_reply r; /* parser under test */
};

static void
reply_reset(void *ctx)
{
	struct reply_ctx *c = ctx;
	memset(&c->r, 0, sizeof(c->r));
}

static size_t
reply_feed(void *ctx, const char *p, size_t n, struct split_log *log)
{
	struct reply_ctx *c = ctx;
	if (c->r.err)
		return n; /* stream unusable after ERR: swallow the rest */
	enum smtp_reply_status st;
	size_t k = smtp_reply_feed(&c->r, p, n, &st);
	if (st == SMTP_REPLY_DONE) {
		split_log_add(log, "DONE %u/%u:", c->r.code, c->r.nlines);
		split_log_bytes(log, c->r.text, c->r.len);
		split_log_add(log, "|");
	} else if (st == SMTP_REPLY_ERR) {
		split_log_add(log, "ERR|");
		return n;
	} else {
		cr_assert_eq(k, n, "AGAIN must consume everything");
	}
	return k;
}

static void
reply_finish(void *ctx, struct split_log *log)
{
	struct reply_ctx *c = ctx;
	if (!c->r.err && !c->r.done && c->r.len > 0)
		split_log_add(log, "PARTIAL");
}

static void
expect_replies(const char *in, size_t n, const char *want, const char *label)
{
	static struct reply_ctx c;
	struct split_target t = {&c, reply_reset, reply_feed, reply_finish};
	struct split_log whole = {0};
	char why[16384];
	int rc = split_check_all(&t, in, n, &whole, why, sizeof(why));
	cr_expect_eq(rc, 0, "%s: chunking changed the events: %s", label, why);
	if (want)
		cr_expect_str_eq(split_log_str(&whole), want, "%s:\n  got:  %s\n  want: %s", label,
				 split_log_str(&whole), want);
	split_log_free(&whole);
}

#define S(lit) lit, sizeof(lit) - 1

struct reply_case {
	const char *label; /* what the row shows */
	const char *in;	   /* bytes from the upstream */
	size_t n;	   /* length of in */
	const char *want;  /* expected trace */
};

static const struct reply_case reply_cases[] = {
    {"single line", S("250 OK\r\n"), "DONE 250/1:250 OK\\r\\n|"},
    {"code only", S("250\r\n"), "DONE 250/1:250\\r\\n|"},
    {"multi-line", S("250-mx.example\r\n250-SIZE 100\r\n250 PIPELINING\r\n"),
     "DONE 250/3:250-mx.example\\r\\n250-SIZE 100\\r\\n250 PIPELINING\\r\\n|"},
    {"multi-line ending with code only", S("250-a\r\n250\r\n"), "DONE 250/2:250-a\\r\\n250\\r\\n|"},
    {"pipelined replies", S("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
     "DONE 250/1:250 2.1.0 Ok\\r\\n|DONE 250/1:250 2.1.5 Ok\\r\\n|DONE 354/1:354 go\\r\\n|"},
    {"empty text after dash", S("220-\r\n220 \r\n"), "DONE 220/2:220-\\r\\n220 \\r\\n|"},
    {"incomplete", S("250-a\r\n250 b"), "PARTIAL"},
    {"codes differ", S("250-a\r\n251 b\r\n"), "ERR|"},
    {"two digits", S("25 x\r\n"), "ERR|"},
    {"letters", S("abc x\r\n"), "ERR|"},
    {"first digit 1", S("150 x\r\n"), "ERR|"},
    {"first digit 6", S("650 x\r\n"), "ERR|"},
    {"second digit 6", S("260 x\r\n"), "ERR|"},
    {"bad separator", S("250x\r\n"), "ERR|"},
    {"bare LF", S("250 ok\n"), "ERR|"},
    {"bare LF in continuation", S("250-a\r\n250 b\n"), "ERR|"},
    {"bare CR", S("250 o\rk\r\n"), "ERR|"},
    {"empty line", S("\r\n"), "ERR|"},
    {"ok then garbage", S("250 ok\r\nxyz\r\n"), "DONE 250/1:250 ok\\r\\n|ERR|"},
};

Test(smtp_reply, table_of_replies_under_every_chunking)
{
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *rc = &reply_cases[i];
		expect_replies(rc->in, rc->n, rc->want, rc->label);
	}
}

/* A single-line reply of exactly `total` bytes, CRLF included. */
static char *
reply_of(size_t total)
{
	char *b = malloc(total);
	memcpy(b, "250 ", 4);
	memset(b + 4, 'x', total - 6);
	memcpy(b + total - 2, "\r\n", 2);
	return b;
}

Test(smtp_reply, size_cap_at_n_minus_1_n_and_n_plus_1)
{
	for (size_t total = SMTP_REPLY_MAX - 1; total <= SMTP_REPLY_MAX + 1; total++) {
		char *in = reply_of(total);
		static struct smtp_reply r;
		smtp_reply_reset(&r);
		enum smtp_reply_status st;
		size_t k = smtp_reply_feed(&r, in, total, &st);
		if (total <= SMTP_REPLY_MAX) {
			cr_expect_eq(st, SMTP_REPLY_DONE, "total %zu", total);
			cr_expect_eq(k, total);
			cr_expect_eq(r.len, total);
		} else {
			cr_expect_eq(st, SMTP_REPLY_ERR, "total %zu", total);
		}
		free(in);
	}
}

Test(smtp_reply, multi_line_reply_over_the_cap_is_an_error_however_split)
{
	/* 100 lines of 50 bytes = 5000 > 4096 */
	char *in = malloc(5000);
	for (int i = 0; i < 100; i++) {
		memcpy(in + i * 50, i == 99 ? "250 " : "250-", 4);
		memset(in + i * 50 + 4, 'k', 44);
		memcpy(in + i * 50 + 48, "\r\n", 2);
	}
	expect_replies(in, 5000, "ERR|", "5000-byte EHLO reply");
	free(in);
}

Test(smtp_reply, error_is_sticky_until_reset)
{
	static struct smtp_reply r;
	enum smtp_reply_status st;
	smtp_reply_feed(&r, "oops\r\n", 6, &st);
	cr_assert_eq(st, SMTP_REPLY_ERR);
	cr_assert_eq(smtp_reply_feed(&r, "250 ok\r\n", 8, &st), 0);
	cr_assert_eq(st, SMTP_REPLY_ERR);
	smtp_reply_reset(&r);
	cr_assert_eq(smtp_reply_feed(&r, "250 ok\r\n", 8, &st), 8);
	cr_assert_eq(st, SMTP_REPLY_DONE);
	cr_assert_eq(r.code, 250);
}

Test(smtp_reply, next_feed_after_done_starts_a_new_reply)
{
	static struct smtp_reply r;
	enum smtp_reply_status st;
	const char in[] = "250 a\r\n550 5.1.1 no\r\n";
	size_t k = smtp_reply_feed(&r, in, sizeof(in) - 1, &st);
	cr_assert_eq(st, SMTP_REPLY_DONE);
	cr_assert_eq(k, 7);
	k = smtp_reply_feed(&r, in + 7, sizeof(in) - 1 - 7, &st);
	cr_assert_eq(st, SMTP_REPLY_DONE);
	cr_assert_eq(r.code, 550);
	cr_assert_eq(r.nlines, 1);
	cr_assert_eq(r.len, 14);
	cr_assert_eq(memcmp(r.text, "550 5.1.1 no\r\n", 14), 0);
}

Test(smtp_reply, lines_are_returned_without_code_and_crlf)
{
	static struct smtp_reply r;
	enum smtp_reply_status st;
	const char in[] = "250-first line\r\n250-\r\n250\r\n";
	smtp_reply_feed(&r, in, sizeof(in) - 1, &st);
	cr_assert_eq(st, SMTP_REPLY_DONE);
	const char *p;
	size_t n;
	cr_assert(smtp_reply_line(&r, 0, &p, &n));
	cr_assert_eq(n, 10);
	cr_assert_eq(memcmp(p, "first line", 10), 0);
	cr_assert(smtp_reply_line(&r, 1, &p, &n));
	cr_assert_eq(n, 0);
	cr_assert(smtp_reply_line(&r, 2, &p, &n));
	cr_assert_eq(n, 0);
	cr_assert_not(smtp_reply_line(&r, 3, &p, &n));
}

Test(smtp_reply, enhanced_status_codes_are_recognised)
{
	struct span s;
	cr_assert(smtp_reply_enhanced("2.1.0 Ok", 8, &s));
	cr_assert_eq(s.off, 0);
	cr_assert_eq(s.len, 5);
	cr_assert(smtp_reply_enhanced("5.7.1", 5, &s));
	cr_assert_eq(s.len, 5);
	cr_assert(smtp_reply_enhanced("4.123.456 x", 11, &s));
	cr_assert_eq(s.len, 9);
	cr_assert_not(smtp_reply_enhanced("3.1.0 x", 7, &s));
	cr_assert_not(smtp_reply_enhanced("2.1 x", 5, &s));
	cr_assert_not(smtp_reply_enhanced("2.1.0x", 6, &s));
	cr_assert_not(smtp_reply_enhanced("2.1234.0 x", 10, &s));
	cr_assert_not(smtp_reply_enhanced("Ok", 2, &s));
	cr_assert_not(smtp_reply_enhanced("", 0, &s));
}

static void
caps_of(const char *in, struct smtp_ehlo_caps *caps)
{
	static struct smtp_reply r;
	smtp_reply_reset(&r);
	enum smtp_reply_status st;
	smtp_reply_feed(&r, in, strlen(in), &st);
	cr_assert_eq(st, SMTP_REPLY_DONE, "[%s]", in);
	smtp_ehlo_caps_parse(&r, caps);
}

Test(smtp_reply, ehlo_capabilities_are_parsed_case_insensitively)
{
	struct smtp_ehlo_caps c;
	caps_of("250-mx.example Hello\r\n"
		"250-pipelining\r\n"
		"250-SIZE 26214400\r\n"
		"250-8BITMIME\r\n"
		"250-SmtpUtf8\r\n"
		"250-STARTTLS\r\n"
		"250-CHUNKING\r\n"
		"250 ENHANCEDSTATUSCODES\r\n",
		&c);
	cr_assert(c.pipelining);
	cr_assert(c.size);
	cr_assert_eq(c.size_max, 26214400);
	cr_assert(c.eightbitmime);
	cr_assert(c.smtputf8);
	cr_assert(c.starttls);
	cr_assert(c.chunking);
	cr_assert(c.enhancedstatuscodes);
}

Test(smtp_reply, ehlo_greeting_line_is_not_a_capability)
{
	struct smtp_ehlo_caps c;
	caps_of("250-PIPELINING\r\n250 8BITMIME\r\n", &c);
	cr_assert_not(c.pipelining, "line 0 is the greeting");
	cr_assert(c.eightbitmime);
	caps_of("250 PIPELINING\r\n", &c);
	cr_assert_not(c.pipelining);
}

Test(smtp_reply, ehlo_size_without_value_or_with_junk_means_no_limit_value)
{
	struct smtp_ehlo_caps c;
	caps_of("250-mx\r\n250 SIZE\r\n", &c);
	cr_assert(c.size);
	cr_assert_eq(c.size_max, 0);
	caps_of("250-mx\r\n250 SIZE 12x\r\n", &c);
	cr_assert(c.size);
	cr_assert_eq(c.size_max, 0);
	caps_of("250-mx\r\n250 SIZEX 100\r\n", &c);
	cr_assert_not(c.size, "keyword must match whole");
	caps_of("250-mx\r\n250 AUTH PLAIN LOGIN\r\n", &c);
	cr_assert_not(c.size);
	cr_assert_not(c.pipelining);
}

Test(smtp_reply, ehlo_caps_of_a_failure_reply_are_empty)
{
	struct smtp_ehlo_caps c;
	caps_of("550-no\r\n550 PIPELINING\r\n", &c);
	cr_assert_not(c.pipelining);
}

/* --- smtp_reply_set / smtp_reply_prefix: replies of our own, and naming who spoke --- */

/* Parse `wire` (one complete reply) into *r. */
static void
parse_reply(struct smtp_reply *r, const char *wire)
{
	enum smtp_reply_status st;
	size_t n = strlen(wire);

	memset(r, 0, sizeof(*r));
	cr_assert_eq(smtp_reply_feed(r, wire, n, &st), n);
	cr_assert_eq(st, SMTP_REPLY_DONE, "not one complete reply: %s", wire);
}

/* out's text equals want, and it parses back as the same reply. */
static void
assert_reply_text(const struct smtp_reply *out, const char *want, unsigned code, unsigned nlines)
{
	struct smtp_reply again;

	cr_assert_eq(out->len, strlen(want), "len %u, want %zu: %.*s", out->len, strlen(want),
		     (int)out->len, out->text);
	cr_assert(memcmp(out->text, want, out->len) == 0, "got %.*s", (int)out->len, out->text);
	cr_assert_eq(out->code, code);
	cr_assert_eq(out->nlines, nlines);
	parse_reply(&again, want);
	cr_assert_eq(again.code, code);
	cr_assert_eq(again.nlines, nlines);
}

Test(smtp_reply_set, one_line_of_our_own_parses_like_a_servers)
{
	struct smtp_reply r;

	cr_assert(smtp_reply_set(&r, "451 4.4.1 Destination unreachable"));
	assert_reply_text(&r, "451 4.4.1 Destination unreachable\r\n", 451, 1);
}

Test(smtp_reply_set, malformed_or_too_long_is_refused_and_left_empty)
{
	struct smtp_reply r;
	char *big = malloc(SMTP_REPLY_MAX);

	cr_assert_not(smtp_reply_set(&r, "hello"));
	cr_assert_eq(r.len, 0);
	cr_assert_not(smtp_reply_set(&r, "99 short code"));
	memset(big, 'x', SMTP_REPLY_MAX - 1);
	memcpy(big, "250 ", 4);
	big[SMTP_REPLY_MAX - 1] = '\0'; /* with CRLF one byte over the cap */
	cr_assert_not(smtp_reply_set(&r, big));
	big[SMTP_REPLY_MAX - 2] = '\0'; /* exactly the cap */
	cr_assert(smtp_reply_set(&r, big));
	cr_assert_eq(r.len, SMTP_REPLY_MAX);
	free(big);
}

Test(smtp_reply_prefix, host_goes_after_the_enhanced_code_on_every_line)
{
	struct smtp_reply in, out;

	parse_reply(&in, "550-5.1.1 No such user\r\n550 5.1.1 try another\r\n");
	smtp_reply_prefix(&out, &in, "dest.test");
	assert_reply_text(&out,
			  "550-5.1.1 [dest.test] No such user\r\n"
			  "550 5.1.1 [dest.test] try another\r\n",
			  550, 2);
}

Test(smtp_reply_prefix, without_an_enhanced_code_right_after_the_separator)
{
	struct smtp_reply in, out;

	parse_reply(&in, "250 Ok: queued\r\n");
	smtp_reply_prefix(&out, &in, "[192.0.2.7]");
	assert_reply_text(&out, "250 [[192.0.2.7]] Ok: queued\r\n", 250, 1);
	parse_reply(&in, "421 4.3.2\r\n"); /* enhanced code and nothing after it */
	smtp_reply_prefix(&out, &in, "d.test");
	assert_reply_text(&out, "421 4.3.2 [d.test] \r\n", 421, 1);
}

Test(smtp_reply_prefix, lines_past_the_cap_are_left_out_and_the_reply_stays_valid)
{
	struct smtp_reply in, out;
	char *wire = malloc(SMTP_REPLY_MAX + 1);
	size_t len = 0;

	/* 8 lines of 500 bytes fill the cap nearly; the prefix pushes the last out */
	for (int i = 0; i < 8; i++) {
		len += (size_t)snprintf(wire + len, SMTP_REPLY_MAX + 1 - len, "554%c5.0.0 ",
					i == 7 ? ' ' : '-');
		memset(wire + len, 'a' + i, 488);
		len += 488;
		memcpy(wire + len, "\r\n", 2);
		len += 2;
	}
	wire[len] = '\0';
	parse_reply(&in, wire);
	smtp_reply_prefix(&out, &in, "a-long-destination-name.example");
	cr_assert_eq(out.nlines, 7);
	cr_assert_eq(out.code, 554);
	cr_assert(out.len <= SMTP_REPLY_MAX);
	/* the last line kept is the final one: "554 " */
	const char *last = out.text + out.len - 2;

	while (last > out.text && last[-1] != '\n')
		last--;
	cr_assert(strncmp(last, "554 5.0.0 [a-long-destination-name.example] ggg", 47) == 0,
		  "last line: %.50s", last);
	struct smtp_reply again;
	char *copy = malloc(out.len + 1);

	memcpy(copy, out.text, out.len);
	copy[out.len] = '\0';
	parse_reply(&again, copy);
	cr_assert_eq(again.nlines, 7);
	free(copy);
	free(wire);
}

Test(smtp_reply_recode, every_line_gets_the_new_code)
{
	struct smtp_reply r;

	parse_reply(&r, "421-4.3.2 closing\r\n421 4.3.2 for maintenance\r\n");
	smtp_reply_recode(&r, 451);
	assert_reply_text(&r, "451-4.3.2 closing\r\n451 4.3.2 for maintenance\r\n", 451, 2);
	parse_reply(&r, "421 bye\r\n");
	smtp_reply_recode(&r, 451);
	assert_reply_text(&r, "451 bye\r\n", 451, 1);
}
