/*
 * upstream.c -- see upstream.h.
 *
 * Every reply is matched to the oldest command still waiting for one
 * (RFC 2920 keeps replies in command order). With PIPELINING, MAIL and the
 * first RCPT leave in one send; without it, RCPT waits for MAIL's reply.
 * If MAIL is refused, the client's RCPT gets MAIL's reply (it says why),
 * not the 503 that a pipelined RCPT earns behind a refused MAIL.
 */
#include "core/server/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/check.h"
#include "core/server/session.h"
#include "core/server/shard.h"
#include "core/uop.h"

static void up_submit_cmds(struct upstream *up);
static void up_maybe_free(struct upstream *up);

static struct session *
up_session(const struct upstream *up)
{
	if (!up->attached)
		return NULL;
	return sess_lookup(up->sh, up->sess_slot, up->sess_gen);
}

static void
up_push_expect(struct upstream *up, enum up_expect e)
{
	BUG_ON(up->exp_len >= UP_MAX_EXPECT);
	up->expect[(up->exp_head + up->exp_len) % UP_MAX_EXPECT] = (uint8_t)e;
	up->exp_len++;
	timer_arm(&up->sh->timers, &up->timer, TIMER_UPSTREAM, up->sh->now_ms);
}

static bool
up_pop_expect(struct upstream *up, enum up_expect *e)
{
	if (up->exp_len == 0)
		return false;
	*e = (enum up_expect)up->expect[up->exp_head];
	up->exp_head = (uint8_t)((up->exp_head + 1) % UP_MAX_EXPECT);
	up->exp_len--;
	return true;
}

/* Queue a command line (CRLF added). Sizes are bounded by the callers. */
static void up_queue(struct upstream *up, enum up_expect e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
up_queue(struct upstream *up, enum up_expect e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(up->cmd + up->cmd_len, sizeof(up->cmd) - up->cmd_len, fmt, ap);
	va_end(ap);
	BUG_ON(n < 0 || (size_t)n + 2 > sizeof(up->cmd) - up->cmd_len);
	up->cmd_len += (uint32_t)n;
	memcpy(up->cmd + up->cmd_len, "\r\n", 2);
	up->cmd_len += 2;
	up_push_expect(up, e);
}

static void
up_arm_recv(struct upstream *up)
{
	struct io_uring_sqe *sqe;

	if (up->recv_armed || up->state == UP_DEAD)
		return;
	sqe = shard_sqe(up->sh);
	io_uring_prep_recv(sqe, up->fd, up->rbuf, sizeof(up->rbuf), 0);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_UP_RECV, up->slot, up->gen));
	up->recv_armed = true;
	up->inflight++;
}

/* Abort the connection: pending operations end, then the slot is freed. */
/* Take up out of the shard's pool of idle connections (no-op if not in it). */
static void
up_pool_unlink(struct upstream *up)
{
	struct shard *sh = up->sh;

	if (!up->pooled)
		return;
	if (up->pool_prev != NULL)
		up->pool_prev->pool_next = up->pool_next;
	else
		sh->up_pool = up->pool_next;
	if (up->pool_next != NULL)
		up->pool_next->pool_prev = up->pool_prev;
	up->pool_prev = up->pool_next = NULL;
	up->pooled = false;
	sh->up_pooled--;
	timer_disarm(&up->timer);
}

static void
up_kill(struct upstream *up)
{
	if (up->state == UP_DEAD)
		return;
	up_pool_unlink(up);
	up->state = UP_DEAD;
	timer_disarm(&up->timer);
	shutdown(up->fd, SHUT_RDWR);
	up_maybe_free(up);
}

/* The upstream failed: tell the session (if any) and abort. */
static void
up_fail(struct upstream *up, const char *why, const char *reply)
{
	struct session *sess = up_session(up);

	if (up->state == UP_DEAD)
		return;
	up->fail_reason = why;
	shard_count(&up->sh->stats.upstream_errors, 1);
	shard_warn(up->sh, "upstream", "%s: %s", up->name, why);
	up->attached = false;
	/* before MAIL left, no RCPT of the transaction did: another address may take them */
	bool nothing_sent = !up->tx_open && !up->mail_inflight && up->rcpt_outstanding == 0;
	up_kill(up);
	if (sess != NULL)
		sess_up_failed(sess, up->leg, reply, nothing_sent);
}

int
up_open(struct shard *sh, struct session *sess, unsigned leg, const struct up_target *t,
	struct upstream **out)
{
	struct io_uring_sqe *sqe;
	struct upstream *up;
	uint32_t slot;
	int one = 1;
	int fd;

	fd = socket(t->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	up = pool_get(&sh->upstreams, &slot);
	if (up == NULL) {
		close(fd);
		return -ENOMEM;
	}
	up->sh = sh;
	up->slot = slot;
	up->gen = pool_gen(&sh->upstreams, slot);
	up->sess_slot = sess->slot;
	up->sess_gen = sess->gen;
	up->leg = (uint8_t)leg;
	up->attached = true;
	up->fd = fd;
	up->state = UP_CONNECTING;
	up->tls_policy = (uint8_t)t->tls;
	snprintf(up->key, sizeof(up->key), "%s", t->key);
	snprintf(up->name, sizeof(up->name), "%s", t->name);
	sh->live_upstreams++;

	sqe = shard_sqe(sh);
	io_uring_prep_connect(sqe, fd, t->addr, t->addrlen);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_UP_CONNECT, up->slot, up->gen));
	up->inflight++;
	/* connect and greeting: connect-timeout, then the next address */
	timer_arm(&sh->timers, &up->timer, TIMER_UP_CONNECT, sh->now_ms);
	*out = up;
	return 0;
}

static void up_fail(struct upstream *up, const char *why, const char *reply);

/* Under TLS: hand the ciphertext waiting in the TLS output to the socket. */
static void
up_tls_flush(struct upstream *up)
{
	struct io_uring_sqe *sqe;
	const void *p;
	size_t len;

	if (up->sending || up->state == UP_DEAD || (len = tls_out(up->tls, &p)) == 0)
		return;
	sqe = shard_sqe(up->sh);
	io_uring_prep_send(sqe, up->fd, p, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_UP_SEND, up->slot, up->gen));
	up->tls_sending = (uint32_t)len;
	up->sending = true;
	up->inflight++;
}

/* Under TLS: encrypt the queued commands (all of them: they are small). */
static void
up_tls_cmds(struct upstream *up)
{
	if (up->state != UP_HANDSHAKE && up->cmd_off < up->cmd_len) {
		ssize_t k = tls_write(up->tls, up->cmd + up->cmd_off, up->cmd_len - up->cmd_off);

		if (k < 0) {
			up_fail(up, "TLS write failed", "451 4.4.2 Upstream connection lost");
			return;
		}
		up->cmd_off += (uint32_t)k;
		if (up->cmd_off == up->cmd_len)
			up->cmd_off = up->cmd_len = 0;
	}
	up_tls_flush(up);
}

static void
up_submit_cmds(struct upstream *up)
{
	struct io_uring_sqe *sqe;

	if (up->tls != NULL && up->state != UP_DEAD) {
		up_tls_cmds(up);
		return;
	}
	if (up->sending || up->cmd_off == up->cmd_len || up->state == UP_DEAD)
		return;
	sqe = shard_sqe(up->sh);
	up->cmd_sending = up->cmd_len - up->cmd_off;
	io_uring_prep_send(sqe, up->fd, up->cmd + up->cmd_off, up->cmd_sending, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_UP_SEND, up->slot, up->gen));
	up->sending = true;
	up->inflight++;
}

/*
 * Under TLS: encrypt content until the TLS output is at its high-water mark
 * (memory stays bounded whatever the message size), and send it. The body
 * is done when all of it is encrypted and sent; its reply comes as EXP_DOT.
 */
static void
up_tls_body(struct upstream *up)
{
	for (int i = 0; i < 2 && !up->body_encrypted; i++) {
		while (up->iov[i].iov_len != 0) {
			ssize_t k = tls_write(up->tls, up->iov[i].iov_base, up->iov[i].iov_len);

			if (k < 0) {
				up_fail(up, "TLS write failed",
					"451 4.4.2 Upstream connection lost");
				return;
			}
			if (k == 0)
				goto flush; /* high water: more after the next send */
			up->iov[i].iov_base = (char *)up->iov[i].iov_base + k;
			up->iov[i].iov_len -= (size_t)k;
		}
	}
	up->body_encrypted = true;
flush:
	up_tls_flush(up);
	if (up->body_encrypted && !up->sending) {
		up->body_sending = false;
		up->state = UP_READY;
	}
}

static void
up_submit_body(struct upstream *up)
{
	struct io_uring_sqe *sqe;

	if (up->tls != NULL) {
		up->body_sending = true;
		up->body_encrypted = false;
		timer_arm(&up->sh->timers, &up->timer, TIMER_UPSTREAM, up->sh->now_ms);
		up_tls_body(up);
		return;
	}
	sqe = shard_sqe(up->sh);

	up->msg.msg_iov = up->iov;
	up->msg.msg_iovlen = up->iov[0].iov_len != 0 ? 2 : 1;
	if (up->iov[0].iov_len == 0)
		up->msg.msg_iov = &up->iov[1];
	if (up->sh->cfg->send_mode == CONFIG_SEND_ZEROCOPY) {
		io_uring_prep_sendmsg_zc(sqe, up->fd, &up->msg, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, uop_pack(UOP_UP_SENDZC, up->slot, up->gen));
		up->zc_notifs++;
	} else {
		io_uring_prep_sendmsg(sqe, up->fd, &up->msg, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, uop_pack(UOP_UP_SEND, up->slot, up->gen));
	}
	BUG_ON(up->sending);
	up->sending = true;
	up->body_sending = true;
	up->inflight++;
	timer_arm(&up->sh->timers, &up->timer, TIMER_UPSTREAM, up->sh->now_ms);
}

/* The upstream said 354 and the content is here: send it. */
static void
up_start_body(struct upstream *up)
{
	up->state = UP_BODY;
	up_push_expect(up, EXP_DOT);
	up_submit_body(up);
}

static const char *
up_pend_pop(struct upstream *up)
{
	const char *a = up->pend[up->pend_head];

	up->pend_head = (uint8_t)((up->pend_head + 1) % UP_MAX_RCPT);
	up->pend_len--;
	return a;
}

/*
 * What the message needs that the upstream does not offer, as the reply
 * its RCPTs get, or NULL (issue 5: refuse in the session rather than fail
 * after the content). Known once the upstream answered EHLO.
 */
static const char *
up_caps_refusal(const struct upstream *up, const struct smtp_tx *tx)
{
	const struct smtp_ehlo_caps *c = &up->caps;

	if (tx->declared_size != 0 && c->size && c->size_max != 0 &&
	    tx->declared_size > c->size_max)
		return "552 5.3.4 Message size exceeds the destination's limit";
	if (tx->smtputf8 && !c->smtputf8) /* RFC 6531 3.2: no downgrade */
		return "553 5.6.7 The destination does not accept SMTPUTF8 mail";
	if (tx->body_8bit && !c->eightbitmime) /* RFC 6152 3: we do not convert to 7 bits */
		return "554 5.6.3 The destination does not accept 8-bit content (8BITMIME)";
	return NULL;
}

static void up_answer_unsent(struct upstream *up);

/* Send what the session is waiting for, as far as the upstream's state allows. */
static void
up_kick(struct upstream *up)
{
	struct session *sess = up_session(up);
	const struct smtp_tx *tx;

	if (sess == NULL || sess->tx == NULL || up->state != UP_READY || up->pend_len == 0 ||
	    up->answering)
		return;
	/* behind a refused MAIL, wait until its pipelined RCPTs are answered */
	if (up->mail_failed && up->rcpt_outstanding != 0)
		return;
	tx = sess->tx;
	if (!up->tx_open) {
		const char *refusal = up_caps_refusal(up, tx);

		if (refusal != NULL && !up->mail_inflight) {
			/* answered as if MAIL had been refused: the message, not
			 * the address, is what the destination cannot take */
			BUG_ON(!smtp_reply_set(&up->mail_reply, refusal));
			up->mail_failed = true;
			up_answer_unsent(up);
			return;
		}
		if (!up->mail_inflight) {
			char size[32] = "";

			if (tx->declared_size != 0 && up->caps.size)
				snprintf(size, sizeof(size), " SIZE=%llu",
					 (unsigned long long)tx->declared_size);
			up_queue(up, EXP_MAIL, "MAIL FROM:<%s>%s%s%s", tx->up_from, size,
				 tx->body_8bit && up->caps.eightbitmime ? " BODY=8BITMIME" : "",
				 tx->smtputf8 && up->caps.smtputf8 ? " SMTPUTF8" : "");
			up->mail_inflight = true;
			up->mail_failed = false;
		}
		if (!up->caps.pipelining) {
			up_submit_cmds(up);
			return;
		}
	}
	/* without PIPELINING each RCPT waits for the reply to the one before */
	if (!up->caps.pipelining && up->rcpt_outstanding != 0)
		return;
	do {
		up_queue(up, EXP_RCPT, "RCPT TO:<%s>", up_pend_pop(up));
		up->rcpt_outstanding++;
	} while (up->caps.pipelining && up->pend_len != 0);
	if (up->pend_len == 0 && up->want_data && up->caps.pipelining) {
		/* RFC 2920 3.1: DATA may end a pipelined group */
		up_queue(up, EXP_DATA, "DATA");
		up->early_data = true;
		up->want_data = false;
	}
	up_submit_cmds(up);
}

void
up_rcpts(struct upstream *up, const char *const addrs[], unsigned n, bool then_data)
{
	BUG_ON(n == 0 || n > (unsigned)(UP_MAX_RCPT - up->pend_len));
	for (unsigned i = 0; i < n; i++)
		up->pend[(up->pend_head + up->pend_len++) % UP_MAX_RCPT] = addrs[i];
	up->want_data = then_data;
	up_kick(up);
}

const struct smtp_reply *
up_data_refusal(const struct upstream *up)
{
	return up->early_data && up->data_refused ? &up->data_reply : NULL;
}

/* The early DATA ends with the transaction; the next one starts clean. */
static void
up_data_reset(struct upstream *up)
{
	up->early_data = false;
	up->data_open = false;
	up->data_refused = false;
}

static void up_submit_body(struct upstream *up);

void
up_data(struct upstream *up, const char *hdr, size_t hdrlen, struct spool *spool)
{
	BUG_ON(hdrlen > sizeof(up->hdr) || up->spool != NULL);
	memcpy(up->hdr, hdr, hdrlen);
	up->iov[0].iov_base = up->hdr;
	up->iov[0].iov_len = hdrlen;
	up->iov[1].iov_base = spool->base;
	up->iov[1].iov_len = spool->len;
	up->spool = spool;
	if (!up->early_data) {
		up_queue(up, EXP_DATA, "DATA");
		up_submit_cmds(up);
	} else if (up->data_open) {
		up_start_body(up);
	}
	/* else: the early DATA's 354 is still on its way; it starts the body */
}

bool
up_rset(struct upstream *up)
{
	/* RCPTs not sent are forgotten; replies still due are not relayed */
	up->pend_len = 0;
	up->want_data = false;
	up->rcpt_ignore = up->rcpt_outstanding;
	if (up->early_data && !up->data_refused) {
		/* the upstream waits for content we will not send: an RSET
		 * now would be taken as content, so drop the connection */
		up_release(up);
		return false;
	}
	up_data_reset(up);
	if (!up->tx_open && !up->mail_inflight)
		return true;
	if (up->state != UP_READY) {
		/* mid-handshake or mid-content: no clean way back, drop it */
		up_release(up);
		return false;
	}
	up_queue(up, EXP_RSET, "RSET");
	up->tx_open = false;
	up->mail_inflight = false;
	up_submit_cmds(up);
	return true;
}

bool
up_is_usable(const struct upstream *up)
{
	return up->state != UP_DEAD && up->state != UP_QUIT && up->nretired < UP_MAX_RETIRED;
}

/* Say QUIT and close once it is answered. */
static void
up_quit(struct upstream *up)
{
	up_queue(up, EXP_QUIT, "QUIT");
	up->state = UP_QUIT;
	up_submit_cmds(up);
}

/* Nothing is due but RSET replies: the connection is idle once they come. */
static bool
up_only_rset_due(const struct upstream *up)
{
	for (unsigned i = 0; i < up->exp_len; i++)
		if (up->expect[(up->exp_head + i) % UP_MAX_EXPECT] != EXP_RSET)
			return false;
	return true;
}

/* Idle between transactions, with room in the pool: the next session may have it. */
static bool
up_poolable(const struct upstream *up)
{
	const struct shard *sh = up->sh;

	unsigned same = 0;

	if (up->tx_open || up->mail_inflight || up->pend_len != 0 || up->rcpt_outstanding != 0 ||
	    up->early_data || !up_is_usable(up) || sh->up_pooled >= UP_POOL_MAX || sh->draining)
		return false;
	if (sh->up_pooled < UP_POOL_PER_KEY)
		return true; /* the per-destination cap cannot be reached: no need to count */
	for (const struct upstream *p = sh->up_pool; p != NULL; p = p->pool_next)
		same += strcmp(p->key, up->key) == 0;
	return same < UP_POOL_PER_KEY;
}

static void
up_pool_park(struct upstream *up)
{
	struct shard *sh = up->sh;

	up->pooled = true;
	up->pool_prev = NULL;
	up->pool_next = sh->up_pool;
	if (sh->up_pool != NULL)
		sh->up_pool->pool_prev = up;
	sh->up_pool = up;
	sh->up_pooled++;
	timer_arm(&sh->timers, &up->timer, TIMER_UP_IDLE, sh->now_ms);
	if (up->tls != NULL)
		tls_trim(up->tls);
}

void
up_release(struct upstream *up)
{
	up->attached = false;
	/* after an early DATA the upstream reads content: QUIT would be content */
	if (up->state == UP_READY && up_only_rset_due(up) && !up->sending && up->spool == NULL &&
	    !(up->early_data && !up->data_refused)) {
		if (up_poolable(up))
			up_pool_park(up);
		else
			up_quit(up);
		return;
	}
	up_kill(up);
}

struct upstream *
up_pool_take(struct shard *sh, struct session *sess, unsigned leg, const char *key)
{
	struct upstream *up = sh->up_pool;

	while (up != NULL && strcmp(up->key, key) != 0)
		up = up->pool_next;
	if (up == NULL)
		return NULL;
	up_pool_unlink(up);
	up->attached = true;
	up->leg = (uint8_t)leg;
	up->sess_slot = sess->slot;
	up->sess_gen = sess->gen;
	return up;
}

void
up_pool_flush(struct shard *sh)
{
	struct upstream *up;

	while ((up = sh->up_pool) != NULL) {
		up_pool_unlink(up);
		up_quit(up);
	}
}

/* Give back retired spools once no send or zero-copy notification uses them. */
static void
up_reap_spools(struct upstream *up)
{
	if (up->body_sending || up->zc_notifs != 0)
		return;
	while (up->nretired != 0)
		spool_put(&up->sh->spools, up->retired[--up->nretired]);
}

/*
 * The message is done with (answered or refused): its spool may go. An
 * array rather than a list through spool->next: a fanned-out spool is
 * retired by several upstreams. Full, the upstream is no longer usable
 * (up_is_usable) and takes no body that would need another slot.
 */
static void
up_release_spool(struct upstream *up)
{
	if (up->spool != NULL) {
		BUG_ON(up->nretired >= UP_MAX_RETIRED);
		up->retired[up->nretired++] = up->spool;
		up->spool = NULL;
	}
	up_reap_spools(up);
}

static void
up_maybe_free(struct upstream *up)
{
	struct shard *sh = up->sh;

	/* idempotent: a freed upstream's generation no longer matches its slot */
	if (pool_gen(&sh->upstreams, up->slot) != up->gen)
		return;
	/* inside a completion handler the epilogue frees, so that code after a
	 * callback never touches a slot a session has meanwhile reused */
	if (up->state != UP_DEAD || up->inflight != 0 || up->in_cqe)
		return;
	timer_disarm(&up->timer);
	up_release_spool(up);
	BUG_ON(up->spool != NULL || up->nretired != 0);
	tls_conn_free(up->tls);
	up->tls = NULL;
	close(up->fd);
	up->fd = -1;
	sh->live_upstreams--;
	pool_put(&sh->upstreams, up->slot);
}

static bool
reply_is(const struct smtp_reply *r, unsigned cls)
{
	return r->code / 100 == cls;
}

/*
 * MAIL was refused and RCPTs wait unsent (no PIPELINING): each gets MAIL's
 * reply, which says why. A RCPT the session queues meanwhile (a fallback)
 * is answered the same way: the sender was refused, not the address.
 */
static void
up_answer_unsent(struct upstream *up)
{
	struct session *sess;

	if (up->rcpt_outstanding != 0)
		return; /* pipelined: the RCPT replies arrive and carry MAIL's refusal */
	up->answering = true;
	while (up->pend_len != 0 && (sess = up_session(up)) != NULL) {
		up_pend_pop(up);
		sess_up_rcpt_reply(sess, up->leg, &up->mail_reply);
	}
	up->answering = false;
	up->pend_len = 0;
	up->mail_failed = false;
}

/* A RCPT's reply: relayed (MAIL's refusal instead, if MAIL was refused). */
static void
up_on_rcpt_reply(struct upstream *up, const struct smtp_reply *r)
{
	struct session *sess = up_session(up);

	BUG_ON(up->rcpt_outstanding == 0);
	up->rcpt_outstanding--;
	if (up->rcpt_ignore != 0) {
		up->rcpt_ignore--; /* its transaction was reset */
	} else if (sess != NULL) {
		if (up->mail_failed)
			r = &up->mail_reply;
		sess_up_rcpt_reply(sess, up->leg, r);
	}
	if (up->rcpt_outstanding == 0 && up->mail_failed) {
		up->mail_failed = false;
		if (up->state == UP_READY)
			up_answer_unsent(up);
	}
	up_kick(up);
}

/*
 * After EHLO: send STARTTLS when upstream-tls asks for TLS and it is not on
 * yet. true when the connection is busy with it (or failed: verify and no
 * STARTTLS offered, never a silent fallback to plaintext); false to go on
 * in plaintext.
 */
static bool
up_start_tls(struct upstream *up)
{
	enum config_tls want = (enum config_tls)up->tls_policy;

	if (want == CONFIG_TLS_NONE || up->tls != NULL)
		return false;
	if (up->caps.starttls) {
		up->state = UP_STARTTLS;
		up_queue(up, EXP_STARTTLS, "STARTTLS");
		up_submit_cmds(up);
		return true;
	}
	if (want == CONFIG_TLS_VERIFY) {
		up_fail(up, "STARTTLS not offered (upstream-tls verify)",
			"451 4.7.4 Upstream does not offer STARTTLS");
		return true;
	}
	return false; /* opportunistic */
}

static void
up_on_starttls_reply(struct upstream *up, const struct smtp_reply *r)
{
	bool verify = up->tls_policy == CONFIG_TLS_VERIFY;

	if (r->code != 220) {
		if (verify) {
			up_fail(up, "STARTTLS refused", "451 4.7.4 Upstream refused STARTTLS");
			return;
		}
		up->state = UP_READY; /* opportunistic: on in plaintext */
		up_kick(up);
		return;
	}
	up->tls = tls_conn_new(up->sh->tls_client, up->name,
			       verify ? TLS_POLICY_VERIFY : TLS_POLICY_OPPORTUNISTIC);
	if (up->tls == NULL) {
		up_fail(up, "TLS: out of memory", "451 4.3.0 Insufficient system resources");
		return;
	}
	up->state = UP_HANDSHAKE; /* started by up_parse once this reply's bytes are done */
}

/* Advance the TLS handshake; once done, EHLO again (RFC 3207 4.2). */
static void
up_tls_handshake(struct upstream *up)
{
	int rc = tls_handshake(up->tls);

	up_tls_flush(up);
	if (rc == -EAGAIN)
		return;
	if (rc < 0) {
		shard_warn(up->sh, "upstream", "%s: TLS: %s", up->name, tls_error(up->tls));
		up_fail(up, "TLS handshake failed", "451 4.7.5 Upstream TLS negotiation failed");
		return;
	}
	memset(&up->caps, 0, sizeof(up->caps)); /* what it said in plaintext counts no more */
	up->state = UP_EHLO;
	up_queue(up, EXP_EHLO, "EHLO %s", up->sh->cfg->hostname);
	up_submit_cmds(up);
}

/* One complete reply from the upstream; matched to the oldest command. */
static void
up_on_reply(struct upstream *up)
{
	struct smtp_reply *r = &up->reply;
	struct session *sess;
	enum up_expect e;

	if (!up_pop_expect(up, &e)) {
		up_fail(up, "unexpected reply", "451 4.4.0 Upstream protocol error");
		return;
	}
	switch (e) {
	case EXP_GREETING:
		if (!reply_is(r, 2)) {
			up_fail(up, "greeting refused",
				"451 4.4.0 Upstream refused the connection");
			return;
		}
		up->state = UP_EHLO;
		up_queue(up, EXP_EHLO, "EHLO %s", up->sh->cfg->hostname);
		up_submit_cmds(up);
		break;
	case EXP_EHLO:
	case EXP_HELO:
		if (reply_is(r, 2)) {
			if (e == EXP_EHLO)
				smtp_ehlo_caps_parse(r, &up->caps);
			if (up_start_tls(up))
				break;
			up->state = UP_READY;
			up_kick(up);
		} else if (e == EXP_EHLO && reply_is(r, 5)) {
			up->state = UP_HELO;
			up_queue(up, EXP_HELO, "HELO %s", up->sh->cfg->hostname);
			up_submit_cmds(up);
		} else {
			up_fail(up, "EHLO refused", "451 4.4.0 Upstream refused EHLO/HELO");
		}
		break;
	case EXP_STARTTLS:
		up_on_starttls_reply(up, r);
		break;
	case EXP_MAIL:
		up->mail_inflight = false;
		if (reply_is(r, 2)) {
			up->tx_open = true;
			up_kick(up);
			break;
		}
		up->mail_failed = true;
		up->mail_reply = *r;
		up_answer_unsent(up);
		break;
	case EXP_RCPT:
		up_on_rcpt_reply(up, r);
		break;
	case EXP_DATA:
		if (r->code == 354) {
			up->data_open = true;
			if (up->spool != NULL)
				up_start_body(up);
			break;
		}
		if (!reply_is(r, 4) && !reply_is(r, 5)) {
			/* a 2xx to DATA would be relayed as "accepted" for content
			 * the upstream never saw (DESIGN.md invariant 1) */
			up_fail(up, "bad reply to DATA", "451 4.4.0 Upstream protocol error");
			return;
		}
		if (up->early_data && up->spool == NULL) {
			/* the client's content is still coming: answer it then */
			up->data_refused = true;
			up->data_reply = *r;
			break;
		}
		up_data_reset(up);
		up->tx_open = false;
		up_release_spool(up);
		if ((sess = up_session(up)) != NULL)
			sess_up_data_reply(sess, up->leg, r);
		break;
	case EXP_DOT:
		if (up->body_sending) {
			/* an answer before all content left: it cannot be for our bytes */
			up_fail(up, "reply before end of content",
				"451 4.4.0 Upstream protocol error");
			return;
		}
		up_data_reset(up);
		up->tx_open = false;
		up->reused = true;
		up->state = UP_READY;
		up_release_spool(up);
		if ((sess = up_session(up)) != NULL)
			sess_up_data_reply(sess, up->leg, r);
		break;
	case EXP_RSET:
		if (!reply_is(r, 2))
			up_fail(up, "RSET refused", "451 4.4.0 Upstream refused RSET");
		break;
	case EXP_QUIT:
		up_kill(up);
		break;
	}
}

/* Parse replies from plaintext p[0..n). */
static void
up_parse(struct upstream *up, const char *p, size_t n)
{
	while (n > 0 && up->state != UP_DEAD) {
		enum smtp_reply_status st;
		size_t k = smtp_reply_feed(&up->reply, p, n, &st);

		p += k;
		n -= k;
		if (st == SMTP_REPLY_ERR) {
			up_fail(up, "bad reply", "451 4.4.0 Upstream protocol error");
			return;
		}
		if (st != SMTP_REPLY_DONE)
			continue;
		up_on_reply(up);
		smtp_reply_reset(&up->reply);
		if (up->state == UP_HANDSHAKE) {
			/* bytes after the 220 were sent in plaintext before TLS:
			 * taking them as TLS data is the STARTTLS injection bug */
			if (n != 0)
				up_fail(up, "data after STARTTLS's 220",
					"451 4.4.0 Upstream protocol error");
			else
				up_tls_handshake(up);
			return;
		}
	}
}

/* Under TLS: ciphertext arrived; advance the handshake or decrypt replies. */
static void
up_tls_recv(struct upstream *up, size_t n)
{
	if (tls_feed(up->tls, up->rbuf, n) != n) {
		/* cannot happen: rbuf is smaller than the TLS input buffer, which
		 * is empty whenever a recv is armed */
		up_fail(up, "TLS input overrun", "451 4.4.0 Upstream protocol error");
		return;
	}
	if (up->state == UP_HANDSHAKE) {
		up_tls_handshake(up);
		return;
	}
	for (;;) {
		ssize_t k = tls_read(up->tls, up->pbuf, sizeof(up->pbuf));

		if (k == -EAGAIN)
			break;
		if (k <= 0) {
			up_fail(up, k == 0 ? "TLS closed by upstream" : "TLS read failed",
				"451 4.4.2 Upstream connection lost");
			return;
		}
		up_parse(up, up->pbuf, (size_t)k);
		if (up->state == UP_DEAD || up->tls == NULL)
			return;
	}
	up_tls_flush(up); /* alerts, key updates */
}

static void
up_on_recv(struct upstream *up, int res)
{
	up->recv_armed = false;
	if (res <= 0) {
		/* a pooled connection the server timed out is no news */
		if (up->state == UP_QUIT || up->state == UP_DEAD || up->pooled)
			up_kill(up);
		else
			up_fail(up, res == 0 ? "closed by upstream" : "recv failed",
				"451 4.4.2 Upstream connection lost");
		return;
	}
	if (up->tls != NULL)
		up_tls_recv(up, (size_t)res);
	else
		up_parse(up, up->rbuf, (size_t)res);
	if (up->state == UP_DEAD)
		return;
	if (up->exp_len == 0 && !up->sending && !up->pooled) /* pooled: the idle timer runs */
		timer_disarm(&up->timer);
	up_arm_recv(up);
}

/* Under TLS: a send of ciphertext completed. */
static void
up_on_tls_sent(struct upstream *up, int res)
{
	up->sending = false;
	up->tls_sending = 0;
	if (res < 0) {
		up_fail(up, "send failed", "451 4.4.2 Upstream connection lost");
		return;
	}
	tls_out_consumed(up->tls, (size_t)res);
	if (up->body_sending) {
		timer_arm(&up->sh->timers, &up->timer, TIMER_UPSTREAM, up->sh->now_ms);
		up_tls_body(up);
		return;
	}
	up_submit_cmds(up);
}

static void
up_on_send(struct upstream *up, const struct io_uring_cqe *cqe)
{
	bool body = up->body_sending;
	size_t sent;

	if (up->tls_sending != 0) {
		up_on_tls_sent(up, cqe->res);
		return;
	}
	up->sending = false;
	up->body_sending = false;
	if (cqe->res < 0) {
		up_fail(up, "send failed", "451 4.4.2 Upstream connection lost");
		return;
	}
	sent = (size_t)cqe->res;
	if (body) {
		/* a short sendmsg: skip what went out and send the rest */
		for (int i = 0; i < 2 && sent > 0; i++) {
			size_t k = sent < up->iov[i].iov_len ? sent : up->iov[i].iov_len;

			up->iov[i].iov_base = (char *)up->iov[i].iov_base + k;
			up->iov[i].iov_len -= k;
			sent -= k;
		}
		if (up->spool != NULL) /* a spilled message: what went out is not ours to hold */
			spool_release_sent(up->spool,
					   (size_t)((char *)up->iov[1].iov_base - up->spool->base));
		if (up->iov[0].iov_len + up->iov[1].iov_len != 0)
			up_submit_body(up);
		else
			up->state = UP_READY; /* the reply to the content comes as EXP_DOT */
		up_reap_spools(up);
		return;
	}
	up->cmd_off += (uint32_t)sent;
	if (up->cmd_off == up->cmd_len)
		up->cmd_off = up->cmd_len = 0;
	up_submit_cmds(up);
}

void
up_on_cqe(struct shard *sh, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct upstream *up = pool_lookup(&sh->upstreams, uop_slot(ud), uop_gen(ud));

	if (up == NULL) {
		shard_count(&sh->stats.stale_cqes, 1);
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		up->inflight--;
	up->in_cqe = true; /* no free until the end of this handler */
	switch (uop_kind(ud)) {
	case UOP_UP_CONNECT:
		if (up->state == UP_DEAD)
			break;
		if (cqe->res < 0) {
			up_fail(up, "connect failed", "451 4.4.1 Upstream unreachable");
			break;
		}
		up->state = UP_GREETING;
		up_push_expect(up, EXP_GREETING);
		timer_arm(&sh->timers, &up->timer, TIMER_UP_CONNECT, sh->now_ms);
		up_arm_recv(up);
		break;
	case UOP_UP_RECV:
		up_on_recv(up, cqe->res);
		break;
	case UOP_UP_SENDZC:
		if (cqe->flags & IORING_CQE_F_NOTIF) {
			up->zc_notifs--;
			up_reap_spools(up);
			break;
		}
		if (!(cqe->flags & IORING_CQE_F_MORE))
			up->zc_notifs--; /* no notification will follow */
					 /* fall through */
	case UOP_UP_SEND:
		if (up->state == UP_DEAD) {
			up->sending = false;
			up->body_sending = false;
			break;
		}
		up_on_send(up, cqe);
		break;
	default:
		BUG_ON(1);
	}
	up->in_cqe = false;
	up_maybe_free(up);
}

void
up_on_timer(struct upstream *up)
{
	if (up->pooled) {
		up_pool_unlink(up); /* idle too long: close it politely */
		up_quit(up);
		return;
	}
	up_fail(up, "timeout", "451 4.4.2 Upstream timeout");
}
