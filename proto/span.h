/*
 * span.h -- an (offset, length) pair into a buffer the caller owns.
 *
 * Parsers in proto/ report what they found as spans relative to the line or
 * buffer they were given, never as pointers: the bytes usually sit in a
 * provided receive buffer that goes back to the kernel within the same CQE,
 * and offsets make it obvious that a result is meaningless without its
 * buffer. Rejected alternative: (const char *, size_t) pairs, which invite
 * keeping a pointer after the buffer was recycled.
 */
#ifndef SLUICE_PROTO_SPAN_H
#define SLUICE_PROTO_SPAN_H

#include <stdint.h>

struct span {
	uint32_t off; /* first byte, relative to the buffer the parser was given */
	uint32_t len; /* bytes; 0 for an empty span (off is then meaningless) */
};

#endif /* SLUICE_PROTO_SPAN_H */
