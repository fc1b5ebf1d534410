/*
 * bench_clock.h -- the one clock of the benchmarks in bench/: CLOCK_MONOTONIC,
 * as nanoseconds in a double (exact to the nanosecond for 104 days of uptime).
 */
#ifndef SLUICE_BENCH_CLOCK_H
#define SLUICE_BENCH_CLOCK_H

#include <time.h>

static inline double
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#endif /* SLUICE_BENCH_CLOCK_H */
