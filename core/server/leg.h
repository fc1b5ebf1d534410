/*
 * leg.h -- the connection side of a transaction's fan-out (issue 5): one
 * "leg" per destination host, each with its own upstream transaction.
 *
 * A forward rule's destinations may live on several hosts; RFC 5321 gives
 * each host its own transaction, so a client transaction becomes up to
 * TX_MAX_LEGS upstream ones, opened at RCPT time in parallel. A leg is
 * keyed by the destination's domain and explicit port (or, with a relay
 * host configured, the relay host: one leg takes everything). It finds an
 * upstream for its key: an idle pooled connection first (no DNS, no
 * handshake), else the addresses core/server/nexthop gives, tried in order;
 * the next one when a connect fails or the greeting is refused, as long as
 * none of the transaction's commands went out on the failed one.
 *
 * The RCPTs a leg carries are route groups (session.h, struct rcpt_route):
 * a FIFO per leg matches the upstream's in-order replies to them, and a
 * leg that has no upstream yet keeps them until it has one. Everything a
 * leg learns goes back to the session (session.h: sess_up_*, sess_leg_*);
 * the session decides what the client is told.
 *
 * Lifetime: legs live in the transaction; legs_release() lets their
 * upstreams go (to the pool when idle) and cancels DNS; nothing calls back
 * after it.
 */
#ifndef SLUICE_CORE_SERVER_LEG_H
#define SLUICE_CORE_SERVER_LEG_H

#include <stdbool.h>
#include <stdint.h>

struct session;

/*
 * The leg for destination `addr` (local@domain, literals as local@[ip];
 * explicit port apart) of s's transaction, added and started if new.
 * Returns its index, or -1 when the transaction already has TX_MAX_LEGS.
 */
int leg_for(struct session *s, const char *addr, uint16_t port);

/* Put route group g (its current candidate) on leg l; leg_flush() sends it. */
void leg_queue(struct session *s, unsigned l, unsigned g);

/*
 * Hand leg l's queued RCPTs to its upstream (if it has one yet). With
 * then_data the client pipelined DATA behind them and no RCPT follows.
 */
void leg_flush(struct session *s, unsigned l, bool then_data);

/* The route group at the head of leg l's queue, taken off it: the one its
 * upstream's RCPT reply is for (or its failure). */
unsigned leg_pop(struct session *s, unsigned l);

/*
 * Leg l's upstream failed; nothing_sent: none of the transaction's commands
 * had gone out on it. true when the leg took the next address and will
 * answer from there; false when the failure stands.
 */
bool leg_retry(struct session *s, unsigned l);

/* Let every leg's upstream go (pool or QUIT, after RSET) and cancel DNS. */
void legs_release(struct session *s);

#endif /* SLUICE_CORE_SERVER_LEG_H */
