/*
 * rfc5322_hdr.h -- read-only questions about a message's header section
 * (RFC 5322 2.2), asked of the message as it sits in the spool: wire form,
 * CRLF line ends, possibly still dot-stuffed (a header line never starts
 * with '.', and a stuffed one would not match a field name anyway).
 *
 * The header section ends at the first empty line (or at the end of the
 * bytes given). A field's name is matched case-insensitively at the start
 * of a line, followed by optional blanks and ':' (RFC 5322 3.6.7 allows no
 * blanks before ':', but RFC 5321-era MTAs wrote "Received :" and loop
 * detection must not be dodged by it). Folded continuation lines start
 * with a blank and are never a field of their own.
 */
#ifndef SLUICE_PROTO_RFC5322_HDR_H
#define SLUICE_PROTO_RFC5322_HDR_H

#include <stddef.h>

/*
 * Count the header fields called `name` (e.g. "Received") in msg[0..len),
 * stopping early once the count exceeds `limit` (returns limit + 1 then):
 * a 25 MiB header section of Received lines costs no more than the limit.
 */
size_t rfc5322_count_fields(const char *msg, size_t len, const char *name, size_t limit);

#endif /* SLUICE_PROTO_RFC5322_HDR_H */
