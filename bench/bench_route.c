/*
 * bench_route.c -- zone table benchmark (issue 4): load time, resident memory and
 * lookups per second on one thread.
 *
 *   bench_route ZONEFILE [SAMPLES] [--lookups N]
 *
 * ZONEFILE is loaded with zone_table_load(); the wall time of that call and the growth
 * of VmRSS (/proc/self/status) across it are printed. SAMPLES is the list written by
 * `tools/gen-zones.py --samples FILE` (`hit<TAB>ADDRESS` / `miss<TAB>ADDRESS` lines,
 * shuffled); without it, addresses are made up here with the generator's naming scheme
 * (zone i is z<i>-<word>.<tld>, its first local parts alice, bob, ...) for the zone
 * count the table reports. Then, on the calling thread, each address distribution runs
 * N lookups (default 20,000,000, at most 1,000,000,000) after one warm-up pass, first
 * with zone_lookup() (one struct zone_decision reused), then with zone_lookup_batch()
 * (16 addresses a call, 16 decisions), then with zone_lookup_batch() on 64 addresses a
 * call (64 decisions: as many as it keeps lookups in flight):
 *   uniform  every sample in the file's shuffled order: each sample is a different
 *            zone, so this is random zones across the table, nearly every table access
 *            a cache miss -- the worst case, and the headline;
 *   zipf     sample rank r drawn with probability proportional to 1/(r+1) (Zipf,
 *            s = 1.0, deterministic xorshift stream, 4M precomputed draws cycled): a
 *            few hot domains take most lookups, as at a real MX (with 200,000 samples
 *            the top 1,024 take ~58%);
 *   hot      the first 1,024 samples round-robin: the table entries stay in cache, so
 *            this is the CPU cost of the lookup code itself.
 * Each distribution is laid out first as a stream: the addresses' bytes back to back in
 * lookup order (struct stream), read in turn as a shard reads RCPT lines from its input
 * buffers.
 *
 * Output, one parseable line per figure (bench/run.sh reads them):
 *   route: load_ms=... rss_mib=... zones=... rules=...
 *   route: lookups_per_s=... lookups=... hits=... misses=... samples=... ns_per_lookup=...
 *   route: zipf_lookups_per_s=... (same fields, zipf_samples=...)
 *   route: hot_lookups_per_s=... (same fields, hot_samples=...)
 *   route: batch_lookups_per_s=... / batch_zipf_lookups_per_s=... / batch_hot_lookups_per_s=...
 *   route: batch64_uniform_per_s=... / batch64_zipf_per_s=... / batch64_hot_per_s=...
 * hits/misses count what zone_lookup decided (miss = ZONE_REFUSE) over the timed
 * lookups; the sample labels are only what the generator expected.
 * Built by `make bench` as build/bench/bench_route (release build).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_clock.h"
#include "bench/bench_samples.h"
#include "route/zone.h"

#define BENCH_LOOKUPS_DEFAULT 20000000ull
#define BENCH_LOOKUPS_MAX     1000000000ull
#define BENCH_GEN_SAMPLES     200000u	 /* in-process samples when no SAMPLES file */
#define BENCH_HOT	      1024u	 /* addresses in the hot-set run */
#define BENCH_ZIPF_SEQ	      (1u << 22) /* precomputed Zipf draws, cycled */
#define BENCH_BATCH	      16u	 /* addresses per zone_lookup_batch() call */

/* VmRSS of this process in KiB, or 0 if /proc is unreadable. */
static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = 0;
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

/* xorshift64: the deterministic generator of the in-process samples and the Zipf draw */
static uint64_t
xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* In-process samples with the generator's scheme (see tools/gen-zones.py). */
static const char *const gen_words[] = {
    "acme",   "north", "blue",	 "river",   "alpha",  "pixel",	"cedar",   "nova",
    "orbit",  "delta", "maple",	 "quartz",  "summit", "harbor", "lumen",   "vertex",
    "willow", "ember", "falcon", "granite", "meadow", "onyx",	"prairie", "tundra",
};
static const char *const gen_tlds[] = {"com", "net",   "org",  "io",	 "de",
				       "fr",  "co.uk", "test", "example"};

static struct sample *
samples_generate(size_t nzones, char **bufp, size_t *np)
{
	size_t n = BENCH_GEN_SAMPLES;
	char *buf = malloc(n * 64);
	struct sample *s = malloc(n * sizeof(*s));
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t off = 0;
	if (buf == NULL || s == NULL || nzones == 0) {
		free(buf);
		free(s);
		return NULL;
	}
	for (size_t k = 0; k < n; k++) {
		size_t i = (size_t)(xorshift(&x) % nzones);
		char *a = buf + off;
		int len;
		if (k % 2 == 0) /* alice or bob exist in most zones (else a catch-all) */
			len = snprintf(a, 64, "%s@z%zu-%s.%s", k % 4 ? "bob" : "alice", i,
				       gen_words[i % 24], gen_tlds[(i / 7) % 9]);
		else
			len = snprintf(a, 64, "alice@unserved%zu.invalid", i);
		s[k].addr = a;
		s[k].len = (size_t)len;
		s[k].hit = k % 2 == 0;
		off += 64;
	}
	*bufp = buf;
	*np = n;
	return s;
}

/*
 * The Zipf (s = 1.0) lookup order: BENCH_ZIPF_SEQ indices into the n samples, index r
 * drawn with probability (1/(r+1)) / H(n), by inverse CDF on a fixed xorshift stream
 * (the same sequence every run). The samples are shuffled and each names a different
 * zone, so the popular ranks are random zones, as the few hot domains of a real MX
 * would be. Precomputed so the timed loop reads a sequential array, not an RNG.
 */
static uint32_t *
zipf_sequence(size_t n, size_t *np)
{
	double *cdf = malloc(n * sizeof(*cdf));
	uint32_t *seq = malloc(BENCH_ZIPF_SEQ * sizeof(*seq));
	uint64_t x = 0x2545f4914f6cdd1dull;
	double sum = 0;
	if (cdf == NULL || seq == NULL) {
		free(cdf);
		free(seq);
		return NULL;
	}
	for (size_t r = 0; r < n; r++) {
		sum += 1.0 / (double)(r + 1);
		cdf[r] = sum;
	}
	for (size_t k = 0; k < BENCH_ZIPF_SEQ; k++) {
		double u = (double)(xorshift(&x) >> 11) / 9007199254740992.0 * sum;
		size_t lo = 0, hi = n - 1;
		while (lo < hi) { /* first r with cdf[r] > u */
			size_t mid = lo + (hi - lo) / 2;
			if (cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		seq[k] = (uint32_t)lo;
	}
	free(cdf);
	*np = BENCH_ZIPF_SEQ;
	return seq;
}

/*
 * N timed lookups over the stream, round-robin, after one warm-up pass. batch 0 calls
 * zone_lookup() once per address; batch B > 0 calls zone_lookup_batch() on B addresses
 * at a time (into B decisions, d[0..B); B divides the stream's length). Prints
 * "route: NAME=... lookups=... hits=... misses=... COUNT=... ns_per_lookup=...".
 */
static void
run(const char *name, const char *count, size_t ns, const struct zone_table *t,
    const struct stream *st, unsigned long long nlookups, unsigned batch,
    struct zone_decision *const d[], unsigned long long *sink)
{
	unsigned long long hits = 0;
	size_t k = 0;

	for (size_t i = 0; i < st->n; i++)
		zone_lookup(t, st->addr[i], st->len[i], d[0]);
	double l0 = bench_now_ns() / 1e9;
	if (batch == 0) {
		for (unsigned long long n = 0; n < nlookups; n++) {
			zone_lookup(t, st->addr[k], st->len[k], d[0]);
			hits += d[0]->action != ZONE_REFUSE;
			*sink += d[0]->ngroups;
			if (++k == st->n)
				k = 0;
		}
	} else {
		for (unsigned long long n = 0; n < nlookups; n += batch) {
			zone_lookup_batch(t, st->addr + k, st->len + k, batch, d);
			for (unsigned b = 0; b < batch; b++) {
				hits += d[b]->action != ZONE_REFUSE;
				*sink += d[b]->ngroups;
			}
			k += batch;
			if (k == st->n)
				k = 0;
		}
		nlookups = (nlookups + batch - 1) / batch * batch;
	}
	double secs = bench_now_ns() / 1e9 - l0;
	printf("route: %s=%.0f lookups=%llu hits=%llu misses=%llu %s=%zu ns_per_lookup=%.1f\n",
	       name, secs > 0 ? (double)nlookups / secs : 0.0, nlookups, hits, nlookups - hits,
	       count, ns, secs * 1e9 / (double)nlookups);
	fflush(stdout);
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_route ZONEFILE [SAMPLES] [--lookups N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *zpath = NULL, *spath = NULL;
	unsigned long long nlookups = BENCH_LOOKUPS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc) {
			nlookups = strtoull(argv[++i], NULL, 10);
			if (nlookups == 0 || nlookups > BENCH_LOOKUPS_MAX)
				usage();
		} else if (argv[i][0] == '-') {
			usage();
		} else if (zpath == NULL) {
			zpath = argv[i];
		} else if (spath == NULL) {
			spath = argv[i];
		} else {
			usage();
		}
	}
	if (zpath == NULL)
		usage();

	/* (a) load */
	struct zone_table *t = NULL;
	char err[512] = "";
	long rss0 = rss_kib();
	double t0 = bench_now_ns() / 1e9;
	int rc = zone_table_load(zpath, &t, err, sizeof(err));
	double t1 = bench_now_ns() / 1e9;
	long rss1 = rss_kib();
	if (rc < 0 || t == NULL) {
		fprintf(stderr, "bench_route: load failed (%d): %s\n", rc, err);
		return 1;
	}
	printf("route: load_ms=%.0f rss_mib=%.1f zones=%zu rules=%zu\n", (t1 - t0) * 1e3,
	       (double)(rss1 - rss0) / 1024.0, zone_table_nzones(t), zone_table_nrules(t));
	fflush(stdout);

	/* (b) lookups */
	char *sbuf = NULL;
	size_t slen = 0, ns = 0;
	struct sample *s;
	if (spath != NULL) {
		sbuf = bench_slurp(spath, &slen);
		if (sbuf == NULL)
			return 1;
		s = bench_samples_parse(sbuf, slen, &ns);
	} else {
		s = samples_generate(zone_table_nzones(t), &sbuf, &ns);
	}
	if (s == NULL || ns < BENCH_WIDE) {
		fprintf(stderr, "bench_route: fewer than %u sample addresses\n", BENCH_WIDE);
		return 1;
	}
	struct zone_decision *dv = calloc(BENCH_WIDE, sizeof(*dv)), *d[BENCH_WIDE];
	if (dv == NULL)
		return 1;
	for (unsigned b = 0; b < BENCH_WIDE; b++)
		d[b] = &dv[b];

	size_t expect_hits = 0, agree = 0;
	for (size_t k = 0; k < ns; k++) { /* warm-up pass; also checks the labels */
		zone_lookup(t, s[k].addr, s[k].len, d[0]);
		bool hit = d[0]->action != ZONE_REFUSE;
		expect_hits += s[k].hit;
		agree += hit == s[k].hit;
	}

	unsigned long long sink = 0;
	size_t nz = 0, nhot = ns < BENCH_HOT ? ns : BENCH_HOT;
	/* Zipf, s = 1.0: sample rank r (the shuffled order) drawn with weight 1/(r+1) */
	uint32_t *zipf = zipf_sequence(ns, &nz);
	if (zipf == NULL)
		return 1;
	/* single lookups, then batches of 16, then wide batches of 64: the figure names
	 * (bench/run.sh greps them, so no name holds another one) */
	static const struct {
		unsigned batch;
		const char *uniform, *zipf, *hot;
	} modes[] = {
	    {0, "lookups_per_s", "zipf_lookups_per_s", "hot_lookups_per_s"},
	    {BENCH_BATCH, "batch_lookups_per_s", "batch_zipf_lookups_per_s",
	     "batch_hot_lookups_per_s"},
	    {BENCH_WIDE, "batch64_uniform_per_s", "batch64_zipf_per_s", "batch64_hot_per_s"},
	};
	/* uniform: every sample in shuffled order, random zones across the table; hot
	 * set: the first 1,024 samples round-robin, table entries in cache */
	struct stream uniform, zipfs, hot;
	if (!bench_stream_build(&uniform, s, ns, NULL, 0) ||
	    !bench_stream_build(&zipfs, s, ns, zipf, nz) ||
	    !bench_stream_build(&hot, s, nhot, NULL, 0)) {
		fprintf(stderr, "bench_route: out of memory for the address streams\n");
		return 1;
	}
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		unsigned batch = modes[m].batch;
		run(modes[m].uniform, "samples", ns, t, &uniform, nlookups, batch, d, &sink);
		run(modes[m].zipf, "zipf_samples", ns, t, &zipfs, nlookups, batch, d, &sink);
		run(modes[m].hot, "hot_samples", nhot, t, &hot, nlookups, batch, d, &sink);
	}
	bench_stream_free(&uniform);
	bench_stream_free(&zipfs);
	bench_stream_free(&hot);
	fprintf(stderr,
		"bench_route: %zu samples (%zu labelled hit), %zu decided as labelled; "
		"sizeof(struct zone_decision)=%zu; groups seen %llu\n",
		ns, expect_hits, agree, sizeof(struct zone_decision), sink);

	free(zipf);
	free(dv);
	free(s);
	free(sbuf);
	zone_table_free(t);
	return 0;
}
