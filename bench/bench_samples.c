/*
 * bench_samples.c -- see bench_samples.h.
 */
#include "bench/bench_samples.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
bench_slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 1u << 20;
			char *nb = realloc(buf, cap + 1);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

struct sample *
bench_samples_parse(char *buf, size_t len, size_t *np)
{
	size_t n = 0, cap = 1024;
	struct sample *s = malloc(cap * sizeof(*s));
	char *p = buf, *end = buf + len;
	while (s != NULL && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl ? nl : end;
		char *tab = memchr(p, '\t', (size_t)(eol - p));
		if (tab != NULL && eol - tab - 1 > 0 && (size_t)(eol - tab - 1) < BENCH_ADDR_MAX) {
			if (n == cap) {
				cap *= 2;
				struct sample *ns = realloc(s, cap * sizeof(*s));
				if (ns == NULL) {
					free(s);
					return NULL;
				}
				s = ns;
			}
			*eol = '\0';
			s[n].addr = tab + 1;
			s[n].len = (size_t)(eol - tab - 1);
			s[n].hit = strncmp(p, "hit", 3) == 0;
			n++;
		}
		p = eol + 1;
	}
	*np = n;
	return s;
}

bool
bench_stream_build(struct stream *st, const struct sample *s, size_t ns, const uint32_t *order,
		   size_t norder)
{
	size_t n = (order != NULL ? norder : ns) / BENCH_WIDE * BENCH_WIDE, bytes = 0, off = 0;

	for (size_t k = 0; k < n; k++)
		bytes += s[order != NULL ? order[k] : k].len;
	st->addr = malloc(n * sizeof(*st->addr));
	st->len = malloc(n * sizeof(*st->len));
	st->bytes = malloc(bytes + 1);
	st->n = n;
	if (st->addr == NULL || st->len == NULL || st->bytes == NULL)
		return false;
	for (size_t k = 0; k < n; k++) {
		const struct sample *e = &s[order != NULL ? order[k] : k];

		memcpy(st->bytes + off, e->addr, e->len);
		st->addr[k] = st->bytes + off;
		st->len[k] = e->len;
		off += e->len;
	}
	return true;
}

void
bench_stream_free(struct stream *st)
{
	free(st->addr);
	free(st->len);
	free(st->bytes);
}
