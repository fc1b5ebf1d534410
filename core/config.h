/*
 * config.h -- the server configuration: defaults, file and option parsing, checks.
 *
 * A struct config is built once at start-up (or reload) by the boot code:
 *
 *	config_defaults(&c);
 *	config_begin_layer(&c); config_load_file(&c, path, err, sizeof err);
 *	config_begin_layer(&c); config_set(&c, "listen", "[::1]:25", "--listen", ...);
 *	config_finish(&c, err, sizeof err);
 *
 * and is then immutable: shards read it through a const pointer and never
 * write it. Nothing here runs on a shard thread; config_finish() may block in
 * getaddrinfo() and config_load_file() reads a file, which is allowed only
 * before the shards start (DESIGN.md invariant 4).
 *
 * Every key of SPEC.md "Config file format" is a typed field with a default,
 * a range and a unit. Errors are one line, prefixed with where the value came
 * from: "sluice.conf:12: max-recipients: not a number: 'abc'".
 *
 * Decisions:
 * - Layers (defaults < file < command line): the first `listen` of a layer
 *   replaces the list of the layer below, later ones append. The alternative,
 *   always appending, would make it impossible to drop the default listener.
 * - Counts take plain decimal numbers only; SIZE keys take k/M/G (base 1024);
 *   DUR keys take ms/s/m/h (a bare number is seconds). No fractions, no signs,
 *   no blanks inside a value: every key has exactly one field.
 * - The config holds no pointers, so it can be copied with memcpy and
 *   published by pointer swap without deep copies.
 */
#ifndef SLUICE_CORE_CONFIG_H
#define SLUICE_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONFIG_MAX_LISTEN      16   /* listen addresses */
#define CONFIG_MAX_DNS	       8    /* dns resolvers (= DNS_MAX_SERVERS, core/dns.h) */
#define CONFIG_MAX_SHARDS      1024 /* shards; 0 in the file means one per online CPU */
#define CONFIG_MAX_HOSTNAME    253  /* RFC 1035 2.3.4: textual domain name, no final dot */
#define CONFIG_MAX_HOSTPORT    (CONFIG_MAX_HOSTNAME + 8) /* name + ":65535" (or [v6]:port) */
#define CONFIG_MAX_FILE_SIZE   (1024 * 1024) /* a config file larger than this is refused */
#define CONFIG_MAX_VALUE       1023	     /* longest value text on one line */
#define CONFIG_MAX_PATH	       1024	     /* a file name in the config (zones) */
#define CONFIG_MAX_RECV_MEMORY (1ull << 30)  /* recv-buffer-size * recv-buffers per shard */

/* Defaults (SPEC.md "Config file format"). */
#define CONFIG_DEFAULT_LISTEN		    "127.0.0.1:2525"
#define CONFIG_DEFAULT_UPSTREAM		    "127.0.0.1:2526"
#define CONFIG_DEFAULT_MAX_MESSAGE_SIZE	    26214400u
#define CONFIG_DEFAULT_MAX_RECIPIENTS	    1000u
#define CONFIG_DEFAULT_MAX_LINE_LENGTH	    2048u
#define CONFIG_DEFAULT_MAX_DATA_LINE_LENGTH 1048576u
#define CONFIG_DEFAULT_MAX_SESSIONS	    16384u
#define CONFIG_DEFAULT_MAX_CONN_PER_IP	    256u
#define CONFIG_DEFAULT_MAX_ERRORS	    20u
#define CONFIG_DEFAULT_COMMAND_TIMEOUT_MS   300000u
#define CONFIG_DEFAULT_DATA_TIMEOUT_MS	    600000u
#define CONFIG_DEFAULT_UPSTREAM_TIMEOUT_MS  120000u
#define CONFIG_DEFAULT_CONNECT_TIMEOUT_MS   30000u /* Postfix's smtp_connect_timeout */
/* a sender's queue retries for 5 days (Postfix maximal_queue_lifetime) */
#define CONFIG_DEFAULT_DEDUP_WINDOW_MS	   (5ull * 86400 * 1000)
#define CONFIG_MAX_DEDUP_WINDOW_MS	   (30ull * 86400 * 1000)
#define CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_MS 30000u
#define CONFIG_DEFAULT_RECV_BUFFER_SIZE	   16384u
#define CONFIG_DEFAULT_RECV_BUFFERS	   1024u
#define CONFIG_DEFAULT_SRS_MAX_AGE	   3u  /* days (issue 5; Mail::SRS says 21) */
#define CONFIG_DEFAULT_SRS_MAX_USES	   10u /* bounces per SRS address per shard */
#define CONFIG_DEFAULT_MX_PORT		   25u
#define CONFIG_DEFAULT_MAX_RECEIVED	   50u		  /* Postfix's hopcount_limit */
#define CONFIG_DEFAULT_SPOOL_MEMORY	   (512ull << 20) /* per shard (issue 5) */
#define CONFIG_DEFAULT_SPOOL_DIR	   "/var/tmp"	  /* on disk, unlike /tmp on many systems */

/*
 * Ranges, inclusive. The reason for each bound:
 * - max-line-length: RFC 5321 4.5.3.1.4 needs 512 octets for a command line;
 *   2048 is the staging buffer compiled into the session (SMTP_MAX_LINE).
 * - max-data-line-length: RFC 5321 4.5.3.1.6 needs 1000 octets of text line.
 * - recv-buffers: the kernel's provided-buffer ring holds at most 32768 entries.
 */
#define CONFIG_MIN_MAX_MESSAGE_SIZE	1024u
#define CONFIG_MAX_MAX_MESSAGE_SIZE	(1ull << 30)
#define CONFIG_MIN_MAX_RECIPIENTS	1u
#define CONFIG_MAX_MAX_RECIPIENTS	100000u
#define CONFIG_MIN_MAX_LINE_LENGTH	512u
#define CONFIG_MAX_MAX_LINE_LENGTH	2048u
#define CONFIG_MIN_MAX_DATA_LINE_LENGTH 1000u
#define CONFIG_MAX_MAX_DATA_LINE_LENGTH (1u << 30)
#define CONFIG_MIN_MAX_SESSIONS		1u
#define CONFIG_MAX_MAX_SESSIONS		1048576u
#define CONFIG_MAX_MAX_CONN_PER_IP	1048576u /* min 0 = unlimited */
#define CONFIG_MIN_MAX_ERRORS		1u
#define CONFIG_MAX_MAX_ERRORS		10000u
#define CONFIG_MIN_TIMEOUT_MS		100u	  /* command/data/upstream timeouts */
#define CONFIG_MAX_TIMEOUT_MS		86400000u /* 24h */
#define CONFIG_MAX_SHUTDOWN_TIMEOUT_MS	3600000u  /* 1h; min 0 = 421 at once */
#define CONFIG_MIN_RECV_BUFFER_SIZE	512u
#define CONFIG_MAX_RECV_BUFFER_SIZE	(1u << 20)
#define CONFIG_MIN_RECV_BUFFERS		1u
#define CONFIG_MAX_RECV_BUFFERS		32768u
#define CONFIG_MIN_SRS_MAX_AGE		1u	      /* days */
#define CONFIG_MAX_SRS_MAX_AGE		365u	      /* days; = SRS_MAX_MAX_AGE (auth/srs.h) */
#define CONFIG_MIN_SPOOL_MEMORY		(64ull << 20) /* spool-memory, per shard */
#define CONFIG_MAX_SPOOL_MEMORY		(64ull << 30)

/* STARTTLS toward the upstream relay host (upstream-tls). */
enum config_tls {
	CONFIG_TLS_NONE,	  /* plaintext (the default for the relay host) */
	CONFIG_TLS_OPPORTUNISTIC, /* STARTTLS when offered, any certificate */
	CONFIG_TLS_VERIFY,	  /* STARTTLS required, certificate and name verified */
};

enum config_send_mode {
	CONFIG_SEND_COPY, /* send from the spool with plain send (default; faster on loopback) */
	CONFIG_SEND_ZEROCOPY, /* IORING_OP_SEND_ZC: pays on real NICs */
};

/* Ordered by verbosity: a message of level L is logged iff L <= cfg->log_level. */
enum config_log_level {
	CONFIG_LOG_ERROR,
	CONFIG_LOG_WARN,
	CONFIG_LOG_INFO, /* default: one line per transaction and per session */
	CONFIG_LOG_DEBUG,
};

struct config_listen {
	struct sockaddr_storage addr; /* AF_INET or AF_INET6, port set; ready for bind() */
	socklen_t len;		      /* sizeof(struct sockaddr_in{,6}) */
	char text[64];		      /* canonical "ADDR:PORT" / "[V6]:PORT", NUL-terminated */
};

struct config {
	/* listen */
	struct config_listen listen[CONFIG_MAX_LISTEN]; /* [0, nlisten) valid, no duplicates */
	unsigned nlisten;				/* 1..CONFIG_MAX_LISTEN after finish */
	bool listen_in_layer; /* a listen was set in the current layer (see config_begin_layer) */

	/* identity and upstream */
	uint32_t shards;			/* 0 = one per online CPU; >= 1 after finish */
	char hostname[256];			/* banner/EHLO/Received name, NUL-terminated */
	char upstream[CONFIG_MAX_HOSTPORT + 1]; /* "HOST:PORT" as configured */
	struct sockaddr_storage upstream_addr;	/* resolved address; valid iff upstream_len */
	socklen_t upstream_len; /* 0 until resolved (literal: at set; name: at finish) */
	bool upstream_set;	/* true when set by a file or option (false: embedded default) */
	bool mx_delivery;	/* upstream none: each destination's MX, no relay host */
	enum config_tls upstream_tls;  /* upstream-tls: toward the relay host */
	enum config_tls tls_policy;    /* tls-policy: MX delivery's default (zones override) */
	char ca_file[CONFIG_MAX_PATH]; /* ca-file: CA bundle for verify, "" = the system's */

	/* limits (SPEC.md names in comments) */
	uint64_t max_message_size;	 /* max-message-size, bytes; advertised by SIZE */
	uint32_t max_recipients;	 /* max-recipients per transaction */
	uint32_t max_line_length;	 /* max-line-length, bytes incl. CRLF */
	uint32_t max_data_line_length;	 /* max-data-line-length, bytes incl. CRLF */
	uint32_t max_sessions;		 /* max-sessions per shard */
	uint32_t max_connections_per_ip; /* per shard; 0 = unlimited */
	uint32_t max_errors;		 /* protocol errors before 421 and close */
	uint32_t max_received;		 /* max-received-headers: more is a mail loop */

	/* timeouts, milliseconds */
	uint64_t command_timeout_ms;  /* command-timeout: wait for one command line */
	uint64_t data_timeout_ms;     /* data-timeout: between DATA reads */
	uint64_t upstream_timeout_ms; /* upstream-timeout: connect and each upstream reply */
	uint64_t connect_timeout_ms;  /* connect-timeout: MX delivery, one address's connect
					 and greeting; then the next address */
	uint64_t shutdown_timeout_ms; /* shutdown-timeout: grace for DATA at SIGTERM */

	/* data path */
	enum config_send_mode send_mode; /* send-mode */
	uint64_t recv_buffer_size;	 /* recv-buffer-size, bytes per provided buffer */
	uint32_t recv_buffers;		 /* recv-buffers per shard, a power of two */
	uint64_t spool_memory;		 /* spool-memory: anonymous spool bytes per shard */
	char spool_dir[CONFIG_MAX_PATH]; /* spool-dir: unlinked spool files past spool-memory */

	enum config_log_level log_level; /* log-level */
	char zones[CONFIG_MAX_PATH];	 /* zones: the zone file, "" = none (issue 4) */
	uint64_t generation;		 /* 0 from config_defaults; the owner numbers reloads */

	/* delivery (issue 5) */
	char dns[CONFIG_MAX_DNS][64];	  /* dns: resolvers as "ADDR[:PORT]"; [0, ndns) valid */
	unsigned ndns;			  /* 0 = the system's (resolv.conf) */
	bool dns_in_layer;		  /* a dns was set in the current layer (like listen) */
	uint32_t mx_port;		  /* mx-port: port of MX and implicit-MX delivery */
	char postmaster[CONFIG_MAX_PATH]; /* postmaster: where postmaster@ a zone without a
					     rule for it goes (RFC 5321 4.5.1), "" = none */
	uint64_t dedup_window_ms;	  /* dedup-window: a partly delivered message's
					     fingerprints are kept this long (core/dedup.h) */

	/* SRS (issue 5): both names set, or neither (checked by config_finish) */
	char srs_domain[CONFIG_MAX_HOSTNAME + 1]; /* srs-domain: our forwarding domain, "" = off */
	char srs_secret[CONFIG_MAX_PATH];	  /* srs-secret: secrets file, one per line */
	uint32_t srs_max_age;			  /* srs-max-age: days an SRS0 address is valid */
	uint32_t srs_max_uses;			  /* srs-max-uses: bounces one address may carry */
};

/*
 * Fill *c with the embedded defaults: listen 127.0.0.1:2525, upstream
 * 127.0.0.1:2526 (already resolved), hostname from gethostname() ("localhost"
 * if that fails or is not a valid host name), every limit at its SPEC.md
 * default, shards 0. Starts the first layer (see config_begin_layer).
 */
void config_defaults(struct config *c);

/*
 * Start a new layer: the next `listen` replaces the current list instead of
 * appending to it. Call before loading the file and again before applying
 * command-line options. Other keys simply overwrite in every layer.
 */
void config_begin_layer(struct config *c);

/*
 * Set one key from its text value. `where` ("FILE:LINE" or "--option"; may be
 * NULL) prefixes the error text written to err (always NUL-terminated when
 * errlen > 0): "WHERE: KEY: reason", or "WHERE: unknown key 'KEY'".
 * Literal addresses are parsed here; an upstream host name is only checked
 * for syntax and resolved by config_finish().
 * Returns 0, or -SLUICE_ESYNTAX (unknown key, bad syntax), -ERANGE (value out
 * of range), -SLUICE_ELIMIT (too many listen addresses) or -EEXIST (duplicate
 * listen address). On error *c is unchanged.
 */
int config_set(struct config *c, const char *key, const char *value, const char *where, char *err,
	       size_t errlen);

/*
 * Parse a config file (format: SPEC.md; '#' starts a comment, blank lines are
 * ignored, each other line is exactly `key value`) and apply it with
 * config_set(). Stops at the first error with "PATH:LINE: reason" in err.
 * An unreadable file gives "PATH: strerror(errno)" and the negative errno.
 * Does not call config_begin_layer(); the caller does. Blocking file I/O:
 * start-up only. Returns 0 or a negative code as config_set().
 */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/*
 * Same as config_load_file() for text in memory (len = strlen(text)); `name`
 * takes the place of PATH in error messages. A NUL byte ends the text.
 */
int config_load_string(struct config *c, const char *text, const char *name, char *err,
		       size_t errlen);

/*
 * Finish the configuration: shards 0 -> number of online CPUs (capped at
 * CONFIG_MAX_SHARDS), resolve an upstream host name (getaddrinfo: blocks,
 * start-up only; the first address returned is used), then check across
 * fields: the upstream must not be one of our listen addresses (mail loop),
 * recv-buffer-size * recv-buffers <= CONFIG_MAX_RECV_MEMORY, srs-domain and
 * srs-secret come together (the secrets file itself is read by the caller,
 * with auth/srs). Idempotent.
 * Returns 0, or a negative code with the reason in err.
 */
int config_finish(struct config *c, char *err, size_t errlen);

/*
 * Parse a SIZE: decimal digits with an optional suffix k/K, m/M, g/G (base
 * 1024); no blanks, signs or fractions. Returns 0, -SLUICE_ESYNTAX, or -ERANGE
 * on overflow of uint64_t. *out is written only on success.
 */
int config_parse_size(const char *s, uint64_t *out);

/*
 * Parse a DUR into milliseconds: decimal digits with a unit ms, s, m or h; a
 * bare number is seconds ("30" = "30s"). Returns 0, -SLUICE_ESYNTAX, or -ERANGE
 * on overflow. *ms is written only on success.
 */
int config_parse_duration(const char *s, uint64_t *ms);

/*
 * Parse "ADDR:PORT": "127.0.0.1:25", "[::1]:25", "*:25" (IPv4 any),
 * "[::]:25" (IPv6 any); with allow_name also "name:25", resolved with
 * getaddrinfo() (blocks: start-up only; the first address is used). Port is
 * 1..65535, decimal. IPv6 needs brackets. Writes *ss and *len on success.
 * Returns 0, -SLUICE_ESYNTAX (malformed, or a name when !allow_name), -ERANGE
 * (port), or -EHOSTUNREACH (the name did not resolve).
 */
int config_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len,
			  bool allow_name);

/* Human-readable names, as accepted in the file: "copy", "info", ... */
const char *config_send_mode_name(enum config_send_mode m);

/*
 * The index of the listen address that `ss` reaches (the same address and
 * port, or loopback at a wildcard listener's port), else -1: mail sent
 * there would come back to us (the relay host at start-up, an MX address
 * at delivery).
 */
int config_own_address(const struct config *c, const struct sockaddr_storage *ss);

/* Static name of an upstream-tls value: "none", "opportunistic", "verify". */
const char *config_tls_name(enum config_tls t);
const char *config_log_level_name(enum config_log_level l);

/*
 * Print the effective configuration to f in the file format, one key per
 * line, sizes and durations in the largest unit that is exact. The output
 * loaded with config_load_string() gives back the same settings.
 */
void config_dump(const struct config *c, FILE *f);

#endif /* SLUICE_CORE_CONFIG_H */
