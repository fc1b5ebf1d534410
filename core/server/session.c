/*
 * session.c -- the SMTP server session on io_uring completions.
 *
 * The input pump (Postfix's "drain all input") runs over each received
 * buffer: it frames one unit for the current mode (a command line, a DATA
 * span, BDAT octets), acts on it, and continues until the bytes run out,
 * the session pauses for its upstream, or the output is full. Bytes left
 * when it pauses are copied into a held chunk, so the provided buffer goes
 * back to the kernel before the completion handler returns (STYLE rule 3),
 * and no recv is armed until the held bytes are consumed (backpressure).
 *
 * Replies accumulate in an output chunk and are sent once per pump run,
 * which batches pipelined replies into one send (RFC 2920) without a timer.
 *
 * RFC 5321 sections: 4.1.1 (commands), 4.1.4 (order), 4.5.2 (transparency),
 * 4.5.3.2 (time-outs), 3.8 (421 on shutdown); RFC 3030 (BDAT), RFC 1870
 * (SIZE), RFC 2920 (PIPELINING), RFC 3463 (enhanced status codes).
 */
#include "core/server/session.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "auth/srs.h"
#include "core/check.h"
#include "core/dedup.h"
#include "core/jlog.h"
#include "core/server/leg.h"
#include "core/server/shard.h"
#include "core/server/upstream.h"
#include "core/server/zonectl.h"
#include "core/uop.h"
#include "proto/rfc5322_hdr.h"
#include "route/zone.h"

static void sess_resume(struct session *s);
static void sess_check_drain(struct session *s);
static void sess_tx_end(struct session *s, const char *outcome, const char *reply, size_t len);

struct session *
sess_lookup(struct shard *sh, uint32_t slot, uint32_t gen)
{
	return pool_lookup(&sh->sessions, slot, gen);
}

/* --- output --- */

static size_t
sess_out_room(const struct session *s)
{
	if (s->out == NULL)
		return s->sh->chunks.size;
	return s->sh->chunks.size - s->out->len;
}

static void
sess_flush(struct session *s)
{
	struct io_uring_sqe *sqe;

	if ((s->flags & SESS_F_SENDING) || s->out == NULL || s->out->len == 0)
		return;
	s->sending = s->out;
	s->out = NULL;
	sqe = shard_sqe(s->sh);
	io_uring_prep_send(sqe, s->fd, s->sending->data, s->sending->len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_SEND, s->slot, s->gen));
	s->flags |= SESS_F_SENDING;
	s->inflight++;
}

static void sess_close(struct session *s, const char *reason);

/* Queue raw reply bytes. Callers keep replies under SESS_REPLY_RESERVE. */
static void
sess_out(struct session *s, const char *p, size_t n)
{
	struct chunk_pool *cp = &s->sh->chunks;

	if (s->out != NULL && n > cp->size - s->out->len) {
		sess_flush(s);
		if (s->out != NULL) {
			/* both chunks full: the client does not read its replies */
			sess_close(s, "output overflow");
			return;
		}
	}
	if (s->out == NULL && (s->out = chunk_get(cp)) == NULL) {
		sess_close(s, "out of output buffers");
		return;
	}
	BUG_ON(n > cp->size - s->out->len);
	memcpy(s->out->data + s->out->len, p, n);
	s->out->len += (uint32_t)n;
}

static void sess_replyf(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queue one reply line; fmt has no CRLF. */
static void
sess_replyf(struct session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	sess_out(s, line, (size_t)n);
}

/* Queue one fixed reply line (no CRLF in text). */
static void
sess_reply(struct session *s, const char *text)
{
	char line[1024];
	size_t n = strlen(text);

	/* the common case: a fixed reply, copied without a printf */
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	memcpy(line, text, n);
	memcpy(line + n, "\r\n", 2);
	sess_out(s, line, n + 2);
}

/* --- logging --- */

static const char *const state_names[] = {"HELO", "IDLE", "MAIL", "RCPT", "QUIT"};
static const char *const rx_names[] = {"command", "DATA", "BDAT", "paused"};

/* Where the session is, for logs and time-out replies (Postfix's "after RCPT"). */
static const char *
sess_where(const struct session *s)
{
	return s->rx == RX_COMMAND ? state_names[s->state] : rx_names[s->rx];
}

/* Start a tx or session line with the fields both carry; false if not logged. */
static bool
sess_log_begin(const struct session *s, struct jlog *j, char *buf, size_t cap, const char *event)
{
	if (s->sh->cfg->log_level < CONFIG_LOG_INFO)
		return false;
	jlog_begin(j, buf, cap, event);
	jlog_u64(j, "shard", s->sh->id);
	jlog_cstr(j, "session", s->idtext);
	jlog_cstr(j, "client", s->peer_ip);
	jlog_cstr(j, "helo", s->helo);
	return true;
}

static void
sess_log_tx(struct session *s, const char *outcome, const char *reply, size_t reply_len)
{
	struct smtp_tx *tx = s->tx;
	char buf[SHARD_LOG_LINE];
	struct jlog j;

	if (!sess_log_begin(s, &j, buf, sizeof(buf), "tx"))
		return;
	jlog_u64(&j, "tx", s->ntx);
	jlog_cstr(&j, "from", tx->from);
	jlog_strv(&j, "rcpts", tx->rcpts, tx->rcpts_len);
	if (tx->rcpts_truncated)
		jlog_bool(&j, "rcpts_truncated", true);
	jlog_strv(&j, "dests", tx->dests, tx->dests_len);
	if (tx->dests_truncated)
		jlog_bool(&j, "dests_truncated", true);
	jlog_u64(&j, "nrcpt", tx->nrcpt);
	jlog_u64(&j, "accepted_rcpts", tx->naccepted);
	jlog_u64(&j, "dropped_rcpts", tx->ndropped);
	jlog_u64(&j, "size", tx->data.size ? tx->data.size : tx->stuff.size);
	if (tx->spool_file)
		jlog_cstr(&j, "spool", "file"); /* past spool-memory: spilled to spool-dir */
	jlog_cstr(&j, "outcome", outcome);
	/* the first line of the reply, without CRLF */
	if (reply != NULL) {
		size_t n = 0;

		while (n < reply_len && reply[n] != '\r' && reply[n] != '\n')
			n++;
		jlog_str(&j, "reply", reply, n);
	} else {
		jlog_null(&j, "reply");
	}
	jlog_ms(&j, "duration_ms", timer_now_ns() - tx->started_ns);
	shard_log(s->sh, buf, jlog_end(&j));
}

static void
sess_log_session(struct session *s)
{
	char buf[SHARD_LOG_LINE];
	struct jlog j;

	if (!sess_log_begin(s, &j, buf, sizeof(buf), "session"))
		return;
	jlog_u64(&j, "transactions", s->ntx);
	jlog_u64(&j, "bytes_in", s->bytes_in);
	jlog_u64(&j, "errors", s->errors);
	jlog_cstr(&j, "reason", s->close_reason ? s->close_reason : "unknown");
	jlog_cstr(&j, "where", sess_where(s));
	jlog_ms(&j, "duration_ms", timer_now_ns() - s->started_ns);
	shard_log(s->sh, buf, jlog_end(&j));
}

/* --- lifetime --- */

static void
sess_maybe_free(struct session *s)
{
	struct shard *sh = s->sh;

	/* idempotent: a freed session's generation no longer matches its slot */
	if (pool_gen(&sh->sessions, s->slot) != s->gen)
		return;
	if (s->conn != CONN_CLOSING || s->inflight != 0)
		return;
	if (s->tx != NULL)
		sess_tx_end(s, "aborted", NULL, 0);
	sess_log_session(s);
	timer_disarm(&s->timer);
	chunk_put(&sh->chunks, s->out);
	s->out = NULL;
	chunk_put(&sh->chunks, s->sending);
	s->sending = NULL;
	chunk_put(&sh->chunks, s->held);
	s->held = NULL;
	ipcount_del(&sh->ipcount, &s->peer);
	close(s->fd);
	s->fd = -1;
	sh->live_sessions--;
	shard_count(&sh->stats.sessions, 1);
	pool_put(&sh->sessions, s->slot);
}

static void
sess_shutdown(struct session *s)
{
	if (s->flags & SESS_F_SHUT)
		return;
	s->flags |= SESS_F_SHUT;
	/* ends an armed recv with 0; queued replies still leave before the FIN */
	shutdown(s->fd, SHUT_RDWR);
}

/* Stop reading; flush what is queued, then shut down and free. */
static void
sess_close(struct session *s, const char *reason)
{
	if (s->conn == CONN_CLOSING)
		return;
	s->conn = CONN_CLOSING;
	s->close_reason = reason;
	timer_disarm(&s->timer);
	legs_release(s); /* no upstream answers a closing session */
	sess_flush(s);
	if (!(s->flags & SESS_F_SENDING))
		sess_shutdown(s);
	else /* a client that never reads its last reply must not pin the session */
		timer_arm(&s->sh->timers, &s->timer, TIMER_CLOSE, s->sh->now_ms);
	sess_maybe_free(s);
}

/* A closing session whose operations do not end: end them now. */
static void
sess_abort_io(struct session *s)
{
	struct io_uring_sqe *sqe;

	s->flags |= SESS_F_SHUT;
	shutdown(s->fd, SHUT_RDWR);
	/* a send stuck on a zero window survives shutdown: cancel it */
	sqe = shard_sqe(s->sh);
	io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_CANCEL, s->slot, s->gen));
}

/*
 * Arm the session's one recv. Message content goes straight into the spool
 * (no provided buffer, no copy: DESIGN.md "receive straight into the
 * spool"); commands, BDAT octets and an overflowing message use the shard's
 * provided buffers.
 */
static void
sess_arm_recv(struct session *s)
{
	const struct smtp_tx *tx = s->tx;
	struct io_uring_sqe *sqe;

	if (s->flags & SESS_F_RECV_ARMED)
		return;
	sqe = shard_sqe(s->sh);
	if (s->rx == RX_DATA && !tx->spool_overflow &&
	    spool_room(tx->spool) >= SESS_DATA_RECV_MIN) {
		size_t n = spool_room(tx->spool);

		io_uring_prep_recv(sqe, s->fd, tx->spool->base + tx->spool->len,
				   n < SESS_DATA_RECV_MAX ? n : SESS_DATA_RECV_MAX, 0);
		io_uring_sqe_set_data64(sqe, uop_pack(UOP_RECV_SPOOL, s->slot, s->gen));
	} else {
		io_uring_prep_recv(sqe, s->fd, NULL, s->sh->br_size, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 0;
		io_uring_sqe_set_data64(sqe, uop_pack(UOP_RECV, s->slot, s->gen));
	}
	s->flags |= SESS_F_RECV_ARMED;
	s->inflight++;
}

/* After input was processed: send replies, re-arm the deadline and recv. */
static void
sess_after_input(struct session *s)
{
	struct shard *sh = s->sh;

	/*
	 * While we wait for the upstream, replies already queued (MAIL's 250
	 * ahead of a pipelined RCPT) go out together with the answer we wait
	 * for: one send instead of two. RFC 2920 only requires a flush before
	 * waiting for the client, and the upstream's deadline bounds the wait.
	 */
	if ((s->flags & SESS_F_DRAIN) && s->rx == RX_COMMAND && s->conn == CONN_OPEN)
		sess_drain(s, true); /* the transaction ended: now say goodbye */
	if (s->rx != RX_PAUSED)
		sess_flush(s);
	if (s->conn != CONN_OPEN)
		return;
	switch (s->rx) {
	case RX_COMMAND:
		timer_arm(&sh->timers, &s->timer, TIMER_COMMAND, sh->now_ms);
		break;
	case RX_DATA:
	case RX_BDAT:
		timer_arm(&sh->timers, &s->timer, TIMER_DATA, sh->now_ms);
		break;
	case RX_PAUSED:
		timer_disarm(&s->timer); /* the upstream's own deadline applies */
		return;
	}
	if (s->held == NULL && !(s->flags & SESS_F_OUT_BLOCKED))
		sess_arm_recv(s);
}

/* A protocol error by the client: count it, and hang up after too many. */
static void
sess_error(struct session *s, const char *reply)
{
	sess_reply(s, reply);
	s->errors++;
	shard_count(&s->sh->stats.glitches, 1);
	if (s->errors >= s->sh->cfg->max_errors) {
		sess_replyf(s, "421 4.7.0 %s Error: too many errors", s->sh->cfg->hostname);
		sess_close(s, "too many errors");
	}
}

/* --- transaction --- */

/* Start a transaction (MAIL). NULL when the pool is exhausted. */
static struct smtp_tx *
sess_tx_begin(struct session *s)
{
	uint32_t slot;
	struct smtp_tx *tx = pool_get(&s->sh->txs, &slot);

	if (tx == NULL)
		return NULL;
	tx->slot = slot;
	tx->started_ns = timer_now_ns();
	tx->nlegs = 0;
	tx->ntrack = 0;
	tx->untracked = false;
	zonectl_enter(&s->sh->zone_reader, &tx->zones);
	s->tx = tx;
	return tx;
}

/*
 * The transaction ended with `reply` (already queued for the client), or
 * was abandoned (reply NULL): log it, close it upstream if it is still
 * open there, and free it.
 */
static void
sess_tx_end(struct session *s, const char *outcome, const char *reply, size_t len)
{
	struct smtp_tx *tx = s->tx;

	sess_log_tx(s, outcome, reply, len);
	s->ntx++;
	if (tx->spool != NULL)
		spool_put(&s->sh->spools, tx->spool);
	legs_release(s);
	/* after the RSET: the upstreams forgot the route's addresses */
	chunk_put(&s->sh->chunks, tx->route.text);
	zonectl_leave(&s->sh->zone_reader, &tx->zones);
	pool_put(&s->sh->txs, tx->slot);
	s->tx = NULL;
	if (s->state != SMTP_S_HELO && s->state != SMTP_S_QUIT)
		s->state = SMTP_S_IDLE;
}

/* Append a NUL-terminated string to a NUL-separated list; false if it does not fit. */
static bool
strv_add(char *list, size_t cap, uint32_t *len, const char *str)
{
	size_t n = strlen(str) + 1;

	if (n > cap - *len)
		return false;
	memcpy(list + *len, str, n);
	*len += (uint32_t)n;
	return true;
}

/* Is str in the NUL-separated list? */
static bool
strv_has(const char *list, uint32_t len, const char *str)
{
	for (uint32_t off = 0; off < len; off += (uint32_t)strlen(list + off) + 1)
		if (strcmp(list + off, str) == 0)
			return true;
	return false;
}

/* Keep an accepted recipient for the transaction's log line. */
static void
sess_tx_note_rcpt(struct smtp_tx *tx)
{
	/* on overflow the count in the log line stays exact */
	if (!strv_add(tx->rcpts, sizeof(tx->rcpts), &tx->rcpts_len, tx->rcpt))
		tx->rcpts_truncated = true;
}

static void
sess_pause(struct session *s, enum sess_wait w)
{
	s->rx = RX_PAUSED;
	s->wait = (uint8_t)w;
}

static void
sess_unpause(struct session *s)
{
	s->rx = RX_COMMAND;
	s->wait = WAIT_NONE;
}

/* Copy a span of the command line into a NUL-terminated buffer. */
static bool
span_copy(char *dst, size_t cap, const char *line, struct span sp)
{
	if (sp.len >= cap)
		return false;
	memcpy(dst, line + sp.off, sp.len);
	dst[sp.len] = '\0';
	return true;
}

/* --- commands --- */

static void
cmd_helo(struct session *s, const char *line, const struct smtp_cmd *c)
{
	const struct config *cfg = s->sh->cfg;
	bool esmtp = c->verb == SMTP_V_EHLO;

	if (s->tx != NULL)
		sess_tx_end(s, "aborted", NULL, 0); /* RFC 5321 4.1.4: EHLO resets */
	if (!span_copy(s->helo, sizeof(s->helo), line, c->arg)) {
		sess_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	s->state = SMTP_S_IDLE;
	if (!esmtp) {
		s->flags &= (uint16_t)~SESS_F_ESMTP;
		sess_replyf(s, "250 %s", cfg->hostname);
		return;
	}
	s->flags |= SESS_F_ESMTP;
	sess_replyf(s, "250-%s", cfg->hostname);
	sess_reply(s, "250-PIPELINING");
	sess_replyf(s, "250-SIZE %llu", (unsigned long long)cfg->max_message_size);
	sess_reply(s, "250-8BITMIME");
	sess_reply(s, "250-SMTPUTF8");
	sess_reply(s, "250-ENHANCEDSTATUSCODES");
	sess_reply(s, "250 CHUNKING");
}

/*
 * The reverse path the upstream gets: the sender rewritten with SRS when
 * SRS is on, so the destination's SPF check sees our domain and its
 * bounces come back to us. <> stays <>; a sender SRS cannot carry (quoted
 * local part, address literal, too long) goes as it is, as postsrsd does.
 */
static void
sess_srs_from(struct session *s, struct smtp_tx *tx)
{
	ssize_t n;

	tx->up_from = tx->from;
	if (s->sh->srs == NULL || tx->from[0] == '\0')
		return;
	n = srs_forward(s->sh->srs, tx->from, strlen(tx->from), (int64_t)time(NULL), tx->srs_from,
			sizeof(tx->srs_from));
	if (n > 0)
		tx->up_from = tx->srs_from;
}

static void
cmd_mail(struct session *s, const char *line, const struct smtp_cmd *c)
{
	const struct config *cfg = s->sh->cfg;
	struct smtp_mail_params mp;
	struct smtp_tx *tx;
	const char *reply;

	if (smtp_cmd_mail_params(line, c, &mp, &reply) < 0) {
		sess_error(s, reply);
		return;
	}
	if (mp.has_size && mp.size > cfg->max_message_size) {
		sess_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (c->path.len >= sizeof(tx->from)) {
		sess_error(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	if ((tx = sess_tx_begin(s)) == NULL) {
		shard_warn(s->sh, "transactions", "transaction pool exhausted");
		sess_reply(s, "452 4.3.1 Insufficient system resources");
		return;
	}
	span_copy(tx->from, sizeof(tx->from), line, c->path);
	sess_srs_from(s, tx);
	tx->smtputf8 = mp.smtputf8;
	tx->body_8bit = mp.body == SMTP_BODY_8BITMIME;
	tx->declared_size = mp.has_size ? mp.size : 0;
	s->state = SMTP_S_MAIL;
	sess_reply(s, "250 2.1.0 Ok");
}

/* Did the client pipeline DATA right behind the command being run? */
static bool
sess_data_follows(const struct session *s)
{
	return s->rest_len >= 6 && strncasecmp(s->rest, "DATA\r\n", 6) == 0;
}

/* --- routing a RCPT (route/zone.h decides, the upstream is asked) --- */

/* The first line of a reply, for logs. */
static size_t
reply_line_len(const char *reply, size_t len)
{
	size_t n = 0;

	while (n < len && reply[n] != '\r' && reply[n] != '\n')
		n++;
	return n;
}

/*
 * One line per RCPT that is not simply forwarded (refused, rejected,
 * deferred, dropped, refused upstream, or with unverified destinations
 * left out: reply NULL, the RCPT's own line follows): Postfix's "NOQUEUE:
 * reject" line, in JSON.
 */
static void
sess_log_rcpt(struct session *s, const char *action, const char *outcome,
	      const struct zone_decision *d, const char *reply, size_t len)
{
	char buf[SHARD_LOG_LINE];
	struct jlog j;

	if (!sess_log_begin(s, &j, buf, sizeof(buf), "rcpt"))
		return;
	jlog_u64(&j, "tx", s->ntx);
	jlog_cstr(&j, "from", s->tx->from);
	jlog_cstr(&j, "rcpt", s->tx->rcpt);
	jlog_cstr(&j, "action", action);
	jlog_cstr(&j, "outcome", outcome);
	if (d != NULL) {
		jlog_cstr(&j, "zone", d->zone);
		jlog_cstr(&j, "rule", d->rule);
		if (d->unverified != 0)
			jlog_u64(&j, "unverified_left_out", d->unverified);
	}
	if (reply != NULL)
		jlog_str(&j, "reply", reply, reply_line_len(reply, len));
	else
		jlog_null(&j, "reply");
	shard_log(s->sh, buf, jlog_end(&j));
}

/*
 * A leg's reply as the client sees it: naming the destination host (MX
 * delivery; the relay host speaks for every destination), and a 421 as
 * 451: the upstream closes its connection, our session with the client
 * goes on (a client that reads 421 would give up its other recipients).
 */
static const struct smtp_reply *
sess_leg_reply(struct session *s, unsigned l, const struct smtp_reply *r)
{
	struct smtp_reply *out = s->sh->reply_scratch;

	if (s->sh->cfg->mx_delivery)
		smtp_reply_prefix(out, r, s->tx->legs[l].host);
	else if (r->code == 421)
		*out = *r;
	else
		return r;
	if (out->code == 421)
		smtp_reply_recode(out, 451);
	return out;
}

/* A destination accepted this transaction's message already: once is enough. */
static bool
tx_has_dest(const struct smtp_tx *tx, const char *addr)
{
	return strv_has(tx->dests, tx->dests_len, addr);
}

static void route_keep_answer(struct rcpt_route *rt, const struct smtp_reply *r);

/*
 * Put group g's current candidate on the leg of its destination host, or
 * settle the group at once: a destination that accepted already (250), a
 * leg that cannot be had (its failure, then the next candidate). Returns
 * the leg used, or -1 when the group was settled.
 */
static int
route_dispatch(struct session *s, unsigned g)
{
	struct smtp_tx *tx = s->tx;
	struct rcpt_route *rt = &tx->route;
	struct smtp_reply r;

	for (;;) {
		const char *addr = rt->text->data + rt->cand[g][rt->tried[g]];
		const char *fail = "452 4.5.3 Too many destination hosts in one transaction";
		int l;

		if (tx_has_dest(tx, addr)) {
			rt->nok++;
			return -1;
		}
		l = leg_for(s, addr, rt->port[g][rt->tried[g]]);
		if (l >= 0 && !tx->legs[l].failed) {
			leg_queue(s, (unsigned)l, g);
			rt->nwait++;
			return l;
		}
		if (l >= 0) {
			fail = tx->legs[l].fail_reply;
			/* holding no recipient, it may try again for the next RCPT */
			tx->legs[l].failed = tx->legs[l].ndests != 0;
		}
		if (rt->tried[g] + 1 < rt->ncand[g]) {
			rt->tried[g]++; /* that host cannot be had: the next candidate */
			continue;
		}
		rt->nfailed++;
		if (smtp_reply_set(&r, fail))
			route_keep_answer(rt, l >= 0 ? sess_leg_reply(s, (unsigned)l, &r) : &r);
		return -1;
	}
}

/*
 * Keep the reply the client will get: a group's final refusal beats a 250
 * (not every destination will get the message), a 4xx beats a 5xx (a retry
 * may reach them all); otherwise the first one stays.
 */
static void
route_keep_answer(struct rcpt_route *rt, const struct smtp_reply *r)
{
	unsigned have = rt->answer.code / 100, cls = r->code / 100;

	if (!rt->have_answer || (have == 2 && cls != 2) || (have == 5 && cls == 4)) {
		rt->answer = *r;
		rt->have_answer = true;
	}
}

/* Every group is settled: answer the client's RCPT. */
static void
sess_route_done(struct session *s)
{
	struct smtp_tx *tx = s->tx;
	struct rcpt_route *rt = &tx->route;

	chunk_put(&s->sh->chunks, rt->text);
	rt->text = NULL;
	if (rt->nfailed == 0) {
		tx->naccepted++;
		s->state = SMTP_S_RCPT;
		sess_tx_note_rcpt(tx);
		if (rt->have_answer)
			sess_out(s, rt->answer.text, rt->answer.len);
		else
			sess_reply(s, "250 2.1.5 Ok"); /* each destination had it already */
		return;
	}
	tx->nrejected++;
	sess_out(s, rt->answer.text, rt->answer.len);
	/*
	 * Partly accepted: the destinations that said 250 stay in their
	 * upstream transaction (SMTP cannot take a RCPT back) and get the
	 * message if the transaction goes on for other recipients, while the
	 * sender will send this recipient again: they are remembered at the
	 * end of data (core/dedup), so the retry skips them.
	 */
	for (unsigned i = rt->first_track; i < tx->ntrack; i++)
		tx->track[i].orphan = true;
	sess_log_rcpt(s, "forward", rt->nok != 0 ? "partly refused upstream" : "refused upstream",
		      NULL, rt->answer.text, rt->answer.len);
}

/*
 * Take a buffer of `need` bytes for the RCPT's candidate addresses and
 * reset the route; false (451 queued) when there is none.
 */
static bool
route_begin(struct session *s, size_t need, const struct zone_decision *d)
{
	struct rcpt_route *rt = &s->tx->route;

	BUG_ON(rt->text != NULL || need > UINT16_MAX);
	rt->text = chunk_get_size(&s->sh->chunks, need);
	if (rt->text == NULL) {
		static const char busy[] = "451 4.3.0 Insufficient system resources";

		shard_warn(s->sh, "chunks", "no buffer for a RCPT's destinations");
		s->tx->nrejected++;
		sess_reply(s, busy);
		sess_log_rcpt(s, "forward", "no resources", d, busy, sizeof(busy) - 1);
		return false;
	}
	rt->ngroups = 0;
	rt->nok = rt->nfailed = rt->nwait = 0;
	rt->first_track = s->tx->ntrack;
	rt->have_answer = false;
	return true;
}

/* Add a group of n candidates (addrs[i] NUL-terminated, ports[i]) to the route. */
static void
route_add_group(struct rcpt_route *rt, const char *const addrs[], const uint16_t ports[],
		unsigned n, size_t *off)
{
	unsigned g = rt->ngroups++;

	rt->ncand[g] = (uint8_t)n;
	rt->tried[g] = 0;
	for (unsigned f = 0; f < n; f++) {
		size_t len = strlen(addrs[f]) + 1;

		rt->port[g][f] = ports[f];
		rt->cand[g][f] = (uint16_t)*off;
		memcpy(rt->text->data + *off, addrs[f], len);
		*off += len;
	}
}

/* Hand every leg's queued RCPTs to its upstream. */
static void
sess_legs_flush(struct session *s, bool then_data)
{
	for (unsigned l = 0; l < s->tx->nlegs; l++)
		leg_flush(s, l, then_data);
}

/* Send each group's first candidate to its host (or settle the groups at once). */
static void
sess_route_send(struct session *s)
{
	struct rcpt_route *rt = &s->tx->route;
	bool fallbacks = false;

	for (unsigned g = 0; g < rt->ngroups; g++) {
		fallbacks |= rt->ncand[g] > 1;
		route_dispatch(s, g);
	}
	if (rt->nwait == 0) {
		sess_route_done(s);
		return;
	}
	sess_pause(s, WAIT_RCPT);
	/* a DATA behind a RCPT that may still need a fallback would come too early */
	sess_legs_flush(s, !fallbacks && sess_data_follows(s));
}

/* A forward rule: its destination groups become the route. */
static void
sess_route_forward(struct session *s, const struct zone_decision *d)
{
	size_t need = 0, off = 0;

	for (unsigned g = 0; g < d->ngroups; g++)
		for (unsigned f = 0; f < d->groups[g].n; f++)
			need += strlen(d->groups[g].d[f].addr) + 1;
	if (!route_begin(s, need, d))
		return;
	for (unsigned g = 0; g < d->ngroups; g++) {
		const char *addrs[ZONE_MAX_FALLBACKS];
		uint16_t ports[ZONE_MAX_FALLBACKS];

		for (unsigned f = 0; f < d->groups[g].n; f++) {
			addrs[f] = d->groups[g].d[f].addr;
			ports[f] = d->groups[g].d[f].port;
		}
		route_add_group(&s->tx->route, addrs, ports, d->groups[g].n, &off);
	}
	if (d->unverified != 0)
		sess_log_rcpt(s, "forward", "unverified destinations left out", d, NULL, 0);
	sess_route_send(s);
}

/* Route the RCPT to one destination, addr (no port: its MX), as a route of one group. */
static void
sess_route_to(struct session *s, const char *addr, const struct zone_decision *d)
{
	const char *const addrs[1] = {addr};
	const uint16_t ports[1] = {0};
	size_t off = 0;

	if (route_begin(s, strlen(addr) + 1, d)) {
		route_add_group(&s->tx->route, addrs, ports, 1, &off);
		sess_route_send(s);
	}
}

/*
 * Count one bounce through SRS address addr on this shard; false once it
 * has carried srs-max-uses within its window (issue 5: a valid SRS address
 * must not become a relay for whoever saw it). Direct-mapped: a colliding
 * address takes the slot over, so the bound holds per address as long as
 * the table is not flooded with other genuine SRS addresses.
 */
static bool
sess_srs_use(struct session *s, const char *addr, int64_t now)
{
	struct shard *sh = s->sh;
	char low[SESS_MAX_PATH];
	size_t n = strlen(addr);
	uint32_t today = (uint32_t)(now / 86400);
	struct shard_srs_use *u;
	uint64_t key;

	for (size_t i = 0; i < n && i < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)addr[i]);
	key = XXH3_64bits(low, n < sizeof(low) ? n : sizeof(low)) | 1; /* never 0 (free) */
	u = &sh->srs_uses[key % SHARD_SRS_USES];
	if (u->key != key || u->until_day < today) {
		u->key = key;
		u->count = 0;
		u->until_day = today + sh->cfg->srs_max_age;
	}
	if (u->count >= sh->cfg->srs_max_uses)
		return false;
	u->count++;
	return true;
}

/*
 * RCPT to an SRS address of ours: a bounce on its way back to the sender
 * whose address we rewrote. Only null-sender mail may take that path, a
 * bounded number of times; forged and expired addresses are refused
 * 550 5.7.1. false when the address is not an SRS address of ours.
 */
static bool
sess_route_srs(struct session *s)
{
	struct smtp_tx *tx = s->tx;
	char orig[SRS_ADDR_BUF];
	int64_t now = (int64_t)time(NULL);
	enum srs_status st =
	    srs_reverse(s->sh->srs, tx->rcpt, strlen(tx->rcpt), now, orig, sizeof(orig));
	const char *reply = NULL;

	if (st == SRS_NOT_SRS)
		return false;
	if (st == SRS_EXPIRED)
		reply = "550 5.7.1 This bounce address has expired";
	else if (st != SRS_OK)
		reply = "550 5.7.1 Invalid bounce address"; /* forged or malformed */
	else if (tx->from[0] != '\0')
		reply = "550 5.7.1 This address takes bounces (null sender) only";
	else if (!sess_srs_use(s, tx->rcpt, now))
		reply = "550 5.7.1 Too many bounces to this address";
	if (reply != NULL) {
		tx->nrejected++;
		sess_reply(s, reply);
		sess_log_rcpt(s, "srs-bounce", srs_status_text(st), NULL, reply, strlen(reply));
		return true;
	}
	sess_route_to(s, orig, NULL);
	return true;
}

/*
 * RCPT to postmaster (RFC 5321 4.5.1: every server must take it, 4.1.1.3:
 * with or without a domain) that no rule of the zone covers: forwarded to
 * the configured `postmaster`. false when that does not apply.
 */
static bool
sess_route_postmaster(struct session *s, const struct zone_decision *d)
{
	const char *pm = s->sh->cfg->postmaster, *rcpt = s->tx->rcpt;

	if (pm[0] == '\0' || !(strcasecmp(rcpt, "postmaster") == 0 ||
			       (d->zone != NULL && strncasecmp(rcpt, "postmaster@", 11) == 0)))
		return false;
	sess_route_to(s, pm, d);
	return true;
}

/* Decide for tx->rcpt with the transaction's zone table, and act on it. */
static void
sess_route(struct session *s)
{
	struct smtp_tx *tx = s->tx;
	struct zone_decision *d = s->sh->decision;

	if (s->sh->srs != NULL && sess_route_srs(s))
		return;
	zone_lookup(tx->zones.table, tx->rcpt, strlen(tx->rcpt), d);
	switch (d->action) {
	case ZONE_FORWARD:
		sess_route_forward(s, d);
		return;
	case ZONE_DROP:
		tx->naccepted++;
		tx->ndropped++;
		s->state = SMTP_S_RCPT;
		sess_tx_note_rcpt(tx);
		sess_reply(s, d->reply);
		break;
	case ZONE_REFUSE:
		if (sess_route_postmaster(s, d))
			return;
		/* not ours or unknown: counted as an error, so an address harvest
		 * ends at max-errors (Postfix's smtpd_hard_error_limit) */
		tx->nrejected++;
		sess_error(s, d->reply);
		break;
	case ZONE_REJECT:
	case ZONE_DEFER:
		tx->nrejected++;
		sess_reply(s, d->reply);
		break;
	}
	sess_log_rcpt(s, zone_action_name(d->action),
		      d->action == ZONE_DROP ? "dropped" : "refused", d, d->reply,
		      strlen(d->reply));
}

static void
cmd_rcpt(struct session *s, const char *line, const struct smtp_cmd *c)
{
	struct smtp_tx *tx = s->tx;
	const char *reply;

	if (smtp_cmd_rcpt_params(line, c, &reply) < 0) {
		sess_error(s, reply);
		return;
	}
	if (c->addr.utf8 && !tx->smtputf8) {
		sess_reply(s, "553 5.6.7 Non-ASCII address needs MAIL FROM with SMTPUTF8");
		return;
	}
	if (tx->nrcpt >= s->sh->cfg->max_recipients) {
		sess_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (!span_copy(tx->rcpt, sizeof(tx->rcpt), line, c->path)) {
		sess_error(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	tx->nrcpt++;
	sess_route(s);
}

/* Start receiving content: DATA or the first BDAT of a transaction. */
static bool
sess_spool_start(struct session *s)
{
	struct smtp_tx *tx = s->tx;
	const struct config *cfg = s->sh->cfg;

	if (tx->spool != NULL)
		return true;
	tx->spool = spool_get(&s->sh->spools);
	if (tx->spool == NULL) {
		sess_reply(s, "452 4.3.1 Insufficient system storage");
		return false;
	}
	tx->spool_overflow = false;
	smtp_data_init(&tx->data, cfg->max_message_size, cfg->max_data_line_length - 2);
	smtp_stuff_init(&tx->stuff, cfg->max_message_size);
	return true;
}

/*
 * A destination host that accepted recipients lost its connection: the
 * message cannot reach it now, so the whole transaction is answered 451
 * (a retry delivers to every host; none has it yet).
 */
static bool
tx_lost(const struct smtp_tx *tx)
{
	for (unsigned l = 0; l < tx->nlegs; l++)
		if (tx->legs[l].lost)
			return true;
	return false;
}

/* Why no content may follow now, or NULL when it may. */
static const char *
sess_content_refusal(const struct session *s)
{
	const struct smtp_tx *tx = s->tx;

	if (tx == NULL)
		return "503 5.5.1 Error: need MAIL command";
	if (tx_lost(tx))
		return "451 4.4.2 Upstream connection lost, try again later";
	if (tx->naccepted == 0)
		return tx->nrcpt == 0 ? "503 5.5.1 Error: need RCPT command"
				      : "554 5.5.1 Error: no valid recipients";
	return NULL;
}

static void
cmd_data(struct session *s, const char *line, const struct smtp_cmd *c)
{
	const char *refusal = sess_content_refusal(s);

	(void)line;
	(void)c;
	if (s->tx != NULL && s->tx->bdat_seen) {
		sess_error(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (refusal != NULL) {
		sess_error(s, refusal);
		return;
	}
	if (!sess_spool_start(s))
		return;
	s->rx = RX_DATA;
	sess_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
cmd_bdat(struct session *s, const char *line, const struct smtp_cmd *c)
{
	const char *refusal = sess_content_refusal(s);

	(void)line;
	if (c->bdat_size > s->sh->cfg->max_message_size - (s->tx ? s->tx->stuff.size : 0)) {
		/* the octets would have to be read to stay in sync: too many to
		 * throw away, so refuse and hang up (RFC 3030 allows closing) */
		sess_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		sess_close(s, "BDAT chunk over the size limit");
		return;
	}
	/* RFC 3030 2: the octets follow the command whatever we answer, so a
	 * refused chunk is read and thrown away; its reply goes out at once */
	s->bdat_left = c->bdat_size;
	s->bdat_last = c->bdat_last;
	s->flags &= (uint16_t)~SESS_F_BDAT_SINK;
	if (refusal != NULL) {
		s->flags |= SESS_F_BDAT_SINK;
		sess_error(s, refusal);
	} else if (!sess_spool_start(s)) {
		s->flags |= SESS_F_BDAT_SINK;
	} else {
		s->tx->bdat_seen = true;
	}
	if (s->conn == CONN_OPEN)
		s->rx = RX_BDAT; /* a 0-octet chunk completes in the pump at once */
}

static void
cmd_rset(struct session *s, const char *line, const struct smtp_cmd *c)
{
	(void)line;
	(void)c;
	if (s->tx != NULL)
		sess_tx_end(s, "aborted", NULL, 0);
	sess_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct session *s, const char *line, const struct smtp_cmd *c)
{
	(void)line;
	(void)c;
	sess_reply(s, "250 2.0.0 Ok");
}

static void
cmd_vrfy(struct session *s, const char *line, const struct smtp_cmd *c)
{
	(void)line;
	(void)c;
	/* RFC 5321 3.5.3: 252 when we neither verify nor refuse */
	sess_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_help(struct session *s, const char *line, const struct smtp_cmd *c)
{
	(void)line;
	(void)c;
	sess_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT");
}

static void
cmd_quit(struct session *s, const char *line, const struct smtp_cmd *c)
{
	(void)line;
	(void)c;
	sess_replyf(s, "221 2.0.0 %s closing connection", s->sh->cfg->hostname);
	s->state = SMTP_S_QUIT;
	sess_close(s, "quit");
}

static void
cmd_not_implemented(struct session *s, const char *line, const struct smtp_cmd *c)
{
	(void)line;
	(void)c;
	sess_error(s, "502 5.5.1 Error: command not implemented");
}

typedef void sess_cmd_fn(struct session *s, const char *line, const struct smtp_cmd *c);

#define ST(x)  (1u << SMTP_S_##x)
#define ST_ANY (ST(HELO) | ST(IDLE) | ST(MAIL) | ST(RCPT))

/*
 * The command table (Postfix, OpenSMTPD): the states each verb is allowed
 * in and the reply when it is not, so handlers do not repeat state checks.
 * DATA and BDAT are allowed everywhere because RFC 3030 makes BDAT's
 * octets follow whatever we answer; their handlers give the refusal.
 */
static const struct sess_cmd_def {
	sess_cmd_fn *fn;     /* handler; NULL for verbs we never parse */
	unsigned states;     /* ST() mask where the verb is valid */
	const char *refusal; /* reply in the other states */
} sess_cmds[SMTP_V__COUNT] = {
    [SMTP_V_HELO] = {cmd_helo, ST_ANY, NULL},
    [SMTP_V_EHLO] = {cmd_helo, ST_ANY, NULL},
    [SMTP_V_MAIL] = {cmd_mail, ST(IDLE), NULL},
    [SMTP_V_RCPT] = {cmd_rcpt, ST(MAIL) | ST(RCPT), "503 5.5.1 Error: need MAIL command"},
    [SMTP_V_DATA] = {cmd_data, ST_ANY, NULL},
    [SMTP_V_BDAT] = {cmd_bdat, ST_ANY, NULL},
    [SMTP_V_RSET] = {cmd_rset, ST_ANY, NULL},
    [SMTP_V_NOOP] = {cmd_noop, ST_ANY, NULL},
    [SMTP_V_VRFY] = {cmd_vrfy, ST_ANY, NULL},
    [SMTP_V_HELP] = {cmd_help, ST_ANY, NULL},
    [SMTP_V_QUIT] = {cmd_quit, ST_ANY, NULL},
    [SMTP_V_EXPN] = {cmd_not_implemented, ST_ANY, NULL},
    [SMTP_V_STARTTLS] = {cmd_not_implemented, ST_ANY, NULL},
    [SMTP_V_AUTH] = {cmd_not_implemented, ST_ANY, NULL},
};

static void
sess_command(struct session *s, const char *line, size_t len)
{
	const struct sess_cmd_def *def;
	struct smtp_cmd c;

	if (smtp_cmd_parse(line, len, &c) < 0) {
		sess_error(s, c.reply);
		return;
	}
	def = &sess_cmds[c.verb];
	if (def->fn == NULL) {
		sess_error(s, "500 5.5.1 Error: command not recognized");
		return;
	}
	if (!(def->states & (1u << s->state))) {
		if (c.verb == SMTP_V_MAIL)
			sess_error(s, s->state == SMTP_S_HELO
					  ? "503 5.5.1 Error: send HELO/EHLO first"
					  : "503 5.5.1 Error: nested MAIL command");
		else
			sess_error(s, def->refusal);
		return;
	}
	def->fn(s, line, &c);
}

/* --- end of content --- */

static void
sess_spool_emit(void *arg, const char *p, size_t n)
{
	struct smtp_tx *tx = arg;

	if (!tx->spool_overflow && !spool_append(tx->spool, p, n))
		tx->spool_overflow = true;
}

/*
 * The message grew. Past SPOOL_SPILL_AT it stays in memory only within
 * spool-memory; otherwise it moves to a file spool now, between two
 * receives (nothing is being written into the old one), so small messages
 * never touch the disk (core/spool.h).
 */
static void
sess_spool_grown(struct session *s)
{
	struct smtp_tx *tx = s->tx;
	struct spool *sp = tx->spool;

	if (sp == NULL || sp->len < SPOOL_SPILL_AT)
		return;
	if (sp->fd >= 0) {
		spool_release_written(sp); /* received bytes: page cache, not ours */
		return;
	}
	if (spool_grow_ok(&s->sh->spools, sp))
		return;
	tx->spool = spool_spill(&s->sh->spools, sp);
	tx->spool_file = tx->spool->fd >= 0;
}

/* Build the trace header (RFC 5321 4.4) for the message being relayed. */
static size_t
sess_received(struct session *s, char *buf, size_t cap)
{
	const struct smtp_tx *tx = s->tx;
	char date[64];
	struct tm tm;
	time_t now = time(NULL);
	const char *with = tx->smtputf8 ? "UTF8SMTP" : (s->flags & SESS_F_ESMTP) ? "ESMTP" : "SMTP";
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (tx->naccepted == 1)
		n = snprintf(buf, cap,
			     "Received: from %s ([%s])\r\n\tby %s (sluice) with %s id %s.%u\r\n"
			     "\tfor <%s>; %s\r\n",
			     s->helo, s->peer_ip, s->sh->cfg->hostname, with, s->idtext, s->ntx,
			     tx->rcpts, date); /* the one accepted recipient (first in the list) */
	else
		n = snprintf(buf, cap,
			     "Received: from %s ([%s])\r\n\tby %s (sluice) with %s id %s.%u;\r\n"
			     "\t%s\r\n",
			     s->helo, s->peer_ip, s->sh->cfg->hostname, with, s->idtext, s->ntx,
			     date);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

/* More Received: headers than max-received-headers: a mail loop (RFC 5321 6.3). */
static bool
sess_is_loop(const struct session *s)
{
	const struct spool *sp = s->tx->spool;
	uint32_t max = s->sh->cfg->max_received;

	return sp != NULL && rfc5322_count_fields(sp->base, sp->len, "Received", max) > max;
}

/* dedup_addr_hash() of tracked destination i. */
static uint64_t
sess_dest_hash(const struct smtp_tx *tx, unsigned i)
{
	return dedup_addr_hash(tx->dests + tx->track[i].off);
}

/* The fingerprint of this content delivered to tracked destination i (core/dedup.h). */
static uint64_t
sess_dest_fingerprint(const struct smtp_tx *tx, unsigned i, uint64_t content)
{
	return dedup_fingerprint(content, sess_dest_hash(tx, i), 1);
}

/*
 * The content's hash when some destination may have had this message
 * before (core/dedup's address filter), else 0: most messages are never
 * hashed, even once the table holds fingerprints.
 */
static uint64_t
sess_dedup_content(const struct session *s)
{
	const struct smtp_tx *tx = s->tx;

	if (dedup_empty(s->sh->dedup))
		return 0;
	for (unsigned i = 0; i < tx->ntrack; i++)
		if (dedup_addr_marked(s->sh->dedup, sess_dest_hash(tx, i)))
			return dedup_content_hash(tx->spool->base, tx->spool->len);
	return 0;
}

/* Did every destination of leg l get this content already (within dedup-window)? */
static bool
sess_leg_delivered(const struct session *s, unsigned l, uint64_t content)
{
	const struct smtp_tx *tx = s->tx;
	uint64_t now = (uint64_t)time(NULL);
	uint32_t seen = 0;

	if (content == 0 || tx->untracked)
		return false;
	for (unsigned i = 0; i < tx->ntrack; i++) {
		if (tx->track[i].leg != l)
			continue;
		if (!dedup_seen(s->sh->dedup, sess_dest_fingerprint(tx, i, content), now))
			return false;
		seen++;
	}
	return seen == tx->legs[l].ndests;
}

/* One line per destination host at end of data: who said what. */
static void
sess_log_leg(struct session *s, const struct tx_leg *leg, const char *outcome,
	     const struct smtp_reply *r)
{
	char buf[SHARD_LOG_LINE];
	struct jlog j;

	if (!sess_log_begin(s, &j, buf, sizeof(buf), "leg"))
		return;
	jlog_u64(&j, "tx", s->ntx);
	jlog_cstr(&j, "dest", leg->key);
	jlog_u64(&j, "dests", leg->ndests);
	jlog_cstr(&j, "outcome", outcome);
	jlog_str(&j, "reply", r->text, reply_line_len(r->text, r->len));
	shard_log(s->sh, buf, jlog_end(&j));
}

/*
 * Leg l's answer to the message: keep what the client will hear, a failure
 * before a 250 (not every host has the message), a 4xx before a 5xx (a
 * retry may reach them all).
 */
static void
sess_leg_result(struct session *s, unsigned l, const struct smtp_reply *r, const char *outcome)
{
	struct smtp_tx *tx = s->tx;
	const struct smtp_reply *shown = sess_leg_reply(s, l, r);
	unsigned have = tx->data_answer.code / 100, cls = r->code / 100;

	tx->legs[l].data_ok = cls == 2;
	tx->data_failed += cls != 2;
	if (!tx->have_data_answer || (have == 2 && cls != 2) || (have == 5 && cls == 4)) {
		tx->data_answer = *shown;
		tx->have_data_answer = true;
	}
	sess_log_leg(s, &tx->legs[l], outcome, r);
}

/*
 * Remember the destinations that got this message although the sender will
 * send it to them again: every one whose host took it when the client is
 * refused, and those of refused client RCPTs (orphans) even when it is
 * accepted. The retry then skips them (core/dedup.h).
 */
static void
sess_remember_deliveries(struct session *s, bool ok, uint64_t content)
{
	const struct smtp_tx *tx = s->tx;
	uint64_t now = (uint64_t)time(NULL);

	for (unsigned i = 0; i < tx->ntrack; i++) {
		if (!tx->legs[tx->track[i].leg].data_ok || (ok && !tx->track[i].orphan))
			continue;
		if (content == 0)
			content = dedup_content_hash(tx->spool->base, tx->spool->len);
		dedup_add(s->sh->dedup, sess_dest_fingerprint(tx, i, content), now);
		dedup_mark_addr(s->sh->dedup, sess_dest_hash(tx, i));
	}
}

/*
 * Every host answered: tell the client. 250 only when all of them said 250
 * (DESIGN.md invariant 1); otherwise the failure, and the hosts that took
 * the message are remembered so the sender's retry does not reach them
 * twice (core/dedup.h).
 */
static void
sess_data_done(struct session *s, uint64_t content)
{
	struct smtp_tx *tx = s->tx;
	const struct smtp_reply *answer = &tx->data_answer;
	struct smtp_reply summary;
	unsigned nhosts = 0, nok = 0;
	bool ok = tx->data_failed == 0;

	for (unsigned l = 0; l < tx->nlegs; l++) {
		nhosts += tx->legs[l].ndests != 0;
		nok += tx->legs[l].ndests != 0 && tx->legs[l].data_ok;
	}
	if (ok && nhosts > 1) {
		char text[96];

		snprintf(text, sizeof(text), "250 2.0.0 Ok: delivered to %u destination hosts",
			 nhosts);
		if (smtp_reply_set(&summary, text))
			answer = &summary;
	}
	sess_remember_deliveries(s, ok, content);
	sess_unpause(s);
	sess_out(s, answer->text, answer->len);
	if (ok) /* max-errors counts errors "without delivering mail" (Postfix's
		 * smtpd_hard_error_limit): refused RCPTs before a delivery are forgiven */
		s->errors = 0;
	shard_count(ok ? &s->sh->stats.tx_accepted : &s->sh->stats.tx_rejected, 1);
	sess_tx_end(s,
		    ok	       ? "accepted"
		    : nok != 0 ? "partly delivered"
			       : "rejected",
		    answer->text, answer->len);
}

/* Leg l's upstream answered the message (or failed: r is the failure). */
static void
sess_leg_data_reply(struct session *s, unsigned l, const struct smtp_reply *r)
{
	struct smtp_tx *tx = s->tx;

	tx->legs[l].data_due = false;
	tx->data_wait--;
	sess_leg_result(s, l, r, r->code / 100 == 2 ? "accepted" : "refused");
	if (tx->data_wait != 0)
		return;
	sess_data_done(s, tx->content_hash);
	sess_check_drain(s);
	if (s->conn == CONN_OPEN)
		sess_resume(s);
}

/* The client's content is complete: refuse it, or hand it to the upstream. */
static void
sess_end_of_content(struct session *s, unsigned err)
{
	static const char dropped[] = "250 2.0.0 Ok";
	struct smtp_tx *tx = s->tx;
	const struct smtp_reply *refusal;
	const char *reply = NULL;
	char hdr[1024];
	size_t hdrlen;
	uint64_t content;

	s->rx = RX_COMMAND;
	shard_count(&s->sh->stats.bytes_in, tx->spool ? tx->spool->len : 0);
	if (err & (SMTP_DATA_E_BARE_LF | SMTP_DATA_E_BARE_CR))
		reply = "554 5.6.0 Error: bare CR or LF in message content (see RFC 5321 2.3.8)";
	else if ((err & SMTP_DATA_E_TOO_BIG) || tx->spool_overflow)
		reply = "552 5.3.4 Message size exceeds fixed limit";
	else if (err & SMTP_DATA_E_LINE_TOO_LONG)
		reply = "552 5.3.4 Message line too long";
	else if (sess_is_loop(s))
		reply = "554 5.4.6 Too many Received headers: mail loop?";
	else if (tx->ndests == 0)
		reply = dropped; /* every recipient was a drop rule's: accept, discard */
	else if (tx_lost(tx))
		reply = "451 4.4.2 Upstream connection lost, try again later";
	if (reply == dropped) {
		s->errors = 0; /* mail delivered: see sess_up_data_reply() */
		sess_reply(s, dropped);
		shard_count(&s->sh->stats.tx_accepted, 1);
		sess_tx_end(s, "dropped", dropped, sizeof(dropped) - 1);
		return;
	}
	if (reply != NULL) {
		sess_reply(s, reply);
		shard_count(&s->sh->stats.tx_rejected, 1);
		sess_tx_end(s, "rejected", reply, strlen(reply));
		return;
	}
	hdrlen = sess_received(s, hdr, sizeof(hdr));
	sess_pause(s, WAIT_DOT);
	tx->data_wait = tx->data_failed = 0;
	tx->have_data_answer = false;
	content = sess_dedup_content(s);
	/* every destination host at once; the spool is shared, not copied */
	for (unsigned l = 0; l < tx->nlegs; l++) {
		struct tx_leg *leg = &tx->legs[l];
		struct smtp_reply r;

		if (leg->ndests == 0)
			continue;
		if (sess_leg_delivered(s, l, content)) {
			/* this host took this message for these addresses already */
			smtp_reply_set(&r, "250 2.0.0 Already delivered (retry of a partly "
					   "delivered message)");
			sess_leg_result(s, l, &r, "duplicate skipped");
		} else if ((refusal = up_data_refusal(leg->up)) != NULL) {
			/* the upstream refused the pipelined DATA: that is its answer */
			sess_leg_result(s, l, refusal, "refused");
		} else {
			leg->data_due = true;
			tx->data_wait++;
			up_data(leg->up, hdr, hdrlen, spool_ref(tx->spool));
		}
	}
	if (tx->data_wait == 0)
		sess_data_done(s, content);
	else
		tx->content_hash = content;
}

static void
sess_bdat_chunk_done(struct session *s)
{
	struct smtp_tx *tx = s->tx;

	s->rx = RX_COMMAND;
	if (s->flags & SESS_F_BDAT_SINK) {
		/* refused when the command arrived; LAST ends the transaction */
		s->flags &= (uint16_t)~SESS_F_BDAT_SINK;
		if (s->bdat_last && tx != NULL)
			sess_tx_end(s, "rejected", NULL, 0);
		return;
	}
	if (!s->bdat_last) {
		sess_replyf(s, "250 2.0.0 %llu octets received",
			    (unsigned long long)tx->stuff.size);
		return;
	}
	smtp_stuff_finish(&tx->stuff, sess_spool_emit, tx);
	sess_end_of_content(s, tx->stuff.err);
}

/* --- the input pump --- */

static size_t
sess_process(struct session *s, const char *p, size_t n)
{
	const struct config *cfg = s->sh->cfg;
	size_t done = 0;

	while (s->conn == CONN_OPEN) {
		size_t k;

		if (s->rx == RX_PAUSED)
			break;
		if (sess_out_room(s) < SESS_REPLY_RESERVE && (s->flags & SESS_F_SENDING)) {
			s->flags |= SESS_F_OUT_BLOCKED;
			break;
		}
		if (sess_out_room(s) < SESS_REPLY_RESERVE)
			sess_flush(s);
		if (done == n && !(s->rx == RX_BDAT && s->bdat_left == 0))
			break;

		switch (s->rx) {
		case RX_COMMAND: {
			enum smtp_line_status st;
			const char *line;
			size_t len;

			k = smtp_line_feed(&s->line, p + done, n - done, cfg->max_line_length, &st,
					   &line, &len);
			done += k;
			switch (st) {
			case SMTP_LINE_AGAIN:
				break;
			case SMTP_LINE_OK:
				s->rest = p + done;
				s->rest_len = n - done;
				sess_command(s, line, len);
				s->rest_len = 0;
				break;
			case SMTP_LINE_TOO_LONG:
				sess_error(s, "500 5.5.2 Error: line too long");
				break;
			case SMTP_LINE_BARE_LF:
			case SMTP_LINE_BARE_CR:
				sess_error(s, "500 5.5.2 Error: bare CR or LF in command (see RFC "
					      "5321 2.3.8)");
				break;
			}
			break;
		}
		case RX_DATA: {
			struct smtp_tx *tx = s->tx;

			k = smtp_data_feed(&tx->data, p + done, n - done, NULL, NULL);
			/* the spool keeps the wire form: still stuffed, terminator included */
			sess_spool_emit(tx, p + done, k);
			sess_spool_grown(s);
			done += k;
			if (tx->data.done)
				sess_end_of_content(s, tx->data.err);
			break;
		}
		case RX_BDAT:
			k = n - done < s->bdat_left ? n - done : (size_t)s->bdat_left;
			if (!(s->flags & SESS_F_BDAT_SINK)) {
				smtp_stuff_feed(&s->tx->stuff, p + done, k, sess_spool_emit, s->tx);
				sess_spool_grown(s);
			}
			s->bdat_left -= k;
			done += k;
			if (s->bdat_left == 0)
				sess_bdat_chunk_done(s);
			break;
		case RX_PAUSED:
			break;
		}
	}
	return done;
}

/* Keep input the pump could not take now; it runs again on resume. */
static void
sess_hold(struct session *s, const char *p, size_t n)
{
	BUG_ON(s->held != NULL);
	s->held = chunk_get_size(&s->sh->chunks, n);
	if (s->held == NULL) {
		sess_close(s, "out of input buffers");
		return;
	}
	memcpy(s->held->data, p, n);
	s->held->len = (uint32_t)n;
}

/* Run the pump over held input after an async answer or freed output room. */
static void
sess_resume(struct session *s)
{
	s->flags &= (uint16_t)~SESS_F_OUT_BLOCKED;
	if (s->held != NULL) {
		struct chunk *h = s->held;
		size_t k = sess_process(s, h->data + h->off, h->len - h->off);

		h->off += (uint32_t)k;
		if (h->off == h->len && s->held == h) {
			chunk_put(&s->sh->chunks, h);
			s->held = NULL;
		}
	} else if (s->rx == RX_BDAT && s->bdat_left == 0) {
		sess_process(s, NULL, 0);
	}
	sess_after_input(s);
}

void
sess_on_recv(struct shard *sh, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct session *s = sess_lookup(sh, uop_slot(ud), uop_gen(ud));
	bool has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	size_t n, k;
	const char *p;

	if (s == NULL) {
		if (has_buf)
			shard_buf_put(sh, bid);
		shard_count(&sh->stats.stale_cqes, 1);
		return;
	}
	s->inflight--;
	s->flags &= (uint16_t)~SESS_F_RECV_ARMED;
	if (cqe->res == -ENOBUFS && s->conn == CONN_OPEN) {
		/* every provided buffer is in use: retry on the next tick */
		shard_count(&sh->stats.enobufs, 1);
		sh->recv_retry++;
		shard_warn(sh, "recv", "no provided buffer free (recv-buffers %u)", sh->br_count);
		s->flags |= SESS_F_OUT_BLOCKED;
		return;
	}
	if (cqe->res <= 0 || s->conn != CONN_OPEN) {
		if (has_buf)
			shard_buf_put(sh, bid);
		sess_close(s, cqe->res == 0 ? "client closed" : "recv error");
		sess_maybe_free(s); /* sess_close() does nothing if already closing */
		return;
	}
	BUG_ON(!has_buf || s->held != NULL);
	n = (size_t)cqe->res;
	p = sh->br_mem + (size_t)bid * sh->br_size;
	s->bytes_in += n;
	k = sess_process(s, p, n);
	if (k < n && s->conn == CONN_OPEN)
		sess_hold(s, p + k, n - k); /* paused or output-blocked */
	shard_buf_put(sh, bid);
	sess_after_input(s);
}

void
sess_on_recv_spool(struct shard *sh, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct session *s = sess_lookup(sh, uop_slot(ud), uop_gen(ud));
	struct smtp_tx *tx;
	const char *p;
	size_t n, k;

	if (s == NULL) {
		shard_count(&sh->stats.stale_cqes, 1);
		return;
	}
	s->inflight--;
	s->flags &= (uint16_t)~SESS_F_RECV_ARMED;
	if (cqe->res <= 0 || s->conn != CONN_OPEN) {
		sess_close(s, cqe->res == 0 ? "client closed" : "recv error");
		sess_maybe_free(s); /* sess_close() does nothing if already closing */
		return;
	}
	tx = s->tx;
	n = (size_t)cqe->res;
	p = tx->spool->base + tx->spool->len;
	s->bytes_in += n;
	/* the bytes are in place already: scan them and keep what is message */
	k = smtp_data_feed(&tx->data, p, n, NULL, NULL);
	spool_commit(tx->spool, k);
	if (k < n) {
		sess_hold(s, p + k, n - k); /* pipelined commands after the "." */
		if (s->conn != CONN_OPEN)
			return;
	}
	sess_spool_grown(s); /* after the hold: p points into the spool it may replace */
	if (tx->data.done)
		sess_end_of_content(s, tx->data.err);
	sess_resume(s);
}

void
sess_on_send(struct shard *sh, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct session *s = sess_lookup(sh, uop_slot(ud), uop_gen(ud));
	struct chunk *c;

	if (s == NULL) {
		shard_count(&sh->stats.stale_cqes, 1);
		return;
	}
	s->inflight--;
	s->flags &= (uint16_t)~SESS_F_SENDING;
	c = s->sending;
	if (cqe->res < 0) {
		sess_close(s, "send error");
		sess_maybe_free(s);
		return;
	}
	c->off += (uint32_t)cqe->res;
	if (c->off < c->len) {
		/* short send: the rest goes first, ahead of anything newer */
		struct io_uring_sqe *sqe = shard_sqe(sh);

		io_uring_prep_send(sqe, s->fd, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, uop_pack(UOP_SEND, s->slot, s->gen));
		s->flags |= SESS_F_SENDING;
		s->inflight++;
		return;
	}
	chunk_put(&sh->chunks, c);
	s->sending = NULL;
	sess_flush(s);
	if (s->conn == CONN_CLOSING) {
		if (!(s->flags & SESS_F_SENDING))
			sess_shutdown(s);
		sess_maybe_free(s);
		return;
	}
	if (s->flags & SESS_F_OUT_BLOCKED)
		sess_resume(s);
}

void
sess_on_timer(struct session *s)
{
	if (s->conn == CONN_CLOSING) {
		sess_abort_io(s); /* TIMER_CLOSE: the client does not read */
		return;
	}
	sess_replyf(s, "421 4.4.2 %s Error: timeout exceeded after %s", s->sh->cfg->hostname,
		    sess_where(s));
	sess_close(s, "timeout");
}

void
sess_drain(struct session *s, bool force)
{
	if (s->conn != CONN_OPEN) {
		if (force)
			sess_abort_io(s); /* past the drain deadline */
		return;
	}
	if (!force && (s->rx == RX_DATA || s->rx == RX_BDAT || s->rx == RX_PAUSED)) {
		s->flags |= SESS_F_DRAIN; /* after this transaction's reply */
		return;
	}
	sess_replyf(s, "421 4.3.2 %s Service shutting down, try again later", s->sh->cfg->hostname);
	sess_close(s, "shutdown");
}

/* A drained session whose transaction just ended says goodbye. */
static void
sess_check_drain(struct session *s)
{
	if ((s->flags & SESS_F_DRAIN) && s->rx == RX_COMMAND)
		sess_drain(s, true);
}

/* --- upstream answers --- */

/* Destination addr of leg l said 250: for the log, for "once is enough", for core/dedup. */
static void
sess_dest_accepted(struct smtp_tx *tx, unsigned l, const char *addr)
{
	uint32_t off = tx->dests_len;

	if (!strv_add(tx->dests, sizeof(tx->dests), &tx->dests_len, addr)) {
		tx->dests_truncated = true;
		tx->untracked = true;
		return;
	}
	if (tx->ntrack == TX_DEST_TRACK) {
		tx->untracked = true;
		return;
	}
	tx->track[tx->ntrack++] = (struct tx_dest){.off = (uint16_t)off, .leg = (uint8_t)l};
}

/*
 * The upstream of leg l answered group g's RCPT (or the leg failed and r is
 * its reply): settle the group, or try its next candidate; once every group
 * is settled, answer the client.
 */
static void
sess_route_reply(struct session *s, unsigned l, unsigned g, const struct smtp_reply *r)
{
	struct smtp_tx *tx = s->tx;
	struct rcpt_route *rt = &tx->route;

	rt->nwait--;
	if (r->code / 100 == 2) {
		const char *addr = rt->text->data + rt->cand[g][rt->tried[g]];

		rt->nok++;
		tx->ndests++;
		tx->legs[l].ndests++;
		sess_dest_accepted(tx, l, addr);
		route_keep_answer(rt, sess_leg_reply(s, l, r));
	} else if (rt->tried[g] + 1 < rt->ncand[g]) {
		/* refused: the group's next candidate (RFC 5321 3.6.2 style fallback) */
		rt->tried[g]++;
		if (route_dispatch(s, g) >= 0)
			sess_legs_flush(s, false);
	} else {
		rt->nfailed++;
		route_keep_answer(rt, sess_leg_reply(s, l, r));
	}
	if (rt->nwait != 0)
		return;
	sess_unpause(s);
	sess_route_done(s);
	sess_resume(s);
}

void
sess_up_rcpt_reply(struct session *s, unsigned l, const struct smtp_reply *r)
{
	BUG_ON(s->wait != WAIT_RCPT || l >= s->tx->nlegs || s->tx->legs[l].nsent == 0);
	sess_route_reply(s, l, leg_pop(s, l), r);
}

void
sess_leg_failed(struct session *s, unsigned l, const char *reply)
{
	struct tx_leg *leg = &s->tx->legs[l];
	struct smtp_reply r;

	leg->failed = true;
	leg->fail_reply = reply;
	leg->up = NULL;
	if (leg->ndests != 0)
		leg->lost = true; /* recipients it accepted cannot get the message now */
	if (leg->data_due) {
		BUG_ON(!smtp_reply_set(&r, reply));
		sess_leg_data_reply(s, l, &r);
		return;
	}
	if (leg->nwait == 0)
		return;
	BUG_ON(!smtp_reply_set(&r, reply));
	/* a leg that holds no recipient starts afresh for the next RCPT */
	leg->failed = leg->ndests != 0;
	/*
	 * Its RCPTs get the failure. They all belong to the RCPT being routed,
	 * so only the last one can settle it and resume the session, which may
	 * then queue the next RCPT on this leg: that one is not ours to answer.
	 */
	for (unsigned n = leg->nwait; n != 0; n--)
		sess_route_reply(s, l, leg_pop(s, l), &r);
}

void
sess_up_failed(struct session *s, unsigned l, const char *reply, bool nothing_sent)
{
	struct tx_leg *leg;

	BUG_ON(s->tx == NULL || l >= s->tx->nlegs);
	leg = &s->tx->legs[l];
	if (leg->nwait == 0 && !leg->data_due && leg->ndests == 0) {
		/* idle and holding no recipient: nothing is lost, the next RCPT for
		 * this host connects afresh (leg_for) */
		leg->up = NULL;
		return;
	}
	if (nothing_sent && !leg->data_due && leg_retry(s, l))
		return; /* the next address takes the queued RCPTs */
	sess_leg_failed(s, l, reply);
}

void
sess_up_data_reply(struct session *s, unsigned l, const struct smtp_reply *r)
{
	BUG_ON(s->wait != WAIT_DOT || l >= s->tx->nlegs || !s->tx->legs[l].data_due);
	sess_leg_data_reply(s, l, r);
}

/* --- accept --- */

void
sess_accept(struct shard *sh, int fd, const struct sockaddr_storage *peer)
{
	const struct config *cfg = sh->cfg;
	struct session *s;
	uint32_t slot;
	int one = 1;

	if (sh->draining) {
		close(fd);
		shard_count(&sh->stats.refused, 1);
		return;
	}
	if (!ipcount_add(&sh->ipcount, peer, cfg->max_connections_per_ip)) {
		static const char msg[] = "421 4.7.0 Too many connections from your address\r\n";

		/* a fresh socket's send buffer is empty: this cannot block */
		(void)!send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		shard_count(&sh->stats.refused, 1);
		return;
	}
	s = pool_get(&sh->sessions, &slot);
	if (s == NULL) {
		shard_warn(sh, "sessions", "max-sessions %u reached: 421 to new clients",
			   cfg->max_sessions);
		static const char msg[] = "421 4.3.2 Too many sessions, try again later\r\n";

		(void)!send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		ipcount_del(&sh->ipcount, peer);
		shard_count(&sh->stats.refused, 1);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->sh = sh;
	s->slot = slot;
	s->gen = pool_gen(&sh->sessions, slot);
	s->fd = fd;
	s->conn = CONN_OPEN;
	s->state = SMTP_S_HELO;
	s->rx = RX_COMMAND;
	s->id = (uint64_t)sh->id << 48 | ++sh->next_sess_id;
	s->started_ns = timer_now_ns();
	snprintf(s->idtext, sizeof(s->idtext), "%016llx", (unsigned long long)s->id);
	s->peer = *peer;
	if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)peer;

		if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
			inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], s->peer_ip,
				  sizeof(s->peer_ip));
		else
			inet_ntop(AF_INET6, &a6->sin6_addr, s->peer_ip, sizeof(s->peer_ip));
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, s->peer_ip,
			  sizeof(s->peer_ip));
	}
	sh->live_sessions++;
	shard_count(&sh->stats.accepted, 1);
	sess_replyf(s, "220 %s ESMTP sluice", cfg->hostname);
	sess_after_input(s);
}

void
sess_retry_recv(struct session *s)
{
	if (s->conn == CONN_OPEN && (s->flags & SESS_F_OUT_BLOCKED) && !(s->flags & SESS_F_SENDING))
		sess_resume(s);
}
