/*
 * test_smtp_bdat.c -- BDAT octets to DATA form: dot-stuffing, the appended
 * terminator, bare CR/LF flags, the size cap at N-1/N/N+1, chunking
 * invariance, and a round trip through smtp_data.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_bdat.h"
#include "proto/smtp_data.h"
#include "tests/support/split_feeder.h"

struct stuff_ctx {
	struct smtp_stuff s;  /* transformer under test */
	uint64_t max_size;    /* passed to init */
	struct split_log out; /* stuffed output, escaped */
};

static void
collect(void *arg, const char *p, size_t n)
{
	struct split_log *log = arg;
	cr_assert_gt(n, 0, "empty emit");
	split_log_bytes(log, p, n);
}

static void
stuff_reset(void *ctx)
{
	struct stuff_ctx *c = ctx;
	smtp_stuff_init(&c->s, c->max_size);
	split_log_clear(&c->out);
}

static size_t
stuff_feed(void *ctx, const char *p, size_t n, struct split_log *log)
{
	struct stuff_ctx *c = ctx;
	(void)log;
	smtp_stuff_feed(&c->s, p, n, collect, &c->out);
	return n;
}

static void
stuff_finish(void *ctx, struct split_log *log)
{
	struct stuff_ctx *c = ctx;
	smtp_stuff_finish(&c->s, collect, &c->out);
	split_log_add(log, "size=%llu err=%u out=%s", (unsigned long long)c->s.size, c->s.err,
		      split_log_str(&c->out));
}

static void
expect_stuff(uint64_t max_size, const char *in, size_t n, const char *want, const char *label)
{
	static struct stuff_ctx c;
	c.max_size = max_size;
	struct split_target t = {&c, stuff_reset, stuff_feed, stuff_finish};
	struct split_log whole = {0};
	char why[8192];
	int rc = split_check_all(&t, in, n, &whole, why, sizeof(why));
	cr_expect_eq(rc, 0, "%s: chunking changed the output: %s", label, why);
	cr_expect_str_eq(split_log_str(&whole), want, "%s:\n  got:  %s\n  want: %s", label,
			 split_log_str(&whole), want);
	split_log_free(&whole);
}

#define S(lit) lit, sizeof(lit) - 1

struct stuff_case {
	const char *label; /* what the row shows */
	const char *in;	   /* BDAT octets (all chunks together) */
	size_t n;	   /* length of in */
	const char *want;  /* expected trace */
};

static const struct stuff_case stuff_cases[] = {
    {"empty message", S(""), "size=0 err=0 out=.\\r\\n"},
    {"one line", S("Hello\r\n"), "size=7 err=0 out=Hello\\r\\n.\\r\\n"},
    {"no final CRLF", S("Hello"), "size=5 err=0 out=Hello\\r\\n.\\r\\n"},
    {"leading dot", S(".x\r\n"), "size=4 err=0 out=..x\\r\\n.\\r\\n"},
    {"lone dot line", S("a\r\n.\r\nb\r\n"), "size=9 err=0 out=a\\r\\n..\\r\\nb\\r\\n.\\r\\n"},
    {"dot mid-line untouched", S("a.b\r\n"), "size=5 err=0 out=a.b\\r\\n.\\r\\n"},
    {"double dot line", S("..\r\n"), "size=4 err=0 out=...\\r\\n.\\r\\n"},
    {"dot at the very end", S("a\r\n."), "size=4 err=0 out=a\\r\\n..\\r\\n.\\r\\n"},
    {"bare LF flagged, next dot stuffed", S("a\n.b\r\n"), "size=6 err=1 out=a\\n..b\\r\\n.\\r\\n"},
    {"bare CR flagged, next dot stuffed", S("a\r.b\r\n"), "size=6 err=2 out=a\\r..b\\r\\n.\\r\\n"},
    {"ends with bare LF: CRLF added", S("a\n"), "size=2 err=1 out=a\\n\\r\\n.\\r\\n"},
    {"ends with CR: bare CR, CRLF added", S("a\r"), "size=2 err=2 out=a\\r\\r\\n.\\r\\n"},
    {"smuggling LF.LF is defused", S("a\n.\nb"), "size=5 err=1 out=a\\n..\\nb\\r\\n.\\r\\n"},
    {"smuggling CRLF.CRLF inside BDAT is stuffed", S("a\r\n.\r\nMAIL FROM:<x@y>\r\n"),
     "size=23 err=0 out=a\\r\\n..\\r\\nMAIL FROM:<x@y>\\r\\n.\\r\\n"},
};

Test(smtp_bdat, table_of_chunks_under_every_chunking)
{
	for (size_t i = 0; i < sizeof(stuff_cases) / sizeof(stuff_cases[0]); i++) {
		const struct stuff_case *sc = &stuff_cases[i];
		expect_stuff(0, sc->in, sc->n, sc->want, sc->label);
	}
}

Test(smtp_bdat, size_limit_at_n_minus_1_n_and_n_plus_1)
{
	expect_stuff(10, S("12345678\r"), "size=9 err=2 out=12345678\\r\\r\\n.\\r\\n", "N-1");
	expect_stuff(10, S("12345678\r\n"), "size=10 err=0 out=12345678\\r\\n.\\r\\n", "N");
	expect_stuff(10, S("123456789\r\n"), "size=11 err=4 out=123456789\\r\\r\\n.\\r\\n",
		     "N+1: output stops at the cap");
}

struct sink {
	char *buf;  /* owned */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
};

static void
sink_put(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

Test(smtp_bdat, stuffed_output_round_trips_through_smtp_data)
{
	static const char *const bodies[] = {
	    "",
	    "Hello\r\n",
	    ".\r\n",
	    "..\r\n...\r\n",
	    "a\r\n.\r\n.\r\nb\r\n",
	    ".starts with dot\r\n\r\n.\r\n",
	    "no final newline",
	    "trailing dot\r\n.",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		const char *b = bodies[i];
		size_t n = strlen(b);
		struct smtp_stuff st;
		struct sink wire = {0}, back = {0};
		smtp_stuff_init(&st, 0);
		smtp_stuff_feed(&st, b, n, sink_put, &wire);
		smtp_stuff_finish(&st, sink_put, &wire);
		cr_assert_eq(st.err, 0, "[%s]", b);

		struct smtp_data d;
		smtp_data_init(&d, 0, 0);
		size_t k = smtp_data_feed(&d, wire.buf, wire.len, sink_put, &back);
		cr_assert(d.done, "[%s]: DATA did not end", b);
		cr_assert_eq(k, wire.len, "[%s]: terminator before the end", b);
		/* what comes back is the body, with CRLF appended if it lacked one */
		bool add = n > 0 && (n < 2 || memcmp(b + n - 2, "\r\n", 2) != 0);
		cr_assert_eq(back.len, n + (add ? 2 : 0), "[%s]", b);
		cr_assert(n == 0 || memcmp(back.buf, b, n) == 0, "[%s]", b);
		free(wire.buf);
		free(back.buf);
	}
}

Test(smtp_bdat, emit_may_be_null)
{
	struct smtp_stuff st;
	smtp_stuff_init(&st, 0);
	smtp_stuff_feed(&st, ".a\nb", 4, NULL, NULL);
	smtp_stuff_finish(&st, NULL, NULL);
	cr_assert_eq(st.size, 4);
	cr_assert_eq(st.err, SMTP_DATA_E_BARE_LF);
}
