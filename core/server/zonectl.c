/*
 * zonectl.c -- the published zone table, the shards' epoch sections on it,
 * and the loader thread that reloads it.
 *
 * One process-wide state (struct zonectl zc below): every shard routes
 * with the same table. Who writes what:
 *   - zonectl_init/start/stop: the control thread, with no loader running
 *     (init, stop) or before it runs (start);
 *   - the loader thread: the only one that swaps the pointer and calls
 *     ck_epoch_call/ck_epoch_poll on its own record, hence the only one that
 *     advances the global epoch;
 *   - the shards: zonectl_enter/leave on their own records only;
 *   - the control thread also reads the inotify descriptor (it owns the
 *     process's event sources: signals, file changes) and forwards a
 *     change to the loader through an eventfd.
 *
 * Design decisions:
 *   - ck_epoch rather than a reference count on the table: a refcount is one
 *     cache line written by every transaction of every shard; an epoch
 *     section writes only the shard's own record.
 *   - Sections (ck_epoch_begin with a ck_epoch_section_t) rather than plain
 *     nesting: a shard always has some transaction open, so its record is
 *     never idle. Without sections a nested begin keeps the record's oldest
 *     epoch forever and nothing retired would ever be freed; with them the
 *     record moves to the newer epoch once its older sections have ended.
 *   - Loading on a thread of its own, not in the control loop: a 1M-zone
 *     file takes seconds to load, and the control thread must keep
 *     draining the shards' logs meanwhile.
 *   - inotify on the directory rather than the file: an atomic rename over
 *     the file replaces its inode, which a watch on the file would lose.
 */
#include "core/server/zonectl.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <ck_epoch.h>

#include "core/check.h"
#include "core/jlog.h"

#define ZONECTL_TICK_MS	    200 /* ck_epoch_poll period while old tables wait to be freed */
#define ZONECTL_DEBOUNCE_MS 50	/* file events gathered into one reload after the first */
#define ZONECTL_MAX_ERR	    (PATH_MAX + 1024) /* "PATH:LINE: reason" */
#define ZONECTL_MAX_LOG	    (2 * ZONECTL_MAX_ERR)

const char zonectl_default_zones[] =
    "# built-in zones: used when no zones file is configured (the `make run` demo)\n"
    "zone example.com\n"
    "*@example.com forward inbox@sink.test\n"
    "verified-domain sink.test\n";

/* An old table waiting for its readers to leave (ck_epoch_call's entry). */
struct retired_table {
	ck_epoch_entry_t entry;	  /* queued on zc.loader_rec */
	struct zone_table *table; /* owned: freed by retired_free() */
};
CK_EPOCH_CONTAINER(struct retired_table, entry, retired_of)

static struct zonectl {
	ck_epoch_t epoch;		    /* the readers' epoch domain */
	ck_epoch_record_t loader_rec;	    /* owned by the loader thread while it runs */
	_Atomic(struct zone_table *) table; /* published; owned here; NULL before init */
	char path[PATH_MAX];		    /* the zones file; "" = built-in zones */
	char dir[PATH_MAX];		    /* its directory, watched by inotify */
	const char *base;		    /* its file name: points into path */
	struct logring *log;		    /* not owned; the loader thread is its producer */
	pthread_t thread;		    /* the loader, valid while running */
	bool live;			    /* between zonectl_init and zonectl_stop */
	bool running;			    /* the loader thread exists */
	int stop_fd;			    /* eventfd: the loader exits; -1 when not running */
	int reload_fd;			    /* eventfd: zonectl_reload(); -1 when not running */
	int watch_fd;			    /* inotify, read on the control thread; -1 if none */
	int changed_fd;			    /* eventfd: the control thread saw the file change */
	uint64_t retired;		    /* tables handed to ck_epoch; loader thread */
	_Atomic uint64_t loads;		    /* reloads that swapped the table */
	_Atomic uint64_t refusals;	    /* reloads refused (old table kept) */
	_Atomic uint64_t frees;		    /* retired tables freed, <= retired */
} zc = {.stop_fd = -1, .reload_fd = -1, .watch_fd = -1, .changed_fd = -1};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Old tables handed to ck_epoch and not freed yet. */
static uint64_t
pending_frees(void)
{
	return zc.retired - atomic_load(&zc.frees);
}

/* ck_epoch callback: no section that could see the table is open any more. */
static void
retired_free(ck_epoch_entry_t *e)
{
	struct retired_table *r = retired_of(e);

	zone_table_free(r->table);
	r->table = NULL;
	free(r);
	atomic_fetch_add(&zc.frees, 1);
}

/* Keep path, and split it into the directory to watch and the name to match. */
static int
set_path(const char *path, char *err, size_t errlen)
{
	const char *slash;

	if (strlen(path) >= sizeof(zc.path)) {
		snprintf(err, errlen, "%s: file name too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(zc.path, path);
	slash = strrchr(zc.path, '/');
	if (slash == NULL) {
		strcpy(zc.dir, ".");
		zc.base = zc.path;
	} else {
		size_t n = slash == zc.path ? 1 : (size_t)(slash - zc.path);

		memcpy(zc.dir, zc.path, n);
		zc.dir[n] = '\0';
		zc.base = slash + 1;
	}
	return 0;
}

int
zonectl_init(const char *path, char *err, size_t errlen)
{
	struct zone_table *t;
	int ret;

	BUG_ON(zc.live);
	if (path == NULL)
		path = "";
	ret = set_path(path, err, errlen);
	if (ret < 0)
		return ret;
	if (path[0] != '\0')
		ret = zone_table_load(path, &t, err, errlen);
	else
		ret =
		    zone_table_load_string(zonectl_default_zones, sizeof(zonectl_default_zones) - 1,
					   "built-in zones", &t, err, errlen);
	if (ret < 0)
		return ret;

	/* a fresh domain each round: records of an earlier round are forgotten */
	ck_epoch_init(&zc.epoch);
	ck_epoch_register(&zc.epoch, &zc.loader_rec, NULL);
	zc.retired = 0;
	atomic_store(&zc.loads, 0);
	atomic_store(&zc.refusals, 0);
	atomic_store(&zc.frees, 0);
	atomic_store_explicit(&zc.table, t, memory_order_release);
	zc.live = true;
	return 0;
}

/* One JSON line per reload attempt into the loader's ring. */
static void
log_reload(const char *trigger, const char *outcome, const struct zone_table *t, uint64_t ns,
	   const char *error)
{
	char line[ZONECTL_MAX_LOG];
	struct jlog j;
	size_t n;

	jlog_begin(&j, line, sizeof(line), "zones");
	jlog_cstr(&j, "outcome", outcome);
	jlog_cstr(&j, "trigger", trigger);
	jlog_cstr(&j, "file", zc.path);
	if (t != NULL) {
		jlog_u64(&j, "zones", zone_table_nzones(t));
		jlog_u64(&j, "rules", zone_table_nrules(t));
		jlog_u64(&j, "memory_bytes", zone_table_memory(t));
	}
	jlog_ms(&j, "load_ms", ns);
	if (error != NULL)
		jlog_cstr(&j, "error", error);
	jlog_u64(&j, "pending_frees", pending_frees());
	n = jlog_end(&j);
	logring_put(zc.log, line, n);
}

/*
 * Publish t and hand the table it replaces to ck_epoch. The release store
 * makes t's contents visible to a reader whose acquire load sees t; a
 * reader that still sees the old table is in a section, which holds
 * ck_epoch off it.
 */
static void
publish(struct zone_table *t, struct retired_table *r)
{
	r->table = atomic_load_explicit(&zc.table, memory_order_relaxed);
	atomic_store_explicit(&zc.table, t, memory_order_release);
	zc.retired++;
	ck_epoch_call(&zc.loader_rec, &r->entry, retired_free);
	ck_epoch_poll(&zc.loader_rec);
}

/* Load the file again; swap on success, keep the old table on any error. */
static void
reload(const char *trigger)
{
	char err[ZONECTL_MAX_ERR];
	struct retired_table *r;
	struct zone_table *t;
	uint64_t t0 = now_ns();
	int ret;

	if (zc.path[0] == '\0') {
		char line[JLOG_MIN_CAP * 2];
		struct jlog j;

		jlog_begin(&j, line, sizeof(line), "zones");
		jlog_cstr(&j, "outcome", "skipped");
		jlog_cstr(&j, "trigger", trigger);
		jlog_cstr(&j, "reason", "no zones file");
		logring_put(zc.log, line, jlog_end(&j));
		return;
	}
	ret = zone_table_load(zc.path, &t, err, sizeof(err));
	if (ret < 0)
		goto err_refuse;
	/* allocated before the swap: once swapped, the old table must be queued */
	r = malloc(sizeof(*r));
	if (r == NULL) {
		snprintf(err, sizeof(err), "%s: %s", zc.path, strerror(ENOMEM));
		goto err_table;
	}
	publish(t, r);
	atomic_fetch_add(&zc.loads, 1);
	log_reload(trigger, "loaded", t, now_ns() - t0, NULL);
	return;

err_table:
	zone_table_free(t);
	t = NULL;
err_refuse:
	atomic_fetch_add(&zc.refusals, 1);
	log_reload(trigger, "refused", NULL, now_ns() - t0, err);
}

/*
 * Kubernetes mounts a ConfigMap as DIR/zones -> ..data/zones, ..data being a
 * symlink to a timestamped directory; an update renames a new ..data_tmp
 * link over ..data. Nothing happens to "zones" itself, so that rename
 * counts as a change of the file too.
 */
#define ZONECTL_K8S_DATA "..data"

/* Read every queued inotify event; true if one names our file (or ..data). */
static bool
watch_drain(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;

	while ((n = read(zc.watch_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			/* an overflowed queue may have lost our event: reload to be sure */
			if ((ev->mask & IN_Q_OVERFLOW) ||
			    (ev->len > 0 && (strcmp(ev->name, zc.base) == 0 ||
					     strcmp(ev->name, ZONECTL_K8S_DATA) == 0)))
				ours = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return ours;
}

/* poll(2) timeout: the debounce deadline, the free tick, or none. */
static int
loader_timeout(uint64_t due)
{
	if (due != 0) {
		uint64_t now = now_ns();

		return due <= now ? 0 : (int)((due - now + 999999) / 1000000);
	}
	return pending_frees() > 0 ? ZONECTL_TICK_MS : -1;
}

static void *
loader_main(void *arg)
{
	uint64_t due = 0; /* monotonic ns when a file change gets loaded; 0 = none */

	(void)arg;
	for (;;) {
		struct pollfd pfd[] = {
		    {.fd = zc.stop_fd, .events = POLLIN},
		    {.fd = zc.reload_fd, .events = POLLIN},
		    {.fd = zc.changed_fd, .events = POLLIN},
		};
		eventfd_t v;

		if (poll(pfd, ARRAY_SIZE(pfd), loader_timeout(due)) < 0)
			continue; /* EINTR or ENOMEM: nothing was reported; wait again */
		if (pfd[0].revents != 0)
			break;
		/* a window from the first event, not from the last: a file
		 * rewritten without pause still gets loaded */
		if ((pfd[2].revents & POLLIN) && eventfd_read(zc.changed_fd, &v) == 0 && due == 0)
			due = now_ns() + ZONECTL_DEBOUNCE_MS * 1000000ull;
		if ((pfd[1].revents & POLLIN) && eventfd_read(zc.reload_fd, &v) == 0) {
			reload("signal");
			due = 0; /* that load read every change notified so far */
		} else if (due != 0 && now_ns() >= due) {
			reload("inotify");
			due = 0;
		}
		if (pending_frees() > 0)
			ck_epoch_poll(&zc.loader_rec);
	}
	return NULL;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
close_fds(void)
{
	close_fd(&zc.stop_fd);
	close_fd(&zc.reload_fd);
	close_fd(&zc.watch_fd);
	close_fd(&zc.changed_fd);
}

int
zonectl_start(struct logring *log)
{
	sigset_t all, old;
	int ret;

	BUG_ON(!zc.live || zc.running);
	zc.log = log;
	zc.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	zc.reload_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	zc.changed_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (zc.stop_fd < 0 || zc.reload_fd < 0 || zc.changed_fd < 0)
		goto err_fds;
	if (zc.path[0] != '\0') {
		zc.watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (zc.watch_fd < 0 ||
		    inotify_add_watch(zc.watch_fd, zc.dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
			goto err_fds;
	}
	/* signals belong to the control thread's signalfd, never to the loader */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&zc.thread, NULL, loader_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		errno = ret;
		goto err_fds;
	}
	zc.running = true;
	return 0;

err_fds:
	ret = -errno;
	close_fds();
	return ret;
}

int
zonectl_watch_fd(void)
{
	return zc.watch_fd;
}

void
zonectl_watch_ready(void)
{
	if (zc.watch_fd >= 0 && watch_drain())
		(void)eventfd_write(zc.changed_fd, 1);
}

void
zonectl_reload(void)
{
	if (zc.reload_fd >= 0)
		(void)eventfd_write(zc.reload_fd, 1);
}

void
zonectl_stop(void)
{
	if (!zc.live)
		return;
	if (zc.running) {
		(void)eventfd_write(zc.stop_fd, 1);
		pthread_join(zc.thread, NULL);
		zc.running = false;
	}
	close_fds();
	/*
	 * No reader is in a section (contract), so every deferred free may run
	 * now: reclaim without scanning the readers' records, which would hang
	 * on a record a dead thread left active.
	 */
	ck_epoch_reclaim(&zc.loader_rec);
	zone_table_free(atomic_exchange(&zc.table, NULL));
	zc.log = NULL;
	zc.live = false;
}

uint64_t
zonectl_loads(void)
{
	return atomic_load(&zc.loads);
}

uint64_t
zonectl_refusals(void)
{
	return atomic_load(&zc.refusals);
}

uint64_t
zonectl_frees(void)
{
	return atomic_load(&zc.frees);
}

void
zonectl_reader_init(struct zone_reader *r)
{
	ck_epoch_register(&zc.epoch, &r->rec, NULL);
}

const struct zone_table *
zonectl_enter(struct zone_reader *r, struct zone_snap *snap)
{
	ck_epoch_begin(&r->rec, &snap->section);
	/* acquire: pairs with publish()'s release, so the table's contents are seen */
	snap->table = atomic_load_explicit(&zc.table, memory_order_acquire);
	ASSERT(snap->table != NULL);
	return snap->table;
}

void
zonectl_leave(struct zone_reader *r, struct zone_snap *snap)
{
	snap->table = NULL; /* a use after leave faults instead of reading a freed table */
	ck_epoch_end(&r->rec, &snap->section);
}
