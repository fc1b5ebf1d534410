/*
 * test_timer.c -- core/timer: per-class FIFO deadlines expire in order,
 * re-arming moves a timer to the back, disarmed timers never fire.
 */
#include <criterion/criterion.h>

#include "core/timer.h"

static const uint64_t durations[TIMER__COUNT] = {100, 1000, 50, 10};

Test(timer, expires_in_deadline_order_within_and_across_classes)
{
	struct timers t;
	struct timer a = {0}, b = {0}, c = {0};

	timers_init(&t, durations);
	timer_arm(&t, &a, TIMER_COMMAND, 0);   /* 100 */
	timer_arm(&t, &b, TIMER_COMMAND, 10);  /* 110 */
	timer_arm(&t, &c, TIMER_UPSTREAM, 20); /* 70 */
	cr_assert_null(timers_expired(&t, 69));
	cr_assert_eq(timers_expired(&t, 70), &c);
	cr_assert_null(timers_expired(&t, 99));
	cr_assert_eq(timers_expired(&t, 110), &a);
	cr_assert_eq(timers_expired(&t, 110), &b);
	cr_assert_null(timers_expired(&t, 100000));
	cr_assert(!a.armed && !b.armed && !c.armed);
}

Test(timer, rearm_moves_to_the_back_and_disarm_cancels)
{
	struct timers t;
	struct timer a = {0}, b = {0};

	timers_init(&t, durations);
	timer_arm(&t, &a, TIMER_DATA, 0);
	timer_arm(&t, &b, TIMER_DATA, 5);
	timer_arm(&t, &a, TIMER_DATA, 10); /* a now expires at 1010, after b */
	cr_assert_eq(timers_expired(&t, 1010), &b);
	cr_assert_eq(timers_expired(&t, 1010), &a);
	timer_arm(&t, &a, TIMER_DATA, 0);
	timer_disarm(&a);
	timer_disarm(&a); /* harmless twice */
	cr_assert_null(timers_expired(&t, 5000));
}
