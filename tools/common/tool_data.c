/*
 * tool_data.c -- see tool_data.h. Inside a line the scanner jumps from LF to
 * LF with memchr, so a body costs one memchr per line plus the callback per
 * removed dot; the byte-wise states only run at line starts.
 */
#include "tools/common/tool_data.h"

#include <string.h>

void
tool_data_init(struct tool_data *d)
{
	d->st = TOOL_DATA_BOL;
}

size_t
tool_data_feed(struct tool_data *d, const char *p, size_t n, bool *done, tool_data_emit_fn *emit,
	       void *ctx)
{
	size_t i = 0, span = 0; /* p[span..i) is content not yet emitted */
	enum tool_data_state st = d->st;

	while (i < n) {
		switch (st) {
		case TOOL_DATA_BOL:
			if (p[i] == '.') {
				/* RFC 5321 4.5.2: drop the leading dot */
				if (i > span)
					emit(ctx, p + span, i - span);
				i++;
				span = i;
				st = TOOL_DATA_DOT;
			} else {
				st = TOOL_DATA_MID;
			}
			break;
		case TOOL_DATA_DOT:
			if (p[i] == '\r') {
				/* maybe the terminator: hold the CR back */
				i++;
				span = i;
				st = TOOL_DATA_DOTCR;
			} else {
				st = TOOL_DATA_MID;
			}
			break;
		case TOOL_DATA_DOTCR:
			if (p[i] == '\n') {
				d->st = TOOL_DATA_BOL;
				*done = true;
				return i + 1;
			}
			/* "." CR x: an ordinary (unstuffed) line after all */
			emit(ctx, "\r", 1);
			span = i;
			st = TOOL_DATA_CR;
			break;
		case TOOL_DATA_CR:
			if (p[i] == '\n')
				st = TOOL_DATA_BOL;
			else if (p[i] != '\r')
				st = TOOL_DATA_MID;
			i++;
			break;
		case TOOL_DATA_MID: {
			const char *lf = memchr(p + i, '\n', n - i);
			size_t j;

			if (lf == NULL) {
				st = p[n - 1] == '\r' ? TOOL_DATA_CR : TOOL_DATA_MID;
				i = n;
				break;
			}
			j = (size_t)(lf - p);
			/* a LF ends a line only after a CR of this same line */
			st = (j > i && p[j - 1] == '\r') ? TOOL_DATA_BOL : TOOL_DATA_MID;
			i = j + 1;
			break;
		}
		}
	}
	if (i > span)
		emit(ctx, p + span, i - span);
	d->st = st;
	return n;
}
