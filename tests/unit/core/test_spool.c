/*
 * test_spool.c -- core/spool: appends up to the reservation and no
 * further, recycling, spilling to unlinked files past the memory budget,
 * and chunk pool limits (core/chunk).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/chunk.h"
#include "core/spool.h"

Test(spool, append_stops_exactly_at_capacity)
{
	struct spool_pool sp;
	struct spool *s;
	static char block[4096];

	spool_pool_init(&sp, 8192, 1ull << 30, "/nonexistent");
	s = spool_get(&sp);
	cr_assert_not_null(s);
	cr_assert(spool_append(s, block, 4096));
	cr_assert(spool_append(s, block, 4095)); /* N-1 */
	cr_assert(spool_append(s, block, 1));	 /* N */
	cr_assert_not(spool_append(s, block, 1), "N+1 must not fit");
	cr_assert_eq(s->len, 8192);
	spool_put(&sp, s);
	cr_assert_eq(spool_get(&sp), s, "a recycled spool comes back first");
	cr_assert_eq(s->len, 0);
	spool_put(&sp, s);
	spool_pool_fini(&sp);
}

Test(spool, free_spools_stay_warm_up_to_the_budget_then_are_trimmed)
{
	struct spool_pool sp;
	struct spool *s[3];
	size_t big = SPOOL_WARM_BUDGET / 2;

	spool_pool_init(&sp, big, 4 * big, "/nonexistent");
	for (int i = 0; i < 3; i++) {
		s[i] = spool_get(&sp);
		cr_assert_not_null(s[i]);
		spool_commit(s[i], big); /* as a recv into the spool would */
	}
	spool_put(&sp, s[0]);
	spool_put(&sp, s[1]);
	cr_assert_eq(s[0]->touched, big, "within the budget a spool stays resident");
	cr_assert_eq(s[1]->touched, big);
	spool_put(&sp, s[2]);
	cr_assert_eq(s[2]->touched, SPOOL_KEEP_BYTES, "past the budget it is trimmed");
	cr_assert_eq(sp.warm, 2 * big + SPOOL_KEEP_BYTES);
	cr_assert_eq(spool_get(&sp), s[2]);
	cr_assert_eq(sp.warm, 2 * big);
	spool_put(&sp, s[2]);
	spool_pool_fini(&sp);
}

/* ---- spilling past the memory budget (issue 5) ---- */

#define MIB (1024 * 1024)

/* Where the spill tests put their files: $TMPDIR or /tmp. */
static const char *
spill_dir(void)
{
	const char *d = getenv("TMPDIR");

	return d != NULL && d[0] != '\0' ? d : "/tmp";
}

/* Skip when the test directory cannot hold O_TMPFILE files at all. */
static void
need_tmpfile(void)
{
	int fd = open(spill_dir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		cr_skip_test("O_TMPFILE unsupported in %s", spill_dir());
	if (fallocate(fd, 0, 0, 4096) != 0) {
		close(fd);
		cr_skip_test("fallocate unsupported in %s", spill_dir());
	}
	close(fd);
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Lines of /proc/self/maps naming a deleted file (our unlinked spools). */
static int
deleted_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "(deleted)") != NULL)
			n++;
	fclose(f);
	return n;
}

/* Fill a spool as the session does: a direct write + commit, then appends. */
static void
fill(struct spool *s, unsigned seed)
{
	char block[4096];
	size_t half = s->cap / 2;

	for (size_t i = 0; i < half; i++)
		s->base[i] = (char)(seed + i * 7);
	spool_commit(s, half);
	while (spool_room(s) > 0) {
		size_t n = spool_room(s) < sizeof(block) ? spool_room(s) : sizeof(block);

		for (size_t i = 0; i < n; i++)
			block[i] = (char)(seed + (s->len + i) * 7);
		cr_assert(spool_append(s, block, n));
	}
	cr_assert_eq(s->len, s->cap);
}

static bool
filled_with(const struct spool *s, unsigned seed)
{
	for (size_t i = 0; i < s->len; i++)
		if (s->base[i] != (char)(seed + i * 7))
			return false;
	return true;
}

Test(spool, spills_to_unlinked_files_past_the_budget)
{
	struct spool_pool sp;
	struct spool *s[6];
	int fds = open_fds(), maps = deleted_mappings();
	struct stat st;

	need_tmpfile();
	spool_pool_init(&sp, 1 * MIB, 3 * MIB, spill_dir());
	for (int i = 0; i < 6; i++) {
		s[i] = spool_get(&sp);
		cr_assert_not_null(s[i]);
		if (i < 3) {
			cr_assert_eq(s[i]->fd, -1, "spool %d fits the budget: anonymous", i);
		} else {
			cr_assert_geq(s[i]->fd, 0, "spool %d is past the budget: a file", i);
			cr_assert_eq(fstat(s[i]->fd, &st), 0);
			cr_assert_eq(st.st_nlink, 0, "the spool file is unlinked");
			cr_assert_geq((size_t)st.st_blocks * 512, 1 * MIB, "preallocated");
		}
		fill(s[i], (unsigned)i);
	}
	cr_assert_eq(sp.anon_out, 3);
	cr_assert_eq(sp.out, 6);
	cr_assert_eq(sp.spilled, 3);
	cr_assert_eq(sp.fallback, 0);
	cr_assert_eq(open_fds(), fds + 3);
	cr_assert_eq(deleted_mappings(), maps + 3);
	for (int i = 0; i < 6; i++)
		cr_assert(filled_with(s[i], (unsigned)i), "spool %d reads back", i);
	for (int i = 0; i < 6; i++)
		spool_put(&sp, s[i]);
	cr_assert_eq(sp.out, 0);
	cr_assert_eq(sp.anon_out, 0);
	spool_pool_fini(&sp);
	cr_assert_eq(open_fds(), fds, "no fd leaks");
	cr_assert_eq(deleted_mappings(), maps, "no mapping leaks");
}

Test(spool, a_spool_put_back_frees_budget_for_the_next_anonymous_one)
{
	struct spool_pool sp;
	struct spool *s[4], *t;

	need_tmpfile();
	spool_pool_init(&sp, 1 * MIB, 3 * MIB, spill_dir());
	for (int i = 0; i < 4; i++)
		s[i] = spool_get(&sp);
	cr_assert_geq(s[3]->fd, 0);
	cr_assert_eq(sp.spilled, 1);
	spool_put(&sp, s[1]);
	t = spool_get(&sp);
	cr_assert_eq(t, s[1], "the warm anonymous spool comes back");
	cr_assert_eq(t->fd, -1);
	cr_assert_eq(sp.spilled, 1, "not spilled: the budget had room again");
	t = spool_get(&sp);
	cr_assert_geq(t->fd, 0, "over budget again: a file");
	cr_assert_eq(sp.spilled, 2);
	spool_put(&sp, t);
	for (int i = 0; i < 4; i++)
		spool_put(&sp, s[i]);
	spool_pool_fini(&sp);
}

Test(spool, a_file_spool_is_recycled_punched_and_preallocated_again)
{
	struct spool_pool sp;
	struct spool *a[3], *f, *g;
	int fd;
	struct stat st;
	int fds = open_fds();

	need_tmpfile();
	spool_pool_init(&sp, 1 * MIB, 3 * MIB, spill_dir());
	for (int i = 0; i < 3; i++)
		a[i] = spool_get(&sp);
	f = spool_get(&sp);
	cr_assert_geq(f->fd, 0);
	fd = f->fd;
	fill(f, 42);
	spool_put(&sp, f);
	cr_assert_eq(sp.nfree_files, 1);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_blocks, 0, "put punches the whole file out");
	cr_assert_eq(open_fds(), fds + 1, "the free file spool keeps its fd");

	g = spool_get(&sp);
	cr_assert_eq(g, f, "the free file spool comes back");
	cr_assert_eq(g->fd, fd);
	cr_assert_eq(g->len, 0);
	cr_assert_eq(g->touched, 0);
	cr_assert_eq(g->base[0], 0, "punched content reads as zeros");
	cr_assert_eq(g->base[g->cap - 1], 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_geq((size_t)st.st_blocks * 512, 1 * MIB, "preallocated again");
	fill(g, 43);
	cr_assert(filled_with(g, 43));
	cr_assert_eq(sp.spilled, 2);
	spool_put(&sp, g);
	for (int i = 0; i < 3; i++)
		spool_put(&sp, a[i]);
	spool_pool_fini(&sp);
	cr_assert_eq(open_fds(), fds, "no fd leaks");
}

Test(spool, free_file_spools_beyond_the_keep_count_are_closed)
{
	struct spool_pool sp;
	struct spool *s[SPOOL_FREE_FILES + 2];
	int fds = open_fds();

	need_tmpfile();
	spool_pool_init(&sp, 64 * 1024, 64 * MIB, spill_dir());
	sp.budget = 0; /* below the config's range: every spool is a file */
	for (int i = 0; i < SPOOL_FREE_FILES + 2; i++) {
		s[i] = spool_get(&sp);
		cr_assert_not_null(s[i]);
		cr_assert_geq(s[i]->fd, 0);
	}
	for (int i = 0; i < SPOOL_FREE_FILES + 2; i++)
		spool_put(&sp, s[i]);
	cr_assert_eq(sp.nfree_files, SPOOL_FREE_FILES);
	cr_assert_eq(open_fds(), fds + SPOOL_FREE_FILES);
	spool_pool_fini(&sp);
	cr_assert_eq(open_fds(), fds, "no fd leaks");
}

Test(spool, no_tmpfile_dir_falls_back_to_counted_anonymous_memory)
{
	struct spool_pool sp;
	struct spool *s[5];
	int fds = open_fds(), maps = deleted_mappings();

	spool_pool_init(&sp, 1 * MIB, 3 * MIB, "/nonexistent/sluice-spool");
	for (int i = 0; i < 5; i++) {
		s[i] = spool_get(&sp);
		cr_assert_not_null(s[i], "the caller still gets a spool");
		cr_assert_eq(s[i]->fd, -1);
		fill(s[i], (unsigned)i + 9);
	}
	cr_assert_eq(sp.anon_out, 5, "fallbacks are counted as anonymous");
	cr_assert_eq(sp.fallback, 2);
	cr_assert_eq(sp.spilled, 0);
	for (int i = 0; i < 5; i++) {
		cr_assert(filled_with(s[i], (unsigned)i + 9));
		spool_put(&sp, s[i]);
	}
	cr_assert_eq(sp.nfree, 3, "spools beyond the budget are not kept");
	cr_assert_leq(sp.warm, 3 * MIB);
	spool_pool_fini(&sp);
	cr_assert_eq(open_fds(), fds, "no fd leaks");
	cr_assert_eq(deleted_mappings(), maps);
}

Test(chunk, cap_is_a_hard_limit_and_put_recycles)
{
	struct chunk_pool cp;
	struct chunk *a, *b;

	chunk_pool_init(&cp, 1024, 2);
	a = chunk_get(&cp);
	b = chunk_get(&cp);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_null(chunk_get(&cp), "a third chunk exceeds the cap");
	a->len = 10;
	chunk_put(&cp, a);
	cr_assert_eq(chunk_get(&cp), a);
	cr_assert_eq(a->len, 0, "a recycled chunk starts empty");
	chunk_put(&cp, a);
	chunk_put(&cp, b);
	chunk_put(&cp, NULL);
	cr_assert_eq(cp.used, 0);
	chunk_pool_fini(&cp);
}

Test(chunk, oversize_requests_get_a_one_off_chunk_outside_the_cap)
{
	struct chunk_pool cp;
	struct chunk *small, *big;

	chunk_pool_init(&cp, 1024, 1);
	small = chunk_get_size(&cp, 1024);
	cr_assert_not_null(small);
	cr_assert_eq(small->size, 1024);
	big = chunk_get_size(&cp, 1025);
	cr_assert_not_null(big, "one byte over the chunk size comes from the heap");
	cr_assert_eq(big->size, 1025);
	cr_assert_eq(cp.used, 1, "a one-off chunk does not count against the pool");
	chunk_put(&cp, big);
	chunk_put(&cp, small);
	cr_assert_eq(cp.used, 0);
	chunk_pool_fini(&cp);
}
