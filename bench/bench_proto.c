/*
 * bench_proto.c -- microbenchmarks for the pure SMTP parsers in proto/.
 *
 *   smtp_line  framing a pipelined burst of command lines (in place)
 *   smtp_cmd   parsing MAIL/RCPT lines with parameters
 *   smtp_data  a 10 MiB message with many dot-stuffed lines, 16 KiB spans
 *   smtp_data_plain  the same without stuffed lines (typical mail)
 *   smtp_stuff the same content through BDAT dot-stuffing
 *
 * Built by `make bench` as build/bench/bench_proto (a release build) and run
 * by bench/run.sh, which prints its figures under the end-to-end table.
 * Reports ns per operation and MB/s (10^6 bytes) over the best of 5 runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_clock.h"
#include "proto/smtp_bdat.h"
#include "proto/smtp_cmd.h"
#include "proto/smtp_data.h"
#include "proto/smtp_line.h"

#define BENCH_RUNS   5
#define BENCH_SPAN   16384		 /* bytes per simulated recv buffer */
#define BENCH_MSG_SZ (10u * 1024 * 1024) /* DATA message size */

static void
report(const char *name, double ns, double ops, double bytes)
{
	printf("%-12s %10.1f ns/op %10.1f MB/s\n", name, ns / ops, bytes / ns * 1e3);
}

static volatile size_t sink; /* defeats dead-code elimination */

static void
count_emit(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	sink += n;
}

static void
bench_line(void)
{
	static const char burst[] = "MAIL FROM:<sender@example.org> SIZE=12345 BODY=8BITMIME\r\n"
				    "RCPT TO:<rcpt1@example.net>\r\n"
				    "RCPT TO:<rcpt2@example.net>\r\n"
				    "DATA\r\n";
	static struct smtp_line l;
	const size_t iters = 2000000;
	double best = 1e300;
	size_t lines = 0;
	for (int r = 0; r < BENCH_RUNS; r++) {
		lines = 0;
		double t0 = bench_now_ns();
		for (size_t i = 0; i < iters; i++) {
			size_t off = 0;
			while (off < sizeof(burst) - 1) {
				enum smtp_line_status st;
				const char *line;
				size_t len;
				off += smtp_line_feed(&l, burst + off, sizeof(burst) - 1 - off,
						      SMTP_MAX_LINE, &st, &line, &len);
				lines += st == SMTP_LINE_OK;
				sink += len;
			}
		}
		double t = bench_now_ns() - t0;
		best = t < best ? t : best;
	}
	report("smtp_line", best, (double)lines, (double)iters * (sizeof(burst) - 1));
}

static void
bench_cmd(void)
{
	static const char *const lines[] = {
	    "MAIL FROM:<sender@example.org> SIZE=12345 BODY=8BITMIME",
	    "RCPT TO:<rcpt1@example.net>",
	    "EHLO mail.example.org",
	    "DATA",
	};
	const size_t iters = 2000000;
	size_t bytes = 0;
	for (size_t k = 0; k < 4; k++)
		bytes += strlen(lines[k]);
	double best = 1e300;
	for (int r = 0; r < BENCH_RUNS; r++) {
		double t0 = bench_now_ns();
		for (size_t i = 0; i < iters; i++) {
			for (size_t k = 0; k < 4; k++) {
				struct smtp_cmd cmd;
				sink += (size_t)smtp_cmd_parse(lines[k], strlen(lines[k]), &cmd);
			}
		}
		double t = bench_now_ns() - t0;
		best = t < best ? t : best;
	}
	report("smtp_cmd", best, (double)iters * 4, (double)iters * (double)bytes);
}

/* 10 MiB of 78-byte lines, every dot_every-th one dot-stuffed (0: none), then ".\r\n". */
static char *
make_message(size_t *n, unsigned dot_every)
{
	char *m = malloc(BENCH_MSG_SZ + 3);
	if (m == NULL)
		abort();
	size_t off = 0;
	for (unsigned ln = 0; off + 80 <= BENCH_MSG_SZ; ln++) {
		if (dot_every != 0 && ln % dot_every == 0)
			m[off++] = '.';
		while (off % 80 != 78 && off < BENCH_MSG_SZ) {
			m[off] = (char)('a' + off % 26);
			off++;
		}
		m[off++] = '\r';
		m[off++] = '\n';
	}
	memcpy(m + off, ".\r\n", 3);
	*n = off + 3;
	return m;
}

static void
bench_data(const char *name, const char *m, size_t n)
{
	double best = 1e300;
	for (int r = 0; r < BENCH_RUNS; r++) {
		struct smtp_data d;
		smtp_data_init(&d, 0, 0);
		double t0 = bench_now_ns();
		for (size_t off = 0; off < n && !d.done;) {
			size_t c = n - off < BENCH_SPAN ? n - off : BENCH_SPAN;
			off += smtp_data_feed(&d, m + off, c, count_emit, NULL);
		}
		double t = bench_now_ns() - t0;
		best = t < best ? t : best;
		if (!d.done)
			fprintf(stderr, "smtp_data: terminator not found\n");
	}
	report(name, best, 1, (double)n);
}

static void
bench_stuff(const char *m, size_t n)
{
	double best = 1e300;
	for (int r = 0; r < BENCH_RUNS; r++) {
		struct smtp_stuff s;
		smtp_stuff_init(&s, 0);
		double t0 = bench_now_ns();
		for (size_t off = 0; off < n;) {
			size_t c = n - off < BENCH_SPAN ? n - off : BENCH_SPAN;
			smtp_stuff_feed(&s, m + off, c, count_emit, NULL);
			off += c;
		}
		smtp_stuff_finish(&s, count_emit, NULL);
		double t = bench_now_ns() - t0;
		best = t < best ? t : best;
	}
	report("smtp_stuff", best, 1, (double)n);
}

int
main(void)
{
	size_t n, plain_n;
	char *m = make_message(&n, 4);
	char *plain = make_message(&plain_n, 0);

	bench_line();
	bench_cmd();
	bench_data("smtp_data", m, n);
	bench_data("smtp_data_plain", plain, plain_n); /* typical mail: no stuffed lines */
	bench_stuff(m, n - 3);			       /* content without the DATA terminator */
	free(m);
	free(plain);
	return 0;
}
