/*
 * test_zonectl.c -- core/server/zonectl: the built-in and file tables, hot
 * reload by signal, in-place rewrite and rename-over, refusal of a broken
 * file, and the epoch guarantee: a snapshot keeps its table across reloads
 * until it leaves, then the table is freed; a reader thread racing 50
 * reloads only ever sees whole tables.
 *
 * Each test makes its own directory under /tmp and removes it. Every wait
 * is bounded (WAIT_MS); nothing sleeps for a fixed time except where a test
 * checks that something did NOT happen.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/logring.h"
#include "core/server/zonectl.h"
#include "route/zone.h"

#define WAIT_MS	    5000      /* upper bound of every wait for the loader */
#define LOG_RING    (1 << 15) /* below a pipe's capacity: drain() never blocks */
#define RELOADS	    50	      /* table swaps in the reader-thread race, at least */
#define MAX_RELOADS 5000      /* ... and at most, while the reader runs */
#define SNAPSHOTS   200000    /* the reader thread's enter/leave rounds */

/* Version 0 and 1 of the race's file: every field tells which one it is. */
static const char *const versions[2] = {
    "zone example.com\n"
    "alice@example.com forward a@one.test\n"
    "bob@example.com forward b@one.test\n"
    "verified-domain one.test\n",
    "zone example.com\n"
    "zone other.test\n"
    "alice@example.com forward a@two.test\n"
    "bob@example.com forward b@two.test\n"
    "carol@other.test forward c@two.test\n"
    "verified-domain two.test\n",
};

struct fixture {
	char dir[64];	     /* mkdtemp'd under /tmp */
	char path[PATH_MAX]; /* DIR/zones.txt */
	struct logring log;  /* the loader's lines */
	struct zone_reader reader;
};

static void
fixture_init(struct fixture *f)
{
	strcpy(f->dir, "/tmp/test_zonectl.XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/zones.txt", f->dir);
	cr_assert_eq(logring_init(&f->log, LOG_RING), 0);
}

/* Every name a test may leave behind (the temporary one is normally renamed away). */
static const char *const file_names[] = {"zones.txt", ".zones.txt.new", "zones.txt.bak"};

static void
fixture_fini(struct fixture *f)
{
	char name[PATH_MAX];

	logring_fini(&f->log);
	for (size_t i = 0; i < sizeof(file_names) / sizeof(file_names[0]); i++) {
		snprintf(name, sizeof(name), "%s/%s", f->dir, file_names[i]);
		unlink(name);
	}
	cr_assert_eq(rmdir(f->dir), 0, "%s", f->dir);
}

/* Rewrite in place: open with O_TRUNC, write, close (IN_CLOSE_WRITE). */
static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	cr_assert_not_null(fp, "%s", path);
	cr_assert_eq(fputs(text, fp) >= 0, true);
	cr_assert_eq(fclose(fp), 0);
}

/* Replace atomically: a temporary file in the same directory, renamed over (IN_MOVED_TO). */
static void
replace_file(const struct fixture *f, const char *text)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s/.zones.txt.new", f->dir);
	write_file(tmp, text);
	cr_assert_eq(rename(tmp, f->path), 0);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Wait as sluice's control thread does: hand file changes (inotify) to the loader. */
static void
control_wait_ms(long ms)
{
	zonectl_watch_ready();
	sleep_ms(ms);
	zonectl_watch_ready();
}

/* First destination of addr's decision on t into out ("" when not a forward). */
static void
route(const struct zone_table *t, const char *addr, char *out, size_t cap)
{
	static struct zone_decision d; /* 100 KiB: not on the stack; main thread only */

	zone_lookup(t, addr, strlen(addr), &d);
	snprintf(out, cap, "%s", d.action == ZONE_FORWARD ? d.groups[0].d[0].addr : "");
}

/* Where the table published right now sends addr. */
static void
route_now(struct zone_reader *r, const char *addr, char *out, size_t cap)
{
	struct zone_snap snap;

	route(zonectl_enter(r, &snap), addr, out, cap);
	zonectl_leave(r, &snap);
}

/* Wait (bounded) until the published table sends addr to dest. */
static bool
wait_route(struct zone_reader *r, const char *addr, const char *dest)
{
	char got[ZONE_MAX_ADDR];

	for (int ms = 0; ms < WAIT_MS; ms += 2) {
		route_now(r, addr, got, sizeof(got));
		if (strcmp(got, dest) == 0)
			return true;
		control_wait_ms(2);
	}
	return false;
}

/* Wait (bounded) until *counter() >= want. */
static bool
wait_count(uint64_t (*counter)(void), uint64_t want)
{
	for (int ms = 0; ms < WAIT_MS; ms += 2) {
		if (counter() >= want)
			return true;
		control_wait_ms(2);
	}
	return counter() >= want;
}

/* Every old table freed: loads == frees (bounded wait). */
static bool
wait_all_freed(void)
{
	for (int ms = 0; ms < WAIT_MS; ms += 2) {
		if (zonectl_frees() == zonectl_loads())
			return true;
		control_wait_ms(2);
	}
	return false;
}

/* Append what the loader logged so far to out (NUL-terminated). */
static void
drain_log(struct logring *r, char *out, size_t cap)
{
	size_t have = strlen(out);
	int fds[2];
	ssize_t got;

	cr_assert_eq(pipe(fds), 0);
	logring_drain(r, fds[1]);
	close(fds[1]);
	got = read(fds[0], out + have, cap - have - 1);
	close(fds[0]);
	cr_assert_geq(got, 0);
	out[have + (size_t)got] = '\0';
}

/* Wait (bounded) until the loader's log holds needle; the log read so far stays in out. */
static bool
wait_log(struct logring *r, const char *needle, char *out, size_t cap)
{
	for (int ms = 0; ms < WAIT_MS; ms += 2) {
		drain_log(r, out, cap);
		if (strstr(out, needle) != NULL)
			return true;
		control_wait_ms(2);
	}
	return false;
}

static void
start_with_file(struct fixture *f, const char *text)
{
	char err[1024];

	fixture_init(f);
	write_file(f->path, text);
	cr_assert_eq(zonectl_init(f->path, err, sizeof(err)), 0, "%s", err);
	zonectl_reader_init(&f->reader);
	cr_assert_eq(zonectl_start(&f->log), 0);
}

static void
stop(struct fixture *f)
{
	zonectl_stop();
	fixture_fini(f);
}

Test(zonectl, builtin_zones_route_example_com_to_the_sink)
{
	static const char *const paths[] = {NULL, ""};
	char err[256], got[ZONE_MAX_ADDR];
	struct zone_reader r;

	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(zonectl_init(paths[i], err, sizeof(err)), 0, "%s", err);
		zonectl_reader_init(&r);
		route_now(&r, "alice@example.com", got, sizeof(got));
		cr_assert_str_eq(got, "inbox@sink.test");
		route_now(&r, "alice@elsewhere.test", got, sizeof(got));
		cr_assert_str_eq(got, "", "not our domain: refused");
		zonectl_stop();
	}
}

Test(zonectl, init_loads_a_file_and_refuses_a_broken_one_whole)
{
	struct fixture f;
	char err[1024], want[PATH_MAX + 64], got[ZONE_MAX_ADDR];

	fixture_init(&f);
	write_file(f.path, "zone a.test\nx@a.test explode\n");
	cr_assert_lt(zonectl_init(f.path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s:2: unknown action 'explode'", f.path);
	cr_assert_str_eq(err, want);

	write_file(f.path, versions[0]);
	cr_assert_eq(zonectl_init(f.path, err, sizeof(err)), 0, "%s", err);
	zonectl_reader_init(&f.reader);
	route_now(&f.reader, "alice@example.com", got, sizeof(got));
	cr_assert_str_eq(got, "a@one.test");
	stop(&f);
}

Test(zonectl, a_snapshot_keeps_its_table_across_reloads_until_it_leaves)
{
	struct fixture f;
	struct zone_snap old;
	char got[ZONE_MAX_ADDR];

	start_with_file(&f, versions[0]);
	zonectl_enter(&f.reader, &old);

	write_file(f.path, versions[1]);
	zonectl_reload();
	cr_assert(wait_route(&f.reader, "alice@example.com", "a@two.test"));
	/* more swaps, each followed by ck_epoch_poll, then time for the loader's
	 * periodic polls: a wrong free would have happened by now */
	replace_file(&f, versions[0]);
	zonectl_reload();
	cr_assert(wait_route(&f.reader, "alice@example.com", "a@one.test"));
	replace_file(&f, versions[1]);
	zonectl_reload();
	cr_assert(wait_route(&f.reader, "alice@example.com", "a@two.test"));
	control_wait_ms(500);

	cr_assert_geq(zonectl_loads(), 3);
	cr_assert_lt(zonectl_frees(), zonectl_loads(), "the snapshot's table is still held");
	route(old.table, "alice@example.com", got, sizeof(got));
	cr_assert_str_eq(got, "a@one.test", "the old snapshot still routes by the old rules");
	route(old.table, "carol@other.test", got, sizeof(got));
	cr_assert_str_eq(got, "", "the old table has no other.test zone");
	cr_assert_eq(zone_table_nzones(old.table), 1);

	zonectl_leave(&f.reader, &old);
	cr_assert(wait_all_freed(), "frees %lu of %lu loads", (unsigned long)zonectl_frees(),
		  (unsigned long)zonectl_loads());
	stop(&f);
}

/* Rename a new version over the file and wait for its load (inotify only: one load each). */
static void
swap_to(struct fixture *f, int version, uint64_t loads)
{
	replace_file(f, versions[version]);
	cr_assert(wait_count(zonectl_loads, loads));
	cr_assert_eq(zonectl_loads(), loads);
}

/*
 * A shard always has some transaction open. With epoch sections the oldest
 * table is freed once the transactions that hold it have ended, even though
 * newer ones are still open (plain nested ck_epoch_begin would pin the
 * record to its first epoch, and nothing would ever be freed).
 */
Test(zonectl, overlapping_snapshots_on_one_reader_each_keep_their_table)
{
	struct fixture f;
	struct zone_snap s1, s2, s3;
	char got[ZONE_MAX_ADDR];

	start_with_file(&f, versions[0]);
	zonectl_enter(&f.reader, &s1); /* T0 */
	swap_to(&f, 1, 1);
	zonectl_enter(&f.reader, &s2); /* T1 */
	swap_to(&f, 0, 2);
	zonectl_enter(&f.reader, &s3); /* T2 */

	zonectl_leave(&f.reader, &s1); /* the oldest transaction ends first */
	swap_to(&f, 1, 3);
	cr_assert(wait_count(zonectl_frees, 1), "T0 is freed while s2 and s3 are open");
	control_wait_ms(500); /* the loader's periodic polls: a wrong free would have happened */
	cr_assert_eq(zonectl_frees(), 1, "T1 and T2 are still held");
	route(s2.table, "alice@example.com", got, sizeof(got));
	cr_assert_str_eq(got, "a@two.test");
	route(s3.table, "alice@example.com", got, sizeof(got));
	cr_assert_str_eq(got, "a@one.test");
	route_now(&f.reader, "alice@example.com", got, sizeof(got));
	cr_assert_str_eq(got, "a@two.test");

	zonectl_leave(&f.reader, &s3);
	zonectl_leave(&f.reader, &s2);
	cr_assert(wait_all_freed());
	stop(&f);
}

Test(zonectl, rename_over_the_file_is_loaded_without_a_signal)
{
	struct fixture f;
	char log[8192] = "";

	start_with_file(&f, versions[0]);
	replace_file(&f, versions[1]);
	cr_assert(wait_route(&f.reader, "alice@example.com", "a@two.test"));
	cr_assert(wait_log(&f.log, "\"outcome\":\"loaded\"", log, sizeof(log)));
	cr_assert_not_null(strstr(log, "\"trigger\":\"inotify\""), "%s", log);
	cr_assert_not_null(strstr(log, "\"zones\":2,\"rules\":3,"), "%s", log);
	cr_assert_eq(zonectl_refusals(), 0);
	stop(&f);
}

/* DIR/NAME -> TARGET */
static void
link_at(const char *dir, const char *name, const char *target)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(symlink(target, path), 0, "%s", path);
}

/* DIR/SUB/zones.txt with text (DIR/SUB created). */
static void
write_in_subdir(const char *dir, const char *sub, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	cr_assert_eq(mkdir(path, 0700), 0, "%s", path);
	snprintf(path, sizeof(path), "%s/%s/zones.txt", dir, sub);
	write_file(path, text);
}

static void
unlink_at(const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(unlink(path) == 0 || rmdir(path) == 0, true, "%s", path);
}

/*
 * A Kubernetes ConfigMap volume: zones.txt -> ..data/zones.txt, ..data ->
 * ..v1; the update writes ..v2 and renames a ..data_tmp link over ..data.
 */
Test(zonectl, a_configmap_symlink_swap_is_loaded_without_a_signal)
{
	struct fixture f;
	char err[1024], path[PATH_MAX], log[8192] = "";

	fixture_init(&f);
	write_in_subdir(f.dir, "..v1", versions[0]);
	link_at(f.dir, "..data", "..v1");
	link_at(f.dir, "zones.txt", "..data/zones.txt");
	cr_assert_eq(zonectl_init(f.path, err, sizeof(err)), 0, "%s", err);
	zonectl_reader_init(&f.reader);
	cr_assert_eq(zonectl_start(&f.log), 0);

	write_in_subdir(f.dir, "..v2", versions[1]);
	link_at(f.dir, "..data_tmp", "..v2");
	snprintf(path, sizeof(path), "%s/..data_tmp", f.dir);
	snprintf(err, sizeof(err), "%s/..data", f.dir);
	cr_assert_eq(rename(path, err), 0);
	cr_assert(wait_route(&f.reader, "alice@example.com", "a@two.test"));
	cr_assert(wait_log(&f.log, "\"outcome\":\"loaded\"", log, sizeof(log)));
	cr_assert_not_null(strstr(log, "\"trigger\":\"inotify\""), "%s", log);
	zonectl_stop();
	unlink_at(f.dir, "..v1/zones.txt");
	unlink_at(f.dir, "..v1");
	unlink_at(f.dir, "..v2/zones.txt");
	unlink_at(f.dir, "..v2");
	unlink_at(f.dir, "..data");
	fixture_fini(&f); /* removes zones.txt (the link) and the directory */
}

Test(zonectl, in_place_rewrite_is_loaded_without_a_signal)
{
	struct fixture f;

	start_with_file(&f, versions[0]);
	write_file(f.path, versions[1]);
	cr_assert(wait_route(&f.reader, "alice@example.com", "a@two.test"));
	stop(&f);
}

Test(zonectl, other_files_in_the_directory_are_ignored)
{
	struct fixture f;
	char other[PATH_MAX];

	start_with_file(&f, versions[0]);
	snprintf(other, sizeof(other), "%s/zones.txt.bak", f.dir);
	write_file(other, versions[1]);
	/* longer than the debounce window: a reload would have happened */
	control_wait_ms(300);
	cr_assert_eq(zonectl_loads() + zonectl_refusals(), 0);
	stop(&f);
}

Test(zonectl, a_broken_file_is_refused_and_the_old_table_stays)
{
	struct fixture f;
	char log[8192] = "", want[PATH_MAX + 64], got[ZONE_MAX_ADDR];

	start_with_file(&f, versions[0]);
	write_file(f.path, "zone a.test\nx@a.test explode\n");
	zonectl_reload();
	cr_assert(wait_count(zonectl_refusals, 1));
	cr_assert(wait_log(&f.log, "\"outcome\":\"refused\"", log, sizeof(log)));
	snprintf(want, sizeof(want), "\"error\":\"%s:2: unknown action 'explode'\"", f.path);
	cr_assert_not_null(strstr(log, want), "%s", log);
	cr_assert_eq(zonectl_loads(), 0);
	route_now(&f.reader, "alice@example.com", got, sizeof(got));
	cr_assert_str_eq(got, "a@one.test");
	stop(&f);
}

Test(zonectl, reload_without_a_file_is_a_logged_no_op)
{
	struct logring ring;
	char err[256], log[4096] = "";

	cr_assert_eq(logring_init(&ring, LOG_RING), 0);
	cr_assert_eq(zonectl_init(NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(zonectl_start(&ring), 0);
	zonectl_reload();
	cr_assert(wait_log(&ring, "\"reason\":\"no zones file\"", log, sizeof(log)));
	cr_assert_not_null(strstr(log, "\"outcome\":\"skipped\""), "%s", log);
	cr_assert_eq(zonectl_loads() + zonectl_refusals(), 0);
	zonectl_stop();
	logring_fini(&ring);
}

Test(zonectl, init_start_stop_runs_several_rounds)
{
	for (int round = 0; round < 3; round++) {
		struct fixture f;
		char got[ZONE_MAX_ADDR];

		start_with_file(&f, versions[round % 2]);
		cr_assert_eq(zonectl_loads(), 0, "counters restart with each round");
		replace_file(&f, versions[(round + 1) % 2]);
		zonectl_reload();
		cr_assert(wait_count(zonectl_loads, 1));
		route_now(&f.reader, "bob@example.com", got, sizeof(got));
		cr_assert_str_eq(got, round % 2 ? "b@one.test" : "b@two.test");
		stop(&f);
	}
}

/* The reader thread of the race: counts, never asserts (Criterion asserts on the main thread). */
struct race {
	struct zone_reader reader;
	atomic_bool done; /* set by the reader after SNAPSHOTS rounds */
	uint64_t seen[2]; /* snapshots of each version */
	uint64_t torn;	  /* snapshots mixing versions, or unknown routes */
};

/* Which version t is (0 or 1), or -1 when its answers do not agree. */
static int
version_of(const struct zone_table *t, struct zone_decision *d)
{
	static const char *const alice[2] = {"a@one.test", "a@two.test"};
	static const char *const bob[2] = {"b@one.test", "b@two.test"};
	int v;

	zone_lookup(t, "alice@example.com", 17, d);
	if (d->action != ZONE_FORWARD)
		return -1;
	v = strcmp(d->groups[0].d[0].addr, alice[0]) == 0   ? 0
	    : strcmp(d->groups[0].d[0].addr, alice[1]) == 0 ? 1
							    : -1;
	if (v < 0 || zone_table_nzones(t) != (size_t)v + 1)
		return -1;
	zone_lookup(t, "bob@example.com", 15, d);
	if (d->action != ZONE_FORWARD || strcmp(d->groups[0].d[0].addr, bob[v]) != 0)
		return -1;
	return v;
}

static void *
race_reader(void *arg)
{
	struct race *r = arg;
	struct zone_decision *d = malloc(sizeof(*d)); /* 100 KiB: not on the stack */

	if (d == NULL) {
		r->torn = SNAPSHOTS; /* the test fails */
		atomic_store(&r->done, true);
		return NULL;
	}
	zonectl_reader_init(&r->reader);
	for (unsigned i = 0; i < SNAPSHOTS; i++) {
		struct zone_snap snap;
		const struct zone_table *t = zonectl_enter(&r->reader, &snap);
		int v = version_of(t, d);

		/* now and then hold the snapshot across a reload, like a slow DATA */
		if (v >= 0 && i % 4096 == 0) {
			sleep_ms(1);
			if (version_of(t, d) != v)
				v = -1;
		}
		zonectl_leave(&r->reader, &snap);
		if (v < 0)
			r->torn++;
		else
			r->seen[v]++;
	}
	free(d);
	atomic_store(&r->done, true);
	return NULL;
}

Test(zonectl, a_reader_thread_sees_only_whole_tables_while_they_swap)
{
	static struct race race; /* zeroed */
	struct fixture f;
	pthread_t th;
	int i;

	start_with_file(&f, versions[0]);
	cr_assert_eq(pthread_create(&th, NULL, race_reader, &race), 0);
	for (i = 1; i <= RELOADS || !atomic_load(&race.done); i++) {
		cr_assert_leq(i, MAX_RELOADS);
		replace_file(&f, versions[i % 2]);
		zonectl_reload();
		cr_assert(
		    wait_route(&f.reader, "alice@example.com", i % 2 ? "a@two.test" : "a@one.test"),
		    "reload %d", i);
	}
	cr_assert_eq(pthread_join(th, NULL), 0);

	cr_log_info("%d reloads; snapshots: %lu of version 0, %lu of version 1", i - 1,
		    (unsigned long)race.seen[0], (unsigned long)race.seen[1]);
	cr_assert_eq(race.torn, 0, "%lu torn of %d", (unsigned long)race.torn, SNAPSHOTS);
	cr_assert_gt(race.seen[0], 0);
	cr_assert_gt(race.seen[1], 0);
	cr_assert_geq(zonectl_loads(), RELOADS);
	cr_assert(wait_all_freed(), "frees %lu of %lu loads", (unsigned long)zonectl_frees(),
		  (unsigned long)zonectl_loads());
	stop(&f);
}
