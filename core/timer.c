/*
 * timer.c -- see timer.h.
 */
#include "core/timer.h"

#include <string.h>
#include <time.h>

void
timers_init(struct timers *t, const uint64_t duration_ms[TIMER__COUNT])
{
	for (int i = 0; i < TIMER__COUNT; i++) {
		t->lists[i].head.prev = t->lists[i].head.next = &t->lists[i].head;
		t->duration_ms[i] = duration_ms[i];
	}
}

void
timer_disarm(struct timer *tm)
{
	if (!tm->armed)
		return;
	tm->prev->next = tm->next;
	tm->next->prev = tm->prev;
	tm->prev = tm->next = NULL;
	tm->armed = false;
}

void
timer_arm(struct timers *t, struct timer *tm, enum timer_class cls, uint64_t now_ms)
{
	struct timer *head = &t->lists[cls].head;

	timer_disarm(tm);
	tm->deadline_ms = now_ms + t->duration_ms[cls];
	tm->cls = (uint8_t)cls;
	/* append: durations are equal within a class, so the list stays sorted */
	tm->prev = head->prev;
	tm->next = head;
	head->prev->next = tm;
	head->prev = tm;
	tm->armed = true;
}

struct timer *
timers_expired(struct timers *t, uint64_t now_ms)
{
	for (int i = 0; i < TIMER__COUNT; i++) {
		struct timer *head = &t->lists[i].head;
		struct timer *first = head->next;

		if (first != head && first->deadline_ms <= now_ms) {
			timer_disarm(first);
			return first;
		}
	}
	return NULL;
}

uint64_t
timer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
timer_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}
