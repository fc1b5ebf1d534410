/*
 * err.h -- error codes shared by every module (level 0).
 *
 * Functions returning int use 0 for success and a negative errno-style code
 * for failure, like cqe->res and liburing. Our own codes start at -4096 and
 * go down, so they never collide with errno values.
 */
#ifndef SLUICE_CORE_ERR_H
#define SLUICE_CORE_ERR_H

#include <errno.h>

enum sluice_err {
	SLUICE_ELIMIT = 4096,	 /* a configured limit was reached */
	SLUICE_ESYNTAX = 4097,	 /* malformed input */
	SLUICE_EBARELF = 4098,	 /* bare LF or bare CR where only CRLF is allowed */
	SLUICE_ESTATE = 4099,	 /* operation not valid in the current state */
	SLUICE_EUPSTREAM = 4100, /* the upstream misbehaved (bad reply, early close) */
};

/* Static, human-readable text for 0, -errno or -SLUICE_* codes. */
const char *sluice_strerror(int err);

#endif /* SLUICE_CORE_ERR_H */
