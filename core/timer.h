/*
 * timer.h -- session deadlines on per-duration FIFO lists.
 *
 * Every deadline in sluice is "now + one of a few configured durations"
 * (command, data, upstream, shutdown). Timers with the same duration expire
 * in the order they were armed, so one FIFO list per duration class keeps
 * them sorted for free: arming and disarming are O(1) list operations and
 * expiry only looks at list heads. This replaces a general timer wheel,
 * which would buy arbitrary durations we do not have. The shard checks the
 * heads on a periodic tick (one io_uring timeout per shard, not per op).
 */
#ifndef SLUICE_CORE_TIMER_H
#define SLUICE_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

enum timer_class {
	TIMER_COMMAND,	  /* waiting for a client command */
	TIMER_DATA,	  /* waiting for message content */
	TIMER_UPSTREAM,	  /* waiting for the upstream (connect, reply, send) */
	TIMER_CLOSE,	  /* a closing session's last reply is not being read */
	TIMER_UP_IDLE,	  /* a pooled upstream connection waits for a session */
	TIMER_UP_CONNECT, /* an upstream connect and greeting (then the next address) */
	TIMER__COUNT
};

struct timer {
	struct timer *prev, *next; /* list links; NULL when not armed */
	uint64_t deadline_ms;	   /* monotonic ms */
	uint8_t cls;		   /* enum timer_class while armed */
	bool armed;
};

struct timer_list {
	struct timer head; /* sentinel of a circular list */
};

struct timers {
	struct timer_list lists[TIMER__COUNT];
	uint64_t duration_ms[TIMER__COUNT]; /* fixed per class */
};

/* Empty lists with the given duration per class. */
void timers_init(struct timers *t, const uint64_t duration_ms[TIMER__COUNT]);

/* (Re)arm `tm` to expire `duration_ms[cls]` after now_ms. */
void timer_arm(struct timers *t, struct timer *tm, enum timer_class cls, uint64_t now_ms);

/* Disarm; harmless on a timer that is not armed. */
void timer_disarm(struct timer *tm);

/* The earliest expired timer (disarmed before it is returned), or NULL. */
struct timer *timers_expired(struct timers *t, uint64_t now_ms);

/* Monotonic clock in milliseconds. */
uint64_t timer_now_ms(void);

/* Monotonic clock in nanoseconds (durations in logs). */
uint64_t timer_now_ns(void);

#endif /* SLUICE_CORE_TIMER_H */
