/*
 * check.c -- the one out-of-line piece of check.h: report and abort.
 */
#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>

void
check_fail(const char *file, int line, const char *expr)
{
	fprintf(stderr, "%s:%d: BUG: %s\n", file, line, expr);
	abort();
}
