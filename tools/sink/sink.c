/*
 * sink.c -- sluice-sink: an io_uring SMTP sink with fault injection, in the
 * spirit of Postfix smtp-sink. It is the upstream that the server relays to in
 * tests and benchmarks, and it checks what arrives: with --ledger every accepted
 * message is hashed (tools/common/tool_msg) and written to a ledger that the load
 * source writes too, so "sort | diff" of the two ledgers proves the bytes survived.
 * Without --ledger nothing needs the hash and it is skipped: the benchmarks' sink
 * then spends its CPU on receiving, as a real MX would (XXH64 was ~1/4 of its CPU
 * at 25 MiB over plain TCP).
 *
 * Structure: one thread, one ring. A connection lives in a slot of a table;
 * user_data carries (op, generation, slot) and every CQE is checked against
 * the slot's generation. A slot is freed only when it is closing and nothing
 * is in flight (STYLE rule 1). Per connection: one recv (into rbuf), at most
 * one send (from obuf), and the odd timer (--delay-ms) or poll (a stalled
 * connection waits for the peer's FIN).
 *
 * Input pump: all complete commands in rbuf are answered in one pass and the
 * replies leave in one send, which is what a pipelining client expects
 * (RFC 2920). DATA content streams through tool_data (dot-unstuffing, end at
 * CRLF.CRLF only) into tool_msg (ledger hash); nothing of a message is kept
 * unless --dump asks for it. BDAT (RFC 3030) chunks go to tool_msg as is.
 *
 * STARTTLS (RFC 3207, with --tls-cert/--tls-key): the 220 goes out in
 * plaintext; once it is sent and no plain recv is in flight the connection
 * switches for good. From then on recv lands ciphertext in crx, core/tls
 * decrypts it into rbuf, and replies are encrypted from obuf into core/tls's
 * output buffer, which the one send carries. The pump and the command code
 * are the same in both modes: TLS costs the plain path one branch per I/O,
 * no copy.
 *
 * Decisions: plain IORING_OP_RECV into a per-connection buffer rather than a
 * provided-buffer ring (liburing 2.3 lacks the helper, and for a test tool a
 * 16 KiB buffer per connection, grown to --rbuf-size once DATA starts, is
 * both simpler and copy-free for bodies). The ledger is written with one
 * blocking write(2) when the 250 is queued; a tool may block on a local file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include "core/check.h"
#include "core/tls.h"
#include "tools/common/tool_data.h"
#include "tools/common/tool_ledger.h"
#include "tools/common/tool_loop.h"
#include "tools/common/tool_msg.h"
#include "tools/common/tool_parse.h"

#define SINK_MAX_LINE	    4096  /* longest command line accepted, CRLF included */
#define SINK_RBUF_SMALL	    16384 /* receive buffer while in the command phase */
#define SINK_OUT_CAP	    8192  /* reply buffer per connection */
#define SINK_OUT_RESERVE    1200  /* room one reply may need; the pump waits below it */
#define SINK_MAX_REPLY_TEXT 512	  /* --rcpt-reply / --data-reply text limit */
#define SINK_CRX_CAP	    65536 /* received ciphertext per TLS connection, until DATA */

enum sink_op {
	OP_ACCEPT = 1,	 /* multishot accept on the listener */
	OP_ACCEPT_RETRY, /* timer before re-arming accept after an error */
	OP_SIGNAL,	 /* read on the signalfd */
	OP_RECV,	 /* recv into conn->rbuf */
	OP_SEND,	 /* send from conn->obuf */
	OP_TIMER,	 /* --delay-ms before the end-of-data reply */
	OP_POLL,	 /* stalled connection: wait for the peer to go away */
};

enum sink_state {
	SINK_CMD,  /* reading command lines */
	SINK_DATA, /* inside DATA content, until CRLF.CRLF */
	SINK_BDAT, /* inside a BDAT chunk: bdat_left bytes still to come */
};

struct sink_opts {
	const char *dump_dir;		     /* --dump; NULL = off */
	const char *ledger_path;	     /* --ledger; NULL = off */
	const char *pidfile;		     /* --pidfile; NULL = off */
	const char *hostname;		     /* name in the greeting and EHLO */
	const char *rcpt_reply;		     /* --rcpt-reply "CODE TEXT"; NULL = 250 */
	const char *data_reply;		     /* --data-reply "CODE TEXT"; NULL = 250 */
	const char *tls_cert, *tls_key;	     /* --tls-cert, --tls-key; NULL = no STARTTLS */
	uint64_t every;			     /* faults hit every Nth transaction; >= 1 */
	uint64_t delay_ms;		     /* wait before each end-of-data reply */
	int64_t disconnect_at;		     /* DATA bytes before closing; -1 = off */
	int64_t stall_at;		     /* DATA bytes before not reading; -1 = off */
	uint64_t size;			     /* SIZE advertised and enforced; 0 = no limit */
	uint64_t rbuf_size;		     /* receive buffer once DATA starts */
	uint64_t max_conns;		     /* slot table size */
	bool pipelining, chunking, eightbit; /* capabilities offered */
	bool smtputf8, size_ext, enhanced;   /* capabilities offered */
	bool quiet;			     /* no diagnostics on stderr */
};

struct sink_conn {
	int fd;		   /* owned; closed when the slot is freed */
	uint32_t slot;	   /* index in sink.conns */
	unsigned inflight; /* SQEs submitted and not completed */
	bool closing;	   /* no new ops; freed when inflight == 0 */
	bool recv_armed;   /* a recv is in flight, into rbuf + rlen (plain: rbuf must not
			      move) or crx + crlen (TLS) */
	bool send_armed;   /* a send of obuf[0..osending) (plain) or tls_out() (TLS) is in flight */
	bool eom_pending;  /* end-of-data reply waits for OP_TIMER; input paused */
	bool stalled;	   /* --stall-in-data hit: never read again */
	bool quit;	   /* QUIT answered: close once the replies are sent */
	bool skip_line;	   /* discarding the rest of an overlong command line */
	bool starttls;	   /* 220 to STARTTLS queued: input paused until tls_start() */
	bool tls_bye;	   /* TLS: close_notify queued after the 221 */
	struct tls_conn *tls;	 /* owned; non-NULL once switched to TLS (rbuf: plaintext) */
	char *crx;		 /* owned, TLS only; received ciphertext */
	size_t crcap;		 /* bytes of crx: SINK_CRX_CAP, --rbuf-size from DATA on */
	size_t crlen, croff;	 /* crx[croff..crlen) not yet fed to tls; crlen <= crcap */
	enum sink_state st;	 /* see enum */
	char *rbuf;		 /* owned; input bytes, rbuf[roff..rlen) not yet processed */
	size_t rcap, rlen, roff; /* capacity and fill of rbuf; roff <= rlen <= rcap */
	size_t olen;		 /* bytes queued in obuf */
	size_t osending;	 /* obuf[0..osending) belongs to the send in flight */
	/* transaction */
	bool in_tx;		     /* MAIL accepted */
	bool fault;		     /* this transaction is hit by the faults (--every) */
	bool bdat_used;		     /* a BDAT chunk was accepted: DATA not allowed */
	bool bdat_last;		     /* the current chunk is the LAST one */
	bool bdat_discard;	     /* chunk is read and dropped (bad sequence) */
	unsigned nrcpt;		     /* recipients accepted */
	uint64_t txno;		     /* transaction number, sink-wide, from 1 */
	uint64_t bdat_left;	     /* bytes of the current chunk still to read */
	uint64_t data_wire;	     /* DATA/BDAT bytes read on the wire for this message */
	bool dumping;		     /* --dump and no allocation failure so far */
	char *dump;		     /* owned; unstuffed content kept for --dump */
	size_t dumplen, dumpcap;     /* fill and capacity of dump */
	struct __kernel_timespec ts; /* OP_TIMER duration */
	/* below: not zeroed at accept (keeps an idle session's RSS small); set before use */
	struct tool_data data;			  /* DATA scanner state; set by msg_start */
	struct tool_msg msg;			  /* ledger digest state; set by msg_start */
	char eom_reply[SINK_MAX_REPLY_TEXT + 64]; /* deferred end-of-data reply (no CRLF) */
	char obuf[SINK_OUT_CAP]; /* replies; bytes past osending may grow during a send */
};

struct sink {
	struct sink_opts o;		   /* options, fixed after start-up */
	struct io_uring ring;		   /* the one ring */
	int lfd;			   /* listening socket */
	int sfd;			   /* signalfd for SIGTERM/SIGINT */
	struct signalfd_siginfo si;	   /* OP_SIGNAL target */
	struct __kernel_timespec retry_ts; /* OP_ACCEPT_RETRY duration */
	struct sink_conn **conns;	   /* owned; slot -> connection or NULL */
	uint32_t *gens;			   /* slot generations, bumped on free */
	uint32_t *free_slots;		   /* stack of free slot numbers */
	uint32_t nfree;			   /* entries in free_slots */
	struct tool_ledger ledger;	   /* --ledger */
	struct tls_ctx *tls;		   /* owned; server context, NULL without --tls-cert */
	uint64_t txseq;			   /* last transaction number handed out */
	uint64_t sessions, messages;	   /* summary counters */
	uint64_t accepted, rejected;	   /* summary counters: end-of-data replies */
	uint64_t bytes;			   /* content bytes of accepted messages */
	uint64_t tls_sessions;		   /* summary counter: completed TLS handshakes */
	uint64_t stale;			   /* CQEs for a reused slot (should stay 0) */
	bool stop;			   /* signal seen: leave the loop */
};

static void sink_pump(struct sink *s, struct sink_conn *c);

static void warnx(const struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warnx(const struct sink *s, const char *fmt, ...)
{
	va_list ap;

	if (s->o.quiet)
		return;
	va_start(ap, fmt);
	fputs("sluice-sink: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static struct io_uring_sqe *
conn_sqe(struct sink *s, struct sink_conn *c, enum sink_op op)
{
	struct io_uring_sqe *sqe = tool_loop_sqe(&s->ring);

	c->inflight++;
	io_uring_sqe_set_data64(sqe, tool_loop_ud(op, s->gens[c->slot], c->slot));
	return sqe;
}

/* ---------------------------------------------------------------- lifecycle */

static void
conn_free(struct sink *s, struct sink_conn *c)
{
	uint32_t slot = c->slot;

	close(c->fd);
	tls_conn_free(c->tls);
	c->tls = NULL;
	free(c->crx);
	c->crx = NULL;
	free(c->rbuf);
	c->rbuf = NULL;
	free(c->dump);
	c->dump = NULL;
	free(c);
	c = NULL;
	s->conns[slot] = NULL;
	s->gens[slot] = (s->gens[slot] + 1) & TOOL_LOOP_GEN_MASK;
	s->free_slots[s->nfree++] = slot;
}

/*
 * Start closing: no new ops from now on. The slot is freed by conn_settle()
 * once nothing is in flight, never here, so callers may still touch c.
 */
static void
conn_close(struct sink_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* completes the pending recv (0) and poll (HUP); a pending send fails */
	shutdown(c->fd, SHUT_RDWR);
}

/* After any event on c: run the pump, free the slot if c is done. Caution: may free c. */
static void
conn_settle(struct sink *s, struct sink_conn *c)
{
	if (!c->closing)
		sink_pump(s, c);
	if (c->closing && c->inflight == 0)
		conn_free(s, c);
}

static void
conn_new(struct sink *s, int fd)
{
	struct sink_conn *c;
	int one = 1;

	if (s->nfree == 0) {
		warnx(s, "slot table full (%" PRIu64 "), closing new connection", s->o.max_conns);
		close(fd);
		return;
	}
	c = malloc(sizeof(*c));
	if (c != NULL)
		memset(c, 0, offsetof(struct sink_conn, data));
	if (c == NULL || (c->rbuf = malloc(SINK_RBUF_SMALL)) == NULL) {
		free(c);
		c = NULL;
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->rcap = SINK_RBUF_SMALL;
	c->slot = s->free_slots[--s->nfree];
	s->conns[c->slot] = c;
	s->sessions++;
	c->olen = (size_t)snprintf(c->obuf, sizeof(c->obuf), "220 %s ESMTP sluice-sink\r\n",
				   s->o.hostname);
	conn_settle(s, c);
}

/* ---------------------------------------------------------------- replies */

static void
out_raw(struct sink_conn *c, const char *p, size_t n)
{
	BUG_ON(c->olen + n > sizeof(c->obuf)); /* the pump keeps SINK_OUT_RESERVE free */
	memcpy(c->obuf + c->olen, p, n);
	c->olen += n;
}

/* Queue "CODE ENH TEXT\r\n" (ENH left out with --no-enhancedstatuscodes). */
static void
reply(const struct sink *s, struct sink_conn *c, int code, const char *enh, const char *text)
{
	char line[SINK_MAX_REPLY_TEXT + 64];
	int n;

	if (s->o.enhanced && enh != NULL)
		n = snprintf(line, sizeof(line), "%d %s %s\r\n", code, enh, text);
	else
		n = snprintf(line, sizeof(line), "%d %s\r\n", code, text);
	out_raw(c, line, (size_t)n);
}

/* Queue a configured "CODE TEXT" reply verbatim. */
static void
reply_text(struct sink_conn *c, const char *text)
{
	out_raw(c, text, strlen(text));
	out_raw(c, "\r\n", 2);
}

static void
reply_ehlo(const struct sink *s, struct sink_conn *c)
{
	const char *caps[8];
	char size[40];
	char line[300];
	size_t n = 0;

	if (s->o.pipelining)
		caps[n++] = "PIPELINING";
	if (s->o.size_ext) {
		if (s->o.size > 0)
			snprintf(size, sizeof(size), "SIZE %" PRIu64, s->o.size);
		else
			snprintf(size, sizeof(size), "SIZE");
		caps[n++] = size;
	}
	if (s->o.eightbit)
		caps[n++] = "8BITMIME";
	if (s->tls != NULL && c->tls == NULL)
		caps[n++] = "STARTTLS"; /* RFC 3207 4.2: not again once under TLS */
	if (s->o.smtputf8)
		caps[n++] = "SMTPUTF8";
	if (s->o.enhanced)
		caps[n++] = "ENHANCEDSTATUSCODES";
	if (s->o.chunking)
		caps[n++] = "CHUNKING";
	snprintf(line, sizeof(line), "250%c%s\r\n", n > 0 ? '-' : ' ', s->o.hostname);
	out_raw(c, line, strlen(line));
	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "250%c%s\r\n", i + 1 < n ? '-' : ' ', caps[i]);
		out_raw(c, line, strlen(line));
	}
}

/* ---------------------------------------------------------------- TLS */

/*
 * Encrypt queued replies (after the 221, a close_notify) and send what
 * core/tls holds. obuf is free again at once: the send carries tls's copy.
 */
static void
tls_flush(struct sink *s, struct sink_conn *c)
{
	struct io_uring_sqe *sqe;
	const void *p;
	size_t len;

	if (c->olen > 0 && tls_is_done(c->tls)) {
		ssize_t n = tls_write(c->tls, c->obuf, c->olen);

		if (n < 0) {
			warnx(s, "TLS write: %s", tls_error(c->tls));
			conn_close(c);
			return;
		}
		memmove(c->obuf, c->obuf + n, c->olen - (size_t)n);
		c->olen -= (size_t)n;
	}
	if (c->quit && c->olen == 0 && !c->tls_bye) {
		c->tls_bye = true;
		(void)tls_close(c->tls); /* after a failure there is nothing to say */
	}
	len = tls_out(c->tls, &p);
	if (c->send_armed || len == 0)
		return;
	sqe = conn_sqe(s, c, OP_SEND);
	io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL);
	c->send_armed = true;
}

/*
 * Switch c to TLS once the 220 to STARTTLS is on the wire and no plain recv
 * is in flight. Bytes such a recv brought arrived after the 220 was queued:
 * they are the client's first ciphertext (or injected plaintext, which then
 * fails the handshake, as it should).
 */
static void
tls_start(struct sink *s, struct sink_conn *c)
{
	size_t n = c->rlen - c->roff;

	if (c->send_armed || c->olen > 0 || c->recv_armed)
		return;
	c->starttls = false;
	if (n > SINK_CRX_CAP) {
		warnx(s, "STARTTLS: %zu bytes before the handshake, closing", n);
		conn_close(c);
		return;
	}
	c->crx = malloc(SINK_CRX_CAP);
	c->crcap = SINK_CRX_CAP;
	if (c->crx != NULL)
		c->tls = tls_conn_new(s->tls, NULL, TLS_POLICY_OPPORTUNISTIC);
	if (c->tls == NULL) {
		warnx(s, "STARTTLS: out of memory");
		conn_close(c);
		return;
	}
	memcpy(c->crx, c->rbuf + c->roff, n);
	c->crlen = n;
	c->roff = c->rlen = 0;
}

/*
 * Feed received ciphertext to core/tls, finish the handshake, decrypt into
 * rbuf while it has room. Returns true if plaintext was added. May close c.
 */
static bool
tls_rx(struct sink *s, struct sink_conn *c)
{
	size_t before = c->rlen;

	/* bounded: each round feeds ciphertext, adds plaintext or ends the handshake */
	while (!c->closing && c->rlen < c->rcap) {
		size_t fed = tls_feed(c->tls, c->crx + c->croff, c->crlen - c->croff);
		ssize_t n;

		c->croff += fed;
		if (c->croff == c->crlen)
			c->croff = c->crlen = 0;
		if (!tls_is_done(c->tls)) {
			n = tls_handshake(c->tls);
			s->tls_sessions += n == 0;
		} else {
			n = tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
			c->rlen += n > 0 ? (size_t)n : 0;
			if (n == 0)
				conn_close(c); /* close_notify */
		}
		if (n >= 0 || (n == -EAGAIN && fed > 0))
			continue;
		if (n != -EAGAIN) {
			warnx(s, "TLS%s: %s", tls_is_done(c->tls) ? "" : " handshake",
			      tls_error(c->tls));
			conn_close(c);
		}
		break;
	}
	return c->rlen > before;
}

static void
conn_flush(struct sink *s, struct sink_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->closing)
		return;
	if (c->tls != NULL) {
		tls_flush(s, c);
		return;
	}
	if (c->send_armed || c->olen == 0)
		return;
	sqe = conn_sqe(s, c, OP_SEND);
	io_uring_prep_send(sqe, c->fd, c->obuf, c->olen, MSG_NOSIGNAL);
	c->osending = c->olen;
	c->send_armed = true;
}

/* ---------------------------------------------------------------- transaction */

static void
tx_reset(struct sink_conn *c)
{
	c->in_tx = false;
	c->fault = false;
	c->bdat_used = false;
	c->nrcpt = 0;
	c->dumplen = 0;
	c->st = SINK_CMD;
}

static void
msg_start(const struct sink *s, struct sink_conn *c)
{
	c->dumping = s->o.dump_dir != NULL;
	tool_msg_init(&c->msg);
	c->msg.digest = s->o.ledger_path != NULL; /* no ledger, no use for the hash */
	tool_data_init(&c->data);
	c->data_wire = 0;
	c->dumplen = 0;
}

/* tool_data_emit_fn: unstuffed content of the current message. */
static void
sink_emit(void *ctx, const char *p, size_t n)
{
	struct sink_conn *c = ctx;

	tool_msg_feed(&c->msg, p, n);
	if (!c->dumping)
		return;
	if (c->dumplen + n > c->dumpcap) {
		size_t cap = c->dumpcap ? c->dumpcap : 65536;
		char *d;

		while (cap < c->dumplen + n)
			cap *= 2;
		d = realloc(c->dump, cap);
		if (d == NULL) {
			c->dumping = false; /* out of memory: this message is not dumped */
			return;
		}
		c->dump = d;
		c->dumpcap = cap;
	}
	memcpy(c->dump + c->dumplen, p, n);
	c->dumplen += n;
}

static void
dump_write(struct sink *s, struct sink_conn *c, uint64_t n)
{
	char path[4096];
	int fd;

	if (!c->dumping)
		return;
	snprintf(path, sizeof(path), "%s/%" PRIu64 ".eml", s->o.dump_dir, n);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		warnx(s, "%s: %s", path, strerror(errno));
		return;
	}
	for (size_t off = 0, tries = 0; off < c->dumplen && tries < 1000000; tries++) {
		ssize_t w = write(fd, c->dump + off, c->dumplen - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			warnx(s, "%s: %s", path, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	close(fd);
}

/* Send the end-of-data reply now; write the ledger line if it is a 250. */
static void
eom_reply(struct sink *s, struct sink_conn *c)
{
	if (strncmp(c->eom_reply, "250", 3) == 0) {
		uint64_t h = tool_msg_final(&c->msg);

		s->accepted++;
		s->bytes += c->msg.total;
		if (tool_ledger_write(&s->ledger, c->msg.id, h, c->msg.size) < 0)
			warnx(s, "ledger write failed");
		if (s->o.dump_dir != NULL)
			dump_write(s, c, s->accepted);
	} else {
		s->rejected++;
	}
	reply_text(c, c->eom_reply);
	tx_reset(c);
}

/* The message content is complete (CRLF.CRLF or BDAT LAST). */
static void
eom(struct sink *s, struct sink_conn *c)
{
	struct io_uring_sqe *sqe;

	s->messages++;
	c->st = SINK_CMD;
	if (s->o.size > 0 && c->msg.total > s->o.size)
		snprintf(c->eom_reply, sizeof(c->eom_reply), "552 %sMessage size exceeds limit",
			 s->o.enhanced ? "5.3.4 " : "");
	else if (c->fault && s->o.data_reply != NULL)
		snprintf(c->eom_reply, sizeof(c->eom_reply), "%s", s->o.data_reply);
	else
		snprintf(c->eom_reply, sizeof(c->eom_reply), "250 %sOk: queued as %" PRIu64,
			 s->o.enhanced ? "2.0.0 " : "", c->txno);
	if (s->o.delay_ms == 0) {
		eom_reply(s, c);
		return;
	}
	c->eom_pending = true;
	c->ts.tv_sec = (long long)(s->o.delay_ms / 1000);
	c->ts.tv_nsec = (long long)(s->o.delay_ms % 1000) * 1000000;
	sqe = conn_sqe(s, c, OP_TIMER);
	io_uring_prep_timeout(sqe, &c->ts, 0, 0);
}

/* ---------------------------------------------------------------- commands */

static bool
verb_is(const char *p, size_t n, const char *verb)
{
	size_t k = strlen(verb);

	return n >= k && strncasecmp(p, verb, k) == 0 && (n == k || p[k] == ' ');
}

/*
 * Parse "<path>" after "MAIL FROM:"/"RCPT TO:" (p, n: the rest of the line,
 * CRLF removed). Sets *params to the text after ">". Returns false if there is
 * no bracketed path.
 */
static bool
parse_path(const char *p, size_t n, const char **params, size_t *plen)
{
	size_t i = 0;

	while (i < n && p[i] == ' ')
		i++; /* tolerated by most servers, though RFC 5321 has no space here */
	if (i >= n || p[i] != '<')
		return false;
	for (i++; i < n && p[i] != '>'; i++)
		if (p[i] == '<' || p[i] == ' ')
			return false;
	if (i >= n)
		return false;
	*params = p + i + 1;
	*plen = n - i - 1;
	return true;
}

/* SIZE=N among MAIL parameters (RFC 1870); 0 when absent. */
static uint64_t
param_size(const char *p, size_t n)
{
	for (size_t i = 0; i + 5 < n; i++) {
		if ((i == 0 || p[i - 1] == ' ') && strncasecmp(p + i, "SIZE=", 5) == 0) {
			uint64_t v = 0;

			for (i += 5; i < n && p[i] >= '0' && p[i] <= '9' && v < UINT64_MAX / 10;
			     i++)
				v = v * 10 + (uint64_t)(p[i] - '0');
			return v;
		}
	}
	return 0;
}

static void
cmd_mail(struct sink *s, struct sink_conn *c, const char *p, size_t n)
{
	const char *params;
	size_t plen;

	if (c->in_tx) {
		reply(s, c, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (n < 10 || strncasecmp(p, "MAIL FROM:", 10) != 0 ||
	    !parse_path(p + 10, n - 10, &params, &plen)) {
		reply(s, c, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	if (s->o.size > 0 && param_size(params, plen) > s->o.size) {
		reply(s, c, 552, "5.3.4", "Message size exceeds fixed limit");
		return;
	}
	tx_reset(c);
	c->in_tx = true;
	c->txno = ++s->txseq;
	c->fault = s->o.every <= 1 || c->txno % s->o.every == 0;
	reply(s, c, 250, "2.1.0", "Ok");
}

static void
cmd_rcpt(struct sink *s, struct sink_conn *c, const char *p, size_t n)
{
	const char *params;
	size_t plen;

	if (!c->in_tx) {
		reply(s, c, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (n < 8 || strncasecmp(p, "RCPT TO:", 8) != 0 ||
	    !parse_path(p + 8, n - 8, &params, &plen)) {
		reply(s, c, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	if (c->fault && s->o.rcpt_reply != NULL) {
		if (s->o.rcpt_reply[0] == '2')
			c->nrcpt++;
		reply_text(c, s->o.rcpt_reply);
		return;
	}
	c->nrcpt++;
	reply(s, c, 250, "2.1.5", "Ok");
}

/* rbuf is ours unless a plain recv fills it (under TLS, recv fills crx). */
static bool
rbuf_busy(const struct sink_conn *c)
{
	return c->recv_armed && c->tls == NULL;
}

/*
 * Grow rbuf for message content; only while no recv targets it. Under TLS the
 * ciphertext buffer crx grows alike, once no recv targets it: a bulk sender then
 * fills up to --rbuf-size a recv instead of 64 KiB. That took 14-17 % off the TLS
 * sink's CPU on 25 MiB messages (fewer recvs and wake-ups: bench 4b's setup, 40 x
 * 25 MiB, 6 rounds, medians 0.64 -> 0.55 CPU-s), which matters on a machine where
 * the sink shares the CPUs with what it measures.
 */
static void
rbuf_grow(struct sink *s, struct sink_conn *c)
{
	char *b;

	if (c->tls != NULL && !c->recv_armed && c->crcap < s->o.rbuf_size) {
		b = realloc(c->crx, s->o.rbuf_size);
		if (b != NULL) { /* else keep the small buffer: slower, still correct */
			c->crx = b;
			c->crcap = s->o.rbuf_size;
		}
	}
	if (rbuf_busy(c) || c->rcap >= s->o.rbuf_size)
		return;
	b = realloc(c->rbuf, s->o.rbuf_size);
	if (b == NULL)
		return;
	c->rbuf = b;
	c->rcap = s->o.rbuf_size;
}

static void
cmd_data(struct sink *s, struct sink_conn *c)
{
	if (!c->in_tx) {
		reply(s, c, 503, "5.5.1", "Error: need RCPT command");
		return;
	}
	if (c->bdat_used) {
		reply(s, c, 503, "5.5.1", "Error: DATA after BDAT");
		return;
	}
	if (c->nrcpt == 0) {
		reply(s, c, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	msg_start(s, c);
	c->st = SINK_DATA;
	out_raw(c, "354 End data with <CR><LF>.<CR><LF>\r\n", 37);
}

static void
cmd_bdat(struct sink *s, struct sink_conn *c, const char *p, size_t n)
{
	uint64_t size = 0;
	size_t i = 5, digits = 0;

	for (; i < n && p[i] >= '0' && p[i] <= '9' && size < UINT64_MAX / 10; i++, digits++)
		size = size * 10 + (uint64_t)(p[i] - '0');
	if (n < 6 || digits == 0 || (i < n && p[i] != ' ')) {
		/* without a valid size the chunk cannot be skipped: give up */
		reply(s, c, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		c->quit = true;
		return;
	}
	while (i < n && p[i] == ' ')
		i++;
	c->bdat_last = n - i == 4 && strncasecmp(p + i, "LAST", 4) == 0;
	c->bdat_left = size;
	c->bdat_discard = !c->in_tx || c->nrcpt == 0;
	if (!c->bdat_discard && !c->bdat_used) {
		msg_start(s, c);
		c->bdat_used = true;
	}
	c->st = SINK_BDAT;
}

static void
cmd_starttls(const struct sink *s, struct sink_conn *c, size_t n)
{
	if (n != 8) {
		reply(s, c, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (c->tls != NULL) {
		reply(s, c, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	reply(s, c, 220, "2.0.0", "Ready to start TLS");
	c->starttls = true;
	/* RFC 3207 5: commands pipelined after STARTTLS were sent in plaintext and
	 * must not count as said under TLS (the CVE-2011-0411 injection) */
	c->roff = c->rlen;
	tx_reset(c); /* RFC 3207 4.2: forget what the client said before */
}

/* One command line, CRLF removed. */
static void
command(struct sink *s, struct sink_conn *c, const char *p, size_t n)
{
	if (verb_is(p, n, "EHLO")) {
		tx_reset(c);
		reply_ehlo(s, c);
	} else if (verb_is(p, n, "HELO")) {
		tx_reset(c);
		reply(s, c, 250, NULL, s->o.hostname);
	} else if (verb_is(p, n, "MAIL")) {
		cmd_mail(s, c, p, n);
	} else if (verb_is(p, n, "RCPT")) {
		cmd_rcpt(s, c, p, n);
	} else if (verb_is(p, n, "DATA")) {
		cmd_data(s, c);
	} else if (verb_is(p, n, "BDAT") && s->o.chunking) {
		cmd_bdat(s, c, p, n);
	} else if (verb_is(p, n, "RSET")) {
		tx_reset(c);
		reply(s, c, 250, "2.0.0", "Ok");
	} else if (verb_is(p, n, "NOOP")) {
		reply(s, c, 250, "2.0.0", "Ok");
	} else if (verb_is(p, n, "STARTTLS") && s->tls != NULL) {
		cmd_starttls(s, c, n);
	} else if (verb_is(p, n, "QUIT")) {
		reply(s, c, 221, "2.0.0", "Bye");
		c->quit = true;
	} else {
		reply(s, c, 502, "5.5.2", "Error: command not recognized");
	}
}

/* ---------------------------------------------------------------- input pump */

/* Bytes of message content the faults still let through; SIZE_MAX if no fault. */
static size_t
fault_room(const struct sink *s, const struct sink_conn *c)
{
	int64_t at = -1;

	if (!c->fault)
		return SIZE_MAX;
	if (s->o.disconnect_at >= 0)
		at = s->o.disconnect_at;
	if (s->o.stall_at >= 0 && (at < 0 || s->o.stall_at < at))
		at = s->o.stall_at;
	if (at < 0)
		return SIZE_MAX;
	return (uint64_t)at > c->data_wire ? (size_t)((uint64_t)at - c->data_wire) : 0;
}

/* The fault threshold was reached inside message content. */
static void
fault_hit(struct sink *s, struct sink_conn *c)
{
	struct io_uring_sqe *sqe;

	if (s->o.disconnect_at >= 0 && (s->o.stall_at < 0 || s->o.disconnect_at <= s->o.stall_at)) {
		conn_close(c);
		return;
	}
	c->stalled = true;
	/* no more reads; notice the peer's FIN so the slot does not leak */
	sqe = conn_sqe(s, c, OP_POLL);
	io_uring_prep_poll_add(sqe, c->fd, POLLRDHUP | POLLHUP | POLLERR);
}

/* One step of the pump in command state. Returns false to stop pumping. */
static bool
pump_cmd(struct sink *s, struct sink_conn *c)
{
	char *p = c->rbuf + c->roff;
	size_t avail = c->rlen - c->roff, len;
	char *lf = memchr(p, '\n', avail);

	if (lf == NULL) {
		if (avail >= SINK_MAX_LINE && !c->skip_line) {
			c->skip_line = true;
			c->roff = c->rlen;
		} else if (c->skip_line) {
			c->roff = c->rlen;
		}
		return false;
	}
	len = (size_t)(lf - p) + 1;
	c->roff += len;
	if (c->skip_line || len > SINK_MAX_LINE) {
		c->skip_line = false;
		reply(s, c, 500, "5.5.2", "Error: line too long");
	} else if (len < 2 || p[len - 2] != '\r') {
		reply(s, c, 500, "5.5.2", "Error: bare LF"); /* only CRLF ends a line */
	} else {
		command(s, c, p, len - 2);
	}
	return true;
}

/* One step in DATA or BDAT state. Returns false to stop pumping. */
static bool
pump_content(struct sink *s, struct sink_conn *c)
{
	size_t avail = c->rlen - c->roff, room = fault_room(s, c), n, used;
	bool done = false;

	if (room == 0) {
		/* only once content arrives, so the 354 still goes out */
		if (avail > 0)
			fault_hit(s, c);
		return false;
	}
	n = avail < room ? avail : room;
	if (c->st == SINK_BDAT && n > c->bdat_left)
		n = (size_t)c->bdat_left;
	if (n == 0 && !(c->st == SINK_BDAT && c->bdat_left == 0))
		return false;
	if (c->st == SINK_DATA) {
		used = tool_data_feed(&c->data, c->rbuf + c->roff, n, &done, sink_emit, c);
	} else {
		if (!c->bdat_discard)
			sink_emit(c, c->rbuf + c->roff, n);
		used = n;
		c->bdat_left -= n;
		done = c->bdat_left == 0;
	}
	c->roff += used;
	c->data_wire += used;
	if (!done)
		return c->roff < c->rlen || fault_room(s, c) == 0;
	if (c->st == SINK_DATA) {
		eom(s, c);
	} else if (c->bdat_discard) {
		c->st = SINK_CMD;
		if (!c->in_tx)
			reply(s, c, 503, "5.5.1", "Error: need MAIL command");
		else
			reply(s, c, 554, "5.5.1", "Error: no valid recipients");
	} else if (c->bdat_last) {
		eom(s, c);
	} else {
		char text[64];

		c->st = SINK_CMD;
		snprintf(text, sizeof(text), "Ok: %" PRIu64 " bytes", c->data_wire);
		reply(s, c, 250, "2.0.0", text);
	}
	return true;
}

/* Answer the commands and take the content buffered in rbuf while there is room. */
static void
pump_input(struct sink *s, struct sink_conn *c)
{
	/* bounded: every step consumes input or changes state, else it stops */
	for (unsigned steps = 0; steps < 1000000; steps++) {
		if (c->closing || c->eom_pending || c->stalled || c->quit || c->starttls)
			break;
		if (c->olen > sizeof(c->obuf) - SINK_OUT_RESERVE)
			break; /* replies back up: wait for the send */
		if (c->st == SINK_CMD) {
			if (c->roff == c->rlen || !pump_cmd(s, c))
				break;
		} else if (!pump_content(s, c)) {
			break;
		}
	}
}

/* Drop processed input from rbuf and grow it for message content, unless a recv fills it. */
static void
rbuf_tidy(struct sink *s, struct sink_conn *c)
{
	if (rbuf_busy(c))
		return;
	if (c->roff == c->rlen) {
		c->roff = c->rlen = 0;
	} else if (c->roff > 0 && c->rcap - c->rlen < SINK_MAX_LINE) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->st != SINK_CMD)
		rbuf_grow(s, c);
}

/* Receive into crx (TLS) or rbuf (plain) while there is room and reading makes sense. */
static void
arm_recv(struct sink *s, struct sink_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->recv_armed || c->stalled || c->quit || c->starttls)
		return;
	if (c->tls != NULL) {
		memmove(c->crx, c->crx + c->croff, c->crlen - c->croff);
		c->crlen -= c->croff;
		c->croff = 0;
		if (c->crlen == c->crcap)
			return;
		sqe = conn_sqe(s, c, OP_RECV);
		io_uring_prep_recv(sqe, c->fd, c->crx + c->crlen, c->crcap - c->crlen, 0);
	} else {
		if (c->rlen >= c->rcap)
			return;
		sqe = conn_sqe(s, c, OP_RECV);
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	}
	c->recv_armed = true;
}

/* Every reply (and, under TLS, every record) has been sent. */
static bool
out_drained(const struct sink_conn *c)
{
	const void *p;

	return !c->send_armed && c->olen == 0 && (c->tls == NULL || tls_out(c->tls, &p) == 0);
}

/*
 * Process buffered input, send replies, re-arm recv. Called (through
 * conn_settle) after every event on c. Never frees c; may mark it closing.
 * Under TLS, plaintext is decrypted into rbuf as the pump makes room.
 */
static void
sink_pump(struct sink *s, struct sink_conn *c)
{
	if (c->starttls)
		tls_start(s, c);
	do {
		pump_input(s, c);
		if (c->closing)
			return;
		rbuf_tidy(s, c);
	} while (c->tls != NULL && tls_rx(s, c));
	if (c->closing)
		return;
	conn_flush(s, c);
	arm_recv(s, c);
	if (c->quit && out_drained(c))
		conn_close(c);
}

/* ---------------------------------------------------------------- completions */

static void
on_conn_cqe(struct sink *s, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	uint32_t slot = tool_loop_ud_slot(ud);
	struct sink_conn *c;

	if (slot >= s->o.max_conns || s->conns[slot] == NULL ||
	    s->gens[slot] != tool_loop_ud_gen(ud)) {
		s->stale++;
		return;
	}
	c = s->conns[slot];
	c->inflight--;
	switch (tool_loop_ud_op(ud)) {
	case OP_RECV:
		c->recv_armed = false;
		if (cqe->res <= 0) {
			conn_close(c); /* peer closed, reset, or our shutdown */
			break;
		}
		if (c->tls != NULL)
			c->crlen += (size_t)cqe->res;
		else
			c->rlen += (size_t)cqe->res;
		break;
	case OP_SEND:
		c->send_armed = false;
		if (cqe->res < 0) {
			conn_close(c);
			break;
		}
		if (c->tls != NULL) {
			tls_out_consumed(c->tls, (size_t)cqe->res);
			break;
		}
		memmove(c->obuf, c->obuf + cqe->res, c->olen - (size_t)cqe->res);
		c->olen -= (size_t)cqe->res;
		c->osending = 0;
		break;
	case OP_TIMER:
		c->eom_pending = false;
		if (!c->closing)
			eom_reply(s, c);
		break;
	case OP_POLL:
		conn_close(c);
		break;
	default:
		BUG_ON(1); /* an op this file never submits */
	}
	conn_settle(s, c);
}

static void
arm_accept(struct sink *s)
{
	struct io_uring_sqe *sqe = tool_loop_sqe(&s->ring);

	io_uring_prep_multishot_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, tool_loop_ud(OP_ACCEPT, 0, TOOL_LOOP_SLOT_NONE));
}

static void
arm_signal(struct sink *s)
{
	tool_loop_arm_signal(&s->ring, s->sfd, &s->si,
			     tool_loop_ud(OP_SIGNAL, 0, TOOL_LOOP_SLOT_NONE));
}

static void
on_cqe(struct sink *s, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct io_uring_sqe *sqe;

	if (tool_loop_ud_slot(ud) != TOOL_LOOP_SLOT_NONE) {
		on_conn_cqe(s, cqe);
		return;
	}
	switch (tool_loop_ud_op(ud)) {
	case OP_ACCEPT:
		if (cqe->res >= 0)
			conn_new(s, cqe->res);
		else
			warnx(s, "accept: %s", strerror(-cqe->res));
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			if (cqe->res >= 0) {
				arm_accept(s);
				break;
			}
			/* EMFILE and friends: retry in 10 ms instead of spinning */
			s->retry_ts.tv_sec = 0;
			s->retry_ts.tv_nsec = 10000000;
			sqe = tool_loop_sqe(&s->ring);
			io_uring_prep_timeout(sqe, &s->retry_ts, 0, 0);
			io_uring_sqe_set_data64(
			    sqe, tool_loop_ud(OP_ACCEPT_RETRY, 0, TOOL_LOOP_SLOT_NONE));
		}
		break;
	case OP_ACCEPT_RETRY:
		arm_accept(s);
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
	fputs(
	    "usage: sluice-sink [options] ADDR:PORT\n"
	    "  --dump DIR               keep accepted messages as DIR/<n>.eml\n"
	    "  --ledger FILE            one 'MESSAGE-ID XXH64 SIZE' line per accepted message\n"
	    "  --pidfile FILE           write the pid once listening\n"
	    "  --rcpt-reply 'CODE TEXT' reply to RCPT with this (faulted messages)\n"
	    "  --data-reply 'CODE TEXT' reply to end of data with this (faulted messages)\n"
	    "  --every N                faults hit every Nth transaction (default 1 = all)\n"
	    "  --delay-ms N             wait N ms before each end-of-data reply\n"
	    "  --disconnect-in-data B   close after B bytes of message content\n"
	    "  --stall-in-data B        stop reading after B bytes of message content\n"
	    "  --no-pipelining --no-chunking --no-8bitmime --no-smtputf8 --no-size\n"
	    "  --no-enhancedstatuscodes capabilities to leave out of the EHLO reply\n"
	    "  --size N                 SIZE to advertise and enforce (default 0 = none)\n"
	    "  --hostname NAME          name in greeting and EHLO (default sink.sluice.test)\n"
	    "  --rbuf-size SIZE         receive buffer during DATA (default 1M)\n"
	    "  --max-conns N            concurrent connections (default 65536)\n"
	    "  --tls-cert FILE --tls-key FILE\n"
	    "                           offer STARTTLS with this certificate chain and key (PEM)\n"
	    "  --quiet                  no diagnostics on stderr\n"
	    "SIGTERM/SIGINT print 'sink: sessions=N messages=N accepted=N rejected=N bytes=N "
	    "tls=N'\n",
	    f);
}

enum {
	O_DUMP = 256,
	O_LEDGER,
	O_PIDFILE,
	O_RCPT_REPLY,
	O_DATA_REPLY,
	O_EVERY,
	O_DELAY,
	O_DISCONNECT,
	O_STALL,
	O_NO_PIPE,
	O_NO_CHUNK,
	O_NO_8BIT,
	O_NO_UTF8,
	O_NO_SIZE,
	O_NO_ENH,
	O_SIZE,
	O_HOSTNAME,
	O_RBUF,
	O_MAXCONNS,
	O_QUIET,
	O_TLS_CERT,
	O_TLS_KEY,
	O_HELP,
};

static const struct option long_opts[] = {
    {"dump", required_argument, NULL, O_DUMP},
    {"ledger", required_argument, NULL, O_LEDGER},
    {"pidfile", required_argument, NULL, O_PIDFILE},
    {"rcpt-reply", required_argument, NULL, O_RCPT_REPLY},
    {"data-reply", required_argument, NULL, O_DATA_REPLY},
    {"every", required_argument, NULL, O_EVERY},
    {"delay-ms", required_argument, NULL, O_DELAY},
    {"disconnect-in-data", required_argument, NULL, O_DISCONNECT},
    {"stall-in-data", required_argument, NULL, O_STALL},
    {"no-pipelining", no_argument, NULL, O_NO_PIPE},
    {"no-chunking", no_argument, NULL, O_NO_CHUNK},
    {"no-8bitmime", no_argument, NULL, O_NO_8BIT},
    {"no-smtputf8", no_argument, NULL, O_NO_UTF8},
    {"no-size", no_argument, NULL, O_NO_SIZE},
    {"no-enhancedstatuscodes", no_argument, NULL, O_NO_ENH},
    {"size", required_argument, NULL, O_SIZE},
    {"hostname", required_argument, NULL, O_HOSTNAME},
    {"rbuf-size", required_argument, NULL, O_RBUF},
    {"max-conns", required_argument, NULL, O_MAXCONNS},
    {"quiet", no_argument, NULL, O_QUIET},
    {"tls-cert", required_argument, NULL, O_TLS_CERT},
    {"tls-key", required_argument, NULL, O_TLS_KEY},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void __attribute__((noreturn)) die_usage(const char *what, const char *arg)
{
	fprintf(stderr, "sluice-sink: %s: %s\n", what, arg);
	usage(stderr);
	exit(2);
}

/* "CODE TEXT" with a 2xx..5xx code. */
static bool
reply_ok(const char *r)
{
	return strlen(r) >= 3 && strlen(r) <= SINK_MAX_REPLY_TEXT && r[0] >= '2' && r[0] <= '5' &&
	       r[1] >= '0' && r[1] <= '9' && r[2] >= '0' && r[2] <= '9' &&
	       (r[3] == '\0' || r[3] == ' ') && strpbrk(r, "\r\n") == NULL;
}

static void
parse_args(struct sink_opts *o, int argc, char **argv, const char **addr)
{
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->hostname = "sink.sluice.test";
	o->every = 1;
	o->disconnect_at = -1;
	o->stall_at = -1;
	o->rbuf_size = 1024 * 1024; /* measured: 2.7 GB/s at 1M against 2.1 at 256k */
	o->max_conns = 65536;
	o->pipelining = o->chunking = o->eightbit = o->smtputf8 = true;
	o->size_ext = o->enhanced = true;
	while ((ch = getopt_long(argc, argv, "hq", long_opts, NULL)) != -1) {
		switch (ch) {
		case O_DUMP:
			o->dump_dir = optarg;
			break;
		case O_LEDGER:
			o->ledger_path = optarg;
			break;
		case O_PIDFILE:
			o->pidfile = optarg;
			break;
		case O_RCPT_REPLY:
		case O_DATA_REPLY:
			if (!reply_ok(optarg))
				die_usage("reply must be 'CODE TEXT' with a 2xx-5xx code", optarg);
			if (ch == O_RCPT_REPLY)
				o->rcpt_reply = optarg;
			else
				o->data_reply = optarg;
			break;
		case O_EVERY:
			if (tool_parse_uint(optarg, UINT32_MAX, &o->every) < 0 || o->every == 0)
				die_usage("bad --every", optarg);
			break;
		case O_DELAY:
			if (tool_parse_uint(optarg, 3600000, &o->delay_ms) < 0)
				die_usage("bad --delay-ms", optarg);
			break;
		case O_DISCONNECT:
		case O_STALL:
			if (tool_parse_size(optarg, &v) < 0 || v > INT64_MAX)
				die_usage("bad byte count", optarg);
			if (ch == O_DISCONNECT)
				o->disconnect_at = (int64_t)v;
			else
				o->stall_at = (int64_t)v;
			break;
		case O_NO_PIPE:
			o->pipelining = false;
			break;
		case O_NO_CHUNK:
			o->chunking = false;
			break;
		case O_NO_8BIT:
			o->eightbit = false;
			break;
		case O_NO_UTF8:
			o->smtputf8 = false;
			break;
		case O_NO_SIZE:
			o->size_ext = false;
			break;
		case O_NO_ENH:
			o->enhanced = false;
			break;
		case O_SIZE:
			if (tool_parse_size(optarg, &o->size) < 0)
				die_usage("bad --size", optarg);
			break;
		case O_HOSTNAME:
			o->hostname = optarg;
			break;
		case O_RBUF:
			if (tool_parse_size(optarg, &o->rbuf_size) < 0 ||
			    o->rbuf_size < SINK_RBUF_SMALL || o->rbuf_size > (64u << 20))
				die_usage("bad --rbuf-size (16k..64M)", optarg);
			break;
		case O_MAXCONNS:
			if (tool_parse_uint(optarg, 1u << 22, &o->max_conns) < 0 ||
			    o->max_conns == 0)
				die_usage("bad --max-conns", optarg);
			break;
		case 'q':
		case O_QUIET:
			o->quiet = true;
			break;
		case O_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case O_TLS_KEY:
			o->tls_key = optarg;
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
	if ((o->tls_cert == NULL) != (o->tls_key == NULL))
		die_usage("--tls-cert and --tls-key go together",
			  o->tls_cert ? o->tls_cert : o->tls_key);
	*addr = argv[optind];
}

static int
listen_on(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (tool_parse_addr(addr, &ss, &len) < 0)
		die_usage("bad address", addr);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited by accept */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int
write_pidfile(const char *path)
{
	char tmp[4096], buf[32];
	int fd, n;

	/* write then rename, so a test polling for the file never reads it empty */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct sink s; /* large; one per process */
	char errbuf[256];
	const char *addr;
	int rc;

	parse_args(&s.o, argc, argv, &addr);
	tool_loop_nofile(s.o.max_conns + 64);
	s.conns = calloc(s.o.max_conns, sizeof(*s.conns));
	s.gens = calloc(s.o.max_conns, sizeof(*s.gens));
	s.free_slots = calloc(s.o.max_conns, sizeof(*s.free_slots));
	if (s.conns == NULL || s.gens == NULL || s.free_slots == NULL) {
		fprintf(stderr, "sluice-sink: out of memory\n");
		return 1;
	}
	for (uint32_t i = 0; i < s.o.max_conns; i++)
		s.free_slots[s.nfree++] = (uint32_t)(s.o.max_conns - 1 - i);
	tool_ledger_init_none(&s.ledger);
	if (s.o.ledger_path != NULL && (rc = tool_ledger_open(&s.ledger, s.o.ledger_path)) < 0) {
		fprintf(stderr, "sluice-sink: %s: %s\n", s.o.ledger_path, strerror(-rc));
		return 1;
	}
	if (s.o.dump_dir != NULL && mkdir(s.o.dump_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "sluice-sink: %s: %s\n", s.o.dump_dir, strerror(errno));
		return 1;
	}
	if (s.o.tls_cert != NULL && (s.tls = tls_server_ctx_new(s.o.tls_cert, s.o.tls_key, errbuf,
								sizeof(errbuf))) == NULL) {
		fprintf(stderr, "sluice-sink: %s\n", errbuf);
		return 1;
	}
	s.sfd = tool_loop_signalfd();
	if (s.sfd < 0) {
		fprintf(stderr, "sluice-sink: signalfd: %s\n", strerror(-s.sfd));
		return 1;
	}
	s.lfd = listen_on(addr);
	if (s.lfd < 0) {
		fprintf(stderr, "sluice-sink: listen %s: %s\n", addr, strerror(-s.lfd));
		return 1;
	}
	rc = tool_loop_init(&s.ring, 4096, 65536);
	if (rc < 0) {
		fprintf(stderr, "sluice-sink: io_uring: %s\n", strerror(-rc));
		return 1;
	}
	if (s.o.pidfile != NULL && (rc = write_pidfile(s.o.pidfile)) < 0) {
		fprintf(stderr, "sluice-sink: %s: %s\n", s.o.pidfile, strerror(-rc));
		return 1;
	}
	warnx(&s, "listening on %s", addr);
	arm_accept(&s);
	arm_signal(&s);
	while (!s.stop) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		rc = io_uring_submit_and_wait(&s.ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			fprintf(stderr, "sluice-sink: io_uring_submit_and_wait: %s\n",
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
	printf("sink: sessions=%" PRIu64 " messages=%" PRIu64 " accepted=%" PRIu64
	       " rejected=%" PRIu64 " bytes=%" PRIu64 " tls=%" PRIu64 "\n",
	       s.sessions, s.messages, s.accepted, s.rejected, s.bytes, s.tls_sessions);
	fflush(stdout);
	if (s.stale > 0)
		warnx(&s, "%" PRIu64 " stale completions", s.stale);
	tool_ledger_close(&s.ledger);
	return 0;
}
