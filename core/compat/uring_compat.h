/*
 * uring_compat.h -- what Debian 12's liburing 2.3 lacks, in one place.
 *
 * liburing 2.4 added io_uring_setup_buf_ring(); 2.3 has only the
 * registration call, so the mmap + register + init sequence lives here; and
 * 2.3 does not export io_uring_enable_rings(). The
 * kernel side (5.19+) is what matters; the shim only saves us from depending
 * on a newer library than the distribution ships.
 */
#ifndef SLUICE_CORE_COMPAT_URING_COMPAT_H
#define SLUICE_CORE_COMPAT_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/*
 * Map and register a provided-buffer ring of `entries` (a power of two)
 * for buffer group `bgid`. Returns the ring or NULL with *err set to a
 * negative errno.
 */
static inline struct io_uring_buf_ring *
uring_compat_setup_buf_ring(struct io_uring *ring, unsigned entries, int bgid, int *err)
{
	struct io_uring_buf_reg reg = {0};
	size_t len = entries * sizeof(struct io_uring_buf);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	int ret;

	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	reg.ring_addr = (unsigned long)p;
	reg.ring_entries = entries;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0) {
		munmap(p, len);
		*err = ret;
		return NULL;
	}
	io_uring_buf_ring_init(p);
	*err = 0;
	return p;
}

/*
 * Enable a ring created with IORING_SETUP_R_DISABLED; the calling thread
 * becomes its single issuer. liburing 2.3 declares io_uring_enable_rings()
 * but its shared library does not export it, so we make the call here.
 */
static inline int
uring_compat_enable_rings(struct io_uring *ring)
{
	long ret =
	    syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);

	return ret < 0 ? -errno : 0;
}

#endif /* SLUICE_CORE_COMPAT_URING_COMPAT_H */
