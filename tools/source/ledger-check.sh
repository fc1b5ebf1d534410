#!/bin/sh
# ledger-check.sh -- run sluice-source against sluice-sink on loopback and check
# that both ledgers hold the same lines (same Message-IDs, XXH64 and sizes).
#
#   tools/source/ledger-check.sh [BUILD_DIR] [PORT] [-- SOURCE OPTIONS...]
#
# Default load: 10,000 mixed-size messages (1k, 4k, 64k, 1M and a few 25M),
# 20 sessions, with --dots. Exit 0 if the ledgers are equal, 1 if not, 77 if
# the binaries are missing (skip). Every process started here is killed by pid.
set -u
B=${1:-build}
PORT=${2:-2699}
shift 2 2>/dev/null || shift $#
[ "${1:-}" = "--" ] && shift
if [ $# -eq 0 ]; then
	set -- -s 20 -m 10000 -l '1k*300,4k*400,64k*200,1M*20,25M' --dots
fi
[ -x "$B/sluice-sink" ] && [ -x "$B/sluice-source" ] || { echo "skip: no binaries in $B"; exit 77; }

T=$(mktemp -d)
SINK_PID=
cleanup() {
	[ -n "$SINK_PID" ] && kill -TERM "$SINK_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

"$B/sluice-sink" --quiet --pidfile "$T/pid" --ledger "$T/sink.ledger" "127.0.0.1:$PORT" \
	>"$T/sink.out" &
SINK_PID=$!
i=0
while [ ! -s "$T/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$T/pid" ] || { echo "sink did not start"; exit 1; }

timeout 600 "$B/sluice-source" "$@" --ledger "$T/source.ledger" "127.0.0.1:$PORT" || exit 1
kill -TERM "$SINK_PID"
i=0
while kill -0 "$SINK_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
SINK_PID=
cat "$T/sink.out"

sort "$T/source.ledger" >"$T/a"
sort "$T/sink.ledger" >"$T/b"
if cmp -s "$T/a" "$T/b"; then
	echo "ledgers equal: $(wc -l <"$T/a") messages"
	exit 0
fi
echo "ledgers differ:"
diff "$T/a" "$T/b" | head -20
exit 1
