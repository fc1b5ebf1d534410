/*
 * jlog.h -- JSON-lines log formatting and a rate limiter (level 0: no I/O).
 *
 * One log line is built into a caller-supplied buffer:
 *
 *	struct jlog j;
 *	jlog_begin(&j, buf, sizeof buf, "tx");
 *	jlog_cstr(&j, "from", from);
 *	jlog_u64(&j, "size", size);
 *	n = jlog_end(&j);		// buf[0..n) = {"ts":"...","event":"tx",...}\n
 *
 * and written out by the caller (core/log or the shard loop); nothing here
 * does I/O, allocates or reads a clock except jlog_begin(). The output is
 * always one valid JSON object on one line (RFC 8259), whatever the input:
 *
 * - Strings: '"' and '\' are escaped as \" and \\; bytes 0x00-0x1f and 0x7f
 *   as \u00XX (lower-case hex), so no raw control character reaches a
 *   terminal or log pipeline. Well-formed UTF-8 (RFC 3629: no overlong
 *   forms, no surrogates, nothing above U+10FFFF) passes through unchanged.
 *   Every byte that is not part of a well-formed sequence is written as
 *   \u00XX of the byte value. Decision: this is lossy (a reader cannot tell
 *   the raw byte 0xe9 from a real U+00E9), but it keeps the line valid JSON
 *   without a second encoding; the alternative, U+FFFD, loses the byte value
 *   which is what one wants to see when a client sends Latin-1.
 * - Overflow: every member is written whole or not at all, except a string
 *   value, which is cut at a character boundary (never inside an escape or a
 *   UTF-8 sequence) and closed. After the first overflow nothing more is
 *   added and jlog_end() writes ,"truncated":true} instead of }. Room for
 *   that tail is reserved from the start (JLOG_RESERVE), so the end always fits.
 * Keys are the caller's constants and must be plain ASCII without '"' or '\'
 * (checked with ASSERT in debug builds, escaped anyway).
 */
#ifndef SLUICE_CORE_JLOG_H
#define SLUICE_CORE_JLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Bytes kept free for the tail ,"truncated":true}\n plus a NUL. */
#define JLOG_RESERVE 20
/* Smallest buffer jlog_begin accepts: timestamp, a short event and the tail. */
#define JLOG_MIN_CAP 96
/* "2026-11-23T15:04:05.123Z" */
#define JLOG_TS_LEN 24

struct jlog {
	char *buf;     /* caller's buffer, not owned; NUL-terminated after every call */
	size_t cap;    /* size of buf, >= JLOG_MIN_CAP */
	size_t len;    /* bytes written, excluding the NUL; <= cap - JLOG_RESERVE until end */
	bool first;    /* no member written yet (no comma needed) */
	bool overflow; /* something did not fit; later members are dropped */
};

/*
 * Start a line with the current wall-clock time (CLOCK_REALTIME): writes
 * {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ","event":"EVENT". buf must hold at least
 * JLOG_MIN_CAP bytes (BUG_ON otherwise); it stays owned by the caller.
 */
void jlog_begin(struct jlog *j, char *buf, size_t cap, const char *event);

/* Same as jlog_begin() with the time given by the caller (tests, cached clocks). */
void jlog_begin_at(struct jlog *j, char *buf, size_t cap, const char *event,
		   const struct timespec *now);

/*
 * Format t (UTC, milliseconds truncated) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into
 * out[JLOG_TS_LEN + 1]. Years 0..9999; times outside that are clamped.
 * Does not use gmtime_r(), which takes glibc's time-zone lock.
 */
void jlog_format_ts(char out[JLOG_TS_LEN + 1], const struct timespec *t);

/* Add "key":"escaped s[0..n)". s may hold any bytes, including NUL. */
void jlog_str(struct jlog *j, const char *key, const char *s, size_t n);

/* jlog_str() of a NUL-terminated string; NULL writes "key":null. */
void jlog_cstr(struct jlog *j, const char *key, const char *s);

/*
 * Add "key":["a","b",...] from `len` bytes of NUL-separated strings (a
 * final NUL is optional). Elements that do not fit are left out whole and
 * the line is marked truncated.
 */
void jlog_strv(struct jlog *j, const char *key, const char *list, size_t len);

/* Add "key":NUMBER. */
void jlog_u64(struct jlog *j, const char *key, uint64_t v);
void jlog_i64(struct jlog *j, const char *key, int64_t v);

/* Add "key":true / "key":false. */
void jlog_bool(struct jlog *j, const char *key, bool v);

/* Add "key":null. */
void jlog_null(struct jlog *j, const char *key);

/*
 * Add a duration given in nanoseconds as milliseconds with three decimals:
 * 1234567 ns -> "key":1.234 (truncated, not rounded; exact for whole us).
 */
void jlog_ms(struct jlog *j, const char *key, uint64_t ns);

/*
 * Close the object with }\n, or ,"truncated":true}\n after an overflow.
 * Returns the line length in bytes (buf[len] is a NUL not counted). Call
 * once; j must not be used afterwards except to read buf.
 */
size_t jlog_end(struct jlog *j);

/*
 * Fixed-window rate limiter for repeated warnings (H2O's error reporter):
 * at most `burst` events per `window_ns`; the others are counted in
 * `suppressed`, which the next allowed warning reports. Zero-initialise, then
 * set window_ns and burst (or use RATELIMIT_INIT). burst 0 allows nothing;
 * window_ns 0 starts a new window at every call. Not thread-safe: one per
 * shard, like the rest of the shard's state.
 */
struct ratelimit {
	uint64_t window_ns;	  /* window length, ns */
	uint64_t window_start_ns; /* start of the current window, caller's clock */
	unsigned burst;		  /* events allowed per window */
	unsigned count;		  /* events allowed in the current window, <= burst */
	uint64_t suppressed;	  /* events refused since the last take_suppressed() */
};

#define RATELIMIT_INIT(window, n)                                                                  \
	{                                                                                          \
		.window_ns = (window), .burst = (n)                                                \
	}

/*
 * true if an event at now_ns (a monotonic clock, ns) may be reported; false
 * and suppressed++ otherwise. A clock going backwards starts a new window.
 */
bool ratelimit_allow(struct ratelimit *r, uint64_t now_ns);

/* Return the suppressed count and reset it to 0 (say "N similar messages dropped"). */
uint64_t ratelimit_take_suppressed(struct ratelimit *r);

#endif /* SLUICE_CORE_JLOG_H */
