/*
 * test_spool.c -- core/spool: appends up to the reservation and no
 * further, recycling, moving large messages to unlinked files past the
 * memory budget,
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

/* Write bytes [len, to) of the pattern `seed` as the session does (a recv + commit). */
static void
fill_to(struct spool *s, unsigned seed, size_t to)
{
	for (size_t i = s->len; i < to; i++)
		s->base[i] = (char)(seed + i * 7);
	spool_commit(s, to - s->len);
}

static bool
filled_with(const struct spool *s, unsigned seed)
{
	for (size_t i = 0; i < s->len; i++)
		if (s->base[i] != (char)(seed + i * 7))
			return false;
	return true;
}

/* The session's check after content arrived (sess_spool_grown). */
static struct spool *
grown(struct spool_pool *sp, struct spool *s)
{
	if (s->len < SPOOL_SPILL_AT || spool_grow_ok(sp, s))
		return s;
	return spool_spill(sp, s);
}

#define CAP (2 * MIB) /* > SPOOL_SPILL_AT */

Test(spool, large_messages_past_the_budget_move_to_unlinked_files)
{
	struct spool_pool sp;
	struct spool *s[5];
	int fds = open_fds(), maps = deleted_mappings();
	struct stat st;

	need_tmpfile();
	spool_pool_init(&sp, CAP, 2 * CAP, spill_dir());
	for (int i = 0; i < 5; i++) {
		s[i] = spool_get(&sp);
		cr_assert_eq(s[i]->fd, -1, "every spool starts in memory");
		fill_to(s[i], (unsigned)i, SPOOL_SPILL_AT);
		s[i] = grown(&sp, s[i]);
		if (i < 2) {
			cr_assert_eq(s[i]->fd, -1, "large message %d fits the budget", i);
		} else {
			cr_assert_geq(s[i]->fd, 0, "large message %d is past the budget: a file",
				      i);
			cr_assert_eq(fstat(s[i]->fd, &st), 0);
			cr_assert_eq(st.st_nlink, 0, "the spool file is unlinked");
			cr_assert_geq((size_t)st.st_blocks * 512, CAP, "preallocated");
		}
		cr_assert_eq(s[i]->len, SPOOL_SPILL_AT, "the content moved with it");
		fill_to(s[i], (unsigned)i, CAP); /* the rest arrives into the new spool */
	}
	cr_assert_eq(sp.large_out, 2);
	cr_assert_eq(sp.spilled, 3);
	cr_assert_eq(sp.out, 5);
	cr_assert_eq(sp.anon_out, 2, "the three moved spools went back to the free list");
	cr_assert_eq(sp.fallback, 0);
	cr_assert_eq(open_fds(), fds + 3);
	cr_assert_eq(deleted_mappings(), maps + 3);
	for (int i = 0; i < 5; i++)
		cr_assert(filled_with(s[i], (unsigned)i), "spool %d reads back", i);
	for (int i = 0; i < 5; i++)
		spool_put(&sp, s[i]);
	cr_assert_eq(sp.out, 0);
	cr_assert_eq(sp.large_out, 0);
	spool_pool_fini(&sp);
	cr_assert_eq(open_fds(), fds, "no fd leaks");
	cr_assert_eq(deleted_mappings(), maps, "no mapping leaks");
}

Test(spool, a_file_spool_released_from_our_mapping_keeps_its_content)
{
	struct spool_pool sp;
	struct spool *s;

	need_tmpfile();
	spool_pool_init(&sp, 8 * MIB, 0, spill_dir());
	s = spool_get(&sp);
	fill_to(s, 5, SPOOL_SPILL_AT);
	s = grown(&sp, s);
	cr_assert_geq(s->fd, 0);
	fill_to(s, 5, 3 * SPOOL_RELEASE_STEP + 123);
	spool_release_written(s);
	cr_assert_eq(s->released, 3 * SPOOL_RELEASE_STEP, "whole steps only");
	fill_to(s, 5, 8 * MIB);
	spool_release_written(s);
	spool_release_sent(s, 5 * MIB + 17);
	cr_assert_eq(s->sent_released, 5 * MIB, "whole pages only");
	spool_release_sent(s, 2 * MIB);
	cr_assert_eq(s->sent_released, 5 * MIB, "nothing is dropped twice");
	cr_assert(filled_with(s, 5), "the page cache still holds every byte");
	spool_put(&sp, s);
	spool_pool_fini(&sp);
}

Test(spool, small_messages_never_leave_memory)
{
	struct spool_pool sp;
	struct spool *s[40];
	int fds = open_fds();

	spool_pool_init(&sp, CAP, 0, spill_dir()); /* no room for a large one */
	for (int i = 0; i < 40; i++) {
		s[i] = spool_get(&sp);
		fill_to(s[i], (unsigned)i, 4096);
		s[i] = grown(&sp, s[i]);
		cr_assert_eq(s[i]->fd, -1);
	}
	cr_assert_eq(sp.spilled, 0);
	cr_assert_eq(open_fds(), fds, "no file was made");
	for (int i = 0; i < 40; i++)
		spool_put(&sp, s[i]);
	spool_pool_fini(&sp);
}

Test(spool, a_large_spool_put_back_frees_budget_for_the_next)
{
	struct spool_pool sp;
	struct spool *a, *b, *c;

	need_tmpfile();
	spool_pool_init(&sp, CAP, CAP, spill_dir()); /* one large message in memory */
	a = spool_get(&sp);
	fill_to(a, 1, SPOOL_SPILL_AT);
	cr_assert_eq(grown(&sp, a), a);
	b = spool_get(&sp);
	fill_to(b, 2, SPOOL_SPILL_AT);
	b = grown(&sp, b);
	cr_assert_geq(b->fd, 0, "the second large message goes to a file");
	spool_put(&sp, a);
	c = spool_get(&sp);
	fill_to(c, 3, SPOOL_SPILL_AT);
	cr_assert_eq(grown(&sp, c), c, "the budget had room again");
	cr_assert_eq(sp.spilled, 1);
	spool_put(&sp, b);
	spool_put(&sp, c);
	spool_pool_fini(&sp);
}

Test(spool, a_file_spool_is_recycled_punched_and_preallocated_again)
{
	struct spool_pool sp;
	struct spool *f, *g;
	int fd;
	struct stat st;
	int fds = open_fds();

	need_tmpfile();
	spool_pool_init(&sp, CAP, 0, spill_dir());
	f = spool_get(&sp);
	fill_to(f, 42, SPOOL_SPILL_AT);
	f = grown(&sp, f);
	cr_assert_geq(f->fd, 0);
	fd = f->fd;
	fill_to(f, 42, CAP);
	spool_put(&sp, f);
	cr_assert_eq(sp.nfree_files, 1);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_blocks, 0, "put punches the whole file out");
	cr_assert_eq(open_fds(), fds + 1, "the free file spool keeps its fd");

	g = spool_get(&sp);
	cr_assert_eq(g->fd, -1);
	fill_to(g, 43, SPOOL_SPILL_AT);
	g = grown(&sp, g);
	cr_assert_eq(g, f, "the free file spool comes back");
	cr_assert_eq(g->fd, fd);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_geq((size_t)st.st_blocks * 512, CAP, "preallocated again");
	cr_assert_eq(g->base[CAP - 1], 0, "punched content reads as zeros");
	fill_to(g, 43, CAP);
	cr_assert(filled_with(g, 43));
	cr_assert_eq(sp.spilled, 2);
	spool_put(&sp, g);
	spool_pool_fini(&sp);
	cr_assert_eq(open_fds(), fds, "no fd leaks");
}

Test(spool, free_file_spools_beyond_the_keep_count_are_closed)
{
	struct spool_pool sp;
	struct spool *s[SPOOL_FREE_FILES + 2];
	int fds = open_fds();

	need_tmpfile();
	spool_pool_init(&sp, CAP, 0, spill_dir());
	for (int i = 0; i < SPOOL_FREE_FILES + 2; i++) {
		s[i] = spool_get(&sp);
		fill_to(s[i], 0, SPOOL_SPILL_AT);
		s[i] = grown(&sp, s[i]);
		cr_assert_geq(s[i]->fd, 0);
	}
	for (int i = 0; i < SPOOL_FREE_FILES + 2; i++)
		spool_put(&sp, s[i]);
	cr_assert_eq(sp.nfree_files, SPOOL_FREE_FILES);
	cr_assert_eq(open_fds(), fds + SPOOL_FREE_FILES);
	spool_pool_fini(&sp);
	cr_assert_eq(open_fds(), fds, "no fd leaks");
}

Test(spool, no_tmpfile_dir_keeps_the_message_in_memory_counted)
{
	struct spool_pool sp;
	struct spool *s;
	int fds = open_fds(), maps = deleted_mappings();

	spool_pool_init(&sp, CAP, 0, "/nonexistent/sluice-spool");
	s = spool_get(&sp);
	fill_to(s, 9, SPOOL_SPILL_AT);
	cr_assert_eq(grown(&sp, s), s, "no file: the message stays where it is");
	cr_assert_eq(s->fd, -1);
	cr_assert_eq(sp.fallback, 1);
	cr_assert_eq(sp.large_out, 1, "counted, over the budget");
	cr_assert_eq(grown(&sp, s), s, "asked once only");
	cr_assert_eq(sp.fallback, 1);
	fill_to(s, 9, CAP);
	cr_assert(filled_with(s, 9));
	spool_put(&sp, s);
	cr_assert_eq(sp.large_out, 0);
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
