/*
 * smtp_reply.c -- upstream reply framing and EHLO capabilities; see
 * smtp_reply.h.
 */
#include "proto/smtp_reply.h"

#include <string.h>

#include "core/check.h"

void
smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->len = 0;
	r->nlines = 0;
	r->line_off = 0;
	r->done = false;
	r->err = false;
}

/* Check the complete line text[line_off..len) (ends with LF). Returns -1 on
 * error, 0 for a continuation line, 1 for the last line. */
static int
reply_line_check(struct smtp_reply *r)
{
	const char *l = r->text + r->line_off;
	size_t n = (size_t)r->len - r->line_off;

	if (n < 5 || l[n - 2] != '\r')
		return -1; /* too short, or bare LF */
	if (memchr(l, '\r', n - 2) != NULL)
		return -1; /* bare CR */
	if (l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' || l[2] < '0' || l[2] > '9')
		return -1;
	uint16_t code = (uint16_t)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
	if (r->nlines > 0 && code != r->code)
		return -1;
	r->code = code;
	if (n == 5)
		return 1; /* "ddd\r\n" */
	if (l[3] == '-')
		return 0;
	if (l[3] == ' ')
		return 1;
	return -1;
}

size_t
smtp_reply_feed(struct smtp_reply *r, const char *p, size_t n, enum smtp_reply_status *st)
{
	if (r->err) {
		*st = SMTP_REPLY_ERR;
		return 0;
	}
	if (r->done)
		smtp_reply_reset(r);

	size_t used = 0;
	*st = SMTP_REPLY_AGAIN;
	while (used < n) {
		const char *lf = memchr(p + used, '\n', n - used);
		size_t take = lf ? (size_t)(lf - (p + used)) + 1 : n - used;
		if ((size_t)r->len + take > SMTP_REPLY_MAX) {
			r->err = true;
			*st = SMTP_REPLY_ERR;
			return used + take;
		}
		memcpy(r->text + r->len, p + used, take);
		r->len = (uint16_t)(r->len + take);
		used += take;
		if (lf == NULL)
			break;
		int rc = reply_line_check(r);
		if (rc < 0) {
			r->err = true;
			*st = SMTP_REPLY_ERR;
			return used;
		}
		r->nlines++;
		r->line_off = r->len;
		if (rc == 1) {
			r->done = true;
			*st = SMTP_REPLY_DONE;
			return used;
		}
	}
	return used;
}

bool
smtp_reply_line(const struct smtp_reply *r, unsigned i, const char **p, size_t *n)
{
	if (i >= r->nlines)
		return false;
	size_t off = 0;
	for (unsigned k = 0; k < i; k++) {
		const char *lf = memchr(r->text + off, '\n', (size_t)r->len - off);
		if (lf == NULL)
			return false;
		off = (size_t)(lf - r->text) + 1;
	}
	const char *lf = memchr(r->text + off, '\n', (size_t)r->len - off);
	if (lf == NULL)
		return false;
	size_t end = (size_t)(lf - r->text) - 1; /* at the CR */
	size_t start = off + 4 <= end ? off + 4 : end;
	*p = r->text + start;
	*n = end - start;
	return true;
}

static size_t
digits(const char *p, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && j - i < 3 && p[j] >= '0' && p[j] <= '9')
		j++;
	return j - i;
}

bool
smtp_reply_enhanced(const char *p, size_t n, struct span *code)
{
	if (n < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
		return false;
	size_t i = 2, d = digits(p, n, i);
	if (d == 0 || i + d >= n || p[i + d] != '.')
		return false;
	i += d + 1;
	d = digits(p, n, i);
	if (d == 0)
		return false;
	i += d;
	if (i < n && p[i] != ' ')
		return false;
	*code = (struct span){0, (uint32_t)i};
	return true;
}

bool
smtp_reply_set(struct smtp_reply *r, const char *text)
{
	char line[SMTP_REPLY_MAX];
	size_t n = strlen(text);
	enum smtp_reply_status st;

	smtp_reply_reset(r);
	if (n + 2 > sizeof(line))
		return false;
	memcpy(line, text, n);
	memcpy(line + n, "\r\n", 2);
	if (smtp_reply_feed(r, line, n + 2, &st) != n + 2 || st != SMTP_REPLY_DONE) {
		smtp_reply_reset(r);
		return false;
	}
	return true;
}

void
smtp_reply_prefix(struct smtp_reply *out, const struct smtp_reply *in, const char *who)
{
	size_t wlen = strlen(who), len = 0;
	unsigned kept = 0;

	smtp_reply_reset(out);
	for (unsigned i = 0; i < in->nlines; i++) {
		const char *p;
		size_t n, head = 0;
		struct span enh;

		if (!smtp_reply_line(in, i, &p, &n))
			break;
		if (smtp_reply_enhanced(p, n, &enh))
			head = enh.len + (enh.len < n); /* the code and its blank */
		/* "ddd-" + head + "[who] " + rest + CRLF */
		size_t need = 4 + head + 1 + wlen + 2 + (n - head) + 2;

		if (len + need > SMTP_REPLY_MAX)
			break;
		memcpy(out->text + len, in->text, 3);
		out->text[len + 3] = '-';
		memcpy(out->text + len + 4, p, head);
		len += 4 + head;
		if (head != 0 && p[head - 1] != ' ')
			out->text[len++] = ' '; /* enhanced code at the end of the line */
		out->text[len++] = '[';
		memcpy(out->text + len, who, wlen);
		len += wlen;
		memcpy(out->text + len, "] ", 2);
		len += 2;
		memcpy(out->text + len, p + head, n - head);
		len += n - head;
		memcpy(out->text + len, "\r\n", 2);
		len += 2;
		kept++;
	}
	if (kept == 0) {
		/* not even one line fits: the code alone, still a valid reply */
		memcpy(out->text, in->text, 3);
		memcpy(out->text + 3, " \r\n", 3);
		len = 6;
		kept = 1;
	} else {
		/* the last line kept ends the reply: "ddd " */
		size_t last = len - 2;

		while (last > 0 && out->text[last - 1] != '\n')
			last--;
		out->text[last + 3] = ' ';
	}
	out->code = in->code;
	out->len = (uint16_t)len;
	out->nlines = (uint16_t)kept;
	out->done = true;
}

void
smtp_reply_recode(struct smtp_reply *r, unsigned code)
{
	BUG_ON(code < 200 || code > 599);
	for (size_t off = 0; off + 3 <= r->len;) {
		const char *lf = memchr(r->text + off, '\n', r->len - off);

		r->text[off] = (char)('0' + code / 100);
		r->text[off + 1] = (char)('0' + code / 10 % 10);
		r->text[off + 2] = (char)('0' + code % 10);
		if (lf == NULL)
			break;
		off = (size_t)(lf - r->text) + 1;
	}
	r->code = (uint16_t)code;
}

/* Case-insensitive: p[0..n) equals upper-case keyword k. */
static bool
kw_eq(const char *p, size_t n, const char *k)
{
	size_t kn = strlen(k); /* k is our own constant, not wire data */
	if (n != kn)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - ('a' - 'A'));
		if (c != k[i])
			return false;
	}
	return true;
}

void
smtp_ehlo_caps_parse(const struct smtp_reply *r, struct smtp_ehlo_caps *caps)
{
	*caps = (struct smtp_ehlo_caps){0};
	if (r->code != 250)
		return;
	for (unsigned i = 1; i < r->nlines; i++) {
		const char *t;
		size_t n;
		if (!smtp_reply_line(r, i, &t, &n))
			break;
		const char *sp = memchr(t, ' ', n);
		size_t kn = sp ? (size_t)(sp - t) : n;
		if (kw_eq(t, kn, "PIPELINING")) {
			caps->pipelining = true;
		} else if (kw_eq(t, kn, "SIZE")) {
			caps->size = true;
			uint64_t v = 0;
			bool ok = sp != NULL && kn + 1 < n && n - kn - 1 <= 19;
			for (size_t j = kn + 1; ok && j < n; j++) {
				if (t[j] < '0' || t[j] > '9')
					ok = false;
				else
					v = v * 10 + (uint64_t)(t[j] - '0');
			}
			caps->size_max = ok ? v : 0;
		} else if (kw_eq(t, kn, "8BITMIME")) {
			caps->eightbitmime = true;
		} else if (kw_eq(t, kn, "SMTPUTF8")) {
			caps->smtputf8 = true;
		} else if (kw_eq(t, kn, "STARTTLS")) {
			caps->starttls = true;
		} else if (kw_eq(t, kn, "CHUNKING")) {
			caps->chunking = true;
		} else if (kw_eq(t, kn, "ENHANCEDSTATUSCODES")) {
			caps->enhancedstatuscodes = true;
		}
	}
}
