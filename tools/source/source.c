/*
 * source.c -- sluice-source: an io_uring SMTP load generator in the spirit
 * of Postfix smtp-source. It drives -s sessions in parallel through -m
 * messages, measures per-message latency (MAIL sent -> end-of-data reply),
 * and writes a ledger line for every message the server accepted with 250,
 * to be compared with the receiving sink's ledger (sort | diff).
 *
 * Structure: one thread, one ring, one slot per session. user_data carries
 * (op, generation, slot); a slot's generation is bumped whenever its socket
 * is closed, so completions for an old connection are recognised as stale.
 * Per slot at most one recv and one send are in flight; a send that must wait
 * for the previous one is parked in a one-entry queue.
 *
 * Message content is generated once per size at start-up (printable ASCII
 * lines of at most 78 characters + CRLF, optional leading dots) in both plain
 * and dot-stuffed form; only the header block differs per message and is
 * fixed-width, so every message of a size class has exactly the same length.
 * A message leaves in one sendmsg: [header, stuffed body, ".\r\n"]. MAIL,
 * RCPT... and DATA leave in one write when the server offers PIPELINING
 * (RFC 2920); that text is also prepared once per size.
 *
 * Failure accounting: every message ends as exactly one of accepted (250 to
 * the end of data), rejected (a 4xx/5xx to MAIL/RCPT/DATA/end of data) or
 * failed (connection error or timeout while it was in progress, or never
 * attempted because every session gave up reconnecting).
 *
 * Decisions: timeouts come from one 50 ms tick that scans the slots rather
 * than a linked timeout per request: one SQE per tick instead of one per
 * reply, and shutdown(2) is enough to make the stuck ops complete.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "core/check.h"
#include "tools/common/tool_ledger.h"
#include "tools/common/tool_loop.h"
#include "tools/common/tool_parse.h"
#include "tools/common/tool_reply.h"
#include "tools/common/tool_stats.h"

#define SRC_RBUF	   4096	    /* reply receive buffer per session */
#define SRC_HDR_MAX	   1024	    /* generated header block */
#define SRC_MAX_FAILS	   10	    /* consecutive connection failures before a slot gives up */
#define SRC_TICK_NS	   50000000 /* timeout scan period */
#define SRC_MAX_SIZES	   4096	    /* entries in the -l rotation */
#define SRC_MAX_SAMPLES	   10000000 /* latency samples kept */
#define SRC_IDLE_INFLIGHT  256	    /* --idle: handshakes in progress at once */
#define SRC_MAX_LINE_CHARS 78	    /* RFC 5322 2.1.1 recommended line length */

enum src_op {
	OP_CONNECT = 1, /* connect(2) of a slot's socket */
	OP_RECV,	/* recv into conn->rbuf */
	OP_SEND,	/* sendmsg of conn->iov */
	OP_TICK,	/* the 50 ms timer */
	OP_SIGNAL,	/* read on the signalfd */
};

enum src_state {
	ST_DOWN,     /* no socket; waiting to (re)connect at reconnect_at, or done */
	ST_CONNECT,  /* connect in flight */
	ST_GREETING, /* waiting for 220 */
	ST_EHLO,     /* EHLO sent */
	ST_HELO,     /* EHLO refused, HELO sent */
	ST_IDLE,     /* --idle: session open and quiet [final until signal] */
	ST_MAIL,     /* MAIL sent (and maybe RCPT/DATA pipelined behind it) */
	ST_RCPT,     /* waiting for RCPT replies */
	ST_DATA,     /* waiting for the DATA reply (354) */
	ST_CONTENT,  /* message sent or being sent; waiting for the end-of-data reply */
	ST_RSET,     /* RSET sent after a rejection */
	ST_QUIT,     /* QUIT sent */
};

struct src_size {
	uint64_t size;	 /* content bytes per message (header + plain body) */
	char *plain;	 /* owned; body as hashed (unstuffed) */
	char *wire;	 /* owned (or == plain without --dots); body as sent */
	size_t body_len; /* bytes of plain */
	size_t wire_len; /* bytes of wire */
	char *batch[2];	 /* owned; MAIL..DATA text, [1] with SIZE=, [0] without */
	size_t *off[2];	 /* owned; line starts in batch: MAIL, RCPT 1..r, DATA, end */
};

struct src_conn {
	int fd;		       /* owned; -1 when ST_DOWN */
	uint32_t slot;	       /* index in source.conns */
	uint32_t gen;	       /* bumped when fd is closed */
	unsigned inflight;     /* SQEs submitted for this gen, not completed */
	enum src_state st;     /* see enum */
	bool closing;	       /* shut down; fd closed once inflight == 0 */
	bool recv_armed;       /* a recv into rbuf + rlen is in flight */
	bool send_armed;       /* a sendmsg of iov is in flight */
	bool q_pending;	       /* q_iov waits for the send in flight */
	bool done;	       /* slot finished: will not reconnect */
	bool pipelining;       /* the server offered PIPELINING */
	bool size_ext;	       /* the server offered SIZE */
	bool counted_open;     /* --idle: counted in source.idle_open */
	unsigned fails;	       /* consecutive failures without a finished message */
	uint64_t deadline;     /* ns; a reply is due by then; 0 = none */
	uint64_t reconnect_at; /* ns; when ST_DOWN and not done */
	/* message in progress */
	int64_t msg;		  /* message index, or -1 */
	const struct src_size *z; /* size class of msg */
	bool mail_ok;		  /* MAIL got 2xx */
	bool doomed;		  /* 354 without valid recipients: "." only, count rejected */
	unsigned rcpt_replies;	  /* RCPT replies so far */
	unsigned rcpt_ok;	  /* RCPT 2xx replies */
	uint64_t t_mail;	  /* ns when MAIL was sent */
	/* output */
	struct msghdr mh;      /* for the send in flight */
	struct iovec iov[3];   /* send in flight; iov[iov_i..iov_n) still to go */
	unsigned iov_n, iov_i; /* see iov */
	struct iovec q_iov[3]; /* parked send */
	unsigned q_n;	       /* entries in q_iov */
	char line[600];	       /* EHLO/HELO/RSET/QUIT text */
	char hdr[SRC_HDR_MAX]; /* header block of msg */
	size_t hdrlen;	       /* bytes in hdr */
	/* input */
	struct tool_reply rp; /* reply reader state */
	size_t rlen;	      /* bytes in rbuf */
	char rbuf[SRC_RBUF];  /* received, not yet parsed */
};

struct source {
	/* options */
	struct sockaddr_storage addr; /* server */
	socklen_t addrlen;	      /* of addr */
	unsigned sessions;	      /* -s */
	uint64_t total;		      /* -m */
	unsigned rcpts;		      /* -r */
	const char *from;	      /* -f */
	const char *to;		      /* -t */
	bool no_pipelining;	      /* -P */
	bool one_per_conn;	      /* -1 */
	bool dots;		      /* --dots */
	uint64_t timeout_ns;	      /* --timeout */
	uint64_t idle;		      /* --idle N; 0 = load mode */
	uint64_t hold_ns;	      /* --hold; 0 = until a signal */
	const char *helo;	      /* EHLO argument */
	bool quiet;		      /* no diagnostics */
	struct src_size *sizes;	      /* owned; distinct size classes */
	unsigned nsizes;	      /* entries in sizes */
	const struct src_size **rot;  /* owned; -l rotation, pointers into sizes */
	unsigned nrot;		      /* entries in rot */
	/* run state */
	struct io_uring ring;		  /* the one ring */
	int sfd;			  /* signalfd */
	struct signalfd_siginfo si;	  /* OP_SIGNAL target */
	struct __kernel_timespec tick_ts; /* OP_TICK period */
	struct src_conn *conns;		  /* owned; one per session */
	unsigned nconns;		  /* entries in conns */
	struct tool_ledger ledger;	  /* --ledger */
	struct tool_stats lat;		  /* latencies */
	uint64_t next_msg;		  /* next message index to hand out */
	uint64_t sent, accepted;	  /* summary */
	uint64_t rejected, failed;	  /* summary */
	uint64_t bytes;			  /* content bytes of accepted messages */
	uint64_t stale;			  /* completions for an old generation */
	uint64_t t_start, t_end;	  /* ns */
	unsigned live;			  /* slots not done */
	uint64_t idle_open;		  /* --idle: sessions established */
	uint64_t idle_lost;		  /* --idle: sessions that failed or were closed */
	uint64_t idle_started;		  /* --idle: slots started so far */
	bool idle_reported;		  /* "idle: open=N" printed */
	uint64_t hold_until;		  /* ns; 0 = no --hold deadline yet */
	bool stop;			  /* leave the loop */
	unsigned long pid;		  /* for Message-IDs */
	uint64_t epoch;			  /* start time (s), for Message-IDs */
	time_t date_sec;		  /* second of date_str */
	char date_str[64];		  /* cached RFC 5322 date */
};

static void conn_event_done(struct source *s, struct src_conn *c);

static void warnx(const struct source *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
warnx(const struct source *s, const char *fmt, ...)
{
	va_list ap;

	if (s->quiet)
		return;
	va_start(ap, fmt);
	fputs("sluice-source: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static struct io_uring_sqe *
conn_sqe(struct source *s, struct src_conn *c, enum src_op op)
{
	struct io_uring_sqe *sqe = tool_loop_sqe(&s->ring);

	c->inflight++;
	io_uring_sqe_set_data64(sqe, tool_loop_ud(op, c->gen, c->slot));
	return sqe;
}

/* ---------------------------------------------------------------- content */

/* Fill the body of z: plain (hashed) and wire (dot-stuffed) forms. */
static int
body_make(struct src_size *z, size_t body_len, bool dots)
{
	size_t rem = body_len, pos = 0, wpos = 0;
	uint64_t j = 0;

	if (body_len == 1)
		body_len = rem = 2; /* a body is whole CRLF lines */
	z->plain = malloc(body_len + 1);
	z->wire = dots ? malloc(body_len + body_len / 2 + 2) : z->plain;
	if (z->plain == NULL || z->wire == NULL)
		return -ENOMEM;
	/* bounded: each line consumes at least 2 bytes of rem */
	while (rem > 0) {
		size_t len = rem - 2 < SRC_MAX_LINE_CHARS ? rem - 2 : SRC_MAX_LINE_CHARS;
		char *l = z->plain + pos;

		if (rem - (len + 2) == 1)
			len--; /* never leave a single byte: it cannot form a line */
		if (dots && j % 50 == 25 && (rem == 3 || rem >= 5))
			len = 1; /* a line that is just "." */
		for (size_t i = 0; i < len; i++) {
			l[i] = (char)(33 + (j * 7 + i) % 94);
			if (i == 0 && l[i] == '.')
				l[i] = '/';
		}
		if (dots && len > 0 && (j % 7 == 3 || j % 50 == 25))
			l[0] = '.';
		if (dots && len > 1 && j % 11 == 5)
			l[0] = l[1] = '.';
		l[len] = '\r';
		l[len + 1] = '\n';
		if (dots) {
			if (l[0] == '.' && len > 0)
				z->wire[wpos++] = '.'; /* RFC 5321 4.5.2 transparency */
			memcpy(z->wire + wpos, l, len + 2);
			wpos += len + 2;
		}
		pos += len + 2;
		rem -= len + 2;
		j++;
	}
	z->body_len = pos;
	z->wire_len = dots ? wpos : pos;
	return 0;
}

/* Envelope recipient number i (0-based) into buf. */
static void
rcpt_addr(const struct source *s, unsigned i, char *buf, size_t cap)
{
	const char *at = strchr(s->to, '@');

	if (s->rcpts == 1)
		snprintf(buf, cap, "%s", s->to);
	else if (at == NULL)
		snprintf(buf, cap, "rcpt%u+%s", i + 1, s->to);
	else
		snprintf(buf, cap, "rcpt%u+%.*s%s", i + 1, (int)(at - s->to), s->to, at);
}

/* MAIL, RCPT... and DATA for size class z, with or without SIZE=. */
static int
batch_make(const struct source *s, struct src_size *z, int with_size)
{
	size_t cap = 600 + (size_t)s->rcpts * 600, len = 0;
	char *b = malloc(cap);
	size_t *off = calloc(s->rcpts + 3, sizeof(*off));
	char addr[520];

	if (b == NULL || off == NULL) {
		free(b);
		b = NULL;
		free(off);
		off = NULL;
		return -ENOMEM;
	}
	off[0] = 0;
	if (with_size)
		len += (size_t)snprintf(b + len, cap - len, "MAIL FROM:<%s> SIZE=%" PRIu64 "\r\n",
					s->from, z->size);
	else
		len += (size_t)snprintf(b + len, cap - len, "MAIL FROM:<%s>\r\n", s->from);
	for (unsigned i = 0; i < s->rcpts; i++) {
		off[i + 1] = len;
		rcpt_addr(s, i, addr, sizeof(addr));
		len += (size_t)snprintf(b + len, cap - len, "RCPT TO:<%s>\r\n", addr);
	}
	off[s->rcpts + 1] = len;
	len += (size_t)snprintf(b + len, cap - len, "DATA\r\n");
	off[s->rcpts + 2] = len;
	z->batch[with_size] = b;
	z->off[with_size] = off;
	return 0;
}

/* The fixed-width header block of message idx into c->hdr. */
static void
hdr_make(struct source *s, struct src_conn *c, uint64_t idx)
{
	time_t now = time(NULL);
	int n;

	if (now != s->date_sec) {
		struct tm tm;

		gmtime_r(&now, &tm);
		/* C locale: fixed width ("Sun, 02 Nov 2025 10:00:00 +0000") */
		strftime(s->date_str, sizeof(s->date_str), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		s->date_sec = now;
	}
	n = snprintf(c->hdr, sizeof(c->hdr),
		     "Message-ID: <%010" PRIu64 ".%07lu.%012" PRIu64 "@source.sluice.test>\r\n"
		     "Date: %s\r\n"
		     "From: <%s>\r\n"
		     "To: <%s>\r\n"
		     "Subject: sluice-source message %012" PRIu64 "\r\n"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: text/plain; charset=us-ascii\r\n"
		     "\r\n",
		     s->epoch, s->pid, idx + 1, s->date_str, s->from, s->to, idx + 1);
	BUG_ON(n < 0 || (size_t)n >= sizeof(c->hdr)); /* from/to are length-checked */
	c->hdrlen = (size_t)n;
}

/* ---------------------------------------------------------------- output */

static void
send_submit(struct source *s, struct src_conn *c)
{
	struct io_uring_sqe *sqe = conn_sqe(s, c, OP_SEND);

	memset(&c->mh, 0, sizeof(c->mh));
	c->mh.msg_iov = c->iov + c->iov_i;
	c->mh.msg_iovlen = c->iov_n - c->iov_i;
	/* WAITALL: the kernel retries a short send itself on stream sockets */
	io_uring_prep_sendmsg(sqe, c->fd, &c->mh, MSG_NOSIGNAL | MSG_WAITALL);
	c->send_armed = true;
}

/* Send n buffers (valid until the send completes), or park them behind the send in flight. */
static void
out_send(struct source *s, struct src_conn *c, const struct iovec *iov, unsigned n)
{
	BUG_ON(n > 3 || c->q_pending);
	if (c->send_armed) {
		memcpy(c->q_iov, iov, n * sizeof(*iov));
		c->q_n = n;
		c->q_pending = true;
		return;
	}
	memcpy(c->iov, iov, n * sizeof(*iov));
	c->iov_n = n;
	c->iov_i = 0;
	send_submit(s, c);
}

static void
out_one(struct source *s, struct src_conn *c, const char *p, size_t n)
{
	struct iovec v = {.iov_base = (void *)(uintptr_t)p, .iov_len = n};

	out_send(s, c, &v, 1);
}

/* A reply is due from now on. */
static void
expect_reply(struct source *s, struct src_conn *c)
{
	c->deadline = tool_stats_now_ns() + s->timeout_ns;
}

static void
out_line(struct source *s, struct src_conn *c, const char *text)
{
	size_t n = (size_t)snprintf(c->line, sizeof(c->line), "%s\r\n", text);

	out_one(s, c, c->line, n);
	expect_reply(s, c);
}

/* ---------------------------------------------------------------- sessions */

static uint64_t
msgs_left(const struct source *s)
{
	return s->next_msg < s->total ? s->total - s->next_msg : 0;
}

/* Start closing c's socket; ops complete through shutdown, then conn_event_done closes it. */
static void
conn_close(struct src_conn *c)
{
	if (c->closing || c->fd < 0)
		return;
	c->closing = true;
	c->deadline = 0;
	shutdown(c->fd, SHUT_RDWR);
}

/* The session broke (I/O error, timeout, protocol error, early close). */
static void
conn_fail(struct source *s, struct src_conn *c, const char *why)
{
	if (c->closing)
		return;
	if (c->msg >= 0) {
		s->failed++;
		c->msg = -1;
	}
	c->fails++;
	if (c->fails == 1 || s->idle > 0)
		warnx(s, "session %u: %s", c->slot, why); /* once per run of failures */
	conn_close(c);
}

static void
conn_connect(struct source *s, struct src_conn *c)
{
	struct io_uring_sqe *sqe;
	int one = 1;

	c->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		warnx(s, "socket: %s", strerror(errno));
		c->fails++;
		c->reconnect_at = tool_stats_now_ns() + 100000000ull * c->fails;
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = ST_CONNECT;
	c->reconnect_at = 0;
	c->rlen = 0;
	c->msg = -1;
	c->q_pending = false;
	tool_reply_reset(&c->rp);
	sqe = conn_sqe(s, c, OP_CONNECT);
	io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&s->addr, s->addrlen);
	c->deadline = tool_stats_now_ns() + s->timeout_ns;
}

/* The socket is closed: reconnect later, or retire the slot. */
static void
conn_down(struct source *s, struct src_conn *c)
{
	c->st = ST_DOWN;
	if (s->idle > 0 && !c->counted_open)
		s->idle_lost++; /* never established: settles the count for "idle: open" */
	if (s->stop || s->idle > 0 || msgs_left(s) == 0 || c->fails >= SRC_MAX_FAILS) {
		if (!s->stop && s->idle == 0 && msgs_left(s) > 0)
			warnx(s,
			      "session %u: giving up after %u failures (last: connect or session "
			      "error)",
			      c->slot, c->fails);
		c->done = true;
		s->live--;
		return;
	}
	/* first retry at once (a fault-injected close), then back off */
	c->reconnect_at = tool_stats_now_ns() + (c->fails > 1 ? 100000000ull * (c->fails - 1) : 0);
	if (c->fails <= 1)
		conn_connect(s, c);
}

static void
send_quit(struct source *s, struct src_conn *c)
{
	c->st = ST_QUIT;
	out_line(s, c, "QUIT");
}

/* Begin the next transaction on c, or QUIT when there is none. */
static void
msg_next(struct source *s, struct src_conn *c)
{
	const struct src_size *z;
	int v;

	if (s->stop || msgs_left(s) == 0) {
		send_quit(s, c);
		return;
	}
	c->msg = (int64_t)s->next_msg++;
	c->z = z = s->rot[(uint64_t)c->msg % s->nrot];
	c->mail_ok = false;
	c->doomed = false;
	c->rcpt_replies = 0;
	c->rcpt_ok = 0;
	c->t_mail = tool_stats_now_ns();
	s->sent++;
	v = c->size_ext ? 1 : 0;
	if (c->pipelining && !s->no_pipelining)
		out_one(s, c, z->batch[v], z->off[v][s->rcpts + 2]);
	else
		out_one(s, c, z->batch[v], z->off[v][1]);
	c->st = ST_MAIL;
	expect_reply(s, c);
}

/* The current message is over (accepted or rejected): next message, or QUIT with -1. */
static void
msg_finished(struct source *s, struct src_conn *c)
{
	c->msg = -1;
	c->fails = 0;
	if (s->one_per_conn)
		send_quit(s, c);
	else
		msg_next(s, c);
}

/* A 4xx/5xx before the content: count it, RSET, continue. */
static void
msg_reject(struct source *s, struct src_conn *c)
{
	s->rejected++;
	c->msg = -1;
	c->fails = 0;
	c->st = ST_RSET;
	out_line(s, c, "RSET");
}

/* Send line k (0 = MAIL, 1..r = RCPT, r+1 = DATA) of the batch: no-pipelining mode. */
static void
send_batch_line(struct source *s, struct src_conn *c, unsigned k)
{
	int v = c->size_ext ? 1 : 0;
	const size_t *off = c->z->off[v];

	out_one(s, c, c->z->batch[v] + off[k], off[k + 1] - off[k]);
	expect_reply(s, c);
}

static void
send_content(struct source *s, struct src_conn *c)
{
	static const char dot[] = ".\r\n";
	struct iovec v[3];

	c->st = ST_CONTENT;
	if (c->doomed) {
		out_one(s, c, dot, 3);
	} else {
		hdr_make(s, c, (uint64_t)c->msg);
		v[0].iov_base = c->hdr;
		v[0].iov_len = c->hdrlen;
		v[1].iov_base = c->z->wire;
		v[1].iov_len = c->z->wire_len;
		v[2].iov_base = (void *)(uintptr_t)dot;
		v[2].iov_len = 3;
		out_send(s, c, v, 3);
	}
	expect_reply(s, c);
}

static void
msg_ledger(struct source *s, struct src_conn *c)
{
	XXH64_state_t xx;
	char id[128];

	if (s->ledger.fd < 0)
		return;
	XXH64_reset(&xx, 0);
	XXH64_update(&xx, c->hdr, c->hdrlen);
	XXH64_update(&xx, c->z->plain, c->z->body_len);
	snprintf(id, sizeof(id), "%010" PRIu64 ".%07lu.%012" PRIu64 "@source.sluice.test", s->epoch,
		 s->pid, (uint64_t)c->msg + 1);
	if (tool_ledger_write(&s->ledger, id, XXH64_digest(&xx), c->hdrlen + c->z->body_len) < 0)
		warnx(s, "ledger write failed");
}

static void
idle_check(struct source *s)
{
	if (s->idle_reported || s->idle_open + s->idle_lost < s->idle)
		return;
	s->idle_reported = true;
	printf("idle: open=%" PRIu64 "\n", s->idle_open);
	fflush(stdout);
	if (s->hold_ns > 0)
		s->hold_until = tool_stats_now_ns() + s->hold_ns;
}

static void
session_ready(struct source *s, struct src_conn *c)
{
	if (s->idle > 0) {
		c->st = ST_IDLE;
		c->deadline = 0;
		c->counted_open = true;
		s->idle_open++;
		idle_check(s);
		return;
	}
	msg_next(s, c);
}

/* One complete reply with this code, in c's current state. */
static void
on_reply(struct source *s, struct src_conn *c, int code)
{
	bool ok = code >= 200 && code < 300;

	expect_reply(s, c); /* the clock restarts for the next reply */
	if (code == 421 && c->st != ST_QUIT) {
		/* the server is closing the session (RFC 5321 3.8) */
		if (c->msg >= 0) {
			s->rejected++;
			c->msg = -1;
		}
		c->fails++;
		conn_close(c);
		return;
	}
	switch (c->st) {
	case ST_GREETING:
		if (code != 220) {
			conn_fail(s, c, "greeting refused");
			return;
		}
		c->st = ST_EHLO;
		c->pipelining = c->size_ext = false;
		snprintf(c->line, sizeof(c->line), "EHLO %s\r\n", s->helo);
		out_one(s, c, c->line, strlen(c->line));
		expect_reply(s, c);
		break;
	case ST_EHLO:
		if (ok) {
			session_ready(s, c);
		} else if (code >= 500) {
			c->st = ST_HELO;
			snprintf(c->line, sizeof(c->line), "HELO %s\r\n", s->helo);
			out_one(s, c, c->line, strlen(c->line));
			expect_reply(s, c);
		} else {
			conn_fail(s, c, "EHLO refused");
		}
		break;
	case ST_HELO:
		if (ok)
			session_ready(s, c);
		else
			conn_fail(s, c, "HELO refused");
		break;
	case ST_MAIL:
		c->mail_ok = ok;
		if (c->pipelining && !s->no_pipelining) {
			c->st = ST_RCPT;
		} else if (!ok) {
			msg_reject(s, c);
		} else {
			c->st = ST_RCPT;
			send_batch_line(s, c, 1);
		}
		break;
	case ST_RCPT:
		c->rcpt_replies++;
		if (ok)
			c->rcpt_ok++;
		if (c->pipelining && !s->no_pipelining) {
			if (c->rcpt_replies == s->rcpts)
				c->st = ST_DATA;
			else
				expect_reply(s, c);
		} else if (c->rcpt_replies < s->rcpts) {
			send_batch_line(s, c, c->rcpt_replies + 1);
		} else if (c->rcpt_ok == 0) {
			msg_reject(s, c);
		} else {
			c->st = ST_DATA;
			send_batch_line(s, c, s->rcpts + 1);
		}
		if (c->st == ST_DATA && c->pipelining && !s->no_pipelining)
			expect_reply(s, c);
		break;
	case ST_DATA:
		if (code != 354) {
			msg_reject(s, c);
			break;
		}
		/* RFC 2920 3.1: 354 with no valid recipient: send "." alone */
		c->doomed = !c->mail_ok || c->rcpt_ok == 0;
		send_content(s, c);
		break;
	case ST_CONTENT:
		tool_stats_add(&s->lat, tool_stats_now_ns() - c->t_mail);
		if (code == 250 && !c->doomed) {
			s->accepted++;
			s->bytes += c->hdrlen + c->z->body_len;
			msg_ledger(s, c);
		} else {
			s->rejected++;
		}
		msg_finished(s, c);
		break;
	case ST_RSET:
		msg_next(s, c);
		break;
	case ST_QUIT:
		conn_close(c);
		break;
	case ST_IDLE:
		break; /* unsolicited text while idle: ignore, the close will tell */
	case ST_DOWN:
	case ST_CONNECT:
		BUG_ON(1); /* no socket to read from */
	}
}

/* Parse the replies in rbuf. */
static void
on_input(struct source *s, struct src_conn *c)
{
	size_t off = 0;

	/* bounded: each step consumes a line or stops */
	while (off < c->rlen && !c->closing) {
		struct tool_reply_line l;
		ssize_t n = tool_reply_feed(&c->rp, c->rbuf + off, c->rlen - off, &l);

		if (n == 0)
			break;
		if (n < 0) {
			conn_fail(s, c, "malformed reply");
			return;
		}
		off += (size_t)n;
		if (c->st == ST_EHLO && l.code == 250) {
			if (tool_reply_is_keyword(&l, "PIPELINING"))
				c->pipelining = true;
			if (tool_reply_is_keyword(&l, "SIZE"))
				c->size_ext = true;
		}
		if (!l.last)
			continue;
		if (c->st == ST_CONTENT && c->send_armed) {
			/* a reply before the message is out: the server gave up on it */
			s->rejected++;
			c->msg = -1;
			conn_close(c);
			return;
		}
		on_reply(s, c, l.code);
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
}

/* ---------------------------------------------------------------- completions */

static void
arm_recv(struct source *s, struct src_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->recv_armed || c->closing || c->fd < 0 || c->st == ST_CONNECT)
		return;
	sqe = conn_sqe(s, c, OP_RECV);
	io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
	c->recv_armed = true;
}

/* After every event on c: close the socket when it is drained, keep a recv armed. */
static void
conn_event_done(struct source *s, struct src_conn *c)
{
	if (c->closing) {
		if (c->inflight > 0)
			return;
		close(c->fd);
		c->fd = -1;
		c->closing = false;
		c->recv_armed = c->send_armed = c->q_pending = false;
		c->gen = (c->gen + 1) & TOOL_LOOP_GEN_MASK;
		conn_down(s, c);
		return;
	}
	arm_recv(s, c);
}

static void
on_conn_cqe(struct source *s, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	uint32_t slot = tool_loop_ud_slot(ud);
	struct src_conn *c;

	if (slot >= s->nconns || s->conns[slot].gen != tool_loop_ud_gen(ud)) {
		s->stale++;
		return;
	}
	c = &s->conns[slot];
	c->inflight--;
	switch (tool_loop_ud_op(ud)) {
	case OP_CONNECT:
		if (c->closing)
			break;
		if (cqe->res < 0) {
			conn_fail(s, c, strerror(-cqe->res));
			break;
		}
		c->st = ST_GREETING;
		expect_reply(s, c);
		break;
	case OP_RECV:
		c->recv_armed = false;
		if (c->closing)
			break;
		if (cqe->res <= 0) {
			if (c->st == ST_QUIT)
				conn_close(c); /* the server closed after 221, or instead of it */
			else
				conn_fail(s, c,
					  cqe->res == 0 ? "connection closed by server"
							: strerror(-cqe->res));
			break;
		}
		c->rlen += (size_t)cqe->res;
		on_input(s, c);
		if (!c->closing && c->rlen == sizeof(c->rbuf))
			conn_fail(s, c, "reply line too long");
		break;
	case OP_SEND:
		c->send_armed = false;
		if (c->closing)
			break;
		if (cqe->res < 0) {
			conn_fail(s, c, strerror(-cqe->res));
			break;
		}
		/* consume what was sent; resubmit a short send */
		for (size_t n = (size_t)cqe->res; n > 0 && c->iov_i < c->iov_n;) {
			struct iovec *v = &c->iov[c->iov_i];
			size_t k = n < v->iov_len ? n : v->iov_len;

			v->iov_base = (char *)v->iov_base + k;
			v->iov_len -= k;
			n -= k;
			if (v->iov_len == 0)
				c->iov_i++;
		}
		while (c->iov_i < c->iov_n && c->iov[c->iov_i].iov_len == 0)
			c->iov_i++;
		if (c->iov_i < c->iov_n) {
			if (c->deadline != 0)
				expect_reply(s, c); /* progress: restart the clock */
			send_submit(s, c);
		} else if (c->q_pending) {
			c->q_pending = false;
			memcpy(c->iov, c->q_iov, c->q_n * sizeof(c->iov[0]));
			c->iov_n = c->q_n;
			c->iov_i = 0;
			send_submit(s, c);
		}
		break;
	default:
		BUG_ON(1); /* an op this file never submits */
	}
	conn_event_done(s, c);
}

static void
arm_tick(struct source *s)
{
	struct io_uring_sqe *sqe = tool_loop_sqe(&s->ring);

	s->tick_ts.tv_sec = 0;
	s->tick_ts.tv_nsec = SRC_TICK_NS;
	io_uring_prep_timeout(sqe, &s->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, tool_loop_ud(OP_TICK, 0, TOOL_LOOP_SLOT_NONE));
}

static void
arm_signal(struct source *s)
{
	tool_loop_arm_signal(&s->ring, s->sfd, &s->si,
			     tool_loop_ud(OP_SIGNAL, 0, TOOL_LOOP_SLOT_NONE));
}

/* --idle: start connecting slots, a bounded number of handshakes at a time. */
static void
idle_start_more(struct source *s)
{
	uint64_t busy = s->idle_started - s->idle_open - s->idle_lost;

	while (s->idle_started < s->idle && busy < SRC_IDLE_INFLIGHT) {
		struct src_conn *c = &s->conns[s->idle_started++];

		conn_connect(s, c);
		if (c->fd < 0) {
			s->idle_lost++;
			c->done = true;
			s->live--;
		} else {
			busy++;
		}
	}
	idle_check(s);
}

static void
on_tick(struct source *s)
{
	uint64_t now = tool_stats_now_ns();

	for (unsigned i = 0; i < s->nconns; i++) {
		struct src_conn *c = &s->conns[i];

		if (c->done)
			continue;
		if (c->st == ST_DOWN && c->fd < 0 && c->reconnect_at != 0 &&
		    now >= c->reconnect_at && (s->idle == 0 || i < s->idle_started)) {
			c->reconnect_at = 0;
			conn_connect(s, c);
			if (c->fd < 0 && c->fails >= SRC_MAX_FAILS) {
				c->done = true;
				s->live--;
			}
		} else if (c->deadline != 0 && now > c->deadline && !c->closing && c->fd >= 0) {
			conn_fail(s, c, "timeout");
			conn_event_done(s, c);
		}
	}
	if (s->idle > 0) {
		idle_start_more(s);
		if (s->hold_until != 0 && now >= s->hold_until)
			s->stop = true;
	}
	arm_tick(s);
}

static void
on_cqe(struct source *s, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	if (tool_loop_ud_slot(ud) != TOOL_LOOP_SLOT_NONE) {
		on_conn_cqe(s, cqe);
		if (s->idle > 0)
			idle_start_more(s);
		return;
	}
	switch (tool_loop_ud_op(ud)) {
	case OP_TICK:
		on_tick(s);
		break;
	case OP_SIGNAL:
		if (cqe->res == (int)sizeof(s->si))
			s->stop = true;
		else
			arm_signal(s);
		break;
	default:
		BUG_ON(1);
	}
}

/* ---------------------------------------------------------------- start-up */

static void
usage(FILE *f)
{
	fputs("usage: sluice-source [options] HOST:PORT\n"
	      "  -s N          sessions in parallel (default 1)\n"
	      "  -m N          total messages (default 1)\n"
	      "  -l SIZE[,..]  message size(s), k/M/G suffixes; SIZE*N repeats an entry\n"
	      "                in the rotation (default 4k)\n"
	      "  -r N          recipients per message (default 1)\n"
	      "  -f ADDR       envelope sender (default source@example.test)\n"
	      "  -t ADDR       recipient (default rcpt@example.test; with -r > 1:\n"
	      "                rcptI+local@domain)\n"
	      "  -P, --no-pipelining  one command at a time\n"
	      "  -d            several messages per session (default)\n"
	      "  -1            one message per session\n"
	      "  -H NAME       EHLO name (default source.sluice.test)\n"
	      "  --ledger FILE one 'MESSAGE-ID XXH64 SIZE' line per message accepted with 250\n"
	      "  --dots        body lines starting with '.' (tests dot-stuffing)\n"
	      "  --timeout DUR per-reply time limit (default 60s)\n"
	      "  --idle N      open N sessions, EHLO, hold them; prints 'idle: open=N'\n"
	      "  --hold DUR    with --idle: exit after DUR (default: at SIGTERM/SIGINT)\n"
	      "  -q, --quiet   no diagnostics on stderr\n"
	      "sent = messages started; accepted + rejected + failed = sent (or -m when\n"
	      "every session gave up reconnecting: unstarted messages count as failed)\n"
	      "prints: sent=N accepted=N rejected=N failed=N msgs/s=F MB/s=F p50_ms=F p99_ms=F\n",
	      f);
}

enum { O_LEDGER = 256, O_DOTS, O_TIMEOUT, O_IDLE, O_HOLD, O_NOPIPE, O_HELP, O_QUIET };

static const struct option long_opts[] = {
    {"ledger", required_argument, NULL, O_LEDGER},
    {"dots", no_argument, NULL, O_DOTS},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"idle", required_argument, NULL, O_IDLE},
    {"hold", required_argument, NULL, O_HOLD},
    {"no-pipelining", no_argument, NULL, O_NOPIPE},
    {"quiet", no_argument, NULL, O_QUIET},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void __attribute__((noreturn)) die_usage(const char *what, const char *arg)
{
	fprintf(stderr, "sluice-source: %s: %s\n", what, arg);
	usage(stderr);
	exit(2);
}

/* -l "4k,64k*10,25M": fill s->rot with sizes (pointers resolved later). */
static void
parse_sizes(const char *arg, uint64_t *list, unsigned *n)
{
	char buf[4096], *save = NULL;

	if (strlen(arg) >= sizeof(buf))
		die_usage("-l too long", arg);
	strcpy(buf, arg);
	*n = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *star = strchr(tok, '*');
		uint64_t size, rep = 1;

		if (star != NULL) {
			*star = '\0';
			if (tool_parse_uint(star + 1, SRC_MAX_SIZES, &rep) < 0 || rep == 0)
				die_usage("bad repeat count in -l", star + 1);
		}
		if (tool_parse_size(tok, &size) < 0 || size > (1ull << 32))
			die_usage("bad size in -l", tok);
		for (uint64_t i = 0; i < rep; i++) {
			if (*n >= SRC_MAX_SIZES)
				die_usage("too many sizes in -l", arg);
			list[(*n)++] = size;
		}
	}
	if (*n == 0)
		die_usage("empty -l", arg);
}

static bool
addr_ok(const char *a)
{
	size_t n = strlen(a);

	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)a[i] <= ' ' || a[i] == '<' || a[i] == '>' || a[i] == 127)
			return false;
	return true;
}

static void
parse_args(struct source *s, int argc, char **argv, uint64_t *sizes, unsigned *nsizes)
{
	uint64_t v;
	int ch;

	s->sessions = 1;
	s->total = 1;
	s->rcpts = 1;
	s->from = "source@example.test";
	s->to = "rcpt@example.test";
	s->helo = "source.sluice.test";
	s->timeout_ns = 60000000000ull;
	sizes[0] = 4096;
	*nsizes = 1;
	while ((ch = getopt_long(argc, argv, "s:m:l:r:f:t:Pd1H:qh", long_opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (tool_parse_uint(optarg, 1000000, &v) < 0 || v == 0)
				die_usage("bad -s", optarg);
			s->sessions = (unsigned)v;
			break;
		case 'm':
			if (tool_parse_uint(optarg, UINT64_MAX / 2, &s->total) < 0)
				die_usage("bad -m", optarg);
			break;
		case 'l':
			parse_sizes(optarg, sizes, nsizes);
			break;
		case 'r':
			if (tool_parse_uint(optarg, 100000, &v) < 0 || v == 0)
				die_usage("bad -r", optarg);
			s->rcpts = (unsigned)v;
			break;
		case 'f':
			if (!addr_ok(optarg))
				die_usage("bad -f", optarg);
			s->from = optarg;
			break;
		case 't':
			if (!addr_ok(optarg))
				die_usage("bad -t", optarg);
			s->to = optarg;
			break;
		case 'P':
		case O_NOPIPE:
			s->no_pipelining = true;
			break;
		case 'd':
			s->one_per_conn = false;
			break;
		case '1':
			s->one_per_conn = true;
			break;
		case 'H':
			if (!addr_ok(optarg))
				die_usage("bad -H", optarg);
			s->helo = optarg;
			break;
		case O_LEDGER:
			if (tool_ledger_open(&s->ledger, optarg) < 0)
				die_usage("cannot open ledger", optarg);
			break;
		case O_DOTS:
			s->dots = true;
			break;
		case O_TIMEOUT:
			if (tool_parse_dur(optarg, &s->timeout_ns) < 0 || s->timeout_ns == 0)
				die_usage("bad --timeout", optarg);
			break;
		case O_IDLE:
			if (tool_parse_uint(optarg, 1000000, &s->idle) < 0 || s->idle == 0)
				die_usage("bad --idle", optarg);
			break;
		case O_HOLD:
			if (tool_parse_dur(optarg, &s->hold_ns) < 0)
				die_usage("bad --hold", optarg);
			break;
		case 'q':
		case O_QUIET:
			s->quiet = true;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	if (tool_parse_addr(argv[optind], &s->addr, &s->addrlen) < 0)
		die_usage("bad address", argv[optind]);
}

/* Build the size classes and the rotation. Returns 0 or -ENOMEM. */
static int
content_make(struct source *s, const uint64_t *list, unsigned n)
{
	struct src_conn probe;
	size_t hdrlen;

	hdr_make(s, &probe, 0);
	hdrlen = probe.hdrlen; /* the same for every message: fixed-width fields */
	s->sizes = calloc(n, sizeof(*s->sizes));
	s->rot = calloc(n, sizeof(*s->rot));
	if (s->sizes == NULL || s->rot == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct src_size *z = NULL;

		for (unsigned k = 0; k < s->nsizes; k++)
			if (s->sizes[k].size == list[i])
				z = &s->sizes[k];
		if (z == NULL) {
			z = &s->sizes[s->nsizes++];
			z->size = list[i];
			if (body_make(z, list[i] > hdrlen ? list[i] - hdrlen : 0, s->dots) < 0 ||
			    batch_make(s, z, 0) < 0 || batch_make(s, z, 1) < 0)
				return -ENOMEM;
		}
		s->rot[s->nrot++] = z;
	}
	return 0;
}

static void
summary(struct source *s)
{
	double secs = (double)(s->t_end - s->t_start) / 1e9;

	if (secs <= 0)
		secs = 1e-9;
	tool_stats_sort(&s->lat);
	printf("sent=%" PRIu64 " accepted=%" PRIu64 " rejected=%" PRIu64 " failed=%" PRIu64
	       " msgs/s=%.2f MB/s=%.2f p50_ms=%.3f p99_ms=%.3f\n",
	       s->sent, s->accepted, s->rejected, s->failed, (double)s->accepted / secs,
	       (double)s->bytes / secs / 1e6, tool_stats_pct(&s->lat, 50),
	       tool_stats_pct(&s->lat, 99));
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	static struct source s;
	static uint64_t list[SRC_MAX_SIZES];
	unsigned nlist;
	int rc;

	tool_ledger_init_none(&s.ledger);
	parse_args(&s, argc, argv, list, &nlist);
	s.pid = (unsigned long)getpid();
	s.epoch = (uint64_t)time(NULL);
	if (s.idle == 0 && content_make(&s, list, nlist) < 0) {
		fprintf(stderr, "sluice-source: out of memory for message content\n");
		return 1;
	}
	s.nconns = s.idle > 0 ? (unsigned)s.idle : s.sessions;
	if (s.idle == 0 && s.total < s.nconns)
		s.nconns = s.total > 0 ? (unsigned)s.total : 0;
	if (tool_loop_nofile((uint64_t)s.nconns + 64) < (uint64_t)s.nconns + 16)
		warnx(&s, "RLIMIT_NOFILE too low for %u sessions", s.nconns);
	s.conns = calloc(s.nconns ? s.nconns : 1, sizeof(*s.conns));
	if (s.conns == NULL ||
	    tool_stats_init(&s.lat, s.total < SRC_MAX_SAMPLES ? s.total : SRC_MAX_SAMPLES) < 0) {
		fprintf(stderr, "sluice-source: out of memory\n");
		return 1;
	}
	s.sfd = tool_loop_signalfd();
	if (s.sfd < 0) {
		fprintf(stderr, "sluice-source: signalfd: %s\n", strerror(-s.sfd));
		return 1;
	}
	rc = tool_loop_init(&s.ring, 4096, 65536);
	if (rc < 0) {
		fprintf(stderr, "sluice-source: io_uring: %s\n", strerror(-rc));
		return 1;
	}
	s.t_start = tool_stats_now_ns();
	s.live = s.nconns;
	for (unsigned i = 0; i < s.nconns; i++) {
		s.conns[i].slot = i;
		s.conns[i].fd = -1;
		s.conns[i].msg = -1;
	}
	if (s.idle > 0)
		idle_start_more(&s);
	else
		for (unsigned i = 0; i < s.nconns; i++)
			conn_connect(&s, &s.conns[i]);
	arm_tick(&s);
	arm_signal(&s);
	/* ends when every slot is done or a signal (or --hold) says stop */
	while (!s.stop && s.live > 0) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		rc = io_uring_submit_and_wait(&s.ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			fprintf(stderr, "sluice-source: io_uring_submit_and_wait: %s\n",
				strerror(-rc));
			return 1;
		}
		io_uring_for_each_cqe(&s.ring, head, cqe)
		{
			on_cqe(&s, cqe);
			n++;
		}
		io_uring_cq_advance(&s.ring, n);
	}
	s.t_end = tool_stats_now_ns();
	if (s.idle > 0) {
		if (!s.idle_reported)
			printf("idle: open=%" PRIu64 "\n", s.idle_open);
		fflush(stdout);
		return 0;
	}
	if (s.stop) {
		/* interrupted: messages in progress are lost; the rest were never started */
		for (unsigned i = 0; i < s.nconns; i++)
			if (s.conns[i].msg >= 0)
				s.failed++;
	} else {
		/* every session gave up: messages never handed out count as failed */
		s.failed += msgs_left(&s);
	}
	summary(&s);
	if (s.stale > 0)
		warnx(&s, "%" PRIu64 " stale completions", s.stale);
	tool_ledger_close(&s.ledger);
	return 0;
}
