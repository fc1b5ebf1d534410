/*
 * zone_addr.c -- address syntax for the zone file: local parts (dot-atom or
 * RFC 5321 quoted string, UTF-8 per RFC 6531), domains (LDH or IDN through
 * libidn2), address literals and destinations. Load-time only: these may
 * call libidn2, which allocates; zone_lookup() never calls them.
 *
 * Canonical forms, so that equal things compare equal as bytes:
 *   domain   lowercase A-label (idn2_to_ascii_8z, IDN2_NFC_INPUT |
 *            IDN2_NONTRANSITIONAL, i.e. UTS 46 non-transitional mapping),
 *            plus the U-label that libidn2 decodes from it, which must encode
 *            back to the same A-label (a look-alike or malformed A-label is an
 *            error, not a second spelling);
 *   literal  "[a.b.c.d]" / "[IPv6:x::y]" as inet_ntop writes them;
 *   local    dequoted content ("a b" for "\"a b\"", "alice" for "\"alice\"").
 * Rejected: normalising UTF-8 local parts to NFC (needs libunistring's
 * headers, absent here); they compare as bytes, see zone.h.
 */
#include "route/zone_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "core/err.h"

#define ZONE_IDN_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

bool
zone__is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

bool
zone__utf8_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p, n, cp;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (unsigned i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
			return false;
		p += n + 1;
	}
	return true;
}

int
zone__local_parse(const char *s, size_t len, char *out, size_t *outlen, const char **why)
{
	size_t n = 0;

	if (len == 0) {
		*why = "empty local part";
		return -SLUICE_ESYNTAX;
	}
	if (s[0] == '"') {
		if (len < 2 || s[len - 1] != '"') {
			*why = "unterminated quoted local part";
			return -SLUICE_ESYNTAX;
		}
		for (size_t i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				if (++i >= len - 1) {
					*why = "unterminated quoted local part";
					return -SLUICE_ESYNTAX;
				}
				c = (unsigned char)s[i];
			} else if (c == '"') {
				*why = "stray quote in local part";
				return -SLUICE_ESYNTAX;
			}
			/* RFC 5321 qtextSMTP / quoted-pairSMTP: printable ASCII and
			 * space; RFC 6531 adds UTF-8 (checked below) */
			if (c < 0x20 || c == 0x7f) {
				*why = "control character in local part";
				return -SLUICE_ESYNTAX;
			}
			if (n >= ZONE_MAX_LOCAL) {
				*why = "local part longer than 64 octets";
				return -SLUICE_ESYNTAX;
			}
			out[n++] = (char)c;
		}
		if (n == 0) { /* "" names no mailbox (RFC 5321 allows it; we do not) */
			*why = "empty local part";
			return -SLUICE_ESYNTAX;
		}
	} else {
		if (len > ZONE_MAX_LOCAL) {
			*why = "local part longer than 64 octets";
			return -SLUICE_ESYNTAX;
		}
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '.') {
				if (i == 0 || i == len - 1 || s[i - 1] == '.') {
					*why = "misplaced dot in local part";
					return -SLUICE_ESYNTAX;
				}
			} else if (c < 0x80 && !zone__is_atext(c)) {
				*why = "invalid character in local part (quote it)";
				return -SLUICE_ESYNTAX;
			}
			out[n++] = (char)c;
		}
	}
	if (!zone__utf8_ok(out, n)) {
		*why = "invalid UTF-8 in local part";
		return -SLUICE_ESYNTAX;
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

/* Validate an ASCII name into out, lowercased; *idn when a label is an A-label. */
static int
zone_ldh_canon(const char *s, size_t len, char *out, bool *idn, const char **why)
{
	size_t label = 0;

	*idn = false;
	if (len > ZONE_MAX_DOMAIN) {
		*why = "domain longer than 253 octets";
		return -SLUICE_ESYNTAX;
	}
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? zone__lower((unsigned char)s[i]) : '.';

		if (c == '.') {
			if (label == 0) {
				*why = "empty label in domain";
				return -SLUICE_ESYNTAX;
			}
			if (out[i - 1] == '-') {
				*why = "label ends with a hyphen";
				return -SLUICE_ESYNTAX;
			}
			if (label >= 4 && memcmp(out + i - label, "xn--", 4) == 0)
				*idn = true;
			label = 0;
			if (i < len)
				out[i] = '.';
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			*why = "invalid character in domain";
			return -SLUICE_ESYNTAX;
		}
		if (c == '-' && label == 0) {
			*why = "label starts with a hyphen";
			return -SLUICE_ESYNTAX;
		}
		if (++label > 63) {
			*why = "label longer than 63 octets";
			return -SLUICE_ESYNTAX;
		}
		out[i] = (char)c;
	}
	out[len] = '\0';
	return 0;
}

int
zone__domain_canon(const char *s, size_t len, char *out, size_t *outlen, char *ulabel, size_t *ulen,
		   const char **why)
{
	char in[4 * ZONE_MAX_DOMAIN + 1];
	bool ascii = true, idn;
	char *res = NULL, *back = NULL;
	int rc;

	*ulen = 0;
	if (len == 0) {
		*why = "empty domain";
		return -SLUICE_ESYNTAX;
	}
	if (s[len - 1] == '.') {
		*why = "trailing dot in domain";
		return -SLUICE_ESYNTAX;
	}
	for (size_t i = 0; i < len; i++)
		ascii &= (unsigned char)s[i] < 0x80;
	if (ascii) {
		rc = zone_ldh_canon(s, len, out, &idn, why);
		if (rc != 0)
			return rc;
		*outlen = len;
		if (!idn)
			return 0;
	} else {
		if (len >= sizeof(in) || !zone__utf8_ok(s, len)) {
			*why = "invalid UTF-8 in domain";
			return -SLUICE_ESYNTAX;
		}
		memcpy(in, s, len);
		in[len] = '\0';
		rc = idn2_to_ascii_8z(in, &res, ZONE_IDN_FLAGS);
		if (rc == IDN2_MALLOC) {
			*why = "out of memory";
			return -ENOMEM;
		}
		if (rc != IDN2_OK) {
			*why = "invalid internationalised domain name";
			return -SLUICE_ESYNTAX;
		}
		rc = zone_ldh_canon(res, strlen(res), out, &idn, why);
		*outlen = strlen(res);
		free(res);
		res = NULL;
		if (rc != 0)
			return rc;
		if (!idn) /* UTS 46 mapped it to plain ASCII (full-width letters) */
			return 0;
	}
	/* The U-label alias, and the check that the A-label is the one libidn2
	 * would write for it: an A-label that decodes to a look-alike or to a
	 * disallowed string is refused rather than matched. */
	rc = idn2_to_unicode_8z8z(out, &res, 0);
	if (rc == IDN2_OK)
		rc = idn2_to_ascii_8z(res, &back, ZONE_IDN_FLAGS);
	if (rc == IDN2_MALLOC) {
		free(res);
		res = NULL;
		*why = "out of memory";
		return -ENOMEM;
	}
	if (rc != IDN2_OK || strcmp(back, out) != 0 || strlen(res) > ZONE_MAX_DOMAIN) {
		free(res);
		res = NULL;
		free(back);
		back = NULL;
		*why = "invalid A-label in domain";
		return -SLUICE_ESYNTAX;
	}
	*ulen = strlen(res);
	memcpy(ulabel, res, *ulen + 1);
	free(res);
	res = NULL;
	free(back);
	back = NULL;
	return 0;
}

int
zone__literal_parse(const char *s, size_t len, char *canon, size_t *canonlen, size_t *hostoff,
		    size_t *hostlen, const char **why)
{
	char ip[64];
	unsigned char bin[16];
	bool v6;
	size_t off;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(ip)) {
		*why = "invalid address literal";
		return -SLUICE_ESYNTAX;
	}
	v6 = len - 2 > 5 && strncasecmp(s + 1, "IPv6:", 5) == 0;
	off = v6 ? 6 : 1;
	memcpy(ip, s + off, len - 1 - off);
	ip[len - 1 - off] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, bin) != 1) {
		*why = "invalid address literal";
		return -SLUICE_ESYNTAX;
	}
	memcpy(canon, v6 ? "[IPv6:" : "[", off);
	if (inet_ntop(v6 ? AF_INET6 : AF_INET, bin, canon + off, 64 - off - 1) == NULL) {
		*why = "invalid address literal";
		return -SLUICE_ESYNTAX;
	}
	*hostoff = off;
	*hostlen = strlen(canon + off);
	canon[off + *hostlen] = ']';
	canon[off + *hostlen + 1] = '\0';
	*canonlen = off + *hostlen + 1;
	return 0;
}

static int
zone_port_parse(const char *s, size_t len, uint16_t *port, const char **why)
{
	unsigned v = 0;

	if (len == 0 || len > 5) {
		*why = "invalid port";
		return -SLUICE_ESYNTAX;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*why = "invalid port";
			return -SLUICE_ESYNTAX;
		}
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535) {
		*why = "port out of range 1-65535";
		return -SLUICE_ESYNTAX;
	}
	*port = (uint16_t)v;
	return 0;
}

int
zone__dest_parse(const char *s, size_t len, bool allow_port, struct zone__dest *d, const char **why)
{
	char local[ZONE_MAX_LOCAL + 1], dom[ZONE_MAX_DOMAIN + 1], ul[ZONE_MAX_DOMAIN + 1];
	size_t at = len, llen, dlen, ulen, hoff, hlen, rest;
	const char *r, *port = NULL;
	size_t portlen = 0;
	int rc;

	while (at > 0 && s[at - 1] != '@')
		at--;
	if (at == 0) {
		*why = "destination is not local@domain";
		return -SLUICE_ESYNTAX;
	}
	at--; /* s[at] == '@' */
	rc = zone__local_parse(s, at, local, &llen, why);
	if (rc != 0)
		return rc;
	r = s + at + 1;
	rest = len - at - 1;
	d->port = 0;
	d->literal = rest > 0 && r[0] == '[';
	if (d->literal) {
		const char *close = memchr(r, ']', rest);

		if (close == NULL) {
			*why = "invalid address literal";
			return -SLUICE_ESYNTAX;
		}
		dlen = (size_t)(close - r) + 1;
		if (dlen < rest) {
			if (r[dlen] != ':') {
				*why = "invalid address literal";
				return -SLUICE_ESYNTAX;
			}
			port = r + dlen + 1;
			portlen = rest - dlen - 1;
		}
		rc = zone__literal_parse(r, dlen, dom, &dlen, &hoff, &hlen, why);
	} else {
		const char *colon = memrchr(r, ':', rest);

		dlen = rest;
		if (colon != NULL) {
			dlen = (size_t)(colon - r);
			port = colon + 1;
			portlen = rest - dlen - 1;
		}
		rc = zone__domain_canon(r, dlen, dom, &dlen, ul, &ulen, why);
	}
	if (rc != 0)
		return rc;
	if (port != NULL) {
		if (!allow_port) {
			*why = "a verified address names no port";
			return -SLUICE_ESYNTAX;
		}
		rc = zone_port_parse(port, portlen, &d->port, why);
		if (rc != 0)
			return rc;
	}
	/* at <= 2 * 64 + 2 and dlen <= 253: always fits ZONE_MAX_ADDR */
	if (at + 1 + dlen >= ZONE_MAX_ADDR) {
		*why = "destination too long";
		return -SLUICE_ESYNTAX;
	}
	memcpy(d->addr, s, at);
	d->addr[at] = '@';
	memcpy(d->addr + at + 1, dom, dlen);
	d->addrlen = at + 1 + dlen;
	d->addr[d->addrlen] = '\0';
	d->at = at;
	return 0;
}

int
zone__verify_key(const char *addr, size_t addrlen, size_t at, char *key, size_t *keylen)
{
	size_t n;
	const char *why;
	int rc = zone__local_parse(addr, at, key, &n, &why);

	if (rc != 0)
		return rc;
	memcpy(key + n, addr + at, addrlen - at);
	*keylen = n + addrlen - at;
	key[*keylen] = '\0';
	return 0;
}
