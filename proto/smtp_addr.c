/*
 * smtp_addr.c -- RFC 5321 Mailbox grammar; see smtp_addr.h.
 *
 * Characters are classified through one 256-entry table; each parser walks
 * its input once with explicit bounds.
 */
#include "proto/smtp_addr.h"

#include <stdint.h>

#include "core/check.h"
#include "core/err.h"

enum {
	C_ATEXT = 1,  /* RFC 5322 atext */
	C_QTEXT = 2,  /* RFC 5321 qtextSMTP: 32-33, 35-91, 93-126 */
	C_LETDIG = 4, /* ALPHA / DIGIT */
	C_DIGIT = 8,  /* DIGIT */
	C_HEX = 16,   /* HEXDIG, either case */
};

/* One row per ASCII group reads better than a filled block. */
/* clang-format off */
#define AT  (C_ATEXT | C_QTEXT)
#define LD  (C_ATEXT | C_QTEXT | C_LETDIG)
#define DG  (C_ATEXT | C_QTEXT | C_LETDIG | C_DIGIT | C_HEX)
#define HX  (C_ATEXT | C_QTEXT | C_LETDIG | C_HEX)
#define QT  C_QTEXT

static const uint8_t addr_ctype[256] = {
	/* 0x20 SP ! " # $ % & ' ( ) * + , - . / */
	[' '] = QT, ['!'] = AT, ['"'] = 0, ['#'] = AT, ['$'] = AT, ['%'] = AT, ['&'] = AT,
	['\''] = AT, ['('] = QT, [')'] = QT, ['*'] = AT, ['+'] = AT, [','] = QT, ['-'] = AT,
	['.'] = QT, ['/'] = AT,
	['0'] = DG, ['1'] = DG, ['2'] = DG, ['3'] = DG, ['4'] = DG,
	['5'] = DG, ['6'] = DG, ['7'] = DG, ['8'] = DG, ['9'] = DG,
	[':'] = QT, [';'] = QT, ['<'] = QT, ['='] = AT, ['>'] = QT, ['?'] = AT, ['@'] = QT,
	['A'] = HX, ['B'] = HX, ['C'] = HX, ['D'] = HX, ['E'] = HX, ['F'] = HX,
	['G'] = LD, ['H'] = LD, ['I'] = LD, ['J'] = LD, ['K'] = LD, ['L'] = LD, ['M'] = LD,
	['N'] = LD, ['O'] = LD, ['P'] = LD, ['Q'] = LD, ['R'] = LD, ['S'] = LD, ['T'] = LD,
	['U'] = LD, ['V'] = LD, ['W'] = LD, ['X'] = LD, ['Y'] = LD, ['Z'] = LD,
	['['] = QT, ['\\'] = 0, [']'] = QT, ['^'] = AT, ['_'] = AT, ['`'] = AT,
	['a'] = HX, ['b'] = HX, ['c'] = HX, ['d'] = HX, ['e'] = HX, ['f'] = HX,
	['g'] = LD, ['h'] = LD, ['i'] = LD, ['j'] = LD, ['k'] = LD, ['l'] = LD, ['m'] = LD,
	['n'] = LD, ['o'] = LD, ['p'] = LD, ['q'] = LD, ['r'] = LD, ['s'] = LD, ['t'] = LD,
	['u'] = LD, ['v'] = LD, ['w'] = LD, ['x'] = LD, ['y'] = LD, ['z'] = LD,
	['{'] = AT, ['|'] = AT, ['}'] = AT, ['~'] = AT,
};

/* clang-format on */

#undef AT
#undef LD
#undef DG
#undef HX
#undef QT

static inline bool
is_class(char c, unsigned cls)
{
	return (addr_ctype[(uint8_t)c] & cls) != 0;
}

size_t
smtp_addr_utf8_len(const char *p, size_t n)
{
	const uint8_t *u = (const uint8_t *)p;
	if (n == 0)
		return 0;
	uint8_t c = u[0];
	size_t len;
	uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* > U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || u[1] < lo || u[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return 0;
	return len;
}

bool
smtp_addr_is_postmaster(const char *p, size_t n)
{
	static const char pm[] = "postmaster";
	if (n != sizeof(pm) - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((p[i] | 0x20) != pm[i])
			return false;
	return true;
}

bool
smtp_addr_is_domain(const char *p, size_t n, bool allow_utf8)
{
	if (n == 0 || n > SMTP_ADDR_MAX_DOMAIN)
		return false;
	size_t i = 0;
	for (;;) {
		/* one label: Let-dig [Ldh-str], Ldh-str ends with Let-dig */
		size_t start = i;
		char last = '-';
		while (i < n && p[i] != '.') {
			if (is_class(p[i], C_LETDIG) || (p[i] == '-' && i != start)) {
				last = p[i];
				i++;
			} else if (allow_utf8 && (uint8_t)p[i] >= 0x80) {
				size_t k = smtp_addr_utf8_len(p + i, n - i);
				if (k == 0)
					return false;
				last = 'a';
				i += k;
			} else {
				return false;
			}
		}
		if (i == start || i - start > SMTP_ADDR_MAX_LABEL || last == '-')
			return false;
		if (i == n)
			return true;
		i++; /* '.'; a trailing dot leaves an empty label and fails above */
	}
}

/* Snum 3("." Snum) over the whole of p[0..n). */
static bool
addr_is_ipv4(const char *p, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		unsigned v = 0, digits = 0;
		while (i < n && is_class(p[i], C_DIGIT) && digits < 3) {
			v = v * 10 + (unsigned)(p[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == n;
}

/* RFC 5321 4.1.3 IPv6-addr over the whole of p[0..n): IPv6-full, IPv6-comp
 * ("::" stands for >= 2 groups, so <= 6 others), and the IPv4 tail forms. */
static bool
addr_is_ipv6(const char *p, size_t n)
{
	unsigned groups = 0;
	bool dbl = false;
	size_t i = 0;

	if (n >= 2 && p[0] == ':' && p[1] == ':') {
		dbl = true;
		i = 2;
	}
	while (i < n) {
		size_t j = i;
		while (j < n && is_class(p[j], C_HEX) && j - i < 4)
			j++;
		if (j < n && p[j] == '.') {
			/* IPv4 tail: must run to the end and counts as two groups */
			if (!addr_is_ipv4(p + i, n - i))
				return false;
			groups += 2;
			i = n;
			break;
		}
		if (j == i)
			return false;
		groups++;
		i = j;
		if (i == n)
			break;
		if (p[i] != ':')
			return false;
		i++;
		if (i < n && p[i] == ':') {
			if (dbl)
				return false;
			dbl = true;
			i++;
		} else if (i == n) {
			return false; /* single trailing colon */
		}
	}
	return dbl ? groups <= 6 : groups == 8;
}

bool
smtp_addr_is_literal(const char *p, size_t n)
{
	static const char tag[] = "ipv6:";
	if (n < 3 || p[0] != '[' || p[n - 1] != ']' || n > SMTP_ADDR_MAX_DOMAIN)
		return false;
	p++;
	n -= 2;
	if (n >= sizeof(tag) - 1) {
		bool v6 = true;
		for (size_t i = 0; i < sizeof(tag) - 1; i++)
			if ((p[i] | 0x20) != tag[i])
				v6 = false;
		if (v6)
			return addr_is_ipv6(p + sizeof(tag) - 1, n - (sizeof(tag) - 1));
	}
	return addr_is_ipv4(p, n);
}

/* Local-part at p[0..n); returns its length (stops at the first byte that
 * cannot continue it) or -1. */
static long
addr_local(const char *p, size_t n, bool allow_utf8, struct smtp_addr *out)
{
	size_t i = 0;
	if (n > 0 && p[0] == '"') {
		out->quoted = true;
		for (i = 1; i < n; i++) {
			if (p[i] == '"')
				return (long)i + 1;
			if (p[i] == '\\') {
				/* quoted-pairSMTP = "\" %d32-126 */
				if (i + 1 >= n || (uint8_t)p[i + 1] < 32 || (uint8_t)p[i + 1] > 126)
					return -1;
				i++;
			} else if (is_class(p[i], C_QTEXT)) {
				continue;
			} else if (allow_utf8 && (uint8_t)p[i] >= 0x80) {
				size_t k = smtp_addr_utf8_len(p + i, n - i);
				if (k == 0)
					return -1;
				out->utf8 = true;
				i += k - 1;
			} else {
				return -1;
			}
		}
		return -1; /* no closing quote */
	}
	/* Dot-string = Atom *("." Atom) */
	bool atom_empty = true;
	while (i < n) {
		if (is_class(p[i], C_ATEXT)) {
			atom_empty = false;
			i++;
		} else if (p[i] == '.') {
			if (atom_empty)
				return -1;
			atom_empty = true;
			i++;
		} else if (allow_utf8 && (uint8_t)p[i] >= 0x80) {
			size_t k = smtp_addr_utf8_len(p + i, n - i);
			if (k == 0)
				return -1;
			out->utf8 = true;
			atom_empty = false;
			i += k;
		} else {
			break;
		}
	}
	return atom_empty ? -1 : (long)i;
}

int
smtp_addr_parse(const char *p, size_t n, bool allow_utf8, struct smtp_addr *out)
{
	*out = (struct smtp_addr){0};
	long l = addr_local(p, n, allow_utf8, out);
	if (l < 0 || (size_t)l >= n || p[l] != '@')
		return -SLUICE_ESYNTAX;
	if (l > SMTP_ADDR_MAX_LOCAL)
		return -SLUICE_ELIMIT;
	size_t d = (size_t)l + 1, dn = n - d;
	if (dn > SMTP_ADDR_MAX_DOMAIN)
		return -SLUICE_ELIMIT;
	if (dn > 0 && p[d] == '[') {
		if (!smtp_addr_is_literal(p + d, dn))
			return -SLUICE_ESYNTAX;
		out->literal = true;
	} else {
		if (!smtp_addr_is_domain(p + d, dn, allow_utf8))
			return -SLUICE_ESYNTAX;
		for (size_t i = d; i < n; i++)
			if ((uint8_t)p[i] >= 0x80)
				out->utf8 = true;
	}
	out->local = (struct span){0, (uint32_t)l};
	out->domain = (struct span){(uint32_t)d, (uint32_t)dn};
	return 0;
}
