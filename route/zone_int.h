/*
 * zone_int.h -- route/ internals shared by the zone_*.c files (STYLE.md:
 * double-underscore names, never included outside route/).
 *
 * Layout of a compiled table (all records and strings live in the table's
 * arena: big blocks, bump-allocated, freed all at once):
 *
 *   domains  ck_hs of struct zone_key *: scope NULL, s = canonical zone name
 *            (lowercase A-label) -> its struct zone_zone; for an IDN zone a
 *            second entry, a struct zone_dom keyed by the U-label, points
 *            to the same zone.
 *   rules    ck_hs of struct zone_rule *: scope = the zone, s = the local
 *            part as compared (dequoted, ASCII-folded unless the zone is
 *            local-case=sensitive). Catch-alls are not in it: zone->catchall.
 *   tls      ck_hs of struct zone_tls *: destination domain -> policy.
 *   wild     ck_hs of struct zone_dom *: the domains entries of wildcard zones
 *            only, for the parent walk (a few % of the zones: stays in cache).
 *
 * Every ck_hs entry starts with a struct zone_key, so one hash and one
 * compare callback serve every set, and a lookup probes with a zone_key on
 * the stack (no allocation). Hash = XXH3_64bits_withSeed(s, len, seed mixed
 * with the scope pointer), seed random per table (hash flooding by RCPT).
 * Sets are sized at load from a prescan of the file, so they never grow.
 *
 * Memory per rule, typical `alice@example.com forward alice@dest.test`:
 * 48 B record + pattern 18 B (the key shares it when the local part is
 * written lowercase) + 16 B destination record + 16 B destination text +
 * 16 B hash slots (load <= 1/2, 8 B pointers) = ~115 B.
 */
#ifndef SLUICE_ROUTE_ZONE_INT_H
#define SLUICE_ROUTE_ZONE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ck_hs.h>

#include "route/zone.h"

/* The common head of every hash-set entry; also the probe type. */
struct zone_key {
	const void *scope; /* NULL for domains; the struct zone_zone for rules */
	const char *s;	   /* owned by the arena; len bytes, NUL after them */
	uint32_t len;	   /* bytes of s */
	uint32_t line;	   /* file line that defined the entry (errors) */
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

struct zone_zone {
	struct zone_dom dom;		  /* key.s = name (lowercase A-label); zone = self */
	const struct zone_rule *catchall; /* `*@zone` rule in the arena, or NULL */
	uint8_t flags;			  /* ZONE_F_* */
	uint8_t nsep;			  /* separator characters in sep[], 0 = off */
	char sep[ZONE_MAX_SUBADDR];	  /* subaddress separators */
};

enum {
	ZONE_D_LITERAL = 1 << 0,   /* [ip] destination: skip MX */
	ZONE_D_VERIFIED = 1 << 1,  /* covered by verified / verified-domain */
	ZONE_D_GROUP_END = 1 << 2, /* last fallback of its group */
};

/* One destination of a forward rule. */
struct zone_rdest {
	const char *addr; /* "local@domain" or "local@[ip]" (canonical), in the arena */
	uint16_t len;	  /* bytes of addr */
	uint16_t at;	  /* offset of the '@' that starts the domain in addr */
	uint16_t port;	  /* 0 = default */
	uint8_t flags;	  /* ZONE_D_* */
};

struct zone_rule {
	struct zone_key key; /* scope = the zone, s = local part as compared */
	const char *pattern; /* the address as written, in the arena */
	union {
		const char *reply;		/* REJECT/DEFER: "CODE ENH TEXT" */
		const struct zone_rdest *dests; /* FORWARD: ndests records, group order */
	};
	uint16_t ndests; /* FORWARD: destinations (all groups) */
	uint8_t action;	 /* enum zone_action */
};

struct zone_tls {
	struct zone_key key; /* scope NULL, s = lowercase A-label domain */
	uint8_t policy;	     /* enum zone_tls_policy */
};

struct zone_table {
	ck_hs_t domains;	 /* struct zone_dom entries: zones and U-label aliases */
	ck_hs_t rules;		 /* zone_rule entries (no catch-alls) */
	ck_hs_t tls;		 /* zone_tls entries */
	ck_hs_t wild;		 /* struct zone_dom entries of subdomains=wildcard zones only
				    (their own and U-label aliases): the parent walk of a
				    domain without a zone probes this small set */
	struct ck_malloc alloc;	 /* ck_hs allocator (plain malloc; no deferred frees needed
				    because a set is never resized once published) */
	unsigned long seed;	 /* XXH3 seed, random per table */
	struct zone_arena arena; /* every record and string */
	size_t nzones;		 /* zone lines */
	size_t nrules;		 /* rule lines, catch-alls included */
	size_t hs_bytes;	 /* estimated bytes of the hash slots */
	bool any_wildcard;	 /* some zone has subdomains=wildcard: walk parents */
};

/* --- zone_table.c: arena, hash sets --- */

/* Bump-allocate n bytes aligned for any type; NULL on ENOMEM. */
void *zone__alloc(struct zone_arena *a, size_t n);
/* Copy len bytes plus a NUL into the arena; NULL on ENOMEM. */
char *zone__strdup(struct zone_arena *a, const char *s, size_t len);
/* A new empty table with hash sets sized for the given entry counts; NULL on ENOMEM. */
struct zone_table *zone__table_new(size_t nzones, size_t nrules, size_t ntls, size_t nwild);
/* The hash of a key under the table's seed (same as the ck_hs callback). */
unsigned long zone__hash(const struct zone_table *t, const void *scope, const char *s, size_t len);
/* Find the entry with this key in hs, or NULL. Never allocates. */
void *zone__get(const struct zone_table *t, const ck_hs_t *hs, const void *scope, const char *s,
		size_t len);
/* The same with the hash h = zone__hash(t, scope, s, len) already computed. */
void *zone__get_hashed(const ck_hs_t *hs, unsigned long h, const void *scope, const char *s,
		       size_t len);
/*
 * A candidate for hash h without touching any entry: the first entry of h's probe
 * sequence whose 16-bit hash tag matches, or NULL. NULL means no entry has this hash;
 * a candidate may be another key (1 in 65,536 per occupied slot probed): the caller
 * compares its key, and on a mismatch asks zone__get_hashed(). Lets a batch of lookups
 * prefetch their records before touching them.
 */
const void *zone__get_tag(const ck_hs_t *hs, unsigned long h);
/* True when entry e holds exactly this key. */
static inline bool
zone__key_eq(const struct zone_key *e, const void *scope, const char *s, size_t len)
{
	return e->scope == scope && e->len == len && memcmp(e->s, s, len) == 0;
}
/* The entry pointer of a set slot as ck_hs_next() returns it (NULL stays NULL). */
void *zone__untag(void *e);
/* Create an empty set sized for n entries, tracked in t->hs_bytes; false on ENOMEM. */
bool zone__hs_init(struct zone_table *t, ck_hs_t *hs, size_t n);
/* Insert an entry (its key must be absent); false on ENOMEM. The set holds
 * it tagged with hash bits (zone_table.c): iterate with zone__untag(). */
bool zone__put(struct zone_table *t, ck_hs_t *hs, const struct zone_key *entry);

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

#endif /* SLUICE_ROUTE_ZONE_INT_H */
