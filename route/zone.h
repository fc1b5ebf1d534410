/*
 * zone.h -- zone tables: which recipient addresses sluice accepts, and where
 * their mail goes (issue 4). Level 1: pure logic, no shard, no I/O except the
 * file read of zone_table_load() at start-up and reload.
 *
 * A struct zone_table is built whole from a zone file (format: README and
 * route/zone_parse.c), then never changes: any number of threads may call
 * zone_lookup() on it without locks. It is published by pointer swap and
 * freed by its owner once no reader can see it (ck_epoch, in the glue).
 *
 * Inside (route/zone_int.h): two hash sets keyed with XXH3 and a per-table
 * random seed, domain -> zone and whole address "local@zone" -> rule, over
 * records and strings bump-allocated in big arena blocks (no malloc per
 * rule). Both are open-addressing sets built once and then only read, so
 * lock-free by construction (the small side sets are ck_hs). An address
 * written as the table stores it takes one probe. Rejected alternative: a
 * sorted array with binary search (no hashing, smaller) -- 20+ dependent
 * cache misses per lookup on 5M rules against 2-3 for the hash.
 *
 * Lookup precedence: exact address > sub-address (`alice+x` -> `alice`) >
 * catch-all `*@zone`; a zone of its own > the nearest wildcard parent zone.
 * Domains compare case-insensitively, U-label and A-label forms alike (the
 * table stores lowercase A-labels and a U-label alias for IDN zones). How
 * each open-relay trick is answered is documented at zone_lookup().
 */
#ifndef SLUICE_ROUTE_ZONE_H
#define SLUICE_ROUTE_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

struct zone_table; /* immutable once built; freed with zone_table_free() */

enum zone_action {
	ZONE_REFUSE,  /* not ours, or unknown address: reply says why (550 5.7.1 / 550 5.1.x) */
	ZONE_FORWARD, /* deliver to groups[] */
	ZONE_DROP,    /* accept with 250, discard */
	ZONE_REJECT,  /* the rule's 5xx */
	ZONE_DEFER,   /* the rule's 4xx */
};

/* `tls-policy DOMAIN POLICY` lines (stored now, used by the delivery issue). */
enum zone_tls_policy {
	ZONE_TLS_UNSET,		/* no tls-policy line names the domain */
	ZONE_TLS_NONE,		/* never STARTTLS */
	ZONE_TLS_OPPORTUNISTIC, /* STARTTLS when offered, no certificate check */
	ZONE_TLS_VERIFY,	/* STARTTLS required, certificate verified */
};

#define ZONE_MAX_GROUPS	   16	/* destinations that all get the message */
#define ZONE_MAX_FALLBACKS 8	/* ordered alternatives within one destination */
#define ZONE_MAX_ADDR	   512	/* one destination as text: local@domain[:port] */
#define ZONE_MAX_REPLY	   512	/* one RCPT reply line, NUL included */
#define ZONE_MAX_LOCAL	   64	/* RFC 5321 4.5.3.1.1: octets of a local part (unquoted) */
#define ZONE_MAX_DOMAIN	   253	/* octets of a domain name as an A-label, no trailing dot */
#define ZONE_MAX_LINE	   8192 /* octets of one zone file line, LF excluded */
#define ZONE_MAX_SUBADDR   8	/* separator characters in subaddress=CHARS */

/*
 * One destination. addr and host are NUL-terminated strings borrowed, not
 * copied: they point into the table's arena, or (addr only, when a tag=append
 * zone appends a sub-address tag) into the decision's own tagged[] buffer.
 * They stay valid while the table lives and the decision is not reused (the
 * glue holds its table snapshot for the whole transaction).
 */
struct zone_dest {
	const char *addr; /* final address, tag applied: "alice+x@dest.test" (no port), at most
			     ZONE_MAX_ADDR - 1 octets; domain as a lowercase A-label, literals as
			     "[ip]"; borrowed (table or decision) */
	const char *host; /* domain, or the IP for [ip] literals (no brackets and no "IPv6:"
			     tag: ready for inet_pton); borrowed from the table */
	uint16_t port;	  /* 0 = default (MX delivery); explicit :port otherwise */
	bool literal;	  /* written as [ip]: skip MX lookup */
};

struct zone_group {
	unsigned n;				/* 1..ZONE_MAX_FALLBACKS */
	struct zone_dest d[ZONE_MAX_FALLBACKS]; /* in fallback order */
};

/*
 * One decision. About 68 KiB, nearly all of it tagged[], which only a
 * tag=append forward writes (and then only the bytes it needs): keep one per
 * shard or per transaction, not on a small stack. zone_lookup() writes only
 * the header fields and the groups/destinations it uses, so a lookup costs
 * what it fills, not sizeof. Its strings are borrowed from the table (see
 * struct zone_dest): a decision must not outlive the table it came from.
 */
struct zone_decision {
	/* in the order a lookup writes them: the header and the first destinations
	 * share the first cache lines, a refusal's reply its own */
	enum zone_action action;
	unsigned ngroups;    /* FORWARD: groups with at least one verified destination */
	unsigned unverified; /* destinations left out because not verified */
	const char *zone;    /* canonical zone name (lowercase A-label), NULL if none; owned by
				the table */
	const char *rule;    /* matched pattern as written in the file ("alice@example.com",
				"*@example.com"), NULL if none; owned by the table */
	struct zone_group groups[ZONE_MAX_GROUPS];
	char reply[ZONE_MAX_REPLY]; /* RCPT reply without CRLF when action != FORWARD
				       (DROP: "250 2.1.5 Ok"); "" for FORWARD */
	char tagged[ZONE_MAX_GROUPS * ZONE_MAX_FALLBACKS * ZONE_MAX_ADDR]; /* storage of the
			     groups[].d[].addr that carry an appended tag; internal */
};

/*
 * Load a zone file whole. 0, or a negative code with err = "PATH:LINE: reason"
 * (the first error; a file with any error is refused whole: *out untouched).
 * Unreadable file: "PATH: strerror". Blocking file I/O: start-up/reload only.
 * Codes: -SLUICE_ESYNTAX (bad content), -ENOMEM, or the -errno of open/read.
 * On success *out is a new table owned by the caller.
 */
int zone_table_load(const char *path, struct zone_table **out, char *err, size_t errlen);

/* Same from memory (text need not be NUL-terminated); `name` stands for
 * PATH in errors. */
int zone_table_load_string(const char *text, size_t len, const char *name, struct zone_table **out,
			   char *err, size_t errlen);

/* Free a table and everything it owns (NULL is a no-op). No reader may
 * still use it, nor any decision made on it (their strings point into it). */
void zone_table_free(struct zone_table *t);

/* Zones declared (`zone` lines) in the table. */
size_t zone_table_nzones(const struct zone_table *t);

/* Rules (address lines, catch-alls included) in the table. */
size_t zone_table_nrules(const struct zone_table *t);

/* Bytes of memory the table holds (arena blocks and hash slots): for the
 * load report and the benchmark. */
size_t zone_table_memory(const struct zone_table *t);

/* The tls-policy recorded for a destination domain (len bytes, U-label or
 * A-label, any case), ZONE_TLS_UNSET when none. Pure, thread-safe; allocates
 * only for a non-ASCII domain (libidn2), so call it off the hot path or with
 * the A-label. */
enum zone_tls_policy zone_table_tls_policy(const struct zone_table *t, const char *domain,
					   size_t len);

/*
 * Decide for one recipient address (the RCPT path without <>, len bytes, not
 * NUL-terminated; may be UTF-8). Pure and thread-safe on an immutable table;
 * no allocation. out's strings are borrowed from t (struct zone_dest): use
 * them while t lives. A FORWARD rule whose every destination is unverified
 * is returned as ZONE_REFUSE with "550 5.1.1 ..." (nowhere to deliver).
 *
 * Replies for ZONE_REFUSE:
 *   "550 5.7.1 Relaying denied"   the domain is not served, or the address is
 *       a relay attempt: a source route ("@a:b@zone"), an address literal
 *       domain ("b@[192.0.2.1]" is never ours), a trailing dot, a domain that
 *       is not a valid name or not the canonical U-label of a zone, a
 *       subdomain of a wildcard zone with an invalid label (empty, over 63
 *       octets, hyphen first or last, not UTF-8), or a local part holding
 *       '%', '!' or (quoted) '@' that has no exact rule;
 *   "550 5.1.1 <ADDR>: Recipient address rejected: user unknown"  no exact,
 *       sub-address or catch-all rule (ADDR sanitised: printable, capped);
 *   "550 5.1.1 <ADDR>: Recipient address rejected: no verified destination"
 *       the forward rule has no verified destination left;
 *   "550 5.1.3 Bad recipient address syntax"  empty, unterminated quote,
 *       no '@', or a local part the zone file's grammar refuses (checked before
 *       any rule, so it never reaches a sub-address or catch-all rule): over
 *       ZONE_MAX_LOCAL octets, empty (also ""), NUL/CR/LF or other C0, C1 or
 *       DEL, blanks or specials outside quotes, a dot first, last or doubled
 *       outside quotes, not well-formed UTF-8; and in a tag=append zone, a
 *       sub-address tag that would be copied and holds a blank (ASCII or
 *       Unicode) or an invisible/bidi format character (U+202E...).
 *
 * Sub-addresses: when no exact rule matches, the local part is split at each
 * separator occurrence from the right ("a-b+c" with subaddress=+- tries
 * "a-b", then "a"); the first base with an exact rule wins, else the
 * catch-all. The tag is the separator and what follows the base. Under
 * tag=append it is appended to every destination's local part (inside the
 * quotes of a quoted one) when it is a dot-atom continuation (atext, UTF-8,
 * dots neither doubled nor last); a tag that would need quoting ("a..b",
 * "a(b)") still matches the base rule but is not appended.
 *
 * Open-relay attempts never reach a forward they were not written for:
 * '%' (percent hack), '!' (bang path) and '@' inside a quoted local part
 * match only an exact rule for that literal local part, never a sub-address
 * or catch-all rule; the address is otherwise refused 5.7.1. Mixed case
 * matches the lowercase rule under local-case=insensitive (same mailbox,
 * delivered to the rule's own destinations); domains always fold ASCII case.
 * Non-ASCII domains match only in canonical IDNA2008 form (NFC, lowercase,
 * as libidn2 decodes the zone's A-label): other spellings, look-alikes and
 * other normalisations are not ours (5.7.1). Non-ASCII local parts compare
 * as bytes (ASCII letters folded): another normalisation is another local
 * part (catch-all or 5.1.1).
 */
void zone_lookup(const struct zone_table *t, const char *addr, size_t len,
		 struct zone_decision *out);

/*
 * The same for n addresses at once: out[i] gets exactly what zone_lookup(t,
 * addrs[i], lens[i], out[i]) would write. Faster per address on a table much
 * bigger than the CPU caches: up to 64 lookups are in flight, each advanced
 * one step at a time (hash and prefetch a slot, find the candidate entry and
 * prefetch it, check it...), so their cache misses overlap instead of
 * queueing one after another; a finished lookup's place goes to the next
 * address at once. Any n works; from 64 on the pipeline is full between
 * its start and its end, so the larger n, the less those two cost per
 * address (bench_route measures 16 and 64). Pure, thread-safe, no
 * allocation (about 35 KiB of stack); the out[i] must be distinct.
 */
void zone_lookup_batch(const struct zone_table *t, const char *const addrs[], const size_t lens[],
		       size_t n, struct zone_decision *const out[]);

/*
 * Tests only: with false, every address is split byte by byte, as when the CPU
 * lacks AVX2 (default true: the usual address is split in one AVX2 pass). The
 * decisions must be the same either way; the tests check that. Not thread-safe:
 * set it before any lookup runs.
 */
void zone_lookup_one_pass(bool on);

/*
 * The --lookup JSON object (one line, with "\n"), e.g.
 * {"zone":"example.com","rule":"alice@example.com","action":"forward","reply":null,
 *  "destinations":[["alice@dest.test"],["bob@dest2.test:2525"]]}
 * zone/rule null when absent; reply null for forward; destinations [] when not forward;
 * a destination is written as addr plus ":port" when port != 0, and literal hosts as
 * given ("third@[192.0.2.7]"). Strings are JSON-escaped (UTF-8 passes through).
 * Returns the length written (without the NUL). When cap is too small the
 * output is cut at a character boundary and NUL-terminated (cap > 0); the
 * return value is then < the full length, and the line lacks its "\n".
 */
size_t zone_decision_json(const struct zone_decision *d, char *buf, size_t cap);

/* Static lowercase name of an action: "forward", "drop", "reject", "defer", "refuse". */
const char *zone_action_name(enum zone_action a);

#endif /* SLUICE_ROUTE_ZONE_H */
