/*
 * test_pki.c -- see test_pki.h.
 */
#include "tests/support/test_pki.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/test_dir.h"

#define PKI_SCRIPT "tests/support/gen-test-pki.sh"

static bool
have_openssl(void)
{
	return system("command -v openssl >/dev/null 2>&1") == 0;
}

void
test_pki_make(char *dir, const char *template)
{
	pid_t pid;
	int status;

	if (!have_openssl())
		cr_skip_test("the openssl command is not installed (tools/install-deps.sh)");
	snprintf(dir, TEST_PKI_DIR_MAX, "%s", template);
	cr_assert_not_null(mkdtemp(dir));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execlp("sh", "sh", PKI_SCRIPT, dir, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "%s %s failed (run the unit tests from the repository root)", PKI_SCRIPT, dir);
}

void
test_pki_remove(char *dir)
{
	if (dir[0] != '\0')
		test_rm_tree(dir);
	dir[0] = '\0';
}

const char *
test_pki_path(const char *dir, const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}
