/*
 * tool_msg.c -- see tool_msg.h.
 */
#include "tools/common/tool_msg.h"

#include <string.h>
#include <strings.h>

static const char received[] = "received:"; /* RFC 5322 3.6.7, matched case-insensitively */

void
tool_msg_init(struct tool_msg *m)
{
	XXH64_reset(&m->xx, 0);
	m->digest = true;
	m->size = 0;
	m->total = 0;
	m->phase = TOOL_MSG_SKIP_BOL;
	m->skip_prev = false;
	m->cr = false;
	m->pfxlen = 0;
	m->in_id = false;
	m->id_done = false;
	m->linelen = 0;
	m->idlen = 0;
}

static void
hash(struct tool_msg *m, const char *p, size_t n)
{
	if (m->digest)
		XXH64_update(&m->xx, p, n);
	m->size += n;
}

/* Append a (continuation) value to the id, dropping blanks and CRLF. */
static void
id_append(struct tool_msg *m, const char *p, size_t n)
{
	for (size_t i = 0; i < n && m->idlen < TOOL_MSG_MAX_ID; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')
			continue;
		m->id[m->idlen++] = p[i];
	}
}

/* A complete header line (CRLF included, maybe cut at TOOL_MSG_MAX_LINE). */
static void
hdr_line(struct tool_msg *m)
{
	const char *l = m->line;
	size_t n = m->linelen;

	if (n == 2 && l[0] == '\r' && l[1] == '\n') {
		m->phase = TOOL_MSG_BODY; /* RFC 5322 2.1: empty line ends the header */
		return;
	}
	if (l[0] == ' ' || l[0] == '\t') {
		if (m->in_id)
			id_append(m, l, n);
		return;
	}
	if (m->in_id) {
		m->in_id = false;
		m->id_done = true;
	}
	if (!m->id_done && n >= 11 && strncasecmp(l, "message-id:", 11) == 0) {
		m->in_id = true;
		id_append(m, l + 11, n - 11);
	}
}

/* Header bytes (all hashed by the caller): track lines for Message-ID and the end. */
static size_t
hdr_scan(struct tool_msg *m, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && m->phase == TOOL_MSG_HDR; i++) {
		char c = p[i];

		if (m->linelen < TOOL_MSG_MAX_LINE)
			m->line[m->linelen++] = c;
		if (c == '\n' && m->cr) {
			hdr_line(m);
			m->linelen = 0;
		}
		m->cr = c == '\r';
	}
	return i;
}

/* Leave the skip block: the held prefix is the first hashed header line's start. */
static void
start_hashing(struct tool_msg *m)
{
	m->phase = TOOL_MSG_HDR;
	m->cr = false;
	m->linelen = 0;
	hash(m, m->pfx, m->pfxlen);
	hdr_scan(m, m->pfx, m->pfxlen);
}

void
tool_msg_feed(struct tool_msg *m, const char *p, size_t n)
{
	size_t i = 0;

	m->total += n;
	while (i < n) {
		switch (m->phase) {
		case TOOL_MSG_SKIP_BOL: {
			char c = p[i];

			if (m->pfxlen == 0 && (c == ' ' || c == '\t') && m->skip_prev) {
				m->phase = TOOL_MSG_SKIP_LINE; /* folded Received: line */
				break;
			}
			m->pfx[m->pfxlen++] = c;
			i++;
			if (strncasecmp(m->pfx, received, m->pfxlen) != 0) {
				start_hashing(m);
			} else if (m->pfxlen == sizeof(received) - 1) {
				m->phase = TOOL_MSG_SKIP_LINE;
				m->skip_prev = true;
				m->pfxlen = 0;
				m->cr = false;
			}
			break;
		}
		case TOOL_MSG_SKIP_LINE: {
			const char *lf = memchr(p + i, '\n', n - i);
			size_t j;

			if (lf == NULL) {
				m->cr = p[n - 1] == '\r';
				i = n;
				break;
			}
			j = (size_t)(lf - p);
			if ((j > i && p[j - 1] == '\r') || (j == i && m->cr)) {
				m->phase = TOOL_MSG_SKIP_BOL;
				m->pfxlen = 0;
			}
			m->cr = false;
			i = j + 1;
			break;
		}
		case TOOL_MSG_HDR: {
			size_t k = hdr_scan(m, p + i, n - i);

			hash(m, p + i, k);
			i += k;
			break;
		}
		case TOOL_MSG_BODY:
			hash(m, p + i, n - i);
			i = n;
			break;
		}
	}
}

uint64_t
tool_msg_final(struct tool_msg *m)
{
	size_t s = 0, e;

	/* a message that ends inside the skip block: its held bytes are content */
	if (m->phase == TOOL_MSG_SKIP_BOL && m->pfxlen > 0)
		start_hashing(m);
	e = m->idlen;
	if (e > 0 && m->id[0] == '<')
		s = 1;
	for (size_t i = s; i < e; i++)
		if (m->id[i] == '>') {
			e = i;
			break;
		}
	memmove(m->id, m->id + s, e - s);
	m->idlen = e - s;
	if (m->idlen == 0)
		m->id[m->idlen++] = '-';
	for (size_t i = 0; i < m->idlen; i++)
		if (m->id[i] <= ' ' || m->id[i] > '~')
			m->id[i] = '_';
	m->id[m->idlen] = '\0';
	return XXH64_digest(&m->xx);
}
