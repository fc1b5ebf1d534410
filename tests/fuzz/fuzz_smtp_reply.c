/*
 * fuzz_smtp_reply.c -- libFuzzer target for proto/smtp_reply.c.
 *
 * Input: byte 0 picks the split point and stride, the rest is an upstream
 * byte stream (possibly several pipelined replies). It is fed whole, split
 * once and in fixed strides; the sequence of replies (code, lines, text,
 * where each ends in the stream, EHLO capabilities) and whether the stream
 * ends in ERR must not depend on the split. The offset at which ERR is
 * reported is not compared: the header only promises that it covers the
 * offending line, and an over-long line may be cut short by the split.
 * Each DONE reply is checked against the grammar of the header:
 *   - len <= SMTP_REPLY_MAX and the text is exactly the bytes consumed for
 *     this reply;
 *   - every line is "ddd" [("-" / SP) text] CRLF with no other CR or LF,
 *     the same code everywhere, first digit 2-5, second 0-5, "-" on every
 *     line but the last;
 *   - smtp_reply_line gives nlines lines inside text, and
 *     smtp_reply_enhanced a span inside each line.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/smtp_reply.h"
#include "tests/fuzz/fuzz.h"

/* Check a DONE reply whose bytes are raw[0..n) of the input. */
static void
check_done(const struct smtp_reply *r, const char *raw, size_t n, struct fuzz_trace *t)
{
	FUZZ_CHECK(r->len <= SMTP_REPLY_MAX);
	FUZZ_CHECK(r->len == n && memcmp(r->text, raw, n) == 0);
	FUZZ_CHECK(r->code >= 200 && r->code <= 559 && r->code % 100 < 60);
	FUZZ_CHECK(r->nlines >= 1);

	size_t off = 0;
	unsigned lines = 0;
	while (off < r->len) {
		const char *lf = memchr(r->text + off, '\n', r->len - off);
		FUZZ_CHECK(lf != NULL);
		size_t e = (size_t)(lf - r->text) + 1, ln = e - off;
		const char *l = r->text + off;
		FUZZ_CHECK(ln >= 5 && l[ln - 2] == '\r');
		FUZZ_CHECK(memchr(l, '\r', ln - 2) == NULL);
		FUZZ_CHECK((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0') == r->code);
		bool last = e == r->len;
		if (last)
			FUZZ_CHECK(ln == 5 || l[3] == ' ');
		else
			FUZZ_CHECK(l[3] == '-');

		const char *p = NULL;
		size_t pn = 0;
		FUZZ_CHECK(smtp_reply_line(r, lines, &p, &pn));
		FUZZ_CHECK(p >= l && p + pn == l + ln - 2);
		struct span sp;
		if (smtp_reply_enhanced(p, pn, &sp))
			FUZZ_CHECK(sp.len >= 5 && (size_t)sp.off + sp.len <= pn);
		lines++;
		off = e;
	}
	FUZZ_CHECK(lines == r->nlines);
	const char *p;
	size_t pn;
	FUZZ_CHECK(!smtp_reply_line(r, lines, &p, &pn));

	struct smtp_ehlo_caps caps;
	smtp_ehlo_caps_parse(r, &caps);
	fuzz_trace_fmt(t, "DONE %u %u caps=%d%d%d%d%d%d%d size=%llu\n", r->code, r->nlines,
		       caps.pipelining, caps.size, caps.eightbitmime, caps.smtputf8, caps.starttls,
		       caps.chunking, caps.enhancedstatuscodes, (unsigned long long)caps.size_max);
	fuzz_trace_bytes(t, r->text, r->len);
}

static void
run(const char *in, size_t n, enum fuzz_plan plan, size_t at, struct fuzz_trace *t)
{
	static struct smtp_reply r; /* 4 KiB: keep it off the stack */
	memset(&r, 0, sizeof(r));
	size_t start = 0; /* offset of the current reply in the input */
	bool err = false;
	for (size_t off = 0; off < n && !err;) {
		size_t c = fuzz_chunk(plan, at, off, n);
		char *p = fuzz_dup(in + off, c);
		size_t used = 0;
		while (used < c) {
			enum smtp_reply_status st;
			size_t k = smtp_reply_feed(&r, p + used, c - used, &st);
			FUZZ_CHECK(k <= c - used);
			FUZZ_CHECK(r.len <= SMTP_REPLY_MAX);
			used += k;
			if (st == SMTP_REPLY_ERR) {
				/* sticky until reset */
				FUZZ_CHECK(smtp_reply_feed(&r, p, c, &st) == 0 &&
					   st == SMTP_REPLY_ERR);
				fuzz_trace_fmt(t, "ERR\n");
				err = true;
				break;
			}
			FUZZ_CHECK(k > 0);
			if (st == SMTP_REPLY_AGAIN) {
				FUZZ_CHECK(used == c);
				continue;
			}
			FUZZ_CHECK(st == SMTP_REPLY_DONE && p[used - 1] == '\n');
			size_t end = off + used;
			check_done(&r, in + start, end - start, t);
			fuzz_trace_fmt(t, " @%zu\n", end);
			start = end;
		}
		free(p);
		off += c;
	}
	if (!err)
		fuzz_trace_fmt(t, "END %zu\n", n - start);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t at = data[0];
	const char *in = (const char *)data + 1;
	size_t n = size - 1;

	struct fuzz_trace want = {0}, got = {0};
	run(in, n, FUZZ_PLAN_WHOLE, 0, &want);
	run(in, n, FUZZ_PLAN_SPLIT, at % (n + 1), &got);
	FUZZ_CHECK(fuzz_trace_eq(&want, &got));
	got.len = 0;
	run(in, n, FUZZ_PLAN_STRIDE, at % 11 + 1, &got);
	FUZZ_CHECK(fuzz_trace_eq(&want, &got));

	fuzz_trace_free(&want);
	fuzz_trace_free(&got);
	return 0;
}
