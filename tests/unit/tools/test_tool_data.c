/*
 * test_tool_data.c -- the load sink's DATA scanner (tools/common/tool_data):
 * the end of data only at CRLF "." CRLF, every SMTP smuggling variant left
 * as content, dot-unstuffing, the held-back "." CR, pipelined bytes after
 * the terminator, and chunking invariance (tests/support/split_feeder).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/data_model.h"
#include "tests/support/split_feeder.h"
#include "tools/common/tool_data.h"

struct data_ctx {
	struct tool_data d;	  /* scanner under test */
	bool done;		  /* the terminator has been consumed */
	size_t consumed;	  /* bytes consumed by tool_data_feed */
	struct split_log content; /* emitted content, escaped */
	struct split_log rest;	  /* bytes left after done, escaped */
};

static void
collect(void *arg, const char *p, size_t n)
{
	struct data_ctx *c = arg;
	cr_assert_gt(n, 0, "empty emit");
	cr_assert(!c->done, "emit after done");
	split_log_bytes(&c->content, p, n);
}

static void
data_reset(void *ctx)
{
	struct data_ctx *c = ctx;
	tool_data_init(&c->d);
	c->done = false;
	c->consumed = 0;
	split_log_clear(&c->content);
	split_log_clear(&c->rest);
}

static size_t
data_feed(void *ctx, const char *p, size_t n, struct split_log *log)
{
	struct data_ctx *c = ctx;
	(void)log;
	if (c->done) {
		/* pipelined bytes after the end belong to the command reader */
		split_log_bytes(&c->rest, p, n);
		return n;
	}
	bool done = false;
	size_t k = tool_data_feed(&c->d, p, n, &done, collect, c);
	cr_assert(k <= n, "consumed %zu of %zu", k, n);
	cr_assert(k == n || done, "consumed %zu of %zu without done", k, n);
	c->consumed += k;
	c->done = done;
	if (done && k < n)
		split_log_bytes(&c->rest, p + k, n - k);
	return n;
}

static void
data_finish(void *ctx, struct split_log *log)
{
	struct data_ctx *c = ctx;
	split_log_add(log, "%s consumed=%zu content=%s rest=%s", c->done ? "DONE" : "MORE",
		      c->consumed, split_log_str(&c->content), split_log_str(&c->rest));
}

/* Run in[0..n) under every chunking; return the whole-input trace (caller frees). */
static char *
expect_data(const char *in, size_t n, const char *want, const char *label)
{
	static struct data_ctx c;
	struct split_target t = {&c, data_reset, data_feed, data_finish};
	struct split_log whole = {0};
	char why[8192];
	int rc = split_check_all(&t, in, n, &whole, why, sizeof(why));
	cr_expect_eq(rc, 0, "%s: chunking changed the events: %s", label, why);
	if (want)
		cr_expect_str_eq(split_log_str(&whole), want, "%s:\n  got:  %s\n  want: %s", label,
				 split_log_str(&whole), want);
	char *s = strdup(split_log_str(&whole));
	split_log_free(&whole);
	return s;
}

#define S(lit) lit, sizeof(lit) - 1

struct data_case {
	const char *label; /* what the row shows */
	const char *in;	   /* wire bytes after the DATA command's CRLF */
	size_t n;	   /* length of in */
	const char *want;  /* expected trace */
};

static const struct data_case data_cases[] = {
    {"one line", S("Hello\r\n.\r\n"), "DONE consumed=10 content=Hello\\r\\n rest="},
    {"empty message", S(".\r\n"), "DONE consumed=3 content= rest="},
    {"empty line then end", S("\r\n.\r\n"), "DONE consumed=5 content=\\r\\n rest="},
    {"stuffed dot line", S("..\r\n.\r\n"), "DONE consumed=7 content=.\\r\\n rest="},
    {"stuffed dot text", S("a\r\n..b\r\n.\r\n"), "DONE consumed=11 content=a\\r\\n.b\\r\\n rest="},
    {"unstuffed leading dot is dropped", S(".b\r\n.\r\n"), "DONE consumed=7 content=b\\r\\n rest="},
    {"dot then space", S(". x\r\n.\r\n"), "DONE consumed=8 content= x\\r\\n rest="},
    {"triple dot keeps two", S("...\r\n.\r\n"), "DONE consumed=8 content=..\\r\\n rest="},
    {"dot mid-line is text", S("a.b\r\n.\r\n"), "DONE consumed=8 content=a.b\\r\\n rest="},
    {"dot at end of line is text", S("a.\r\n.\r\n"), "DONE consumed=7 content=a.\\r\\n rest="},
    {"dot CR dot CRLF is one ordinary line", S(".\r.\r\n.\r\n"),
     "DONE consumed=8 content=\\r.\\r\\n rest="},
    {"pipelined commands after the end are not consumed",
     S("x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
     "DONE consumed=6 content=x\\r\\n rest=MAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\n"},
    {"second terminator is pipelined data", S(".\r\n.\r\n"),
     "DONE consumed=3 content= rest=.\\r\\n"},
    {"no terminator yet", S("Hello\r\nWorld\r\n"),
     "MORE consumed=14 content=Hello\\r\\nWorld\\r\\n rest="},
    {"dot without CRLF at the very end", S("a\r\n."), "MORE consumed=4 content=a\\r\\n rest="},
    {"dot CR at the very end is held back", S("a\r\n.\r"), "MORE consumed=5 content=a\\r\\n rest="},
    {"NUL is content", S("a\0b\r\n.\r\n"), "DONE consumed=8 content=a\\x00b\\r\\n rest="},
    {"high bytes are content", S("\xff\x80\r\n.\r\n"),
     "DONE consumed=7 content=\\xff\\x80\\r\\n rest="},

    /* SMTP smuggling: none of these ends the data; all stay content */
    {"LF . LF", S("a\n.\nb\r\n.\r\n"), "DONE consumed=10 content=a\\n.\\nb\\r\\n rest="},
    {"CRLF . LF", S("a\r\n.\nb\r\n.\r\n"), "DONE consumed=11 content=a\\r\\n\\nb\\r\\n rest="},
    {"LF . CRLF", S("a\n.\r\nb\r\n.\r\n"), "DONE consumed=11 content=a\\n.\\r\\nb\\r\\n rest="},
    {"CR . CR", S("a\r.\rb\r\n.\r\n"), "DONE consumed=10 content=a\\r.\\rb\\r\\n rest="},
    {"CRLF . CR", S("a\r\n.\rb\r\n.\r\n"), "DONE consumed=11 content=a\\r\\n\\rb\\r\\n rest="},
    {"CR . CRLF", S("a\r.\r\nb\r\n.\r\n"), "DONE consumed=11 content=a\\r.\\r\\nb\\r\\n rest="},
    {"CR . LF", S("a\r.\nb\r\n.\r\n"), "DONE consumed=10 content=a\\r.\\nb\\r\\n rest="},
    {"CRLF . CR CR LF", S("a\r\n.\r\r\n.\r\n"), "DONE consumed=10 content=a\\r\\n\\r\\r\\n rest="},
    {"CRLF . SP CRLF", S("a\r\n. \r\n.\r\n"), "DONE consumed=10 content=a\\r\\n \\r\\n rest="},
    {"LF . LF only: never ends", S("a\n.\n"), "MORE consumed=4 content=a\\n.\\n rest="},
    {"CRLF . LF only: never ends", S("a\r\n.\n"), "MORE consumed=5 content=a\\r\\n\\n rest="},
    {"LF . CRLF only: never ends", S("a\n.\r\n"), "MORE consumed=5 content=a\\n.\\r\\n rest="},
    {"CR . CR only: never ends", S("a\r.\r"), "MORE consumed=4 content=a\\r.\\r rest="},
    {"CR . CRLF only: never ends", S("a\r.\r\n"), "MORE consumed=5 content=a\\r.\\r\\n rest="},
    {"leading LF . LF", S("\n.\n"), "MORE consumed=3 content=\\n.\\n rest="},
    {"leading . LF", S(".\n"), "MORE consumed=2 content=\\n rest="},
    {"leading LF . CRLF", S("\n.\r\n"), "MORE consumed=4 content=\\n.\\r\\n rest="},
    {"CR CR LF is a bare CR then CRLF", S("a\r\r\n.\r\n"),
     "DONE consumed=7 content=a\\r\\r\\n rest="},
    {"CR LF LF . CRLF: the LF line is not a line start", S("a\r\n\n.\r\n"),
     "MORE consumed=7 content=a\\r\\n\\n.\\r\\n rest="},
};

Test(tool_data, table_of_messages_under_every_chunking)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *dc = &data_cases[i];
		free(expect_data(dc->in, dc->n, dc->want, dc->label));
	}
}

static void
discard(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
}

Test(tool_data, end_marker_split_across_every_boundary)
{
	/* the table test splits everywhere too; this one makes it explicit */
	const char in[] = "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
	static struct tool_data d;
	for (size_t k = 0; k <= sizeof(in) - 1; k++) {
		bool done = false;
		tool_data_init(&d);
		size_t a = tool_data_feed(&d, in, k, &done, discard, NULL);
		cr_assert(k < 23 ? !done && a == k : done && a == 23, "first part of split at %zu",
			  k);
		size_t b =
		    done ? 0 : tool_data_feed(&d, in + a, sizeof(in) - 1 - a, &done, discard, NULL);
		cr_assert(done, "split at %zu", k);
		cr_assert_eq(a + b, 23, "split at %zu: consumed %zu", k, a + b);
	}
}

Test(tool_data, state_is_line_start_again_after_done)
{
	/* two messages back to back through one scanner: the second starts at BOL */
	const char in[] = "a\r\n.\r\n.x\r\n.\r\n";
	static struct tool_data d;
	bool done = false;
	tool_data_init(&d);
	size_t k = tool_data_feed(&d, in, sizeof(in) - 1, &done, discard, NULL);
	cr_assert(done);
	cr_assert_eq(k, 6);
	cr_assert_eq(d.st, TOOL_DATA_BOL);
	done = false;
	size_t k2 = tool_data_feed(&d, in + k, sizeof(in) - 1 - k, &done, discard, NULL);
	cr_assert(done);
	cr_assert_eq(k2, 7);
}

Test(tool_data, empty_feed_consumes_nothing)
{
	static struct tool_data d;
	bool done = false;
	tool_data_init(&d);
	cr_assert_eq(tool_data_feed(&d, "", 0, &done, discard, NULL), 0);
	cr_assert(!done);
	cr_assert_eq(d.st, TOOL_DATA_BOL);
}

/*
 * A deliberately naive model written from RFC 5321 4.1.1.4 and 4.5.2: data
 * ends at the first ".\r\n" that starts a line; every other line-initial "."
 * is dropped; a line-initial ".\r" at the very end of the input is held back.
 * It checks the scanner on random inputs over the bytes that matter.
 */
Test(tool_data, random_inputs_agree_with_a_naive_model_under_every_chunking)
{
	static const char alphabet[] = {'.', '\r', '\n', 'a'};
	uint64_t seed = 0x2545f4914f6cdd1dull;
	char in[24];
	for (int round = 0; round < 300; round++) {
		size_t n = (size_t)(data_model_rnd(&seed) % sizeof(in));
		for (size_t i = 0; i < n; i++)
			in[i] = alphabet[data_model_rnd(&seed) % sizeof(alphabet)];

		size_t end = n;
		bool done = false;
		for (size_t i = 0; i + 3 <= n; i++) {
			if (data_model_bol(in, i) && memcmp(in + i, ".\r\n", 3) == 0) {
				end = i + 3;
				done = true;
				break;
			}
		}
		size_t body_end = done ? end - 3 : end;
		if (!done && n >= 2 && in[n - 1] == '\r' && in[n - 2] == '.' &&
		    data_model_bol(in, n - 2))
			body_end--; /* the held-back CR */
		char content[sizeof(in)];
		size_t clen = 0;
		for (size_t j = 0; j < body_end; j++)
			if (!(in[j] == '.' && data_model_bol(in, j)))
				content[clen++] = in[j];

		struct split_log want = {0}, esc = {0};
		split_log_bytes(&esc, in, n);
		split_log_add(&want, "%s consumed=%zu content=", done ? "DONE" : "MORE", end);
		split_log_bytes(&want, content, clen);
		split_log_add(&want, " rest=");
		split_log_bytes(&want, in + end, n - end);
		char *got = expect_data(in, n, NULL, split_log_str(&esc));
		cr_expect_str_eq(got, split_log_str(&want), "input %s\n  got:  %s\n  want: %s",
				 split_log_str(&esc), got, split_log_str(&want));
		free(got);
		split_log_free(&want);
		split_log_free(&esc);
	}
}

Test(tool_data, big_message_with_many_dots_unstuffs_exactly)
{
	/* 20000 lines alternating "..dot" and "plain"; content drops one dot per stuffed line */
	size_t lines = 20000, n = 0;
	char *in = malloc(lines * 7 + 3);
	for (size_t i = 0; i < lines; i++) {
		memcpy(in + n, i % 2 ? "plain\r\n" : "..dot\r\n", 7);
		n += 7;
	}
	memcpy(in + n, ".\r\n", 3);
	n += 3;
	static struct data_ctx c;
	struct split_target t = {&c, data_reset, data_feed, data_finish};
	struct split_log out = {0};
	const size_t sizes[] = {4096, 1, 7, 8191, 3};
	cr_assert_eq(split_feed_chunks(&t, in, n, sizes, 5, &out), 0);
	cr_assert(c.done);
	cr_assert_eq(c.consumed, n);
	/* escaped content: every byte but CR/LF is itself; CR and LF are 2 chars each */
	size_t content = lines * 7 - lines / 2;
	cr_assert_eq(c.content.len, content + lines * 2);
	split_log_free(&out);
	free(in);
}
