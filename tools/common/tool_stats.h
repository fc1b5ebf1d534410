/*
 * tool_stats.h -- clock and latency percentiles for the load tools.
 *
 * Latencies are recorded as nanoseconds into a caller-sized array (one slot
 * per message, allocated once at start-up) and sorted once at the end: exact
 * percentiles, no histogram bucketing error, O(n log n) once.
 */
#ifndef SLUICE_TOOLS_COMMON_TOOL_STATS_H
#define SLUICE_TOOLS_COMMON_TOOL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

struct tool_stats {
	uint64_t *lat; /* owned; latencies in ns, lat[0..n) */
	size_t n;      /* samples recorded */
	size_t cap;    /* capacity of lat; samples beyond it are dropped */
};

/* CLOCK_MONOTONIC now, in nanoseconds. */
uint64_t tool_stats_now_ns(void);

/* Allocate room for cap samples. Returns 0 or -ENOMEM. */
MUST_CHECK int tool_stats_init(struct tool_stats *st, size_t cap);

/* Free the samples. */
void tool_stats_fini(struct tool_stats *st);

/* Record one latency (ns); silently dropped when full. */
void tool_stats_add(struct tool_stats *st, uint64_t ns);

/*
 * Sort the samples (reorders st->lat) and return the nearest-rank p-th
 * percentile (0 < p <= 100) in milliseconds; 0.0 with no samples.
 * Call tool_stats_sort() once before a series of tool_stats_pct().
 */
void tool_stats_sort(struct tool_stats *st);
double tool_stats_pct(const struct tool_stats *st, double p);

#endif /* SLUICE_TOOLS_COMMON_TOOL_STATS_H */
