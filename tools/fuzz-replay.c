/*
 * fuzz-replay.c -- run fuzz corpora through a libFuzzer target without
 * libFuzzer (SQLite's fuzzcheck idea).
 *
 *   build/replay_<t> PATH...
 *
 * Linked with one tests/fuzz/fuzz_<t>.o, it calls LLVMFuzzerTestOneInput
 * once per file: each PATH is a file or a directory, whose regular files
 * are replayed in name order (not recursively; dot files are skipped).
 * Every input is read into a heap block of exactly its size, so an
 * over-read trips ASan in `make BUILD=asan`. The name of the input goes to
 * stderr before the call when SLUICE_REPLAY_VERBOSE is set, and always on
 * failure of the harness itself.
 *
 * Prints "replay: N inputs ok" and exits 0. A crash or a failed oracle
 * (__builtin_trap) kills the process, which is the failure report; the
 * path being replayed is printed first by the signal handler. Exit 2 on
 * an unreadable path or an empty run (a misspelt corpus directory must not
 * pass silently).
 *
 * Decisions: gcc-only, no libFuzzer runtime, so `make test` needs no clang;
 * rejected alternative: linking libFuzzer and passing -runs=0, which needs
 * clang everywhere the tests run.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

static const char *current; /* path being replayed, for the crash handler */

static void
on_crash(int sig)
{
	static const char msg[] = "replay: crashed on ";
	if (current != NULL) {
		(void)!write(2, msg, sizeof(msg) - 1);
		(void)!write(2, current, strlen(current));
		(void)!write(2, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Replay one regular file; returns 0, or -1 if it cannot be read. */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		abort();
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		fprintf(stderr, "replay: %s: read error\n", path);
		free(buf);
		return -1;
	}
	/* exactly n bytes, so reading past the input is caught by ASan */
	uint8_t *in = malloc(n ? n : 1);
	if (in == NULL)
		abort();
	memcpy(in, buf, n);
	free(buf);
	current = path;
	if (getenv("SLUICE_REPLAY_VERBOSE") != NULL)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(in, n);
	current = NULL;
	free(in);
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay the regular files of dir in name order; adds to *count. */
static int
replay_dir(const char *dir, unsigned long *count)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
				abort();
		}
		size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
		names[n] = malloc(len);
		if (names[n] == NULL)
			abort();
		snprintf(names[n], len, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(names[i]) != 0)
				rc = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	signal(SIGSEGV, on_crash);
	signal(SIGILL, on_crash);
	signal(SIGABRT, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGFPE, on_crash);

	unsigned long count = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &count) != 0)
				rc = -1;
		} else if (replay_file(argv[i]) == 0) {
			count++;
		} else {
			rc = -1;
		}
	}
	if (rc != 0)
		return 2;
	if (count == 0) {
		fprintf(stderr, "replay: no inputs in the given paths\n");
		return 2;
	}
	printf("replay: %lu inputs ok\n", count);
	return 0;
}
