/*
 * smtp_bdat.c -- dot-stuffing of BDAT content; see smtp_bdat.h.
 */
#include "proto/smtp_bdat.h"

#include <string.h>

#include "core/check.h"

void
smtp_stuff_init(struct smtp_stuff *s, uint64_t max_size)
{
	*s = (struct smtp_stuff){.state = SMTP_STUFF_BOL, .max_size = max_size};
}

static inline void
stuff_out(const char *p, size_t n, smtp_data_emit_fn *emit, void *arg)
{
	if (n != 0 && emit != NULL)
		emit(arg, p, n);
}

/* Scan p[0..n) and emit its stuffed form (emit NULL: scan for flags only). */
static void
stuff_scan(struct smtp_stuff *s, const char *p, size_t n, smtp_data_emit_fn *emit, void *arg)
{
	size_t i = 0, run = 0; /* p[run..i) is pending output */

	while (i < n) {
		char c = p[i];
		switch (s->state) {
		case SMTP_STUFF_CR:
			if (c == '\n') {
				i++;
				s->state = SMTP_STUFF_BOL;
				break;
			}
			s->err |= SMTP_DATA_E_BARE_CR;
			s->state = SMTP_STUFF_BOL_BARE; /* stuff a dot after a bare CR too */
			break;
		case SMTP_STUFF_BOL:
		case SMTP_STUFF_BOL_BARE:
			if (c == '.') {
				/* RFC 5321 4.5.2: double a line-initial dot */
				stuff_out(p + run, i - run, emit, arg);
				stuff_out(".", 1, emit, arg);
				run = i;
			}
			s->state = SMTP_STUFF_TEXT;
			break;
		case SMTP_STUFF_TEXT:
			while (i < n && p[i] != '\r' && p[i] != '\n')
				i++;
			if (i == n)
				break;
			if (p[i] == '\r') {
				s->state = SMTP_STUFF_CR;
			} else {
				s->err |= SMTP_DATA_E_BARE_LF;
				s->state = SMTP_STUFF_BOL_BARE; /* stuff a dot after a bare LF */
			}
			i++;
			break;
		}
	}
	stuff_out(p + run, i - run, emit, arg);
}

void
smtp_stuff_feed(struct smtp_stuff *s, const char *p, size_t n, smtp_data_emit_fn *emit, void *arg)
{
	if (s->err & SMTP_DATA_E_TOO_BIG) {
		emit = NULL;
	} else if (s->max_size != 0 && s->size + n > s->max_size) {
		/* emit the bytes within the cap, then only scan for flags */
		size_t room = (size_t)(s->max_size - s->size);
		stuff_scan(s, p, room, emit, arg);
		s->err |= SMTP_DATA_E_TOO_BIG;
		s->size += room;
		p += room;
		n -= room;
		emit = NULL;
	}
	stuff_scan(s, p, n, emit, arg);
	s->size += n;
}

void
smtp_stuff_finish(struct smtp_stuff *s, smtp_data_emit_fn *emit, void *arg)
{
	if (s->state == SMTP_STUFF_CR)
		s->err |= SMTP_DATA_E_BARE_CR;
	/* CRLF "." CRLF needs a real CRLF before the dot; empty content needs none.
	 * Past the cap the output was cut anywhere, so always add one. */
	if (s->state != SMTP_STUFF_BOL || (s->err & SMTP_DATA_E_TOO_BIG))
		stuff_out("\r\n", 2, emit, arg);
	stuff_out(".\r\n", 3, emit, arg);
	s->state = SMTP_STUFF_BOL;
}
