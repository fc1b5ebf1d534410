/*
 * test_spool.c -- core/spool: appends up to the reservation and no
 * further, recycling, and chunk pool limits (core/chunk).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/chunk.h"
#include "core/spool.h"

Test(spool, append_stops_exactly_at_capacity)
{
	struct spool_pool sp;
	struct spool *s;
	static char block[4096];

	spool_pool_init(&sp, 8192);
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

	spool_pool_init(&sp, big);
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
