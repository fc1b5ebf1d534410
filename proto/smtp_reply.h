/*
 * smtp_reply.h -- replies from an upstream server (client side, RFC 5321
 * 4.2) and the EHLO capability set (RFC 5321 4.1.1.1, RFC 1870, 2920, 3030,
 * 3207, 2034, 6152, 6531).
 *
 * smtp_reply_feed frames one possibly multi-line reply ("250-..." lines then
 * "250 ..." or "250\r\n") from the upstream byte stream and keeps it verbatim
 * (every line with its CRLF) so the session can relay it to its client.
 * One struct smtp_reply per upstream connection, owned by its shard.
 *
 * Decisions:
 * - Strict: every line must be "ddd" [("-" / SP) text] CRLF with the same
 *   code, first digit 2-5, second 0-5 (4.2.1). A bare LF, a bare CR, a bad
 *   code, a code change within a reply, or more than SMTP_REPLY_MAX bytes
 *   is SMTP_REPLY_ERR. An upstream that does this is broken or hostile; the
 *   session drops the connection and answers 451 itself. Rejected
 *   alternative: truncate and keep going, which would relay half a reply.
 * - The 4 KiB cap covers a normal EHLO list many times over.
 */
#ifndef SLUICE_PROTO_SMTP_REPLY_H
#define SLUICE_PROTO_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/span.h"

#define SMTP_REPLY_MAX 4096 /* bytes of one whole reply, every CRLF included */

enum smtp_reply_status {
	SMTP_REPLY_AGAIN, /* all bytes consumed, reply incomplete */
	SMTP_REPLY_DONE,  /* one complete reply in the struct */
	SMTP_REPLY_ERR,	  /* malformed reply; the stream is unusable */
};

/* Zero-initialised = ready for the first reply. */
struct smtp_reply {
	uint16_t code;		   /* reply code, valid once DONE (first line's code before) */
	uint16_t len;		   /* bytes in text */
	uint16_t nlines;	   /* complete lines in text */
	uint16_t line_off;	   /* offset in text of the line being received */
	bool done;		   /* DONE returned; the next feed starts a new reply */
	bool err;		   /* ERR returned; sticky until smtp_reply_reset */
	char text[SMTP_REPLY_MAX]; /* the reply verbatim, lines with CRLF; no NUL */
};

/* What the upstream said it supports in its EHLO reply. */
struct smtp_ehlo_caps {
	bool pipelining;	  /* PIPELINING (RFC 2920) */
	bool size;		  /* SIZE (RFC 1870) */
	bool eightbitmime;	  /* 8BITMIME (RFC 6152) */
	bool smtputf8;		  /* SMTPUTF8 (RFC 6531) */
	bool starttls;		  /* STARTTLS (RFC 3207) */
	bool chunking;		  /* CHUNKING (RFC 3030) */
	bool enhancedstatuscodes; /* ENHANCEDSTATUSCODES (RFC 2034) */
	uint64_t size_max;	  /* SIZE value in octets; 0 if absent, invalid or unlimited */
};

/*
 * smtp_reply_feed -- consume bytes of p[0..n) up to the end of one reply.
 *
 * Returns bytes consumed. *st is AGAIN (all n consumed, reply incomplete),
 * DONE (returned count ends with the reply's last CRLF; the rest of p is the
 * next reply, e.g. pipelined), or ERR (the count includes the offending
 * line; nothing more is consumed until smtp_reply_reset). After DONE, r->text
 * stays valid until the next feed, which starts a new reply by itself.
 * Never reads past p + n.
 */
size_t smtp_reply_feed(struct smtp_reply *r, const char *p, size_t n, enum smtp_reply_status *st);

/* smtp_reply_reset -- forget everything; r is ready for a new reply. */
void smtp_reply_reset(struct smtp_reply *r);

/*
 * smtp_reply_line -- text of line i (0-based, i < r->nlines) after the code
 * and separator, without CRLF: sets *p / *n and returns true, or false if i
 * is out of range. Points into r->text.
 */
bool smtp_reply_line(const struct smtp_reply *r, unsigned i, const char **p, size_t *n);

/*
 * smtp_reply_enhanced -- if p[0..n) (a line's text) starts with an enhanced
 * status code "c.sss.ddd" (RFC 3463: class 2, 4 or 5, 1-3 digits, 1-3
 * digits) followed by SP or the end, sets *code to its span in p and returns
 * true. For a reply, class should equal the first digit of r->code; the
 * caller checks that if it cares.
 */
bool smtp_reply_enhanced(const char *p, size_t n, struct span *code);

/*
 * smtp_reply_set -- make r the one-line reply `text` (code, optional
 * enhanced code and text, without CRLF), as if a server had sent it: how a
 * reply of our own joins the ones we relay. false (r empty) when text is
 * not a well-formed reply line or longer than SMTP_REPLY_MAX - 2.
 */
bool smtp_reply_set(struct smtp_reply *r, const char *text);

/*
 * smtp_reply_prefix -- copy `in` (complete) to `out` with "[who] " put at
 * the start of each line's text, after the enhanced code when the line has
 * one: "550-5.1.1 [dest.test] No such user". A relayed reply then says which
 * destination spoke. Lines that would not fit SMTP_REPLY_MAX are left out
 * (the last one kept is turned into the final line); `out` always ends up a
 * complete reply with in's code.
 */
void smtp_reply_prefix(struct smtp_reply *out, const struct smtp_reply *in, const char *who);

/*
 * smtp_reply_recode -- give the complete reply r the code `code` (same
 * class expected) on every line. How a relayed 421 becomes 451: 421 says
 * the server closes the connection, which is true of the upstream's, not of
 * the client's session with us.
 */
void smtp_reply_recode(struct smtp_reply *r, unsigned code);

/* smtp_ehlo_caps_parse -- read the capabilities of a complete 250 EHLO reply
 * (line 0 is the greeting, not a capability; keywords in any case). A reply
 * that is not 250 yields no capabilities. */
void smtp_ehlo_caps_parse(const struct smtp_reply *r, struct smtp_ehlo_caps *caps);

#endif /* SLUICE_PROTO_SMTP_REPLY_H */
