/*
 * tool_data.h -- streaming DATA scanner for the load sink: end-of-data
 * detection and dot-unstuffing (RFC 5321 4.1.1.4, 4.5.2).
 *
 * Written independently of proto/smtp_data on purpose: the sink is the peer
 * that checks the server, so it must not share the server's parser bugs.
 *
 * The end of data is CRLF "." CRLF and nothing else (a bare LF or bare CR
 * never ends a line: the SMTP smuggling class of bugs). The first line of the
 * content starts right after the DATA command's CRLF, so ".\r\n" as the first
 * line ends an empty message. A leading "." of any other line is removed.
 *
 * Decision: the content is delivered as spans of the caller's buffer through
 * a callback instead of being unstuffed in place. In place would move every
 * byte after the first stuffed dot of a 256 KiB receive; spans cost one call
 * per removed dot and hand long runs straight to the hash.
 * Resumable under any chunking: state between calls is a few bits.
 */
#ifndef SLUICE_TOOLS_COMMON_TOOL_DATA_H
#define SLUICE_TOOLS_COMMON_TOOL_DATA_H

#include <stdbool.h>
#include <stddef.h>

enum tool_data_state {
	TOOL_DATA_BOL,	 /* at the start of a line (initial state) */
	TOOL_DATA_MID,	 /* inside a line, last byte was not CR */
	TOOL_DATA_CR,	 /* inside a line, last byte was CR */
	TOOL_DATA_DOT,	 /* a line started with "."; the dot was dropped */
	TOOL_DATA_DOTCR, /* a line is "." CR so far; the CR is held back, not emitted */
};

struct tool_data {
	enum tool_data_state st; /* see enum; TOOL_DATA_BOL after init and after done */
};

/* Content callback: n > 0 bytes of unstuffed content at p (valid only during the call). */
typedef void tool_data_emit_fn(void *ctx, const char *p, size_t n);

/* Start scanning a new message's content. */
void tool_data_init(struct tool_data *d);

/*
 * Scan p[0..n), emitting unstuffed content through emit(ctx, ...). Returns the
 * number of bytes consumed. When the end-of-data line has been consumed,
 * *done is set to true and the return value counts the terminator; bytes after
 * it (pipelined commands) are not consumed. Otherwise all n bytes are consumed
 * and *done is left false. The content ends with the CRLF before ".".
 */
size_t tool_data_feed(struct tool_data *d, const char *p, size_t n, bool *done,
		      tool_data_emit_fn *emit, void *ctx);

#endif /* SLUICE_TOOLS_COMMON_TOOL_DATA_H */
