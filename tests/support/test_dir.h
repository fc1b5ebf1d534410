/*
 * test_dir.h -- the temporary directories of test fixtures (test_pki.c,
 * nsd_fixture.c): made with mkdtemp(3) by their owners, removed here.
 */
#ifndef SLUICE_TESTS_SUPPORT_TEST_DIR_H
#define SLUICE_TESTS_SUPPORT_TEST_DIR_H

/* Remove dir and everything under it, symlinks not followed; errors are ignored
 * (a leftover in /tmp is all they cost). */
void test_rm_tree(const char *dir);

#endif /* SLUICE_TESTS_SUPPORT_TEST_DIR_H */
