/*
 * shard.c -- see shard.h: ring set-up, listeners, the completion loop.
 *
 * The loop submits and waits in one system call, dispatches every ready
 * completion by the kind in its user_data, and repeats. Each session's
 * replies are sent from within its handlers, so one batch of completions
 * costs one io_uring_enter for all the sends it produced.
 */
#include "core/server/shard.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/check.h"
#include "core/compat/uring_compat.h"
#include "core/server/session.h"
#include "core/server/upstream.h"
#include "core/uop.h"

#define SHARD_RING_ENTRIES 4096 /* SQ entries; CQ is twice that */
#define SHARD_CHUNK_MIN	   16384

struct io_uring_sqe *
shard_sqe(struct shard *sh)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sh->ring);

	if (sqe == NULL) {
		/* SQ full: hand what we have to the kernel and take a fresh slot */
		io_uring_submit(&sh->ring);
		sqe = io_uring_get_sqe(&sh->ring);
		BUG_ON(sqe == NULL);
	}
	return sqe;
}

void
shard_buf_put(struct shard *sh, unsigned bid)
{
	io_uring_buf_ring_add(sh->br, sh->br_mem + (size_t)bid * sh->br_size, sh->br_size,
			      (unsigned short)bid, io_uring_buf_ring_mask(sh->br_count), 0);
	io_uring_buf_ring_advance(sh->br, 1);
}

void
shard_log(struct shard *sh, const char *line, size_t len)
{
	logring_put(&sh->log, line, len);
}

void
shard_warn(struct shard *sh, const char *what, const char *fmt, ...)
{
	char detail[256], buf[1024];
	struct jlog j;
	uint64_t dropped;
	va_list ap;

	if (sh->cfg->log_level < CONFIG_LOG_WARN || !ratelimit_allow(&sh->warn_rl, timer_now_ns()))
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	jlog_begin(&j, buf, sizeof(buf), "warn");
	jlog_u64(&j, "shard", sh->id);
	jlog_cstr(&j, "what", what);
	jlog_cstr(&j, "detail", detail);
	if ((dropped = ratelimit_take_suppressed(&sh->warn_rl)) != 0)
		jlog_u64(&j, "suppressed", dropped);
	shard_log(sh, buf, jlog_end(&j));
}

static int
shard_listen_one(const struct config_listen *l)
{
	int one = 1;
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (l->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&l->addr, l->len) < 0 || listen(fd, 4096) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void
shard_arm_accept(struct shard *sh, unsigned i)
{
	struct io_uring_sqe *sqe = shard_sqe(sh);

	io_uring_prep_multishot_accept(sqe, sh->listen_fd[i], NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_ACCEPT, i, 0));
}

static void
shard_arm_tick(struct shard *sh)
{
	struct io_uring_sqe *sqe = shard_sqe(sh);

	sh->tick_ts.tv_sec = 0;
	sh->tick_ts.tv_nsec = SHARD_TICK_MS * 1000000L;
	io_uring_prep_timeout(sqe, &sh->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_TICK, 0, 0));
}

static void
shard_arm_wake(struct shard *sh)
{
	struct io_uring_sqe *sqe = shard_sqe(sh);

	io_uring_prep_read(sqe, sh->wake_fd, &sh->wake_buf, sizeof(sh->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_WAKE, 0, 0));
}

static int
shard_ring_init(struct shard *sh)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	/* R_DISABLED: the ring is built here, on the main thread, and enabled
	 * by the shard thread, which thereby becomes its single issuer */
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	p.cq_entries = SHARD_RING_ENTRIES * 4;
	ret = io_uring_queue_init_params(SHARD_RING_ENTRIES, &sh->ring, &p);
	if (ret == -EINVAL) {
		/* older kernel: without SINGLE_ISSUER/DEFER_TASKRUN */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED;
		p.cq_entries = SHARD_RING_ENTRIES * 4;
		ret = io_uring_queue_init_params(SHARD_RING_ENTRIES, &sh->ring, &p);
	}
	return ret;
}

/* --- the resolver's sockets on the ring (core/dns's owner interface) --- */

static void
shard_dns_arm(struct shard *sh, unsigned i)
{
	struct shard_dns_watch *w = &sh->dns_watch[i];
	struct io_uring_sqe *sqe = shard_sqe(sh);

	/* one-shot, re-armed after each readiness: c-ares wants level-triggered */
	io_uring_prep_poll_add(sqe, w->fd, w->events);
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_DNS_POLL, i, w->gen));
	w->armed = true;
}

static void
shard_dns_disarm(struct shard *sh, unsigned i)
{
	struct shard_dns_watch *w = &sh->dns_watch[i];
	struct io_uring_sqe *sqe;

	if (!w->armed)
		return;
	sqe = shard_sqe(sh);
	io_uring_prep_poll_remove(sqe, uop_pack(UOP_DNS_POLL, i, w->gen));
	io_uring_sqe_set_data64(sqe, uop_pack(UOP_CANCEL, 0, 0));
	w->armed = false;
	w->gen = ++sh->dns_watch_gen; /* its completion, if any, is now stale */
}

/* core/dns: watch fd for events (POLLIN/POLLOUT), or stop (0). */
static void
shard_dns_watch(void *ctx, int fd, unsigned events)
{
	struct shard *sh = ctx;
	unsigned i, free_i = SHARD_DNS_FDS;

	if (sh->loop_done)
		return; /* dns_fini() at exit: the ring has no submitter any more */
	for (i = 0; i < SHARD_DNS_FDS && sh->dns_watch[i].fd != fd; i++)
		if (sh->dns_watch[i].fd < 0 && free_i == SHARD_DNS_FDS)
			free_i = i;
	if (i == SHARD_DNS_FDS) {
		if (events == 0)
			return;
		if (free_i == SHARD_DNS_FDS) {
			/* cannot happen with DNS_MAX_SERVERS servers; a lost poll
			 * only costs that server a time-out */
			shard_warn(sh, "dns", "more than %d resolver sockets", SHARD_DNS_FDS);
			return;
		}
		i = free_i;
		sh->dns_watch[i].fd = fd;
		sh->dns_watch[i].gen = ++sh->dns_watch_gen;
	}
	if (sh->dns_watch[i].events != events)
		shard_dns_disarm(sh, i); /* a new poll mask needs a new POLL_ADD */
	sh->dns_watch[i].events = (uint16_t)events;
	if (events == 0) {
		sh->dns_watch[i].fd = -1;
		return;
	}
	if (!sh->dns_watch[i].armed)
		shard_dns_arm(sh, i);
}

static void
shard_on_dns_poll(struct shard *sh, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned i = uop_slot(ud);
	struct shard_dns_watch *w = &sh->dns_watch[i];

	if (i >= SHARD_DNS_FDS || w->fd < 0 || w->gen != uop_gen(ud))
		return; /* unwatched or re-armed since */
	w->armed = false;
	dns_on_ready(&sh->dns, w->fd, cqe->res < 0 ? POLLERR : (unsigned)cqe->res);
	if (w->fd >= 0 && w->events != 0 && !w->armed)
		shard_dns_arm(sh, i);
}

static int
shard_dns_init(struct shard *sh)
{
	struct dns_config dc;
	int ret;

	dns_config_default(&dc);
	for (unsigned i = 0; i < sh->cfg->ndns; i++) {
		ret = dns_server_parse(sh->cfg->dns[i], &dc.servers[i]);
		BUG_ON(ret < 0); /* config_set checked it */
	}
	dc.nservers = sh->cfg->ndns;
	for (unsigned i = 0; i < SHARD_DNS_FDS; i++)
		sh->dns_watch[i].fd = -1;
	sh->dns_io.ctx = sh;
	sh->dns_io.watch = shard_dns_watch;
	ret = dns_init(&sh->dns, &dc, &sh->dns_io);
	if (ret < 0) {
		sh->dns_io.watch = NULL;
		fprintf(stderr, "sluice: shard %u: resolver: %s\n", sh->id, strerror(-ret));
		return ret;
	}
	/* a session resolves one destination host per leg; room for two each on
	 * average (pool memory is resident only once used), then 451 4.3.0 */
	ret = nexthop_init(&sh->nexthop, &sh->dns, sh->cfg->max_sessions * 2);
	if (ret < 0) {
		dns_fini(&sh->dns);
		sh->dns_io.watch = NULL;
	}
	return ret;
}

int
shard_init(struct shard *sh, unsigned id, const struct config *cfg,
	   const struct shard_shared *shared)
{
	size_t chunk =
	    cfg->recv_buffer_size > SHARD_CHUNK_MIN ? cfg->recv_buffer_size : SHARD_CHUNK_MIN;
	uint64_t timeouts[TIMER__COUNT];
	int ret;

	memset(sh, 0, sizeof(*sh));
	sh->id = id;
	sh->cpu = -1;
	sh->cfg = cfg;
	sh->wake_fd = -1;
	sh->warn_rl.window_ns = 1000000000;
	sh->warn_rl.burst = SHARD_WARN_BURST;
	for (unsigned i = 0; i < CONFIG_MAX_LISTEN; i++)
		sh->listen_fd[i] = -1;

	ret = logring_init(&sh->log, SHARD_LOG_RING);
	if (ret < 0)
		return ret;
	ret = shard_ring_init(sh);
	if (ret < 0) {
		fprintf(stderr, "sluice: shard %u: io_uring_queue_init: %s\n", id, strerror(-ret));
		return ret;
	}
	sh->br_count = cfg->recv_buffers;
	sh->br_size = (uint32_t)cfg->recv_buffer_size;
	sh->br_mem = aligned_alloc(4096, (size_t)sh->br_count * sh->br_size);
	if (sh->br_mem == NULL)
		return -ENOMEM;
	sh->br = uring_compat_setup_buf_ring(&sh->ring, sh->br_count, 0, &ret);
	if (sh->br == NULL) {
		fprintf(stderr, "sluice: shard %u: provided buffer ring: %s\n", id, strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < sh->br_count; i++)
		io_uring_buf_ring_add(sh->br, sh->br_mem + (size_t)i * sh->br_size, sh->br_size,
				      (unsigned short)i, io_uring_buf_ring_mask(sh->br_count),
				      (int)i);
	io_uring_buf_ring_advance(sh->br, (int)sh->br_count);

	if ((ret = pool_init(&sh->sessions, cfg->max_sessions, sizeof(struct session))) < 0 ||
	    (ret = pool_init(&sh->txs, cfg->max_sessions, sizeof(struct smtp_tx))) < 0 ||
	    (ret = pool_init(&sh->upstreams, cfg->max_sessions, sizeof(struct upstream))) < 0 ||
	    (ret = ipcount_init(&sh->ipcount, cfg->max_sessions)) < 0)
		return ret;
	/* per session at the most: two output chunks, one held-input chunk and
	 * one for the destinations of the RCPT being routed */
	chunk_pool_init(&sh->chunks, chunk, cfg->max_sessions * 4);
	sh->decision = malloc(sizeof(*sh->decision));
	sh->reply_scratch = malloc(sizeof(*sh->reply_scratch));
	if (sh->decision == NULL || sh->reply_scratch == NULL)
		return -ENOMEM;
	zonectl_reader_init(&sh->zone_reader);
	sh->srs = shared->srs;
	sh->tls_client = shared->tls_client;
	sh->dedup = shared->dedup;
	if (sh->srs != NULL &&
	    (sh->srs_uses = calloc(SHARD_SRS_USES, sizeof(*sh->srs_uses))) == NULL)
		return -ENOMEM;
	if ((ret = shard_dns_init(sh)) < 0)
		return ret;
	/* stuffing can add a dot per line: worst case 3 octets become 4 */
	spool_pool_init(&sh->spools, cfg->max_message_size + cfg->max_message_size / 3 + 65536,
			cfg->spool_memory, cfg->spool_dir);
	timeouts[TIMER_COMMAND] = cfg->command_timeout_ms;
	timeouts[TIMER_DATA] = cfg->data_timeout_ms;
	timeouts[TIMER_UPSTREAM] = cfg->upstream_timeout_ms;
	timeouts[TIMER_CLOSE] = SHARD_CLOSE_LINGER_MS;
	timeouts[TIMER_UP_IDLE] = UP_POOL_IDLE_MS;
	/* upstream-timeout bounds every wait for an upstream, connects included */
	timeouts[TIMER_UP_CONNECT] = cfg->connect_timeout_ms < cfg->upstream_timeout_ms
					 ? cfg->connect_timeout_ms
					 : cfg->upstream_timeout_ms;
	timers_init(&sh->timers, timeouts);

	sh->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (sh->wake_fd < 0)
		return -errno;
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		ret = shard_listen_one(&cfg->listen[i]);
		if (ret < 0) {
			fprintf(stderr, "sluice: listen %s: %s\n", cfg->listen[i].text,
				strerror(-ret));
			return ret;
		}
		sh->listen_fd[i] = ret;
		sh->nlisten++;
	}
	return 0;
}

void
shard_fini(struct shard *sh)
{
	for (unsigned i = 0; i < CONFIG_MAX_LISTEN; i++)
		if (sh->listen_fd[i] >= 0)
			close(sh->listen_fd[i]);
	if (sh->wake_fd >= 0)
		close(sh->wake_fd);
	if (sh->ring.ring_fd > 0)
		io_uring_queue_exit(&sh->ring);
	free(sh->br_mem);
	sh->br_mem = NULL;
	pool_fini(&sh->sessions);
	pool_fini(&sh->txs);
	pool_fini(&sh->upstreams);
	ipcount_fini(&sh->ipcount);
	chunk_pool_fini(&sh->chunks);
	spool_pool_fini(&sh->spools);
	free(sh->decision);
	sh->decision = NULL;
	free(sh->reply_scratch);
	sh->reply_scratch = NULL;
	free(sh->srs_uses);
	sh->srs_uses = NULL;
	if (sh->dns_io.watch != NULL) {
		nexthop_fini(&sh->nexthop);
		dns_fini(&sh->dns);
	}
	logring_fini(&sh->log);
}

static void
shard_on_accept(struct shard *sh, const struct io_uring_cqe *cqe)
{
	unsigned i = uop_slot(io_uring_cqe_get_data64(cqe));

	if (cqe->res >= 0) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);

		/* the peer address: one cheap syscall instead of a buffer per accept */
		if (getpeername(cqe->res, (struct sockaddr *)&peer, &len) < 0)
			close(cqe->res);
		else
			sess_accept(sh, cqe->res, &peer);
	} else if (!sh->draining) {
		shard_warn(sh, "accept", "%s: %s", sh->cfg->listen[i].text, strerror(-cqe->res));
	}
	if (!(cqe->flags & IORING_CQE_F_MORE) && !sh->draining) {
		/* multishot ended: re-arm now, or on the next tick after an error
		 * (EMFILE would otherwise fail again at once, in a loop) */
		if (cqe->res >= 0)
			shard_arm_accept(sh, i);
		else
			sh->accept_rearm |= 1u << i;
	}
}

/* Visit every live session (drain and retry paths; not per message). */
static void
shard_each_session(struct shard *sh, void (*fn)(struct session *, bool), bool arg)
{
	for (uint32_t slot = 0; slot < sh->sessions.fresh; slot++) {
		struct session *s = pool_at(&sh->sessions, slot);

		if (s->sh == sh && s->fd >= 0 && s->gen == pool_gen(&sh->sessions, slot))
			fn(s, arg);
	}
}

static void
shard_retry_one(struct session *s, bool unused)
{
	(void)unused;
	sess_retry_recv(s);
}

static void
shard_on_tick(struct shard *sh)
{
	struct timer *t;

	while ((t = timers_expired(&sh->timers, sh->now_ms)) != NULL) {
		if (t->cls == TIMER_UPSTREAM || t->cls == TIMER_UP_IDLE ||
		    t->cls == TIMER_UP_CONNECT)
			up_on_timer(
			    (struct upstream *)((char *)t - offsetof(struct upstream, timer)));
		else
			sess_on_timer(
			    (struct session *)((char *)t - offsetof(struct session, timer)));
	}
	for (unsigned i = 0; i < sh->nlisten; i++) {
		if ((sh->accept_rearm & (1u << i)) && !sh->draining)
			shard_arm_accept(sh, i);
	}
	sh->accept_rearm = 0;
	if (sh->recv_retry != 0) {
		sh->recv_retry = 0;
		shard_each_session(sh, shard_retry_one, false);
	}
	if (sh->draining && sh->now_ms >= sh->drain_deadline_ms)
		shard_each_session(sh, sess_drain, true);
	dns_tick(&sh->dns, sh->now_ms);
	shard_arm_tick(sh);
}

static void
shard_begin_drain(struct shard *sh)
{
	if (sh->draining)
		return;
	sh->draining = true;
	sh->drain_deadline_ms = sh->now_ms + sh->cfg->shutdown_timeout_ms;
	for (unsigned i = 0; i < sh->nlisten; i++) {
		/* no new connections: shut the listener; its multishot accept ends */
		shutdown(sh->listen_fd[i], SHUT_RDWR);
	}
	shard_each_session(sh, sess_drain, false);
	up_pool_flush(sh); /* idle upstream connections: QUIT now */
}

static void
shard_dispatch(struct shard *sh, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	switch (uop_kind(ud)) {
	case UOP_ACCEPT:
		shard_on_accept(sh, cqe);
		break;
	case UOP_RECV:
		sess_on_recv(sh, cqe);
		break;
	case UOP_RECV_SPOOL:
		sess_on_recv_spool(sh, cqe);
		break;
	case UOP_SEND:
		sess_on_send(sh, cqe);
		break;
	case UOP_UP_CONNECT:
	case UOP_UP_RECV:
	case UOP_UP_SEND:
	case UOP_UP_SENDZC:
		up_on_cqe(sh, cqe);
		break;
	case UOP_TICK:
		shard_on_tick(sh);
		break;
	case UOP_WAKE:
		shard_begin_drain(sh);
		break;
	case UOP_DNS_POLL:
		shard_on_dns_poll(sh, cqe);
		break;
	case UOP_CANCEL:
		break; /* the cancelled operations complete on their own */
	case UOP_INVALID:
	case UOP__COUNT:
		BUG_ON(1);
	}
}

static void
shard_close_listeners(struct shard *sh)
{
	for (unsigned i = 0; i < sh->nlisten; i++) {
		close(sh->listen_fd[i]);
		sh->listen_fd[i] = -1;
	}
}

static void *
shard_main(void *arg)
{
	struct shard *sh = arg;

	if (sh->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(sh->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	sh->exit_status = uring_compat_enable_rings(&sh->ring);
	if (sh->exit_status < 0) {
		shard_close_listeners(sh);
		return NULL;
	}
	sh->now_ms = timer_now_ms();
	for (unsigned i = 0; i < sh->nlisten; i++)
		shard_arm_accept(sh, i);
	shard_arm_tick(sh);
	shard_arm_wake(sh);

	while (!(sh->draining && sh->live_sessions == 0 && sh->live_upstreams == 0)) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		/* answers from the DNS cache and literals, before we sleep */
		nexthop_dispatch(&sh->nexthop);
		ret = io_uring_submit_and_wait(&sh->ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			sh->exit_status = ret;
			shard_close_listeners(sh); /* the kernel must not queue clients here */
			break;
		}
		sh->now_ms = timer_now_ms();
		io_uring_for_each_cqe(&sh->ring, head, cqe)
		{
			shard_dispatch(sh, cqe);
			seen++;
		}
		io_uring_cq_advance(&sh->ring, seen);
	}
	io_uring_submit(&sh->ring);
	sh->loop_done = true;
	tls_thread_done();
	return NULL;
}

int
shard_start(struct shard *sh)
{
	return -pthread_create(&sh->thread, NULL, shard_main, sh);
}

void
shard_request_stop(struct shard *sh)
{
	uint64_t one = 1;

	(void)!write(sh->wake_fd, &one, sizeof(one));
}
