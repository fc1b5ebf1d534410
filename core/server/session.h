/*
 * session.h -- one SMTP client connection on a shard: the glue that joins
 * the io_uring transport (core/shard), the pure SMTP parsers (proto/) and
 * the upstream relay (core/upstream).
 *
 * Three small state variables rather than one large one (STYLE.md):
 * the transport state (conn), the protocol state (state) and the input mode
 * (rx). A session lives in the shard's session pool; io_uring operations
 * name it by (slot, generation), and it is freed only when it is closing and
 * no operation is in flight (STYLE rule 1).
 *
 * Relay contract (issue 3): the upstream transaction is opened when the
 * first RCPT arrives; each upstream RCPT reply and the end-of-data reply are
 * relayed to the client as its own reply, so 250 at end of data is only
 * ever the upstream's own 250 for the same bytes (DESIGN.md invariant 1).
 */
#ifndef SLUICE_CORE_SESSION_H
#define SLUICE_CORE_SESSION_H

#include <liburing.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth/srs.h"
#include "core/chunk.h"
#include "core/spool.h"
#include "core/server/zonectl.h"
#include "core/timer.h"
#include "proto/smtp_bdat.h"
#include "proto/smtp_cmd.h"
#include "proto/smtp_data.h"
#include "proto/smtp_line.h"
#include "proto/smtp_reply.h"

struct shard;
struct upstream;
struct nexthop_result;

#define SESS_MAX_HELO	   256 /* bytes of HELO/EHLO argument kept for Received and logs */
#define SESS_MAX_PATH	   516 /* RFC 5321 4.5.3.1.3: 256-octet path, plus UTF-8 slack */
#define SESS_REPLY_RESERVE (SMTP_REPLY_MAX + 512) /* output room needed to run a command */
#define SESS_ENV_LOG_MAX   4096		/* bytes of recipient list kept for the tx log line */
#define SESS_DATA_RECV_MAX (256 * 1024) /* bytes per recv straight into the spool */
#define SESS_DATA_RECV_MIN 4096		/* below this much spool room, use provided buffers */
#define TX_MAX_LEGS	   8		/* destination hosts one transaction fans out to */
#define TX_LEG_KEY	   280		/* "domain:port", "[ip]:port", or the relay host */
#define TX_DEST_TRACK	   128		/* accepted destinations followed for core/dedup */

enum sess_conn {
	CONN_OPEN,    /* reading and writing */
	CONN_CLOSING, /* [final] no more input; flush, shut down, free at inflight == 0 */
};

enum smtp_state {
	SMTP_S_HELO, /* banner sent; HELO/EHLO expected */
	SMTP_S_IDLE, /* greeted, no transaction */
	SMTP_S_MAIL, /* MAIL accepted; RCPT expected */
	SMTP_S_RCPT, /* >= 1 RCPT accepted by the upstream; RCPT, DATA or BDAT */
	SMTP_S_QUIT, /* [final] 221/421 queued; close after flush */
};

enum smtp_rx_mode {
	RX_COMMAND, /* CRLF-terminated command lines */
	RX_DATA,    /* message content until CRLF.CRLF */
	RX_BDAT,    /* exactly bdat_left octets */
	RX_PAUSED,  /* waiting for the upstream; input stays held */
};

enum sess_wait {
	WAIT_NONE,
	WAIT_RCPT, /* upstream answers to the RCPTs of the client's RCPT (tx->route) */
	WAIT_DOT,  /* upstream answer to the message */
};

#define SESS_F_RECV_ARMED  0x0001 /* a recv SQE is in flight */
#define SESS_F_SENDING	   0x0002 /* a send SQE is in flight */
#define SESS_F_ESMTP	   0x0004 /* greeted with EHLO */
#define SESS_F_DRAIN	   0x0008 /* shutdown: 421 and close when the tx ends */
#define SESS_F_OUT_BLOCKED 0x0010 /* input waits for output room */
#define SESS_F_BDAT_SINK   0x0020 /* BDAT octets are read and thrown away */
#define SESS_F_SHUT	   0x0040 /* shutdown(2) done */

/*
 * The client RCPT being routed: its forward rule's destination groups, each
 * an ordered list of candidates (the first, then its `|` fallbacks). The
 * first candidate of every group goes upstream at once; a refused one is
 * replaced by the next candidate of its group. The client gets one reply
 * when every group is settled: 250 only if each group has a destination
 * that said 250 (DESIGN.md invariant 1 at RCPT time).
 */
struct rcpt_route {
	struct chunk *text; /* owned: the candidates' addresses, NUL-terminated */
	uint16_t cand[ZONE_MAX_GROUPS][ZONE_MAX_FALLBACKS]; /* offsets in text */
	uint8_t ncand[ZONE_MAX_GROUPS];			    /* candidates per group */
	uint8_t tried[ZONE_MAX_GROUPS];			    /* candidate of each group sent last */
	uint16_t port[ZONE_MAX_GROUPS][ZONE_MAX_FALLBACKS]; /* explicit ports, 0 = none */
	uint8_t nwait;					    /* groups whose reply is due */
	uint8_t ngroups, nok, nfailed; /* groups, groups settled with 250 / refused */
	uint16_t first_track;	       /* tx->ntrack when the route began */
	bool have_answer;	       /* answer holds a reply */
	struct smtp_reply answer;      /* what the client gets: the first 250, or the
					  refusal (a 4xx before a 5xx: a retry can help) */
};

/*
 * One destination host of a transaction and its upstream transaction
 * (core/server/leg.h). Every reply it relays names it: "[host]".
 */
struct tx_leg {
	char key[TX_LEG_KEY];	/* pool key: "domain:port/tls-policy" (port 0: MX), or the relay */
	char host[TX_LEG_KEY];	/* domain or "[ip]" as the destination gave it */
	uint16_t port;		/* explicit port, 0 = mx-port */
	uint8_t tls;		/* enum config_tls: the destination's TLS policy */
	bool pooled;		/* its upstream came from the pool (a retry starts afresh) */
	bool failed;		/* no address left, or lost: RCPTs get fail_reply */
	bool lost;		/* its upstream went away after accepting RCPTs */
	bool want_data;		/* DATA may follow the queued RCPTs (leg_flush) */
	bool data_due;		/* the end-of-data reply is awaited */
	bool data_ok;		/* ... and it was 2xx */
	const char *fail_reply; /* static reply for `failed` */
	struct upstream *up;	/* NULL while resolving or between addresses */
	struct nexthop_result *nh;     /* owned (malloc): the addresses left to try */
	uint64_t nh_handle;	       /* resolution in flight, 0 if none */
	uint64_t deadline_ms;	       /* no new address is tried after this */
	unsigned next_cand;	       /* index in nh of the next address to try */
	uint8_t fifo[ZONE_MAX_GROUPS]; /* route groups whose RCPT reply is due, in order */
	uint8_t fifo_head, nwait;      /* ring position; replies due */
	uint8_t nsent;		       /* ... of which handed to the upstream */
	uint32_t ndests;	       /* destinations it accepted */
};

/*
 * An accepted destination as core/dedup follows it: which leg took it, and
 * whether its client RCPT was refused (another group failed), so that the
 * sender will send it again although this host got it.
 */
struct tx_dest {
	uint16_t off; /* of the address in tx->dests */
	uint8_t leg;  /* index in tx->legs */
	bool orphan;  /* its client RCPT was refused */
};

/* One mail transaction: MAIL FROM up to the final reply or RSET. */
struct smtp_tx {
	bool smtputf8;			     /* MAIL had SMTPUTF8 */
	bool body_8bit;			     /* MAIL had BODY=8BITMIME */
	uint64_t declared_size;		     /* MAIL SIZE=, 0 if absent */
	char from[SESS_MAX_PATH];	     /* reverse-path without <>, NUL-terminated */
	char srs_from[SRS_ADDR_BUF];	     /* from rewritten with SRS, when it was */
	const char *up_from;		     /* what the upstream gets: from or srs_from */
	char rcpt[SESS_MAX_PATH];	     /* the RCPT being routed now */
	char rcpts[SESS_ENV_LOG_MAX];	     /* accepted recipients for the log, NUL-separated */
	uint32_t rcpts_len;		     /* bytes used in rcpts */
	bool rcpts_truncated;		     /* some accepted recipients did not fit */
	char dests[SESS_ENV_LOG_MAX];	     /* destinations the upstream accepted, NUL-separated:
						the log, and no destination is sent twice */
	uint32_t dests_len;		     /* bytes used in dests */
	bool dests_truncated;		     /* some accepted destinations did not fit */
	uint32_t nrcpt;			     /* RCPT commands seen */
	uint32_t naccepted;		     /* RCPTs answered 2xx (forwarded or dropped) */
	uint32_t ndropped;		     /* ... of which by a drop rule */
	uint32_t nrejected;		     /* RCPTs refused (by us or the upstream) */
	uint32_t ndests;		     /* destinations the upstream accepted */
	struct tx_dest track[TX_DEST_TRACK]; /* the first of them (core/dedup) */
	uint16_t ntrack;		     /* entries in track */
	bool untracked;			     /* some accepted destinations are not in track */
	struct zone_snap zones;		     /* the zone table this transaction routes with */
	struct rcpt_route route;	     /* the RCPT waiting for the upstream */
	struct tx_leg legs[TX_MAX_LEGS];     /* one per destination host (core/server/leg.h) */
	uint8_t nlegs;			     /* legs in use */
	uint8_t data_wait;		     /* legs whose end-of-data reply is due */
	uint8_t data_failed;		     /* legs that refused the message or failed */
	bool have_data_answer;		     /* data_answer holds a reply */
	uint64_t content_hash;		     /* of the content, when dedup needs it (else 0) */
	struct smtp_reply data_answer;	     /* end-of-data reply so far: the first 250, or
						the failure (4xx before 5xx) */
	struct spool *spool;		     /* owned; NULL until DATA/BDAT */
	bool spool_overflow;		     /* content did not fit the spool */
	bool spool_file;		     /* the spool is file-backed (past spool-memory) */
	struct smtp_data data;		     /* DATA automaton */
	struct smtp_stuff stuff;	     /* BDAT -> DATA stuffing */
	bool bdat_seen;			     /* this tx used BDAT */
	uint64_t started_ns;		     /* when MAIL arrived (monotonic) */
	uint32_t slot;			     /* pool slot in shard->txs */
};

struct session {
	struct shard *sh;		/* owning shard */
	uint32_t slot, gen;		/* pool identity, for user_data */
	int fd;				/* owned: client socket */
	uint16_t inflight;		/* SQEs in flight naming this session */
	uint16_t flags;			/* SESS_F_* */
	uint8_t conn;			/* enum sess_conn */
	uint8_t state;			/* enum smtp_state */
	uint8_t rx;			/* enum smtp_rx_mode */
	uint8_t wait;			/* enum sess_wait */
	uint32_t errors;		/* protocol errors so far */
	uint64_t id;			/* session id: shard << 48 | counter */
	char idtext[17];		/* id as 16 hex digits, for logs and Received */
	uint64_t started_ns;		/* accept time (monotonic) */
	uint64_t bytes_in;		/* bytes received */
	uint32_t ntx;			/* transactions finished (numbers the next one) */
	uint64_t bdat_left;		/* octets left in the current BDAT chunk */
	bool bdat_last;			/* the current BDAT chunk is LAST */
	struct timer timer;		/* command/data deadline */
	struct sockaddr_storage peer;	/* client address */
	char peer_ip[INET6_ADDRSTRLEN]; /* text form of peer */
	char helo[SESS_MAX_HELO];	/* HELO/EHLO argument, NUL-terminated */
	const char *close_reason;	/* static text for the session log */
	struct chunk *out;		/* owned: replies not yet sent; NULL if none */
	struct chunk *sending;		/* owned: replies in the send SQE */
	struct chunk *held;		/* owned: input held while paused; NULL if none */
	const char *rest;		/* input after the command being run (pump only) */
	size_t rest_len;		/* bytes at rest */
	struct smtp_tx *tx;		/* owned (shard->txs); NULL outside a transaction */
	struct smtp_line line;		/* command-line staging (2 KiB, touched only when a
					 * line spans two reads) */
};

/* Start a session on an accepted socket. Closes fd itself on failure. */
void sess_accept(struct shard *sh, int fd, const struct sockaddr_storage *peer);

/* Completion handlers, called by the shard's dispatcher. */
void sess_on_recv(struct shard *sh, const struct io_uring_cqe *cqe);
void sess_on_recv_spool(struct shard *sh, const struct io_uring_cqe *cqe);
void sess_on_send(struct shard *sh, const struct io_uring_cqe *cqe);
void sess_on_timer(struct session *sess);

/* Shutdown: 421 now if idle, else when the current transaction ends. */
void sess_drain(struct session *sess, bool force);

/* Results from the upstream of leg `leg` (core/upstream.c). */
void sess_up_rcpt_reply(struct session *sess, unsigned leg, const struct smtp_reply *r);
void sess_up_data_reply(struct session *sess, unsigned leg, const struct smtp_reply *r);
void sess_up_failed(struct session *sess, unsigned leg, const char *reply, bool nothing_sent);

/* Leg `leg` has no address left (core/server/leg.c): its RCPTs get `reply`. */
void sess_leg_failed(struct session *sess, unsigned leg, const char *reply);

/* Resume a session whose recv found no buffer or whose output was full (tick). */
void sess_retry_recv(struct session *sess);

/* The session in `slot` if its generation is `gen`, else NULL. */
struct session *sess_lookup(struct shard *sh, uint32_t slot, uint32_t gen);

#endif /* SLUICE_CORE_SESSION_H */
