/*
 * zone_lookup.c -- the RCPT-time decision: address -> zone -> rule ->
 * struct zone_decision. Runs on shard threads: pure, no locks, no
 * allocation, no libidn2 (domains are matched as the bytes the table holds:
 * the lowercase A-label or the canonical U-label alias).
 *
 * Cost: one pass over the address (split, fold, check), one ck_hs_get for
 * the domain (plus one per parent label only when some zone is a wildcard
 * and the exact name missed), one to three for the local part (exact,
 * sub-address, catch-all is a pointer), then copying what the decision
 * needs. Only the fields used are written: the decision is ~100 KiB.
 *
 * Open-relay handling (the list is in zone.h at zone_lookup()): nothing is
 * ever "rewritten" into another address -- no percent hack, no bang path, no
 * source route -- so such an address can only name a local part of our own
 * zone. To be safe even against a careless catch-all or sub-address rule,
 * local parts holding '%', '!' or '@' match exact rules only.
 */
#include "route/zone.h"

#include <string.h>

#include "route/zone_int.h"

#define ZONE_R_RELAY   "550 5.7.1 Relaying denied"
#define ZONE_R_SYNTAX  "550 5.1.3 Bad recipient address syntax"
#define ZONE_R_UNKNOWN ">: Recipient address rejected: user unknown"
#define ZONE_R_NODEST  ">: Recipient address rejected: no verified destination"
#define ZONE_R_DROP    "250 2.1.5 Ok"
#define ZONE_ECHO_MAX  256 /* octets of the address echoed in a 5.1.1 reply */

/* Byte classes of an RCPT domain: 1 = LDH (lowercased below), 2 = '.',
 * 3 = UTF-8 byte (only the canonical U-label can match), 0 = never ours. */
static const unsigned char zone_dom_class[256] = {
    ['-'] = 1,	       ['.'] = 2,	  ['0' ... '9'] = 1,
    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, [0x80 ... 0xff] = 3,
};

static void
zone_set_reply(struct zone_decision *out, const char *s, size_t n)
{
	memcpy(out->reply, s, n);
	out->reply[n] = '\0';
}

#define ZONE_REPLY(out, lit) zone_set_reply((out), (lit), sizeof(lit) - 1)

/* "550 5.1.1 <ADDR" + tail, ADDR printable ASCII only and capped. */
static void
zone_reply_addr(struct zone_decision *out, const char *addr, size_t len, const char *tail,
		size_t tlen)
{
	static const char head[] = "550 5.1.1 <";
	char *p = out->reply;

	memcpy(p, head, sizeof(head) - 1);
	p += sizeof(head) - 1;
	if (len > ZONE_ECHO_MAX)
		len = ZONE_ECHO_MAX;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		*p++ = (c < 0x20 || c > 0x7e || c == '<' || c == '>') ? '?' : (char)c;
	}
	memcpy(p, tail, tlen + 1);
}

/* One destination into the decision, with the sub-address tag appended. */
static void
zone_fill_dest(struct zone_dest *o, const struct zone_rdest *d, const char *tag, size_t taglen)
{
	size_t alen = strlen(d->addr), at = d->at;
	const char *dom = d->addr + at + 1;
	char *p = o->addr;

	if (taglen == 0) {
		memcpy(p, d->addr, alen + 1);
	} else {
		/* a quoted local part takes the tag inside its quotes */
		size_t keep = d->addr[at - 1] == '"' ? at - 1 : at;

		memcpy(p, d->addr, keep);
		memcpy(p + keep, tag, taglen);
		memcpy(p + keep + taglen, d->addr + keep, alen - keep + 1);
	}
	o->port = d->port;
	o->literal = (d->flags & ZONE_D_LITERAL) != 0;
	if (o->literal) {
		/* "[a.b.c.d]" or "[IPv6:x::y]": the bare IP */
		size_t skip = dom[1] == 'I' ? 6 : 1, n = strlen(dom) - skip - 1;

		memcpy(o->host, dom + skip, n);
		o->host[n] = '\0';
	} else {
		memcpy(o->host, dom, strlen(dom) + 1);
	}
}

static void
zone_apply(const struct zone_rule *r, const char *tag, size_t taglen, const char *addr, size_t len,
	   struct zone_decision *out)
{
	struct zone_group *g;

	out->rule = r->pattern;
	switch ((enum zone_action)r->action) {
	case ZONE_DROP:
		out->action = ZONE_DROP;
		ZONE_REPLY(out, ZONE_R_DROP);
		return;
	case ZONE_REJECT:
	case ZONE_DEFER:
		out->action = (enum zone_action)r->action;
		zone_set_reply(out, r->reply, strlen(r->reply));
		return;
	case ZONE_FORWARD:
	case ZONE_REFUSE:
		break;
	}
	g = &out->groups[0];
	g->n = 0;
	for (unsigned i = 0; i < r->ndests; i++) {
		const struct zone_rdest *d = &r->dests[i];

		if (d->flags & ZONE_D_VERIFIED)
			zone_fill_dest(&g->d[g->n++], d, tag, taglen);
		else
			out->unverified++; /* the glue logs it: unverified is never used */
		if ((d->flags & ZONE_D_GROUP_END) && g->n > 0) {
			out->ngroups++;
			if (out->ngroups < ZONE_MAX_GROUPS) {
				g = &out->groups[out->ngroups];
				g->n = 0;
			}
		}
	}
	if (out->ngroups == 0) {
		zone_reply_addr(out, addr, len, ZONE_R_NODEST, sizeof(ZONE_R_NODEST) - 1);
		return;
	}
	out->action = ZONE_FORWARD;
}

/* Can this tag be appended to a destination's local part as it is? */
static bool
zone_tag_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x80 && !zone__is_atext((unsigned char)s[i]))
			return false;
	return true;
}

/* The zone serving a lowercased domain, or NULL: its own zone first, then
 * the nearest parent zone that is a wildcard. */
static const struct zone_zone *
zone_find(const struct zone_table *t, const char *d, size_t n)
{
	const struct zone_dom *e = zone__get(t, &t->domains, NULL, d, n);

	if (e != NULL)
		return e->zone;
	if (!t->any_wildcard)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (d[i] != '.')
			continue;
		e = zone__get(t, &t->domains, NULL, d + i + 1, n - i - 1);
		if (e != NULL && (e->zone->flags & ZONE_F_WILDCARD))
			return e->zone;
	}
	return NULL;
}

enum zone_verdict {
	ZONE_V_DONE,   /* out is complete */
	ZONE_V_RELAY,  /* not ours: 550 5.7.1 */
	ZONE_V_SYNTAX, /* not an address: 550 5.1.3 */
};

static enum zone_verdict
zone_decide(const struct zone_table *t, const char *addr, size_t len, struct zone_decision *out)
{
	char local[ZONE_MAX_LOCAL + 1], key[ZONE_MAX_LOCAL + 1], dom[ZONE_MAX_DOMAIN + 1];
	size_t ll = 0, at, dlen, i;
	const struct zone_zone *z;
	const struct zone_rule *r;
	const char *tag = NULL;
	size_t taglen = 0;
	bool suspicious = false;

	if (len == 0)
		return ZONE_V_SYNTAX;
	if (addr[0] == '@') /* RFC 5321 4.1.2 source route: never followed */
		return ZONE_V_RELAY;
	if (addr[0] == '"') {
		for (i = 1; i < len && addr[i] != '"'; i++) {
			if (addr[i] == '\\' && ++i == len)
				return ZONE_V_SYNTAX;
			if (ll == ZONE_MAX_LOCAL)
				return ZONE_V_SYNTAX;
			local[ll++] = addr[i];
		}
		if (i + 1 >= len || addr[i + 1] != '@')
			return ZONE_V_SYNTAX;
		at = i + 1;
	} else {
		const char *p = memchr(addr, '@', len);

		if (p == NULL || p == addr || (size_t)(p - addr) > ZONE_MAX_LOCAL)
			return ZONE_V_SYNTAX;
		at = (size_t)(p - addr);
		memcpy(local, addr, at);
		ll = at;
	}

	/* the domain: LDH and dots folded to lowercase, UTF-8 as is */
	dlen = len - at - 1;
	if (dlen == 0)
		return ZONE_V_SYNTAX;
	if (dlen > ZONE_MAX_DOMAIN || addr[len - 1] == '.')
		return ZONE_V_RELAY; /* too long to be ours; a trailing dot is never folded away */
	for (i = 0; i < dlen; i++) {
		unsigned char c = (unsigned char)addr[at + 1 + i];

		if (zone_dom_class[c] == 0) /* '[' address literal, '@', ':', blanks... */
			return ZONE_V_RELAY;
		dom[i] = (char)zone__lower(c);
	}
	z = zone_find(t, dom, dlen);
	if (z == NULL)
		return ZONE_V_RELAY;
	out->zone = z->dom.key.s;

	for (i = 0; i < ll; i++) {
		unsigned char c = (unsigned char)local[i];

		suspicious |= c == '%' || c == '!' || c == '@';
		key[i] = (z->flags & ZONE_F_SENSITIVE) ? (char)c : (char)zone__lower(c);
	}
	r = zone__get(t, &t->rules, z, key, ll);
	if (r == NULL && !suspicious) {
		for (i = 0; z->nsep > 0 && i < ll; i++)
			if (memchr(z->sep, key[i], z->nsep) != NULL)
				break;
		/* "+x" alone has no base; an appended tag must need no quoting */
		if (i > 0 && i < ll &&
		    (!(z->flags & ZONE_F_TAG_APPEND) || zone_tag_ok(local + i, ll - i))) {
			r = zone__get(t, &t->rules, z, key, i);
			if (r != NULL && (z->flags & ZONE_F_TAG_APPEND)) {
				tag = local + i;
				taglen = ll - i;
			}
		}
		if (r == NULL)
			r = z->catchall;
	}
	if (r == NULL) {
		if (suspicious)
			return ZONE_V_RELAY;
		zone_reply_addr(out, addr, len, ZONE_R_UNKNOWN, sizeof(ZONE_R_UNKNOWN) - 1);
		return ZONE_V_DONE;
	}
	zone_apply(r, tag, taglen, addr, len, out);
	return ZONE_V_DONE;
}

void
zone_lookup(const struct zone_table *t, const char *addr, size_t len, struct zone_decision *out)
{
	out->action = ZONE_REFUSE;
	out->zone = NULL;
	out->rule = NULL;
	out->reply[0] = '\0';
	out->ngroups = 0;
	out->unverified = 0;
	switch (zone_decide(t, addr, len, out)) {
	case ZONE_V_DONE:
		break;
	case ZONE_V_RELAY:
		ZONE_REPLY(out, ZONE_R_RELAY);
		break;
	case ZONE_V_SYNTAX:
		ZONE_REPLY(out, ZONE_R_SYNTAX);
		break;
	}
}
