/*
 * smtp_addr.h -- RFC 5321 4.1.2 Mailbox grammar, with RFC 6531 (SMTPUTF8).
 *
 * Validates the address inside a MAIL/RCPT path, after the caller has removed
 * the angle brackets and any source route:
 *   Mailbox   = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string          (<= 64 octets, 4.5.3.1.1)
 *   Domain    = sub-domain *("." sub-domain)         (<= 255 octets, labels <= 63)
 *   address-literal = "[" IPv4 / "IPv6:" IPv6 "]"
 * Pure functions over explicit lengths; results are spans relative to p.
 *
 * Decisions:
 * - General-address-literal (tag ":" dcontent) is rejected: IANA has
 *   registered no tag besides IPv6, and accepting it only lets junk through.
 * - With SMTPUTF8, any well-formed non-ASCII UTF-8 sequence counts as a
 *   letter in atext, qtext and domain labels (RFC 6531 3.3). U-labels are not
 *   checked against IDNA2008 (that needs tables); the 63-octet label cap is
 *   applied to their UTF-8 octets, which is stricter than IDNA's A-label rule.
 * - No normalisation, no case folding: the address is relayed as written.
 */
#ifndef SLUICE_PROTO_SMTP_ADDR_H
#define SLUICE_PROTO_SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/span.h"

#define SMTP_ADDR_MAX_LOCAL  64	 /* RFC 5321 4.5.3.1.1, octets, quotes included */
#define SMTP_ADDR_MAX_DOMAIN 255 /* RFC 5321 4.5.3.1.2, octets */
#define SMTP_ADDR_MAX_LABEL  63	 /* RFC 1035 2.3.4, octets per label */

struct smtp_addr {
	struct span local;  /* Local-part as written (quotes and escapes kept), rel. to p */
	struct span domain; /* Domain or address-literal (brackets kept), rel. to p */
	bool quoted;	    /* local part is a Quoted-string */
	bool utf8;	    /* some byte >= 0x80 occurs (only possible with allow_utf8) */
	bool literal;	    /* domain is an address-literal [..] */
};

/*
 * smtp_addr_parse -- validate p[0..n) as a Mailbox.
 *
 * allow_utf8 admits RFC 6531 UTF-8 in the local part and the domain (the
 * sequences must be well-formed). On success returns 0 and fills *out. On
 * failure returns -SLUICE_ESYNTAX (grammar) or -SLUICE_ELIMIT (a length cap)
 * and *out is unspecified. "postmaster" without a domain is NOT a Mailbox;
 * test it with smtp_addr_is_postmaster.
 */
int smtp_addr_parse(const char *p, size_t n, bool allow_utf8, struct smtp_addr *out);

/* smtp_addr_is_postmaster -- p[0..n) is "postmaster", any case (RFC 5321
 * 4.1.1.3: RCPT TO:<Postmaster> must be accepted without a domain). */
bool smtp_addr_is_postmaster(const char *p, size_t n);

/* smtp_addr_is_domain -- p[0..n) is a Domain: dot-separated LDH labels,
 * each 1..63 octets, not starting or ending with '-', total <= 255 octets, no
 * trailing dot. With allow_utf8, UTF-8 sequences count as letters. */
bool smtp_addr_is_domain(const char *p, size_t n, bool allow_utf8);

/* smtp_addr_is_literal -- p[0..n) is an address-literal: "[a.b.c.d]" or
 * "[IPv6:...]" (tag case-insensitive) per RFC 5321 4.1.3. */
bool smtp_addr_is_literal(const char *p, size_t n);

/* smtp_addr_utf8_len -- length (2..4) of the well-formed non-ASCII UTF-8
 * sequence at p[0..n) (RFC 3629: no overlongs, surrogates or > U+10FFFF), or 0. */
size_t smtp_addr_utf8_len(const char *p, size_t n);

#endif /* SLUICE_PROTO_SMTP_ADDR_H */
