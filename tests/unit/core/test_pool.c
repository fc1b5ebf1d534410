/*
 * test_pool.c -- core/pool: capacity is a hard limit, generations detect
 * stale handles, freed slots are reused before fresh ones.
 */
#include <criterion/criterion.h>

#include "core/pool.h"

struct obj {
	int value;
	char pad[100];
};

Test(pool, hands_out_zeroed_objects_up_to_capacity_then_fails)
{
	struct pool p;
	uint32_t slot;

	cr_assert_eq(pool_init(&p, 3, sizeof(struct obj)), 0);
	for (uint32_t i = 0; i < 3; i++) {
		struct obj *o = pool_get(&p, &slot);

		cr_assert_not_null(o);
		cr_assert_eq(slot, i);
		cr_assert_eq(o->value, 0);
		o->value = 42;
	}
	cr_assert_null(pool_get(&p, &slot), "capacity 3 must refuse a fourth object");
	cr_assert_eq(p.used, 3);
	cr_assert_eq(p.high, 3);
	pool_fini(&p);
}

Test(pool, stale_generation_is_not_found_after_put)
{
	struct pool p;
	uint32_t slot, gen;
	struct obj *o;

	cr_assert_eq(pool_init(&p, 2, sizeof(struct obj)), 0);
	o = pool_get(&p, &slot);
	gen = pool_gen(&p, slot);
	cr_assert_eq(pool_lookup(&p, slot, gen), o);
	pool_put(&p, slot);
	cr_assert_null(pool_lookup(&p, slot, gen),
		       "a freed slot must not match its old generation");
	o = pool_get(&p, &slot);
	cr_assert_eq(slot, 0, "the freed slot is reused first");
	cr_assert_neq(pool_gen(&p, slot), gen);
	cr_assert_eq(o->value, 0, "a reused object is zeroed");
	cr_assert_null(pool_lookup(&p, 1, 0), "a never-used slot is not found");
	pool_fini(&p);
}

Test(pool, object_size_is_rounded_to_cache_lines)
{
	struct pool p;

	cr_assert_eq(pool_init(&p, 1, 65), 0);
	cr_assert_eq(p.size, 128);
	pool_fini(&p);
}
