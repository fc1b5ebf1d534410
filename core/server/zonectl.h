/*
 * zonectl.h -- the zone table the shards route with, and its hot reload.
 *
 * One table is published at a time through an atomic pointer. Shards read
 * it without locks: a transaction enters an epoch section (ck_epoch) at
 * MAIL, loads the pointer once, and keeps that snapshot until it ends, so
 * a reload never changes the rules under a transaction in progress. A
 * reload builds the new table off the shards (a loader thread: 1M zones
 * take seconds), swaps the pointer, and hands the old table to ck_epoch,
 * which frees it once no section that could see it is open.
 *
 * Reload triggers: zonectl_reload() (the control thread calls it on
 * SIGHUP) and a change of the file (inotify on its directory, so both an
 * in-place rewrite (IN_CLOSE_WRITE) and an atomic rename over it
 * (IN_MOVED_TO) count). A file with any error is refused whole: the old
 * table stays, and the log names FILE:LINE and the reason.
 *
 * Without a zones file the built-in demo table (zonectl_default_zones) is
 * used, so `make run` routes mail for example.com out of the box.
 */
#ifndef SLUICE_CORE_SERVER_ZONECTL_H
#define SLUICE_CORE_SERVER_ZONECTL_H

#include <ck_epoch.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/logring.h"
#include "route/zone.h"

/* The built-in zone file text used when no `zones` file is configured. */
extern const char zonectl_default_zones[];

/* One reader thread's epoch record (one per shard; registered once). */
struct zone_reader {
	ck_epoch_record_t rec;
};

/* A transaction's hold on one table: valid from zonectl_enter to zonectl_leave. */
struct zone_snap {
	ck_epoch_section_t section;
	const struct zone_table *table; /* never NULL while held */
};

/*
 * Load the first table (path, or the built-in zones when path is NULL or
 * empty) and publish it. Start-up only; blocking. 0, or a negative code
 * with err = "PATH:LINE: reason" (nothing started).
 */
int zonectl_init(const char *path, char *err, size_t errlen);

/*
 * Start the loader thread and the file watch (when there is a file): the
 * loader serves zonectl_reload() and the changes zonectl_watch_ready()
 * reports. Its log lines go to `log` (not owned; it must
 * outlive zonectl_stop), which the control thread drains like a shard's:
 * one JSON line per reload, event "zones", outcome "loaded" or "refused"
 * ("skipped" without a file), trigger "signal" or "inotify", file, zones,
 * rules, memory_bytes (loaded), load_ms, error (refused: "PATH:LINE:
 * reason"), pending_frees (replaced tables not freed yet). 0 or -errno.
 */
int zonectl_start(struct logring *log);

/* Ask for a reload (async-signal-unsafe; control thread). Coalesces. */
void zonectl_reload(void);

/*
 * The inotify descriptor that reports changes of the zone file, -1 without
 * a file: the control thread polls it beside its signalfd and calls
 * zonectl_watch_ready() when it is readable (or at any time: it does not
 * block). A change of the file is handed to the loader thread, which loads
 * it once the burst of events is over (ZONECTL_DEBOUNCE_MS).
 */
int zonectl_watch_fd(void);
void zonectl_watch_ready(void);

/*
 * Stop the loader thread and free every table. No reader may be in a
 * section or enter again, and every registered zone_reader must still be in
 * memory when this is called (the loader scans them until it stops); after
 * it returns none is touched. zonectl_init may then start a new round.
 */
void zonectl_stop(void);

/* Reloads done since zonectl_init (loaded, refused), for tests and the log. */
uint64_t zonectl_loads(void);
uint64_t zonectl_refusals(void);

/* Replaced tables freed so far: zonectl_loads() once no snapshot holds an old one. */
uint64_t zonectl_frees(void);

/* Register a reader (its thread or start-up, before its first enter). */
void zonectl_reader_init(struct zone_reader *r);

/*
 * Take the current table for a transaction. Wait-free; reader's thread
 * only. Sections of one reader may overlap (several transactions on a
 * shard) and may last minutes, but the table a section holds, and every
 * table replaced while it is open, stay in memory until it ends: leave as
 * soon as the transaction ends.
 */
const struct zone_table *zonectl_enter(struct zone_reader *r, struct zone_snap *snap);

/* Let the snapshot go (the table may be freed after this). */
void zonectl_leave(struct zone_reader *r, struct zone_snap *snap);

#endif /* SLUICE_CORE_SERVER_ZONECTL_H */
