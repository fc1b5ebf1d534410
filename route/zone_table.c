/*
 * zone_table.c -- the compiled table's storage: the arena, the hash sets
 * (struct zone_set for domains and rules, ck_hs with its callbacks for the
 * small ones), and the small read-only accessors.
 *
 * The arena hands out memory from blocks that start at 64 KiB and double up
 * to 64 MiB, so a 10-line test table costs one small block and a 5M-rule
 * table a few dozen large ones (no malloc per rule, no per-record header).
 * Rejected: one malloc per record (5M calls and 16 B of allocator overhead
 * each, and a slow free).
 *
 * The ck_hs sets run in CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC: readers need no
 * lock while one writer (the loader) fills them; once published nobody
 * writes. They are created with twice the expected entries (ck_hs keeps the
 * load factor at or under 1/2), so they never grow after the prescan. The
 * zone_sets are sized the same way (zone__set_put refuses to go past 1/2)
 * and are never written once the table is published: any number of readers,
 * no lock, no atomics.
 */
#include "route/zone.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <ck_hs.h>
/* The tagged entries below keep 16 hash bits in bits 48-63 of each pointer: that
 * assumes libck built without pointer packing (as Debian builds it), where ck_hs
 * stores our pointers untouched. With CK_HS_PP ck_hs packs its own bits there. */
#ifdef CK_HS_PP
#error "route/zone_table.c needs libck without pointer packing (CK_HS_PP is defined)"
#endif
#include "core/err.h"
#include "route/zone_int.h"

#define ZONE_BLOCK_MIN ((size_t)64 << 10) /* first arena block, bytes */
#define ZONE_BLOCK_MAX ((size_t)64 << 20) /* arena blocks stop doubling here */

#define ZONE_HUGE ((size_t)2 << 20) /* x86-64 huge page: big allocations are aligned to it */

/*
 * Memory for big arena blocks and hash slot arrays: anonymous mappings on
 * 2 MiB boundaries with MADV_HUGEPAGE, so a random lookup over a table of
 * hundreds of MiB costs a cache miss, not a cache miss plus a 4-level page
 * walk (measured: x2 lookups/s on 1M zones). Small requests use malloc.
 */
static void *
zone_big_alloc(size_t n)
{
	size_t len, lead;
	char *p;

	if (n < ZONE_HUGE)
		return malloc(n);
	len = (n + ZONE_HUGE - 1) & ~(ZONE_HUGE - 1);
	p = mmap(NULL, len + ZONE_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	lead = (ZONE_HUGE - ((uintptr_t)p & (ZONE_HUGE - 1))) & (ZONE_HUGE - 1);
	if (lead > 0)
		munmap(p, lead);
	munmap(p + lead + len, ZONE_HUGE - lead);
	p += lead;
	madvise(p, len, MADV_HUGEPAGE); /* advice only: no huge pages is still correct */
	return p;
}

static void
zone_big_free(void *p, size_t n)
{
	if (n < ZONE_HUGE)
		free(p);
	else if (p != NULL)
		munmap(p, (n + ZONE_HUGE - 1) & ~(ZONE_HUGE - 1));
}

#define ZONE_ALIGN 8 /* records hold pointers and integers, nothing wider */

/* Take n bytes from the newest block (a new one when they do not fit). */
static void *
zone_arena_take(struct zone_arena *a, size_t n, size_t align)
{
	struct zone_block *b = a->head;
	size_t at = b != NULL ? (b->used + align - 1) & ~(align - 1) : 0;

	if (b == NULL || at > b->cap || b->cap - at < n) {
		size_t cap = a->next_cap ? a->next_cap : ZONE_BLOCK_MIN;

		while (cap < n)
			cap *= 2;
		b = zone_big_alloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
		a->total += sizeof(*b) + cap;
		a->next_cap = cap < ZONE_BLOCK_MAX ? cap * 2 : ZONE_BLOCK_MAX;
		at = 0;
	}
	b->used = at + n;
	return (char *)b->data + at;
}

void *
zone__alloc(struct zone_arena *a, size_t n)
{
	return zone_arena_take(a, n, ZONE_ALIGN);
}

/* Strings are packed unaligned: records round the cursor up again. */
char *
zone__strdup(struct zone_arena *a, const char *s, size_t len)
{
	char *p = zone_arena_take(a, len + 1, 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
zone__arena_fini(struct zone_arena *a)
{
	struct zone_block *b = a->head, *next;

	for (; b != NULL; b = next) {
		next = b->next;
		zone_big_free(b, sizeof(*b) + b->cap);
		b = NULL;
	}
	a->head = NULL;
	a->total = 0;
}

/*
 * Tagged entries. Debian builds libck without pointer packing, so ck_hs
 * calls the compare callback for every occupied slot of a probe sequence,
 * and each call would be a cache miss on a random record. We store each
 * entry as its pointer with the top 16 bits of its hash in bits 48-63 (user
 * addresses on x86-64 and arm64 fit in 48 bits; zone__put checks), and the
 * compare callback rejects a different tag without touching memory: one
 * dereference per lookup instead of ~2.5 (measured: 1.5 -> 10+ M lookups/s
 * on 5M rules). ck_hs treats entries as opaque (hash and compare are ours),
 * so it never dereferences them itself.
 */
#define ZONE_TAG_SHIFT 48

static inline uintptr_t
zone_tag_of(unsigned long h)
{
	return (uintptr_t)(h >> ZONE_TAG_SHIFT) << ZONE_TAG_SHIFT;
}

static inline const struct zone_key *
zone_untag(const void *e)
{
	return (const struct zone_key *)((uintptr_t)e & (((uintptr_t)1 << ZONE_TAG_SHIFT) - 1));
}

static unsigned long
zone_hs_hash(const void *obj, unsigned long seed)
{
	const struct zone_key *k = zone_untag(obj);

	return zone__hash_seed(seed, k->s, k->len);
}

static bool
zone_hs_compare(const void *a, const void *b)
{
	const struct zone_key *x, *y;

	if (((uintptr_t)a ^ (uintptr_t)b) >> ZONE_TAG_SHIFT)
		return false; /* different hash tags: no memory touched */
	x = zone_untag(a);
	y = zone_untag(b);
	return x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
}

static void *
zone_hs_malloc(size_t n)
{
	return zone_big_alloc(n);
}

/* ck_hs does not resize in place; kept for the interface */
static void *
zone_hs_realloc(void *p, size_t old, size_t n, bool defer)
{
	void *q = zone_big_alloc(n);

	(void)defer;
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	zone_big_free(p, old);
	p = NULL;
	return q;
}

/* defer is ignored: a set only resizes while the loader still owns it alone. */
static void
zone_hs_free(void *p, size_t n, bool defer)
{
	(void)defer;
	zone_big_free(p, n);
}

bool
zone__hs_init(struct zone_table *t, ck_hs_t *hs, size_t n)
{
	unsigned long size = (unsigned long)(n < 8 ? 16 : 2 * n + 2);
	unsigned long pow = 16;

	while (pow < size)
		pow *= 2;
	t->hs_bytes += pow * (sizeof(void *) + 1); /* slot + probe bound, estimate */
	return ck_hs_init(hs, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, zone_hs_hash, zone_hs_compare,
			  &t->alloc, size, t->seed);
}

/* An empty domain filter of ZONE_FILTER_BITS bits for each of n keys; false on ENOMEM. */
static bool
zone_filter_init(struct zone_table *t, struct zone_filter *f, size_t n)
{
	size_t nlines = (n * ZONE_FILTER_BITS + 511) / 512;

	f->nlines = nlines > 0 ? nlines : 1;
	if (f->nlines > UINT32_MAX) /* zone__filter_line scales 32 hash bits */
		return false;
	f->words = aligned_alloc(64, f->nlines * 64);
	if (f->words == NULL)
		return false;
	memset(f->words, 0, f->nlines * 64);
	t->hs_bytes += f->nlines * 64;
	return true;
}

struct zone_table *
zone__table_new(size_t ndomains, size_t nrules, size_t ntls, size_t nwild)
{
	struct zone_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->alloc.malloc = zone_hs_malloc;
	t->alloc.realloc = zone_hs_realloc;
	t->alloc.free = zone_hs_free;
	t->wild_min_dots = UINT8_MAX;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (unsigned long)(uintptr_t)t ^ 0x5bd1e9955bd1e995ull;
	if (!zone__set_init(t, &t->domains, ndomains))
		goto err_domains;
	if (!zone_filter_init(t, &t->dfilter, ndomains))
		goto err_filter;
	if (!zone__set_init(t, &t->rules, nrules))
		goto err_rules;
	t->rules.rule_keys = true;
	if (!zone__hs_init(t, &t->tls, ntls))
		goto err_tls;
	if (!zone__hs_init(t, &t->wild, nwild * 2))
		goto err_wild;
	return t;

err_wild:
	ck_hs_destroy(&t->tls);
err_tls:
	zone__set_fini(&t->rules);
err_rules:
	free(t->dfilter.words);
err_filter:
	zone__set_fini(&t->domains);
err_domains:
	free(t);
	t = NULL;
	return NULL;
}

void *
zone__get(const struct zone_table *t, const ck_hs_t *hs, const char *s, size_t len)
{
	unsigned long h = zone__hash_seed(t->seed, s, len);
	struct zone_key probe = {.s = s, .len = (uint32_t)len};
	/* ck_hs_get takes a non-const set but only reads it */
	void *e = ck_hs_get((ck_hs_t *)(uintptr_t)hs, h,
			    (const void *)((uintptr_t)&probe | zone_tag_of(h)));

	return (void *)(uintptr_t)zone_untag(e);
}

bool
zone__set_init(struct zone_table *t, struct zone_set *s, size_t n)
{
	size_t slots = (2 * n + 2 + ZONE_SET_LINE - 1) / ZONE_SET_LINE * ZONE_SET_LINE;

	if (slots > UINT32_MAX) /* zone__set_index scales 32 hash bits */
		return false;
	s->slots = zone_big_alloc(slots * sizeof(*s->slots));
	if (s->slots == NULL)
		return false;
	if (slots * sizeof(*s->slots) < ZONE_HUGE) /* malloc; a fresh mapping is zero */
		memset(s->slots, 0, slots * sizeof(*s->slots));
	s->nslots = slots;
	s->n = 0;
	t->hs_bytes += slots * sizeof(*s->slots);
	return true;
}

void
zone__set_fini(struct zone_set *s)
{
	if (s->slots != NULL)
		zone_big_free(s->slots, s->nslots * sizeof(*s->slots));
	s->slots = NULL;
}

/* Store a tagged entry into the first free slot of h's probe sequence. */
static void
zone_set_store(struct zone_set *s, unsigned long h, uint64_t tagged)
{
	size_t i = zone__set_index(s, h);

	while (s->slots[i] != 0)
		i = zone__set_next(s, i);
	s->slots[i] = tagged;
}

/* Double the slots of s (the loader's, before publication: nobody reads it yet). */
static bool
zone_set_grow(struct zone_table *t, struct zone_set *s)
{
	struct zone_set old = *s;
	size_t slots = 2 * old.nslots;

	if (slots > UINT32_MAX)
		return false;
	s->slots = zone_big_alloc(slots * sizeof(*s->slots));
	if (s->slots == NULL) {
		*s = old;
		return false;
	}
	if (slots * sizeof(*s->slots) < ZONE_HUGE)
		memset(s->slots, 0, slots * sizeof(*s->slots));
	s->nslots = slots;
	for (size_t i = 0; i < old.nslots; i++) {
		const struct zone_key *k = zone__set_at(&old, i);

		if (k != NULL)
			zone_set_store(s, zone__set_hash(t, s, k->s, k->len), old.slots[i]);
	}
	zone__set_fini(&old);
	t->hs_bytes += (slots - old.nslots) * sizeof(*s->slots);
	return true;
}

bool
zone__domain_put(struct zone_table *t, unsigned long h, const struct zone_key *entry)
{
	uint64_t m;
	size_t w;

	if (!zone__set_put(t, &t->domains, h, entry))
		return false;
	w = zone__filter_word(&t->dfilter, h, &m);
	t->dfilter.words[w] |= m;
	return true;
}

bool
zone__set_put(struct zone_table *t, struct zone_set *s, unsigned long h,
	      const struct zone_key *entry)
{
	BUG_ON((uintptr_t)entry >> ZONE_SET_TAG_SHIFT != 0); /* no room for the tag */
	/* keep at least half the slots empty: probes stay short. The prescan sizes the
	 * set; this grows it only for lines the prescan miscounts (an indented zone line) */
	if (s->n + 1 > s->nslots / 2 && !zone_set_grow(t, s))
		return false;
	zone_set_store(s, h,
		       (uint64_t)(uintptr_t)entry | ((uint64_t)h >> ZONE_SET_TAG_SHIFT)
							<< ZONE_SET_TAG_SHIFT);
	s->n++;
	return true;
}

const struct zone_key *
zone__set_at(const struct zone_set *s, size_t i)
{
	return (const struct zone_key *)(uintptr_t)(s->slots[i] & ZONE_SET_PTR_MASK);
}

bool
zone__put(struct zone_table *t, ck_hs_t *hs, const struct zone_key *entry)
{
	unsigned long h = zone__hash_seed(t->seed, entry->s, entry->len);

	BUG_ON((uintptr_t)entry >> ZONE_TAG_SHIFT != 0); /* no room for the tag */
	return ck_hs_put(hs, h, (const void *)((uintptr_t)entry | zone_tag_of(h)));
}

void
zone_table_free(struct zone_table *t)
{
	if (t == NULL)
		return;
	ck_hs_destroy(&t->wild);
	ck_hs_destroy(&t->tls);
	zone__set_fini(&t->rules);
	zone__set_fini(&t->domains);
	free(t->dfilter.words);
	zone__arena_fini(&t->arena);
	zone__arena_fini(&t->cold);
	free(t);
	t = NULL;
}

size_t
zone_table_nzones(const struct zone_table *t)
{
	return t->nzones;
}

size_t
zone_table_nrules(const struct zone_table *t)
{
	return t->nrules;
}

size_t
zone_table_memory(const struct zone_table *t)
{
	return sizeof(*t) + t->arena.total + t->cold.total + t->hs_bytes;
}

enum zone_tls_policy
zone_table_tls_policy(const struct zone_table *t, const char *domain, size_t len)
{
	char canon[ZONE_MAX_DOMAIN + 1], ulabel[ZONE_MAX_DOMAIN + 1];
	size_t clen, ulen;
	const char *why;
	const struct zone_tls *e;

	if (zone__domain_canon(domain, len, canon, &clen, ulabel, &ulen, &why) != 0)
		return ZONE_TLS_UNSET;
	e = zone__get(t, &t->tls, canon, clen);
	return e != NULL ? (enum zone_tls_policy)e->policy : ZONE_TLS_UNSET;
}

const char *
zone_action_name(enum zone_action a)
{
	switch (a) {
	case ZONE_FORWARD:
		return "forward";
	case ZONE_DROP:
		return "drop";
	case ZONE_REJECT:
		return "reject";
	case ZONE_DEFER:
		return "defer";
	case ZONE_REFUSE:
		break;
	}
	return "refuse";
}
