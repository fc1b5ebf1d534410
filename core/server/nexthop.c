/*
 * nexthop.c -- see nexthop.h.
 *
 * A resolution is a pool object holding the hosts to reach, in list order,
 * each with the core/dns request for its addresses and, once answered, the
 * addresses kept. core/dns calls back with the resolution (the MX answer)
 * or one of its hosts (an address answer) as the argument. That is safe
 * because every request still outstanding is cancelled before the object
 * goes back to the pool (res_release), and the object is given back before
 * the caller's callback runs, so a cancel from inside it is a no-op.
 *
 * A resolution sits on exactly one list: nh->live while core/dns works for
 * it, nh->ready (literals) until nexthop_dispatch() completes it.
 */
#include "core/server/nexthop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "core/check.h"

struct nh_host {
	struct nexthop_res *res; /* owner, for core/dns callbacks */
	uint64_t handle;	 /* core/dns request; 0 once answered */
	uint16_t pref;		 /* MX preference */
	uint16_t name;		 /* offset of the host name in res->names */
	uint8_t status;		 /* enum dns_status; valid once answered */
	bool answered;		 /* status and addresses are final */
	uint8_t n6, n4;		 /* addresses kept, <= NEXTHOP_MAX_PER_FAMILY each */
	struct in6_addr v6[NEXTHOP_MAX_PER_FAMILY];
	struct in_addr v4[NEXTHOP_MAX_PER_FAMILY];
};

struct nexthop_res {
	struct nexthop *nh;			/* owner */
	struct nexthop_res *prev, *next;	/* on nh->live or nh->ready (list_of) */
	struct nexthop_result *out;		/* the caller's; written just before cb */
	nexthop_cb *cb;				/* the caller's callback, and its argument */
	void *arg;				/* ... */
	uint64_t mx_handle;			/* core/dns MX request; 0 once answered */
	uint32_t slot;				/* in nh->res */
	uint16_t port;				/* of every candidate, host order */
	uint8_t route;				/* enum nexthop_route */
	uint8_t nhosts;				/* hosts[] in use */
	bool truncated;				/* an answer had more addresses than a host keeps */
	struct nh_host hosts[DNS_MX_MAX_HOSTS]; /* in list order */
	char names[NEXTHOP_NAME_BYTES];		/* host names; the destination alone until MX hosts
						   replace it */
};

static const char *const nexthop_replies[] = {
    [NEXTHOP_OK] = NULL,
    [NEXTHOP_NULLMX] = "556 5.1.10 Recipient address has null MX",
    [NEXTHOP_NXDOMAIN] = "550 5.1.2 Destination domain does not exist",
    [NEXTHOP_NOADDR] = "550 5.4.4 Unable to route: the destination has no mail server address",
    [NEXTHOP_TEMPFAIL] = "451 4.4.3 Destination lookup failed, try again later",
};

static const char *const nexthop_names[] = {
    [NEXTHOP_OK] = "ok",	 [NEXTHOP_NULLMX] = "nullmx",	  [NEXTHOP_NXDOMAIN] = "nxdomain",
    [NEXTHOP_NOADDR] = "noaddr", [NEXTHOP_TEMPFAIL] = "tempfail",
};

static inline void
nh_count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

const char *
nexthop_status_name(enum nexthop_status st)
{
	return nexthop_names[st];
}

/* --- lists --- */

static struct nexthop_list *
list_of(struct nexthop *nh, const struct nexthop_res *res)
{
	return res->route == NEXTHOP_LITERAL ? &nh->ready : &nh->live;
}

static void
list_append(struct nexthop_list *l, struct nexthop_res *res)
{
	res->next = NULL;
	res->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = res;
	else
		l->head = res;
	l->tail = res;
}

static void
list_remove(struct nexthop_list *l, struct nexthop_res *res)
{
	if (res->prev != NULL)
		res->prev->next = res->next;
	else
		l->head = res->next;
	if (res->next != NULL)
		res->next->prev = res->prev;
	else
		l->tail = res->prev;
	res->prev = res->next = NULL;
}

/* --- the result --- */

static unsigned
host_naddr(const struct nh_host *h)
{
	return (unsigned)h->n6 + h->n4;
}

static bool
dns_failed(enum dns_status st)
{
	return st == DNS_TEMPFAIL || st == DNS_TIMEOUT;
}

/* The next candidate of `out`, from host h (name at offset `name`), sockaddr zeroed. */
static struct nexthop_cand *
cand_new(struct nexthop_result *out, const struct nh_host *h, uint16_t name, socklen_t len)
{
	struct nexthop_cand *c = &out->cand[out->ncand++];

	memset(&c->addr, 0, sizeof(c->addr));
	c->addrlen = len;
	c->pref = h->pref;
	c->host = name;
	return c;
}

/*
 * Append the addresses of h, IPv6 first (the rule for a host with
 * both), then IPv4, while the list has room; false if some did not fit.
 */
static bool
host_append(struct nexthop_result *out, const struct nexthop_res *res, const struct nh_host *h,
	    size_t *used)
{
	const char *name = res->names + h->name;
	size_t len = strlen(name) + 1;
	uint16_t off = (uint16_t)*used;

	BUG_ON(*used + len > sizeof(out->names)); /* a subset of res->names, as large */
	memcpy(out->names + *used, name, len);
	*used += len;
	for (unsigned i = 0; i < h->n6; i++) {
		if (out->ncand == NEXTHOP_MAX_CANDIDATES)
			return false;
		struct nexthop_cand *c = cand_new(out, h, off, sizeof(struct sockaddr_in6));
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->addr;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(res->port);
		s6->sin6_addr = h->v6[i];
	}
	for (unsigned i = 0; i < h->n4; i++) {
		if (out->ncand == NEXTHOP_MAX_CANDIDATES)
			return false;
		struct nexthop_cand *c = cand_new(out, h, off, sizeof(struct sockaddr_in));
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addr;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(res->port);
		s4->sin_addr = h->v4[i];
	}
	return true;
}

/*
 * The candidates of the answered hosts, in list order, up to the cap.
 * Hosts after the cap that have (or, not answered, may have) addresses
 * make the result truncated.
 */
static void
result_build(const struct nexthop_res *res, struct nexthop_result *out)
{
	size_t used = 0;
	unsigned i;

	out->ncand = 0;
	out->truncated = res->truncated;
	for (i = 0; i < res->nhosts && out->ncand < NEXTHOP_MAX_CANDIDATES; i++) {
		const struct nh_host *h = &res->hosts[i];

		if (!h->answered)
			break;
		if (host_naddr(h) > 0 && !host_append(out, res, h, &used))
			out->truncated = true;
	}
	for (; i < res->nhosts; i++)
		if (!res->hosts[i].answered || host_naddr(&res->hosts[i]) > 0)
			out->truncated = true;
}

/* Why no candidate is left, every host having answered. */
static enum nexthop_status
res_failure(const struct nexthop_res *res)
{
	for (unsigned i = 0; i < res->nhosts; i++)
		if (dns_failed(res->hosts[i].status))
			return NEXTHOP_TEMPFAIL;
	/* an MX host that does not exist is just a host without addresses */
	if (res->route != NEXTHOP_MX && res->hosts[0].status == DNS_NXDOMAIN)
		return NEXTHOP_NXDOMAIN;
	return NEXTHOP_NOADDR;
}

/*
 * The list is known: every host answered, or those answered so far, taken
 * in order, already fill it (later hosts could only be cut off).
 */
static bool
res_is_complete(const struct nexthop_res *res)
{
	unsigned n = 0;

	for (unsigned i = 0; i < res->nhosts; i++) {
		if (!res->hosts[i].answered)
			return false;
		n += host_naddr(&res->hosts[i]);
		if (n >= NEXTHOP_MAX_CANDIDATES)
			return true;
	}
	return true;
}

/* --- lifetime --- */

static uint64_t
handle_of(const struct nexthop *nh, const struct nexthop_res *res)
{
	return (uint64_t)pool_gen(&nh->res, res->slot) << 32 | ((uint64_t)res->slot + 1);
}

/* Cancel what core/dns still does for res, unlink it and give it back. */
static void
res_release(struct nexthop *nh, struct nexthop_res *res)
{
	dns_cancel(nh->dns, res->mx_handle);
	for (unsigned i = 0; i < res->nhosts; i++)
		dns_cancel(nh->dns, res->hosts[i].handle);
	list_remove(list_of(nh, res), res);
	pool_put(&nh->res, res->slot);
}

/* Write the outcome into the caller's result, release res, then call back. */
static void
res_finish(struct nexthop_res *res, enum nexthop_status st)
{
	struct nexthop *nh = res->nh;
	struct nexthop_result *out = res->out;
	nexthop_cb *cb = res->cb;
	void *arg = res->arg;

	out->status = st;
	out->route = (enum nexthop_route)res->route;
	out->reply = nexthop_replies[st];
	if (st != NEXTHOP_OK) {
		out->ncand = 0;
		out->truncated = false;
	}
	if (st == NEXTHOP_TEMPFAIL)
		nh_count(&nh->stats.tempfail);
	else if (st != NEXTHOP_OK)
		nh_count(&nh->stats.permfail);
	if (out->truncated)
		nh_count(&nh->stats.truncated);
	res_release(nh, res);
	cb(arg, out);
}

/* Every host the list depends on has answered: build it and call back. */
static void
res_settle(struct nexthop_res *res)
{
	result_build(res, res->out);
	res_finish(res, res->out->ncand > 0 ? NEXTHOP_OK : res_failure(res));
}

static void
res_progress(struct nexthop_res *res)
{
	if (res_is_complete(res))
		res_settle(res);
}

/* --- lookups --- */

static struct nh_host *
host_add(struct nexthop_res *res, uint16_t pref, uint16_t name)
{
	struct nh_host *h;

	BUG_ON(res->nhosts == DNS_MX_MAX_HOSTS); /* core/dns keeps no more per answer */
	h = &res->hosts[res->nhosts++];
	h->res = res;
	h->pref = pref;
	h->name = name;
	return h;
}

static void
on_addr(void *arg, const struct dns_addr_result *r)
{
	struct nh_host *h = arg;

	h->handle = 0;
	h->answered = true;
	h->status = (uint8_t)r->status;
	h->n6 = (uint8_t)(r->n6 < NEXTHOP_MAX_PER_FAMILY ? r->n6 : NEXTHOP_MAX_PER_FAMILY);
	h->n4 = (uint8_t)(r->n4 < NEXTHOP_MAX_PER_FAMILY ? r->n4 : NEXTHOP_MAX_PER_FAMILY);
	memcpy(h->v6, r->v6, h->n6 * sizeof(h->v6[0]));
	memcpy(h->v4, r->v4, h->n4 * sizeof(h->v4[0]));
	if (h->n6 < r->n6 || h->n4 < r->n4)
		h->res->truncated = true;
	res_progress(h->res);
}

static int
host_lookup(struct nh_host *h)
{
	struct nexthop_res *res = h->res;

	return dns_query_addr(res->nh->dns, res->names + h->name, on_addr, h, &h->handle);
}

/*
 * A lookup started from a core/dns callback: a refusal counts as the
 * host's answer. Out of room is the environment's fault (try later); a
 * name core/dns refuses will never have an address.
 */
static void
host_lookup_or_skip(struct nh_host *h)
{
	int err = host_lookup(h);

	if (err != 0) {
		h->answered = true;
		h->status = err == -ENOBUFS ? DNS_TEMPFAIL : DNS_NODATA;
	}
}

/* MX hosts, in core/dns's order: ask for all their addresses at once. */
static void
mx_hosts(struct nexthop_res *res, const struct dns_mx_result *r)
{
	size_t used = 0;

	for (unsigned i = 0; i < r->nhosts; i++) {
		size_t len = strlen(r->hosts[i].host) + 1;

		BUG_ON(used + len > sizeof(res->names)); /* dns.h: DNS_MX_NAME_BYTES at most */
		memcpy(res->names + used, r->hosts[i].host, len);
		host_lookup_or_skip(host_add(res, r->hosts[i].pref, (uint16_t)used));
		used += len;
	}
	res_progress(res);
}

/* RFC 5321 5.1: no MX, the domain itself (still in names) is the host, preference 0. */
static void
mx_implicit(struct nexthop_res *res)
{
	res->route = NEXTHOP_IMPLICIT;
	host_lookup_or_skip(host_add(res, 0, 0));
	res_progress(res);
}

static void
on_mx(void *arg, const struct dns_mx_result *r)
{
	struct nexthop_res *res = arg;

	res->mx_handle = 0;
	switch (r->status) {
	case DNS_OK:
		mx_hosts(res, r);
		break;
	case DNS_NODATA:
		mx_implicit(res);
		break;
	case DNS_NULLMX:
		res_finish(res, NEXTHOP_NULLMX);
		break;
	case DNS_NXDOMAIN:
		res_finish(res, NEXTHOP_NXDOMAIN);
		break;
	case DNS_TEMPFAIL:
	case DNS_TIMEOUT:
		res_finish(res, NEXTHOP_TEMPFAIL);
		break;
	}
}

/* The address is the host: answered at once, delivered by nexthop_dispatch(). */
static int
start_literal(struct nexthop_res *res)
{
	struct nh_host *h = host_add(res, 0, 0);

	res->route = NEXTHOP_LITERAL;
	h->answered = true;
	if (inet_pton(AF_INET, res->names, &h->v4[0]) == 1)
		h->n4 = 1;
	else if (inet_pton(AF_INET6, res->names, &h->v6[0]) == 1)
		h->n6 = 1;
	else
		return -EINVAL;
	return 0;
}

static int
start_explicit(struct nexthop_res *res)
{
	res->route = NEXTHOP_EXPLICIT;
	return host_lookup(host_add(res, 0, 0));
}

static int
start_mx(struct nexthop_res *res)
{
	res->route = NEXTHOP_MX;
	return dns_query_mx(res->nh->dns, res->names, on_mx, res, &res->mx_handle);
}

/* --- the API --- */

int
nexthop_init(struct nexthop *nh, struct dns *dns, uint32_t max_res)
{
	memset(nh, 0, sizeof(*nh));
	if (dns == NULL || max_res == 0 || max_res == UINT32_MAX) /* handles hold slot + 1 */
		return -EINVAL;
	nh->dns = dns;
	return pool_init(&nh->res, max_res, sizeof(struct nexthop_res));
}

void
nexthop_fini(struct nexthop *nh)
{
	BUG_ON(nh->dispatching);
	while (nh->live.head != NULL)
		res_release(nh, nh->live.head);
	while (nh->ready.head != NULL)
		res_release(nh, nh->ready.head);
	pool_fini(&nh->res);
}

int
nexthop_start(struct nexthop *nh, const struct nexthop_req *req, struct nexthop_result *out,
	      nexthop_cb *cb, void *arg, uint64_t *handle)
{
	struct nexthop_res *res;
	uint32_t slot;
	size_t len;
	int err;

	BUG_ON(out == NULL || cb == NULL);
	/* a name core/dns could take: DNS_NAME_MAX characters and a trailing dot */
	len = req->host != NULL ? strnlen(req->host, DNS_NAME_MAX + 2) : 0;
	if (len == 0 || len > DNS_NAME_MAX + 1)
		return -EINVAL;
	res = pool_get(&nh->res, &slot);
	if (res == NULL)
		return -ENOBUFS;
	res->nh = nh;
	res->slot = slot;
	res->out = out;
	res->cb = cb;
	res->arg = arg;
	res->port = req->port != 0	? req->port
		    : req->mx_port != 0 ? req->mx_port
					: NEXTHOP_SMTP_PORT;
	memcpy(res->names, req->host, len + 1);
	if (req->literal)
		err = start_literal(res);
	else if (req->port != 0)
		err = start_explicit(res);
	else
		err = start_mx(res);
	if (err != 0) {
		pool_put(&nh->res, slot);
		return err;
	}
	/* core/dns never calls back inside dns_query_*(): linking now is in time */
	list_append(list_of(nh, res), res);
	nh_count(&nh->stats.started);
	if (handle != NULL)
		*handle = handle_of(nh, res);
	return 0;
}

bool
nexthop_cancel(struct nexthop *nh, uint64_t handle)
{
	struct nexthop_res *res;

	if (handle == 0)
		return false;
	res = pool_lookup(&nh->res, (uint32_t)handle - 1, (uint32_t)(handle >> 32));
	if (res == NULL)
		return false;
	res_release(nh, res);
	nh_count(&nh->stats.cancelled);
	return true;
}

void
nexthop_dispatch(struct nexthop *nh)
{
	BUG_ON(nh->dispatching);
	nh->dispatching = true;
	for (;;) {
		dns_dispatch(nh->dns);
		if (nh->ready.head == NULL)
			break;
		/* literals; their callbacks may queue more, or core/dns cache hits: round again */
		while (nh->ready.head != NULL)
			res_settle(nh->ready.head);
	}
	nh->dispatching = false;
}
