/*
 * route_ab.c -- paired A/B of two builds of route/ in one process (issue 4).
 *
 *   route_ab ZONEFILE SAMPLES [--rounds N] [--lookups N] [--one-table]
 *
 * Linked by bench/route_ab.sh with two copies of libroute.a whose symbols carry the
 * prefixes A_ and B_. Each copy loads ZONEFILE into its own table; then the uniform
 * stream of SAMPLES (tools/gen-zones.py --samples, in file order, read with
 * bench_samples.c as bench_route reads its "uniform") is looked up in batches of
 * BENCH_WIDE (64, bench_route's wide batch), in N rounds of one slice per side, the
 * order alternating (AB, BA, AB...). Before the rounds, both sides decide every sample
 * and must agree (action, groups, reply).
 *
 * Why: on this kind of machine the speed of the same binary moves by +-25 % from one
 * run to the next (the host's other tenants), far more than most changes to the lookup
 * are worth. Slices of ~0.1 s taken in turn see the same conditions, so their ratio is
 * steady where the absolute figures are not.
 *
 * --one-table: B's code looks up in A's table. Each process's table lands on other
 * physical memory, and that alone moves a side by up to 10 %; for a change to the
 * lookup code only (same table layout, same hash) this takes it out. Not for changes
 * to the table or the hash: B would read a layout it does not know.
 *
 * Output: the median time per lookup of each side, the median of the per-round ratios
 * B/A, their range, and in how many rounds B took less time.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_clock.h"
#include "bench/bench_samples.h"
#include "route/zone.h"

#define AB_ROUNDS_MAX 1000

typedef int load_fn(const char *, struct zone_table **, char *, size_t);
typedef void free_fn(struct zone_table *);
typedef void batch_fn(const struct zone_table *, const char *const[], const size_t[], size_t,
		      struct zone_decision *const[]);
load_fn A_zone_table_load, B_zone_table_load;
free_fn A_zone_table_free, B_zone_table_free;
batch_fn A_zone_lookup_batch, B_zone_lookup_batch;

/* Do both sides decide every address alike? The count of those they do not. */
static size_t
disagreements(const struct stream *st, const struct zone_table *ta, const struct zone_table *tb,
	      batch_fn *b_batch, struct zone_decision *const da[], struct zone_decision *const db[])
{
	size_t bad = 0;

	for (size_t i = 0; i < st->n; i += BENCH_WIDE) {
		A_zone_lookup_batch(ta, st->addr + i, st->len + i, BENCH_WIDE, da);
		b_batch(tb, st->addr + i, st->len + i, BENCH_WIDE, db);
		for (unsigned k = 0; k < BENCH_WIDE; k++)
			bad += da[k]->action != db[k]->action || da[k]->ngroups != db[k]->ngroups ||
			       strcmp(da[k]->reply, db[k]->reply) != 0;
	}
	return bad;
}

/* nlookups lookups from stream position *at on, in batches; ns per lookup. */
static double
slice(batch_fn *batch, const struct zone_table *t, const struct stream *st, size_t *at,
      unsigned long long nlookups, struct zone_decision *const d[], unsigned long long *sink)
{
	double t0 = bench_now_ns();

	for (unsigned long long i = 0; i < nlookups; i += BENCH_WIDE) {
		batch(t, st->addr + *at, st->len + *at, BENCH_WIDE, d);
		for (unsigned k = 0; k < BENCH_WIDE; k++)
			*sink += d[k]->ngroups;
		*at += BENCH_WIDE;
		if (*at == st->n)
			*at = 0;
	}
	return (bench_now_ns() - t0) / (double)nlookups;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of v[0..n); sorts v. */
static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
usage(void)
{
	fprintf(stderr, "usage: route_ab ZONEFILE SAMPLES [--rounds N] [--lookups N] "
			"[--one-table]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *zpath = NULL, *spath = NULL;
	int rounds = 20, bfaster = 0;
	unsigned long long nlookups = 1000000, sink = 0;
	bool one_table = false;
	struct zone_table *ta = NULL, *tb = NULL;
	struct zone_decision *dv, *da[BENCH_WIDE], *db[BENCH_WIDE];
	struct stream st;
	struct sample *s;
	char err[512] = "", *sbuf;
	size_t slen, ns;
	double a[AB_ROUNDS_MAX], b[AB_ROUNDS_MAX], r[AB_ROUNDS_MAX];
	size_t at_a = 0, at_b = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc)
			nlookups = strtoull(argv[++i], NULL, 10) / BENCH_WIDE * BENCH_WIDE;
		else if (strcmp(argv[i], "--one-table") == 0)
			one_table = true;
		else if (argv[i][0] == '-')
			usage();
		else if (zpath == NULL)
			zpath = argv[i];
		else if (spath == NULL)
			spath = argv[i];
		else
			usage();
	}
	if (spath == NULL || rounds < 1 || rounds > AB_ROUNDS_MAX || nlookups == 0)
		usage();
	if (A_zone_table_load(zpath, &ta, err, sizeof(err)) < 0 ||
	    (!one_table && B_zone_table_load(zpath, &tb, err, sizeof(err)) < 0)) {
		fprintf(stderr, "route_ab: load failed: %s\n", err);
		return 1;
	}
	if (one_table)
		tb = ta;
	sbuf = bench_slurp(spath, &slen);
	s = sbuf != NULL ? bench_samples_parse(sbuf, slen, &ns) : NULL;
	if (s == NULL || !bench_stream_build(&st, s, ns, NULL, 0) || st.n == 0) {
		fprintf(stderr, "route_ab: no sample addresses in %s\n", spath);
		return 1;
	}
	dv = calloc(2 * BENCH_WIDE, sizeof(*dv));
	if (dv == NULL)
		return 1;
	for (unsigned k = 0; k < BENCH_WIDE; k++) {
		da[k] = &dv[k];
		db[k] = &dv[BENCH_WIDE + k];
	}
	size_t bad = disagreements(&st, ta, tb, B_zone_lookup_batch, da, db);
	printf("route_ab: %zu samples, %zu decided differently%s\n", st.n, bad,
	       one_table ? ", one table" : "");
	if (bad > 0)
		return 1;
	/* a warm-up slice each, then the rounds */
	slice(A_zone_lookup_batch, ta, &st, &at_a, nlookups, da, &sink);
	slice(B_zone_lookup_batch, tb, &st, &at_b, nlookups, da, &sink);
	for (int i = 0; i < rounds; i++) {
		if (i % 2 == 0) {
			a[i] = slice(A_zone_lookup_batch, ta, &st, &at_a, nlookups, da, &sink);
			b[i] = slice(B_zone_lookup_batch, tb, &st, &at_b, nlookups, da, &sink);
		} else {
			b[i] = slice(B_zone_lookup_batch, tb, &st, &at_b, nlookups, da, &sink);
			a[i] = slice(A_zone_lookup_batch, ta, &st, &at_a, nlookups, da, &sink);
		}
		r[i] = b[i] / a[i];
		bfaster += b[i] < a[i];
	}
	double ma = median(a, rounds), mb = median(b, rounds), mr = median(r, rounds);
	printf("route_ab: A %.1f ns/lookup (%.2f M/s), B %.1f ns/lookup (%.2f M/s); "
	       "B/A time %.3f (range %.3f-%.3f), B faster in %d of %d rounds\n",
	       ma, 1e3 / ma, mb, 1e3 / mb, mr, r[0], r[rounds - 1], bfaster, rounds);
	fprintf(stderr, "route_ab: groups seen %llu\n", sink);
	if (tb != ta)
		B_zone_table_free(tb);
	A_zone_table_free(ta);
	bench_stream_free(&st);
	free(s);
	free(sbuf);
	free(dv);
	return 0;
}
