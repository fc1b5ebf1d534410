/*
 * zone_lookup.c -- the RCPT-time decision: address -> zone -> rule ->
 * struct zone_decision. Runs on shard threads: pure, no locks, no
 * allocation, no libidn2 (domains are matched as the bytes the table holds:
 * the lowercase A-label or the canonical U-label alias).
 *
 * Cost: one pass over the address (split, fold, check), one ck_hs_get for
 * the domain (plus one per parent label in the small set of wildcard zones
 * when the exact name missed), one for the exact local part plus one per
 * separator in it, tried from the right (sub-address; at most 63, usually 0-1;
 * catch-all is a pointer), then copying what the decision
 * needs. Only the fields used are written: the decision is ~100 KiB. No
 * snprintf, no strlen of table strings (destinations carry their length).
 *
 * On a table far bigger than the caches the cost is memory latency (a hash
 * slot and a record for the domain, the same for the rule: ~4 dependent
 * misses). zone_lookup_batch() overlaps them across addresses: see struct
 * zone_job. Measured on 1M zones / 5M rules (bench_route, medians of 3):
 * 1.47 -> 2.42 M lookups/s uniform, 2.43 -> 3.10 M Zipf, 6.4 -> 6.9 M hot.
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
#define ZONE_BATCH     16  /* lookups in flight in zone_lookup_batch() */

/* An RCPT domain byte as the table holds it: LDH and '.' (ASCII letters
 * lowercased), UTF-8 bytes as they are (only the canonical U-label can
 * match); 0 = never ours. One load per byte, no branch. */
#define ZONE_L(c) [c] = (c) + 32
static const unsigned char zone_dom_fold[256] = {
    ['-'] = '-', ['.'] = '.', ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4',
    ['5'] = '5', ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9', ['a'] = 'a', ['b'] = 'b',
    ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f', ['g'] = 'g', ['h'] = 'h', ['i'] = 'i',
    ['j'] = 'j', ['k'] = 'k', ['l'] = 'l', ['m'] = 'm', ['n'] = 'n', ['o'] = 'o', ['p'] = 'p',
    ['q'] = 'q', ['r'] = 'r', ['s'] = 's', ['t'] = 't', ['u'] = 'u', ['v'] = 'v', ['w'] = 'w',
    ['x'] = 'x', ['y'] = 'y', ['z'] = 'z', ZONE_L('A'), ZONE_L('B'), ZONE_L('C'), ZONE_L('D'),
    ZONE_L('E'), ZONE_L('F'), ZONE_L('G'), ZONE_L('H'), ZONE_L('I'), ZONE_L('J'), ZONE_L('K'),
    ZONE_L('L'), ZONE_L('M'), ZONE_L('N'), ZONE_L('O'), ZONE_L('P'), ZONE_L('Q'), ZONE_L('R'),
    ZONE_L('S'), ZONE_L('T'), ZONE_L('U'), ZONE_L('V'), ZONE_L('W'), ZONE_L('X'), ZONE_L('Y'),
    ZONE_L('Z'),
};
#undef ZONE_L

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
	size_t alen = d->len, at = d->at;
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
		size_t skip = dom[1] == 'I' ? 6 : 1, n = alen - at - 1 - skip - 1;

		memcpy(o->host, dom + skip, n);
		o->host[n] = '\0';
	} else {
		memcpy(o->host, dom, alen - at);
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

/* What a tag=append zone does with a sub-address tag (the separator and what follows). */
enum zone_tag {
	ZONE_TAG_APPEND, /* a dot-atom continuation: appended to each destination */
	ZONE_TAG_BASE,	 /* valid but would need quoting: the base rule, tag not appended */
	ZONE_TAG_BAD,	 /* never copied anywhere: the address is refused 550 5.1.3 */
};

/* Code points refused in a tag besides C0/C1 and DEL (zone__utf8_ok): Unicode
 * blanks (Zs, U+2028/9) and invisible or bidi format characters, which would make
 * the forwarded address read as another one (U+202E RIGHT-TO-LEFT OVERRIDE). */
static bool
zone_tag_cp_bad(uint32_t cp)
{
	return cp == 0xa0 || cp == 0x61c || cp == 0x1680 || cp == 0x180e ||
	       (cp >= 0x2000 && cp <= 0x200b) || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202f) || cp == 0x205f ||
	       (cp >= 0x2060 && cp <= 0x2069 && cp != 0x2065) || cp == 0x3000 || cp == 0xfeff;
}

/*
 * Classify a tag (s[0] is the separator, never '.'): BAD when it is not well-formed
 * UTF-8 or holds a control, a blank or a code point of zone_tag_cp_bad(); APPEND when
 * it is a dot-atom continuation (RFC 5321 dot-string: atext, UTF-8, dots neither
 * doubled nor last), so that "local" + tag is still a valid unquoted local part (and
 * fits inside a quoted one); BASE otherwise (quoted specials, "a..b", "a."): the
 * address matches the base rule and the destinations stay as written.
 */
static enum zone_tag
zone_tag_class(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	enum zone_tag v = ZONE_TAG_APPEND;

	if (!zone__utf8_ok(s, n))
		return ZONE_TAG_BAD; /* also C0, C1 and DEL */
	for (size_t i = 0; i < n; i++) {
		uint32_t c = p[i];

		if (c == ' ')
			return ZONE_TAG_BAD;
		if (c == '.') {
			if (i + 1 == n || p[i + 1] == '.')
				v = ZONE_TAG_BASE;
			continue;
		}
		if (c < 0x80) {
			if (!zone__is_atext((unsigned char)c))
				v = ZONE_TAG_BASE;
			continue;
		}
		/* well-formed (checked above): decode the sequence */
		if (c < 0xe0) {
			c = (c & 0x1f) << 6 | (p[i + 1] & 0x3f);
			i += 1;
		} else if (c < 0xf0) {
			c = (c & 0x0f) << 12 | (uint32_t)(p[i + 1] & 0x3f) << 6 | (p[i + 2] & 0x3f);
			i += 2;
		} else {
			c = (c & 0x07) << 18 | (uint32_t)(p[i + 1] & 0x3f) << 12 |
			    (uint32_t)(p[i + 2] & 0x3f) << 6 | (p[i + 3] & 0x3f);
			i += 3;
		}
		if (zone_tag_cp_bad(c))
			return ZONE_TAG_BAD;
	}
	return v;
}

/*
 * Is d[0..n) (lowercased, LDH, '.' and bytes >= 0x80 only: zone_dom_fold) made of
 * valid labels? Non-empty, at most 63 octets, no hyphen first or last, well-formed
 * UTF-8 without controls. A wildcard zone only takes subdomains that could exist.
 */
static bool
zone_labels_ok(const char *d, size_t n)
{
	size_t start = 0;

	if (!zone__utf8_ok(d, n))
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && d[i] != '.')
			continue;
		if (i == start || i - start > 63 || d[start] == '-' || d[i - 1] == '-')
			return false;
		start = i + 1;
	}
	return true;
}

/* The nearest parent zone of a lowercased domain that is a wildcard, or NULL (the
 * domain itself has no zone of its own). NULL too when the labels in front of the
 * parent are not valid (empty, over 63 octets, hyphen first or last, bad UTF-8). */
static const struct zone_zone *
zone_find_parent(const struct zone_table *t, const char *d, size_t n)
{
	if (!t->any_wildcard)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct zone_dom *e;

		if (d[i] != '.')
			continue;
		e = zone__get(t, &t->wild, NULL, d + i + 1, n - i - 1);
		if (e != NULL)
			return zone_labels_ok(d, i) ? e->zone : NULL;
	}
	return NULL;
}

/* Ask the CPU for the lines of a record the next stage reads (a hint; NULL is fine). */
static inline void
zone_prefetch(const void *p, unsigned lines)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < lines; i++)
		__builtin_prefetch((const char *)p + 64 * i, 0, 3);
}

enum zone_verdict {
	ZONE_V_GO,     /* not decided yet: the next stage goes on */
	ZONE_V_DONE,   /* out is complete */
	ZONE_V_RELAY,  /* not ours: 550 5.7.1 */
	ZONE_V_SYNTAX, /* not an address: 550 5.1.3 */
};

/*
 * One lookup in flight. A lookup runs in five stages, and zone_lookup_batch() runs
 * each stage over the whole batch before the next, so the cache misses of different
 * addresses overlap instead of queueing:
 *   1 split    parse the address, fold the domain, hash it;
 *   2 domain   find the domain's candidate entry by hash tag alone (no dereference),
 *              prefetch it;
 *   3 zone     check the candidate (or do the full lookup), fold and hash the local
 *              part;
 *   4 probe    find the rule's candidate by tag, prefetch it;
 *   5 rule     check it, sub-address and catch-all, fill the decision.
 * A candidate found by tag alone is checked against the key before use: a tag
 * collision (another key with the same 16 hash bits) falls back to the full lookup.
 * zone_lookup() is a batch of one: the same code decides every address.
 */
struct zone_job {
	const char *addr;		/* the address as given, len bytes */
	size_t len;			/* bytes of addr */
	struct zone_decision *out;	/* the caller's decision */
	enum zone_verdict v;		/* ZONE_V_GO until decided */
	size_t ll;			/* bytes of local (dequoted) and key */
	size_t dlen;			/* bytes of dom */
	unsigned long h;		/* hash of the current key (domain, then rule) */
	const struct zone_zone *z;	/* stage 3 on: the zone */
	const void *cand;		/* the candidate entry of the current probe, or NULL */
	bool suspicious;		/* '%', '!' or '@' in the local part */
	char local[ZONE_MAX_LOCAL + 1]; /* local part, dequoted, case as given */
	char key[ZONE_MAX_LOCAL + 1];	/* local part as compared */
	char dom[ZONE_MAX_DOMAIN + 1];	/* domain, LDH folded to lowercase */
};

/* Stage 1: split and check the address, fold the domain, hash it. */
static void
zone_stage_split(const struct zone_table *t, struct zone_job *j)
{
	const char *addr = j->addr;
	size_t len = j->len, ll = 0, at, dlen, i;
	struct zone_decision *out = j->out;
	const char *why;

	out->action = ZONE_REFUSE;
	out->zone = NULL;
	out->rule = NULL;
	out->reply[0] = '\0';
	out->ngroups = 0;
	out->unverified = 0;
	j->v = ZONE_V_SYNTAX;
	j->cand = NULL;
	if (len == 0)
		return;
	if (addr[0] == '@') { /* RFC 5321 4.1.2 source route: never followed */
		j->v = ZONE_V_RELAY;
		return;
	}
	if (addr[0] == '"') {
		for (i = 1; i < len && addr[i] != '"'; i++)
			if (addr[i] == '\\' && ++i == len)
				return;
		if (i + 1 >= len || addr[i + 1] != '@')
			return;
		at = i + 1;
	} else {
		const char *p = memchr(addr, '@', len);

		if (p == NULL)
			return;
		at = (size_t)(p - addr);
	}
	/* the loader's own grammar (zone__local_parse): what no rule could be
	 * written for never reaches a sub-address or catch-all rule either */
	if (zone__local_parse(addr, at, j->local, &ll, &why) != 0)
		return;
	j->ll = ll;

	/* the domain: LDH and dots folded to lowercase, UTF-8 as is */
	dlen = len - at - 1;
	if (dlen == 0)
		return;
	j->v = ZONE_V_RELAY;
	if (dlen > ZONE_MAX_DOMAIN || addr[len - 1] == '.')
		return; /* too long to be ours; a trailing dot is never folded away */
	{
		const unsigned char *d = (const unsigned char *)addr + at + 1;
		unsigned char bad = 0;

		for (i = 0; i < dlen; i++) {
			unsigned char c = d[i] >= 0x80 ? d[i] : zone_dom_fold[d[i]];

			bad |= c == 0;
			j->dom[i] = (char)c;
		}
		if (bad) /* '[' address literal, '@', ':', blanks... */
			return;
	}
	j->dlen = dlen;
	j->h = zone__hash(t, NULL, j->dom, dlen);
	j->v = ZONE_V_GO;
}

/* Stage 2: the domain's candidate entry, prefetched (the record and its name). */
static void
zone_stage_domain(const struct zone_table *t, struct zone_job *j)
{
	if (j->v != ZONE_V_GO)
		return;
	j->cand = zone__get_tag(&t->domains, j->h);
	zone_prefetch(j->cand, 2);
}

/* Stage 3: the zone; then the local part's key and its hash. */
static void
zone_stage_zone(const struct zone_table *t, struct zone_job *j)
{
	const struct zone_dom *e = j->cand;
	const struct zone_zone *z;
	bool suspicious = false, fold;

	if (j->v != ZONE_V_GO)
		return;
	if (e != NULL && !zone__key_eq(&e->key, NULL, j->dom, j->dlen))
		e = zone__get_hashed(&t->domains, j->h, NULL, j->dom, j->dlen); /* tag collision */
	z = e != NULL ? e->zone : zone_find_parent(t, j->dom, j->dlen);
	if (z == NULL) {
		j->v = ZONE_V_RELAY;
		return;
	}
	j->z = z;
	j->out->zone = z->dom.key.s;
	fold = !(z->flags & ZONE_F_SENSITIVE);
	for (size_t i = 0; i < j->ll; i++) {
		unsigned char c = (unsigned char)j->local[i];

		suspicious |= c == '%' || c == '!' || c == '@';
		j->key[i] = fold ? (char)zone__lower(c) : (char)c;
	}
	j->suspicious = suspicious;
	j->h = zone__hash(t, z, j->key, j->ll);
}

/* Stage 4: the rule's candidate entry, prefetched: the record, its key and pattern,
 * and usually its destinations (the loader writes them one after the other). */
static void
zone_stage_probe(const struct zone_table *t, struct zone_job *j)
{
	if (j->v != ZONE_V_GO)
		return;
	j->cand = zone__get_tag(&t->rules, j->h);
	zone_prefetch(j->cand, 3);
}

/* Stage 5: the rule (exact, sub-address, catch-all) and the decision. */
static void
zone_stage_rule(const struct zone_table *t, struct zone_job *j)
{
	const struct zone_zone *z = j->z;
	const struct zone_rule *r = j->cand;
	const char *tag = NULL;
	size_t taglen = 0, ll = j->ll, i;

	if (j->v != ZONE_V_GO)
		return;
	j->v = ZONE_V_DONE;
	if (r != NULL && !zone__key_eq(&r->key, z, j->key, ll))
		r = zone__get_hashed(&t->rules, j->h, z, j->key, ll); /* tag collision */
	if (r == NULL && !j->suspicious) {
		/* bases from the longest to the shortest: split at each separator from
		 * the right; the first base with an exact rule wins ("+x" alone has no
		 * base, so i stops at 1) */
		for (i = ll; z->nsep > 0 && i-- > 1;) {
			if (memchr(z->sep, j->key[i], z->nsep) == NULL)
				continue;
			r = zone__get(t, &t->rules, z, j->key, i);
			if (r != NULL)
				break;
		}
		if (r != NULL && (z->flags & ZONE_F_TAG_APPEND)) {
			switch (zone_tag_class(j->local + i, ll - i)) {
			case ZONE_TAG_BAD:
				j->v = ZONE_V_SYNTAX;
				return;
			case ZONE_TAG_APPEND:
				tag = j->local + i;
				taglen = ll - i;
				break;
			case ZONE_TAG_BASE:
				break;
			}
		}
		if (r == NULL)
			r = z->catchall;
	}
	if (r == NULL) {
		if (j->suspicious) {
			j->v = ZONE_V_RELAY;
			return;
		}
		zone_reply_addr(j->out, j->addr, j->len, ZONE_R_UNKNOWN,
				sizeof(ZONE_R_UNKNOWN) - 1);
		return;
	}
	zone_apply(r, tag, taglen, j->addr, j->len, j->out);
}

/* The fixed replies of the verdicts that stopped early. */
static void
zone_finish(struct zone_job *j)
{
	switch (j->v) {
	case ZONE_V_GO:
	case ZONE_V_DONE:
		break;
	case ZONE_V_RELAY:
		ZONE_REPLY(j->out, ZONE_R_RELAY);
		break;
	case ZONE_V_SYNTAX:
		ZONE_REPLY(j->out, ZONE_R_SYNTAX);
		break;
	}
}

void
zone_lookup(const struct zone_table *t, const char *addr, size_t len, struct zone_decision *out)
{
	struct zone_job j = {.addr = addr, .len = len, .out = out};

	zone_stage_split(t, &j);
	zone_stage_domain(t, &j);
	zone_stage_zone(t, &j);
	zone_stage_probe(t, &j);
	zone_stage_rule(t, &j);
	zone_finish(&j);
}

void
zone_lookup_batch(const struct zone_table *t, const char *const addrs[], const size_t lens[],
		  size_t n, struct zone_decision *const out[])
{
	struct zone_job jobs[ZONE_BATCH];

	while (n > 0) {
		size_t m = n < ZONE_BATCH ? n : ZONE_BATCH, i;

		for (i = 0; i < m; i++) {
			jobs[i].addr = addrs[i];
			jobs[i].len = lens[i];
			jobs[i].out = out[i];
			zone_stage_split(t, &jobs[i]);
		}
		for (i = 0; i < m; i++)
			zone_stage_domain(t, &jobs[i]);
		for (i = 0; i < m; i++)
			zone_stage_zone(t, &jobs[i]);
		for (i = 0; i < m; i++)
			zone_stage_probe(t, &jobs[i]);
		for (i = 0; i < m; i++) {
			zone_stage_rule(t, &jobs[i]);
			zone_finish(&jobs[i]);
		}
		addrs += m;
		lens += m;
		out += m;
		n -= m;
	}
}
