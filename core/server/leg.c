/*
 * leg.c -- see leg.h.
 */
#include "core/server/leg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/check.h"
#include "core/server/nexthop.h"
#include "core/server/session.h"
#include "core/server/shard.h"
#include "core/server/upstream.h"
#include "route/zone.h"

static void leg_connect(struct session *s, unsigned l);

/* Find the session's leg whose resolution result is r. */
static int
leg_of_result(const struct session *s, const struct nexthop_result *r)
{
	for (unsigned l = 0; s->tx != NULL && l < s->tx->nlegs; l++)
		if (s->tx->legs[l].nh == r)
			return (int)l;
	return -1;
}

/* Give up on leg l: no address left. Its RCPTs are answered by the session. */
static void
leg_give_up(struct session *s, unsigned l, const char *reply)
{
	struct tx_leg *leg = &s->tx->legs[l];

	free(leg->nh);
	leg->nh = NULL;
	sess_leg_failed(s, l, reply);
}

/* The destination's addresses are known (or are not): connect to the first. */
static void
leg_resolved(void *arg, struct nexthop_result *r)
{
	struct session *s = arg;
	int l = leg_of_result(s, r);

	BUG_ON(l < 0);
	s->tx->legs[l].nh_handle = 0;
	if (r->status != NEXTHOP_OK) {
		shard_warn(s->sh, "nexthop", "%s: %s", s->tx->legs[l].key,
			   nexthop_status_name(r->status));
		leg_give_up(s, (unsigned)l, r->reply);
		return;
	}
	s->tx->legs[l].next_cand = 0;
	leg_connect(s, (unsigned)l);
}

/*
 * Leg l's TLS policy: the relay host's (upstream-tls); for MX delivery the
 * zone file's tls-policy line for the destination domain, else tls-policy.
 */
static enum config_tls
leg_tls_policy(const struct session *s, const char *host)
{
	const struct config *cfg = s->sh->cfg;

	if (!cfg->mx_delivery)
		return cfg->upstream_tls;
	switch (zone_table_tls_policy(s->tx->zones.table, host, strlen(host))) {
	case ZONE_TLS_NONE:
		return CONFIG_TLS_NONE;
	case ZONE_TLS_OPPORTUNISTIC:
		return CONFIG_TLS_OPPORTUNISTIC;
	case ZONE_TLS_VERIFY:
		return CONFIG_TLS_VERIFY;
	case ZONE_TLS_UNSET:
		break;
	}
	return cfg->tls_policy;
}

/* The relay host's name (upstream HOST:PORT or [V6]:PORT): what TLS checks. */
static void
relay_name(const struct config *cfg, char *out, size_t cap)
{
	const char *hp = cfg->upstream, *end = strrchr(hp, ':');
	size_t n = end != NULL ? (size_t)(end - hp) : strlen(hp);

	if (hp[0] == '[' && n >= 2 && hp[n - 1] == ']') {
		hp++;
		n -= 2;
	}
	snprintf(out, cap, "%.*s", (int)n, hp);
}

/*
 * Open an upstream to leg l's next address (the relay host, or the next
 * candidate of its resolution), skipping addresses whose socket cannot
 * even be made; the queued RCPTs go to it.
 */
static void
leg_connect(struct session *s, unsigned l)
{
	struct tx_leg *leg = &s->tx->legs[l];
	const struct config *cfg = s->sh->cfg;
	struct up_target t = {.key = leg->key, .tls = (enum config_tls)leg->tls};
	char name[UP_NAME_MAX];
	int err = -ENOENT;
	bool first = false; /* the first try of this leg's addresses */

	if (!cfg->mx_delivery) {
		relay_name(cfg, name, sizeof(name));
		t.addr = (const struct sockaddr *)&cfg->upstream_addr;
		t.addrlen = cfg->upstream_len;
		t.name = name;
		err = up_open(s->sh, s, l, &t, &leg->up);
	} else {
		const struct nexthop_cand *c;

		first = leg->next_cand == 0;
		while (err < 0 && (c = nexthop_next(leg->nh, &leg->next_cand)) != NULL) {
			if (config_own_address(cfg, &c->addr) >= 0) {
				err = -ELOOP; /* an MX of ours: the mail would come back */
				continue;
			}
			t.addr = (const struct sockaddr *)&c->addr;
			t.addrlen = c->addrlen;
			t.name = nexthop_host(leg->nh, c); /* the MX host: its certificate */
			err = up_open(s->sh, s, l, &t, &leg->up);
		}
	}
	if (err == -ELOOP && first) {
		/* every address is ours (RFC 5321 5.1); Postfix says the same */
		shard_warn(s->sh, "upstream", "%s: mail loops back to myself", leg->key);
		leg_give_up(s, l, "554 5.4.6 Mail for this destination loops back to myself");
		return;
	}
	if (err < 0) {
		shard_warn(s->sh, "upstream", "%s: cannot open a connection: %s", leg->key,
			   strerror(-err));
		leg_give_up(s, l, "451 4.4.1 Destination unreachable, try again later");
		return;
	}
	leg->nsent = 0; /* a new connection: every queued RCPT goes to it */
	leg_flush(s, l, leg->want_data);
}

/*
 * Start leg l: an idle pooled connection to the same destination (when
 * use_pool), else the relay host, else a resolution of the destination's
 * next hop.
 */
static void
leg_start(struct session *s, unsigned l, bool use_pool)
{
	struct tx_leg *leg = &s->tx->legs[l];
	struct shard *sh = s->sh;
	const char *host = leg->host;
	char ip[ZONE_MAX_DOMAIN + 3];
	struct nexthop_req req = {.port = leg->port, .mx_port = (uint16_t)sh->cfg->mx_port};
	int err;

	if (use_pool) {
		leg->deadline_ms = sh->now_ms + sh->cfg->upstream_timeout_ms;
		leg->up = up_pool_take(sh, s, l, leg->key);
		leg->pooled = leg->up != NULL;
		if (leg->pooled)
			return;
	}
	if (!sh->cfg->mx_delivery) {
		leg_connect(s, l);
		return;
	}
	if (host[0] == '[') {
		/* "[192.0.2.7]" or "[IPv6:2001:db8::7]": the address itself */
		size_t n = strlen(host) - 2, skip = strncasecmp(host + 1, "IPv6:", 5) == 0 ? 5 : 0;

		snprintf(ip, sizeof(ip), "%.*s", (int)(n - skip), host + 1 + skip);
		req.literal = true;
		host = ip;
	}
	req.host = host;
	free(leg->nh); /* a restart: the old addresses were all tried or dropped */
	leg->nh = malloc(sizeof(*leg->nh));
	err = leg->nh == NULL
		  ? -ENOMEM
		  : nexthop_start(&sh->nexthop, &req, leg->nh, leg_resolved, s, &leg->nh_handle);
	if (err < 0) {
		shard_warn(sh, "nexthop", "%s: cannot resolve: %s", leg->key, strerror(-err));
		leg_give_up(s, l,
			    err == -EINVAL ? "550 5.1.2 Bad destination host"
					   : "451 4.3.0 Insufficient system resources");
	}
}

int
leg_for(struct session *s, const char *addr, uint16_t port)
{
	struct smtp_tx *tx = s->tx;
	const struct config *cfg = s->sh->cfg;
	const char *at = strrchr(addr, '@');
	const char *host = at != NULL ? at + 1 : addr;
	struct tx_leg *leg;
	unsigned l;

	if (!cfg->mx_delivery) {
		host = cfg->upstream; /* one relay takes all */
		port = 0;
	}
	/* the transaction's zone table is fixed, so host and port decide the policy too */
	for (l = 0; l < tx->nlegs; l++) {
		leg = &tx->legs[l];
		if (leg->port != port || strcasecmp(leg->host, host) != 0)
			continue;
		/* an idle leg whose connection went away reconnects */
		if (!leg->failed && leg->up == NULL && leg->nh_handle == 0)
			leg_start(s, l, true);
		return (int)l;
	}
	if (tx->nlegs == TX_MAX_LEGS)
		return -1;
	leg = &tx->legs[tx->nlegs];
	memset(leg, 0, sizeof(*leg));
	snprintf(leg->host, sizeof(leg->host), "%s", host);
	leg->port = port;
	leg->tls = (uint8_t)leg_tls_policy(s, host);
	/* the policy is part of the pool key: a pooled connection was opened under it */
	if (cfg->mx_delivery)
		snprintf(leg->key, sizeof(leg->key), "%s:%u/%s", host, (unsigned)port,
			 config_tls_name((enum config_tls)leg->tls));
	else
		snprintf(leg->key, sizeof(leg->key), "%s", cfg->upstream);
	l = tx->nlegs++;
	leg_start(s, l, true);
	return (int)l;
}

void
leg_queue(struct session *s, unsigned l, unsigned g)
{
	struct tx_leg *leg = &s->tx->legs[l];

	BUG_ON(leg->nwait >= ZONE_MAX_GROUPS);
	leg->fifo[(leg->fifo_head + leg->nwait++) % ZONE_MAX_GROUPS] = (uint8_t)g;
}

void
leg_flush(struct session *s, unsigned l, bool then_data)
{
	struct tx_leg *leg = &s->tx->legs[l];
	const struct rcpt_route *rt = &s->tx->route;
	const char *addrs[ZONE_MAX_GROUPS];
	unsigned n = 0;

	leg->want_data = then_data;
	if (leg->up == NULL || leg->nsent == leg->nwait)
		return; /* not connected yet: leg_connect() flushes */
	for (unsigned i = leg->nsent; i < leg->nwait; i++) {
		unsigned g = leg->fifo[(leg->fifo_head + i) % ZONE_MAX_GROUPS];

		addrs[n++] = rt->text->data + rt->cand[g][rt->tried[g]];
	}
	leg->nsent = leg->nwait;
	up_rcpts(leg->up, addrs, n, then_data);
}

unsigned
leg_pop(struct session *s, unsigned l)
{
	struct tx_leg *leg = &s->tx->legs[l];
	unsigned g;

	BUG_ON(leg->nwait == 0);
	g = leg->fifo[leg->fifo_head];
	leg->fifo_head = (uint8_t)((leg->fifo_head + 1) % ZONE_MAX_GROUPS);
	leg->nwait--;
	if (leg->nsent != 0) /* a failed leg's queue may hold RCPTs never sent */
		leg->nsent--;
	return g;
}

bool
leg_retry(struct session *s, unsigned l)
{
	struct tx_leg *leg = &s->tx->legs[l];

	leg->up = NULL; /* it frees itself */
	if (s->sh->now_ms >= leg->deadline_ms)
		return false;
	if (leg->pooled) {
		/* a pooled connection the server had closed: start afresh, once
		 * (a start that fails at once answers the queued RCPTs itself) */
		leg->pooled = false;
		leg_start(s, l, false);
		return true;
	}
	if (leg->nh == NULL || leg->next_cand >= leg->nh->ncand)
		return false;
	leg_connect(s, l);
	return true;
}

void
legs_release(struct session *s)
{
	struct smtp_tx *tx = s->tx;

	for (unsigned l = 0; tx != NULL && l < tx->nlegs; l++) {
		struct tx_leg *leg = &tx->legs[l];

		if (leg->nh_handle != 0)
			nexthop_cancel(&s->sh->nexthop, leg->nh_handle);
		leg->nh_handle = 0;
		free(leg->nh);
		leg->nh = NULL;
		/* up_rset() that fails has let the connection go itself */
		if (leg->up != NULL && (!up_is_usable(leg->up) || up_rset(leg->up)))
			up_release(leg->up);
		leg->up = NULL;
	}
	if (tx != NULL)
		tx->nlegs = 0;
}
