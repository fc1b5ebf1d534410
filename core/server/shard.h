/*
 * shard.h -- one event loop, one ring, one CPU.
 *
 * Everything reachable from a struct shard is touched only by that shard's
 * thread, except the fields marked "cross-thread": the wake eventfd the
 * control thread writes to, the log ring the control thread drains, and
 * the statistics it reads with relaxed loads. Hot-path functions take the
 * shard explicitly; there is no thread-local "current shard", so tests can
 * run several shards in one process.
 *
 * Receive path decision: each session has at most one single-shot recv
 * armed, with a provided buffer (IOSQE_BUFFER_SELECT), rather than a
 * multishot recv. An idle session then holds no buffer, and a session that
 * waits for its upstream simply does not re-arm, so the kernel's socket
 * buffer and TCP flow control hold the client back (a pipelining client may
 * legally send BDAT content behind a RCPT we are still relaying). With
 * multishot, those bytes would arrive anyway and need unbounded holding.
 */
#ifndef SLUICE_CORE_SHARD_H
#define SLUICE_CORE_SHARD_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/chunk.h"
#include "core/config.h"
#include "core/dedup.h"
#include "core/dns.h"
#include "core/ipcount.h"
#include "core/jlog.h"
#include "core/logring.h"
#include "core/pool.h"
#include "core/server/nexthop.h"
#include "core/server/zonectl.h"
#include "auth/srs.h"
#include "core/spool.h"
#include "core/tls.h"
#include "core/timer.h"

#define SHARD_TICK_MS	      250	 /* timer resolution */
#define SHARD_LOG_RING	      (1u << 20) /* bytes of log lines buffered per shard */
#define SHARD_LOG_LINE	      8192	 /* longest log line */
#define SHARD_CLOSE_LINGER_MS 10000	 /* a closing session's last send may take this long */
#define SHARD_WARN_BURST      10	 /* warnings per second per shard, then counted */
#define SHARD_DNS_FDS                                                                              \
	16 /* resolver sockets watched at once (c-ares: a                                          \
	      UDP and a TCP socket per server at most) */

#define SHARD_SRS_USES 4096 /* SRS addresses whose bounces are counted (direct-mapped) */

/* Read-only things every shard borrows from main, built at start-up. */
struct shard_shared {
	const struct srs *srs;	    /* NULL when SRS is off */
	struct tls_ctx *tls_client; /* NULL when no upstream uses TLS */
	struct dedup *dedup;	    /* fingerprints of partial deliveries (all shards) */
};

/* Bounces seen through one SRS address (srs-max-uses). */
struct shard_srs_use {
	uint64_t key;	    /* XXH3 of the lowercased address; 0 = free */
	uint32_t count;	    /* bounces accepted through it */
	uint32_t until_day; /* unix day after which the count is forgotten */
};

/* One resolver socket core/dns asked the shard to poll. */
struct shard_dns_watch {
	int fd;		 /* -1: free */
	uint16_t events; /* POLLIN/POLLOUT wanted now */
	bool armed;	 /* a POLL_ADD is in flight */
	uint32_t gen;	 /* names the POLL_ADD in user_data: a stale one is dropped */
};

/* Counters: one writer (the shard), read by the control thread. */
struct shard_stats {
	_Atomic uint64_t accepted;	  /* connections accepted */
	_Atomic uint64_t refused;	  /* connections refused (limits, draining) */
	_Atomic uint64_t sessions;	  /* sessions finished */
	_Atomic uint64_t tx_accepted;	  /* messages acknowledged with 2xx */
	_Atomic uint64_t tx_rejected;	  /* messages refused at end of data */
	_Atomic uint64_t bytes_in;	  /* message bytes received */
	_Atomic uint64_t stale_cqes;	  /* completions for freed objects */
	_Atomic uint64_t enobufs;	  /* recv found no provided buffer */
	_Atomic uint64_t glitches;	  /* protocol errors by clients */
	_Atomic uint64_t upstream_errors; /* upstream connects/replies that failed */
};

struct shard {
	unsigned id;			  /* 0..nshards-1 */
	int cpu;			  /* CPU to pin to; -1 = do not pin */
	const struct config *cfg;	  /* borrowed: lives as long as the process */
	const struct srs *srs;		  /* borrowed, read-only; NULL when SRS is off */
	struct tls_ctx *tls_client;	  /* borrowed: STARTTLS to the upstream; NULL if none */
	struct dedup *dedup;		  /* borrowed, shared by every shard (core/dedup.h) */
	struct shard_srs_use *srs_uses;	  /* owned: SHARD_SRS_USES of them, when srs */
	struct io_uring ring;		  /* SINGLE_ISSUER | DEFER_TASKRUN when available */
	struct io_uring_buf_ring *br;	  /* provided-buffer ring, group 0 */
	char *br_mem;			  /* owned: recv_buffers * recv_buffer_size bytes */
	uint32_t br_size;		  /* bytes per provided buffer */
	uint32_t br_count;		  /* provided buffers */
	struct pool sessions;		  /* struct session */
	struct pool txs;		  /* struct smtp_tx: one per session at most */
	struct pool upstreams;		  /* struct upstream */
	struct chunk_pool chunks;	  /* output and held-input chunks */
	struct spool_pool spools;	  /* message content */
	struct timers timers;		  /* session and upstream deadlines */
	struct ipcount ipcount;		  /* live sessions per client address */
	struct zone_reader zone_reader;	  /* this shard's epoch record (core/server/zonectl) */
	struct zone_decision *decision;	  /* owned: scratch for one RCPT's lookup */
	struct smtp_reply *reply_scratch; /* owned: a relayed reply with its host named */
	struct dns dns;			  /* this shard's resolver and cache */
	struct nexthop nexthop;		  /* destinations -> addresses, on dns */
	struct dns_io dns_io;		  /* how core/dns asks us to poll its sockets */
	struct shard_dns_watch dns_watch[SHARD_DNS_FDS];
	uint32_t dns_watch_gen;		  /* last generation handed out */
	bool loop_done;			  /* the loop ended: no more SQEs (dns_fini's unwatch) */
	int listen_fd[CONFIG_MAX_LISTEN]; /* owned: this shard's SO_REUSEPORT sockets */
	unsigned nlisten;
	uint64_t now_ms;		  /* monotonic, refreshed once per completion batch */
	uint64_t next_sess_id;		  /* low bits of session ids */
	uint32_t live_sessions;		  /* sessions not yet freed */
	uint32_t live_upstreams;	  /* upstreams not yet freed */
	struct upstream *up_pool;	  /* idle upstream connections, most recent first */
	uint32_t up_pooled;		  /* ... how many */
	struct ratelimit warn_rl;	  /* environment warnings (EMFILE, pools full, ...) */
	uint32_t recv_retry;		  /* sessions waiting for a provided buffer */
	uint32_t accept_rearm;		  /* bit i: listener i re-arms its accept at the tick */
	bool draining;			  /* shutdown requested: no new sessions */
	bool stop;			  /* the loop ends after this batch */
	uint64_t drain_deadline_ms;	  /* when draining: force-close after this */
	uint64_t wake_buf;		  /* target of the eventfd read */
	struct __kernel_timespec tick_ts; /* the periodic timeout */
	pthread_t thread;
	/* cross-thread */
	int wake_fd;	    /* eventfd: control thread -> shard (shutdown) */
	struct logring log; /* shard -> control thread (stdout) */
	struct shard_stats stats;
	int exit_status; /* 0, or negative errno if the loop failed */
};

/*
 * Set up everything the shard needs: ring, buffers, pools, listeners.
 * Start-up only (may allocate, may fail with a message on stderr).
 * Returns 0 or a negative errno.
 */
int shard_init(struct shard *sh, unsigned id, const struct config *cfg,
	       const struct shard_shared *shared);

/* Release what shard_init() acquired. The loop must have ended. */
void shard_fini(struct shard *sh);

/* Start the shard's thread (pinned to sh->cpu when >= 0). */
int shard_start(struct shard *sh);

/* Ask the shard to drain and stop (control thread; async-signal-unsafe). */
void shard_request_stop(struct shard *sh);

/* Get an SQE, submitting queued ones first if the SQ is full. Never NULL. */
struct io_uring_sqe *shard_sqe(struct shard *sh);

/* Return provided buffer `bid` to the ring. */
void shard_buf_put(struct shard *sh, unsigned bid);

/* Queue one log line (a complete JSON object with "\n"). */
void shard_log(struct shard *sh, const char *line, size_t len);

/*
 * Log an environment warning ({"event":"warn","what":WHAT,"detail":...}),
 * at most SHARD_WARN_BURST a second per shard; the next line that gets
 * through says how many were suppressed (H2O's error reporter).
 */
void shard_warn(struct shard *sh, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Relaxed single-writer counter increment (see STYLE.md "Statistics"). */
static inline void
shard_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#endif /* SLUICE_CORE_SHARD_H */
