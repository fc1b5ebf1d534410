/*
 * fuzz_smtp_bdat.c -- libFuzzer target for proto/smtp_bdat.c.
 *
 * Input: byte 0 picks max_size, byte 1 the split point and stride, the rest
 * is the content of a BDAT transaction (the concatenated chunk octets). It
 * is stuffed whole, in two chunks and in fixed strides; each run must equal
 * a reference written from the header's contract:
 *   - a dot is doubled when it is the first octet, or follows CR or LF;
 *   - E_BARE_LF for an LF not after CR, E_BARE_CR for a CR not before LF;
 *   - past max_size, the output is the stuffed form of the first max_size
 *     octets, then "\r\n.\r\n"; otherwise finish adds "\r\n" unless the
 *     content is empty or ends with CRLF, then ".\r\n";
 *   - size counts all client octets.
 * Round trip: when no bare CR/LF and no cap was hit, smtp_data consumes the
 * whole stuffed output, ends on its terminator without errors and emits the
 * original content back (plus the CRLF finish added to an unterminated last
 * line).
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
	struct fuzz_trace out; /* stuffed output, terminator included */
	unsigned err;
	uint64_t size;
};

static void
run(const char *in, size_t n, uint64_t max_size, enum fuzz_plan plan, size_t at, struct result *r)
{
	struct smtp_stuff s;
	smtp_stuff_init(&s, max_size);
	r->out.len = 0;
	for (size_t off = 0; off < n;) {
		size_t c = fuzz_chunk(plan, at, off, n);
		char *p = fuzz_dup(in + off, c);
		smtp_stuff_feed(&s, p, c, emit_trace, &r->out);
		free(p);
		off += c;
		FUZZ_CHECK(s.size == off);
	}
	smtp_stuff_finish(&s, emit_trace, &r->out);
	r->err = s.err;
	r->size = s.size;
}

static void
model(const char *in, size_t n, uint64_t max_size, struct result *r)
{
	r->out.len = 0;
	r->err = 0;
	r->size = n;
	bool big = max_size != 0 && n > max_size;
	size_t lim = big ? (size_t)max_size : n;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		char prev = i > 0 ? in[i - 1] : '\n';
		if (c == '\n' && (i == 0 || in[i - 1] != '\r'))
			r->err |= SMTP_DATA_E_BARE_LF;
		if (c == '\r' && (i + 1 == n || in[i + 1] != '\n'))
			r->err |= SMTP_DATA_E_BARE_CR;
		if (i >= lim)
			continue;
		if (c == '.' && (prev == '\r' || prev == '\n'))
			fuzz_trace_bytes(&r->out, ".", 1); /* RFC 5321 4.5.2 */
		fuzz_trace_bytes(&r->out, &c, 1);
	}
	if (big) {
		r->err |= SMTP_DATA_E_TOO_BIG;
		fuzz_trace_bytes(&r->out, "\r\n", 2);
	} else if (n > 0 && !(n >= 2 && in[n - 2] == '\r' && in[n - 1] == '\n')) {
		fuzz_trace_bytes(&r->out, "\r\n", 2);
	}
	fuzz_trace_bytes(&r->out, ".\r\n", 3);
}

static bool
result_eq(const struct result *a, const struct result *b)
{
	return fuzz_trace_eq(&a->out, &b->out) && a->err == b->err && a->size == b->size;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	static const uint64_t sizes[] = {0, 0, 0, 0, 1, 2, 3, 5, 8, 13, 64, 1000};
	uint64_t max_size = sizes[data[0] % (sizeof(sizes) / sizeof(sizes[0]))];
	size_t at = data[1];
	const char *in = (const char *)data + 2;
	size_t n = size - 2;

	struct result want = {0}, got = {0};
	model(in, n, max_size, &want);

	run(in, n, max_size, FUZZ_PLAN_WHOLE, 0, &got);
	FUZZ_CHECK(result_eq(&want, &got));
	run(in, n, max_size, FUZZ_PLAN_SPLIT, at % (n + 1), &got);
	FUZZ_CHECK(result_eq(&want, &got));
	run(in, n, max_size, FUZZ_PLAN_STRIDE, at % 7 + 1, &got);
	FUZZ_CHECK(result_eq(&want, &got));

	if (got.err == 0) {
		/* round trip through the DATA unstuffer, fed in strides */
		struct smtp_data d;
		struct fuzz_trace back = {0};
		smtp_data_init(&d, 0, 0);
		size_t used = 0, stride = at % 5 + 1;
		while (used < got.out.len && !d.done) {
			size_t c = got.out.len - used < stride ? got.out.len - used : stride;
			char *p = fuzz_dup(got.out.buf + used, c);
			size_t k = smtp_data_feed(&d, p, c, emit_trace, &back);
			free(p);
			FUZZ_CHECK(k == c); /* the terminator is the very last byte */
			used += k;
		}
		FUZZ_CHECK(d.done && used == got.out.len && d.err == 0);
		/* finish completed a last line without CRLF; that CRLF comes back too */
		bool crlf = n == 0 || (n >= 2 && in[n - 2] == '\r' && in[n - 1] == '\n');
		size_t blen = crlf ? n : n + 2;
		FUZZ_CHECK(back.len == blen && (n == 0 || memcmp(back.buf, in, n) == 0));
		FUZZ_CHECK(crlf || memcmp(back.buf + n, "\r\n", 2) == 0);
		FUZZ_CHECK(d.size == blen);
		fuzz_trace_free(&back);
	}

	fuzz_trace_free(&want.out);
	fuzz_trace_free(&got.out);
	return 0;
}
