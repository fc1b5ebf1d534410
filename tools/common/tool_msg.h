/*
 * tool_msg.h -- ledger digest of one message: XXH64 (seed 0), size and
 * Message-ID, computed while the content streams past (SPEC "Ledger format").
 *
 * Input is message content after dot-unstuffing, CRLF line endings, without
 * the final ".". Leading "Received:" header fields, with their folded
 * continuation lines, are skipped: they are neither hashed nor counted, so a
 * relay that prepends Received: does not change the digest. Everything from
 * the first other line on is hashed, including later Received: fields.
 *
 * Decision: a tiny line-start state machine holds at most 9 bytes
 * ("received:") to decide whether a line is skipped, instead of buffering
 * whole header lines, so the hashed bytes go to XXH64 in the caller's spans.
 * Only the header section is looked at byte by byte; the body is hashed in
 * bulk. Nothing is kept beyond the first TOOL_MSG_MAX_ID bytes of the id.
 */
#ifndef SLUICE_TOOLS_COMMON_TOOL_MSG_H
#define SLUICE_TOOLS_COMMON_TOOL_MSG_H

#define XXH_STATIC_LINKING_ONLY /* embed XXH64_state_t: no allocation per message */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xxhash.h>

#define TOOL_MSG_MAX_ID	  255  /* longest Message-ID value kept (longer ones are cut) */
#define TOOL_MSG_MAX_LINE 1000 /* header line bytes examined for Message-ID */

enum tool_msg_phase {
	TOOL_MSG_SKIP_BOL,  /* line start in the leading Received: block; pfx collects */
	TOOL_MSG_SKIP_LINE, /* inside a skipped Received: line or its continuation */
	TOOL_MSG_HDR,	    /* hashing; inside the header section */
	TOOL_MSG_BODY,	    /* hashing; after the empty line (or a header-less start) */
};

struct tool_msg {
	XXH64_state_t xx;	      /* streaming hash of the hashed bytes */
	bool digest;		      /* feed xx (tool_msg_init: true); false: count only */
	uint64_t size;		      /* bytes hashed (digest off: that would be) */
	uint64_t total;		      /* bytes fed, skipped Received: lines included */
	enum tool_msg_phase phase;    /* see enum */
	bool skip_prev;		      /* the previous line was skipped (so WSP lines are too) */
	bool cr;		      /* last byte seen was CR (line ends need CRLF) */
	unsigned pfxlen;	      /* bytes in pfx; < 9 */
	char pfx[9];		      /* start of the current line while deciding to skip it */
	bool in_id;		      /* the current header field is Message-ID */
	bool id_done;		      /* a Message-ID field has ended; later ones ignored */
	size_t linelen;		      /* bytes in line (capped at TOOL_MSG_MAX_LINE) */
	char line[TOOL_MSG_MAX_LINE]; /* current header line, for Message-ID */
	size_t idlen;		      /* bytes in id */
	char id[TOOL_MSG_MAX_ID + 1]; /* Message-ID value, NUL-ended after tool_msg_final */
};

/* Start a new message (digest on: clear m->digest after this to only count). */
void tool_msg_init(struct tool_msg *m);

/* Feed the next n bytes of content. Any chunking gives the same result. */
void tool_msg_feed(struct tool_msg *m, const char *p, size_t n);

/*
 * Finish: returns the XXH64 of the hashed bytes; m->size is their count and
 * m->id the Message-ID without "<>" and surrounding blanks ("-" if the
 * message has none; bytes outside printable ASCII become '_', so the ledger
 * stays one line of three blank-separated fields).
 */
uint64_t tool_msg_final(struct tool_msg *m);

#endif /* SLUICE_TOOLS_COMMON_TOOL_MSG_H */
