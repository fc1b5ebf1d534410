/*
 * smtp_line.h -- SMTP command-line framing (RFC 5321 2.3.8, 4.5.3.1.4).
 *
 * Splits the command stream into lines ended by CRLF. A line that lies whole
 * inside one received span is returned in place, without a copy; a line that
 * straddles spans is staged in the fixed buffer inside struct smtp_line
 * (embedded in the session, one per connection, touched only by its shard).
 *
 * Decisions:
 * - Only CRLF ends a line. A bare LF or a CR not followed by LF is reported
 *   as its own status, never taken for CRLF (SMTP smuggling). Rejected
 *   alternative: normalising LF to CRLF, as OpenSMTPD's iobuf_getline does.
 * - The limit is checked before copying (Postfix): an over-long line is
 *   dropped up to its LF without being staged, and reported once.
 * - feed stops after one LF so the caller can switch mode (DATA, BDAT,
 *   STARTTLS) and hand the remaining bytes elsewhere.
 * - Status priority when a line has several faults:
 *   TOO_LONG > BARE_LF > BARE_CR.
 */
#ifndef SLUICE_PROTO_SMTP_LINE_H
#define SLUICE_PROTO_SMTP_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Compile-time ceiling of a command line, CRLF included. The configured
 * max-line-length may be lower, never higher. */
#define SMTP_MAX_LINE 2048

enum smtp_line_status {
	SMTP_LINE_AGAIN,    /* all bytes consumed, line incomplete; feed more */
	SMTP_LINE_OK,	    /* one complete CRLF line in *line / *len */
	SMTP_LINE_TOO_LONG, /* line longer than max, dropped through its LF */
	SMTP_LINE_BARE_LF,  /* line ended by an LF without CR; dropped */
	SMTP_LINE_BARE_CR,  /* line held a CR not followed by LF; dropped */
};

/* Zero-initialised = ready for the first line. */
struct smtp_line {
	char buf[SMTP_MAX_LINE]; /* staged bytes of a partial line, CR included; no NUL */
	uint16_t len;		 /* bytes staged in buf; < max of the current call */
	uint32_t seen;		 /* bytes of the current line consumed so far (not in discard) */
	bool discard;		 /* current line exceeded max: dropping bytes up to LF */
	bool cr;		 /* last consumed byte of the current line was CR */
	bool bare_cr;		 /* a CR not followed by LF occurred in the current line */
};

/*
 * smtp_line_feed -- consume bytes of p[0..n) up to and including the LF that
 * ends one line.
 *
 * max is the configured limit in bytes including CRLF; 3 <= max <=
 * SMTP_MAX_LINE (BUG_ON otherwise). A line of max bytes with its CRLF is
 * accepted; max + 1 is TOO_LONG. Returns the number of bytes consumed: n when
 * *st is AGAIN, otherwise the count up to and including the LF. Never reads
 * past p + n, never writes to p.
 *
 * On SMTP_LINE_OK, *line and *len give the line without its CRLF. *line points
 * into p when the whole line was in this span and nothing was staged, else
 * into l->buf; either way it is valid until the next call on l or until p is
 * released, whichever comes first. For every other status *line is NULL and
 * *len is 0. After any status but AGAIN, l is ready for the next line.
 * n == 0 returns 0 with AGAIN.
 */
size_t smtp_line_feed(struct smtp_line *l, const char *p, size_t n, size_t max,
		      enum smtp_line_status *st, const char **line, size_t *len);

/* smtp_line_reset -- forget any staged partial line (e.g. after STARTTLS,
 * where plaintext sent ahead of the handshake must be discarded). */
void smtp_line_reset(struct smtp_line *l);

/* smtp_line_pending -- true when part of a line is staged or being dropped,
 * i.e. the client is in the middle of a line. */
bool smtp_line_pending(const struct smtp_line *l);

#endif /* SLUICE_PROTO_SMTP_LINE_H */
