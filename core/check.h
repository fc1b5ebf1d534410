/*
 * check.h -- assertions and branch hints (level 0: no I/O, no shard).
 *
 * BUG_ON(cond)   programmer fault: aborts with file and line in every build.
 * ASSERT(cond)   expensive check, debug builds only (SLUICE_DEBUG).
 * ALWAYS(x)/NEVER(x)  defensive checks (SQLite): in release builds they
 *                only evaluate x, so the caller can recover; in debug
 *                builds a violation aborts, so tests find it.
 */
#ifndef SLUICE_CORE_CHECK_H
#define SLUICE_CORE_CHECK_H

#include <stdbool.h>

/* Print "file:line: BUG: expr" to stderr and abort(). Never returns. */
void check_fail(const char *file, int line, const char *expr) __attribute__((noreturn, cold));

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define BUG_ON(cond)                                                                               \
	do {                                                                                       \
		if (unlikely(cond))                                                                \
			check_fail(__FILE__, __LINE__, #cond);                                     \
	} while (0)

#ifdef SLUICE_DEBUG
#define ASSERT(cond) BUG_ON(!(cond))
#define ALWAYS(x)    ((x) ? true : (check_fail(__FILE__, __LINE__, #x), false))
#define NEVER(x)     ((x) ? (check_fail(__FILE__, __LINE__, #x), true) : false)
#else
#define ASSERT(cond) ((void)0)
#define ALWAYS(x)    (!!(x))
#define NEVER(x)     (!!(x))
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MUST_CHECK    __attribute__((warn_unused_result))

#endif /* SLUICE_CORE_CHECK_H */
