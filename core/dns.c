/*
 * dns.c -- see dns.h.
 *
 * A request is a waiter (pool slot, handle = slot and generation) hung on a
 * cache entry. An entry is PENDING while its c-ares queries run (waiters on
 * entry->waiting) and DONE afterwards; completing moves its waiters to the
 * ready list, which only dns_dispatch() empties. Entries pinned by waiters
 * (nref > 0) or PENDING are never evicted; idle DONE entries sit on the LRU
 * list. c-ares calls back with the entry itself as its argument, which is
 * safe because a PENDING entry is never freed and dns_fini() ignores the
 * ARES_EDESTRUCTION answers.
 */
#include "core/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include <ares.h>
#include <xxhash.h>

#include "core/check.h"
#include "core/timer.h"

/* RR types and class, by number: no dependency on a nameser.h flavour. */
enum { RR_A = 1, RR_SOA = 6, RR_MX = 15, RR_AAAA = 28, CLASS_IN = 1 };

#define DNS_EDNS_PAYLOAD 1232	    /* DNS flag day 2020: no IP fragmentation */
#define DNS_TTL_LIMIT	 0x7fffffff /* RFC 2181 8: a TTL with the top bit set means 0 */
#define DNS_HDR_LEN	 12	    /* id, flags, four counts */
#define DNS_RR_FIXED	 10	    /* type, class, ttl, rdlength */
#define DNS_SOA_FIXED	 20	    /* serial, refresh, retry, expire, minimum */
#define DNS_LABEL_MAX	 63

enum dns_type { DNS_T_MX, DNS_T_ADDR };
enum dns_state { DNS_E_PENDING, DNS_E_DONE };
enum { PART_V6, PART_V4 }; /* the two queries of an address lookup */

struct dns_mx_data {
	uint8_t n;			 /* hosts kept, <= DNS_MX_MAX_HOSTS */
	uint16_t pref[DNS_MX_MAX_HOSTS]; /* ascending */
	uint16_t off[DNS_MX_MAX_HOSTS];	 /* of each host in names */
	char names[DNS_MX_NAME_BYTES];	 /* NUL-terminated host names */
};

struct dns_addr_data {
	uint8_t n6, n4;		/* addresses kept */
	uint8_t part_status[2]; /* enum dns_status of the AAAA and A queries */
	uint32_t part_ttl_s[2]; /* their cache lifetimes */
	struct in6_addr v6[DNS_ADDR_MAX_V6];
	struct in_addr v4[DNS_ADDR_MAX_V4];
};

struct dns_entry {
	struct dns *d;			 /* owner, for c-ares callbacks */
	struct dns_entry *hnext;	 /* hash chain */
	struct dns_entry *lprev, *lnext; /* LRU links; only while idle (DONE, nref == 0) */
	struct dns_wlist waiting;	 /* requests waiting for the answer; PENDING only */
	uint64_t hash;			 /* of (type, name) */
	uint64_t expires_ms;		 /* DONE: end of the cache lifetime (owner's clock) */
	uint32_t slot;			 /* in d->entries */
	uint32_t nref;			 /* requests that point here (waiting or ready) */
	uint32_t ttl_s;			 /* lifetime granted when the answer came */
	uint8_t type;			 /* enum dns_type */
	uint8_t state;			 /* enum dns_state */
	uint8_t status;			 /* enum dns_status; valid once DONE */
	uint8_t outstanding;		 /* c-ares queries not answered yet */
	uint8_t namelen;		 /* strlen(name) */
	char name[DNS_NAME_MAX + 1];	 /* lowercase, no trailing dot */
	union {
		struct dns_mx_data mx;
		struct dns_addr_data addr;
	} u;
};

union dns_cb {
	dns_mx_cb *mx;	   /* DNS_T_MX */
	dns_addr_cb *addr; /* DNS_T_ADDR */
};

struct dns_waiter {
	struct dns_waiter *prev, *next; /* on entry->waiting (PENDING) or d->ready (DONE) */
	struct dns_entry *entry;	/* pinned (nref) while the waiter exists */
	union dns_cb cb;		/* by entry->type */
	void *arg;
	uint32_t slot; /* in d->waiters */
};

struct msg_ttls {
	bool has_answer; /* answer holds at least one record */
	bool has_soa;	 /* authority holds an SOA */
	uint32_t answer; /* smallest TTL in the answer section */
	uint32_t soa;	 /* RFC 2308 negative TTL: min(SOA TTL, MINIMUM) */
};

static inline void
dns_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint32_t
min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* --- configuration --- */

void
dns_config_default(struct dns_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = 2000;
	cfg->tries = 2;
	cfg->cache_entries = 4096;
	cfg->max_requests = 4096;
	cfg->ttl_min_s = 5;
	cfg->ttl_max_s = 86400;
	cfg->neg_ttl_max_s = 10800; /* RFC 2308 5: one to three hours */
	cfg->neg_ttl_default_s = 60;
	cfg->fail_ttl_s = 5;
}

/* "1".."65535" into *port; 0 or -EINVAL. */
static int
parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 5; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (i == 0 || s[i] != '\0' || v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* Copy s[0..n) into a bounded buffer and parse it as an address of `family`. */
static int
parse_addr(int family, const char *s, size_t n, struct dns_server *out)
{
	char buf[INET6_ADDRSTRLEN];

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(family, buf, &out->addr) != 1)
		return -EINVAL;
	out->family = family;
	return 0;
}

int
dns_server_parse(const char *s, struct dns_server *out)
{
	const char *end, *port = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	out->port = 53;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return -EINVAL;
		err = parse_addr(AF_INET6, s + 1, (size_t)(end - s - 1), out);
		port = end[1] == ':' ? end + 2 : NULL;
	} else if (strchr(s, ':') != strrchr(s, ':')) {
		/* two colons or more: a bare IPv6 address, no port */
		err = parse_addr(AF_INET6, s, strlen(s), out);
	} else {
		end = strchr(s, ':');
		err = parse_addr(AF_INET, s, end != NULL ? (size_t)(end - s) : strlen(s), out);
		port = end != NULL ? end + 1 : NULL;
	}
	if (err == 0 && port != NULL)
		err = parse_port(port, &out->port);
	return err;
}

static bool
config_is_valid(const struct dns_config *cfg)
{
	if (cfg->nservers > DNS_MAX_SERVERS)
		return false;
	for (unsigned i = 0; i < cfg->nservers; i++)
		if (cfg->servers[i].family != AF_INET && cfg->servers[i].family != AF_INET6)
			return false;
	return cfg->timeout_ms >= 1 && cfg->timeout_ms <= INT_MAX && cfg->tries >= 1 &&
	       cfg->tries <= INT_MAX && cfg->cache_entries >= 1 &&
	       cfg->cache_entries <= (UINT32_MAX >> 1) && cfg->max_requests >= 1 &&
	       cfg->max_requests < UINT32_MAX && cfg->ttl_min_s <= cfg->ttl_max_s;
}

/* --- lists --- */

static void
wlist_append(struct dns_wlist *l, struct dns_waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
}

static void
wlist_remove(struct dns_wlist *l, struct dns_waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->prev = w->next = NULL;
}

/* Move every waiter of `src` to the end of `dst`, in order. */
static void
wlist_splice(struct dns_wlist *dst, struct dns_wlist *src)
{
	if (src->head == NULL)
		return;
	if (dst->tail != NULL) {
		dst->tail->next = src->head;
		src->head->prev = dst->tail;
	} else {
		dst->head = src->head;
	}
	dst->tail = src->tail;
	src->head = src->tail = NULL;
}

static void
lru_push(struct dns *d, struct dns_entry *e)
{
	e->lprev = NULL;
	e->lnext = d->lru_head;
	if (d->lru_head != NULL)
		d->lru_head->lprev = e;
	else
		d->lru_tail = e;
	d->lru_head = e;
}

static void
lru_remove(struct dns *d, struct dns_entry *e)
{
	if (e->lprev != NULL)
		e->lprev->lnext = e->lnext;
	else
		d->lru_head = e->lnext;
	if (e->lnext != NULL)
		e->lnext->lprev = e->lprev;
	else
		d->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

/* --- cache entries --- */

/*
 * Lowercase `in` into key (DNS_NAME_MAX + 1 bytes) without its trailing dot.
 * Its length, or -EINVAL for a name dns.h does not accept.
 */
static int
name_normalize(const char *in, char *key)
{
	size_t len = strnlen(in, DNS_NAME_MAX + 2), label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > DNS_LABEL_MAX)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
		key[i] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
	}
	if (label == 0) /* "a.." : an empty last label */
		return -EINVAL;
	key[len] = '\0';
	return (int)len;
}

static uint64_t
key_hash(const struct dns *d, unsigned type, const char *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, d->hash_seed + type);
}

static struct dns_entry **
bucket_of(struct dns *d, uint64_t hash)
{
	return &d->buckets[hash & (d->nbuckets - 1)];
}

static struct dns_entry *
cache_find(struct dns *d, unsigned type, const char *key, size_t len, uint64_t hash)
{
	for (struct dns_entry *e = *bucket_of(d, hash); e != NULL; e = e->hnext)
		if (e->hash == hash && e->type == type && e->namelen == len &&
		    memcmp(e->name, key, len) == 0)
			return e;
	return NULL;
}

static bool
entry_is_expired(const struct dns *d, const struct dns_entry *e)
{
	return d->now_ms >= e->expires_ms;
}

/* Unhash and release an entry nobody points to (idle, off the LRU list). */
static void
entry_free(struct dns *d, struct dns_entry *e)
{
	struct dns_entry **pp = bucket_of(d, e->hash);

	BUG_ON(e->nref != 0 || e->state != DNS_E_DONE);
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	pool_put(&d->entries, e->slot);
}

/* A PENDING entry for (type, key), evicting the LRU entry if full; NULL if all are busy. */
static struct dns_entry *
entry_new(struct dns *d, unsigned type, const char *key, size_t len, uint64_t hash)
{
	struct dns_entry **head = bucket_of(d, hash);
	struct dns_entry *e, *victim;
	uint32_t slot;

	e = pool_get(&d->entries, &slot);
	if (e == NULL) {
		victim = d->lru_tail;
		if (victim == NULL)
			return NULL;
		lru_remove(d, victim);
		entry_free(d, victim);
		dns_count(&d->stats.evictions, 1);
		e = pool_get(&d->entries, &slot);
	}
	e->d = d;
	e->slot = slot;
	e->hash = hash;
	e->type = (uint8_t)type;
	e->state = DNS_E_PENDING;
	e->namelen = (uint8_t)len;
	memcpy(e->name, key, len + 1);
	e->hnext = *head;
	*head = e;
	return e;
}

static void
entry_pin(struct dns *d, struct dns_entry *e)
{
	if (e->nref++ == 0 && e->state == DNS_E_DONE)
		lru_remove(d, e);
}

/* A DONE entry nobody points to: on the LRU list, or away if it is not to be cached. */
static void
entry_idle(struct dns *d, struct dns_entry *e)
{
	if (entry_is_expired(d, e))
		entry_free(d, e);
	else
		lru_push(d, e);
}

static void
entry_unpin(struct dns *d, struct dns_entry *e)
{
	BUG_ON(e->nref == 0);
	if (--e->nref == 0 && e->state == DNS_E_DONE)
		entry_idle(d, e);
}

/* --- answers --- */

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get_ttl(const unsigned char *p)
{
	uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];

	return v > DNS_TTL_LIMIT ? 0 : v;
}

/* Offset just past the name at m[off], or 0 if it leaves the message. */
static size_t
msg_skip_name(const unsigned char *m, size_t len, size_t off)
{
	while (off < len) {
		unsigned c = m[off];

		if (c == 0)
			return off + 1;
		if ((c & 0xc0) == 0xc0) /* a compression pointer ends the name */
			return off + 2 <= len ? off + 2 : 0;
		if ((c & 0xc0) != 0) /* reserved label types */
			return 0;
		off += 1 + c;
	}
	return 0;
}

/*
 * Collect the TTLs of a DNS message (c-ares parses records but does not
 * give the TTL of MX answers, nor the SOA of negative ones). Bounded: every
 * step moves forward through `len` bytes; it stops at the first malformed
 * byte and keeps what it found.
 */
static void
msg_scan(const unsigned char *m, size_t len, struct msg_ttls *t)
{
	size_t off = DNS_HDR_LEN, rd;
	unsigned qd, an, ns, type, rdlen, ttl;

	if (m == NULL || len < DNS_HDR_LEN)
		return;
	qd = get16(m + 4);
	an = get16(m + 6);
	ns = get16(m + 8);
	for (unsigned i = 0; i < qd; i++) {
		off = msg_skip_name(m, len, off);
		if (off == 0 || off + 4 > len)
			return;
		off += 4; /* type, class */
	}
	for (unsigned i = 0; i < an + ns; i++) {
		off = msg_skip_name(m, len, off);
		if (off == 0 || off + DNS_RR_FIXED > len)
			return;
		type = get16(m + off);
		ttl = get_ttl(m + off + 4);
		rdlen = get16(m + off + 8);
		rd = off + DNS_RR_FIXED;
		if (rd + rdlen > len)
			return;
		if (i < an) {
			t->answer = t->has_answer ? min_u32(t->answer, ttl) : ttl;
			t->has_answer = true;
		} else if (type == RR_SOA && rdlen >= 2 + DNS_SOA_FIXED) {
			/* MINIMUM is the last field, after two names we need not read */
			t->soa = min_u32(ttl, get_ttl(m + rd + rdlen - 4));
			t->has_soa = true;
		}
		off = rd + rdlen;
	}
}

static enum dns_status
status_of(int ares_status)
{
	switch (ares_status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENODATA:
		return DNS_NODATA;
	case ARES_ENOTFOUND:
		return DNS_NXDOMAIN;
	case ARES_ETIMEOUT:
		return DNS_TIMEOUT;
	default: /* SERVFAIL, REFUSED, FORMERR, unreachable, bad answer, no memory */
		return DNS_TEMPFAIL;
	}
}

static bool
status_is_failure(enum dns_status st)
{
	return st == DNS_TEMPFAIL || st == DNS_TIMEOUT;
}

/* How long an answer of status `st` stays cached (dns.h "Cache"). */
static uint32_t
answer_ttl(const struct dns *d, enum dns_status st, const unsigned char *abuf, int alen)
{
	struct msg_ttls t = {0};

	msg_scan(abuf, alen > 0 ? (size_t)alen : 0, &t);
	switch (st) {
	case DNS_OK:
	case DNS_NULLMX:
		if (t.answer < d->cfg.ttl_min_s)
			return d->cfg.ttl_min_s;
		return min_u32(t.answer, d->cfg.ttl_max_s);
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		return t.has_soa ? min_u32(t.soa, d->cfg.neg_ttl_max_s) : d->cfg.neg_ttl_default_s;
	default:
		return d->cfg.fail_ttl_s;
	}
}

static bool
host_is_root(const char *host)
{
	return host[0] == '\0' || (host[0] == '.' && host[1] == '\0');
}

/*
 * Keep the `*n` most preferred records in best[], ascending and stable (equal
 * preferences stay in answer order). False if one was dropped for room.
 */
static bool
mx_insert(const struct ares_mx_reply **best, unsigned *n, const struct ares_mx_reply *r)
{
	unsigned pos = *n;
	bool dropped = false;

	while (pos > 0 && best[pos - 1]->priority > r->priority)
		pos--;
	if (pos == DNS_MX_MAX_HOSTS)
		return false;
	if (*n == DNS_MX_MAX_HOSTS) {
		dropped = true;
		(*n)--;
	}
	memmove(&best[pos + 1], &best[pos], (*n - pos) * sizeof(best[0]));
	best[pos] = r;
	(*n)++;
	return !dropped;
}

/* Copy the sorted hosts into mx while their names fit; false if some did not. */
static bool
mx_store(struct dns_mx_data *mx, const struct ares_mx_reply **best, unsigned n)
{
	size_t used = 0;

	for (mx->n = 0; mx->n < n; mx->n++) {
		const char *h = best[mx->n]->host;
		size_t len = strlen(h);

		if (len > 0 && h[len - 1] == '.')
			len--;
		if (len > DNS_NAME_MAX || used + len + 1 > sizeof(mx->names))
			return false;
		for (size_t i = 0; i < len; i++)
			mx->names[used + i] =
			    (char)(h[i] >= 'A' && h[i] <= 'Z' ? h[i] | 0x20 : h[i]);
		mx->names[used + len] = '\0';
		mx->pref[mx->n] = best[mx->n]->priority;
		mx->off[mx->n] = (uint16_t)used;
		used += len + 1;
	}
	return true;
}

/*
 * Parse an MX answer into mx. Hosts "." (RFC 7505) are skipped; an answer
 * with no other host is a null MX, whatever its preference.
 */
static enum dns_status
mx_parse(struct dns *d, struct dns_mx_data *mx, const unsigned char *abuf, int alen)
{
	const struct ares_mx_reply *best[DNS_MX_MAX_HOSTS];
	struct ares_mx_reply *list = NULL;
	unsigned n = 0;
	bool complete = true;
	int rc;

	rc = ares_parse_mx_reply(abuf, alen, &list);
	if (rc != ARES_SUCCESS)
		return rc == ARES_ENODATA ? DNS_NODATA : DNS_TEMPFAIL;
	for (const struct ares_mx_reply *r = list; r != NULL; r = r->next)
		if (!host_is_root(r->host))
			complete &= mx_insert(best, &n, r);
	complete &= mx_store(mx, best, n);
	ares_free_data(list);
	if (!complete)
		dns_count(&d->stats.truncated, 1);
	return n == 0 ? DNS_NULLMX : DNS_OK;
}

static enum dns_status
addr_parse_v6(struct dns *d, struct dns_addr_data *a, const unsigned char *abuf, int alen)
{
	struct ares_addr6ttl t[DNS_ADDR_MAX_V6 + 1]; /* one more shows truncation */
	int n = (int)ARRAY_SIZE(t), rc;

	rc = ares_parse_aaaa_reply(abuf, alen, NULL, t, &n);
	if (rc != ARES_SUCCESS)
		return rc == ARES_ENODATA ? DNS_NODATA : DNS_TEMPFAIL;
	if (n > DNS_ADDR_MAX_V6) {
		n = DNS_ADDR_MAX_V6;
		dns_count(&d->stats.truncated, 1);
	}
	for (int i = 0; i < n; i++)
		memcpy(&a->v6[i], &t[i].ip6addr, sizeof(a->v6[i]));
	a->n6 = (uint8_t)n;
	return n > 0 ? DNS_OK : DNS_NODATA;
}

static enum dns_status
addr_parse_v4(struct dns *d, struct dns_addr_data *a, const unsigned char *abuf, int alen)
{
	struct ares_addrttl t[DNS_ADDR_MAX_V4 + 1]; /* one more shows truncation */
	int n = (int)ARRAY_SIZE(t), rc;

	rc = ares_parse_a_reply(abuf, alen, NULL, t, &n);
	if (rc != ARES_SUCCESS)
		return rc == ARES_ENODATA ? DNS_NODATA : DNS_TEMPFAIL;
	if (n > DNS_ADDR_MAX_V4) {
		n = DNS_ADDR_MAX_V4;
		dns_count(&d->stats.truncated, 1);
	}
	for (int i = 0; i < n; i++)
		a->v4[i] = t[i].ipaddr;
	a->n4 = (uint8_t)n;
	return n > 0 ? DNS_OK : DNS_NODATA;
}

/*
 * One status for the AAAA and A halves: any address makes it DNS_OK, else
 * a failure wins (retry later), else NXDOMAIN only if both say so. The
 * lifetime is the shorter one, so a failed half is retried after
 * fail_ttl_s and a missing family after its negative TTL.
 */
static void
addr_combine(struct dns_entry *e)
{
	const struct dns_addr_data *a = &e->u.addr;
	enum dns_status s6 = a->part_status[PART_V6], s4 = a->part_status[PART_V4];

	if (a->n6 + a->n4 > 0)
		e->status = DNS_OK;
	else if (s6 == DNS_TEMPFAIL || s4 == DNS_TEMPFAIL)
		e->status = DNS_TEMPFAIL;
	else if (s6 == DNS_TIMEOUT || s4 == DNS_TIMEOUT)
		e->status = DNS_TIMEOUT;
	else if (s6 == DNS_NXDOMAIN && s4 == DNS_NXDOMAIN)
		e->status = DNS_NXDOMAIN;
	else
		e->status = DNS_NODATA;
	e->ttl_s = min_u32(a->part_ttl_s[PART_V6], a->part_ttl_s[PART_V4]);
}

/* One c-ares query of `e` answered; the last one completes the entry. */
static void
entry_answered(struct dns *d, struct dns_entry *e)
{
	BUG_ON(e->outstanding == 0 || e->state != DNS_E_PENDING);
	if (--e->outstanding > 0)
		return;
	if (e->type == DNS_T_ADDR)
		addr_combine(e);
	if (status_is_failure(e->status))
		dns_count(&d->stats.failures, 1);
	e->state = DNS_E_DONE;
	e->expires_ms = d->now_ms + (uint64_t)e->ttl_s * 1000;
	wlist_splice(&d->ready, &e->waiting);
	if (e->nref == 0) /* every request was cancelled: keep the answer for others */
		entry_idle(d, e);
}

static void
on_mx_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_entry *e = arg;
	enum dns_status st;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION) /* dns_fini(): nobody to tell */
		return;
	st = status_of(status);
	if (st == DNS_OK)
		st = mx_parse(e->d, &e->u.mx, abuf, alen);
	e->status = (uint8_t)st;
	e->ttl_s = answer_ttl(e->d, st, abuf, alen);
	entry_answered(e->d, e);
}

static void
on_addr_answer(struct dns_entry *e, int part, int status, const unsigned char *abuf, int alen)
{
	struct dns_addr_data *a = &e->u.addr;
	enum dns_status st = status_of(status);

	if (st == DNS_OK)
		st = part == PART_V6 ? addr_parse_v6(e->d, a, abuf, alen)
				     : addr_parse_v4(e->d, a, abuf, alen);
	a->part_status[part] = (uint8_t)st;
	a->part_ttl_s[part] = answer_ttl(e->d, st, abuf, alen);
	entry_answered(e->d, e);
}

static void
on_aaaa_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	if (status != ARES_EDESTRUCTION)
		on_addr_answer(arg, PART_V6, status, abuf, alen);
}

static void
on_a_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	if (status != ARES_EDESTRUCTION)
		on_addr_answer(arg, PART_V4, status, abuf, alen);
}

/* Send the queries of a new PENDING entry. c-ares may answer before returning. */
static void
lookup_start(struct dns *d, struct dns_entry *e)
{
	if (e->type == DNS_T_MX) {
		e->outstanding = 1;
		dns_count(&d->stats.sent, 1);
		ares_query(d->channel, e->name, CLASS_IN, RR_MX, on_mx_answer, e);
	} else {
		e->outstanding = 2; /* before the first query: it may complete at once */
		dns_count(&d->stats.sent, 2);
		ares_query(d->channel, e->name, CLASS_IN, RR_AAAA, on_aaaa_answer, e);
		ares_query(d->channel, e->name, CLASS_IN, RR_A, on_a_answer, e);
	}
}

/* --- requests --- */

static uint64_t
handle_of(const struct dns *d, const struct dns_waiter *w)
{
	return (uint64_t)pool_gen(&d->waiters, w->slot) << 32 | ((uint64_t)w->slot + 1);
}

/* Hang `w` on the entry for (type, key): a hit, a lookup in flight, or a new lookup. */
static int
request_attach(struct dns *d, struct dns_waiter *w, unsigned type, const char *key, size_t len)
{
	uint64_t hash = key_hash(d, type, key, len);
	struct dns_entry *e = cache_find(d, type, key, len, hash);
	bool fresh = false;

	if (e != NULL && e->state == DNS_E_DONE && e->nref == 0 && entry_is_expired(d, e)) {
		lru_remove(d, e);
		entry_free(d, e);
		e = NULL;
	}
	if (e == NULL) {
		e = entry_new(d, type, key, len, hash);
		if (e == NULL)
			return -ENOBUFS;
		fresh = true;
	} else if (e->state == DNS_E_PENDING) {
		dns_count(&d->stats.coalesced, 1);
	} else {
		/* an expired entry still pinned was answered in this loop iteration */
		dns_count(&d->stats.hits, 1);
	}
	w->entry = e;
	entry_pin(d, e);
	wlist_append(e->state == DNS_E_PENDING ? &e->waiting : &d->ready, w);
	if (fresh) /* after the waiter is on the entry: c-ares may answer at once */
		lookup_start(d, e);
	return 0;
}

static int
request_new(struct dns *d, unsigned type, const char *name, union dns_cb cb, void *arg,
	    uint64_t *handle)
{
	char key[DNS_NAME_MAX + 1];
	struct dns_waiter *w;
	uint32_t slot;
	int len, err;

	len = name_normalize(name, key);
	if (len < 0)
		return len;
	w = pool_get(&d->waiters, &slot);
	if (w == NULL)
		return -ENOBUFS;
	w->slot = slot;
	w->arg = arg;
	w->cb = cb;
	err = request_attach(d, w, type, key, (size_t)len);
	if (err != 0) {
		pool_put(&d->waiters, slot);
		return err;
	}
	dns_count(&d->stats.requests, 1);
	if (handle != NULL)
		*handle = handle_of(d, w);
	return 0;
}

int
dns_query_mx(struct dns *d, const char *domain, dns_mx_cb *cb, void *arg, uint64_t *handle)
{
	return request_new(d, DNS_T_MX, domain, (union dns_cb){.mx = cb}, arg, handle);
}

int
dns_query_addr(struct dns *d, const char *host, dns_addr_cb *cb, void *arg, uint64_t *handle)
{
	return request_new(d, DNS_T_ADDR, host, (union dns_cb){.addr = cb}, arg, handle);
}

bool
dns_cancel(struct dns *d, uint64_t handle)
{
	struct dns_waiter *w;
	struct dns_entry *e;

	if (handle == 0)
		return false;
	w = pool_lookup(&d->waiters, (uint32_t)handle - 1, (uint32_t)(handle >> 32));
	if (w == NULL)
		return false;
	e = w->entry;
	wlist_remove(e->state == DNS_E_PENDING ? &e->waiting : &d->ready, w);
	pool_put(&d->waiters, w->slot);
	entry_unpin(d, e);
	dns_count(&d->stats.cancelled, 1);
	return true;
}

/* --- delivery --- */

/* splitmix64: small, fast, good enough to shuffle MX hosts. */
static uint64_t
rng_next(struct dns *d)
{
	uint64_t z = (d->rng += 0x9e3779b97f4a7c15);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
	return z ^ (z >> 31);
}

/* Fisher-Yates within each run of equal preference (RFC 5321 5.1). */
static void
mx_shuffle(struct dns *d, struct dns_mx_host *h, unsigned n)
{
	for (unsigned lo = 0, hi; lo < n; lo = hi) {
		for (hi = lo + 1; hi < n && h[hi].pref == h[lo].pref; hi++)
			;
		for (unsigned i = hi - 1; i > lo; i--) {
			unsigned j = lo + (unsigned)((rng_next(d) >> 32) * (i - lo + 1) >> 32);
			struct dns_mx_host t = h[i];

			h[i] = h[j];
			h[j] = t;
		}
	}
}

static uint32_t
ttl_left(const struct dns *d, const struct dns_entry *e)
{
	if (entry_is_expired(d, e))
		return 0;
	return (uint32_t)((e->expires_ms - d->now_ms + 999) / 1000);
}

static void
deliver_mx(struct dns *d, const struct dns_entry *e, dns_mx_cb *cb, void *arg)
{
	struct dns_mx_host hosts[DNS_MX_MAX_HOSTS];
	struct dns_mx_result r = {
	    .status = (enum dns_status)e->status,
	    .ttl_s = ttl_left(d, e),
	    .hosts = hosts,
	};

	if (r.status == DNS_OK) {
		r.nhosts = e->u.mx.n;
		for (unsigned i = 0; i < r.nhosts; i++) {
			hosts[i].pref = e->u.mx.pref[i];
			hosts[i].host = e->u.mx.names + e->u.mx.off[i];
		}
		mx_shuffle(d, hosts, r.nhosts);
	}
	cb(arg, &r);
}

static void
deliver_addr(struct dns *d, const struct dns_entry *e, dns_addr_cb *cb, void *arg)
{
	struct dns_addr_result r = {
	    .status = (enum dns_status)e->status,
	    .ttl_s = ttl_left(d, e),
	    .n6 = e->u.addr.n6,
	    .n4 = e->u.addr.n4,
	    .v6 = e->u.addr.v6,
	    .v4 = e->u.addr.v4,
	};

	cb(arg, &r);
}

void
dns_dispatch(struct dns *d)
{
	struct dns_waiter *w;

	BUG_ON(d->dispatching);
	d->dispatching = true;
	while ((w = d->ready.head) != NULL) {
		struct dns_entry *e = w->entry; /* stays pinned through the callback */
		union dns_cb cb = w->cb;
		void *arg = w->arg;

		/* freed first: a cancel of this handle from the callback is a no-op */
		wlist_remove(&d->ready, w);
		pool_put(&d->waiters, w->slot);
		if (e->type == DNS_T_MX)
			deliver_mx(d, e, cb.mx, arg);
		else
			deliver_addr(d, e, cb.addr, arg);
		entry_unpin(d, e);
	}
	d->dispatching = false;
}

/* --- the owner's loop --- */

static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;

	d->io.watch(d->io.ctx, fd, (readable ? POLLIN : 0u) | (writable ? POLLOUT : 0u));
}

void
dns_on_ready(struct dns *d, int fd, unsigned revents)
{
	/* errors and hang-ups are read, so c-ares sees them and moves on */
	ares_socket_t r = revents & (POLLIN | POLLERR | POLLHUP) ? fd : ARES_SOCKET_BAD;
	ares_socket_t w = revents & POLLOUT ? fd : ARES_SOCKET_BAD;

	BUG_ON(d->dispatching);
	ares_process_fd(d->channel, r, w);
	dns_dispatch(d);
}

void
dns_tick(struct dns *d, uint64_t now_ms)
{
	BUG_ON(d->dispatching);
	if (now_ms > d->now_ms)
		d->now_ms = now_ms;
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_dispatch(d);
}

int
dns_timeout_ms(struct dns *d)
{
	struct timeval tv, *t = ares_timeout(d->channel, NULL, &tv);
	long long ms;

	if (t == NULL)
		return -1;
	ms = (long long)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* --- setup --- */

static int
channel_set_servers(struct dns *d)
{
	struct ares_addr_port_node nodes[DNS_MAX_SERVERS];

	memset(nodes, 0, sizeof(nodes));
	for (unsigned i = 0; i < d->cfg.nservers; i++) {
		const struct dns_server *s = &d->cfg.servers[i];

		nodes[i].next = i + 1 < d->cfg.nservers ? &nodes[i + 1] : NULL;
		nodes[i].family = s->family;
		if (s->family == AF_INET)
			nodes[i].addr.addr4 = s->addr.v4;
		else
			memcpy(&nodes[i].addr.addr6, &s->addr.v6, sizeof(s->addr.v6));
		nodes[i].udp_port = s->port;
		nodes[i].tcp_port = s->port;
	}
	return ares_set_servers_ports(d->channel, nodes) == ARES_SUCCESS ? 0 : -EIO;
}

/*
 * ares_library_init() is not called: on POSIX it does nothing, and its
 * global reference count is not thread-safe across shards.
 */
static int
channel_init(struct dns *d)
{
	struct ares_options o;
	ares_channel ch;
	int rc, err;

	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
	o.timeout = (int)d->cfg.timeout_ms;
	o.tries = (int)d->cfg.tries;
	o.ednspsz = DNS_EDNS_PAYLOAD;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = d;
	rc = ares_init_options(&ch, &o,
			       ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				   ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS)
		return rc == ARES_ENOMEM ? -ENOMEM : -EIO;
	d->channel = ch;
	/* configured servers replace the ones c-ares read from resolv.conf */
	if (d->cfg.nservers > 0) {
		err = channel_set_servers(d);
		if (err != 0) {
			ares_destroy(ch);
			d->channel = NULL;
			return err;
		}
	}
	return 0;
}

static void
seed_init(struct dns *d)
{
	uint64_t s[2];

	if (d->cfg.seed != 0) {
		s[0] = d->cfg.seed;
		s[1] = d->cfg.seed ^ 0x5851f42d4c957f2d;
	} else if (getrandom(s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		/* entropy not ready this early: the clock still differs per shard and run */
		s[0] = timer_now_ns() ^ (uintptr_t)d;
		s[1] = s[0] * 0x9e3779b97f4a7c15;
	}
	d->rng = s[0];
	d->hash_seed = s[1];
}

int
dns_init(struct dns *d, const struct dns_config *cfg, const struct dns_io *io)
{
	int err;

	memset(d, 0, sizeof(*d));
	if (!config_is_valid(cfg) || io->watch == NULL)
		return -EINVAL;
	d->cfg = *cfg;
	d->io = *io;
	d->now_ms = timer_now_ms();
	seed_init(d);
	err = pool_init(&d->entries, cfg->cache_entries, sizeof(struct dns_entry));
	if (err != 0)
		goto err_entries;
	err = pool_init(&d->waiters, cfg->max_requests, sizeof(struct dns_waiter));
	if (err != 0)
		goto err_waiters;
	for (d->nbuckets = 1; d->nbuckets < cfg->cache_entries; d->nbuckets <<= 1)
		;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	if (d->buckets == NULL) {
		err = -ENOMEM;
		goto err_buckets;
	}
	err = channel_init(d);
	if (err != 0)
		goto err_channel;
	return 0;

err_channel:
	free(d->buckets);
	d->buckets = NULL;
err_buckets:
	pool_fini(&d->waiters);
err_waiters:
	pool_fini(&d->entries);
err_entries:
	return err;
}

/* Give every request and entry back to its pool: pool.h wants none in use at pool_fini(). */
static void
cache_clear(struct dns *d)
{
	struct dns_waiter *w;
	struct dns_entry *e;

	while ((w = d->ready.head) != NULL) {
		wlist_remove(&d->ready, w);
		pool_put(&d->waiters, w->slot);
	}
	for (uint32_t b = 0; b < d->nbuckets; b++) {
		while ((e = d->buckets[b]) != NULL) {
			while ((w = e->waiting.head) != NULL) {
				wlist_remove(&e->waiting, w);
				pool_put(&d->waiters, w->slot);
			}
			d->buckets[b] = e->hnext;
			pool_put(&d->entries, e->slot);
		}
	}
	d->lru_head = d->lru_tail = NULL;
}

void
dns_fini(struct dns *d)
{
	BUG_ON(d->dispatching);
	ares_destroy(d->channel); /* answers ARES_EDESTRUCTION, then watch(fd, 0) */
	d->channel = NULL;
	cache_clear(d);
	BUG_ON(d->waiters.used != 0 || d->entries.used != 0);
	free(d->buckets);
	d->buckets = NULL;
	pool_fini(&d->waiters);
	pool_fini(&d->entries);
}
