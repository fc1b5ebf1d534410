#!/bin/sh
# check-headers.sh -- compile every header of core/ proto/ auth/ route/ on its own.
#
#   tools/check-headers.sh [CC] [FLAGS]      (make check-headers passes both)
#
# Each header is compiled alone, included twice, in a translation unit that
# contains nothing else: this proves it includes what it uses (self-contained)
# and has a working include guard (idempotent). STYLE.md "Header discipline";
# the idea is Seastar's checkheaders. Prints each failure with the compiler's
# output and exits 1 if any header fails, 0 otherwise.
#
# Run from anywhere: it works from the repository root (includes are written
# from the root, "core/check.h", and FLAGS is expected to carry -I.).

CC=${1:-cc}
FLAGS=${2:--I. -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror}

cd "$(dirname "$0")/.." || exit 2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-headers.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

total=0
failed=0
# sorted for stable output; `find` on missing directories is silent
for h in $(find core proto auth route -name '*.h' 2>/dev/null | LC_ALL=C sort); do
	total=$((total + 1))
	printf '#include "%s"\n#include "%s"\n' "$h" "$h" >"$tmp/t.c"
	# shellcheck disable=SC2086 # FLAGS is a list of words on purpose
	if ! $CC $FLAGS -x c -fsyntax-only "$tmp/t.c" >"$tmp/out" 2>&1; then
		failed=$((failed + 1))
		echo "FAIL $h"
		sed 's/^/    /' "$tmp/out"
	fi
done

if [ "$failed" -ne 0 ]; then
	echo "check-headers: $failed of $total headers are not self-contained"
	exit 1
fi
echo "check-headers: $total headers ok"
exit 0
