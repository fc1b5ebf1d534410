/*
 * zone_lookup.c -- the RCPT-time decision: address -> zone -> rule ->
 * struct zone_decision. Runs on shard threads: pure, no locks, no
 * allocation, no libidn2 (domains are matched as the bytes the table holds:
 * the lowercase A-label or the canonical U-label alias).
 *
 * Cost: one pass over the address (split, fold, check: the usual address -- at
 * most 64 octets, a local part of letters, digits, "+-_.", an ASCII domain -- 32
 * bytes at a time with AVX2 when the CPU has it, any other byte by byte, the
 * loader's own parser for a quoted local part), one XXH3 of the domain (tested
 * against the domain filter: a domain that is not ours stops there), one of the
 * local part seeded with it (zone__rule_hash) and one probe of the rules set.
 * That decides an address written as the table stores it (the usual hit)
 * without reading its zone. Otherwise: one probe for
 * the domain (plus one per parent whose dot count some wildcard zone has, in
 * their small set, when the exact name missed), one for the zone's own key when
 * the address spelled it otherwise, one per separator in the local part, tried
 * from the right (sub-address; the split notes where they can be; catch-all is
 * a pointer). Then the decision: only the fields used are written, and
 * destinations are pointers into the table (only a tag=append address is
 * built, in the decision). No snprintf, no strlen of table strings.
 *
 * On a table far bigger than the caches the cost is memory: a hash slot and a
 * record for a hit, two more for a miss, each a cache miss and, on this kind of
 * virtual machine, a TLB miss (a dependent random read over 1 GiB: ~200 ns;
 * over 8 MiB already ~120 ns). A lone lookup waits for them one after another,
 * so single lookups that miss the caches cannot reach 10 M/s (100 ns a
 * lookup). zone_lookup_batch() keeps up to 64 lookups in flight and overlaps
 * their misses: see struct zone_job and zone_lookup_batch(). Figures: bench_route
 * (bench/README.md) and the note of issue 4.
 *
 * Open-relay handling (the list is in zone.h at zone_lookup()): nothing is
 * ever "rewritten" into another address -- no percent hack, no bang path, no
 * source route -- so such an address can only name a local part of our own
 * zone. To be safe even against a careless catch-all or sub-address rule,
 * local parts holding '%', '!' or '@' match exact rules only.
 */
#include "route/zone.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "route/zone_int.h"

#define ZONE_R_RELAY   "550 5.7.1 Relaying denied"
#define ZONE_R_SYNTAX  "550 5.1.3 Bad recipient address syntax"
#define ZONE_R_UNKNOWN ">: Recipient address rejected: user unknown"
#define ZONE_R_NODEST  ">: Recipient address rejected: no verified destination"
#define ZONE_R_DROP    "250 2.1.5 Ok"
#define ZONE_ECHO_MAX  256 /* octets of the address echoed in a 5.1.1 reply */
#define ZONE_RING      64  /* lookups in flight in zone_lookup_batch() (<= 256: uint8_t) */

/* An RCPT domain byte as the table holds it: LDH and '.' (ASCII letters
 * lowercased), UTF-8 bytes (>= 0x80) as they are (only the canonical U-label
 * can match); 0 = never ours. One load per byte, no branch. */
#define ZONE_L(c) [c] = (c) + 32
#define ZONE_S(c) [c] = (c)
#define ZONE_S8(c)                                                                                 \
	ZONE_S(c), ZONE_S(c + 1), ZONE_S(c + 2), ZONE_S(c + 3), ZONE_S(c + 4), ZONE_S(c + 5),      \
	    ZONE_S(c + 6), ZONE_S(c + 7)
#ifndef __SSE2__ /* zone_dom_copy() folds 16 bytes at a time otherwise */
static const unsigned char zone_dom_fold[256] = {
    ['-'] = '-',   ['.'] = '.',	  ['0'] = '0',	 ['1'] = '1',	['2'] = '2',   ['3'] = '3',
    ['4'] = '4',   ['5'] = '5',	  ['6'] = '6',	 ['7'] = '7',	['8'] = '8',   ['9'] = '9',
    ['a'] = 'a',   ['b'] = 'b',	  ['c'] = 'c',	 ['d'] = 'd',	['e'] = 'e',   ['f'] = 'f',
    ['g'] = 'g',   ['h'] = 'h',	  ['i'] = 'i',	 ['j'] = 'j',	['k'] = 'k',   ['l'] = 'l',
    ['m'] = 'm',   ['n'] = 'n',	  ['o'] = 'o',	 ['p'] = 'p',	['q'] = 'q',   ['r'] = 'r',
    ['s'] = 's',   ['t'] = 't',	  ['u'] = 'u',	 ['v'] = 'v',	['w'] = 'w',   ['x'] = 'x',
    ['y'] = 'y',   ['z'] = 'z',	  ZONE_L('A'),	 ZONE_L('B'),	ZONE_L('C'),   ZONE_L('D'),
    ZONE_L('E'),   ZONE_L('F'),	  ZONE_L('G'),	 ZONE_L('H'),	ZONE_L('I'),   ZONE_L('J'),
    ZONE_L('K'),   ZONE_L('L'),	  ZONE_L('M'),	 ZONE_L('N'),	ZONE_L('O'),   ZONE_L('P'),
    ZONE_L('Q'),   ZONE_L('R'),	  ZONE_L('S'),	 ZONE_L('T'),	ZONE_L('U'),   ZONE_L('V'),
    ZONE_L('W'),   ZONE_L('X'),	  ZONE_L('Y'),	 ZONE_L('Z'),	ZONE_S8(0x80), ZONE_S8(0x88),
    ZONE_S8(0x90), ZONE_S8(0x98), ZONE_S8(0xa0), ZONE_S8(0xa8), ZONE_S8(0xb0), ZONE_S8(0xb8),
    ZONE_S8(0xc0), ZONE_S8(0xc8), ZONE_S8(0xd0), ZONE_S8(0xd8), ZONE_S8(0xe0), ZONE_S8(0xe8),
    ZONE_S8(0xf0), ZONE_S8(0xf8),
};
#endif

/* A byte of the address echoed in a 5.1.1 reply: printable ASCII but '<' and '>', else
 * '?' (the reply stays one printable line whatever the client sent). */
/* clang-format off */
static const unsigned char zone_echo[256] = {
	[0x00 ... 0x1f] = '?',
	ZONE_S8(0x20), ZONE_S8(0x28), ZONE_S8(0x30),		/* SP ! " ... 0-7 */
	ZONE_S(0x38), ZONE_S(0x39), ZONE_S(0x3a), ZONE_S(0x3b),	/* 8 9 : ; */
	['<'] = '?', ZONE_S(0x3d), ['>'] = '?', ZONE_S(0x3f),	/* < = > ? */
	ZONE_S8(0x40), ZONE_S8(0x48), ZONE_S8(0x50), ZONE_S8(0x58),	/* @ A-Z [ \ ] ^ _ */
	ZONE_S8(0x60), ZONE_S8(0x68), ZONE_S8(0x70),			/* ` a-w */
	ZONE_S(0x78), ZONE_S(0x79), ZONE_S(0x7a), ZONE_S(0x7b),	/* x y z { */
	ZONE_S(0x7c), ZONE_S(0x7d), ZONE_S(0x7e),			/* | } ~ */
	[0x7f ... 0xff] = '?',
};
/* clang-format on */
#undef ZONE_L
#undef ZONE_S
#undef ZONE_S8

static void
zone_set_reply(struct zone_decision *out, const char *s, size_t n)
{
	memcpy(out->reply, s, n);
	out->reply[n] = '\0';
}

#define ZONE_REPLY(out, lit) zone_set_reply((out), (lit), sizeof(lit) - 1)

#ifdef __SSE2__
/* Does the 16-byte chunk c need zone_echo[]: a byte outside 0x20..0x7e, '<' or '>'?
 * (c + 1 > 0x20 as signed bytes for 0x20..0x7e; 0x7f wraps negative) */
static inline bool
zone_echo_needed(__m128i c)
{
	__m128i bad = _mm_cmplt_epi8(_mm_add_epi8(c, _mm_set1_epi8(1)), _mm_set1_epi8(0x21));

	bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('<')),
					     _mm_cmpeq_epi8(c, _mm_set1_epi8('>'))));
	return _mm_movemask_epi8(bad) != 0;
}

/* addr[0..len) into p through zone_echo[], 16 bytes at a time while they need no
 * change (the usual address: printable ASCII without '<' or '>'); from 16 bytes on,
 * the last 16 in one more chunk that overlaps the one before. */
static void
zone_echo_copy(char *p, const char *addr, size_t len)
{
	size_t i = 0;

	for (; i + 16 <= len; i += 16) {
		__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(addr + i));

		if (zone_echo_needed(c))
			break;
		_mm_storeu_si128((__m128i *)(void *)(p + i), c);
	}
	if (i < len && len >= 16 && i + 16 > len) {
		__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(addr + len - 16));

		if (!zone_echo_needed(c)) {
			_mm_storeu_si128((__m128i *)(void *)(p + len - 16), c);
			return;
		}
	}
	for (; i < len; i++)
		p[i] = (char)zone_echo[(unsigned char)addr[i]];
}
#else
static void
zone_echo_copy(char *p, const char *addr, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (char)zone_echo[(unsigned char)addr[i]];
}
#endif

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
	zone_echo_copy(p, addr, len);
	memcpy(p + len, tail, tlen + 1);
}

/*
 * The destinations of a forward rule into the decision. Nothing is copied but a
 * tagged address: addr and host point into the table (host is the domain inside addr,
 * or for a literal the bare IP the loader stored after it). With a tag, the address is
 * rebuilt in out->tagged: at most 128 destinations of at most 130 + 1 + 253 octets
 * plus a tag under 64 and a NUL, so 448 a destination: it always fits.
 */
static void
zone_fill_dests(const struct zone_rule *r, const char *tag, size_t taglen,
		struct zone_decision *out)
{
	struct zone_group *g = &out->groups[0];
	char *p = out->tagged;

	g->n = 0;
	for (unsigned i = 0; i < r->ndests; i++) {
		const struct zone_rdest *d = &r->dests[i];

		if (d->flags & ZONE_D_VERIFIED) {
			struct zone_dest *o = &g->d[g->n++];
			bool literal = (d->flags & ZONE_D_LITERAL) != 0;

			o->addr = d->addr;
			o->host = literal ? d->addr + d->len + 1 : d->addr + d->at + 1;
			o->port = d->port;
			o->literal = literal;
			if (taglen > 0) {
				/* a quoted local part takes the tag inside its quotes */
				size_t at = d->at, keep = d->addr[at - 1] == '"' ? at - 1 : at;

				memcpy(p, d->addr, keep);
				memcpy(p + keep, tag, taglen);
				memcpy(p + keep + taglen, d->addr + keep, d->len - keep + 1u);
				o->addr = p;
				p += d->len + taglen + 1;
			}
		} else {
			out->unverified++; /* the glue logs it: unverified is never used */
		}
		if ((d->flags & ZONE_D_GROUP_END) && g->n > 0) {
			out->ngroups++;
			if (out->ngroups < ZONE_MAX_GROUPS) {
				g = &out->groups[out->ngroups];
				g->n = 0;
			}
		}
	}
}

static void
zone_apply(const struct zone_rule *r, const char *tag, size_t taglen, const char *addr, size_t len,
	   struct zone_decision *out)
{
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
	zone_fill_dests(r, tag, taglen, out);
	if (out->ngroups == 0) {
		zone_reply_addr(out, addr, len, ZONE_R_NODEST, sizeof(ZONE_R_NODEST) - 1);
		return;
	}
	out->action = ZONE_FORWARD;
	out->reply[0] = '\0';
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

static size_t zone_dot_offsets(const char *d, size_t n, uint8_t pos[]);

/* The nearest parent zone of a lowercased domain that is a wildcard, or NULL (the
 * domain itself has no zone of its own). NULL too when the labels in front of the
 * parent are not valid (empty, over 63 octets, hyphen first or last, bad UTF-8). Only
 * the suffixes with as many dots as some wildcard zone name are probed, nearest
 * parent (longest suffix) first: an unserved "x.invalid" costs finding its dots, not
 * a probe per label. */
static const struct zone_zone *
zone_find_parent(const struct zone_table *t, const char *d, size_t n)
{
	uint8_t pos[ZONE_MAX_DOMAIN]; /* n <= ZONE_MAX_DOMAIN, and a domain may be all dots */
	size_t dots;

	if (!t->any_wildcard)
		return NULL;
	dots = zone_dot_offsets(d, n, pos);
	/* the suffix after dot k has dots - 1 - k dots */
	for (size_t k = dots > (size_t)t->wild_max_dots + 1 ? dots - 1 - t->wild_max_dots : 0;
	     k + t->wild_min_dots < dots; k++) {
		size_t i = pos[k];
		const struct zone_dom *e = zone__get(t, &t->wild, d + i + 1, n - i - 1);

		if (e != NULL)
			return zone_labels_ok(d, i) ? e->zone : NULL;
	}
	return NULL;
}

/*
 * Ask the CPU for the lines of a record the next stage reads (a hint; NULL is fine).
 * always_inline is load-bearing: GCC 12 -O2 finds a function whose only effect is
 * __builtin_prefetch "const" and deletes every call to it (before this commit no
 * prefetch of a record was ever issued; objdump showed none).
 */
static inline __attribute__((always_inline)) void
zone_prefetch(const void *p, unsigned lines)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < lines; i++)
		__builtin_prefetch((const char *)p + 64 * i, 0, 3);
}

enum zone_verdict {
	ZONE_V_GO,     /* not decided yet: the job's next step goes on */
	ZONE_V_DONE,   /* out is complete */
	ZONE_V_RELAY,  /* not ours: 550 5.7.1 */
	ZONE_V_SYNTAX, /* not an address: 550 5.1.3 */
};

/*
 * What a lookup in flight does when it is next advanced. Each step reads only what
 * the step before prefetched (a hash slot or a record) and ends by prefetching what
 * the next one reads, so in zone_lookup_batch() the other lookups in flight run
 * while a line comes in:
 *   RULE    the domain filter's line (prefetched by the split): a domain with no
 *           zone of its own has no rule either, so it goes straight to ZONE's parent
 *           walk, or is refused when it has no more dots than the shortest wildcard
 *           zone name (so no wildcard zone can be its parent). Else the rule slot of
 *           "local@domain" (local part and domain folded) is prefetched now, not by
 *           the split: a third of the mix (domains that are not ours) never reads it,
 *           and on a table far bigger than the caches the lines fetched bound the
 *           rate (route_ab: 13 % less time a lookup than prefetching it with the
 *           filter line). A lone lookup (zone_lookup()) prefetched it with the filter
 *           and goes on to SLOT at once;
 *   SLOT    the rule slot: its candidate entry by hash tag alone (no dereference),
 *           record prefetched;
 *   EXACT   check it: an exact hit (the address as the table stores it) is decided
 *           here, without reading the zone. Otherwise prefetch the domain's slot
 *           (its hash is the split's);
 *   DOMAIN  the domain's candidate entry by tag, prefetched;
 *   ZONE    check it (or walk to a wildcard parent): the zone. Then the rules left to
 *           try, each one a PROBE and a CHECK: the exact rule under the zone's own key
 *           when the address was not written as stored (U-label, wildcard subdomain,
 *           a sensitive zone), then the sub-address bases from the right;
 *   PROBE   a rule key's candidate by tag, record prefetched;
 *   CHECK   check it: a hit is decided, a miss moves to the next base, and after the
 *           last one to the catch-all (its record prefetched);
 *   CATCHALL the catch-all's decision;
 *   APPLY   a reject or defer rule's decision: its reply text, prefetched when the
 *           rule was found (zone_decide()).
 * A candidate found by tag alone is checked against the key before use: a tag
 * collision (another key with the same 16 hash bits) falls back to the full lookup.
 */
enum zone_step {
	ZONE_S_RULE,
	ZONE_S_SLOT,
	ZONE_S_EXACT,
	ZONE_S_DOMAIN,
	ZONE_S_ZONE,
	ZONE_S_PROBE,
	ZONE_S_CHECK,
	ZONE_S_CATCHALL,
	ZONE_S_APPLY,
	ZONE_NSTEPS
};

/*
 * One lookup in flight. zone_lookup() runs one job step after step; zone_lookup_batch()
 * keeps ZONE_RING of them and advances each one step per pass (struct zone_pipe), so
 * the cache misses of different addresses overlap instead of queueing, and a finished
 * job's place takes the next address at once (no batch waits for its slowest lookup,
 * and a miss that needs five steps holds one place, not the whole batch). Whole-batch
 * stages (every address through stage 1, then all through stage 2...) left the deep
 * misses (sub-address, catch-all) waiting one after another at the end of a batch.
 * Depth (1M zones / 5M rules, batches of 64, uniform mix): 16 in flight 4.6 M/s, 32 7.1,
 * 64 7.4 in separate runs, too close to tell apart there; the paired A/B of
 * bench/route_ab.sh (both depths in one process, on one table, in alternating slices)
 * puts 64 at 4-6 % less time per lookup than 32, in three runs out of three. A pass with
 * more jobs lasts longer, so the lines its jobs prefetched have longer to come in.
 */
struct zone_job {
	const char *addr;	       /* the address as given, len bytes */
	size_t len;		       /* bytes of addr */
	struct zone_decision *out;     /* the caller's decision */
	enum zone_verdict v;	       /* ZONE_V_GO until decided */
	enum zone_step step;	       /* the next step while v == ZONE_V_GO */
	const char *local;	       /* the local part, dequoted, case as given: in addr, or
					  lbuf when it was quoted */
	size_t ll;		       /* bytes of local, and of the local part in key */
	size_t dlen;		       /* bytes of the domain in key */
	unsigned long h;	       /* zone__hash() of the current probe's key */
	const void *cand;	       /* the candidate entry of the current probe, or NULL */
	const struct zone_zone *z;     /* the zone, from step ZONE on */
	size_t klen;		       /* bytes of key probed by PROBE/CHECK */
	size_t base;		       /* PROBE/CHECK of a sub-address: bytes of the base (the
					  tag is local[base..ll)); ll for the zone's own key */
	bool eager;		       /* a lone lookup: the split prefetches the rule's and the
					  domain's slots with the filter line, so a miss waits for
					  all at once (a batch prefetches each slot only for the
					  lookups that read it) */
	unsigned long hd;	       /* zone__hash() of the domain (from the split on) */
	unsigned long hz;	       /* zone__hash() of the zone's name, from step ZONE on */
	uint64_t seps;		       /* bit i: local[i] is an atext special, so may be a
					  sub-address separator (letters, digits, '.' and UTF-8
					  never are): the bases zone_next_base() tries */
	const uint64_t *fword;	       /* the domain filter's word for hd, and */
	uint64_t fmask;		       /* the bits hd sets in it (zone__filter_word) */
	size_t first;		       /* h's first slot (zone__set_index) in the set it probes:
					  worked out once, for the prefetch and the probe */
	uint8_t ddots;		       /* dots in the domain, UINT8_MAX when not counted (the
					  byte-wise split): fewer than a wildcard zone's name has
					  rule out a wildcard parent without the walk */
	bool suspicious;	       /* '%', '!' or '@' in the local part */
	bool upper;		       /* ASCII capitals in the local part: key differs from it */
	char lbuf[ZONE_MAX_LOCAL + 1]; /* a quoted local part, dequoted */
	char key[ZONE_KEY_MAX + 16];   /* local part ASCII-folded, '@', domain folded; from
					  step ZONE on, "local@NAME" as the zone compares it
					  (15 bytes of slack: the 16-byte stores of the split) */
};

/* Local-part byte classes of the fast path (unquoted ASCII): 0 = not allowed. */
enum {
	ZONE_LC_OK = 1,	   /* atext, as is */
	ZONE_LC_UPPER = 2, /* A-Z: folded in the key */
	ZONE_LC_DOT = 4,   /* '.': placement checked */
	ZONE_LC_SUSP = 8,  /* '%' or '!': relay syntax, exact rules only */
	ZONE_LC_HIGH = 16, /* >= 0x80: UTF-8, checked */
	ZONE_LC_SEP = 32,  /* an atext special: may be a sub-address separator */
};

/* RFC 5321 atext plus '.', as zone__is_atext() and zone__local_parse() take them. */
static const unsigned char zone_local_class[256] = {
    ['0' ... '9'] = ZONE_LC_OK,
    ['a' ... 'z'] = ZONE_LC_OK,
    ['A' ... 'Z'] = ZONE_LC_OK | ZONE_LC_UPPER,
    ['!'] = ZONE_LC_OK | ZONE_LC_SUSP, /* never a separator (zone_parse.c refuses it) */
    ['%'] = ZONE_LC_OK | ZONE_LC_SUSP,
    ['#'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['$'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['&'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['\''] = ZONE_LC_OK | ZONE_LC_SEP,
    ['*'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['+'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['-'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['/'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['='] = ZONE_LC_OK | ZONE_LC_SEP,
    ['?'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['^'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['_'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['`'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['{'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['|'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['}'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['~'] = ZONE_LC_OK | ZONE_LC_SEP,
    ['.'] = ZONE_LC_OK | ZONE_LC_DOT,
    [0x80 ... 0xff] = ZONE_LC_OK | ZONE_LC_HIGH,
};

/*
 * An unquoted address s[0..len) (s[0] is neither '"' nor '@'): find the '@' that ends
 * the local part and make the checks of zone__local_parse() for a dot-atom on the way,
 * in one pass that also writes the folded key and notes capitals and relay characters.
 * The '@' offset, or 0 when the zone file grammar refuses the local part or there is
 * no '@' (550 5.1.3 both: a byte outside atext stops the scan, and so does the 65th).
 */
static size_t
zone_local_scan(struct zone_job *j, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = len < ZONE_MAX_LOCAL + 1 ? len : ZONE_MAX_LOCAL + 1, at;
	unsigned char all = 0;
	uint64_t seps = 0;

	for (at = 0; at < n; at++) {
		unsigned char c = zone_local_class[p[at]];

		if (c == 0)
			break; /* '@', or a blank, special, control or DEL */
		all |= c;
		if ((c & ZONE_LC_SEP) && at < 64)
			seps |= UINT64_C(1) << at;
		j->key[at] = (char)(p[at] | ((c & ZONE_LC_UPPER) << 4)); /* +32: lowercase */
	}
	if (at == n || p[at] != '@')
		return 0;
	if ((all & ZONE_LC_DOT) && (p[0] == '.' || p[at - 1] == '.' || memmem(s, at, "..", 2)))
		return 0;
	if ((all & ZONE_LC_HIGH) && !zone__utf8_ok(s, at))
		return 0;
	j->local = s;
	j->ll = at;
	j->upper = (all & ZONE_LC_UPPER) != 0;
	j->suspicious = (all & ZONE_LC_SUSP) != 0;
	j->seps = seps;
	return at;
}

#ifdef __SSE2__
/* Lanes of c in [lo, hi] (ASCII bounds: bytes >= 0x80 are negative, never in). */
static inline __m128i
zone_v_in(__m128i c, char lo, char hi)
{
	return _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8((char)(lo - 1))),
			     _mm_cmplt_epi8(c, _mm_set1_epi8((char)(hi + 1))));
}

#ifndef __SANITIZE_ADDRESS__
/* The 16 or 32 bytes at zone_v_keep + 32 - n: a vector whose first n lanes are all
 * ones (n <= 16 or 32), the rest zero. For the tails of zone_v_load() and
 * zone_y_load(). */
static const unsigned char zone_v_keep[64] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};
#endif

/*
 * 16 bytes at p, or the n < 16 left padded with pad. The tail of an address is read
 * with one 16-byte load when those 16 bytes stay inside p's 4 KiB page, and the lanes
 * past n replaced by pad: a load within a mapped page cannot fault, and the bytes past
 * the end never reach a result. That is what glibc's string functions do; a copy
 * through a padded buffer instead (memset + memcpy) cost ~30 instructions an address,
 * a tenth of a lookup. Under ASan, which cannot tell the difference, the copy stays.
 */
static inline __m128i
zone_v_load(const char *p, size_t n, char pad)
{
	char buf[16];

	if (n >= 16)
		return _mm_loadu_si128((const __m128i *)(const void *)p);
#ifndef __SANITIZE_ADDRESS__
	if (((uintptr_t)p & 4095) <= 4096 - 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i keep =
		    _mm_loadu_si128((const __m128i *)(const void *)(zone_v_keep + 32 - n));

		return _mm_or_si128(_mm_and_si128(keep, v),
				    _mm_andnot_si128(keep, _mm_set1_epi8(pad)));
	}
#endif
	memset(buf, pad, sizeof(buf));
	memcpy(buf, p, n);
	return _mm_loadu_si128((const __m128i *)(const void *)buf);
}

/* Bit i set for the i < n first lanes of a 16-bit movemask. */
static inline unsigned
zone_v_below(unsigned n)
{
	return (1u << n) - 1u;
}

/*
 * The domain d[0..n) into dom as the table holds it (zone_dom_fold(), 16 bytes at a
 * time; dom has 15 bytes of slack). False when a byte is never ours.
 */
static bool
zone_dom_copy(const unsigned char *d, size_t n, char *dom)
{
	for (size_t i = 0; i < n; i += 16) {
		__m128i c = zone_v_load((const char *)d + i, n - i, 'a');
		__m128i u = zone_v_in(c, 'A', 'Z');
		__m128i ok =
		    _mm_or_si128(_mm_or_si128(u, zone_v_in(c, 'a', 'z')), zone_v_in(c, '0', '9'));

		ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('.')),
						   _mm_cmpeq_epi8(c, _mm_set1_epi8('-'))));
		/* bytes >= 0x80 (UTF-8) pass as they are: their sign bit */
		if (((unsigned)_mm_movemask_epi8(ok) | (unsigned)_mm_movemask_epi8(c)) != 0xffffu)
			return false;
		_mm_storeu_si128((__m128i *)(void *)(dom + i),
				 _mm_add_epi8(c, _mm_and_si128(u, _mm_set1_epi8(0x20))));
	}
	return true;
}

/* The offsets of the dots in d[0..n) into pos, in order; their number. */
static size_t
zone_dot_offsets(const char *d, size_t n, uint8_t pos[])
{
	size_t dots = 0;

	for (size_t i = 0; i < n; i += 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_cmpeq_epi8(zone_v_load(d + i, n - i, 'a'), _mm_set1_epi8('.')));

		for (; m != 0; m &= m - 1)
			pos[dots++] = (uint8_t)(i + (unsigned)__builtin_ctz(m));
	}
	return dots;
}
#else
static size_t
zone_dot_offsets(const char *d, size_t n, uint8_t pos[])
{
	size_t dots = 0;

	for (size_t i = 0; i < n; i++)
		if (d[i] == '.')
			pos[dots++] = (uint8_t)i;
	return dots;
}

static bool
zone_dom_copy(const unsigned char *d, size_t n, char *dom)
{
	unsigned char bad = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = zone_dom_fold[d[i]];

		bad |= c == 0;
		dom[i] = (char)c;
	}
	return bad == 0;
}
#endif

/* zone_lookup_one_pass(): false sends every address down the byte-wise split. */
static bool zone_one_pass = true;

void
zone_lookup_one_pass(bool on)
{
	zone_one_pass = on;
}

#if defined(__x86_64__) && defined(__GNUC__)
/*
 * The usual address in one pass with AVX2, 32 bytes at a time (one step for most
 * addresses). Chosen at run time (zone_addr_fast()): the build targets baseline
 * x86-64, and with SSE2 the same classification took ~85 instructions per 16 bytes
 * against ~45 per 32 here (no three-operand forms, no wide lanes).
 */
#define ZONE_AVX2 __attribute__((target("avx2")))

/* The byte constants of the AVX2 split, each in all 32 lanes, loaded from here: GCC 12
 * builds each constant of a target("avx2") function from an immediate instead, three
 * instructions apiece (zone_addr_avx2() had 28 such broadcasts; 44 instructions fewer). */
#define ZONE_B8(x)                                                                                 \
	(unsigned char)(x), (unsigned char)(x), (unsigned char)(x), (unsigned char)(x),            \
	    (unsigned char)(x), (unsigned char)(x), (unsigned char)(x), (unsigned char)(x)
#define ZONE_B32(x)                                                                                \
	{                                                                                          \
		ZONE_B8(x), ZONE_B8(x), ZONE_B8(x), ZONE_B8(x)                                     \
	}
enum {
	ZONE_YK_DOT,	/* '.' */
	ZONE_YK_DASH,	/* '-' */
	ZONE_YK_PLUS,	/* '+' */
	ZONE_YK_UNDER,	/* '_' */
	ZONE_YK_AT,	/* '@' */
	ZONE_YK_CASE,	/* 0x20: the ASCII case bit */
	ZONE_YK_PAD,	/* 'a': the lanes past the end (zone_y_load) */
	ZONE_YK_UPPER,	/* 0x80 - 'A': zone_y_in()'s bias for 'A'... */
	ZONE_YK_LOWER,	/* 0x80 - 'a' */
	ZONE_YK_DIGIT,	/* 0x80 - '0' */
	ZONE_YK_SPAN26, /* -128 + 26: zone_y_in()'s bound for letters */
	ZONE_YK_SPAN10, /* -128 + 10: for digits */
};
static const unsigned char zone_y_k[][32] __attribute__((aligned(32))) = {
    [ZONE_YK_DOT] = ZONE_B32('.'),	    [ZONE_YK_DASH] = ZONE_B32('-'),
    [ZONE_YK_PLUS] = ZONE_B32('+'),	    [ZONE_YK_UNDER] = ZONE_B32('_'),
    [ZONE_YK_AT] = ZONE_B32('@'),	    [ZONE_YK_CASE] = ZONE_B32(0x20),
    [ZONE_YK_PAD] = ZONE_B32('a'),	    [ZONE_YK_UPPER] = ZONE_B32(0x80 - 'A'),
    [ZONE_YK_LOWER] = ZONE_B32(0x80 - 'a'), [ZONE_YK_DIGIT] = ZONE_B32(0x80 - '0'),
    [ZONE_YK_SPAN26] = ZONE_B32(-128 + 26), [ZONE_YK_SPAN10] = ZONE_B32(-128 + 10),
};
#undef ZONE_B8
#undef ZONE_B32

/* Constant k of zone_y_k in all lanes. */
static inline ZONE_AVX2 __m256i
zone_y_const(unsigned k)
{
	const unsigned char(*t)[32] = zone_y_k;

	/* hide the values: GCC would fold the load back into an immediate */
	__asm__("" : "+r"(t));
	return _mm256_load_si256((const __m256i *)(const void *)t[k]);
}

/* Lanes of c in [lo, lo + span): c + (0x80 - lo) below -128 + span as signed bytes
 * (the addition rotates [lo, lo + span) onto the lowest span values); bias and bound
 * name the zone_y_k constants of lo and span. */
static inline ZONE_AVX2 __m256i
zone_y_in(__m256i c, unsigned bias, unsigned bound)
{
	return _mm256_cmpgt_epi8(zone_y_const(bound), _mm256_add_epi8(c, zone_y_const(bias)));
}

/* 32 bytes at p, the n < 32 past the end as 'a' (zone_v_load(), 32 wide). */
static inline ZONE_AVX2 __m256i
zone_y_load(const char *p, size_t n)
{
	char buf[32];

	if (n >= 32)
		return _mm256_loadu_si256((const __m256i *)(const void *)p);
#ifndef __SANITIZE_ADDRESS__
	if (((uintptr_t)p & 4095) <= 4096 - 32) {
		__m256i k =
		    _mm256_loadu_si256((const __m256i *)(const void *)(zone_v_keep + 32 - n));

		return _mm256_blendv_epi8(zone_y_const(ZONE_YK_PAD),
					  _mm256_loadu_si256((const __m256i *)(const void *)p), k);
	}
#endif
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, p, n);
	return _mm256_loadu_si256((const __m256i *)(const void *)buf);
}

/* What zone_addr_avx2() learns from 32 bytes: bit i of each mask is byte i. */
struct zone_ymask {
	uint32_t at;	/* '@' */
	uint32_t bad;	/* not allowed in the fast local part (letters, digits, "+-_.") */
	uint32_t nodom; /* allowed there but not in a domain: '+', '_' */
	uint32_t sep;	/* '+', '-', '_': may be a sub-address separator */
	uint32_t dot;	/* '.' */
	uint32_t up;	/* 'A'-'Z' */
};

/* Classify the 32 bytes c and store them lowercased at key. */
static inline ZONE_AVX2 struct zone_ymask
zone_y_chunk(__m256i c, char *key)
{
	__m256i u = zone_y_in(c, ZONE_YK_UPPER, ZONE_YK_SPAN26);
	__m256i d = _mm256_cmpeq_epi8(c, zone_y_const(ZONE_YK_DOT));
	__m256i h = _mm256_cmpeq_epi8(c, zone_y_const(ZONE_YK_DASH));
	__m256i sp = _mm256_or_si256(_mm256_cmpeq_epi8(c, zone_y_const(ZONE_YK_PLUS)),
				     _mm256_cmpeq_epi8(c, zone_y_const(ZONE_YK_UNDER)));
	__m256i ok = _mm256_or_si256(
	    _mm256_or_si256(zone_y_in(_mm256_or_si256(c, zone_y_const(ZONE_YK_CASE)), ZONE_YK_LOWER,
				      ZONE_YK_SPAN26),
			    zone_y_in(c, ZONE_YK_DIGIT, ZONE_YK_SPAN10)),
	    _mm256_or_si256(_mm256_or_si256(d, h), sp));
	struct zone_ymask m;

	_mm256_storeu_si256((__m256i *)(void *)key,
			    _mm256_add_epi8(c, _mm256_and_si256(u, zone_y_const(ZONE_YK_CASE))));
	m.at = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(c, zone_y_const(ZONE_YK_AT)));
	m.bad = ~(uint32_t)_mm256_movemask_epi8(ok);
	m.nodom = (uint32_t)_mm256_movemask_epi8(sp);
	m.sep = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(sp, h));
	m.dot = (uint32_t)_mm256_movemask_epi8(d);
	m.up = (uint32_t)_mm256_movemask_epi8(u);
	return m;
}

/* The two halves of a 64-bit mask. */
#define ZONE_Y_JOIN(lo, hi, f) ((uint64_t)(lo).f | (uint64_t)(hi).f << 32)

/*
 * At most 64 octets, a local part of letters, digits, '+', '-', '_' and '.', an ASCII
 * LDH domain: the key (the whole address lowercased: local part folded, '@', the domain
 * as the table holds it) and the job's fields as zone_local_scan() and zone_dom_copy()
 * would write them. 0 for anything else, a dot out of place, no '@' or nothing after
 * it: zone_addr_split() then decides it, syntax errors and relay refusals included, so
 * both paths answer alike.
 */
static ZONE_AVX2 size_t
zone_addr_avx2(struct zone_job *j, const char *s, size_t len)
{
	struct zone_ymask lo, hi = {0, 0, 0, 0, 0, 0};
	uint64_t at_m, bad, dot, all, lm, dm;
	size_t at;

	if (len < 3 || len > 64) /* "a@b" at least; nothing is read of an empty address */
		return 0;
	lo = zone_y_chunk(zone_y_load(s, len), j->key);
	if (len > 32)
		hi = zone_y_chunk(zone_y_load(s + 32, len - 32), j->key + 32);
	all = len == 64 ? ~UINT64_C(0) : (UINT64_C(1) << len) - 1;
	at_m = ZONE_Y_JOIN(lo, hi, at) & all;
	if (at_m == 0)
		return 0;
	at = (size_t)__builtin_ctzll(at_m);
	if (at == 0 || at + 1 >= len)
		return 0;
	lm = (UINT64_C(1) << at) - 1; /* the local part: bits 0..at-1 */
	dm = all & ~(lm << 1 | 1);    /* the domain: bits at+1..len-1 */
	bad = ZONE_Y_JOIN(lo, hi, bad);
	dot = ZONE_Y_JOIN(lo, hi, dot);
	/* local bytes all allowed, domain bytes all LDH or '.', the local part's dots
	 * neither first, last nor doubled, no trailing dot */
	if ((bad & lm) != 0 || ((bad | ZONE_Y_JOIN(lo, hi, nodom)) & dm) != 0 ||
	    (dot & lm & (1 | UINT64_C(1) << (at - 1) | dot >> 1)) != 0 || s[len - 1] == '.')
		return 0;
	j->local = s;
	j->ll = at;
	j->dlen = len - at - 1;
	j->upper = (ZONE_Y_JOIN(lo, hi, up) & lm) != 0;
	j->suspicious = false;
	j->seps = ZONE_Y_JOIN(lo, hi, sep) & lm;
	j->ddots = (uint8_t)__builtin_popcountll(dot & dm);
	return at;
}

/* zone_addr_avx2() where the CPU has AVX2 and zone_lookup_one_pass() allows it, else 0
 * (every address byte by byte). */
static inline size_t
zone_addr_fast(struct zone_job *j, const char *s, size_t len)
{
	if (!zone_one_pass || !__builtin_cpu_supports("avx2"))
		return 0;
	return zone_addr_avx2(j, s, len);
}
#else
static inline size_t
zone_addr_fast(struct zone_job *j, const char *s, size_t len)
{
	(void)j;
	(void)s;
	(void)len;
	return 0; /* zone_addr_split() decides every address */
}
#endif

/*
 * Split and check any address byte by byte into the key and the job's fields (ll,
 * dlen, local, flags): true, or false with j->v the verdict (SYNTAX, RELAY).
 */
static bool
zone_addr_split(struct zone_job *j)
{
	const char *addr = j->addr;
	size_t len = j->len, at, dlen, i;

	j->v = ZONE_V_SYNTAX;
	if (len == 0)
		return false;
	if (addr[0] == '@') { /* RFC 5321 4.1.2 source route: never followed */
		j->v = ZONE_V_RELAY;
		return false;
	}
	if (addr[0] == '"') {
		const char *why;
		size_t ll;
		bool upper = false, suspicious = false;
		uint64_t seps = 0;

		for (i = 1; i < len && addr[i] != '"'; i++)
			if (addr[i] == '\\' && ++i == len)
				return false;
		if (i + 1 >= len || addr[i + 1] != '@')
			return false;
		at = i + 1;
		/* the loader's own grammar (zone__local_parse): what no rule could be
		 * written for never reaches a sub-address or catch-all rule either */
		if (zone__local_parse(addr, at, j->lbuf, &ll, &why) != 0)
			return false;
		for (i = 0; i < ll; i++) {
			unsigned char c = (unsigned char)j->lbuf[i];

			suspicious |= c == '%' || c == '!' || c == '@';
			upper |= c >= 'A' && c <= 'Z';
			if (zone_local_class[c] & ZONE_LC_SEP) /* i < ll <= 64 */
				seps |= UINT64_C(1) << i;
			j->key[i] = (char)zone__lower(c);
		}
		j->local = j->lbuf;
		j->ll = ll;
		j->upper = upper;
		j->suspicious = suspicious;
		j->seps = seps;
	} else {
		at = zone_local_scan(j, addr, len);
		if (at == 0)
			return false;
	}

	/* the domain: LDH and dots folded to lowercase, UTF-8 as is */
	dlen = len - at - 1;
	if (dlen == 0)
		return false;
	j->v = ZONE_V_RELAY;
	if (dlen > ZONE_MAX_DOMAIN || addr[len - 1] == '.')
		return false; /* too long to be ours; a trailing dot is never folded away */
	j->key[j->ll] = '@';
	if (!zone_dom_copy((const unsigned char *)addr + at + 1, dlen, j->key + j->ll + 1))
		return false; /* '[' address literal, '@', ':', blanks... */
	j->dlen = dlen;
	j->ddots = UINT8_MAX;
	return true;
}

/* The first step of every lookup: split and check the address into the key (the usual
 * address in one pass, any other byte by byte), hash the domain and the key, prefetch
 * the domain's filter word (the RULE step reads it); a lone lookup also prefetches the
 * rule's and the domain's slots, so that its misses overlap. The filter's word and bits
 * and the rule key's first slot are worked out here, where nothing waits for them:
 * RULE only loads, compares and prefetches, so its prefetch leaves earlier (route_ab:
 * 2 % less time a lookup than working them out in RULE). */
static inline __attribute__((always_inline)) void
zone_stage_split(const struct zone_table *t, struct zone_job *j)
{
	struct zone_decision *out = j->out;

	out->action = ZONE_REFUSE; /* the reply is written by what decides */
	out->zone = NULL;
	out->rule = NULL;
	out->ngroups = 0;
	out->unverified = 0;
	j->cand = NULL;
	if (zone_addr_fast(j, j->addr, j->len) == 0 && !zone_addr_split(j))
		return;
	j->hd = zone__hash(t, j->key + j->ll + 1, j->dlen);
	j->fword = &t->dfilter.words[zone__filter_word(&t->dfilter, j->hd, &j->fmask)];
	__builtin_prefetch(j->fword, 0, 3);
	j->h = zone__rule_hash_at(j->hd, j->key, j->ll);
	j->first = zone__set_index(&t->rules, j->h);
	if (j->eager) {
		__builtin_prefetch(&t->rules.slots[j->first], 0, 3);
		zone__set_prefetch(&t->domains, j->hd);
	}
	j->step = ZONE_S_RULE;
	j->v = ZONE_V_GO;
}

/* Decide with rule r (tag: a sub-address tag to append, taglen bytes, or NULL). The
 * reply text of a reject or defer rule lies in front of its record (the loader stores
 * it first), outside the lines prefetched: it is prefetched now and read one step
 * later (APPLY; only forwards use the tag). */
static void
zone_decide(struct zone_job *j, const struct zone_rule *r, const char *tag, size_t taglen)
{
	if (r->action == ZONE_REJECT || r->action == ZONE_DEFER) {
		zone_prefetch(r->reply, 2);
		j->cand = r;
		j->step = ZONE_S_APPLY;
		return;
	}
	zone_apply(r, tag, taglen, j->addr, j->len, j->out);
	j->v = ZONE_V_DONE;
}

/* Start probing the key "LOCAL@NAME" in the rules (PROBE, CHECK), key[0..llen) the
 * local part as compared followed by '@' and the zone's name: hash it, prefetch its
 * slot. */
static void
zone_probe(const struct zone_table *t, struct zone_job *j, size_t llen)
{
	j->klen = llen + 1 + j->z->dom.key.len;
	j->h = zone__rule_hash_at(j->hz, j->key, llen);
	j->first = zone__set_index(&t->rules, j->h);
	__builtin_prefetch(&t->rules.slots[j->first], 0, 3);
	j->step = ZONE_S_PROBE;
}

/* Go on to the domain: its hash, its slot prefetched (DOMAIN). */
static void
zone_to_domain(const struct zone_table *t, struct zone_job *j)
{
	j->h = j->hd;
	j->first = zone__set_index(&t->domains, j->h);
	__builtin_prefetch(&t->domains.slots[j->first], 0, 3);
	j->step = ZONE_S_DOMAIN;
}

/* The candidate rule of the probe in flight (hash j->h) by tag, its record prefetched
 * for step next; false when there is none (no rule has this key). */
static bool
zone_rule_cand(const struct zone_table *t, struct zone_job *j, enum zone_step next)
{
	j->cand = zone__set_get_tag(&t->rules, j->first, j->h);
	if (j->cand == NULL)
		return false;
	zone_prefetch(j->cand, 3);
	j->step = next;
	return true;
}

/* The rule with key key[0..klen) (hash j->h): the candidate when its key is that one,
 * else (a tag collision) the full lookup's answer, or NULL. */
static const struct zone_rule *
zone_rule_check(const struct zone_table *t, const struct zone_job *j, size_t klen)
{
	const struct zone_rule *r = j->cand;

	if (zone__key_eq(&r->key, j->key, klen))
		return r;
	return zone__set_get(&t->rules, j->h, j->key, klen);
}

/* SLOT: the rule's candidate entry for the key as folded, prefetched: the record, its
 * destination records and its key (zone_line_rule() packs them in that order; one
 * destination makes ~90 bytes). No candidate: no such rule, on to the domain. */
static inline __attribute__((always_inline)) void
zone_step_slot(const struct zone_table *t, struct zone_job *j)
{
	if (!zone_rule_cand(t, j, ZONE_S_EXACT))
		zone_to_domain(t, j);
}

/* RULE: the domain filter; a domain it knows goes on to its rule slot (SLOT), which a
 * batch prefetches now. */
static inline __attribute__((always_inline)) void
zone_step_rule(const struct zone_table *t, struct zone_job *j)
{
	if ((*j->fword & j->fmask) != j->fmask) {
		/* no zone of its own, so no rule either (rule keys name zones): a wildcard
		 * parent, or not ours -- decided without reading either big set. A parent
		 * needs more dots than its child has: with no more than the fewest of any
		 * wildcard zone name, the walk (a step and a dot scan) cannot find one. */
		if (j->ddots > t->wild_min_dots) /* never when no zone has wildcards */
			j->step = ZONE_S_ZONE;	 /* cand NULL: the parent walk */
		else
			j->v = ZONE_V_RELAY;
		return;
	}
	if (!j->eager) {
		__builtin_prefetch(&t->rules.slots[j->first], 0, 3);
		j->step = ZONE_S_SLOT;
		return;
	}
	zone_step_slot(t, j);
}

/* EXACT: an exact hit is decided; anything else goes on to the domain. */
static inline __attribute__((always_inline)) void
zone_step_exact(const struct zone_table *t, struct zone_job *j)
{
	const struct zone_rule *r = zone_rule_check(t, j, j->ll + 1 + j->dlen);

	/* the key is the local part folded: a local-case=sensitive rule matches only when
	 * that is also the local part as given */
	if (r != NULL && !(j->upper && r->sensitive)) {
		j->out->zone = zone__name(r->zone);
		zone_decide(j, r, NULL, 0);
		return;
	}
	zone_to_domain(t, j);
}

/* DOMAIN: the domain's candidate entry, prefetched (the zone record and its name). */
static inline __attribute__((always_inline)) void
zone_step_domain(const struct zone_table *t, struct zone_job *j)
{
	j->cand = zone__set_get_tag(&t->domains, j->first, j->h);
	zone_prefetch(j->cand, 2);
	j->step = ZONE_S_ZONE;
}

/* Is c one of the zone's sub-address separators? (at most ZONE_MAX_SUBADDR: a loop
 * beats a call to memchr) */
static inline bool
zone_is_sep(const struct zone_zone *z, char c)
{
	for (unsigned k = 0; k < z->nsep; k++)
		if (z->sep[k] == c)
			return true;
	return false;
}

/*
 * No rule yet for the zone j->z: the next sub-address base, from the longest to the
 * shortest (split at each separator from the right; "+x" alone has no base, so base
 * stops at 1), whose key is "base@NAME"; after the last one the catch-all; without one
 * "user unknown". Relay syntax in the local part ('%', '!', '@') matches exact rules
 * only: refused 5.7.1.
 */
static void
zone_next_base(const struct zone_table *t, struct zone_job *j)
{
	const struct zone_zone *z = j->z;
	const struct zone_rule *r;

	if (j->suspicious) {
		j->v = ZONE_V_RELAY;
		return;
	}
	while (z->nsep > 0) {
		/* the candidates below base, position 0 excluded ("+x" alone has no base) */
		uint64_t m = j->seps & ~UINT64_C(1);
		size_t i, nlen = z->dom.key.len;

		if (j->base < 64)
			m &= (UINT64_C(1) << j->base) - 1;
		if (m == 0)
			break;
		i = 63 - (size_t)__builtin_clzll(m);
		j->base = i;
		if (!zone_is_sep(z, j->local[i]))
			continue;
		j->key[i] = '@';
		memcpy(j->key + i + 1, zone__name(z), nlen);
		zone_probe(t, j, i);
		return;
	}
	r = z->catchall;
	if (r == NULL) {
		zone_reply_addr(j->out, j->addr, j->len, ZONE_R_UNKNOWN,
				sizeof(ZONE_R_UNKNOWN) - 1);
		j->v = ZONE_V_DONE;
		return;
	}
	j->cand = r;
	zone_prefetch(r, 3);
	j->step = ZONE_S_CATCHALL;
}

/* ZONE: the zone; then the exact rule under the zone's own key when the SLOT step
 * could not tell, else the sub-address bases and the catch-all. */
static void
zone_step_zone(const struct zone_table *t, struct zone_job *j)
{
	const struct zone_dom *e = j->cand;
	const struct zone_zone *z;
	const char *dom = j->key + j->ll + 1;
	size_t ll = j->ll, nlen;
	bool sensitive;

	if (e != NULL && !zone__key_eq(&e->key, dom, j->dlen))
		e = zone__set_get(&t->domains, j->h, dom, j->dlen); /* tag collision */
	z = e != NULL ? e->zone : zone_find_parent(t, dom, j->dlen);
	if (z == NULL) {
		j->v = ZONE_V_RELAY;
		return;
	}
	j->z = z;
	/* the name's hash seeds its rule keys' (zone__rule_hash): the domain's own when
	 * the domain is the zone's name as the table holds it */
	j->hz = e == &z->dom ? j->hd : zone__hash(t, zone__name(z), z->dom.key.len);
	j->out->zone = zone__name(z);
	j->base = ll;
	sensitive = (z->flags & ZONE_F_SENSITIVE) != 0;
	/* SLOT probed "folded-local@domain-as-given". When that is not this zone's key for
	 * the address (a U-label alias or a wildcard parent names the zone; a sensitive
	 * zone and capitals), probe the key the loader wrote. The key buffer becomes
	 * "local@NAME", the local part as compared. */
	if (e != &z->dom || (sensitive && j->upper)) {
		nlen = z->dom.key.len;
		if (sensitive)
			memcpy(j->key, j->local, ll);
		j->key[ll] = '@';
		memcpy(j->key + ll + 1, zone__name(z), nlen);
		zone_probe(t, j, ll);
		return;
	}
	zone_next_base(t, j);
}

/* PROBE: the candidate of key[0..klen), prefetched; none: the next base. */
static void
zone_step_probe(const struct zone_table *t, struct zone_job *j)
{
	if (!zone_rule_cand(t, j, ZONE_S_CHECK))
		zone_next_base(t, j);
}

/* CHECK: the rule of key[0..klen) decides (a base's tag is appended under tag=append
 * when it may be), or the next base is tried. */
static void
zone_step_check(const struct zone_table *t, struct zone_job *j)
{
	const struct zone_rule *r = zone_rule_check(t, j, j->klen);
	const char *tag = NULL;
	size_t taglen = 0;

	if (r == NULL) {
		zone_next_base(t, j);
		return;
	}
	if (j->base < j->ll && (j->z->flags & ZONE_F_TAG_APPEND)) {
		switch (zone_tag_class(j->local + j->base, j->ll - j->base)) {
		case ZONE_TAG_BAD:
			j->v = ZONE_V_SYNTAX;
			return;
		case ZONE_TAG_APPEND:
			tag = j->local + j->base;
			taglen = j->ll - j->base;
			break;
		case ZONE_TAG_BASE:
			break;
		}
	}
	zone_decide(j, r, tag, taglen);
}

/* Advance a job (v == ZONE_V_GO) by one step, its step (j->step) given: inlined where
 * the step is known or a loop runs one step for many jobs. The common steps (RULE,
 * SLOT, EXACT, DOMAIN) and the split are always_inline too: a call per job and step
 * cost its argument moves, saved registers and a return (route_ab: 2 % less time a
 * lookup with the four steps inlined, 3 % more with the split). */
static inline __attribute__((always_inline)) void
zone_step_as(const struct zone_table *t, struct zone_job *j, enum zone_step step)
{
	switch (step) {
	case ZONE_S_RULE:
		zone_step_rule(t, j);
		break;
	case ZONE_S_SLOT:
		zone_step_slot(t, j);
		break;
	case ZONE_S_EXACT:
		zone_step_exact(t, j);
		break;
	case ZONE_S_DOMAIN:
		zone_step_domain(t, j);
		break;
	case ZONE_S_ZONE:
		zone_step_zone(t, j);
		break;
	case ZONE_S_PROBE:
		zone_step_probe(t, j);
		break;
	case ZONE_S_CHECK:
		zone_step_check(t, j);
		break;
	case ZONE_S_CATCHALL:
		zone_decide(j, j->cand, NULL, 0);
		break;
	case ZONE_S_APPLY:
		zone_apply(j->cand, NULL, 0, j->addr, j->len, j->out);
		j->v = ZONE_V_DONE;
		break;
	case ZONE_NSTEPS:
		break;
	}
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
	struct zone_job j; /* not zeroed: its ~480 bytes would cost more than the lookup */

	j.addr = addr;
	j.len = len;
	j.out = out;
	j.eager = true;
	zone_stage_split(t, &j);
	while (j.v == ZONE_V_GO)
		zone_step_as(t, &j, j.step);
	zone_finish(&j);
}

/* The lookups of a batch in flight, by the step each takes next: see zone_lookup_batch(). */
struct zone_pipe {
	struct zone_job jobs[ZONE_RING];
	uint8_t idle[ZONE_RING];		/* jobs free for the next address */
	unsigned nidle;				/* entries of idle[] */
	uint8_t due[2][ZONE_NSTEPS][ZONE_RING]; /* [pass parity][step]: jobs */
	unsigned ndue[2][ZONE_NSTEPS];		/* entries of due[][step] */
};

/*
 * Start the next addresses of the batch in the idle jobs: split each, queue it for
 * its first step in the next pass (nx), finish at once the ones the split decides.
 */
static void
zone_admit(const struct zone_table *t, struct zone_pipe *p, unsigned nx, const char *const addrs[],
	   const size_t lens[], size_t n, struct zone_decision *const out[], size_t *next)
{
	while (p->nidle > 0 && *next < n) {
		size_t i = (*next)++;
		unsigned k = p->idle[p->nidle - 1];
		struct zone_job *j = &p->jobs[k];

		/* the address ZONE_RING starts later: its bytes are split then */
		if (i + ZONE_RING < n)
			__builtin_prefetch(addrs[i + ZONE_RING], 0, 3);
		j->addr = addrs[i];
		j->len = lens[i];
		j->out = out[i];
		j->eager = false;
		zone_stage_split(t, j);
		if (j->v != ZONE_V_GO) {
			zone_finish(j);
			continue;
		}
		p->nidle--;
		p->due[nx][j->step][p->ndue[nx][j->step]++] = (uint8_t)k;
	}
}

/* Run step s of every job due at it in pass parity cur: each goes on to the next pass's
 * queue of its next step, or is finished and its place freed. */
static inline __attribute__((always_inline)) void
zone_pass_step(const struct zone_table *t, struct zone_pipe *p, unsigned cur, enum zone_step s)
{
	unsigned nx = cur ^ 1;

	for (unsigned q = 0; q < p->ndue[cur][s]; q++) {
		unsigned k = p->due[cur][s][q];
		struct zone_job *j = &p->jobs[k];

		zone_step_as(t, j, s);
		if (j->v == ZONE_V_GO) {
			p->due[nx][j->step][p->ndue[nx][j->step]++] = (uint8_t)k;
			continue;
		}
		zone_finish(j);
		p->idle[p->nidle++] = (uint8_t)k;
	}
	p->ndue[cur][s] = 0;
}

/*
 * Up to ZONE_RING lookups are in flight. Each pass runs every job one step, step by
 * step: all the jobs due at RULE, then all at SLOT, and so on, each job queued for
 * its next step in the next pass (so the line its step prefetched has a whole pass to
 * come in), then refills the idle jobs from the addresses left. A finished job's place
 * goes to the next address at once, so no batch waits for its slowest lookup, and a
 * miss that needs five steps holds one place, not the whole batch. Steps run grouped,
 * not job after job in a ring: a ring jumps to a different step's code at nearly every
 * job, and those indirect jumps, which a random mix of addresses makes unpredictable,
 * cost more than the work (measured on 1M zones: ~6.5 M/s over 16,384 addresses that
 * fit in L3 against 11.4 M/s over 1,024 whose branches the CPU learns).
 *
 * With 64 in flight the memory system, not the wait for one line, sets the pace: a core
 * here completes ~50 M random reads a second over 1 GiB however many it has in flight,
 * and a lookup makes about two (a hit: its rule slot and its record; a line next to one
 * just read costs a fraction of that). perf puts most of the time on prefetches that
 * wait for a free fill buffer. What counts is therefore the random reads a lookup makes,
 * and the instructions and mispredicted branches between them, which do not overlap
 * those waits as much as one would hope: a read spared (the rule slot of a domain the
 * filter refuses) and a loop of unpredictable branches replaced (the slot probe) each
 * took 11-14 % off the time of a lookup.
 */
void
zone_lookup_batch(const struct zone_table *t, const char *const addrs[], const size_t lens[],
		  size_t n, struct zone_decision *const out[])
{
	struct zone_pipe p;
	size_t next = 0;
	unsigned cur = 0;

	p.nidle = ZONE_RING;
	for (unsigned k = 0; k < ZONE_RING; k++)
		p.idle[k] = (uint8_t)(ZONE_RING - 1 - k);
	memset(p.ndue, 0, sizeof(p.ndue));
	zone_admit(t, &p, cur, addrs, lens, n, out, &next);
	while (p.nidle < ZONE_RING) {
		unsigned nx = cur ^ 1;

		/* one loop per step, each calling its step directly */
		zone_pass_step(t, &p, cur, ZONE_S_RULE);
		zone_pass_step(t, &p, cur, ZONE_S_SLOT);
		zone_pass_step(t, &p, cur, ZONE_S_EXACT);
		zone_pass_step(t, &p, cur, ZONE_S_DOMAIN);
		zone_pass_step(t, &p, cur, ZONE_S_ZONE);
		zone_pass_step(t, &p, cur, ZONE_S_PROBE);
		zone_pass_step(t, &p, cur, ZONE_S_CHECK);
		zone_pass_step(t, &p, cur, ZONE_S_CATCHALL);
		zone_pass_step(t, &p, cur, ZONE_S_APPLY);
		zone_admit(t, &p, nx, addrs, lens, n, out, &next);
		cur = nx;
	}
}
