/*
 * zone_parse.c -- the zone file loader: lines to a compiled struct
 * zone_table (issue 4, "The zone file"; README documents the format).
 *
 *   # comment                      '#' at the start of a field ends the line
 *   zone NAME [subaddress=CHARS|off] [subdomains=none|wildcard]
 *             [local-case=insensitive|sensitive] [tag=keep|append]
 *   LOCAL@ZONE forward DEST[|DEST...] [DEST[|DEST...] ...]
 *   LOCAL@ZONE drop
 *   LOCAL@ZONE reject 5xx 5.x.x TEXT...
 *   LOCAL@ZONE defer 4xx 4.x.x TEXT...
 *   verified ADDRESS               (no port: it covers every port)
 *   verified-domain DOMAIN|[IP]
 *   tls-policy DOMAIN verify|opportunistic|none
 *
 * LOCAL is `*` (catch-all), a dot-atom or a quoted string; fields split at
 * blanks outside quoted strings. A zone line comes before its rules. Lines
 * end with LF (a CR before it is dropped). The first error stops the load
 * with "NAME:LINE: reason" and nothing is kept: the caller keeps its old
 * table.
 *
 * One pass over the text, after a prescan that counts lines by kind to size
 * the hash sets; verification is resolved at the end (verified lines may
 * follow the rules), into a flag on each destination, so lookups never
 * consult the verified sets and those are dropped after the load.
 * Rejected: two passes (zones first, then rules) to allow any order -- it
 * doubles the tokenising of 5M lines for a freedom generators do not need.
 */
#include "route/zone.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ck_hs.h>

#include "core/err.h"
#include "route/zone_int.h"

#define ZONE_READ_RETRIES 5 /* reads of a file that keeps changing before giving up */
/* octets of a reject/defer reply line, CODE ENH TEXT: RFC 5321 4.5.3.1.5 allows 512
 * with the CRLF */
#define ZONE_REPLY_LINE 510

struct zone_loader {
	struct zone_table *t; /* being built; owned until published */
	const char *name;     /* file name for errors, borrowed */
	size_t line;	      /* current line, 1-based */
	char *err;	      /* caller's error buffer, errlen bytes */
	size_t errlen;
	ck_hs_t vaddr;		   /* struct zone_key: verified "local@domain" (dequoted local) */
	ck_hs_t vdom;		   /* struct zone_key: verified-domain names and literals */
	struct zone_arena scratch; /* the verified sets' keys: freed when the load ends */
};

/* A field cursor over one line. */
struct zone_cur {
	const char *p;	 /* next unread byte */
	const char *end; /* end of the line (CR and LF excluded) */
};

static int zone_fail(struct zone_loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
zone_fail(struct zone_loader *ld, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->errlen == 0)
		return -SLUICE_ESYNTAX;
	n = snprintf(ld->err, ld->errlen, "%s:%zu: ", ld->name, ld->line);
	if (n >= 0 && (size_t)n < ld->errlen) {
		va_start(ap, fmt);
		vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -SLUICE_ESYNTAX;
}

static int
zone_nomem(struct zone_loader *ld)
{
	zone_fail(ld, "out of memory");
	return -ENOMEM;
}

static inline bool
zone_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Next field: *f and *n, or false at the end of the line or a comment. *bad is
 * set on an unterminated quoted string. */
static bool
zone_field(struct zone_cur *c, const char **f, size_t *n, bool *bad)
{
	const char *p = c->p;

	while (p < c->end && zone_is_blank(*p))
		p++;
	if (p == c->end || *p == '#') {
		c->p = c->end;
		return false;
	}
	*f = p;
	while (p < c->end && !zone_is_blank(*p)) {
		if (*p == '"') {
			for (p++; p < c->end && *p != '"'; p++)
				if (*p == '\\' && p + 1 < c->end)
					p++;
			if (p == c->end) {
				*bad = true;
				return false;
			}
		}
		p++;
	}
	*n = (size_t)(p - *f);
	c->p = p;
	return true;
}

/* Reads the next field or fails with "missing WHAT"; returns 0 or an error. */
static int
zone_need(struct zone_loader *ld, struct zone_cur *c, const char **f, size_t *n, const char *what)
{
	bool bad = false;

	if (zone_field(c, f, n, &bad))
		return 0;
	if (bad)
		return zone_fail(ld, "unterminated quoted string");
	return zone_fail(ld, "missing %s", what);
}

/* Fails when the line has fields left. */
static int
zone_end(struct zone_loader *ld, struct zone_cur *c)
{
	const char *f;
	size_t n;
	bool bad = false;

	if (zone_field(c, &f, &n, &bad))
		return zone_fail(ld, "unexpected field '%.*s'", (int)(n > 64 ? 64 : n), f);
	if (bad)
		return zone_fail(ld, "unterminated quoted string");
	return 0;
}

static bool
zone_is(const char *f, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(f, word, n) == 0;
}

static int
zone_canon(struct zone_loader *ld, const char *s, size_t n, char *out, size_t *outlen, char *ul,
	   size_t *ulen)
{
	const char *why;
	int rc = zone__domain_canon(s, n, out, outlen, ul, ulen, &why);

	if (rc == -ENOMEM)
		return zone_nomem(ld);
	if (rc != 0)
		return zone_fail(ld, "%s: '%.*s'", why, (int)(n > 64 ? 64 : n), s);
	return 0;
}

/* `zone NAME [option=value ...]` */
static int
zone_line_zone(struct zone_loader *ld, struct zone_cur *c)
{
	struct zone_table *t = ld->t;
	char name[ZONE_MAX_DOMAIN + 1], ul[ZONE_MAX_DOMAIN + 1];
	size_t n, nlen, ulen;
	const char *f;
	const struct zone_dom *old;
	struct zone_zone *z;
	unsigned long h;
	unsigned seen = 0;
	int rc;

	if ((rc = zone_need(ld, c, &f, &n, "zone name")) != 0)
		return rc;
	if ((rc = zone_canon(ld, f, n, name, &nlen, ul, &ulen)) != 0)
		return rc;
	h = zone__hash(t, name, nlen);
	old = zone__set_get(&t->domains, h, name, nlen);
	if (old != NULL)
		return zone_fail(ld, "zone %s declared twice (first at line %u)", name,
				 old->key.line);
	/* the name right after the record (zone__name): a rule hit names its zone
	 * without reading the zone */
	z = zone__alloc(&t->arena, sizeof(*z) + nlen + 1);
	if (z == NULL)
		return zone_nomem(ld);
	memset(z, 0, sizeof(*z));
	memcpy((char *)(z + 1), name, nlen + 1);
	z->nsep = 1;
	z->sep[0] = '+';
	for (bool bad = false; zone_field(c, &f, &n, &bad);) { /* bad: see below */
		const char *eq = memchr(f, '=', n), *v;
		size_t klen, vlen;
		unsigned bit;

		if (eq == NULL)
			return zone_fail(ld, "zone option '%.*s' is not key=value",
					 (int)(n > 64 ? 64 : n), f);
		klen = (size_t)(eq - f);
		v = eq + 1;
		vlen = n - klen - 1;
		if (zone_is(f, klen, "subaddress")) {
			bit = 1;
			if (zone_is(v, vlen, "off")) {
				z->nsep = 0;
			} else {
				if (vlen == 0 || vlen > ZONE_MAX_SUBADDR)
					return zone_fail(
					    ld, "subaddress= takes 1 to %d characters or off",
					    ZONE_MAX_SUBADDR);
				for (size_t i = 0; i < vlen; i++) {
					unsigned char ch = (unsigned char)v[i];

					/* atext specials only: letters and digits are
					 * addresses, '%' and '!' are relay syntax */
					if (!zone__is_atext(ch) || (ch >= '0' && ch <= '9') ||
					    ((ch | 32) >= 'a' && (ch | 32) <= 'z') || ch == '%' ||
					    ch == '!')
						return zone_fail(
						    ld,
						    "subaddress separator '%c' is not one of "
						    "#$&'*+-/=?^_`{|}~",
						    ch);
					z->sep[i] = (char)ch;
				}
				z->nsep = (uint8_t)vlen;
			}
		} else if (zone_is(f, klen, "subdomains")) {
			bit = 2;
			if (zone_is(v, vlen, "wildcard"))
				z->flags |= ZONE_F_WILDCARD;
			else if (!zone_is(v, vlen, "none"))
				return zone_fail(ld, "subdomains= takes none or wildcard");
		} else if (zone_is(f, klen, "local-case")) {
			bit = 4;
			if (zone_is(v, vlen, "sensitive"))
				z->flags |= ZONE_F_SENSITIVE;
			else if (!zone_is(v, vlen, "insensitive"))
				return zone_fail(ld, "local-case= takes insensitive or sensitive");
		} else if (zone_is(f, klen, "tag")) {
			bit = 8;
			if (zone_is(v, vlen, "append"))
				z->flags |= ZONE_F_TAG_APPEND;
			else if (!zone_is(v, vlen, "keep"))
				return zone_fail(ld, "tag= takes keep or append");
		} else {
			return zone_fail(ld, "unknown zone option '%.*s'",
					 (int)(klen > 64 ? 64 : klen), f);
		}
		if (seen & bit)
			return zone_fail(ld, "zone option '%.*s' given twice", (int)klen, f);
		seen |= bit;
	}
	if (c->p != c->end)
		return zone_fail(ld, "unterminated quoted string");
	z->dom.key.s = zone__name(z);
	z->dom.key.len = (uint32_t)nlen;
	z->dom.key.line = (uint32_t)ld->line;
	z->dom.zone = z;
	if (!zone__domain_put(t, h, &z->dom.key))
		return zone_nomem(ld);
	if ((z->flags & ZONE_F_WILDCARD) && !zone__put(t, &t->wild, &z->dom.key))
		return zone_nomem(ld);
	if (ulen > 0) {
		struct zone_dom *a = zone__alloc(&t->cold, sizeof(*a));

		if (a == NULL)
			return zone_nomem(ld);
		a->key = (struct zone_key){.s = zone__strdup(&t->cold, ul, ulen),
					   .len = (uint32_t)ulen,
					   .line = (uint32_t)ld->line};
		a->zone = z;
		if (a->key.s == NULL || !zone__domain_put(t, zone__hash(t, ul, ulen), &a->key))
			return zone_nomem(ld);
		if ((z->flags & ZONE_F_WILDCARD) && !zone__put(t, &t->wild, &a->key))
			return zone_nomem(ld);
	}
	if (z->flags & ZONE_F_WILDCARD) {
		/* the parent walk probes only suffixes with this many dots (a U-label
		 * alias has the same labels, so the same count) */
		uint8_t dots = 0;

		for (size_t i = 0; i < nlen; i++)
			dots += zone__name(z)[i] == '.';
		t->any_wildcard = true;
		t->wild_min_dots = dots < t->wild_min_dots ? dots : t->wild_min_dots;
		t->wild_max_dots = dots > t->wild_max_dots ? dots : t->wild_max_dots;
	}
	t->nzones++;
	return 0;
}

/* CODE ENH TEXT... of reject (cls '5') and defer (cls '4'), into rule->reply. */
static int
zone_line_reply(struct zone_loader *ld, struct zone_cur *c, struct zone_rule *r, char cls)
{
	const char *code, *enh, *act = cls == '5' ? "reject" : "defer";
	size_t clen, elen, tlen, dots = 0, digits = 0;
	const char *text, *tend;
	char buf[ZONE_MAX_REPLY];
	int rc, n;

	if ((rc = zone_need(ld, c, &code, &clen, "reply code")) != 0)
		return rc;
	if (clen != 3 || code[0] != cls || code[1] < '0' || code[1] > '5' || code[2] < '0' ||
	    code[2] > '9')
		return zone_fail(ld, "%s needs a %cxx reply code, not '%.*s'", act, cls,
				 (int)(clen > 16 ? 16 : clen), code);
	/* RFC 5321 4.2.3: 421 means the server closes the transmission channel, which a
	 * reply to one RCPT must not claim (the session goes on) */
	if (cls == '4' && code[1] == '2' && code[2] == '1')
		return zone_fail(ld, "defer cannot use 421 (it means closing the connection); "
				     "use 450 or 451");
	if ((rc = zone_need(ld, c, &enh, &elen, "enhanced status code")) != 0)
		return rc;
	/* RFC 3463: class "." subject "." detail, 1-3 digits each */
	bool ok = elen >= 5 && enh[0] == cls && enh[1] == '.';
	for (size_t i = 2; ok && i < elen; i++) {
		if (enh[i] == '.') {
			ok = digits > 0 && ++dots == 1;
			digits = 0;
		} else {
			ok = enh[i] >= '0' && enh[i] <= '9' && ++digits <= 3;
		}
	}
	if (!ok || dots != 1 || digits == 0)
		return zone_fail(ld, "%s needs a %c.x.x enhanced status code, not '%.*s'", act, cls,
				 (int)(elen > 16 ? 16 : elen), enh);
	/* TEXT is the rest of the line as written, up to a comment field */
	text = c->p;
	while (text < c->end && zone_is_blank(*text))
		text++;
	tend = text;
	for (const char *p = text; p < c->end; p++) {
		if (*p == '#' && zone_is_blank(p[-1]))
			break;
		if (!zone_is_blank(*p))
			tend = p + 1;
	}
	tlen = (size_t)(tend - text);
	if (tlen == 0)
		return zone_fail(ld, "%s needs a reply text", act);
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			return zone_fail(ld, "reply text must be printable ASCII");
	n = snprintf(buf, sizeof(buf), "%.*s %.*s %.*s", (int)clen, code, (int)elen, enh, (int)tlen,
		     text);
	if (n < 0 || (size_t)n > ZONE_REPLY_LINE)
		return zone_fail(ld, "reply longer than %d octets", ZONE_REPLY_LINE);
	r->reply = zone__strdup(&ld->t->arena, buf, (size_t)n);
	if (r->reply == NULL)
		return zone_nomem(ld);
	c->p = c->end;
	return 0;
}

/* zone_line_rule() packs the destination records right after the rule record. */
_Static_assert(sizeof(struct zone_rule) % _Alignof(struct zone_rdest) == 0,
	       "destination records after a rule record must stay aligned");

/* A destination's text in the arena: the address, and for a literal the bare IP
 * after its NUL ("x@[IPv6:2001:db8::1]\0002001:db8::1"), which a lookup hands out
 * as the host without copying. NULL on ENOMEM. */
static const char *
zone_dest_text(struct zone_arena *a, const struct zone__dest *d)
{
	char buf[2 * ZONE_MAX_ADDR];
	const char *dom = d->addr + d->at + 1;
	size_t skip, hlen;

	if (!d->literal)
		return zone__strdup(a, d->addr, d->addrlen);
	/* "[a.b.c.d]" or "[IPv6:x::y]" (canonical, zone__literal_parse) */
	skip = dom[1] == 'I' ? 6 : 1;
	hlen = d->addrlen - d->at - 1 - skip - 1;
	memcpy(buf, d->addr, d->addrlen);
	buf[d->addrlen] = '\0';
	memcpy(buf + d->addrlen + 1, dom + skip, hlen);
	return zone__strdup(a, buf, d->addrlen + 1 + hlen);
}

/* forward DEST[|DEST...] ...: the destination records into tmp[0..*ndp) (their texts
 * into the cold arena). */
static int
zone_line_forward(struct zone_loader *ld, struct zone_cur *c, struct zone_rdest *tmp, unsigned *ndp)
{
	struct zone__dest d;
	unsigned ng = 0, nd = 0;
	const char *f, *why;
	size_t n;
	bool bad = false;
	int rc;

	while (zone_field(c, &f, &n, &bad)) {
		const char *p = f, *end = f + n;
		unsigned nf = 0;

		if (++ng > ZONE_MAX_GROUPS)
			return zone_fail(ld, "more than %d destinations", ZONE_MAX_GROUPS);
		while (p <= end) {
			const char *q = p;

			/* one alternative: up to a '|' outside quotes */
			while (q < end && *q != '|') {
				if (*q == '"')
					for (q++; q < end && *q != '"'; q++)
						if (*q == '\\')
							q++;
				q++;
			}
			if (q > end)
				q = end;
			if (q == p)
				return zone_fail(ld, "empty destination");
			if (++nf > ZONE_MAX_FALLBACKS)
				return zone_fail(ld, "more than %d fallbacks in one destination",
						 ZONE_MAX_FALLBACKS);
			rc = zone__dest_parse(p, (size_t)(q - p), true, &d, &why);
			if (rc == -ENOMEM)
				return zone_nomem(ld);
			if (rc != 0)
				return zone_fail(ld, "%s: '%.*s'", why,
						 (int)(q - p > 80 ? 80 : q - p), p);
			tmp[nd].addr = zone_dest_text(&ld->t->cold, &d);
			if (tmp[nd].addr == NULL)
				return zone_nomem(ld);
			tmp[nd].len = (uint16_t)d.addrlen;
			tmp[nd].at = (uint16_t)d.at;
			tmp[nd].port = d.port;
			tmp[nd].flags = d.literal ? ZONE_D_LITERAL : 0;
			nd++;
			p = q + 1;
		}
		tmp[nd - 1].flags |= ZONE_D_GROUP_END;
	}
	if (bad)
		return zone_fail(ld, "unterminated quoted string");
	if (nd == 0)
		return zone_fail(ld, "forward needs a destination");
	*ndp = nd;
	return 0;
}

/* ADDRESS ACTION [ARGS]: f/n is ADDRESS. */
static int
zone_line_rule(struct zone_loader *ld, struct zone_cur *c, const char *f, size_t n)
{
	struct zone_table *t = ld->t;
	char dom[ZONE_MAX_DOMAIN + 1], ul[ZONE_MAX_DOMAIN + 1], key[ZONE_KEY_MAX + 1];
	struct zone_rdest dests[ZONE_MAX_GROUPS * ZONE_MAX_FALLBACKS];
	size_t at = n, dlen, ulen, llen = 0, klen = 0, size;
	unsigned long hd, h = 0;
	const struct zone_dom *zd;
	struct zone_zone *z;
	const struct zone_rule *old;
	struct zone_rule rule = {0}, *r;
	const char *act, *why;
	size_t alen;
	unsigned nd = 0;
	bool catchall, shared;
	char *p;
	int rc;

	while (at > 0 && f[at - 1] != '@')
		at--;
	if (at-- <= 1)
		return zone_fail(ld, "rule address '%.*s' is not local@zone",
				 (int)(n > 80 ? 80 : n), f);
	if ((rc = zone_canon(ld, f + at + 1, n - at - 1, dom, &dlen, ul, &ulen)) != 0)
		return rc;
	hd = zone__hash(t, dom, dlen);
	zd = zone__set_get(&t->domains, hd, dom, dlen);
	if (zd == NULL)
		return zone_fail(ld, "no zone declared for %s (a zone line must come first)", dom);
	/* rules hang off the zone; the arena is ours while loading */
	z = (struct zone_zone *)(uintptr_t)zd->zone;
	catchall = at == 1 && f[0] == '*';
	if (!catchall) {
		/* the key: "LOCAL@ZONE", local part as compared, canonical zone name */
		rc = zone__local_parse(f, at, key, &llen, &why);
		if (rc != 0)
			return zone_fail(ld, "%s: '%.*s'", why, (int)(n > 80 ? 80 : n), f);
		if (!(z->flags & ZONE_F_SENSITIVE))
			for (size_t i = 0; i < llen; i++)
				key[i] = (char)zone__lower((unsigned char)key[i]);
		key[llen] = '@';
		memcpy(key + llen + 1, zone__name(z), z->dom.key.len + 1);
		klen = llen + 1 + z->dom.key.len;
		/* the zone name's hash seeds (zone__rule_hash): hd, as dom is the canonical
		 * name and found the zone's own entry */
		BUG_ON(zd != &z->dom);
		h = zone__rule_hash_at(hd, key, llen);
		old = zone__set_get(&t->rules, h, key, klen);
	} else {
		old = z->catchall;
	}
	if (old != NULL)
		return zone_fail(ld, "duplicate rule for %.*s (first at line %u)",
				 (int)(n > 80 ? 80 : n), f, old->key.line);
	if ((rc = zone_need(ld, c, &act, &alen, "action")) != 0)
		return rc;
	if (zone_is(act, alen, "forward")) {
		rule.action = ZONE_FORWARD;
		rc = zone_line_forward(ld, c, dests, &nd);
	} else if (zone_is(act, alen, "drop")) {
		rule.action = ZONE_DROP;
		rc = zone_end(ld, c);
	} else if (zone_is(act, alen, "reject")) {
		rule.action = ZONE_REJECT;
		rc = zone_line_reply(ld, c, &rule, '5');
	} else if (zone_is(act, alen, "defer")) {
		rule.action = ZONE_DEFER;
		rc = zone_line_reply(ld, c, &rule, '4');
	} else {
		return zone_fail(ld, "unknown action '%.*s'", (int)(alen > 32 ? 32 : alen), act);
	}
	if (rc != 0)
		return rc;

	/* One block, in the order a lookup reads it: the record, its destination records,
	 * the pattern, then the key unless it shares the pattern's bytes (it does when the
	 * address is written as compared: lowercase, canonical domain). A hit thus reads
	 * ~90 contiguous bytes for a one-destination rule, two cache lines. */
	shared = catchall || (n == klen && memcmp(f, key, klen) == 0);
	size = sizeof(*r) + nd * sizeof(*dests) + n + 1 + (shared ? 0 : klen + 1);
	r = zone__alloc(&t->arena, size);
	if (r == NULL)
		return zone_nomem(ld);
	*r = rule;
	r->zone = z;
	r->sensitive = (z->flags & ZONE_F_SENSITIVE) != 0;
	r->key.len = (uint32_t)klen;
	r->key.line = (uint32_t)ld->line;
	p = (char *)(r + 1);
	if (nd > 0) {
		memcpy(p, dests, nd * sizeof(*dests));
		r->dests = (const struct zone_rdest *)(void *)p;
		r->ndests = (uint16_t)nd;
		p += nd * sizeof(*dests);
	}
	memcpy(p, f, n);
	p[n] = '\0';
	r->pattern = p;
	r->key.s = p;
	if (!shared) {
		p += n + 1;
		memcpy(p, key, klen);
		p[klen] = '\0';
		r->key.s = p;
	}
	if (catchall)
		z->catchall = r;
	else if (!zone__set_put(t, &t->rules, h, &r->key))
		return zone_nomem(ld);
	t->nrules++;
	return 0;
}

/* Record a verification key in hs (duplicates are harmless). */
static int
zone_verified_put(struct zone_loader *ld, ck_hs_t *hs, const char *s, size_t n)
{
	struct zone_key *k;

	if (zone__get(ld->t, hs, s, n) != NULL)
		return 0;
	k = zone__alloc(&ld->scratch, sizeof(*k));
	if (k == NULL)
		return zone_nomem(ld);
	*k = (struct zone_key){
	    .s = zone__strdup(&ld->scratch, s, n), .len = (uint32_t)n, .line = (uint32_t)ld->line};
	if (k->s == NULL || !zone__put(ld->t, hs, k))
		return zone_nomem(ld);
	return 0;
}

/* `verified ADDRESS` and `verified-domain DOMAIN` */
static int
zone_line_verified(struct zone_loader *ld, struct zone_cur *c, bool domain)
{
	char key[ZONE_MAX_ADDR], ul[ZONE_MAX_DOMAIN + 1];
	size_t n, klen, ulen, hoff, hlen;
	struct zone__dest d;
	const char *f, *why;
	int rc;

	if ((rc = zone_need(ld, c, &f, &n, domain ? "domain" : "address")) != 0)
		return rc;
	if (domain && n > 0 && f[0] == '[') {
		rc = zone__literal_parse(f, n, key, &klen, &hoff, &hlen, &why);
	} else if (domain) {
		if ((rc = zone_canon(ld, f, n, key, &klen, ul, &ulen)) != 0)
			return rc;
	} else {
		rc = zone__dest_parse(f, n, false, &d, &why);
		if (rc == 0)
			rc = zone__verify_key(d.addr, d.addrlen, d.at, key, &klen);
	}
	if (rc == -ENOMEM)
		return zone_nomem(ld);
	if (rc != 0)
		return zone_fail(ld, "%s: '%.*s'", why, (int)(n > 80 ? 80 : n), f);
	if ((rc = zone_end(ld, c)) != 0)
		return rc;
	return zone_verified_put(ld, domain ? &ld->vdom : &ld->vaddr, key, klen);
}

/* `tls-policy DOMAIN verify|opportunistic|none` */
static int
zone_line_tls(struct zone_loader *ld, struct zone_cur *c)
{
	struct zone_table *t = ld->t;
	char dom[ZONE_MAX_DOMAIN + 1], ul[ZONE_MAX_DOMAIN + 1];
	size_t n, dlen, ulen, plen;
	const char *f, *pol;
	const struct zone_tls *old;
	struct zone_tls *e;
	uint8_t policy;
	int rc;

	if ((rc = zone_need(ld, c, &f, &n, "domain")) != 0)
		return rc;
	if ((rc = zone_canon(ld, f, n, dom, &dlen, ul, &ulen)) != 0)
		return rc;
	if ((rc = zone_need(ld, c, &pol, &plen, "tls policy")) != 0)
		return rc;
	if (zone_is(pol, plen, "verify"))
		policy = ZONE_TLS_VERIFY;
	else if (zone_is(pol, plen, "opportunistic"))
		policy = ZONE_TLS_OPPORTUNISTIC;
	else if (zone_is(pol, plen, "none"))
		policy = ZONE_TLS_NONE;
	else
		return zone_fail(ld, "tls-policy takes verify, opportunistic or none, not '%.*s'",
				 (int)(plen > 32 ? 32 : plen), pol);
	if ((rc = zone_end(ld, c)) != 0)
		return rc;
	old = zone__get(t, &t->tls, dom, dlen);
	if (old != NULL)
		return zone_fail(ld, "tls-policy for %s given twice (first at line %u)", dom,
				 old->key.line);
	e = zone__alloc(&t->cold, sizeof(*e));
	if (e == NULL)
		return zone_nomem(ld);
	*e = (struct zone_tls){.key = {.s = zone__strdup(&t->cold, dom, dlen),
				       .len = (uint32_t)dlen,
				       .line = (uint32_t)ld->line},
			       .policy = policy};
	if (e->key.s == NULL || !zone__put(t, &t->tls, &e->key))
		return zone_nomem(ld);
	return 0;
}

static int
zone_line(struct zone_loader *ld, const char *p, size_t n)
{
	struct zone_cur c = {.p = p, .end = p + n};
	const char *f;
	size_t fn;
	bool bad = false;

	if (memchr(p, '\0', n) != NULL)
		return zone_fail(ld, "NUL byte in line");
	if (!zone_field(&c, &f, &fn, &bad))
		return bad ? zone_fail(ld, "unterminated quoted string") : 0;
	if (zone_is(f, fn, "zone"))
		return zone_line_zone(ld, &c);
	if (zone_is(f, fn, "verified"))
		return zone_line_verified(ld, &c, false);
	if (zone_is(f, fn, "verified-domain"))
		return zone_line_verified(ld, &c, true);
	if (zone_is(f, fn, "tls-policy"))
		return zone_line_tls(ld, &c);
	if (memchr(f, '@', fn) != NULL)
		return zone_line_rule(ld, &c, f, fn);
	return zone_fail(ld, "unknown directive '%.*s'", (int)(fn > 32 ? 32 : fn), f);
}

static void
zone_verify_rule(struct zone_loader *ld, const struct zone_rule *r)
{
	char key[ZONE_MAX_ADDR];
	size_t klen;

	if (r == NULL || r->action != ZONE_FORWARD)
		return;
	for (unsigned i = 0; i < r->ndests; i++) {
		/* our own record, still private to the loader */
		struct zone_rdest *d = (struct zone_rdest *)(uintptr_t)&r->dests[i];
		const char *dom = d->addr + d->at + 1;

		if (zone__get(ld->t, &ld->vdom, dom, strlen(dom)) != NULL ||
		    (zone__verify_key(d->addr, strlen(d->addr), d->at, key, &klen) == 0 &&
		     zone__get(ld->t, &ld->vaddr, key, klen) != NULL))
			d->flags |= ZONE_D_VERIFIED;
	}
}

/* Set ZONE_D_VERIFIED on every destination that a verified line covers. */
static void
zone_verify_all(struct zone_loader *ld)
{
	const struct zone_table *t = ld->t;

	for (size_t i = 0; i < t->rules.nslots; i++)
		zone_verify_rule(ld, (const struct zone_rule *)zone__set_at(&t->rules, i));
	for (size_t i = 0; i < t->domains.nslots; i++) {
		const struct zone_dom *d = (const struct zone_dom *)zone__set_at(&t->domains, i);

		if (d != NULL && &d->zone->dom == d) /* the zone's own entry, not an alias */
			zone_verify_rule(ld, d->zone->catchall);
	}
}

/* True when a zone line may name an IDN zone (a byte >= 0x80, or an "xn--" label in
 * any case): its zone takes a second domains entry, the U-label. An upper bound, for
 * the prescan. */
static bool
zone_line_maybe_idn(const char *p, const char *end)
{
	for (; p < end; p++)
		if ((unsigned char)*p >= 0x80 || (end - p >= 4 && (p[0] | 32) == 'x' &&
						  (p[1] | 32) == 'n' && p[2] == '-' && p[3] == '-'))
			return true;
	return false;
}

static bool
zone_starts(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(end - p) > n && memcmp(p, word, n) == 0 && zone_is_blank(p[n]);
}

int
zone_table_load_string(const char *text, size_t len, const char *name, struct zone_table **out,
		       char *err, size_t errlen)
{
	struct zone_loader ld = {.name = name, .err = err, .errlen = errlen};
	size_t nd = 0, nr = 0, nv = 0, nt = 0, nw = 0, hs_bytes;
	const char *p, *end = text + len;
	int rc = 0;

	if (errlen > 0)
		err[0] = '\0';
	/* prescan: size every hash set once */
	for (p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl : end;

		if (zone_starts(p, e, "zone")) {
			nd += 1 + zone_line_maybe_idn(p, e);
			/* an upper bound: the word may sit elsewhere on the line */
			nw += memmem(p, (size_t)(e - p), "wildcard", 8) != NULL;
		} else if (zone_starts(p, e, "verified") || zone_starts(p, e, "verified-domain"))
			nv++;
		else if (zone_starts(p, e, "tls-policy"))
			nt++;
		else
			nr++;
		p = e + 1;
	}
	ld.t = zone__table_new(nd, nr, nt, nw);
	if (ld.t == NULL)
		return zone_nomem(&ld);
	hs_bytes = ld.t->hs_bytes; /* the verified sets live only during the load */
	if (!zone__hs_init(ld.t, &ld.vaddr, nv))
		goto err_vaddr;
	if (!zone__hs_init(ld.t, &ld.vdom, nv))
		goto err_vdom;

	for (p = text; p < end && rc == 0;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);

		ld.line++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > ZONE_MAX_LINE)
			rc = zone_fail(&ld, "line longer than %d octets", ZONE_MAX_LINE);
		else
			rc = zone_line(&ld, p, n);
		p = nl != NULL ? nl + 1 : end;
	}
	if (rc != 0)
		goto err_parse;
	zone_verify_all(&ld);
	ld.t->hs_bytes = hs_bytes;
	ck_hs_destroy(&ld.vdom);
	ck_hs_destroy(&ld.vaddr);
	zone__arena_fini(&ld.scratch);
	*out = ld.t;
	return 0;

err_parse:
	ck_hs_destroy(&ld.vdom);
err_vdom:
	ck_hs_destroy(&ld.vaddr);
err_vaddr:
	zone__arena_fini(&ld.scratch);
	zone_table_free(ld.t);
	ld.t = NULL;
	return rc != 0 ? rc : zone_nomem(&ld);
}

/*
 * Read the whole file into a heap buffer. Rejected: mmap, which turns a file
 * truncated by its writer during a (re)load into SIGBUS for the whole server.
 * A file that changes size or mtime while it is read is read again (bounded):
 * a table is never built from a half-written file.
 */
static int
zone_read_file(int fd, char **buf, size_t *len)
{
	for (int attempt = 0; attempt < ZONE_READ_RETRIES; attempt++) {
		struct stat before, after;
		size_t got = 0;
		char *p;

		if (fstat(fd, &before) != 0)
			return -errno;
		if (!S_ISREG(before.st_mode))
			return -EINVAL;
		p = malloc((size_t)before.st_size + 1);
		if (p == NULL)
			return -ENOMEM;
		while (got < (size_t)before.st_size) {
			ssize_t n = pread(fd, p + got, (size_t)before.st_size - got, (off_t)got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break; /* shrank under us: the check below retries */
			got += (size_t)n;
		}
		if (fstat(fd, &after) != 0) {
			free(p);
			return -errno;
		}
		if (got == (size_t)before.st_size && after.st_size == before.st_size &&
		    after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
		    after.st_mtim.tv_nsec == before.st_mtim.tv_nsec) {
			*buf = p;
			*len = got;
			return 0;
		}
		free(p);
	}
	return -EAGAIN; /* still being written: the caller keeps its old table */
}

int
zone_table_load(const char *path, struct zone_table **out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto err;
	}
	rc = zone_read_file(fd, &text, &len);
	close(fd);
	if (rc < 0)
		goto err;
	rc = zone_table_load_string(text, len, path, out, err, errlen);
	free(text);
	return rc;

err:
	if (errlen > 0)
		snprintf(err, errlen, "%s: %s", path,
			 rc == -EAGAIN ? "changed while being read, try again" : strerror(-rc));
	return rc;
}
