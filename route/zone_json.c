/*
 * zone_json.c -- a struct zone_decision as the one-line JSON object that
 * `sluice --lookup` prints (issue 4, "Looking up from the command line").
 *
 * Writes straight into the caller's buffer; every piece (a literal, one
 * escaped character, one whole UTF-8 sequence) goes in whole or not at all,
 * so a short buffer gets a cut at a character boundary and never half an
 * escape. Strings are escaped per RFC 8259 7 (quote, backslash, controls as
 * \u00XX); bytes >= 0x80 pass through (the table holds valid UTF-8).
 */
#include "route/zone.h"

#include <stdio.h>
#include <string.h>

struct zone_jw {
	char *buf;  /* caller's buffer, cap bytes */
	size_t cap; /* > 0 */
	size_t len; /* bytes written, < cap (room for the NUL) */
	bool full;  /* a piece did not fit: write nothing more */
};

static void
zone_jw_put(struct zone_jw *w, const char *s, size_t n)
{
	if (w->full || w->cap - w->len <= n) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void
zone_jw_lit(struct zone_jw *w, const char *s)
{
	zone_jw_put(w, s, strlen(s));
}

/* A JSON string, or null when s is NULL. */
static void
zone_jw_str(struct zone_jw *w, const char *s)
{
	if (s == NULL) {
		zone_jw_lit(w, "null");
		return;
	}
	zone_jw_put(w, "\"", 1);
	while (*s != '\0') {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t n = 1;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			zone_jw_put(w, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			zone_jw_put(w, esc, 6);
		} else {
			/* a whole UTF-8 sequence at once */
			while (c >= 0xc0 && (s[n] & 0xc0) == 0x80 && n < 4)
				n++;
			zone_jw_put(w, s, n);
		}
		s += n;
	}
	zone_jw_put(w, "\"", 1);
}

size_t
zone_decision_json(const struct zone_decision *d, char *buf, size_t cap)
{
	struct zone_jw w = {.buf = buf, .cap = cap};
	char port[8];

	if (cap == 0)
		return 0;
	zone_jw_lit(&w, "{\"zone\":");
	zone_jw_str(&w, d->zone);
	zone_jw_lit(&w, ",\"rule\":");
	zone_jw_str(&w, d->rule);
	zone_jw_lit(&w, ",\"action\":\"");
	zone_jw_lit(&w, zone_action_name(d->action));
	zone_jw_lit(&w, "\",\"reply\":");
	zone_jw_str(&w, d->action == ZONE_FORWARD ? NULL : d->reply);
	zone_jw_lit(&w, ",\"destinations\":[");
	for (unsigned g = 0; d->action == ZONE_FORWARD && g < d->ngroups; g++) {
		const struct zone_group *grp = &d->groups[g];

		zone_jw_lit(&w, g > 0 ? ",[" : "[");
		for (unsigned i = 0; i < grp->n; i++) {
			const struct zone_dest *x = &grp->d[i];
			char one[ZONE_MAX_ADDR + sizeof(port)];

			if (i > 0)
				zone_jw_lit(&w, ",");
			if (x->port != 0) {
				snprintf(one, sizeof(one), "%s:%u", x->addr, (unsigned)x->port);
				zone_jw_str(&w, one);
			} else {
				zone_jw_str(&w, x->addr);
			}
		}
		zone_jw_lit(&w, "]");
	}
	zone_jw_lit(&w, "]}\n");
	buf[w.len] = '\0';
	return w.len;
}
