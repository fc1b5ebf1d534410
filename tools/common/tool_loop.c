/*
 * tool_loop.c -- see tool_loop.h.
 */
#include "tools/common/tool_loop.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>

int
tool_loop_init(struct io_uring *ring, unsigned entries, unsigned cq_entries)
{
	struct io_uring_params p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = cq_entries;
	rc = io_uring_queue_init_params(entries, ring, &p);
	if (rc == -EINVAL) {
		/* kernel older than 6.1: no DEFER_TASKRUN */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = cq_entries;
		rc = io_uring_queue_init_params(entries, ring, &p);
	}
	return rc;
}

struct io_uring_sqe *
tool_loop_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;

	/* bounded: one submit frees the whole SQ (the kernel consumes every SQE) */
	for (int tries = 0; tries < 1000; tries++) {
		sqe = io_uring_get_sqe(ring);
		if (sqe != NULL)
			return sqe;
		io_uring_submit(ring);
	}
	BUG_ON(1); /* the kernel refused to consume SQEs */
	return NULL;
}

uint64_t
tool_loop_nofile(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur >= want)
		return rl.rlim_cur;
	if (rl.rlim_max < want) {
		struct rlimit hi = {want, want};

		if (setrlimit(RLIMIT_NOFILE, &hi) == 0)
			return want;
	}
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	return rl.rlim_cur;
}

int
tool_loop_signalfd(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void
tool_loop_arm_signal(struct io_uring *ring, int sfd, struct signalfd_siginfo *si, uint64_t ud)
{
	struct io_uring_sqe *sqe = tool_loop_sqe(ring);

	io_uring_prep_read(sqe, sfd, si, sizeof(*si), 0);
	io_uring_sqe_set_data64(sqe, ud);
}
