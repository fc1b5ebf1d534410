/*
 * test_tool_reply.c -- the load source's SMTP reply reader
 * (tools/common/tool_reply): single and multi-line replies, strict codes,
 * bare LF, the TOOL_REPLY_MAX_LINE cap at N-1/N/N+1, pipelined replies, EHLO
 * keywords, and chunking invariance. The reader parses whole lines from the
 * caller's buffer, so the adapter plays the caller: it keeps a receive buffer
 * and hands the reader everything not yet parsed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tests/support/split_feeder.h"
#include "tools/common/tool_reply.h"

struct reply_ctx {
	struct tool_reply r; /* reader under test */
	char *buf;	     /* receive buffer: bytes not yet parsed */
	size_t len;	     /* bytes in buf */
	size_t cap;	     /* bytes allocated */
	bool err;	     /* the reader failed: the stream is unusable */
};

static void
reply_reset(void *ctx)
{
	struct reply_ctx *c = ctx;
	tool_reply_reset(&c->r);
	c->len = 0;
	c->err = false;
}

static size_t
reply_feed(void *ctx, const char *p, size_t n, struct split_log *log)
{
	struct reply_ctx *c = ctx;
	if (c->err)
		return n; /* swallow the rest */
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->buf = realloc(c->buf, c->cap);
		cr_assert_not_null(c->buf);
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	size_t off = 0;
	for (;;) {
		struct tool_reply_line l;
		ssize_t k = tool_reply_feed(&c->r, c->buf + off, c->len - off, &l);
		if (k == 0)
			break;
		if (k < 0) {
			split_log_add(log, "ERR %s|",
				      k == -SLUICE_ELIMIT    ? "LIMIT"
				      : k == -SLUICE_ESYNTAX ? "SYNTAX"
							     : "OTHER");
			c->err = true;
			break;
		}
		cr_assert(l.text >= c->buf + off && l.text + l.textlen <= c->buf + off + (size_t)k,
			  "text outside the line");
		split_log_add(log, "%d%c", l.code, l.last ? ' ' : '-');
		split_log_bytes(log, l.text, l.textlen);
		split_log_add(log, "%s", l.last ? "|DONE|" : "|");
		off += (size_t)k;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return n;
}

static void
reply_finish(void *ctx, struct split_log *log)
{
	struct reply_ctx *c = ctx;
	if (!c->err && c->len > 0)
		split_log_add(log, "PARTIAL %zu", c->len);
	if (!c->err && c->r.nlines > 0)
		split_log_add(log, "OPEN %d/%u", c->r.code, c->r.nlines);
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
	cr_expect_str_eq(split_log_str(&whole), want, "%s:\n  got:  %s\n  want: %s", label,
			 split_log_str(&whole), want);
	split_log_free(&whole);
}

#define S(lit) lit, sizeof(lit) - 1

struct reply_case {
	const char *label; /* what the row shows */
	const char *in;	   /* bytes from the server */
	size_t n;	   /* length of in */
	const char *want;  /* expected trace */
};

static const struct reply_case reply_cases[] = {
    {"single line", S("250 OK\r\n"), "250 OK|DONE|"},
    {"greeting", S("220 mx.example ESMTP\r\n"), "220 mx.example ESMTP|DONE|"},
    {"code only", S("250\r\n"), "250 |DONE|"},
    {"code and space only", S("250 \r\n"), "250 |DONE|"},
    {"multi-line", S("250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n"),
     "250-mx.example|250-PIPELINING|250 SIZE 100|DONE|"},
    {"multi-line ending with code only", S("250-a\r\n250\r\n"), "250-a|250 |DONE|"},
    {"empty text after dash", S("220-\r\n220 \r\n"), "220-|220 |DONE|"},
    {"pipelined replies", S("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
     "250 2.1.0 Ok|DONE|250 2.1.5 Ok|DONE|354 go|DONE|"},
    {"the next reply may change the code", S("250-a\r\n250 b\r\n550 no\r\n"),
     "250-a|250 b|DONE|550 no|DONE|"},
    {"lowest and highest codes", S("100 x\r\n599 y\r\n"), "100 x|DONE|599 y|DONE|"},
    {"text keeps its blanks", S("250  two  spaces \r\n"), "250  two  spaces |DONE|"},
    {"incomplete line", S("250 b"), "PARTIAL 5"},
    {"incomplete line after CR", S("250 b\r"), "PARTIAL 6"},
    {"incomplete reply", S("250-a\r\n"), "250-a|OPEN 250/1"},
    {"incomplete reply and line", S("250-a\r\n250 b"), "250-a|PARTIAL 5OPEN 250/1"},
    /* errors */
    {"codes differ", S("250-a\r\n251 b\r\n"), "250-a|ERR SYNTAX|"},
    {"codes differ in the first digit", S("250-a\r\n550 b\r\n"), "250-a|ERR SYNTAX|"},
    {"two digits", S("25 x\r\n"), "ERR SYNTAX|"},
    {"two digits alone", S("25\r\n"), "ERR SYNTAX|"},
    {"four digits", S("2500\r\n"), "ERR SYNTAX|"},
    {"letters", S("abc x\r\n"), "ERR SYNTAX|"},
    {"first digit 0", S("050 x\r\n"), "ERR SYNTAX|"},
    {"first digit 6", S("650 x\r\n"), "ERR SYNTAX|"},
    {"second digit not a digit", S("2x0 x\r\n"), "ERR SYNTAX|"},
    {"third digit not a digit", S("25x x\r\n"), "ERR SYNTAX|"},
    {"bad separator", S("250x\r\n"), "ERR SYNTAX|"},
    {"tab separator", S("250\tok\r\n"), "ERR SYNTAX|"},
    {"leading space", S(" 250 ok\r\n"), "ERR SYNTAX|"},
    {"bare LF", S("250 ok\n"), "ERR SYNTAX|"},
    {"bare LF alone", S("\n"), "ERR SYNTAX|"},
    {"bare LF after code", S("250\n"), "ERR SYNTAX|"},
    {"bare LF in continuation", S("250-a\r\n250 b\n"), "250-a|ERR SYNTAX|"},
    {"empty line", S("\r\n"), "ERR SYNTAX|"},
    {"ok then garbage", S("250 ok\r\nxyz\r\n"), "250 ok|DONE|ERR SYNTAX|"},
    {"nothing is read after an error", S("xyz\r\n250 ok\r\n"), "ERR SYNTAX|"},
};

Test(tool_reply, table_of_replies_under_every_chunking)
{
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *rc = &reply_cases[i];
		expect_replies(rc->in, rc->n, rc->want, rc->label);
	}
}

/* A single-line reply of exactly `total` bytes, CRLF included ("250 xxx...\r\n"). */
static char *
reply_of(size_t total)
{
	char *b = malloc(total);
	memcpy(b, "250 ", 4);
	memset(b + 4, 'x', total - 6);
	memcpy(b + total - 2, "\r\n", 2);
	return b;
}

Test(tool_reply, line_limit_at_n_minus_1_n_and_n_plus_1)
{
	for (size_t total = TOOL_REPLY_MAX_LINE - 1; total <= TOOL_REPLY_MAX_LINE + 1; total++) {
		char *in = reply_of(total);
		char label[64];
		snprintf(label, sizeof(label), "line of %zu bytes", total);
		static struct tool_reply r;
		struct tool_reply_line l;
		tool_reply_reset(&r);
		ssize_t k = tool_reply_feed(&r, in, total, &l);
		if (total <= TOOL_REPLY_MAX_LINE) {
			cr_expect_eq(k, (ssize_t)total, "%s: %zd", label, k);
			cr_expect_eq(l.textlen, total - 6, "%s", label);
			cr_expect(l.last, "%s", label);
		} else {
			cr_expect_eq(k, -SLUICE_ELIMIT, "%s: %zd", label, k);
		}
		/* and the same through every chunking (a slow server) */
		struct split_log want = {0};
		if (total <= TOOL_REPLY_MAX_LINE) {
			split_log_add(&want, "250 ");
			split_log_bytes(&want, in + 4, total - 6);
			split_log_add(&want, "|DONE|");
		} else {
			split_log_add(&want, "ERR LIMIT|");
		}
		expect_replies(in, total, split_log_str(&want), label);
		split_log_free(&want);
		free(in);
	}
}

Test(tool_reply, no_crlf_in_max_line_bytes_is_a_limit_not_a_wait)
{
	/* MAX_LINE - 1 bytes without LF: wait for more; MAX_LINE and more: limit */
	char *in = malloc(TOOL_REPLY_MAX_LINE + 1);
	memcpy(in, "250 ", 4);
	memset(in + 4, 'x', TOOL_REPLY_MAX_LINE - 3);
	static struct tool_reply r;
	struct tool_reply_line l;
	tool_reply_reset(&r);
	cr_expect_eq(tool_reply_feed(&r, in, TOOL_REPLY_MAX_LINE - 1, &l), 0);
	cr_expect_eq(tool_reply_feed(&r, in, TOOL_REPLY_MAX_LINE, &l), -SLUICE_ELIMIT);
	cr_expect_eq(tool_reply_feed(&r, in, TOOL_REPLY_MAX_LINE + 1, &l), -SLUICE_ELIMIT);
	/* MAX_LINE - 1 bytes ending in CR: still waiting for the LF */
	in[TOOL_REPLY_MAX_LINE - 2] = '\r';
	cr_expect_eq(tool_reply_feed(&r, in, TOOL_REPLY_MAX_LINE - 1, &l), 0);
	free(in);
}

Test(tool_reply, nothing_consumed_before_a_whole_line)
{
	const char in[] = "250-a\r\n250 b\r\n";
	static struct tool_reply r;
	struct tool_reply_line l;
	tool_reply_reset(&r);
	for (size_t k = 0; k < 7; k++)
		cr_expect_eq(tool_reply_feed(&r, in, k, &l), 0, "prefix of %zu", k);
	cr_expect_eq(r.nlines, 0, "a partial line changed the state");
	cr_assert_eq(tool_reply_feed(&r, in, sizeof(in) - 1, &l), 7);
	cr_expect(!l.last);
	cr_expect_eq(r.code, 250);
	cr_expect_eq(r.nlines, 1);
	cr_assert_eq(tool_reply_feed(&r, in + 7, sizeof(in) - 1 - 7, &l), 7);
	cr_expect(l.last);
	cr_expect_eq(l.code, 250);
	cr_expect_eq(r.code, 0, "reset after the final line");
	cr_expect_eq(r.nlines, 0, "reset after the final line");
}

struct kw_case {
	const char *text;    /* EHLO line text (after "250-") */
	const char *keyword; /* keyword asked for */
	bool want;	     /* expected answer */
};

static const struct kw_case kw_cases[] = {
    {"PIPELINING", "PIPELINING", true},
    {"pipelining", "PIPELINING", true},
    {"PIPELINING", "pipelining", true},
    {"SIZE 10240000", "SIZE", true},
    {"SIZE", "SIZE", true},
    {"SIZEX", "SIZE", false},
    {"SIZE=100", "SIZE", false},
    {"SIZ", "SIZE", false},
    {"", "SIZE", false},
    {"8BITMIME", "8BITMIME", true},
    {"STARTTLS", "START", false},
    {"AUTH PLAIN LOGIN", "AUTH", true},
    {"AUTH PLAIN LOGIN", "PLAIN", false},
    {"X-SIZE 1", "SIZE", false},
};

Test(tool_reply, ehlo_keyword_is_a_whole_word_at_the_start)
{
	for (size_t i = 0; i < sizeof(kw_cases) / sizeof(kw_cases[0]); i++) {
		const struct kw_case *c = &kw_cases[i];
		char line[128];
		int len = snprintf(line, sizeof(line), "250-%s\r\n", c->text);
		static struct tool_reply r;
		struct tool_reply_line l;
		tool_reply_reset(&r);
		cr_assert_eq(tool_reply_feed(&r, line, (size_t)len, &l), len, "\"%s\"", c->text);
		cr_expect_eq(tool_reply_is_keyword(&l, c->keyword), c->want, "\"%s\" has \"%s\"",
			     c->text, c->keyword);
	}
}
