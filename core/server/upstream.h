/*
 * upstream.h -- the SMTP client side: one connection to the relay target,
 * owned by one client session and reused for its later transactions.
 *
 * The upstream speaks SMTP as a client (RFC 5321 client rules, RFC 2920
 * pipelining when offered): greeting, EHLO (HELO if EHLO is refused),
 * STARTTLS and EHLO again (RFC 3207) when upstream-tls asks for it,
 * then per transaction MAIL, RCPT..., DATA, content, and RSET between
 * transactions when one was left open. Replies are matched to commands in
 * order through a small queue of expected replies. The session asks for
 * actions (up_rcpt, up_data, up_rset) and gets the answers it relays
 * through sess_up_* callbacks; it never sees upstream I/O.
 *
 * Lifetime: created by up_open() for a session, given back by
 * up_release(). After release the upstream finishes what is in flight
 * (a polite QUIT when idle), then frees itself; completions find it by
 * (slot, generation) like sessions.
 */
#ifndef SLUICE_CORE_UPSTREAM_H
#define SLUICE_CORE_UPSTREAM_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/spool.h"
#include "core/tls.h"
#include "core/timer.h"
#include "proto/smtp_reply.h"

struct shard;
struct session;

#define UP_MAX_RCPT	16    /* RCPTs waiting to be sent (one client RCPT's destinations) */
#define UP_MAX_EXPECT	32    /* replies outstanding at most: MAIL + UP_MAX_RCPT RCPTs + DATA ... */
#define UP_CMD_BUF	16384 /* command bytes queued at most: MAIL + UP_MAX_RCPT long RCPTs */
#define UP_RECV_BUF	4096  /* bytes per recv */
#define UP_POOL_MAX	64    /* idle connections kept per shard, all destinations */
#define UP_POOL_PER_KEY 32    /* ... of which to one destination (pool key) */
#define UP_KEY_MAX	280   /* pool key: "host:port" of a destination, or the relay host */
#define UP_NAME_MAX	256   /* host name TLS checks (an MX host, the relay host) */
#define UP_MAX_RETIRED	4     /* sent spools whose zero-copy notifications are due */
#define UP_POOL_IDLE_MS 5000  /* an idle pooled connection is closed after this long */

enum up_state {
	UP_CONNECTING, /* connect SQE in flight */
	UP_GREETING,   /* waiting for 220 */
	UP_EHLO,       /* EHLO sent */
	UP_HELO,       /* EHLO refused, HELO sent */
	UP_STARTTLS,   /* STARTTLS sent, waiting for 220 */
	UP_HANDSHAKE,  /* TLS handshake in progress (then EHLO again, RFC 3207) */
	UP_READY,      /* greeted: transactions may run */
	UP_BODY,       /* content being sent */
	UP_QUIT,       /* [final] QUIT sent, closing */
	UP_DEAD,       /* [final] failed or closed; freed at inflight == 0 */
};

enum up_expect {
	EXP_GREETING,
	EXP_EHLO,
	EXP_HELO,
	EXP_STARTTLS,
	EXP_MAIL,
	EXP_RCPT,
	EXP_DATA,
	EXP_DOT,
	EXP_RSET,
	EXP_QUIT,
};

/* Where an upstream connects, and how (one candidate address of a destination). */
struct up_target {
	const struct sockaddr *addr; /* the address to connect to */
	socklen_t addrlen;
	const char *key;     /* pool key: the destination ("dest.test:25"), or the relay host */
	const char *name;    /* host name the certificate must match; logs */
	enum config_tls tls; /* none | opportunistic | verify */
};

struct upstream {
	struct shard *sh;	       /* owning shard */
	uint8_t leg;		       /* index of the session's leg (transaction fan-out) */
	uint8_t tls_policy;	       /* enum config_tls */
	char key[UP_KEY_MAX];	       /* pool key (struct up_target) */
	char name[UP_NAME_MAX];	       /* TLS name and logs */
	uint32_t slot, gen;	       /* pool identity */
	uint32_t sess_slot, sess_gen;  /* owning session; sess_gen 0 ... see attached */
	bool attached;		       /* a session owns us */
	bool recv_armed;	       /* a recv SQE is in flight */
	bool sending;		       /* a send SQE is in flight */
	bool body_sending;	       /* ... and it carries the content, not commands */
	bool in_cqe;		       /* a completion handler runs: free only at its end */
	uint16_t zc_notifs;	       /* zero-copy sends whose notification is still due */
	bool tx_open;		       /* MAIL accepted upstream */
	bool mail_inflight;	       /* MAIL sent, reply outstanding */
	bool mail_failed;	       /* MAIL refused in this round */
	bool want_data;		       /* the client pipelined DATA behind these RCPTs */
	bool answering;		       /* answering queued RCPTs with MAIL's refusal */
	const char *pend[UP_MAX_RCPT]; /* RCPT addresses not sent yet (the session's memory) */
	uint8_t pend_head, pend_len;   /* ring position and length */
	uint8_t rcpt_outstanding;      /* RCPTs sent whose reply is due */
	uint8_t rcpt_ignore;	       /* ... of which the replies are not relayed (after RSET) */
	bool early_data;	       /* DATA sent ahead of the content (see up_rcpt) */
	bool data_open;		       /* the upstream said 354: it waits for content */
	bool data_refused;	       /* the upstream refused the early DATA: data_reply */
	bool reused;		       /* carried at least one transaction before */
	bool pooled;		       /* idle in the shard's pool (no session owns it) */
	struct upstream *pool_prev, *pool_next; /* links in the shard's pool */
	uint8_t state;				/* enum up_state */
	int fd;					/* owned: socket */
	uint16_t inflight;			/* SQEs in flight */
	uint8_t expect[UP_MAX_EXPECT];		/* ring of enum up_expect */
	uint8_t exp_head, exp_len;		/* ring position and length */
	struct timer timer;			/* connect/reply deadline */
	struct smtp_ehlo_caps caps;		/* what the upstream offers */
	char cmd[UP_CMD_BUF];			/* commands to send: [cmd_off, cmd_len) */
	uint32_t cmd_len, cmd_off;		/* queued bytes and bytes already sent */
	uint32_t cmd_sending;			/* bytes in the send SQE */
	char rbuf[UP_RECV_BUF];			/* recv target (ciphertext under TLS) */
	struct tls_conn *tls;			/* owned: after STARTTLS; NULL in plaintext */
	uint32_t tls_sending;			/* ciphertext bytes in the send SQE */
	bool body_encrypted;			/* under TLS: all content went into tls_write */
	char pbuf[UP_RECV_BUF];			/* plaintext decrypted from rbuf */
	struct smtp_reply reply;		/* reply being parsed */
	struct smtp_reply mail_reply;		/* MAIL's refusal, relayed for the RCPT */
	struct smtp_reply data_reply;	       /* early DATA's refusal, relayed at end of content */
	struct spool *spool;		       /* owned during UP_BODY; NULL otherwise */
	struct spool *retired[UP_MAX_RETIRED]; /* held: sent spools the kernel may still read
						  (zero copy) */
	uint8_t nretired;		       /* ... how many */
	char hdr[1024];			       /* headers we prepend (Received) */
	struct iovec iov[2];		       /* body send: hdr + spool */
	struct msghdr msg;		       /* body send */
	const char *fail_reason;	       /* static text for logs */
};

/*
 * Open a connection to `t` for leg `leg` of `sess` (t's strings are
 * copied). Returns 0 and the upstream, or a negative errno (pool
 * exhausted, socket failure) with no callback to come.
 */
int up_open(struct shard *sh, struct session *sess, unsigned leg, const struct up_target *t,
	    struct upstream **out);

/*
 * Send n RCPTs (addresses without <>; the strings must stay valid until
 * each one's reply was delivered, or the transaction was reset): MAIL goes
 * first if the transaction is not open upstream. Each gets exactly one
 * sess_up_rcpt_reply(), in order, unless sess_up_failed() ends them all.
 * With PIPELINING they leave in one write, else one at a time. With
 * `then_data` (the client pipelined DATA right behind its RCPT, and no
 * further RCPT will follow) and an upstream that offers PIPELINING, DATA
 * goes in the same write: the upstream's 354 then arrives while the
 * client's content does, which saves a round trip and two operations per
 * message.
 */
void up_rcpts(struct upstream *up, const char *const addrs[], unsigned n, bool then_data);

/*
 * The early DATA's refusal, if the upstream refused it (the session relays
 * it as the end-of-data reply instead of sending the content), else NULL.
 */
const struct smtp_reply *up_data_refusal(const struct upstream *up);

/*
 * Send the message: DATA, then hdr (hdrlen bytes, copied) and the spool,
 * of which the upstream now holds one reference (spool_ref). Exactly one sess_up_data_reply() or
 * sess_up_failed() follows.
 */
void up_data(struct upstream *up, const char *hdr, size_t hdrlen, struct spool *spool);

/*
 * End an open upstream transaction (RSET); its reply is not relayed.
 * Returns false when the upstream could not be reset and was released
 * instead: the caller must forget it.
 */
bool up_rset(struct upstream *up);

/*
 * True when the upstream can carry another transaction (not closing, and
 * room to retire one more spool).
 */
bool up_is_usable(const struct upstream *up);

/*
 * The session lets go: an idle connection goes to the shard's pool for the
 * next session (at most UP_POOL_MAX, for UP_POOL_IDLE_MS), one in the middle
 * of something is aborted; one that cannot be pooled says QUIT. It frees
 * itself later.
 */
void up_release(struct upstream *up);

/*
 * An idle pooled connection to `key` (struct up_target) for leg `leg` of
 * `sess`, attached to it, or NULL: a leg tries this before resolving and
 * connecting, so a busy destination does not cost a DNS lookup, a TCP and a
 * TLS handshake per message.
 */
struct upstream *up_pool_take(struct shard *sh, struct session *sess, unsigned leg,
			      const char *key);

/* QUIT every pooled connection (shutdown). */
void up_pool_flush(struct shard *sh);

/* Completion handlers, called by the shard's dispatcher. */
void up_on_cqe(struct shard *sh, const struct io_uring_cqe *cqe);
void up_on_timer(struct upstream *up);

#endif /* SLUICE_CORE_UPSTREAM_H */
