#!/usr/bin/env bash
# run.sh -- what `make run` calls: a sink on 127.0.0.1:2526 and sluice in front of it.
#
#   tools/run.sh BUILD_DIR [sluice args...]      e.g. tools/run.sh build
#
# Starts BUILD_DIR/sluice-sink in the background as the upstream (messages
# kept in BUILD_DIR/run/mail/, one ledger line per message in
# BUILD_DIR/run/ledger, its own output in BUILD_DIR/run/sink.log), waits for
# its pidfile, prints how to send a test message, then runs BUILD_DIR/sluice
# in the foreground on the embedded default configuration (listen
# 127.0.0.1:2525, upstream 127.0.0.1:2526) with any extra arguments passed on.
# Ctrl-C stops sluice; the sink is stopped by its pid on the way out.
# SLUICE_PORT / SINK_PORT (environment) move the two ports when 2525/2526 are
# taken; sluice then gets --listen/--upstream options before the extra args.
# Exit status: sluice's, or 1 if the setup failed (binaries missing, ports in
# use, sink did not start).

set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD_DIR [sluice args...]" >&2
	exit 2
fi
B=$1
shift

LISTEN_PORT=${SLUICE_PORT:-2525}
SINK_PORT=${SINK_PORT:-2526}
RUN="$B/run"
SINK_WAIT_TENTHS=50 # 5 s for the sink to write its pidfile

for bin in sluice sluice-sink; do
	if [ ! -x "$B/$bin" ]; then
		echo "run: $B/$bin not found or not executable (build it first: make all)" >&2
		exit 1
	fi
done

# Something already accepting on the port? A connect that succeeds means yes.
port_in_use() { # PORT
	if command -v timeout >/dev/null 2>&1; then
		timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
	else
		bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
	fi
}
busy=0
for port in "$LISTEN_PORT" "$SINK_PORT"; do
	if port_in_use "$port"; then
		echo "run: port 127.0.0.1:$port is already in use; stop whatever listens there" >&2
		if command -v ss >/dev/null 2>&1; then
			ss -ltnp "sport = :$port" 2>/dev/null | sed 's/^/run:   /' >&2
		fi
		busy=1
	fi
done
if [ "$busy" -ne 0 ]; then
	echo "run: (or pick other ports: SLUICE_PORT=2625 SINK_PORT=2626 make run)" >&2
	exit 1
fi

# The embedded default config listens on 2525 and relays to 2526.
port_args=()
if [ "$LISTEN_PORT" != 2525 ] || [ "$SINK_PORT" != 2526 ]; then
	port_args=(--listen "127.0.0.1:$LISTEN_PORT" --upstream "127.0.0.1:$SINK_PORT")
fi

mkdir -p "$RUN/mail" || exit 1
rm -f "$RUN/sink.pid"

sink_pid=
# shellcheck disable=SC2317 # called from the traps
cleanup() {
	[ -n "$sink_pid" ] || return 0
	# Ctrl-C in a terminal reaches the sink too; otherwise stop it here.
	if kill -0 "$sink_pid" 2>/dev/null; then
		kill -TERM "$sink_pid" 2>/dev/null
		# bounded wait: 3 s, then SIGKILL
		for _ in $(seq 1 30); do
			kill -0 "$sink_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$sink_pid" 2>/dev/null && kill -KILL "$sink_pid" 2>/dev/null
	fi
	wait "$sink_pid" 2>/dev/null
	sink_pid=
	echo "run: sink stopped: $(tail -n 1 "$RUN/sink.log" 2>/dev/null) (log: $RUN/sink.log)"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

"$B/sluice-sink" --dump "$RUN/mail" --ledger "$RUN/ledger" --pidfile "$RUN/sink.pid" \
	"127.0.0.1:$SINK_PORT" >"$RUN/sink.log" 2>&1 &
sink_pid=$!

waited=0
while [ ! -s "$RUN/sink.pid" ]; do
	if ! kill -0 "$sink_pid" 2>/dev/null; then
		wait "$sink_pid" 2>/dev/null
		echo "run: sluice-sink exited at start-up (status $?); its output:" >&2
		sed 's/^/run:   /' "$RUN/sink.log" >&2
		sink_pid=
		exit 1
	fi
	if [ "$waited" -ge "$SINK_WAIT_TENTHS" ]; then
		echo "run: sluice-sink did not write $RUN/sink.pid within 5 s; its output:" >&2
		sed 's/^/run:   /' "$RUN/sink.log" >&2
		exit 1
	fi
	sleep 0.1
	waited=$((waited + 1))
done

cat <<EOF

  sluice-sink (pid $sink_pid) is the upstream on 127.0.0.1:$SINK_PORT.
  Starting sluice on 127.0.0.1:$LISTEN_PORT (embedded default config${port_args[*]:+ + ${port_args[*]}})...

  Send a test message from another terminal:

      swaks --server 127.0.0.1:$LISTEN_PORT --to alice@example.com --from bob@example.org

  The built-in zones forward every example.com address to inbox@sink.test
  (give your own with --zones FILE). It arrives in $RUN/mail/ (one .eml per
  message; ledger: $RUN/ledger).
  sluice logs JSON lines below. Ctrl-C stops both.

EOF
if ! command -v swaks >/dev/null 2>&1; then
	echo "  (swaks is not installed: make deps, or apt-get install swaks)"
	echo
fi

"$B/sluice" "${port_args[@]}" "$@"
rc=$?
exit "$rc"
