/*
 * fuzz.h -- shared helpers for the libFuzzer targets in tests/fuzz/.
 *
 * Every target defines LLVMFuzzerTestOneInput over pure parser calls (no
 * sockets, no threads). The same objects link either with libFuzzer (clang,
 * `make fuzz`) or with tools/fuzz-replay.c (gcc, `make test`), so nothing
 * here may depend on libFuzzer.
 *
 * Oracles beyond "no crash" fail through FUZZ_CHECK, which prints the
 * condition and traps: libFuzzer then saves the input as crash-<sha1>, and
 * the replay dies with SIGILL, naming the corpus file it was on.
 *
 * struct fuzz_trace is a growable byte log of parser events; a target feeds
 * its input whole and split, logs each run, and compares the logs
 * (chunking invariance, STYLE.md rule 8). Test-only code: it aborts on
 * allocation failure.
 */
#ifndef SLUICE_TESTS_FUZZ_FUZZ_H
#define SLUICE_TESTS_FUZZ_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry point; also called by tools/fuzz-replay.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: oracle failed: %s\n", __FILE__, __LINE__, #cond);  \
			fflush(stderr);                                                            \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

struct fuzz_trace {
	char *buf;  /* owned; not NUL-terminated */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
};

static inline void
fuzz_trace_bytes(struct fuzz_trace *t, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n)
			cap *= 2;
		char *b = realloc(t->buf, cap);
		if (b == NULL)
			abort();
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static inline void fuzz_trace_fmt(struct fuzz_trace *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
fuzz_trace_fmt(struct fuzz_trace *t, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(tmp))
		abort();
	fuzz_trace_bytes(t, tmp, (size_t)k);
}

static inline void
fuzz_trace_free(struct fuzz_trace *t)
{
	free(t->buf);
	*t = (struct fuzz_trace){0};
}

static inline int
fuzz_trace_eq(const struct fuzz_trace *a, const struct fuzz_trace *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->buf, b->buf, a->len) == 0);
}

/* A heap copy of p[0..n) of exactly n bytes (1 if n is 0), so that reading
 * past the end of a chunk trips ASan. */
static inline char *
fuzz_dup(const void *p, size_t n)
{
	char *c = malloc(n ? n : 1);
	if (c == NULL)
		abort();
	if (n)
		memcpy(c, p, n);
	else
		c[0] = '\0'; /* never read by a correct parser; keeps gcc quiet */
	return c;
}

/*
 * Chunk plans derived from the input, so that a crash reproduces from its
 * file alone. FUZZ_PLAN_WHOLE feeds everything at once; FUZZ_PLAN_SPLIT cuts
 * once at `at`; FUZZ_PLAN_STRIDE cuts every `at` bytes (at >= 1).
 */
enum fuzz_plan { FUZZ_PLAN_WHOLE, FUZZ_PLAN_SPLIT, FUZZ_PLAN_STRIDE };

/* Size of the chunk starting at off of an n-byte input under plan/at. */
static inline size_t
fuzz_chunk(enum fuzz_plan plan, size_t at, size_t off, size_t n)
{
	size_t rest = n - off;
	switch (plan) {
	case FUZZ_PLAN_WHOLE:
		return rest;
	case FUZZ_PLAN_SPLIT:
		return off < at && at < n ? at - off : rest;
	case FUZZ_PLAN_STRIDE:
		return at < rest ? at : rest;
	}
	return rest;
}

#endif /* SLUICE_TESTS_FUZZ_FUZZ_H */
