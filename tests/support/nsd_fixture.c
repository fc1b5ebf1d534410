/*
 * nsd_fixture.c -- see nsd_fixture.h.
 */
#include "tests/support/nsd_fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/timer.h"
#include "tests/support/test_dir.h"

#define NSD_BIN		"/usr/sbin/nsd"
#define NSD_START_MS	5000   /* for NSD to answer on both addresses */
#define NSD_STOP_MS	3000   /* for NSD to exit on SIGTERM, then SIGKILL */
#define NSD_POLL_MAX_MS 50     /* longest nsd_owner_poll() waits */
#define NSD_PROBE_ID	0x1234 /* the id of the readiness query */
#define NSD_PROBE_MAX	300    /* bytes of a probe query: header, name, type, class */
#define NSD_RCODE_MASK	0x0f   /* in header byte 3: RCODE, 0 = NOERROR */
#define NSD_FLAG_QR	0x80   /* in header byte 2: a response */
#define NSD_HDR_LEN	12     /* id, flags, four counts */
#define NSD_TYPE_SOA	6      /* RR type, by number */
#define NSD_CLASS_IN	1      /* RR class IN */
#define NSD_ZONE_MAX	128    /* characters of the zone name, NUL included */

static struct {
	pid_t pid;		 /* NSD's main process and process group; 0 when stopped */
	uint16_t port;		 /* UDP and TCP, on 127.0.0.1 and ::1 */
	int silent_fd;		 /* nsd_silent_server()'s socket; -1 if none */
	char dir[64];		 /* temporary directory; "" when removed */
	char zone[NSD_ZONE_MAX]; /* the zone's name, no trailing dot */
	char path[256];		 /* scratch for file names: dir "/" zone ".zone" */
} nsd = {.silent_fd = -1};

static const char *
nsd_file(const char *name)
{
	snprintf(nsd.path, sizeof(nsd.path), "%s/%s", nsd.dir, name);
	return nsd.path;
}

static void
nsd_write_files(nsd_zone_fn *write_zone)
{
	char zonefile[NSD_ZONE_MAX + 8];
	FILE *f;

	snprintf(zonefile, sizeof(zonefile), "%s.zone", nsd.zone);
	f = fopen(nsd_file(zonefile), "w");
	cr_assert_not_null(f);
	write_zone(f);
	cr_assert_eq(fclose(f), 0);
	f = fopen(nsd_file("nsd.conf"), "w");
	cr_assert_not_null(f);
	fprintf(f,
		"server:\n"
		"\tip-address: 127.0.0.1@%u\n"
		"\tip-address: ::1@%u\n"
		"\tport: %u\n"
		"\tusername: \"\"\n"
		"\tchroot: \"\"\n"
		"\tzonesdir: \"%s\"\n"
		"\tdatabase: \"\"\n"
		"\tpidfile: \"%s/nsd.pid\"\n"
		"\txfrdfile: \"%s/xfrd.state\"\n"
		"\tzonelistfile: \"%s/zone.list\"\n"
		"\txfrdir: \"%s\"\n"
		"\tlogfile: \"%s/nsd.log\"\n"
		"\tserver-count: 1\n"
		"\tverbosity: 0\n"
		"\treuseport: no\n"
		"remote-control:\n"
		"\tcontrol-enable: no\n"
		"zone:\n"
		"\tname: \"%s\"\n"
		"\tzonefile: \"%s/%s\"\n",
		nsd.port, nsd.port, nsd.port, nsd.dir, nsd.dir, nsd.dir, nsd.dir, nsd.dir, nsd.dir,
		nsd.zone, nsd.dir, zonefile);
	cr_assert_eq(fclose(f), 0);
}

/* The loopback address of `family` at `port`, in *ss; its length. */
static socklen_t
loopback_sa(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = in6addr_loopback;
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*s4);
}

int
nsd_bind_loopback(int family, int type, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_sa(family, port, &ss);
	int fd = socket(family, type, 0);

	if (fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * A port free for UDP and TCP on 127.0.0.1 and ::1 a moment ago, as NSD
 * needs. Parallel tests may still take it first: the caller retries.
 */
static uint16_t
free_port(void)
{
	uint16_t port = 0;

	for (int attempt = 0; attempt < 20 && port == 0; attempt++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd[4];
		bool ok = true;

		fd[0] = nsd_bind_loopback(AF_INET, SOCK_DGRAM, 0);
		cr_assert_geq(fd[0], 0);
		cr_assert_eq(getsockname(fd[0], (struct sockaddr *)&ss, &len), 0);
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		fd[1] = nsd_bind_loopback(AF_INET, SOCK_STREAM, port);
		fd[2] = nsd_bind_loopback(AF_INET6, SOCK_DGRAM, port);
		fd[3] = nsd_bind_loopback(AF_INET6, SOCK_STREAM, port);
		for (int i = 0; i < 4; i++) {
			ok &= fd[i] >= 0;
			if (fd[i] >= 0)
				close(fd[i]);
		}
		if (!ok)
			port = 0;
	}
	cr_assert_neq(port, 0, "no port free on both loopback addresses");
	return port;
}

/* The query "ZONE SOA IN" with id NSD_PROBE_ID in q; its length. */
static size_t
probe_query(unsigned char q[NSD_PROBE_MAX])
{
	size_t n = NSD_HDR_LEN;
	const char *label = nsd.zone;

	memset(q, 0, NSD_HDR_LEN);
	q[0] = NSD_PROBE_ID >> 8;
	q[1] = NSD_PROBE_ID & 0xff;
	q[5] = 1; /* one question */
	while (*label != '\0') {
		size_t len = strcspn(label, ".");

		q[n++] = (unsigned char)len;
		memcpy(q + n, label, len);
		n += len;
		label += len + (label[len] == '.');
	}
	q[n++] = 0;
	q[n++] = 0;
	q[n++] = NSD_TYPE_SOA;
	q[n++] = 0;
	q[n++] = NSD_CLASS_IN;
	return n;
}

/* Does NSD answer the zone's SOA (NOERROR: the zone is loaded) on family's loopback? */
static bool
nsd_answers(int family)
{
	unsigned char q[NSD_PROBE_MAX], r[512];
	size_t qlen = probe_query(q);
	struct sockaddr_storage ss;
	socklen_t len = loopback_sa(family, nsd.port, &ss);
	int fd = socket(family, SOCK_DGRAM, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	bool ok = false;

	cr_assert_geq(fd, 0);
	if (connect(fd, (struct sockaddr *)&ss, len) == 0 &&
	    send(fd, q, qlen, 0) == (ssize_t)qlen && poll(&p, 1, 100) == 1)
		ok = recv(fd, r, sizeof(r), 0) >= NSD_HDR_LEN && r[0] == q[0] && r[1] == q[1] &&
		     (r[2] & NSD_FLAG_QR) && (r[3] & NSD_RCODE_MASK) == 0;
	close(fd);
	return ok;
}

static void
nsd_spawn(void)
{
	pid_t parent = getpid();
	int fd;

	nsd.pid = fork();
	cr_assert_geq(nsd.pid, 0);
	if (nsd.pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		fd = open(nsd_file("nsd.out"), O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(NSD_BIN, "nsd", "-d", "-c", nsd_file("nsd.conf"), (char *)NULL);
		_exit(127);
	}
	setpgid(nsd.pid, nsd.pid); /* as the child does: no race with nsd_stop() */
}

static bool
nsd_wait_ready(void)
{
	uint64_t end = timer_now_ms() + NSD_START_MS;
	int st;

	while (timer_now_ms() < end) {
		if (waitpid(nsd.pid, &st, WNOHANG) == nsd.pid) /* exited: port taken? */
			return false;
		if (nsd_answers(AF_INET) && nsd_answers(AF_INET6))
			return true;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return false;
}

/* Wait for every process of NSD's group (reparented to us: subreaper). */
static bool
nsd_reap(int ms)
{
	uint64_t end = timer_now_ms() + (uint64_t)ms;
	int st;

	while (timer_now_ms() < end) {
		pid_t r = waitpid(-nsd.pid, &st, WNOHANG);

		if (r < 0 && errno == ECHILD)
			return true;
		if (r == 0)
			nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return false;
}

void
nsd_stop(void)
{
	if (nsd.pid > 0) {
		kill(-nsd.pid, SIGTERM);
		if (!nsd_reap(NSD_STOP_MS)) {
			kill(-nsd.pid, SIGKILL);
			nsd_reap(NSD_STOP_MS);
		}
		nsd.pid = 0;
	}
	if (nsd.dir[0] != '\0') {
		test_rm_tree(nsd.dir);
		nsd.dir[0] = '\0';
	}
	if (nsd.silent_fd >= 0)
		close(nsd.silent_fd);
	nsd.silent_fd = -1;
}

/* NSD's own log and its stdout/stderr, for a start that failed. */
static void
nsd_print_logs(void)
{
	static const char *const files[] = {"nsd.log", "nsd.out"};
	char line[512];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f = fopen(nsd_file(files[i]), "r");

		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			cr_log_error("%s: %s", files[i], line);
		if (f != NULL)
			fclose(f);
	}
}

void
nsd_start_or_skip(const char *zone, nsd_zone_fn *write_zone)
{
	if (access(NSD_BIN, X_OK) != 0)
		cr_skip_test("NSD is not installed (tools/install-deps.sh installs nsd)");
	cr_assert_lt(strlen(zone), sizeof(nsd.zone));
	snprintf(nsd.zone, sizeof(nsd.zone), "%s", zone);
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	snprintf(nsd.dir, sizeof(nsd.dir), "/tmp/sluice-dns-XXXXXX");
	cr_assert_not_null(mkdtemp(nsd.dir));
	for (int attempt = 0; attempt < 5; attempt++) {
		nsd.port = free_port();
		nsd_write_files(write_zone);
		nsd_spawn();
		if (nsd_wait_ready())
			return;
		kill(-nsd.pid, SIGKILL); /* a parallel test took the port, most likely */
		nsd_reap(NSD_STOP_MS);
		nsd.pid = 0;
	}
	nsd_print_logs();
	cr_assert_fail("NSD did not answer on 127.0.0.1 and ::1");
}

uint16_t
nsd_port(void)
{
	return nsd.port;
}

struct dns_server
nsd_loopback(int family, uint16_t port)
{
	struct dns_server s = {.family = family, .port = port};

	if (family == AF_INET)
		s.addr.v4.s_addr = htonl(INADDR_LOOPBACK);
	else
		s.addr.v6 = in6addr_loopback;
	return s;
}

struct dns_server
nsd_silent_server(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (nsd.silent_fd < 0)
		nsd.silent_fd = nsd_bind_loopback(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(nsd.silent_fd, 0);
	cr_assert_eq(getsockname(nsd.silent_fd, (struct sockaddr *)&sa, &len), 0);
	return nsd_loopback(AF_INET, ntohs(sa.sin_port));
}

/* --- the owner side of core/dns --- */

void
nsd_owner_watch(void *ctx, int fd, unsigned events)
{
	struct nsd_owner *o = ctx;
	unsigned i;

	if (events & POLLOUT)
		o->pollout_seen++;
	for (i = 0; i < o->nfds && o->fds[i].fd != fd; i++)
		;
	if (events == 0) {
		cr_assert_lt(i, o->nfds, "stop watching an fd never watched");
		o->fds[i] = o->fds[--o->nfds];
		return;
	}
	if (i == o->nfds) {
		cr_assert_lt(o->nfds, NSD_OWNER_MAX_FDS);
		o->nfds++;
	}
	o->fds[i] = (struct pollfd){.fd = fd, .events = (short)events};
}

void
nsd_owner_poll(struct nsd_owner *o, struct dns *d)
{
	struct pollfd fds[NSD_OWNER_MAX_FDS];
	unsigned n = o->nfds;
	int t = dns_timeout_ms(d);

	memcpy(fds, o->fds, n * sizeof(fds[0])); /* on_ready may change the table */
	if (t < 0 || t > NSD_POLL_MAX_MS)
		t = NSD_POLL_MAX_MS;
	cr_assert(poll(fds, n, t) >= 0 || errno == EINTR);
	for (unsigned i = 0; i < n; i++)
		if (fds[i].revents != 0)
			dns_on_ready(d, fds[i].fd, (unsigned)fds[i].revents);
}

void
nsd_owner_round(struct nsd_owner *o, struct dns *d, const uint64_t *clock_ms,
		nsd_dispatch_fn *dispatch)
{
	dispatch();
	nsd_owner_poll(o, d);
	dns_tick(d, *clock_ms);
}

bool
nsd_owner_run_until(struct nsd_owner *o, struct dns *d, const uint64_t *clock_ms,
		    nsd_dispatch_fn *dispatch, const unsigned *count, unsigned want,
		    uint64_t budget_ms)
{
	uint64_t end = timer_now_ms() + budget_ms;

	dispatch();
	while (*count < want && timer_now_ms() < end)
		nsd_owner_round(o, d, clock_ms, dispatch);
	return *count >= want;
}

bool
nsd_owner_run_idle(struct nsd_owner *o, struct dns *d, const uint64_t *clock_ms,
		   nsd_dispatch_fn *dispatch, uint64_t budget_ms)
{
	uint64_t end = timer_now_ms() + budget_ms;

	while (dns_timeout_ms(d) >= 0 && timer_now_ms() < end)
		nsd_owner_round(o, d, clock_ms, dispatch);
	dispatch();
	return dns_timeout_ms(d) < 0;
}
