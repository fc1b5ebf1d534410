/*
 * ipcount.c -- see ipcount.h.
 */
#include "core/ipcount.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/check.h"

int
ipcount_init(struct ipcount *t, uint32_t max_keys)
{
	uint32_t cap = 16;

	while (cap < 2 * (uint64_t)max_keys)
		cap <<= 1;
	t->tab = calloc(cap, sizeof(*t->tab));
	if (t->tab == NULL)
		return -ENOMEM;
	t->mask = cap - 1;
	return 0;
}

void
ipcount_fini(struct ipcount *t)
{
	free(t->tab);
	t->tab = NULL;
}

static void
ipcount_key(const struct sockaddr_storage *sa, uint8_t key[16])
{
	if (sa->ss_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static uint32_t
ipcount_find(const struct ipcount *t, const uint8_t key[16])
{
	uint32_t i = (uint32_t)XXH3_64bits(key, 16) & t->mask;

	while (t->tab[i].count != 0 && memcmp(t->tab[i].addr, key, 16) != 0)
		i = (i + 1) & t->mask;
	return i;
}

bool
ipcount_add(struct ipcount *t, const struct sockaddr_storage *sa, uint32_t limit)
{
	uint8_t key[16];
	uint32_t i;

	ipcount_key(sa, key);
	i = ipcount_find(t, key);
	if (t->tab[i].count == 0)
		memcpy(t->tab[i].addr, key, 16);
	else if (limit != 0 && t->tab[i].count >= limit)
		return false;
	t->tab[i].count++;
	return true;
}

void
ipcount_del(struct ipcount *t, const struct sockaddr_storage *sa)
{
	uint8_t key[16];
	uint32_t i, j;

	ipcount_key(sa, key);
	i = ipcount_find(t, key);
	BUG_ON(t->tab[i].count == 0);
	if (--t->tab[i].count != 0)
		return;
	/* backward-shift deletion: move later members of the run into the hole */
	j = i;
	for (;;) {
		uint32_t home;

		j = (j + 1) & t->mask;
		if (t->tab[j].count == 0)
			break;
		home = (uint32_t)XXH3_64bits(t->tab[j].addr, 16) & t->mask;
		/* j may move to i only if its home is not in (i, j] (cyclically) */
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->tab[i] = t->tab[j];
			t->tab[j].count = 0;
			i = j;
		}
	}
}
