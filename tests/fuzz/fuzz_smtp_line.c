/*
 * fuzz_smtp_line.c -- libFuzzer target for proto/smtp_line.c.
 *
 * Input: byte 0 picks max (the configured line limit), byte 1 the split
 * point and stride, the rest is the client byte stream. The stream is fed
 * whole, split once, and in fixed strides; each run's events must equal a
 * reference model computed straight from the bytes:
 *   - a segment through LF longer than max bytes is TOO_LONG;
 *   - else without CR just before the LF it is BARE_LF;
 *   - else with any other CR in it, BARE_CR;
 *   - else OK, and the line is the segment without its CRLF.
 * A trailing segment without LF leaves smtp_line_pending() true.
 * Per call: consumed bytes stay inside the chunk, AGAIN consumes it all,
 * any other status ends right after an LF, an OK line is at most max - 2
 * bytes and points either at the start of the chunk (in place, then it is
 * exactly the chunk's first len bytes) or into l->buf.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/smtp_line.h"
#include "tests/fuzz/fuzz.h"

static size_t
pick_max(uint8_t b)
{
	static const size_t table[] = {3, 4, 5, 6, 8, 16, 80, 512, 1000, 2047, SMTP_MAX_LINE};
	if (b & 0x80)
		return table[(b & 0x7f) % (sizeof(table) / sizeof(table[0]))];
	return 3 + (size_t)(b & 0x7f); /* 3..130: small limits hit TOO_LONG often */
}

static void
run(const char *in, size_t n, size_t max, enum fuzz_plan plan, size_t at, struct fuzz_trace *t)
{
	static struct smtp_line l; /* 2 KiB: keep it off the stack */
	memset(&l, 0, sizeof(l));
	for (size_t off = 0; off < n;) {
		size_t c = fuzz_chunk(plan, at, off, n);
		char *p = fuzz_dup(in + off, c);
		size_t used = 0;
		while (used < c) {
			enum smtp_line_status st;
			const char *line = (const char *)1;
			size_t len = 99;
			size_t k = smtp_line_feed(&l, p + used, c - used, max, &st, &line, &len);
			FUZZ_CHECK(k > 0 && k <= c - used);
			if (st == SMTP_LINE_AGAIN) {
				FUZZ_CHECK(k == c - used);
				FUZZ_CHECK(line == NULL && len == 0);
			} else {
				FUZZ_CHECK(p[used + k - 1] == '\n');
				FUZZ_CHECK(memchr(p + used, '\n', k - 1) == NULL);
				FUZZ_CHECK(!smtp_line_pending(&l));
			}
			if (st == SMTP_LINE_OK) {
				FUZZ_CHECK(line != NULL);
				FUZZ_CHECK(len + 2 <= max);
				if (line == p + used) {
					FUZZ_CHECK(len + 2 ==
						   k); /* in place: the whole line is here */
				} else {
					FUZZ_CHECK(line == l.buf);
					FUZZ_CHECK(len + 2 > k);
				}
				FUZZ_CHECK(memchr(line, '\r', len) == NULL);
				FUZZ_CHECK(memchr(line, '\n', len) == NULL);
				fuzz_trace_fmt(t, "OK %zu:", len);
				fuzz_trace_bytes(t, line, len);
				fuzz_trace_bytes(t, "\n", 1);
			} else if (st != SMTP_LINE_AGAIN) {
				FUZZ_CHECK(line == NULL && len == 0);
				fuzz_trace_fmt(t, "ST %d\n", (int)st);
			}
			used += k;
		}
		free(p);
		off += c;
	}
	fuzz_trace_fmt(t, "END pending=%d\n", smtp_line_pending(&l));
}

/* The reference model of the header's contract, over the whole input. */
static void
model(const char *in, size_t n, size_t max, struct fuzz_trace *t)
{
	size_t s = 0;
	while (s < n) {
		const char *lf = memchr(in + s, '\n', n - s);
		if (lf == NULL)
			break;
		size_t e = (size_t)(lf - in) + 1; /* segment in[s..e), LF included */
		size_t seg = e - s;
		if (seg > max) {
			fuzz_trace_fmt(t, "ST %d\n", (int)SMTP_LINE_TOO_LONG);
		} else if (seg < 2 || in[e - 2] != '\r') {
			fuzz_trace_fmt(t, "ST %d\n", (int)SMTP_LINE_BARE_LF);
		} else if (memchr(in + s, '\r', seg - 2) != NULL) {
			fuzz_trace_fmt(t, "ST %d\n", (int)SMTP_LINE_BARE_CR);
		} else {
			fuzz_trace_fmt(t, "OK %zu:", seg - 2);
			fuzz_trace_bytes(t, in + s, seg - 2);
			fuzz_trace_bytes(t, "\n", 1);
		}
		s = e;
	}
	fuzz_trace_fmt(t, "END pending=%d\n", s < n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t max = pick_max(data[0]);
	size_t at = data[1];
	const char *in = (const char *)data + 2;
	size_t n = size - 2;

	struct fuzz_trace want = {0}, got = {0};
	model(in, n, max, &want);

	run(in, n, max, FUZZ_PLAN_WHOLE, 0, &got);
	FUZZ_CHECK(fuzz_trace_eq(&want, &got));
	got.len = 0;
	run(in, n, max, FUZZ_PLAN_SPLIT, at % (n + 1), &got);
	FUZZ_CHECK(fuzz_trace_eq(&want, &got));
	got.len = 0;
	run(in, n, max, FUZZ_PLAN_STRIDE, at % 13 + 1, &got);
	FUZZ_CHECK(fuzz_trace_eq(&want, &got));

	fuzz_trace_free(&want);
	fuzz_trace_free(&got);
	return 0;
}
