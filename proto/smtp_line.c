/*
 * smtp_line.c -- SMTP command-line framing; see smtp_line.h.
 *
 * One memchr for LF per call (libc vectorises it) and one memchr for CR over
 * the same bytes to spot bare CRs; no per-byte state machine on this path.
 */
#include "proto/smtp_line.h"

#include <string.h>

#include "core/check.h"

void
smtp_line_reset(struct smtp_line *l)
{
	l->len = 0;
	l->seen = 0;
	l->discard = false;
	l->cr = false;
	l->bare_cr = false;
}

bool
smtp_line_pending(const struct smtp_line *l)
{
	return l->seen != 0 || l->discard;
}

size_t
smtp_line_feed(struct smtp_line *l, const char *p, size_t n, size_t max, enum smtp_line_status *st,
	       const char **line, size_t *len)
{
	BUG_ON(max < 3 || max > SMTP_MAX_LINE);
	*line = NULL;
	*len = 0;
	*st = SMTP_LINE_AGAIN;
	if (n == 0)
		return 0;

	const char *lf = memchr(p, '\n', n);
	size_t body = lf ? (size_t)(lf - p) : n; /* bytes before the LF */

	/* A CR that ended the previous span is bare unless this span starts with LF. */
	if (l->cr && body > 0)
		l->bare_cr = true;
	/* Any CR before the last byte of body is followed by a non-LF byte. */
	if (body > 1 && memchr(p, '\r', body - 1) != NULL)
		l->bare_cr = true;
	bool last_cr = body > 0 ? p[body - 1] == '\r' : l->cr;

	if (lf == NULL) {
		if (!l->discard) {
			/* Check before copying: the LF still to come would be byte seen+n+1. */
			if ((size_t)l->seen + n >= max) {
				l->discard = true;
			} else {
				memcpy(l->buf + l->len, p, n);
				l->len = (uint16_t)(l->len + n);
				l->seen = (uint32_t)(l->seen + n);
			}
		}
		l->cr = last_cr;
		return n;
	}

	size_t take = body + 1;
	if (l->discard || (size_t)l->seen + take > max) {
		*st = SMTP_LINE_TOO_LONG;
	} else if (!last_cr) {
		*st = SMTP_LINE_BARE_LF; /* only CRLF ends a line: smuggling */
	} else if (l->bare_cr) {
		*st = SMTP_LINE_BARE_CR;
	} else if (l->len == 0) {
		/* Whole line in this span: hand it out in place, no copy. */
		*st = SMTP_LINE_OK;
		*line = p;
		*len = body - 1;
	} else {
		/* seen + take <= max <= SMTP_MAX_LINE, so this fits. */
		memcpy(l->buf + l->len, p, body);
		l->len = (uint16_t)(l->len + body);
		*st = SMTP_LINE_OK;
		*line = l->buf;
		*len = (size_t)l->len - 1;
	}
	smtp_line_reset(l);
	return take;
}
