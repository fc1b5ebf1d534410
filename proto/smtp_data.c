/*
 * smtp_data.c -- streaming DATA automaton; see smtp_data.h.
 *
 * The TEXT state, where almost all bytes are, is scanned 16 bytes at a time
 * for the first CR or LF (SSE2, which every x86-64 has; a plain loop
 * elsewhere), and a CRLF found whole ends the line without another trip
 * through the state machine. Mail lines are short (about 76 octets), so one
 * combined scan per line beats two memchr calls, whose set-up cost
 * dominated on short lines: bench/bench_proto.c measured 5.3 GB/s with
 * memchr and 7.8 GB/s with this scan. Rejected: classifying whole 64-byte
 * blocks with CR/LF/'.' bit masks, which measured slower (5-6.9 GB/s) on
 * the same input, as the masks cost more than the short lines save.
 */
#include "proto/smtp_data.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/check.h"

void
smtp_data_init(struct smtp_data *d, uint64_t max_size, uint32_t max_line)
{
	*d = (struct smtp_data){
	    .state = SMTP_DATA_BOL,
	    .max_line = max_line,
	    .max_size = max_size,
	};
}

/* Emit p[0..n) as content, honouring max_size. */
static void
data_out(struct smtp_data *d, const char *p, size_t n, smtp_data_emit_fn *emit, void *arg)
{
	if (n == 0)
		return;
	uint64_t room = d->max_size == 0	 ? UINT64_MAX
			: d->size >= d->max_size ? 0
						 : d->max_size - d->size;
	d->size += n;
	if (d->max_size != 0 && d->size > d->max_size)
		d->err |= SMTP_DATA_E_TOO_BIG;
	if (emit == NULL || room == 0)
		return;
	emit(arg, p, n < room ? n : (size_t)room);
}

static inline void
data_line_add(struct smtp_data *d, size_t n)
{
	uint64_t l = (uint64_t)d->line_len + n;
	if (d->max_line != 0 && l > d->max_line)
		d->err |= SMTP_DATA_E_LINE_TOO_LONG;
	d->line_len = l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
}

/* Index of the first CR or LF in p[0..n), or n. */
static inline size_t
scan_crlf(const char *p, size_t n)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		int m =
		    _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));

		if (m != 0)
			return i + (size_t)__builtin_ctz((unsigned)m);
	}
#endif
	for (; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n')
			return i;
	return n;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *p, size_t n, smtp_data_emit_fn *emit, void *arg)
{
	if (d->done)
		return 0;
	size_t i = 0;
	size_t run = 0; /* start of content not yet emitted: p[run..i) */

	while (i < n) {
		char c = p[i];
		switch (d->state) {
		case SMTP_DATA_BOL:
			if (c == '.') {
				/* RFC 5321 4.5.2: the line-initial dot is never content */
				data_out(d, p + run, i - run, emit, arg);
				i++;
				run = i;
				d->state = SMTP_DATA_BOL_DOT;
				break;
			}
			d->state = SMTP_DATA_TEXT;
			break;
		case SMTP_DATA_TEXT: {
			size_t j = i + scan_crlf(p + i, n - i);

			data_line_add(d, j - i);
			i = j;
			if (i == n)
				break;
			if (p[i] == '\r') {
				if (i + 1 < n && p[i + 1] == '\n') {
					/* the common case: a whole CRLF ends the line */
					i += 2;
					d->line_len = 0;
					d->state = SMTP_DATA_BOL;
					break;
				}
				d->state = SMTP_DATA_CR;
			} else {
				/* bare LF: content, but it does not start a line (smuggling) */
				d->err |= SMTP_DATA_E_BARE_LF;
				data_line_add(d, 1);
			}
			i++;
			break;
		}
		case SMTP_DATA_CR:
			if (c == '\n') {
				i++;
				d->line_len = 0;
				d->state = SMTP_DATA_BOL;
			} else {
				/* the CR was bare; it is content, c is reprocessed as text */
				d->err |= SMTP_DATA_E_BARE_CR;
				data_line_add(d, 1);
				d->state = SMTP_DATA_TEXT;
			}
			break;
		case SMTP_DATA_BOL_DOT:
			if (c == '\r') {
				i++;
				run = i; /* hold the CR until we know what follows */
				d->state = SMTP_DATA_BOL_DOT_CR;
			} else {
				d->state = SMTP_DATA_TEXT;
			}
			break;
		case SMTP_DATA_BOL_DOT_CR:
			if (c == '\n') {
				i++;
				d->state = SMTP_DATA_DONE;
				d->done = true;
				return i; /* p[run..i) is the held CRLF; not content */
			}
			/* ".\r" then not LF: bare CR, emit the held CR, reprocess c */
			d->err |= SMTP_DATA_E_BARE_CR;
			data_out(d, "\r", 1, emit, arg);
			data_line_add(d, 1);
			d->state = SMTP_DATA_TEXT;
			break;
		case SMTP_DATA_DONE:
			BUG_ON(1);
			break;
		}
	}
	if (d->state != SMTP_DATA_BOL_DOT_CR)
		data_out(d, p + run, i - run, emit, arg);
	return n;
}
