#!/usr/bin/env bash
# tests/e2e/run.sh -- run the end-to-end tests on loopback (`make e2e`).
#
#   tests/e2e/run.sh BUILD_DIR [NAME...]
#
# Runs every tests/e2e/t_*.sh (or only the NAMEs given, e.g. t_faults) one after the
# other, each as `t_NAME.sh BUILD_DIR TMPDIR PORT...` with a private temp dir and 8
# distinct free loopback ports, under a time limit (a `# e2e-timeout: SECONDS` line in
# the test, default 120). Prints `PASS name`, `FAIL name (reason)` or `SKIP name
# (reason)` per test and, as the last line, `e2e: N passed, N failed, N skipped`.
# Exit 1 if any test failed. A failed test's temp dir (logs, ledgers, configs) is kept
# and named; set E2E_KEEP=1 to keep all of them.
#
# Decisions: tests run one at a time, not in parallel: several of them measure or load
# the machine (25 MiB transfers, 10,000 messages) and the box has few CPUs. Ports come
# from outside the kernel's ephemeral range so that outgoing connections (sluice ->
# upstream) cannot take a port a test is about to listen on.

set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD_DIR [t_NAME...]" >&2
	exit 2
fi
BUILD=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh # for e2e_proc_stat
. "$HERE/lib.sh"
if [ -d "$BUILD" ]; then
	BUILD=$(cd "$BUILD" && pwd)
else
	echo "run.sh: warning: $BUILD is not a directory; tests needing binaries will skip" >&2
	case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
fi

# Loopback tests open many sockets (10,000 idle sessions in some): raise the limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

tests=()
if [ $# -gt 0 ]; then
	for n in "$@"; do
		n=${n%.sh}
		n=${n##*/}
		tests+=("$HERE/$n.sh")
	done
else
	for t in "$HERE"/t_*.sh; do
		[ -e "$t" ] && tests+=("$t")
	done
fi

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/sluice-e2e.XXXXXX") || exit 1
used_ports=()
pass=0
fail=0
skip=0

# Kill whatever a test left behind (recorded pids whose start time still matches).
reap_leftovers()
{
	local f=$1 pid st name cur state
	[ -f "$f" ] || return 0
	while read -r pid st name; do
		[ -n "$pid" ] || continue
		cur=$(e2e_proc_stat "$pid" 22)
		state=$(e2e_proc_stat "$pid" 3)
		if [ -n "$cur" ] && [ "$cur" = "$st" ] && [ "$state" != Z ] && [ "$state" != X ]; then
			echo "  (killing leftover $name pid $pid)" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
	done <"$f"
}

for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	if [ ! -f "$t" ]; then
		echo "FAIL $name (no such test: $t)"
		fail=$((fail + 1))
		continue
	fi
	limit=$(sed -n 's/^# e2e-timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -1)
	limit=${limit:-120}
	tmp=$ROOT/$name
	mkdir -p "$tmp"
	# shellcheck disable=SC2207
	ports=($(python3 "$(dirname "$0")/free_ports.py" 8 "${used_ports[@]}"))
	used_ports+=("${ports[@]}")
	start=$(date +%s)
	timeout -k 10 "$limit" bash "$t" "$BUILD" "$tmp" "${ports[@]}" >"$tmp/test.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	reap_leftovers "$tmp/pids"
	reason=
	[ -s "$tmp/reason" ] && reason=$(tail -1 "$tmp/reason")
	case $rc in
	0)
		echo "PASS $name"
		pass=$((pass + 1))
		[ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$tmp"
		;;
	77)
		echo "SKIP $name (${reason:-no reason given})"
		skip=$((skip + 1))
		[ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$tmp"
		;;
	124 | 137)
		echo "FAIL $name (time limit ${limit}s exceeded${reason:+; last: $reason})"
		echo "  log: $tmp/test.log"
		fail=$((fail + 1))
		;;
	*)
		echo "FAIL $name (${reason:-exit status $rc})"
		echo "  log: $tmp/test.log"
		fail=$((fail + 1))
		;;
	esac
done

rmdir "$ROOT" 2>/dev/null
echo "e2e: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
