/*
 * tool_ledger.c -- see tool_ledger.h.
 */
#include "tools/common/tool_ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

int
tool_ledger_open(struct tool_ledger *lg, const char *path)
{
	lg->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	return lg->fd < 0 ? -errno : 0;
}

void
tool_ledger_init_none(struct tool_ledger *lg)
{
	lg->fd = -1;
}

int
tool_ledger_write(struct tool_ledger *lg, const char *id, uint64_t hash, uint64_t size)
{
	char line[512];
	int n;
	ssize_t w;

	if (lg->fd < 0)
		return 0;
	n = snprintf(line, sizeof(line), "%.400s %016" PRIx64 " %" PRIu64 "\n", id, hash, size);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	do
		w = write(lg->fd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return w == n ? 0 : -EIO;
}

void
tool_ledger_close(struct tool_ledger *lg)
{
	if (lg->fd >= 0)
		close(lg->fd);
	lg->fd = -1;
}
