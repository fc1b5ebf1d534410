/*
 * tool_reply.c -- see tool_reply.h. Only CRLF ends a reply line; a bare LF is
 * a syntax error, because a server that emits one would confuse real clients
 * too and the load tools exist to catch exactly that.
 */
#include "tools/common/tool_reply.h"

#include <string.h>
#include <strings.h>

#include "core/err.h"

void
tool_reply_reset(struct tool_reply *r)
{
	r->code = 0;
	r->nlines = 0;
}

ssize_t
tool_reply_feed(struct tool_reply *r, const char *p, size_t n, struct tool_reply_line *l)
{
	const char *lf;
	size_t len;
	int code;

	lf = memchr(p, '\n', n);
	if (lf == NULL)
		return n >= TOOL_REPLY_MAX_LINE ? -SLUICE_ELIMIT : 0;
	len = (size_t)(lf - p) + 1;
	if (len > TOOL_REPLY_MAX_LINE)
		return -SLUICE_ELIMIT;
	if (len < 2 || p[len - 2] != '\r')
		return -SLUICE_ESYNTAX; /* bare LF */
	/* "DDD" CRLF, or "DDD" SP/"-" text CRLF */
	if (len < 5 || p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
	    p[2] > '9')
		return -SLUICE_ESYNTAX;
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (len == 5) {
		l->last = true;
		l->text = p + 3;
		l->textlen = 0;
	} else if (p[3] == ' ' || p[3] == '-') {
		l->last = p[3] == ' ';
		l->text = p + 4;
		l->textlen = len - 6;
	} else {
		return -SLUICE_ESYNTAX;
	}
	if (r->nlines > 0 && r->code != code)
		return -SLUICE_ESYNTAX;
	l->code = code;
	r->code = code;
	r->nlines++;
	if (l->last)
		tool_reply_reset(r);
	return (ssize_t)len;
}

bool
tool_reply_is_keyword(const struct tool_reply_line *l, const char *keyword)
{
	size_t k = strlen(keyword);

	if (l->textlen < k || strncasecmp(l->text, keyword, k) != 0)
		return false;
	return l->textlen == k || l->text[k] == ' ';
}
