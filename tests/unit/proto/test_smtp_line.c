/*
 * test_smtp_line.c -- command-line framing: CRLF only, bare LF/CR policy,
 * in-place vs staged lines, the length limit at N-1/N/N+1, and chunking
 * invariance through the split feeder.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_line.h"
#include "tests/support/split_feeder.h"

struct line_ctx {
	struct smtp_line l; /* parser under test */
	size_t max;	    /* limit passed to every feed */
};

static void
line_reset(void *ctx)
{
	struct line_ctx *c = ctx;
	memset(&c->l, 0, sizeof(c->l));
}

static size_t
line_feed(void *ctx, const char *p, size_t n, struct split_log *log)
{
	struct line_ctx *c = ctx;
	enum smtp_line_status st;
	const char *line;
	size_t len;
	size_t k = smtp_line_feed(&c->l, p, n, c->max, &st, &line, &len);
	switch (st) {
	case SMTP_LINE_AGAIN:
		break;
	case SMTP_LINE_OK:
		split_log_add(log, "OK:");
		split_log_bytes(log, line, len);
		split_log_add(log, "|");
		break;
	case SMTP_LINE_TOO_LONG:
		split_log_add(log, "TOO_LONG|");
		break;
	case SMTP_LINE_BARE_LF:
		split_log_add(log, "BARE_LF|");
		break;
	case SMTP_LINE_BARE_CR:
		split_log_add(log, "BARE_CR|");
		break;
	}
	return k;
}

static void
line_finish(void *ctx, struct split_log *log)
{
	struct line_ctx *c = ctx;
	if (smtp_line_pending(&c->l))
		split_log_add(log, "PENDING");
}

/* Check that `in` gives `want` whole and under every chunking. */
static void
expect_events(size_t max, const char *in, size_t n, const char *want, const char *label)
{
	static struct line_ctx c;
	c.max = max;
	struct split_target t = {&c, line_reset, line_feed, line_finish};
	struct split_log whole = {0};
	char why[4096];
	int rc = split_check_all(&t, in, n, &whole, why, sizeof(why));
	cr_expect_eq(rc, 0, "%s: chunking changed the events: %s", label, why);
	cr_expect_str_eq(split_log_str(&whole), want, "%s:\n  got:  %s\n  want: %s", label,
			 split_log_str(&whole), want);
	split_log_free(&whole);
}

#define S(lit) lit, sizeof(lit) - 1

struct line_case {
	const char *label; /* what the row shows */
	const char *in;	   /* wire bytes */
	size_t n;	   /* length of in */
	const char *want;  /* expected trace */
};

static const struct line_case line_cases[] = {
    {"one command", S("EHLO example.org\r\n"), "OK:EHLO example.org|"},
    {"two pipelined commands", S("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
     "OK:MAIL FROM:<a@b>|OK:RCPT TO:<c@d>|"},
    {"empty line", S("\r\n"), "OK:|"},
    {"bare LF alone", S("\n"), "BARE_LF|"},
    {"bare LF ends a line", S("NOOP\nQUIT\r\n"), "BARE_LF|OK:QUIT|"},
    {"bare CR mid-line", S("NO\rOP\r\n"), "BARE_CR|"},
    {"CR CR LF", S("NOOP\r\r\n"), "BARE_CR|"},
    {"CR at start of line", S("\rNOOP\r\n"), "BARE_CR|"},
    {"bare CR then bare LF: LF wins", S("a\rb\n"), "BARE_LF|"},
    {"line after a bare CR line is fine", S("a\rb\r\nQUIT\r\n"), "BARE_CR|OK:QUIT|"},
    {"unterminated line stays pending", S("QUIT"), "PENDING"},
    {"CR at the end stays pending", S("QUIT\r"), "PENDING"},
    {"NUL is passed through", S("NO\0OP\r\n"), "OK:NO\\x00OP|"},
    {"8-bit bytes are passed through", S("RCPT TO:<\xc3\xa9@x>\r\n"), "OK:RCPT TO:<\\xc3\\xa9@x>|"},
};

Test(smtp_line, table_of_framings_under_every_chunking)
{
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *lc = &line_cases[i];
		expect_events(SMTP_MAX_LINE, lc->in, lc->n, lc->want, lc->label);
	}
}

Test(smtp_line, whole_line_in_one_span_is_returned_in_place)
{
	static struct smtp_line l;
	const char in[] = "NOOP\r\n";
	enum smtp_line_status st;
	const char *line;
	size_t len;
	size_t k = smtp_line_feed(&l, in, sizeof(in) - 1, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(k, 6);
	cr_assert_eq(st, SMTP_LINE_OK);
	cr_assert_eq(line, in, "expected a pointer into the input, no copy");
	cr_assert_eq(len, 4);
}

Test(smtp_line, line_split_across_spans_is_staged_in_the_struct)
{
	static struct smtp_line l;
	enum smtp_line_status st;
	const char *line;
	size_t len;
	size_t k = smtp_line_feed(&l, "NO", 2, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(k, 2);
	cr_assert_eq(st, SMTP_LINE_AGAIN);
	cr_assert_null(line);
	cr_assert(smtp_line_pending(&l));
	k = smtp_line_feed(&l, "OP\r", 3, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(k, 3);
	cr_assert_eq(st, SMTP_LINE_AGAIN);
	k = smtp_line_feed(&l, "\nQUIT\r\n", 7, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(k, 1, "must stop right after the LF");
	cr_assert_eq(st, SMTP_LINE_OK);
	cr_assert_eq(line, l.buf);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(line, "NOOP", 4), 0);
	cr_assert_not(smtp_line_pending(&l));
}

Test(smtp_line, feed_stops_after_one_line_so_the_caller_can_switch_mode)
{
	static struct smtp_line l;
	const char in[] = "DATA\r\nSubject: x\r\n";
	enum smtp_line_status st;
	const char *line;
	size_t len;
	size_t k = smtp_line_feed(&l, in, sizeof(in) - 1, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(st, SMTP_LINE_OK);
	cr_assert_eq(k, 6);
}

Test(smtp_line, zero_bytes_consume_nothing)
{
	static struct smtp_line l;
	enum smtp_line_status st = SMTP_LINE_OK;
	const char *line = "x";
	size_t len = 9;
	cr_assert_eq(smtp_line_feed(&l, "", 0, SMTP_MAX_LINE, &st, &line, &len), 0);
	cr_assert_eq(st, SMTP_LINE_AGAIN);
	cr_assert_null(line);
	cr_assert_eq(len, 0);
}

/* A line of `content` bytes plus CRLF, then "QUIT\r\n" to show recovery. */
static char *
make_line(size_t content, size_t *n)
{
	char *b = malloc(content + 8);
	memset(b, 'a', content);
	memcpy(b + content, "\r\nQUIT\r\n", 8);
	*n = content + 8;
	return b;
}

static void
expect_limit(size_t max, size_t content, bool ok)
{
	size_t n;
	char *in = make_line(content, &n);
	char label[64];
	snprintf(label, sizeof(label), "max %zu, %zu bytes + CRLF", max, content);
	if (ok) {
		char *want = malloc(content + 16);
		memcpy(want, "OK:", 3);
		memset(want + 3, 'a', content);
		memcpy(want + 3 + content, "|OK:QUIT|", 10);
		expect_events(max, in, n, want, label);
		free(want);
	} else {
		expect_events(max, in, n, "TOO_LONG|OK:QUIT|", label);
	}
	free(in);
}

Test(smtp_line, configured_limit_at_n_minus_1_n_and_n_plus_1)
{
	/* max counts CRLF: max - 2 content bytes is exactly N */
	expect_limit(64, 61, true);
	expect_limit(64, 62, true);
	expect_limit(64, 63, false);
	expect_limit(512, 509, true);
	expect_limit(512, 510, true);
	expect_limit(512, 511, false);
}

Test(smtp_line, compile_time_ceiling_at_n_minus_1_n_and_n_plus_1)
{
	expect_limit(SMTP_MAX_LINE, SMTP_MAX_LINE - 3, true);
	expect_limit(SMTP_MAX_LINE, SMTP_MAX_LINE - 2, true);
	expect_limit(SMTP_MAX_LINE, SMTP_MAX_LINE - 1, false);
}

Test(smtp_line, very_long_line_is_reported_once_and_never_staged)
{
	size_t content = 100000;
	char *in = malloc(content + 2);
	memset(in, 'x', content);
	memcpy(in + content, "\r\n", 2);
	static struct smtp_line l;
	enum smtp_line_status st;
	const char *line;
	size_t len;
	unsigned reports = 0;
	/* feed in 1000-byte chunks, as recv would */
	for (size_t off = 0; off < content + 2;) {
		size_t c = content + 2 - off < 1000 ? content + 2 - off : 1000;
		size_t k = smtp_line_feed(&l, in + off, c, 512, &st, &line, &len);
		cr_assert_leq(l.len, 511);
		if (st != SMTP_LINE_AGAIN) {
			cr_assert_eq(st, SMTP_LINE_TOO_LONG);
			reports++;
		}
		off += k;
	}
	cr_assert_eq(reports, 1);
	cr_assert_not(smtp_line_pending(&l));
	free(in);
}

Test(smtp_line, too_long_wins_over_bare_lf)
{
	char in[80];
	memset(in, 'b', 70);
	in[70] = '\n';
	expect_events(32, in, 71, "TOO_LONG|", "70 bytes then bare LF, max 32");
}

Test(smtp_line, reset_drops_a_staged_partial_line)
{
	/* STARTTLS: plaintext pipelined after it must not survive the handshake */
	static struct smtp_line l;
	enum smtp_line_status st;
	const char *line;
	size_t len;
	smtp_line_feed(&l, "RCPT TO:<evil", 13, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert(smtp_line_pending(&l));
	smtp_line_reset(&l);
	cr_assert_not(smtp_line_pending(&l));
	size_t k = smtp_line_feed(&l, "@x>\r\n", 5, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(k, 5);
	cr_assert_eq(st, SMTP_LINE_OK);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(line, "@x>", 3), 0);
}

Test(smtp_line, cr_at_end_of_span_then_lf_is_a_crlf)
{
	static struct smtp_line l;
	enum smtp_line_status st;
	const char *line;
	size_t len;
	smtp_line_feed(&l, "QUIT\r", 5, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(st, SMTP_LINE_AGAIN);
	size_t k = smtp_line_feed(&l, "\n", 1, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(k, 1);
	cr_assert_eq(st, SMTP_LINE_OK);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(line, "QUIT", 4), 0);
}

Test(smtp_line, cr_at_end_of_span_then_other_byte_is_bare_cr)
{
	static struct smtp_line l;
	enum smtp_line_status st;
	const char *line;
	size_t len;
	smtp_line_feed(&l, "QU\r", 3, SMTP_MAX_LINE, &st, &line, &len);
	smtp_line_feed(&l, "IT\r\n", 4, SMTP_MAX_LINE, &st, &line, &len);
	cr_assert_eq(st, SMTP_LINE_BARE_CR);
	cr_assert_null(line);
}

/* The harness itself must not be vacuous: a "parser" that logs the size of
 * every chunk it sees depends on chunking, and the feeder must say so. */
static void
noop_reset(void *ctx)
{
	(void)ctx;
}

static size_t
chunk_logger(void *ctx, const char *p, size_t n, struct split_log *log)
{
	(void)ctx;
	(void)p;
	split_log_add(log, "%zu,", n);
	return n;
}

Test(smtp_line, split_feeder_catches_a_chunking_dependent_parser)
{
	struct split_target t = {NULL, noop_reset, chunk_logger, NULL};
	char why[256];
	cr_assert_eq(split_check_all(&t, "abc", 3, NULL, why, sizeof(why)), -1);
	cr_assert(strstr(why, "split at 1") != NULL, "%s", why);
}
