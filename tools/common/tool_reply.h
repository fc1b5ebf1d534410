/*
 * tool_reply.h -- SMTP reply reader for the load source (RFC 5321 4.2).
 *
 * The source is the independent peer that checks the server, so it does not
 * use proto/smtp_reply: this is a deliberately small, separate reader. A reply
 * is one or more lines "DDD-text" ending with "DDD text" (or a bare "DDD"),
 * each ended by CRLF; every line of one reply must carry the same code.
 * The reader is pure and works on the caller's buffer: it parses one line per
 * call and never copies, so the caller keeps unparsed bytes (a partial line)
 * in its own receive buffer.
 */
#ifndef SLUICE_TOOLS_COMMON_TOOL_REPLY_H
#define SLUICE_TOOLS_COMMON_TOOL_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest reply line we accept, CRLF included (RFC 5321 4.5.3.1.5 says 512). */
#define TOOL_REPLY_MAX_LINE 2048

struct tool_reply {
	int code;	 /* code of the reply being read; 0 before its first line */
	unsigned nlines; /* lines of the current reply seen so far */
};

struct tool_reply_line {
	int code;	  /* 100..599 */
	bool last;	  /* true for the final line of the reply ("DDD text") */
	const char *text; /* after "DDD-"/"DDD "; points into the input; not NUL-ended */
	size_t textlen;	  /* bytes of text, CRLF excluded */
};

/* Reset r to read a new reply (also done automatically after each final line). */
void tool_reply_reset(struct tool_reply *r);

/*
 * Parse one line from p[0..n). Returns the line length including CRLF (> 0)
 * and fills *l; when l->last is true the reply is complete and its code is
 * l->code. Returns 0 when p holds no complete line yet (call again with more
 * bytes), -SLUICE_ESYNTAX for a malformed line, a bare LF, or a code that
 * differs from the earlier lines of the same reply, and -SLUICE_ELIMIT when
 * TOOL_REPLY_MAX_LINE bytes hold no CRLF.
 */
ssize_t tool_reply_feed(struct tool_reply *r, const char *p, size_t n, struct tool_reply_line *l);

/*
 * True if an EHLO reply line's text starts with keyword (case-insensitive),
 * followed by the end of the text or a space: the RFC 5321 4.1.1.1 ehlo-line.
 */
bool tool_reply_is_keyword(const struct tool_reply_line *l, const char *keyword);

#endif /* SLUICE_TOOLS_COMMON_TOOL_REPLY_H */
