/*
 * bench_memlat.c -- what one dependent random memory read costs on this machine,
 * by the size of the region read: the floor under a zone lookup that misses the
 * caches (bench_route), which waits for two to four such reads one after another.
 *
 *   bench_memlat [MIB ...]     (default: 1 8 64 1024)
 *
 * For each size, a region of that many MiB is allocated on 2 MiB boundaries with
 * MADV_HUGEPAGE (as route/ allocates its tables), its 64-byte lines linked into one
 * random cycle, and the cycle followed for 5,000,000 steps: each read's address comes
 * from the read before, so nothing overlaps and the time per step is the latency of a
 * read that misses whatever caches and TLB entries that size outgrows. Prints
 *   memlat: mib=... ns_per_read=...
 * Built by `make build/bench/bench_memlat` (release build); context for the zone
 * table figures, no target.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench/bench_clock.h"

#define MEMLAT_LINE  64u
#define MEMLAT_HUGE  ((size_t)2 << 20)
#define MEMLAT_STEPS 5000000u
#define MEMLAT_MAX   65536ul /* MiB */

static uint64_t
xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* ns per dependent read over a region of mib MiB; negative on ENOMEM. */
static double
memlat(size_t mib)
{
	size_t bytes = mib << 20, n = bytes / MEMLAT_LINE;
	char *map = mmap(NULL, bytes + MEMLAT_HUGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *order = malloc(n * sizeof(*order));
	uint64_t x = 0x2545f4914f6cdd1dull;
	char *base, *p;
	double t0, t1;

	if (map == MAP_FAILED || order == NULL) {
		free(order);
		if (map != MAP_FAILED)
			munmap(map, bytes + MEMLAT_HUGE);
		return -1;
	}
	base = (char *)(((uintptr_t)map + MEMLAT_HUGE - 1) & ~(uintptr_t)(MEMLAT_HUGE - 1));
	madvise(base, bytes, MADV_HUGEPAGE); /* advice only */
	/* a random cycle through every line: Fisher-Yates over the line order */
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(xorshift(&x) % (i + 1));
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < n; i++) {
		char *next = base + (size_t)order[(i + 1) % n] * MEMLAT_LINE;

		memcpy(base + (size_t)order[i] * MEMLAT_LINE, &next, sizeof(next));
	}
	p = base + (size_t)order[0] * MEMLAT_LINE;
	t0 = bench_now_ns();
	for (unsigned k = 0; k < MEMLAT_STEPS; k++)
		memcpy(&p, p, sizeof(p));
	t1 = bench_now_ns();
	/* p is used, so the chase cannot be dropped */
	if (p == NULL)
		fprintf(stderr, "bench_memlat: broken cycle\n");
	free(order);
	munmap(map, bytes + MEMLAT_HUGE);
	return (t1 - t0) / MEMLAT_STEPS;
}

int
main(int argc, char **argv)
{
	static const size_t defaults[] = {1, 8, 64, 1024};
	size_t n = argc > 1 ? (size_t)argc - 1 : sizeof(defaults) / sizeof(defaults[0]);

	for (size_t i = 0; i < n; i++) {
		size_t mib = argc > 1 ? strtoul(argv[i + 1], NULL, 10) : defaults[i];
		double ns;

		if (mib == 0 || mib > MEMLAT_MAX) {
			fprintf(stderr, "usage: bench_memlat [MIB ...] (1 to %lu)\n", MEMLAT_MAX);
			return 2;
		}
		ns = memlat(mib);
		if (ns < 0) {
			fprintf(stderr, "bench_memlat: %zu MiB: out of memory\n", mib);
			return 1;
		}
		printf("memlat: mib=%zu ns_per_read=%.1f\n", mib, ns);
		fflush(stdout);
	}
	return 0;
}
