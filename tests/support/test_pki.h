/*
 * test_pki.h -- a throw-away PKI for the TLS unit tests.
 *
 * tests/support/gen-test-pki.sh (the openssl CLI) writes a test CA and
 * certificates signed by it (ca.crt, server.crt/.key for sink.e2e.test and
 * more, see the script) into a mkdtemp directory, one per test process; a
 * suite makes it in its .init and removes it in its .fini. Without the
 * openssl command the calling test is reported as skipped, never as passed.
 * The unit binary runs from the repository root (make unit), so the script
 * is found by its relative path.
 */
#ifndef SLUICE_TESTS_SUPPORT_TEST_PKI_H
#define SLUICE_TESTS_SUPPORT_TEST_PKI_H

#define TEST_PKI_DIR_MAX 64 /* a directory name from test_pki_make() fits */

/*
 * Make the PKI in a new directory from template ("/tmp/NAME.XXXXXX"), whose
 * name goes to dir[TEST_PKI_DIR_MAX]. Skips the test without openssl; fails
 * it if the script fails.
 */
void test_pki_make(char *dir, const char *template);

/* Remove dir and everything in it; "" (nothing made) is a no-op. */
void test_pki_remove(char *dir);

/* DIR/NAME in a static buffer (one at a time). */
const char *test_pki_path(const char *dir, const char *name);

#endif /* SLUICE_TESTS_SUPPORT_TEST_PKI_H */
