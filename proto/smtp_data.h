/*
 * smtp_data.h -- streaming DATA automaton (RFC 5321 4.1.1.4, 4.5.2).
 *
 * Consumes message content after "354" until the end-of-data marker
 * CRLF "." CRLF, emitting the dot-unstuffed content as spans of the input.
 * There is no line buffer: the state is a handful of fields, so a message
 * may straddle any number of receive buffers split at any byte. One
 * struct smtp_data lives in the session during DATA, owned by its shard.
 *
 * Decisions:
 * - End of data is ONLY CRLF "." CRLF. "\n.\n", "\r\n.\n", "\n.\r\n",
 *   "\r.\r" and friends never end it, and every bare LF / bare CR sets an
 *   error bit (the SMTP smuggling attacks of 2023). A bare LF does not start
 *   a new line, so a dot after it is plain text, not a terminator.
 * - Errors never stop scanning: the caller must read to the real end before
 *   it can reply, or the rest of the message would be taken as commands.
 * - A line starting with '.' loses that dot whatever follows (4.5.2), so
 *   ".x" becomes "x" as in Postfix; only ".." is mandated but a client
 *   that forgets to stuff gets the same treatment everywhere.
 * - Limits count content bytes after unstuffing: size against max_size,
 *   the bytes of each line (CRLF excluded) against max_line.
 *   Rejected alternative: a line buffer with a per-line callback, which
 *   costs a copy and a cap on line length that RFC 5321 only recommends.
 */
#ifndef SLUICE_PROTO_SMTP_DATA_H
#define SLUICE_PROTO_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_DATA_E_BARE_LF	  1u /* LF not preceded by CR */
#define SMTP_DATA_E_BARE_CR	  2u /* CR not followed by LF */
#define SMTP_DATA_E_TOO_BIG	  4u /* content exceeded max_size; emission stopped */
#define SMTP_DATA_E_LINE_TOO_LONG 8u /* a line exceeded max_line */

enum smtp_data_state {
	SMTP_DATA_BOL,	      /* at the start of a line (after CRLF, or initially) */
	SMTP_DATA_TEXT,	      /* inside a line */
	SMTP_DATA_CR,	      /* inside a line, just after CR; LF would end the line */
	SMTP_DATA_BOL_DOT,    /* "." at the start of a line; held, never emitted */
	SMTP_DATA_BOL_DOT_CR, /* ".\r" at the start of a line; LF ends the data */
	SMTP_DATA_DONE,	      /* [final] terminator consumed */
};

/* Signature of the content sink: p[0..n) is valid only during the call. */
typedef void smtp_data_emit_fn(void *arg, const char *p, size_t n);

struct smtp_data {
	enum smtp_data_state state; /* see the enum */
	uint32_t line_len;	    /* content bytes of the current line so far, CRLF excluded */
	uint32_t max_line;	    /* cap on line_len; 0 = no cap */
	unsigned err;		    /* SMTP_DATA_E_* bits seen so far */
	uint64_t size;		    /* unstuffed content bytes so far, final ".\r\n" excluded */
	uint64_t max_size;	    /* cap on size; 0 = no cap */
	bool done;		    /* terminator consumed; feed consumes nothing more */
};

/* smtp_data_init -- start a message at beginning of line (the DATA command's
 * CRLF precedes it). max_size / max_line of 0 mean no cap. */
void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint32_t max_line);

/*
 * smtp_data_feed -- scan p[0..n) and emit unstuffed content through emit
 * (may be NULL; arg is passed through).
 *
 * Returns bytes consumed: n, or fewer when the terminator CRLF "." CRLF ends
 * inside p, in which case the count includes the terminator, d->done is set
 * and the rest of p (pipelined commands) is left to the caller. p[0..ret)
 * is the raw dot-stuffed wire form. Once done, returns 0. Never reads past
 * p + n, never writes to p. Spans passed to emit point into p, except a
 * held "\r" after a line-initial dot, which comes from a static string.
 * After size exceeds max_size nothing more is emitted (E_TOO_BIG); the
 * emitted content is then the first max_size bytes. Errors are reported
 * only through d->err, after done.
 */
size_t smtp_data_feed(struct smtp_data *d, const char *p, size_t n, smtp_data_emit_fn *emit,
		      void *arg);

#endif /* SLUICE_PROTO_SMTP_DATA_H */
