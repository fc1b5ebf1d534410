/*
 * split_feeder.h -- chunking-invariance harness for resumable parsers.
 *
 * STYLE rule 8: a parser gives the same events however its input is split.
 * A test describes its parser as a struct split_target (reset, feed, and an
 * optional finish), whose callbacks append a textual trace of events to a
 * struct split_log. split_check_all then feeds the input whole, split in two
 * at every point, one byte at a time, and in random chunk sizes (fixed seed,
 * bounded rounds) and compares each trace with the whole-input one.
 *
 * Every chunk is copied into its own heap block of exactly its size, so a
 * parser that reads past p + n trips ASan (and valgrind) at once.
 * Test-only code: it allocates freely and aborts on allocation failure.
 */
#ifndef SLUICE_TESTS_SUPPORT_SPLIT_FEEDER_H
#define SLUICE_TESTS_SUPPORT_SPLIT_FEEDER_H

#include <stdbool.h>
#include <stddef.h>

/* A growable text trace of parser events. Zero-initialised = empty. */
struct split_log {
	char *buf;  /* owned; NUL-terminated when len > 0 */
	size_t len; /* bytes in buf, NUL excluded */
	size_t cap; /* bytes allocated */
};

/* The parser under test, seen through three callbacks sharing ctx. */
struct split_target {
	void *ctx;		  /* the test's parser state; borrowed */
	void (*reset)(void *ctx); /* start over with fresh parser state */
	/* Feed p[0..n); returns bytes consumed (> 0 when n > 0, or the feeder
	 * reports a stall). The adapter logs events into log. */
	size_t (*feed)(void *ctx, const char *p, size_t n, struct split_log *log);
	void (*finish)(void *ctx, struct split_log *log); /* end of input; may be NULL */
};

/* split_log_add -- append printf-formatted text to log. */
void split_log_add(struct split_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* split_log_bytes -- append p[0..n) with CR, LF, '\\' and non-printables
 * escaped (\r, \n, \\, \xHH) so traces stay readable in failure messages. */
void split_log_bytes(struct split_log *log, const char *p, size_t n);

/* split_log_clear -- make log empty (keeps its memory). */
void split_log_clear(struct split_log *log);

/* split_log_free -- release log's memory; log is empty afterwards. */
void split_log_free(struct split_log *log);

/* split_log_str -- log's text as a C string ("" when empty). */
const char *split_log_str(const struct split_log *log);

/*
 * split_feed_chunks -- reset t, feed in[0..n) in chunks of the given sizes
 * (sizes[k] bytes each, the last chunk takes whatever remains; nsizes 0 =
 * one chunk), calling feed repeatedly on a chunk until it is consumed, then
 * finish. The trace goes to out (cleared first). Returns 0, or -1 if feed
 * made no progress (a stall, logged as "STALL").
 */
int split_feed_chunks(const struct split_target *t, const char *in, size_t n, const size_t *sizes,
		      size_t nsizes, struct split_log *out);

/*
 * split_check_all -- compare the whole-input trace with the trace of every
 * 2-chunk split, byte-at-a-time feeding, and rounds of random chunk sizes
 * (seeded, bounded). Returns 0 if all agree; otherwise -1 with a description
 * of the first difference in why[0..whylen) (NUL-terminated). If whole is
 * not NULL, it receives the whole-input trace.
 */
int split_check_all(const struct split_target *t, const char *in, size_t n, struct split_log *whole,
		    char *why, size_t whylen);

#endif /* SLUICE_TESTS_SUPPORT_SPLIT_FEEDER_H */
