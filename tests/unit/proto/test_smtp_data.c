/*
 * test_smtp_data.c -- the DATA automaton: end of data only on CRLF.CRLF,
 * every SMTP smuggling variant, dot-unstuffing, size and line caps at N-1,
 * N and N+1, pipelined bytes after the terminator, and chunking invariance.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_data.h"
#include "tests/support/data_model.h"
#include "tests/support/split_feeder.h"

struct data_ctx {
	struct smtp_data d;	  /* parser under test */
	uint64_t max_size;	  /* passed to init */
	uint32_t max_line;	  /* passed to init */
	uint64_t consumed;	  /* bytes consumed by smtp_data_feed */
	struct split_log content; /* emitted content, escaped */
	struct split_log rest;	  /* bytes left after done, escaped */
};

static void
collect(void *arg, const char *p, size_t n)
{
	struct data_ctx *c = arg;
	cr_assert_gt(n, 0, "empty emit");
	split_log_bytes(&c->content, p, n);
}

static void
data_reset(void *ctx)
{
	struct data_ctx *c = ctx;
	smtp_data_init(&c->d, c->max_size, c->max_line);
	c->consumed = 0;
	split_log_clear(&c->content);
	split_log_clear(&c->rest);
}

static size_t
data_feed(void *ctx, const char *p, size_t n, struct split_log *log)
{
	struct data_ctx *c = ctx;
	(void)log;
	if (c->d.done) {
		cr_assert_eq(smtp_data_feed(&c->d, p, n, collect, c), 0, "feed after done");
		split_log_bytes(&c->rest, p, n);
		return n;
	}
	size_t k = smtp_data_feed(&c->d, p, n, collect, c);
	cr_assert(k == n || c->d.done, "consumed %zu of %zu without done", k, n);
	c->consumed += k;
	if (k < n) {
		split_log_bytes(&c->rest, p + k, n - k);
		return n;
	}
	return k;
}

static void
data_finish(void *ctx, struct split_log *log)
{
	struct data_ctx *c = ctx;
	split_log_add(log, "%s consumed=%llu size=%llu err=%u content=%s rest=%s",
		      c->d.done ? "DONE" : "MORE", (unsigned long long)c->consumed,
		      (unsigned long long)c->d.size, c->d.err, split_log_str(&c->content),
		      split_log_str(&c->rest));
}

static char *
expect_data(uint64_t max_size, uint32_t max_line, const char *in, size_t n, const char *want,
	    const char *label)
{
	static struct data_ctx c;
	c.max_size = max_size;
	c.max_line = max_line;
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

enum { LF = SMTP_DATA_E_BARE_LF, CR = SMTP_DATA_E_BARE_CR };

struct data_case {
	const char *label; /* what the row shows */
	const char *in;	   /* wire bytes after the DATA command's CRLF */
	size_t n;	   /* length of in */
	const char *want;  /* expected trace */
};

static const struct data_case data_cases[] = {
    {"one line", S("Hello\r\n.\r\n"), "DONE consumed=10 size=7 err=0 content=Hello\\r\\n rest="},
    {"empty message", S(".\r\n"), "DONE consumed=3 size=0 err=0 content= rest="},
    {"empty line then end", S("\r\n.\r\n"), "DONE consumed=5 size=2 err=0 content=\\r\\n rest="},
    {"stuffed dot line", S("..\r\n.\r\n"), "DONE consumed=7 size=3 err=0 content=.\\r\\n rest="},
    {"stuffed dot text", S("a\r\n..b\r\n.\r\n"),
     "DONE consumed=11 size=7 err=0 content=a\\r\\n.b\\r\\n rest="},
    {"unstuffed leading dot is dropped", S(".b\r\n.\r\n"),
     "DONE consumed=7 size=3 err=0 content=b\\r\\n rest="},
    {"triple dot keeps two", S("...\r\n.\r\n"),
     "DONE consumed=8 size=4 err=0 content=..\\r\\n rest="},
    {"dot mid-line is text", S("a.b\r\n.\r\n"),
     "DONE consumed=8 size=5 err=0 content=a.b\\r\\n rest="},
    {"pipelined commands after the end are not consumed",
     S("x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
     "DONE consumed=6 size=3 err=0 content=x\\r\\n "
     "rest=MAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\n"},
    {"second terminator is pipelined data", S(".\r\n.\r\n"),
     "DONE consumed=3 size=0 err=0 content= rest=.\\r\\n"},
    {"no terminator yet", S("Hello\r\nWorld\r\n"),
     "MORE consumed=14 size=14 err=0 content=Hello\\r\\nWorld\\r\\n rest="},
    {"dot without CRLF at the very end", S("a\r\n."),
     "MORE consumed=4 size=3 err=0 content=a\\r\\n rest="},
    {"dot CR at the very end", S("a\r\n.\r"), "MORE consumed=5 size=3 err=0 content=a\\r\\n rest="},

    /* SMTP smuggling: none of these ends the data, each is flagged */
    {"LF . LF", S("a\n.\nb\r\n.\r\n"),
     "DONE consumed=10 size=7 err=1 content=a\\n.\\nb\\r\\n rest="},
    {"CRLF . LF", S("a\r\n.\nb\r\n.\r\n"),
     "DONE consumed=11 size=7 err=1 content=a\\r\\n\\nb\\r\\n rest="},
    {"LF . CRLF", S("a\n.\r\nb\r\n.\r\n"),
     "DONE consumed=11 size=8 err=1 content=a\\n.\\r\\nb\\r\\n rest="},
    {"CR . CR", S("a\r.\rb\r\n.\r\n"),
     "DONE consumed=10 size=7 err=2 content=a\\r.\\rb\\r\\n rest="},
    {"CRLF . CR", S("a\r\n.\rb\r\n.\r\n"),
     "DONE consumed=11 size=7 err=2 content=a\\r\\n\\rb\\r\\n rest="},
    {"CR . CRLF", S("a\r.\r\nb\r\n.\r\n"),
     "DONE consumed=11 size=8 err=2 content=a\\r.\\r\\nb\\r\\n rest="},
    {"CRLF . CR CR LF", S("a\r\n.\r\r\n.\r\n"),
     "DONE consumed=10 size=6 err=2 content=a\\r\\n\\r\\r\\n rest="},
    {"bare LF mid-line", S("a\nb\r\n.\r\n"),
     "DONE consumed=8 size=5 err=1 content=a\\nb\\r\\n rest="},
    {"bare CR mid-line", S("a\rb\r\n.\r\n"),
     "DONE consumed=8 size=5 err=2 content=a\\rb\\r\\n rest="},
    {"bare LF and bare CR", S("a\nb\rc\r\n.\r\n"),
     "DONE consumed=10 size=7 err=3 content=a\\nb\\rc\\r\\n rest="},
    {"LF . LF only: never ends", S("a\n.\n"),
     "MORE consumed=4 size=4 err=1 content=a\\n.\\n rest="},
    {"CRLF . LF only: never ends", S("a\r\n.\n"),
     "MORE consumed=5 size=4 err=1 content=a\\r\\n\\n rest="},
    {"LF . CRLF only: never ends", S("a\n.\r\n"),
     "MORE consumed=5 size=5 err=1 content=a\\n.\\r\\n rest="},
    {"CR . CR only: never ends", S("a\r.\r"),
     "MORE consumed=4 size=4 err=2 content=a\\r.\\r rest="},
    {"leading LF . LF", S("\n.\n"), "MORE consumed=3 size=3 err=1 content=\\n.\\n rest="},
    {"leading . LF", S(".\n"), "MORE consumed=2 size=1 err=1 content=\\n rest="},
    {"CR CR LF is a bare CR then CRLF", S("a\r\r\n.\r\n"),
     "DONE consumed=7 size=4 err=2 content=a\\r\\r\\n rest="},
    {"NUL is content", S("a\0b\r\n.\r\n"),
     "DONE consumed=8 size=5 err=0 content=a\\x00b\\r\\n rest="},
};

Test(smtp_data, table_of_messages_under_every_chunking)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *dc = &data_cases[i];
		free(expect_data(0, 0, dc->in, dc->n, dc->want, dc->label));
	}
}

Test(smtp_data, end_marker_split_across_every_boundary)
{
	/* the table test splits everywhere too; this one makes it explicit */
	const char in[] = "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
	static struct smtp_data d;
	for (size_t k = 0; k <= sizeof(in) - 1; k++) {
		smtp_data_init(&d, 0, 0);
		size_t a = smtp_data_feed(&d, in, k, NULL, NULL);
		size_t b = d.done ? 0 : smtp_data_feed(&d, in + a, sizeof(in) - 1 - a, NULL, NULL);
		cr_assert(d.done, "split at %zu", k);
		cr_assert_eq(a + b, 23, "split at %zu: consumed %zu", k, a + b);
		cr_assert_eq(d.size, 20);
		cr_assert_eq(d.err, 0);
	}
}

Test(smtp_data, consumed_bytes_are_the_raw_stuffed_message)
{
	const char in[] = "..a\r\n.\r\nNOOP\r\n";
	static struct smtp_data d;
	smtp_data_init(&d, 0, 0);
	size_t k = smtp_data_feed(&d, in, sizeof(in) - 1, NULL, NULL);
	cr_assert(d.done);
	cr_assert_eq(k, 8, "caller copies p[0..8) raw to the spool");
	cr_assert_eq(memcmp(in + k, "NOOP\r\n", 6), 0);
	cr_assert_eq(smtp_data_feed(&d, in + k, 6, NULL, NULL), 0, "done: nothing more");
}

static char *
message_of(size_t content, size_t *n)
{
	/* lines of 8 bytes ("xxxxxx\r\n") then a partial line, then ".\r\n" */
	char *b = malloc(content + 8);
	for (size_t i = 0; i < content; i++)
		b[i] = i % 8 == 6 ? '\r' : i % 8 == 7 ? '\n' : 'x';
	size_t m = content;
	if (m > 0 && b[m - 1] == '\r')
		b[m - 1] = 'x';
	if (m == 0 || b[m - 1] != '\n') {
		/* end with CRLF: replace the last two bytes */
		b[m - 2] = '\r';
		b[m - 1] = '\n';
	}
	memcpy(b + m, ".\r\n", 3);
	*n = m + 3;
	return b;
}

Test(smtp_data, size_limit_at_n_minus_1_n_and_n_plus_1)
{
	const uint64_t max = 100;
	for (size_t content = 99; content <= 101; content++) {
		size_t n;
		char *in = message_of(content, &n);
		char label[64];
		snprintf(label, sizeof(label), "max %llu, content %zu", (unsigned long long)max,
			 content);
		char *got = expect_data(max, 0, in, n, NULL, label);
		char want_head[64];
		snprintf(want_head, sizeof(want_head), "DONE consumed=%zu size=%zu err=%u ", n,
			 content, content > max ? SMTP_DATA_E_TOO_BIG : 0u);
		cr_expect_eq(strncmp(got, want_head, strlen(want_head)), 0, "%s: %s", label, got);
		/* emitted content is the first min(content, max) bytes */
		struct split_log esc = {0};
		split_log_bytes(&esc, in, content < max ? content : (size_t)max);
		char *cpos = strstr(got, "content=");
		cr_assert_not_null(cpos);
		cr_expect_eq(strncmp(cpos + 8, split_log_str(&esc), esc.len), 0, "%s", label);
		cr_expect_eq(cpos[8 + esc.len], ' ', "%s: emitted more than the cap", label);
		split_log_free(&esc);
		free(got);
		free(in);
	}
}

Test(smtp_data, too_big_keeps_scanning_for_the_end)
{
	const char in[] = "0123456789\r\n0123456789\r\n.\r\nQUIT\r\n";
	free(expect_data(5, 0, S(in),
			 "DONE consumed=27 size=24 err=4 content=01234 rest=QUIT\\r\\n", "cap 5"));
}

static void
expect_line_limit(uint32_t max_line, size_t len, bool ok)
{
	char *in = malloc(len + 16);
	memcpy(in, "ab\r\n", 4);
	memset(in + 4, 'y', len);
	memcpy(in + 4 + len, "\r\ncd\r\n.\r\n", 9);
	size_t n = len + 13;
	char label[64];
	snprintf(label, sizeof(label), "max_line %u, line %zu", max_line, len);
	char *got = expect_data(0, max_line, in, n, NULL, label);
	char want[64];
	snprintf(want, sizeof(want), "DONE consumed=%zu size=%zu err=%u ", n, n - 3,
		 ok ? 0u : SMTP_DATA_E_LINE_TOO_LONG);
	cr_expect_eq(strncmp(got, want, strlen(want)), 0, "%s: %s", label, got);
	free(got);
	free(in);
}

Test(smtp_data, line_limit_at_n_minus_1_n_and_n_plus_1)
{
	expect_line_limit(50, 49, true);
	expect_line_limit(50, 50, true);
	expect_line_limit(50, 51, false);
	expect_line_limit(998, 997, true);
	expect_line_limit(998, 998, true);
	expect_line_limit(998, 999, false);
}

Test(smtp_data, stuffed_dot_does_not_count_toward_line_length)
{
	/* "..yyyy" unstuffs to ".yyyy": 5 content bytes */
	free(expect_data(0, 5, S("..yyyy\r\n.\r\n"),
			 "DONE consumed=11 size=7 err=0 content=.yyyy\\r\\n rest=", "5 fits"));
	free(expect_data(0, 4, S("..yyyy\r\n.\r\n"),
			 "DONE consumed=11 size=7 err=8 content=.yyyy\\r\\n rest=", "5 > 4"));
}

Test(smtp_data, emit_may_be_null)
{
	static struct smtp_data d;
	smtp_data_init(&d, 0, 0);
	const char in[] = "..x\r\n.\r\n";
	cr_assert_eq(smtp_data_feed(&d, in, sizeof(in) - 1, NULL, NULL), sizeof(in) - 1);
	cr_assert(d.done);
	cr_assert_eq(d.size, 4);
}

Test(smtp_data, big_message_with_many_dots_is_counted_exactly)
{
	/* 20000 lines alternating "..dot" and "plain"; size counts unstuffed bytes */
	size_t lines = 20000, n = 0;
	char *in = malloc(lines * 8 + 3);
	for (size_t i = 0; i < lines; i++) {
		const char *l = i % 2 ? "plain\r\n" : "..dot\r\n";
		memcpy(in + n, l, 7);
		n += 7;
	}
	memcpy(in + n, ".\r\n", 3);
	n += 3;
	static struct smtp_data d;
	smtp_data_init(&d, 0, 0);
	size_t off = 0;
	for (size_t guard = 0; off < n && guard < n; guard++)
		off += smtp_data_feed(&d, in + off, n - off < 4096 ? n - off : 4096, NULL, NULL);
	cr_assert(d.done);
	cr_assert_eq(off, n);
	cr_assert_eq(d.size, lines * 7 - lines / 2);
	cr_assert_eq(d.err, 0);
	free(in);
}

/*
 * A deliberately naive model of end-of-data, written from RFC 5321 4.1.1.4
 * and the smuggling rule: data ends at the first ".\r\n" that starts a line,
 * where a line starts after CRLF only. It checks the automaton on random
 * inputs over the bytes that matter ('.', CR, LF, 'a').
 */
Test(smtp_data, random_inputs_agree_with_a_naive_model_under_every_chunking)
{
	static const char alphabet[] = {'.', '\r', '\n', 'a'};
	uint64_t seed = 0x9e3779b97f4a7c15ull;
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
		unsigned err = 0;
		uint64_t size = 0;
		size_t body_end = done ? end - 3 : end;
		for (size_t j = 0; j < body_end; j++) {
			if (in[j] == '\n' && (j == 0 || in[j - 1] != '\r'))
				err |= SMTP_DATA_E_BARE_LF;
			if (in[j] == '\r' && j + 1 < end && in[j + 1] != '\n')
				err |= SMTP_DATA_E_BARE_CR;
			if (!(in[j] == '.' && data_model_bol(in, j)))
				size++;
		}
		/* a line-initial ".\r" at the very end is held back, not yet content */
		if (!done && n >= 2 && in[n - 1] == '\r' && in[n - 2] == '.' &&
		    data_model_bol(in, n - 2))
			size--;

		struct split_log want = {0}, esc = {0};
		split_log_bytes(&esc, in, n);
		split_log_add(&want, "%s consumed=%zu size=%llu err=%u ", done ? "DONE" : "MORE",
			      end, (unsigned long long)size, err);
		char *got = expect_data(0, 0, in, n, NULL, split_log_str(&esc));
		cr_expect_eq(strncmp(got, split_log_str(&want), want.len), 0,
			     "input %s\n  got:  %s\n  want: %s", split_log_str(&esc), got,
			     split_log_str(&want));
		free(got);
		split_log_free(&want);
		split_log_free(&esc);
	}
}
