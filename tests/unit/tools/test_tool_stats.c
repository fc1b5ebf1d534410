/*
 * test_tool_stats.c -- latency percentiles of the load tools
 * (tools/common/tool_stats): nearest rank over small known sets, the empty
 * set, duplicates, unsorted input, the capacity cap at N-1/N/N+1, and the
 * monotonic clock.
 *
 * Nearest rank (the header's definition): the smallest sample such that at
 * least p% of the samples are <= it, i.e. the sample of rank ceil(p/100 * n).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/common/tool_stats.h"

#define MS 1000000ull /* ns per ms */

/* Fill st with 1..n ms in a scrambled order (a fixed permutation, n <= 10000). */
static void
fill_1_to_n_ms(struct tool_stats *st, size_t n)
{
	cr_assert_eq(tool_stats_init(st, n), 0);
	/* 7919 is prime and does not divide any n used here, so i*7919 mod n is a permutation */
	for (size_t i = 0; i < n; i++)
		tool_stats_add(st, ((i * 7919) % n + 1) * MS);
	cr_assert_eq(st->n, n);
}

static const uint64_t set_one[] = {3 * MS};
static const uint64_t set_ten[] = {7 * MS, 1 * MS, 10 * MS, 4 * MS, 2 * MS,
				   9 * MS, 3 * MS, 8 * MS,  6 * MS, 5 * MS};
static const uint64_t set_dups[] = {5 * MS, 5 * MS, 1 * MS, 5 * MS};
static const uint64_t set_frac[] = {1500000, 250000, 2750000};

struct pct_case {
	const char *label; /* what the row shows */
	const uint64_t *v; /* samples in ns (NULL: 1..gen ms, scrambled) */
	size_t n;	   /* samples in v, or gen */
	double p;	   /* percentile asked for */
	double want;	   /* expected result in ms */
};

#define SET(a) a, sizeof(a) / sizeof(a[0])

static const struct pct_case pct_cases[] = {
    {"empty set", NULL, 0, 50, 0.0},
    {"one sample, p50", SET(set_one), 50, 3.0},
    {"one sample, p0.001", SET(set_one), 0.001, 3.0},
    {"one sample, p100", SET(set_one), 100, 3.0},
    {"ten, p0.001 is the minimum", SET(set_ten), 0.001, 1.0},
    {"ten, p9.999", SET(set_ten), 9.999, 1.0},
    {"ten, p10", SET(set_ten), 10, 1.0},
    {"ten, p10.001", SET(set_ten), 10.001, 2.0},
    {"ten, p50", SET(set_ten), 50, 5.0},
    {"ten, p51", SET(set_ten), 51, 6.0},
    {"ten, p90", SET(set_ten), 90, 9.0},
    {"ten, p91", SET(set_ten), 91, 10.0},
    {"ten, p99", SET(set_ten), 99, 10.0},
    {"ten, p100 is the maximum", SET(set_ten), 100, 10.0},
    {"duplicates, p25", SET(set_dups), 25, 1.0},
    {"duplicates, p26", SET(set_dups), 26, 5.0},
    {"duplicates, p100", SET(set_dups), 100, 5.0},
    {"fractions of a ms, p34", SET(set_frac), 34, 1.5},
    {"fractions of a ms, p33", SET(set_frac), 33, 0.25},
    {"fractions of a ms, p100", SET(set_frac), 100, 2.75},
    {"1..100 ms, p1", NULL, 100, 1, 1.0},
    {"1..100 ms, p50", NULL, 100, 50, 50.0},
    {"1..100 ms, p90", NULL, 100, 90, 90.0},
    {"1..100 ms, p99", NULL, 100, 99, 99.0},
    {"1..100 ms, p99.5", NULL, 100, 99.5, 100.0},
    {"1..1000 ms, p99", NULL, 1000, 99, 990.0},
    {"1..1000 ms, p99.95", NULL, 1000, 99.95, 1000.0},
};

Test(tool_stats, nearest_rank_percentiles_of_small_known_sets)
{
	for (size_t i = 0; i < sizeof(pct_cases) / sizeof(pct_cases[0]); i++) {
		const struct pct_case *c = &pct_cases[i];
		struct tool_stats st;
		if (c->v == NULL) {
			fill_1_to_n_ms(&st, c->n);
		} else {
			cr_assert_eq(tool_stats_init(&st, c->n), 0);
			for (size_t j = 0; j < c->n; j++)
				tool_stats_add(&st, c->v[j]);
		}
		tool_stats_sort(&st);
		double got = tool_stats_pct(&st, c->p);
		cr_expect_float_eq(got, c->want, 1e-9, "%s: got %.9f ms, want %.9f", c->label, got,
				   c->want);
		tool_stats_fini(&st);
	}
}

/*
 * BUG (tools/common/tool_stats.c, tool_stats_pct; reported to the lead, not
 * fixed here): the rank is ceil(p / 100.0 * n) computed in binary floating
 * point, and p / 100.0 is inexact, so p / 100.0 * n can land just above an
 * integer and ceil adds one: p7 of 1..100 ms gives 8 ms (7/100.0*100 =
 * 7.000000000000001), p99.9 of 1..1000 ms gives 1000 ms, not 999 (99.9/100.0
 * * 1000 = 999.0000000000001). The tools only ask for p50 and p99 today,
 * which happen to be exact, but the header promises nearest rank for any
 * 0 < p <= 100. These rows assert the correct nearest rank.
 */
static const struct pct_case pct_float_cases[] = {
    {"1..100 ms, p7", NULL, 100, 7, 7.0},
    {"1..100 ms, p14", NULL, 100, 14, 14.0},
    {"1..100 ms, p28", NULL, 100, 28, 28.0},
    {"1..100 ms, p55", NULL, 100, 55, 55.0},
    {"1..1000 ms, p99.9", NULL, 1000, 99.9, 999.0},
    {"1..10000 ms, p99.9", NULL, 10000, 99.9, 9990.0},
};

Test(tool_stats, bug_nearest_rank_off_by_one_when_p_over_100_is_inexact)
{
	for (size_t i = 0; i < sizeof(pct_float_cases) / sizeof(pct_float_cases[0]); i++) {
		const struct pct_case *c = &pct_float_cases[i];
		struct tool_stats st;
		fill_1_to_n_ms(&st, c->n);
		tool_stats_sort(&st);
		double got = tool_stats_pct(&st, c->p);
		cr_expect_float_eq(got, c->want, 1e-9, "%s: got %.9f ms, want %.9f", c->label, got,
				   c->want);
		tool_stats_fini(&st);
	}
}

Test(tool_stats, sort_orders_the_samples)
{
	struct tool_stats st;
	cr_assert_eq(tool_stats_init(&st, 10), 0);
	for (size_t j = 0; j < 10; j++)
		tool_stats_add(&st, set_ten[j]);
	tool_stats_sort(&st);
	for (size_t j = 0; j < 10; j++)
		cr_expect_eq(st.lat[j], (j + 1) * MS, "lat[%zu]", j);
	tool_stats_fini(&st);
	cr_expect_null(st.lat);
	cr_expect_eq(st.n, 0);
	cr_expect_eq(st.cap, 0);
}

Test(tool_stats, samples_beyond_cap_are_dropped_at_n_minus_1_n_and_n_plus_1)
{
	const size_t cap = 4;
	for (size_t adds = cap - 1; adds <= cap + 1; adds++) {
		struct tool_stats st;
		cr_assert_eq(tool_stats_init(&st, cap), 0);
		for (size_t j = 0; j < adds; j++)
			tool_stats_add(&st, (j + 1) * MS);
		size_t kept = adds < cap ? adds : cap;
		cr_expect_eq(st.n, kept, "%zu adds: n %zu", adds, st.n);
		tool_stats_sort(&st);
		cr_expect_float_eq(tool_stats_pct(&st, 100), (double)kept, 1e-9,
				   "%zu adds: max is the last kept sample", adds);
		tool_stats_fini(&st);
	}
}

Test(tool_stats, zero_capacity_keeps_nothing)
{
	struct tool_stats st;
	cr_assert_eq(tool_stats_init(&st, 0), 0);
	tool_stats_add(&st, 5 * MS);
	cr_expect_eq(st.n, 0);
	tool_stats_sort(&st);
	cr_expect_float_eq(tool_stats_pct(&st, 50), 0.0, 1e-12);
	tool_stats_fini(&st);
}

Test(tool_stats, clock_is_monotonic)
{
	uint64_t a = tool_stats_now_ns();
	for (int i = 0; i < 1000; i++) {
		uint64_t b = tool_stats_now_ns();
		cr_assert_geq(b, a, "clock went back: %llu after %llu", (unsigned long long)b,
			      (unsigned long long)a);
		a = b;
	}
	cr_expect_gt(a, 0);
}
