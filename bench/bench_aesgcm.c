/*
 * bench_aesgcm.c -- core/aesgcm against wolfSSL's AES-GCM, in one run.
 *
 *   build/bench/bench_aesgcm [RUNS]
 *
 * Seals and opens TLS-sized records (16 KiB, the maximum record, and 4 KiB)
 * with a 13-byte AAD (TLS 1.2's; TLS 1.3 uses 5), for AES-128 and AES-256,
 * through aesgcm_seal()/aesgcm_open() and through wc_AesGcmEncrypt()/
 * wc_AesGcmDecrypt() with INVALID_DEVID (wolfSSL's own AES-NI/AVX2 code).
 * Within a run the two take turns every BENCH_BATCH bytes, so a noisy
 * neighbour or a clock change hits both alike. Each figure is the median of
 * RUNS runs (default 7) of BENCH_BYTES per implementation, in MB/s
 * (10^6 bytes); the ratio column is the median of the runs' ratios, ours
 * over wolfSSL's. Records are opened from another buffer, so every
 * iteration opens the same valid record. Key setup (expansion and
 * H^1..H^32 for us, the schedule and H for wolfSSL) is timed too, for
 * callers that set keys per connection. `make bench` builds it (release) and
 * bench/run.sh runs it after the parser microbenchmark.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

#include "bench/bench_clock.h"
#include "core/aesgcm.h"

#define BENCH_RUNS_DEFAULT 7
#define BENCH_RUNS_MAX	   101
#define BENCH_BYTES	   (64u << 20)	/* processed per run and implementation */
#define BENCH_BATCH	   (256u << 10) /* bytes per turn when alternating */
#define BENCH_AAD	   13
#define BENCH_KEY_ITERS	   200000 /* key setups per run */

enum impl { OURS, WOLF };
enum op { SEAL, OPEN };

struct rig {
	struct aesgcm_key k; /* ours */
	Aes aes;	     /* wolfSSL's; set up with INVALID_DEVID */
	uint8_t key[32], iv[AESGCM_IV_LEN], aad[BENCH_AAD];
	uint8_t tag[2][16];	 /* a valid tag of rec for each implementation */
	uint8_t *pt, *rec, *out; /* size bytes each; rec = seal(pt) */
	size_t size;		 /* record size in bytes */
};

static volatile unsigned sink; /* keeps results observable */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* count records through impl and op; returns the nanoseconds taken. */
static double
records(struct rig *g, enum impl impl, enum op op, size_t first, size_t count)
{
	double t0 = bench_now_ns();

	for (size_t i = first; i < first + count; i++) {
		uint8_t tag[16];
		int rc = 0;

		/* sealing: a fresh nonce per record, as TLS does; opening: rec's */
		g->iv[11] = op == SEAL ? (uint8_t)i : 0;
		if (impl == OURS && op == SEAL)
			aesgcm_seal(&g->k, g->iv, g->aad, BENCH_AAD, g->pt, g->size, g->out, tag,
				    16);
		else if (impl == OURS)
			rc = aesgcm_open(&g->k, g->iv, g->aad, BENCH_AAD, g->rec, g->size, g->out,
					 g->tag[OURS], 16);
		else if (op == SEAL)
			rc = wc_AesGcmEncrypt(&g->aes, g->out, g->pt, (word32)g->size, g->iv,
					      AESGCM_IV_LEN, tag, 16, g->aad, BENCH_AAD);
		else
			rc = wc_AesGcmDecrypt(&g->aes, g->out, g->rec, (word32)g->size, g->iv,
					      AESGCM_IV_LEN, g->tag[WOLF], 16, g->aad, BENCH_AAD);
		if (rc != 0) {
			fprintf(stderr, "bench_aesgcm: %s %s failed: %d\n",
				impl == OURS ? "aesgcm" : "wolfSSL", op == SEAL ? "seal" : "open",
				rc);
			exit(1);
		}
		sink += g->out[g->size - 1];
	}
	return bench_now_ns() - t0;
}

/*
 * One run: BENCH_BYTES through each implementation, alternating every
 * BENCH_BATCH bytes, so that both see the same machine (this runs on shared
 * VMs, where a busy neighbour can halve either figure for a while). Stores
 * MB/s in mbs[OURS] (when ours) and mbs[WOLF].
 */
static void
run_once(struct rig *g, enum op op, bool ours, double mbs[2])
{
	size_t batch = BENCH_BATCH / g->size, iters = BENCH_BYTES / g->size;
	double ns[2] = {0, 0};

	for (size_t i = 0; i < iters; i += batch) {
		ns[WOLF] += records(g, WOLF, op, i, batch);
		if (ours)
			ns[OURS] += records(g, OURS, op, i, batch);
	}
	for (int impl = OURS; impl <= WOLF; impl++)
		mbs[impl] = ns[impl] > 0 ? (double)(iters * g->size) / ns[impl] * 1e3 : 0;
}

static void
rig_init(struct rig *g, size_t keylen, size_t size)
{
	uint8_t tag[16];

	g->size = size;
	g->pt = malloc(size);
	g->rec = malloc(size);
	g->out = malloc(size);
	if (!g->pt || !g->rec || !g->out) {
		fprintf(stderr, "bench_aesgcm: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < size; i++)
		g->pt[i] = (uint8_t)(i * 131 + 7);
	for (size_t i = 0; i < sizeof(g->key); i++)
		g->key[i] = (uint8_t)(i * 29 + 1);
	memset(g->iv, 0x42, sizeof(g->iv));
	g->iv[11] = 0;
	memset(g->aad, 0x17, sizeof(g->aad));
	if (aesgcm_key_init(&g->k, g->key, keylen) != 0 ||
	    wc_AesInit(&g->aes, NULL, INVALID_DEVID) != 0 ||
	    wc_AesGcmSetKey(&g->aes, g->key, (word32)keylen) != 0 ||
	    wc_AesGcmEncrypt(&g->aes, g->rec, g->pt, (word32)size, g->iv, AESGCM_IV_LEN, tag, 16,
			     g->aad, BENCH_AAD) != 0) {
		fprintf(stderr, "bench_aesgcm: setup failed\n");
		exit(1);
	}
	memcpy(g->tag[OURS], tag, 16);
	memcpy(g->tag[WOLF], tag, 16);
}

static void
rig_fini(struct rig *g)
{
	aesgcm_key_fini(&g->k);
	wc_AesFree(&g->aes);
	free(g->pt);
	g->pt = NULL;
	free(g->rec);
	g->rec = NULL;
	free(g->out);
	g->out = NULL;
}

static void
bench_records(size_t keylen, size_t size, int runs, bool ours)
{
	static const char *const opname[] = {"seal", "open"};
	static struct rig g; /* static: struct Aes is large */
	double v[2][2][BENCH_RUNS_MAX], ratio[BENCH_RUNS_MAX];

	rig_init(&g, keylen, size);
	for (int op = SEAL; op <= OPEN; op++) {
		double mbs[2];

		run_once(&g, (enum op)op, ours, mbs); /* warm-up: caches, clocks */
		for (int r = 0; r < runs; r++) {
			run_once(&g, (enum op)op, ours, mbs);
			v[OURS][op][r] = mbs[OURS];
			v[WOLF][op][r] = mbs[WOLF];
			ratio[r] = mbs[OURS] / mbs[WOLF];
		}
		double w = median(v[WOLF][op], runs);
		if (ours) {
			double o = median(v[OURS][op], runs);
			printf("AES-%zu %5zu %s %10.0f %12.0f %7.2fx\n", keylen * 8, size,
			       opname[op], o, w, median(ratio, runs));
		} else {
			printf("AES-%zu %5zu %s %10s %12.0f\n", keylen * 8, size, opname[op], "-",
			       w);
		}
	}
	rig_fini(&g);
}

/* Nanoseconds per key setup, ours and wolfSSL's (wc_AesGcmSetKey: the schedule and H). */
static void
bench_key_setup(size_t keylen, int runs, bool ours)
{
	static Aes aes;
	uint8_t key[32] = {1, 2, 3};
	double v[2][BENCH_RUNS_MAX];
	struct aesgcm_key k;

	if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
		exit(1);
	for (int r = 0; r < runs; r++) {
		double t0 = bench_now_ns();

		for (int i = 0; i < BENCH_KEY_ITERS; i++) {
			key[0] = (uint8_t)i;
			sink += (unsigned)wc_AesGcmSetKey(&aes, key, (word32)keylen);
		}
		v[WOLF][r] = (bench_now_ns() - t0) / BENCH_KEY_ITERS;
		if (!ours)
			continue;
		t0 = bench_now_ns();
		for (int i = 0; i < BENCH_KEY_ITERS; i++) {
			key[0] = (uint8_t)i;
			sink += (unsigned)aesgcm_key_init(&k, key, keylen);
		}
		v[OURS][r] = (bench_now_ns() - t0) / BENCH_KEY_ITERS;
	}
	printf("AES-%zu key setup ns: aesgcm %.0f, wolfSSL %.0f\n", keylen * 8,
	       ours ? median(v[OURS], runs) : 0.0, median(v[WOLF], runs));
	wc_AesFree(&aes);
}

int
main(int argc, char **argv)
{
	static const size_t keys[] = {16, 32}, sizes[] = {16384, 4096};
	int runs = argc > 1 ? atoi(argv[1]) : BENCH_RUNS_DEFAULT;
	bool ours = aesgcm_available();

	if (runs < 1 || runs > BENCH_RUNS_MAX) {
		fprintf(stderr, "usage: bench_aesgcm [RUNS]   (1..%d, default %d)\n",
			BENCH_RUNS_MAX, BENCH_RUNS_DEFAULT);
		return 2;
	}
	if (!ours)
		printf("aesgcm: this CPU lacks VAES/VPCLMULQDQ; wolfSSL figures only\n");
	printf("AES-GCM, AAD %d bytes, median of %d runs of %u MiB, MB/s (10^6 bytes/s)\n",
	       BENCH_AAD, runs, BENCH_BYTES >> 20);
	printf("key     size op       aesgcm      wolfSSL   ratio\n");
	for (size_t ki = 0; ki < 2; ki++)
		for (size_t si = 0; si < 2; si++)
			bench_records(keys[ki], sizes[si], runs, ours);
	for (size_t ki = 0; ki < 2; ki++)
		bench_key_setup(keys[ki], runs, ours);
	return 0;
}
