/*
 * data_model.c -- see data_model.h.
 */
#include "tests/support/data_model.h"

uint64_t
data_model_rnd(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

bool
data_model_bol(const char *in, size_t i)
{
	return i == 0 || (i >= 2 && in[i - 2] == '\r' && in[i - 1] == '\n');
}
