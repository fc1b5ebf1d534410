/*
 * fuzz_smtp_data.c -- libFuzzer target for proto/smtp_data.c.
 *
 * Input: byte 0 picks max_size, byte 1 max_line, byte 2 the split point and
 * stride, the rest is the DATA stream after "354". Fed whole, split once and
 * in fixed strides, every run must give exactly what a byte-at-a-time
 * reference automaton (written from the header's contract, not from the
 * code) gives: emitted content, bytes consumed, done, err bits and size.
 * Also:
 *   - size accounting: without E_TOO_BIG, size equals the bytes emitted;
 *     with it, exactly max_size bytes were emitted and size > max_size;
 *   - p[0..ret) of a finished message ends with CRLF "." CRLF (or is ".\r\n");
 *   - round trip: a message that ended cleanly (no error bits),
 *     dot-stuffed again by smtp_bdat, unstuffs back to the same content.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/smtp_bdat.h"
#include "proto/smtp_data.h"
#include "tests/fuzz/fuzz.h"

static void
emit_trace(void *arg, const char *p, size_t n)
{
	FUZZ_CHECK(n > 0);
	fuzz_trace_bytes(arg, p, n);
}

struct result {
	struct fuzz_trace out; /* emitted content */
	size_t consumed;       /* bytes of the input consumed */
	bool done;
	unsigned err;
	uint64_t size;
};

static void
run(const char *in, size_t n, uint64_t max_size, uint32_t max_line, enum fuzz_plan plan, size_t at,
    struct result *r)
{
	struct smtp_data d;
	smtp_data_init(&d, max_size, max_line);
	r->out.len = 0;
	r->consumed = 0;
	for (size_t off = 0; off < n && !d.done;) {
		size_t c = fuzz_chunk(plan, at, off, n);
		char *p = fuzz_dup(in + off, c);
		size_t k = smtp_data_feed(&d, p, c, emit_trace, &r->out);
		FUZZ_CHECK(k <= c);
		FUZZ_CHECK(k == c || d.done);
		if (d.done) /* once done, nothing more is consumed */
			FUZZ_CHECK(smtp_data_feed(&d, p, c, emit_trace, &r->out) == 0);
		r->consumed += k;
		free(p);
		off += c;
	}
	r->done = d.done;
	r->err = d.err;
	r->size = d.size;
	if (d.done) {
		/* the raw message ends with CRLF "." CRLF, or is ".\r\n" alone */
		FUZZ_CHECK(r->consumed >= 3);
		FUZZ_CHECK(r->consumed == 3 || (r->consumed >= 5 && in[r->consumed - 5] == '\r' &&
						in[r->consumed - 4] == '\n'));
		FUZZ_CHECK(memcmp(in + r->consumed - 3, ".\r\n", 3) == 0);
	}
	if (d.err & SMTP_DATA_E_TOO_BIG) {
		FUZZ_CHECK(max_size != 0 && d.size > max_size);
		FUZZ_CHECK(r->out.len == max_size);
	} else {
		FUZZ_CHECK(max_size == 0 || d.size <= max_size);
		FUZZ_CHECK(r->out.len == d.size);
	}
}

/* The header's contract, one byte at a time. */
static void
model(const char *in, size_t n, uint64_t max_size, uint32_t max_line, struct result *r)
{
	enum { BOL, TEXT, CR, DOT, DOT_CR } st = BOL;
	struct fuzz_trace content = {0};
	uint64_t line = 0;
	size_t i = 0;
	r->done = false;
	r->err = 0;
	while (i < n && !r->done) {
		char c = in[i];
		switch (st) {
		case BOL:
			if (c == '.') {
				st = DOT; /* 4.5.2: the line-initial dot is dropped */
				i++;
			} else {
				st = TEXT;
			}
			break;
		case TEXT:
			if (c == '\r') {
				st = CR;
			} else {
				if (c == '\n')
					r->err |= SMTP_DATA_E_BARE_LF;
				fuzz_trace_bytes(&content, &c, 1);
				line++;
			}
			i++;
			break;
		case CR:
		case DOT_CR:
			if (c == '\n' && st == DOT_CR) {
				r->done = true;
				i++;
				break;
			}
			if (c == '\n') {
				fuzz_trace_bytes(&content, "\r\n", 2);
				line = 0;
				st = BOL;
				i++;
				break;
			}
			r->err |= SMTP_DATA_E_BARE_CR;
			fuzz_trace_bytes(&content, "\r", 1);
			line++;
			st = TEXT; /* reprocess c */
			break;
		case DOT:
			if (c == '\r') {
				st = DOT_CR;
				i++;
			} else {
				st = TEXT;
			}
			break;
		}
		if (max_line != 0 && line > max_line)
			r->err |= SMTP_DATA_E_LINE_TOO_LONG;
	}
	if (!r->done && st == CR) {
		/* a CR at the very end is content already (not after a dot) */
		fuzz_trace_bytes(&content, "\r", 1);
	}
	r->consumed = i;
	r->size = content.len;
	r->out.len = 0;
	if (max_size != 0 && content.len > max_size) {
		r->err |= SMTP_DATA_E_TOO_BIG;
		fuzz_trace_bytes(&r->out, content.buf, (size_t)max_size);
	} else {
		fuzz_trace_bytes(&r->out, content.buf, content.len);
	}
	fuzz_trace_free(&content);
}

static bool
result_eq(const struct result *a, const struct result *b)
{
	return fuzz_trace_eq(&a->out, &b->out) && a->consumed == b->consumed &&
	       a->done == b->done && a->err == b->err && a->size == b->size;
}

/* Stuff content (smtp_bdat), then unstuff it (smtp_data): same content. */
static void
round_trip(const struct fuzz_trace *content)
{
	struct smtp_stuff s;
	struct fuzz_trace wire = {0}, back = {0};
	smtp_stuff_init(&s, 0);
	char *p = fuzz_dup(content->buf, content->len);
	smtp_stuff_feed(&s, p, content->len, emit_trace, &wire);
	smtp_stuff_finish(&s, emit_trace, &wire);
	free(p);
	FUZZ_CHECK(s.err == 0);

	struct smtp_data d;
	smtp_data_init(&d, 0, 0);
	p = fuzz_dup(wire.buf, wire.len);
	size_t k = smtp_data_feed(&d, p, wire.len, emit_trace, &back);
	free(p);
	FUZZ_CHECK(d.done && k == wire.len && d.err == 0);
	FUZZ_CHECK(fuzz_trace_eq(content, &back));
	fuzz_trace_free(&wire);
	fuzz_trace_free(&back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	static const uint64_t sizes[] = {0, 0, 0, 0, 1, 2, 3, 5, 8, 13, 64, 1000};
	static const uint32_t lines[] = {0, 0, 0, 0, 1, 2, 3, 4, 8, 76, 998, 1000};
	uint64_t max_size = sizes[data[0] % (sizeof(sizes) / sizeof(sizes[0]))];
	uint32_t max_line = lines[data[1] % (sizeof(lines) / sizeof(lines[0]))];
	size_t at = data[2];
	const char *in = (const char *)data + 3;
	size_t n = size - 3;

	struct result want = {0}, got = {0};
	model(in, n, max_size, max_line, &want);

	run(in, n, max_size, max_line, FUZZ_PLAN_WHOLE, 0, &got);
	FUZZ_CHECK(result_eq(&want, &got));
	run(in, n, max_size, max_line, FUZZ_PLAN_SPLIT, at % (n + 1), &got);
	FUZZ_CHECK(result_eq(&want, &got));
	run(in, n, max_size, max_line, FUZZ_PLAN_STRIDE, at % 7 + 1, &got);
	FUZZ_CHECK(result_eq(&want, &got));

	if (want.done && want.err == 0)
		round_trip(&want.out);

	fuzz_trace_free(&want.out);
	fuzz_trace_free(&got.out);
	return 0;
}
