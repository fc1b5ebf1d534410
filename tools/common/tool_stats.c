/*
 * tool_stats.c -- see tool_stats.h.
 */
#include "tools/common/tool_stats.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

uint64_t
tool_stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int
tool_stats_init(struct tool_stats *st, size_t cap)
{
	st->n = 0;
	st->cap = cap;
	st->lat = calloc(cap ? cap : 1, sizeof(*st->lat));
	return st->lat == NULL ? -ENOMEM : 0;
}

void
tool_stats_fini(struct tool_stats *st)
{
	free(st->lat);
	st->lat = NULL;
	st->n = st->cap = 0;
}

void
tool_stats_add(struct tool_stats *st, uint64_t ns)
{
	if (st->n < st->cap)
		st->lat[st->n++] = ns;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void
tool_stats_sort(struct tool_stats *st)
{
	qsort(st->lat, st->n, sizeof(*st->lat), cmp_u64);
}

double
tool_stats_pct(const struct tool_stats *st, double p)
{
	double x;
	size_t rank;

	if (st->n == 0)
		return 0.0;
	/*
	 * nearest rank: the smallest sample with at least p% of samples <= it
	 * (no libm). p / 100 is inexact in binary (7 / 100 * 100 > 7), so the
	 * product is taken first and a rounding error below 1e-9 of a rank is
	 * not counted as a fraction: test bug_nearest_rank_off_by_one...
	 */
	x = p * (double)st->n / 100.0;
	rank = (size_t)x;
	if ((double)rank + 1e-9 < x)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > st->n)
		rank = st->n;
	return (double)st->lat[rank - 1] / 1e6;
}
