/*
 * test_dir.c -- see test_dir.h.
 */
#include "tests/support/test_dir.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
test_rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}
