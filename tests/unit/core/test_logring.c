/*
 * test_logring.c -- core/logring: whole lines or nothing, wrap-around, and
 * drops counted when the consumer falls behind.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "core/logring.h"

static size_t
drain_to_string(struct logring *r, char *out, size_t cap)
{
	int fds[2];
	size_t n;
	ssize_t got;

	cr_assert_eq(pipe(fds), 0);
	n = logring_drain(r, fds[1]);
	close(fds[1]);
	got = read(fds[0], out, cap);
	close(fds[0]);
	cr_assert_eq((size_t)got, n);
	return n;
}

Test(logring, lines_come_out_in_order_across_the_wrap)
{
	struct logring r;
	char out[8192];
	char line[1000];

	cr_assert_eq(logring_init(&r, 4096), 0);
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	for (int round = 0; round < 10; round++) {
		line[0] = (char)('0' + round);
		cr_assert(logring_put(&r, line, sizeof(line)));
		line[0] = (char)('A' + round);
		cr_assert(logring_put(&r, line, sizeof(line)));
		cr_assert_eq(drain_to_string(&r, out, sizeof(out)), 2 * sizeof(line));
		cr_assert_eq(out[0], '0' + round);
		cr_assert_eq(out[sizeof(line)], 'A' + round);
	}
	logring_fini(&r);
}

Test(logring, a_full_ring_drops_whole_lines_and_counts_them)
{
	struct logring r;
	char out[8192];
	char line[1500];

	cr_assert_eq(logring_init(&r, 4096), 0);
	memset(line, 'x', sizeof(line));
	cr_assert(logring_put(&r, line, sizeof(line)));
	cr_assert(logring_put(&r, line, sizeof(line)));
	cr_assert_not(logring_put(&r, line, sizeof(line)), "4500 bytes do not fit in 4096");
	cr_assert_eq(r.dropped, 1);
	cr_assert_eq(drain_to_string(&r, out, sizeof(out)), 2 * sizeof(line));
	logring_fini(&r);
}
