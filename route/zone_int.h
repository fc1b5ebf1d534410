/*
 * zone_int.h -- route/ internals shared by the zone_*.c files (STYLE.md:
 * double-underscore names, never included outside route/).
 *
 * Layout of a compiled table (all records and strings live in the table's two
 * arenas, hot and cold: big blocks, bump-allocated, freed all at once):
 *
 *   domains  struct zone_set of struct zone_key *: s = canonical zone name
 *            (lowercase A-label) -> its struct zone_zone; for an IDN zone a
 *            second entry, a struct zone_dom keyed by the U-label, points
 *            to the same zone.
 *   dfilter  a Bloom filter of the domains keys (struct zone_filter): tested first,
 *            so mail for a domain that is not ours costs no probe of the big sets.
 *   rules    struct zone_set of struct zone_rule *: s = "LOCAL@ZONE", the
 *            local part as compared (dequoted, ASCII-folded unless the zone
 *            is local-case=sensitive), '@', the canonical zone name. Keyed
 *            by the whole address, so an RCPT address written as stored (the
 *            usual case) finds its rule in one probe, before and without
 *            the zone; the zone's entry is read only when that misses.
 *            Catch-alls are not in it: zone->catchall.
 *   tls      ck_hs of struct zone_tls *: destination domain -> policy.
 *   wild     ck_hs of struct zone_dom *: the domains entries of wildcard zones
 *            only, for the parent walk (a few % of the zones: stays in cache).
 *
 * Every entry starts with a struct zone_key and every set holds entry
 * pointers tagged with 16 hash bits, so a probe rejects most other keys
 * without touching them. Hash = XXH3_64bits_withSeed(s, len, seed), seed
 * random per table (hash flooding by RCPT). Sets are sized at load from a
 * prescan of the file, so they never grow.
 *
 * The two big sets are our own struct zone_set rather than ck_hs: the same
 * lock-free-because-immutable contract, but a lookup can prefetch a slot by
 * hash and probes inline (ck_hs keeps its slots private and calls back per
 * slot). Measured on 1M zones / 5M rules, everything else equal: +20 %
 * lookups/s cache-resident, +30-40 % batched (more once the batch prefetch
 * works). The small sets stay ck_hs: nothing to gain there.
 *
 * Memory per rule, typical `alice@example.com forward alice@dest.test`, in
 * one arena block in lookup order: 48 B record + 16 B destination record +
 * pattern 18 B (the key shares it when the address is written as compared:
 * lowercase, canonical domain), then elsewhere 16 B destination text and
 * 16 B hash slots (load <= 1/2, 8 B pointers) = ~115 B.
 */
#ifndef SLUICE_ROUTE_ZONE_INT_H
#define SLUICE_ROUTE_ZONE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <ck_hs.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "route/zone.h"

/* Octets of a rule key "LOCAL@ZONE" (struct zone_rule), NUL excluded. */
#define ZONE_KEY_MAX (ZONE_MAX_LOCAL + 1 + ZONE_MAX_DOMAIN)

/* The common head of every hash-set entry; also the probe type. */
struct zone_key {
	const char *s; /* owned by the arena; len bytes, NUL after them */
	uint32_t len;  /* bytes of s */
	uint32_t line; /* file line that defined the entry (errors) */
};

/* One arena block: data[] follows; freed with the table. */
struct zone_block {
	struct zone_block *next; /* owned: the previous block */
	size_t used;		 /* bytes of data[] handed out */
	size_t cap;		 /* bytes of data[] */
	max_align_t data[];	 /* the memory handed out */
};

struct zone_arena {
	struct zone_block *head; /* owned: newest block, NULL when empty */
	size_t next_cap;	 /* bytes for the next block (doubles up to a cap) */
	size_t total;		 /* bytes of all blocks (for zone_table_memory) */
};

enum {
	ZONE_F_WILDCARD = 1 << 0,   /* subdomains=wildcard */
	ZONE_F_SENSITIVE = 1 << 1,  /* local-case=sensitive */
	ZONE_F_TAG_APPEND = 1 << 2, /* tag=append */
};

/* A domains entry: the zone's own (inside struct zone_zone) or an alias. */
struct zone_dom {
	struct zone_key key;	      /* scope NULL, s = the name in one form */
	const struct zone_zone *zone; /* the zone it names, in the arena */
};

/* A zone; its name (NUL-terminated) follows the record in the arena: zone__name(). */
struct zone_zone {
	struct zone_dom dom;		  /* key.s = zone__name(self); zone = self */
	const struct zone_rule *catchall; /* `*@zone` rule in the arena, or NULL */
	uint8_t flags;			  /* ZONE_F_* */
	uint8_t nsep;			  /* separator characters in sep[], 0 = off */
	char sep[ZONE_MAX_SUBADDR];	  /* subaddress separators */
};

/* The canonical name of a zone (lowercase A-label), stored right after its record:
 * found without reading the record. */
static inline const char *
zone__name(const struct zone_zone *z)
{
	return (const char *)(z + 1);
}

enum {
	ZONE_D_LITERAL = 1 << 0,   /* [ip] destination: skip MX */
	ZONE_D_VERIFIED = 1 << 1,  /* covered by verified / verified-domain */
	ZONE_D_GROUP_END = 1 << 2, /* last fallback of its group */
};

/* One destination of a forward rule. */
struct zone_rdest {
	const char *addr; /* "local@domain" or "local@[ip]" (canonical), in the arena; for
			     a literal the bare IP follows it ("x@[1.2.3.4]\0001.2.3.4\0") */
	uint16_t len;	  /* bytes of addr */
	uint16_t at;	  /* offset of the '@' that starts the domain in addr */
	uint16_t port;	  /* 0 = default */
	uint8_t flags;	  /* ZONE_D_* */
};

struct zone_rule {
	struct zone_key key;	      /* s = "LOCAL@ZONE" as compared (catch-all: "*@..."
					 is never looked up) */
	const struct zone_zone *zone; /* the zone, in the arena */
	const char *pattern;	      /* the address as written, in the arena */
	union {
		const char *reply;		/* REJECT/DEFER: "CODE ENH TEXT" */
		const struct zone_rdest *dests; /* FORWARD: ndests records, group order */
	};
	uint16_t ndests; /* FORWARD: destinations (all groups) */
	uint8_t action;	 /* enum zone_action */
	bool sensitive;	 /* the zone is local-case=sensitive (the zone's flag, here so that
			    a one-probe hit need not read the zone) */
};

struct zone_tls {
	struct zone_key key; /* s = lowercase A-label domain */
	uint8_t policy;	     /* enum zone_tls_policy */
};

/*
 * The set type of the two big sets, domains and rules: open addressing over one
 * array of 8-byte slots, each an entry pointer with the top 16 bits of its hash in
 * bits 48-63 (0 = empty), at most half full. A probe starts at the first slot of a
 * 64-byte line chosen by the hash (zone__set_index) and goes on linearly until its
 * key or an empty slot: keys whose lines collide share the line, and a probe leaves
 * its line only when the line is full (a few % at half load), where probing from a
 * random slot crosses into the next line at ~1 in 5 probes -- each crossing one more
 * cache miss the batch did not prefetch. Any number of lines, not only a power of
 * two (the hash's low 32 bits scaled to the count: a multiply and a shift), so n
 * entries take 2n slots rather than up to 4n (5M rules: 76 MiB instead of 128).
 * Built once by the loader, then only read: lock-free by construction, like the
 * ck_hs sets it replaces there. Unlike ck_hs (whose slot array is private) a lookup
 * can prefetch the slot of a hash before it probes (zone__set_prefetch), so a batch
 * of lookups overlaps the slot misses as well as the record misses.
 */
struct zone_set {
	uint64_t *slots; /* owned: nslots slots (zone_table.c's big allocations) */
	size_t nslots;	 /* a multiple of ZONE_SET_LINE, < 2^32 */
	size_t n;	 /* entries; <= nslots / 2 (the loader grows it to keep that) */
	bool rule_keys;	 /* keys are "LOCAL@ZONE", hashed by zone__rule_hash() */
};

/*
 * A Bloom filter of the domains set's keys, one 64-bit word of one 64-byte line per
 * key (a "blocked" filter: a test reads one word), ZONE_FILTER_BITS bits per key, six
 * of them set per key: ~1 % false positives (measured: 1.04 % of 1M unserved names
 * on the 1M-zone table), never a false negative. ~1.5 MiB for 1M zones, against 16 MiB
 * of domain slots and the records across the arena. A lookup tests the domain first (the split
 * prefetches its word; a batch fetches the rule slot only for a domain that passes): one for
 * which no zone is declared (mail for domains that are not ours: relay attempts, typos,
 * dictionary attacks) is refused or sent to the wildcard parents without reading either big
 * set, two cache misses saved.
 */
struct zone_filter {
	uint64_t *words; /* owned: nlines * 8 words, 64-byte aligned */
	size_t nlines;	 /* >= 1, < 2^32; sized from the prescan's count (a file it
			    undercounts gets more false positives, never a false negative) */
};

struct zone_table {
	struct zone_set domains;    /* struct zone_dom entries: zones and U-label aliases */
	struct zone_filter dfilter; /* the keys of domains (zone__domain_put) */
	struct zone_set rules;	    /* zone_rule entries (no catch-alls) */
	ck_hs_t tls;		    /* zone_tls entries */
	ck_hs_t wild;		    /* struct zone_dom entries of subdomains=wildcard zones only
				       (their own and U-label aliases): the parent walk of a
				       domain without a zone probes this small set */
	struct ck_malloc alloc;	    /* ck_hs allocator (plain malloc; no deferred frees needed
				       because a set is never resized once published) */
	unsigned long seed;	    /* XXH3 seed, random per table */
	struct zone_arena arena;    /* the records and strings a lookup reads: zones, rules
				       with their destination records and patterns, reply texts */
	struct zone_arena cold;	    /* what a lookup does not read: destination texts (the
				       caller reads them later, one per delivery), U-label
				       aliases, TLS policies; kept apart so that the records a
				       lookup reads sit together (the destination texts of a
				       1M-zone table are ~170 MiB) */
	size_t nzones;		    /* zone lines */
	size_t nrules;		    /* rule lines, catch-alls included */
	size_t hs_bytes;	    /* bytes of the hash slots (ck_hs: estimated) */
	bool any_wildcard;	    /* some zone has subdomains=wildcard: walk parents */
	uint8_t wild_min_dots;	    /* fewest dots in the name of a subdomains=wildcard zone
				       (UINT8_MAX when none): shorter suffixes are not probed */
	uint8_t wild_max_dots;	    /* most dots in such a name (0 when none) */
};

/* --- zone_table.c: arena, hash sets --- */

/* Bump-allocate n bytes aligned for any type; NULL on ENOMEM. */
void *zone__alloc(struct zone_arena *a, size_t n);
/* Copy len bytes plus a NUL into the arena; NULL on ENOMEM. */
char *zone__strdup(struct zone_arena *a, const char *s, size_t len);
/* Free every block of a (a zeroed arena is fine); a is empty afterwards. */
void zone__arena_fini(struct zone_arena *a);
/* A new empty table with hash sets sized for the given entry counts (ndomains: zones
 * plus the U-label entries of IDN zones); NULL on ENOMEM. */
struct zone_table *zone__table_new(size_t ndomains, size_t nrules, size_t ntls, size_t nwild);
/* XXH3 of s[0..len) under seed, inlined where it is used (the lookup hashes once or
 * twice per address: no call through the shared library). */
static inline unsigned long
zone__hash_seed(unsigned long seed, const char *s, size_t len)
{
	return (unsigned long)XXH3_64bits_withSeed(s, len, (uint64_t)seed);
}

/* The hash of a key under the table's seed: every set, both kinds. */
static inline unsigned long
zone__hash(const struct zone_table *t, const char *s, size_t len)
{
	return zone__hash_seed(t->seed, s, len);
}
/*
 * The hash of a rule key "LOCAL@ZONE": the local part hashed with the zone name's hash
 * as the seed. A lookup hashes the domain anyway (the domain filter, the zone), so the
 * rule's hash then costs a hash of the local part alone -- a short input, the cheap
 * end of XXH3 -- instead of one of the whole address. hz = zone__hash(t, ZONE).
 */
static inline unsigned long
zone__rule_hash_at(unsigned long hz, const char *key, size_t llen)
{
	return zone__hash_seed(hz, key, llen);
}

/* The same from the whole key: the zone name follows its last '@'. */
static inline unsigned long
zone__rule_hash(const struct zone_table *t, const char *key, size_t len)
{
	size_t at = len;

	while (at > 0 && key[at - 1] != '@')
		at--;
	at = at > 0 ? at - 1 : 0;
	return zone__rule_hash_at(zone__hash(t, key + at + 1, len - at - 1), key, at);
}

/* The hash of key k[0..len) in set s. */
static inline unsigned long
zone__set_hash(const struct zone_table *t, const struct zone_set *s, const char *k, size_t len)
{
	return s->rule_keys ? zone__rule_hash(t, k, len) : zone__hash(t, k, len);
}

/* True when entry e holds exactly this key. */
static inline bool
zone__key_eq(const struct zone_key *e, const char *s, size_t len)
{
	return e->len == len && memcmp(e->s, s, len) == 0;
}

/* An empty zone_set sized for n entries, tracked in t->hs_bytes; false on ENOMEM. */
bool zone__set_init(struct zone_table *t, struct zone_set *s, size_t n);
/* Free the slots of s (a zeroed s is fine). */
void zone__set_fini(struct zone_set *s);
/* Insert an entry with hash h = zone__set_hash(t, s, entry->s, entry->len); its key must be
 * absent. Loader only: s may grow (never once published). False on ENOMEM. */
bool zone__set_put(struct zone_table *t, struct zone_set *s, unsigned long h,
		   const struct zone_key *entry);
/* The entry of slot i of s (NULL when empty): iterate i over 0..s->nslots - 1. */
const struct zone_key *zone__set_at(const struct zone_set *s, size_t i);

/* Insert a domains entry with hash h = zone__hash(t, entry->s, entry->len), into the
 * set and the domain filter; its key must be absent. Loader only. False on ENOMEM. */
bool zone__domain_put(struct zone_table *t, unsigned long h, const struct zone_key *entry);

/* The small sets (tls, wild, the loader's verified sets) are ck_hs sets of tagged
 * struct zone_key pointers (zone_table.c). */
/* Create an empty ck_hs set sized for n entries, tracked in t->hs_bytes; false on
 * ENOMEM. */
bool zone__hs_init(struct zone_table *t, ck_hs_t *hs, size_t n);
/* Insert an entry (its key must be absent); false on ENOMEM. */
bool zone__put(struct zone_table *t, ck_hs_t *hs, const struct zone_key *entry);
/* Find the entry with this key in hs, or NULL. Never allocates. */
void *zone__get(const struct zone_table *t, const ck_hs_t *hs, const char *s, size_t len);

/* --- zone_addr.c: syntax and normalisation --- */

/* ASCII lowercase of c; other bytes unchanged. */
static inline unsigned char
zone__lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* RFC 5321 atext (ASCII); bytes >= 0x80 are handled by the callers (UTF-8). */
bool zone__is_atext(unsigned char c);
/* True when s[0..len) is well-formed UTF-8 without C0/C1 controls or DEL. */
bool zone__utf8_ok(const char *s, size_t len);

/*
 * Parse a local part as written: a dot-atom (atext, '.', UTF-8) or an RFC
 * 5321 quoted string. Writes the dequoted content to out (at most
 * ZONE_MAX_LOCAL bytes, NUL-terminated) and its length to *outlen. 0, or
 * -SLUICE_ESYNTAX with *why set to a static reason.
 */
int zone__local_parse(const char *s, size_t len, char *out, size_t *outlen, const char **why);

/*
 * Canonicalise a domain as written in the zone file: ASCII LDH labels or a
 * UTF-8 name, no trailing dot. out (ZONE_MAX_DOMAIN + 1 bytes) gets the
 * lowercase A-label form; when the name has IDN labels, ulabel (same size)
 * gets the U-label form (libidn2's decoding of the A-label) and *ulen its
 * length, else *ulen = 0. 0 or -SLUICE_ESYNTAX / -ENOMEM with *why.
 */
int zone__domain_canon(const char *s, size_t len, char *out, size_t *outlen, char *ulabel,
		       size_t *ulen, const char **why);

/*
 * Parse an address literal "[1.2.3.4]" or "[IPv6:...]" (brackets included in
 * s). canon (64 bytes) gets "[a.b.c.d]" or "[IPv6:x::y]" in canonical
 * inet_ntop form; *hostoff and *hostlen locate the bare IP inside canon.
 */
int zone__literal_parse(const char *s, size_t len, char *canon, size_t *canonlen, size_t *hostoff,
			size_t *hostlen, const char **why);

/* A destination as parsed from the zone file. */
struct zone__dest {
	char addr[ZONE_MAX_ADDR]; /* local as written + "@" + canonical domain or [ip] */
	size_t addrlen;		  /* bytes of addr */
	size_t at;		  /* offset of the domain '@' in addr */
	uint16_t port;		  /* 0 = none */
	bool literal;		  /* [ip] */
};

/* Parse "local@domain[:port]" / "local@[ip][:port]". allow_port false
 * refuses a port (verified lines). 0 or -SLUICE_ESYNTAX/-ENOMEM with *why. */
int zone__dest_parse(const char *s, size_t len, bool allow_port, struct zone__dest *d,
		     const char **why);

/* The verification key of a canonical "local@domain" (as in zone__dest):
 * dequoted local + "@" + domain, into key (ZONE_MAX_ADDR bytes). */
int zone__verify_key(const char *addr, size_t addrlen, size_t at, char *key, size_t *keylen);

/* --- inline implementation --- */

#define ZONE_SET_TAG_SHIFT 48
#define ZONE_SET_LINE	   8 /* slots in a 64-byte cache line */
#define ZONE_SET_PTR_MASK  ((UINT64_C(1) << ZONE_SET_TAG_SHIFT) - 1)

/* The first slot of h's probe sequence: the first of a line of ZONE_SET_LINE slots,
 * the line chosen by the low 32 bits of h scaled to the line count (Lemire's
 * multiply-shift range reduction; the tag takes bits 48-63). */
static inline size_t
zone__set_index(const struct zone_set *s, unsigned long h)
{
	return (size_t)(((uint64_t)(uint32_t)h * (s->nslots / ZONE_SET_LINE)) >> 32) *
	       ZONE_SET_LINE;
}

/* The slot after slot i, wrapping at the end. */
static inline size_t
zone__set_next(const struct zone_set *s, size_t i)
{
	return i + 1 < s->nslots ? i + 1 : 0;
}

#define ZONE_FILTER_BITS 12 /* filter bits per key */

/* The index in f->words of the first word of hash h's line: the low 32 bits of h
 * scaled to the line count. */
static inline size_t
zone__filter_line(const struct zone_filter *f, unsigned long h)
{
	return (size_t)(((uint64_t)(uint32_t)h * f->nlines) >> 32) * 8;
}

/* The index in f->words of the word that holds h's bits, and the bits: from the high
 * half of h times an odd constant (the product's high bits depend on every bit of h,
 * the line index only on the low 32): 3 bits for the word in the line, six 6-bit
 * positions. One word, so a test is a load and a compare rather than six (measured:
 * ~95 instructions a test with the bits spread over the line, ~30 so): no key of the
 * filter has hash h when (words[w] & mask) != mask; every key that has it, and ~1 % of
 * the others, pass. */
static inline size_t
zone__filter_word(const struct zone_filter *f, unsigned long h, uint64_t *mask)
{
	uint64_t g = (uint64_t)h * UINT64_C(0x9e3779b97f4a7c15);

	/* written out: GCC -O2 keeps the loop, and its counter cost more than the bits */
	*mask = UINT64_C(1) << (g >> 25 & 63) | UINT64_C(1) << (g >> 31 & 63) |
		UINT64_C(1) << (g >> 37 & 63) | UINT64_C(1) << (g >> 43 & 63) |
		UINT64_C(1) << (g >> 49 & 63) | UINT64_C(1) << (g >> 55 & 63);
	return zone__filter_line(f, h) + (size_t)(g >> 61);
}

/* Ask for the cache line of h's first slot: the probe that follows finds it there.
 * always_inline: see zone_prefetch() in zone_lookup.c (GCC drops calls otherwise). */
static inline __attribute__((always_inline)) void
zone__set_prefetch(const struct zone_set *s, unsigned long h)
{
	__builtin_prefetch(&s->slots[zone__set_index(s, h)], 0, 3);
}

#ifdef __SSE2__
/*
 * The 8 slots of the line that starts at slot i, in one pass without a branch: bit k of
 * the result when slot k's tag is tag, bit 8 + k when slot k is empty. The high dwords
 * of the slots (the tag, and the pointer's bits 32-47) and the low ones are gathered
 * four at a time; a slot is empty when both are zero. Baseline SSE2: nothing to choose
 * at run time. Replaces a loop whose two branches per slot the CPU could not predict
 * (cachegrind: ~0.8 mispredicted branches a lookup in the two probes).
 */
static inline unsigned
zone__set_line_scan(const struct zone_set *s, size_t i, uint64_t tag)
{
	const __m128i *p = (const __m128i *)(const void *)&s->slots[i];
	__m128i want = _mm_set1_epi32((int)tag), tm[2], em[2];

	for (unsigned half = 0; half < 2; half++) {
		__m128 a = _mm_castsi128_ps(_mm_loadu_si128(p + 2 * half));
		__m128 b = _mm_castsi128_ps(_mm_loadu_si128(p + 2 * half + 1));
		__m128i hi = _mm_castps_si128(_mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
		__m128i lo = _mm_castps_si128(_mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));

		tm[half] = _mm_cmpeq_epi32(_mm_srli_epi32(hi, 16), want);
		em[half] = _mm_cmpeq_epi32(_mm_or_si128(hi, lo), _mm_setzero_si128());
	}
	return (unsigned)_mm_movemask_epi8(
	    _mm_packs_epi16(_mm_packs_epi32(tm[0], tm[1]), _mm_packs_epi32(em[0], em[1])));
}
#else
static inline unsigned
zone__set_line_scan(const struct zone_set *s, size_t i, uint64_t tag)
{
	unsigned m = 0;

	for (unsigned k = 0; k < ZONE_SET_LINE; k++) {
		uint64_t e = s->slots[i + k];

		m |= (unsigned)(e >> ZONE_SET_TAG_SHIFT == tag) << k | (unsigned)(e == 0)
									   << (8 + k);
	}
	return m;
}
#endif

/*
 * A candidate for hash h without touching any entry: the first entry of h's probe
 * sequence whose 16-bit hash tag matches, or NULL. NULL means no entry has this hash;
 * a candidate may be another key (1 in 65,536 per occupied slot probed): the caller
 * compares its key, and on a mismatch asks zone__set_get(). Lets a batch of lookups
 * prefetch their records before touching them. A line at a time (zone__set_line_scan):
 * the first slot, in order, that is empty or has the tag decides (an empty slot whose
 * "tag" matches a tag of 0 holds no pointer: NULL all the same). first is h's first slot,
 * zone__set_index(s, h), which a lookup works out once, when it prefetches the line.
 */
static inline const void *
zone__set_get_tag(const struct zone_set *s, size_t first, unsigned long h)
{
	uint64_t tag = (uint64_t)h >> ZONE_SET_TAG_SHIFT;

	for (size_t i = first;; i = i + ZONE_SET_LINE < s->nslots ? i + ZONE_SET_LINE : 0) {
		unsigned m = zone__set_line_scan(s, i, tag), events = (m | m >> 8) & 0xffu;

		if (events != 0) {
			unsigned k = (unsigned)__builtin_ctz(events);
			uint64_t e = (m >> k & 1) ? s->slots[i + k] : 0;

			return (const void *)(uintptr_t)(e & ZONE_SET_PTR_MASK);
		}
	}
}

/* The entry with key k[0..len) and hash h = zone__set_hash(t, s, k, len), or NULL. */
static inline const void *
zone__set_get(const struct zone_set *s, unsigned long h, const char *k, size_t len)
{
	uint64_t tag = (uint64_t)h >> ZONE_SET_TAG_SHIFT;

	for (size_t i = zone__set_index(s, h);; i = zone__set_next(s, i)) {
		uint64_t e = s->slots[i];

		if (e == 0)
			return NULL;
		if (e >> ZONE_SET_TAG_SHIFT == tag) {
			const struct zone_key *x = (const void *)(uintptr_t)(e & ZONE_SET_PTR_MASK);

			if (zone__key_eq(x, k, len))
				return x;
		}
	}
}

#endif /* SLUICE_ROUTE_ZONE_INT_H */
