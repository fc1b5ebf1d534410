/*
 * test_dedup.c -- fingerprints of partial deliveries (core/dedup.h): what
 * was added is seen within the window and forgotten after it; a different
 * content, address set or count is a different fingerprint; a slot taken
 * over forgets the older fingerprint (a duplicate, never a loss); and
 * several threads adding and reading at once never see a fingerprint that
 * was not added.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/dedup.h"

static struct dedup d;

static void
setup(void)
{
	cr_assert_eq(dedup_init(&d, 3600), 0);
}

static void
teardown(void)
{
	dedup_fini(&d);
}

TestSuite(dedup, .init = setup, .fini = teardown);

static uint64_t
fp_of(const char *content, const char *const addrs[], unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += dedup_addr_hash(addrs[i]);
	return dedup_fingerprint(dedup_content_hash(content, strlen(content)), sum, n);
}

Test(dedup, added_is_seen_within_the_window_and_forgotten_after)
{
	const char *a[] = {"a@dest.test"};
	uint64_t fp = fp_of("message", a, 1);

	cr_assert(dedup_empty(&d));
	cr_assert_not(dedup_seen(&d, fp, 1000));
	dedup_add(&d, fp, 1000);
	cr_assert_not(dedup_empty(&d));
	cr_assert(dedup_seen(&d, fp, 1000));
	cr_assert(dedup_seen(&d, fp, 1000 + 3599));
	cr_assert_not(dedup_seen(&d, fp, 1000 + 3600));
}

Test(dedup, content_addresses_and_count_all_count)
{
	const char *ab[] = {"a@dest.test", "b@dest.test"}, *ba[] = {"b@dest.test", "a@dest.test"};
	const char *a[] = {"a@dest.test"}, *c[] = {"c@dest.test"};

	dedup_add(&d, fp_of("message", ab, 2), 0);
	cr_assert(dedup_seen(&d, fp_of("message", ba, 2), 1), "order must not matter");
	cr_assert_not(dedup_seen(&d, fp_of("message", a, 1), 1), "a subset is another delivery");
	cr_assert_not(dedup_seen(&d, fp_of("message", c, 1), 1));
	cr_assert_not(dedup_seen(&d, fp_of("message!", ab, 2), 1), "other content");
}

Test(dedup, fingerprints_are_never_zero)
{
	/* 0 marks a free slot; whatever the inputs, a fingerprint is not 0 */
	for (uint64_t i = 0; i < 100000; i++)
		cr_assert_neq(dedup_fingerprint(i, i * 7, (uint32_t)i), 0);
}

Test(dedup, a_slot_taken_over_forgets_the_older_one)
{
	uint64_t fp1 = 5, fp2 = 5 + DEDUP_SLOTS; /* same slot */

	dedup_add(&d, fp1, 0);
	dedup_add(&d, fp2, 0);
	cr_assert_not(dedup_seen(&d, fp1, 1), "forgotten: the retry is sent again");
	cr_assert(dedup_seen(&d, fp2, 1));
}

#define RACE_ROUNDS 200000

static void *
racer(void *arg)
{
	uint64_t base = (uint64_t)(uintptr_t)arg;

	for (uint64_t i = 0; i < RACE_ROUNDS; i++) {
		/* odd fingerprints are added, even ones never are */
		dedup_add(&d, (base + i) * 2 + 1, 10);
		if (dedup_seen(&d, (base + i) * 2 + 2, 11))
			return (void *)1;
	}
	return NULL;
}

Test(dedup, concurrent_adds_never_make_an_unadded_fingerprint_seen)
{
	pthread_t t[2];
	void *bad[2];

	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, racer, (void *)(uintptr_t)(i * 7919)), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(pthread_join(t[i], &bad[i]), 0);
		cr_assert_null(bad[i]);
	}
}

Test(dedup, address_filter_marks_what_was_added_and_little_else)
{
	uint64_t a = dedup_addr_hash("a@dest.test");
	unsigned marked = 0;
	char addr[32];

	cr_assert_not(dedup_addr_marked(&d, a));
	dedup_mark_addr(&d, a);
	cr_assert(dedup_addr_marked(&d, a));
	/* one bit in 2^20: other addresses stay unmarked, bar a rare collision */
	for (int i = 0; i < 10000; i++) {
		snprintf(addr, sizeof(addr), "u%d@dest.test", i);
		marked += dedup_addr_marked(&d, dedup_addr_hash(addr));
	}
	cr_assert_leq(marked, 2, "%u of 10000 other addresses look marked", marked);
}
