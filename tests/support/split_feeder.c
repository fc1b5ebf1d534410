/*
 * split_feeder.c -- chunking-invariance harness; see split_feeder.h.
 */
#include "tests/support/split_feeder.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_RANDOM_ROUNDS 64 /* random chunkings per input */
#define SPLIT_SEED	    0x5eed5eedull

static void
log_reserve(struct split_log *log, size_t more)
{
	if (log->len + more + 1 <= log->cap)
		return;
	size_t cap = log->cap ? log->cap : 256;
	while (cap < log->len + more + 1)
		cap *= 2;
	char *b = realloc(log->buf, cap);
	if (b == NULL)
		abort();
	log->buf = b;
	log->cap = cap;
}

void
split_log_add(struct split_log *log, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0)
		abort();
	log_reserve(log, (size_t)k);
	va_start(ap, fmt);
	vsnprintf(log->buf + log->len, (size_t)k + 1, fmt, ap);
	va_end(ap);
	log->len += (size_t)k;
}

void
split_log_bytes(struct split_log *log, const char *p, size_t n)
{
	log_reserve(log, n * 4);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char *o = log->buf + log->len;
		if (c == '\r') {
			memcpy(o, "\\r", 2);
			log->len += 2;
		} else if (c == '\n') {
			memcpy(o, "\\n", 2);
			log->len += 2;
		} else if (c == '\\') {
			memcpy(o, "\\\\", 2);
			log->len += 2;
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(o, 5, "\\x%02x", c);
			log->len += 4;
		} else {
			*o = (char)c;
			log->len += 1;
		}
	}
	log->buf[log->len] = '\0';
}

void
split_log_clear(struct split_log *log)
{
	log->len = 0;
	if (log->buf)
		log->buf[0] = '\0';
}

void
split_log_free(struct split_log *log)
{
	free(log->buf);
	log->buf = NULL;
	log->len = log->cap = 0;
}

const char *
split_log_str(const struct split_log *log)
{
	return log->buf && log->len ? log->buf : "";
}

/* Feed one chunk through a private heap copy of exactly its size. */
static int
feed_chunk(const struct split_target *t, const char *p, size_t n, struct split_log *out)
{
	char *copy = malloc(n ? n : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, p, n);
	size_t off = 0;
	int rc = 0;
	/* bounded: every round consumes at least one byte */
	for (size_t guard = 0; off < n && guard <= n; guard++) {
		size_t k = t->feed(t->ctx, copy + off, n - off, out);
		if (k == 0 || k > n - off) {
			split_log_add(out, "STALL");
			rc = -1;
			break;
		}
		off += k;
	}
	free(copy);
	return rc;
}

int
split_feed_chunks(const struct split_target *t, const char *in, size_t n, const size_t *sizes,
		  size_t nsizes, struct split_log *out)
{
	split_log_clear(out);
	t->reset(t->ctx);
	size_t off = 0;
	for (size_t k = 0; k < nsizes && off < n; k++) {
		size_t c = sizes[k] < n - off ? sizes[k] : n - off;
		if (c == 0)
			continue;
		if (feed_chunk(t, in + off, c, out) != 0)
			return -1;
		off += c;
	}
	if (off < n && feed_chunk(t, in + off, n - off, out) != 0)
		return -1;
	if (t->finish)
		t->finish(t->ctx, out);
	return 0;
}

static uint64_t
xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static int
differs(const struct split_log *want, const struct split_log *got, const char *how, char *why,
	size_t whylen)
{
	if (want->len == got->len &&
	    memcmp(split_log_str(want), split_log_str(got), want->len) == 0)
		return 0;
	snprintf(why, whylen, "%s:\n  whole: %s\n  split: %s", how, split_log_str(want),
		 split_log_str(got));
	return -1;
}

int
split_check_all(const struct split_target *t, const char *in, size_t n, struct split_log *whole,
		char *why, size_t whylen)
{
	struct split_log ref = {0}, got = {0};
	int rc = -1;
	char how[96];

	snprintf(why, whylen, "ok");
	if (split_feed_chunks(t, in, n, NULL, 0, &ref) != 0) {
		snprintf(why, whylen, "whole input stalled: %s", split_log_str(&ref));
		goto out;
	}
	for (size_t k = 1; k < n; k++) {
		size_t sizes[1] = {k};
		split_feed_chunks(t, in, n, sizes, 1, &got);
		snprintf(how, sizeof(how), "split at %zu of %zu", k, n);
		if (differs(&ref, &got, how, why, whylen))
			goto out;
	}
	{
		/* one byte at a time: n chunks of 1 */
		size_t *ones = malloc((n ? n : 1) * sizeof(*ones));
		if (ones == NULL)
			abort();
		for (size_t k = 0; k < n; k++)
			ones[k] = 1;
		split_feed_chunks(t, in, n, ones, n, &got);
		free(ones);
		if (differs(&ref, &got, "byte at a time", why, whylen))
			goto out;
	}
	uint64_t seed = SPLIT_SEED;
	size_t *sizes = malloc((n ? n : 1) * sizeof(*sizes));
	if (sizes == NULL)
		abort();
	for (int round = 0; round < SPLIT_RANDOM_ROUNDS; round++) {
		size_t cnt = 0, total = 0, span = (size_t)(xorshift64(&seed) % 64) + 1;
		while (total < n) {
			size_t c = (size_t)(xorshift64(&seed) % span) + 1;
			sizes[cnt++] = c;
			total += c;
		}
		split_feed_chunks(t, in, n, sizes, cnt, &got);
		snprintf(how, sizeof(how), "random round %d (max chunk %zu)", round, span);
		if (differs(&ref, &got, how, why, whylen)) {
			free(sizes);
			goto out;
		}
	}
	free(sizes);
	rc = 0;
out:
	if (whole) {
		split_log_clear(whole);
		log_reserve(whole, ref.len);
		memcpy(whole->buf, split_log_str(&ref), ref.len + 1);
		whole->len = ref.len;
	}
	split_log_free(&ref);
	split_log_free(&got);
	return rc;
}
