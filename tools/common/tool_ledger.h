/*
 * tool_ledger.h -- the ledger file both load tools write (SPEC "Ledger
 * format"): one line "MESSAGE-ID XXH64 SIZE" per accepted message.
 *
 * Each line goes out in a single write(2) on an O_APPEND descriptor, with no
 * stdio buffering, so a test can read the file while the tool runs and never
 * sees half a line. A blocking write per message is acceptable in a test tool;
 * the server never writes files on its shards.
 */
#ifndef SLUICE_TOOLS_COMMON_TOOL_LEDGER_H
#define SLUICE_TOOLS_COMMON_TOOL_LEDGER_H

#include <stdint.h>

#include "core/check.h"

struct tool_ledger {
	int fd; /* owned; -1 when no ledger was asked for */
};

/* Open (create, truncate) path for appending. Returns 0 or -errno. */
MUST_CHECK int tool_ledger_open(struct tool_ledger *lg, const char *path);

/* A ledger that writes nothing (fd = -1). */
void tool_ledger_init_none(struct tool_ledger *lg);

/*
 * Write "id hash size\n" (hash as 16 lowercase hex digits) in one write(2).
 * A no-op without a file. Returns 0 or -errno (a short write is -EIO).
 */
int tool_ledger_write(struct tool_ledger *lg, const char *id, uint64_t hash, uint64_t size);

/* Close the file if one is open. */
void tool_ledger_close(struct tool_ledger *lg);

#endif /* SLUICE_TOOLS_COMMON_TOOL_LEDGER_H */
