/*
 * err.c -- text for the project's own error codes; errno codes go to libc.
 */
#include "core/err.h"

#include <string.h>

const char *
sluice_strerror(int err)
{
	switch (-err) {
	case 0:
		return "success";
	case SLUICE_ELIMIT:
		return "limit exceeded";
	case SLUICE_ESYNTAX:
		return "syntax error";
	case SLUICE_EBARELF:
		return "bare CR or LF";
	case SLUICE_ESTATE:
		return "bad state";
	case SLUICE_EUPSTREAM:
		return "upstream protocol error";
	default:
		return strerror(-err);
	}
}
