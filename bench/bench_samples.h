/*
 * bench_samples.h -- the sample addresses of the zone table benchmarks
 * (bench_route.c, route_ab.c): the list `tools/gen-zones.py --samples` writes,
 * `hit<TAB>ADDRESS` / `miss<TAB>ADDRESS` per line, and the address streams the
 * lookups read.
 */
#ifndef SLUICE_BENCH_SAMPLES_H
#define SLUICE_BENCH_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_ADDR_MAX 512u /* longest sample address kept */
#define BENCH_WIDE     64u  /* addresses per zone_lookup_batch() call in the wide batches */

struct sample {
	const char *addr; /* into the buffer bench_samples_parse() read */
	size_t len;	  /* bytes */
	bool hit;	  /* the generator's label */
};

/*
 * The addresses of one distribution in the order they are looked up, their bytes one
 * after another in one buffer (addr[i] points into it), as a shard finds the RCPT
 * lines of its sessions in its input buffers: the benchmark reads them in a stream,
 * so what it measures is the lookup, not a cache miss on the harness's own sample
 * records (the Zipf order over 200,000 scattered samples cost one per lookup).
 */
struct stream {
	const char **addr; /* n pointers into bytes */
	size_t *len;	   /* n lengths */
	char *bytes;	   /* owned: the addresses back to back */
	size_t n;	   /* entries, a multiple of BENCH_WIDE */
};

/* The whole file at path, NUL-terminated (its length in *lenp); NULL with a message on
 * stderr. The caller frees it. */
char *bench_slurp(const char *path, size_t *lenp);

/* Parse `hit\tADDR` / `miss\tADDR` lines in place (NUL-terminates each address). */
/* The samples, malloc'ed ('*np' of them), or NULL on ENOMEM. */
struct sample *bench_samples_parse(char *buf, size_t len, size_t *np);

/* The stream of samples s[order[k]] for k < norder (order NULL: s[0..ns) in turn),
 * cut to a multiple of BENCH_WIDE entries; false on ENOMEM. */
bool bench_stream_build(struct stream *st, const struct sample *s, size_t ns, const uint32_t *order,
			size_t norder);

/* Free what bench_stream_build() allocated. */
void bench_stream_free(struct stream *st);

#endif /* SLUICE_BENCH_SAMPLES_H */
