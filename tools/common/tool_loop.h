/*
 * tool_loop.h -- io_uring plumbing shared by the load tools: ring set-up,
 * the user_data layout, SQE allocation that never fails, and process limits.
 *
 * user_data = op (8 bits) | generation (24 bits) | slot (32 bits). Every
 * completion is checked against the slot's current generation, so a CQE that
 * arrives after its connection slot was reused is recognised and dropped
 * (STYLE rule 2). Slot TOOL_LOOP_SLOT_NONE is for loop-wide ops (accept,
 * signals, the tick timer).
 */
#ifndef SLUICE_TOOLS_COMMON_TOOL_LOOP_H
#define SLUICE_TOOLS_COMMON_TOOL_LOOP_H

#include <signal.h>
#include <sys/signalfd.h>
#include <stdint.h>

#include <liburing.h>

#include "core/check.h"

#define TOOL_LOOP_SLOT_NONE 0xffffffffu /* slot of loop-wide operations */
#define TOOL_LOOP_GEN_MASK  0xffffffu	/* generations wrap at 24 bits */

/*
 * Set up ring with entries SQEs and a CQ of cq_entries, asking for
 * SINGLE_ISSUER|DEFER_TASKRUN and falling back to plain flags on older
 * kernels. Returns 0 or -errno.
 */
MUST_CHECK int tool_loop_init(struct io_uring *ring, unsigned entries, unsigned cq_entries);

/* Get an SQE, submitting pending ones first if the SQ is full. Never NULL. */
struct io_uring_sqe *tool_loop_sqe(struct io_uring *ring);

/*
 * Raise RLIMIT_NOFILE so that at least want descriptors are usable (soft up to
 * hard, and the hard limit too when privileged). Returns the soft limit now in
 * force.
 */
uint64_t tool_loop_nofile(uint64_t want);

/*
 * Block SIGTERM and SIGINT, ignore SIGPIPE, and return a signalfd for the two
 * (blocking, so an io_uring read waits on it; close-on-exec), or -errno.
 */
int tool_loop_signalfd(void);

/* Arm a read of one signal from sfd into *si; its completion carries ud. */
void tool_loop_arm_signal(struct io_uring *ring, int sfd, struct signalfd_siginfo *si, uint64_t ud);

/* --- inline implementation --- */

static inline uint64_t
tool_loop_ud(unsigned op, uint32_t gen, uint32_t slot)
{
	return ((uint64_t)op << 56) | ((uint64_t)(gen & TOOL_LOOP_GEN_MASK) << 32) | slot;
}

static inline unsigned
tool_loop_ud_op(uint64_t ud)
{
	return (unsigned)(ud >> 56);
}

static inline uint32_t
tool_loop_ud_gen(uint64_t ud)
{
	return (uint32_t)(ud >> 32) & TOOL_LOOP_GEN_MASK;
}

static inline uint32_t
tool_loop_ud_slot(uint64_t ud)
{
	return (uint32_t)ud;
}

#endif /* SLUICE_TOOLS_COMMON_TOOL_LOOP_H */
