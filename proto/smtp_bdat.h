/*
 * smtp_bdat.h -- BDAT (RFC 3030 CHUNKING) content converted to DATA form.
 *
 * We always forward with DATA, so the octets of BDAT chunks are dot-stuffed
 * (RFC 5321 4.5.2) on their way into the spool, and the DATA terminator is
 * appended at the end. Chunk accounting (how many octets a BDAT command
 * announced) is the session's job; this module only transforms the octets,
 * across any number of chunks and any split.
 *
 * Decisions:
 * - Bare CR and bare LF are flagged exactly as in DATA (SMTP_DATA_E_*): the
 *   message is relayed as DATA, where they are the smuggling vector.
 * - After a bare LF or bare CR the next byte is treated as line-initial for
 *   stuffing, so a dot there is doubled too. Stuffing more than needed is
 *   harmless; stuffing less could let a lenient next hop see an end marker.
 * - size counts client octets (unstuffed), not the stuffed output, so it
 *   compares with SIZE= and with smtp_data's size for the same message.
 */
#ifndef SLUICE_PROTO_SMTP_BDAT_H
#define SLUICE_PROTO_SMTP_BDAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/smtp_data.h"

enum smtp_stuff_state {
	SMTP_STUFF_BOL,	     /* after CRLF (or at the start): next octet starts a line */
	SMTP_STUFF_BOL_BARE, /* after a bare LF/CR: stuff like BOL, but no CRLF yet */
	SMTP_STUFF_TEXT,     /* inside a line */
	SMTP_STUFF_CR,	     /* just after CR; LF completes the line end */
};

struct smtp_stuff {
	enum smtp_stuff_state state; /* see the enum */
	unsigned err;		     /* SMTP_DATA_E_* bits seen so far */
	uint64_t size;		     /* client octets fed so far */
	uint64_t max_size;	     /* cap on size; 0 = no cap */
};

/* smtp_stuff_init -- start a message; max_size 0 = no cap. */
void smtp_stuff_init(struct smtp_stuff *s, uint64_t max_size);

/*
 * smtp_stuff_feed -- consume all of p[0..n) (BDAT octets) and emit their
 * dot-stuffed form through emit (may be NULL): spans of p, plus a static "."
 * before every line-initial dot. Once size exceeds max_size, E_TOO_BIG is set
 * and nothing more is emitted (the output is then a prefix of the stuffed
 * form). Never reads past p + n.
 */
void smtp_stuff_feed(struct smtp_stuff *s, const char *p, size_t n, smtp_data_emit_fn *emit,
		     void *arg);

/*
 * smtp_stuff_finish -- end of the last chunk: emit "\r\n" if the content did
 * not end with CRLF (a trailing CR also counts as bare CR), then ".\r\n".
 * Emitted even after E_TOO_BIG (then always with the "\r\n", since the
 * output was cut at an arbitrary byte) so the spool stays well-formed.
 * Empty content gives ".\r\n" alone. s must be re-initialised before reuse.
 */
void smtp_stuff_finish(struct smtp_stuff *s, smtp_data_emit_fn *emit, void *arg);

#endif /* SLUICE_PROTO_SMTP_BDAT_H */
