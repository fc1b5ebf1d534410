#!/usr/bin/env bash
# bench/run.sh -- end-to-end benchmarks on loopback (`make bench`).
#
#   bench/run.sh BUILD_DIR          (BUILD_DIR holds sluice, sluice-sink, sluice-source)
#
# Prints a markdown table; every figure is the median of 3 rounds and stands beside a
# baseline measured in the same run, with the ratio and the target:
#   1. 4 KiB x 50 sessions (100,000 messages a round, ~5-10 s): Postfix smtp-source -d
#      through sluice -> Postfix smtp-sink,
#      beside the same load straight to smtp-sink (msgs/s, the headline); the same load
#      from sluice-source for p99 latency; sluice's CPU per relayed message from
#      /proc/PID/stat (utime+stime delta / messages).
#   2. 25 MiB x 4 sessions: sluice-source -l 25M -s 4 through sluice -> sluice-sink,
#      beside straight to sluice-sink (MB/s).
#   3. 10,000 idle sessions (sluice-source --idle, or a python3 fallback): growth of
#      sluice's VmRSS per session.
#   4. The 4 KiB load through Postfix itself as a synchronous pass-through relay (a
#      private instance: smtpd with smtpd_proxy_filter = the same smtp-sink), beside
#      sluice: the MTA operators know.
# Raw per-round numbers go to build/bench/bench-DATE.log (and the table to
# build/bench/bench-DATE.md). BENCH_SCALE=N divides message counts by N (quick runs).
#
# Decisions: Postfix runs with smtpd_proxy_filter and *without* speed_adjust, so it
# opens the upstream at MAIL, relays RCPT and end-of-data replies and never queues:
# the same synchronous contract as sluice (speed_adjust would spool the whole message
# first and so measure a different design). Each idle round uses a fresh sluice so one
# round's allocator state does not hide the next round's growth.

set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd) || exit 2
SCALE=${BENCH_SCALE:-1}
for b in sluice sluice-sink sluice-source; do
	[ -x "$BUILD/$b" ] || { echo "bench: $BUILD/$b missing (make BUILD=release all)" >&2; exit 1; }
done
for c in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix python3; do
	command -v "$c" >/dev/null || { echo "bench: $c missing (make deps)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" -lt 20500 ]; then
	ulimit -n 20500 2>/dev/null
fi

OUTDIR=$ROOT/build/bench
mkdir -p "$OUTDIR"
STAMP=$(date +%Y%m%d-%H%M%S)
LOG=$OUTDIR/bench-$STAMP.log
MD=$OUTDIR/bench-$STAMP.md
E2E_TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
E2E_NAME=bench
E2E_PORTS=()
: >"$E2E_TMP/pids"
. "$ROOT/tests/e2e/lib.sh"
E2E_BUILD=$BUILD
PF_DIR=
bench_cleanup()
{
	if [ -n "$PF_DIR" ] && [ -f "$PF_DIR/conf/main.cf" ]; then
		postfix -c "$PF_DIR/conf" stop >/dev/null 2>&1
	fi
	e2e_cleanup
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$E2E_TMP"
}
trap bench_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
e2e_fail()
{
	echo "bench: $*" | tee -a "$LOG" >&2
	exit 1
}

e2e_log()
{
	echo "[$(date +%T)] $*" >>"$LOG"
}
log()
{
	echo "[$(date +%T)] $*" | tee -a "$LOG" >&2
}
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks()
{
	awk '{print $14 + $15}' "/proc/$1/stat"
}
now()
{
	date +%s.%N
}
median()
{
	printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
calc()
{
	python3 -c "print($1)"
}

read -r -a P <<<"$(e2e_free_ports 12)"
SINK4K=${P[0]}
SLUICE4K=${P[1]}
BIGSINK=${P[2]}
SLUICEBIG=${P[3]}
PFPORT=${P[4]}

log "bench: build $BUILD, $(nproc) CPUs, scale 1/$SCALE, raw log $LOG"
log "kernel $(uname -r); $(/usr/sbin/postconf -d mail_version 2>/dev/null)"

M4K=$((100000 / SCALE))
MPF=$((20000 / SCALE))
MBIG=$((40 / SCALE))
[ "$MBIG" -ge 4 ] || MBIG=4
NIDLE=$((10000 / SCALE))

# --- 1. 4 KiB x 50 sessions -----------------------------------------------------------
e2e_start_smtp_sink smtp-sink "$SINK4K" -m 2048
SINK4K_PID=$E2E_LAST_PID
e2e_sluice_conf "$E2E_TMP/sluice4k.conf" "$SLUICE4K" "$SINK4K" "shards 0" "log-level warn" \
	"max-connections-per-ip 0"
sed -i '/^shards 2$/d' "$E2E_TMP/sluice4k.conf"
e2e_start_sluice sluice4k "$E2E_TMP/sluice4k.conf" "$SLUICE4K"
SLUICE_PID=$E2E_LAST_PID

# smtp_source_round PORT MESSAGES -> msgs/s
smtp_source_round()
{
	local t0 t1 rc
	t0=$(now)
	/usr/sbin/smtp-source -s 50 -m "$2" -l 4096 -d -f a@bench.test -t b@bench.test \
		"127.0.0.1:$1" >>"$LOG" 2>&1
	rc=$?
	t1=$(now)
	[ $rc = 0 ] || { log "smtp-source to port $1 exited $rc"; echo 0; return; }
	calc "round($2 / ($t1 - $t0), 1)"
}

d_rate=() s_rate=() s_cpu=() d_p99=() s_p99=() d_ssrate=() s_ssrate=()
for r in 1 2 3; do
	v=$(smtp_source_round "$SINK4K" "$M4K")
	d_rate+=("$v")
	log "4k round $r: smtp-source direct: $v msgs/s"
	c0=$(cpu_ticks "$SLUICE_PID")
	v=$(smtp_source_round "$SLUICE4K" "$M4K")
	c1=$(cpu_ticks "$SLUICE_PID")
	s_rate+=("$v")
	cpu=$(calc "round(($c1 - $c0) * 1e6 / $CLK_TCK / $M4K, 1)")
	s_cpu+=("$cpu")
	log "4k round $r: smtp-source via sluice: $v msgs/s; sluice CPU $((c1 - c0)) ticks = $cpu us/msg"
	for target in direct sluice; do
		port=$SINK4K
		[ $target = sluice ] && port=$SLUICE4K
		out=$("$BUILD/sluice-source" -q -s 50 -m "$M4K" -l 4k "127.0.0.1:$port" 2>>"$LOG" | tail -1)
		log "4k round $r: sluice-source $target: $out"
		p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")
		rate=$(sed -n 's/.*msgs\/s=\([0-9.]*\).*/\1/p' <<<"$out")
		if [ $target = direct ]; then
			d_p99+=("${p99:-0}") d_ssrate+=("${rate:-0}")
		else
			s_p99+=("${p99:-0}") s_ssrate+=("${rate:-0}")
		fi
	done
done
e2e_alive "$SLUICE_PID" || log "WARNING: sluice died during the 4 KiB benchmark"

# --- 4. Postfix pass-through relay (same 4 KiB load, same smtp-sink) -----------------
pf_start()
{
	PF_DIR=$E2E_TMP/postfix
	# Postfix's daemons run as user postfix and must reach their directories.
	chmod 755 "$E2E_TMP"
	mkdir -p "$PF_DIR/conf" "$PF_DIR/queue" "$PF_DIR/data"
	cat >"$PF_DIR/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $PF_DIR
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
relay_domains = bench.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
biff = no
EOF
	cat >"$PF_DIR/conf/master.cf" <<EOF
127.0.0.1:$PFPORT inet n - n - 200 smtpd
  -o smtpd_proxy_filter=127.0.0.1:$SINK4K
  -o smtpd_proxy_ehlo=postfix.bench.test
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	# postfix(1) checks the queue/data ownership; data_directory must be postfix's.
	chown postfix "$PF_DIR/data"
	postfix -c "$PF_DIR/conf" check >>"$LOG" 2>&1
	postfix -c "$PF_DIR/conf" start >>"$LOG" 2>&1 || {
		log "postfix did not start: $(tail -3 "$PF_DIR/maillog" 2>/dev/null)"
		return 1
	}
	e2e_wait_port 127.0.0.1 "$PFPORT" 15 || {
		log "postfix smtpd not listening: $(tail -3 "$PF_DIR/maillog" 2>/dev/null)"
		return 1
	}
}
pf_rate=() pfs_rate=()
if [ "$(id -u)" = 0 ] && pf_start; then
	for r in 1 2 3; do
		v=$(smtp_source_round "$PFPORT" "$MPF")
		pf_rate+=("$v")
		log "postfix round $r: smtp-source via Postfix smtpd_proxy_filter: $v msgs/s"
		v=$(smtp_source_round "$SLUICE4K" "$MPF")
		pfs_rate+=("$v")
		log "postfix round $r: same load via sluice: $v msgs/s"
	done
	postfix -c "$PF_DIR/conf" stop >>"$LOG" 2>&1
	grep -E 'warning|error|fatal' "$PF_DIR/maillog" | sort | uniq -c | sort -rn | head -5 >>"$LOG"
else
	log "Postfix comparison skipped (needs root and a working postfix)"
fi
e2e_stop "$SLUICE_PID" 35
e2e_stop "$SINK4K_PID" 5

# --- 2. 25 MiB x 4 sessions -----------------------------------------------------------
e2e_start_sink bigsink "$BIGSINK" --quiet
BIGSINK_PID=$E2E_LAST_PID
e2e_sluice_conf "$E2E_TMP/sluicebig.conf" "$SLUICEBIG" "$BIGSINK" "log-level warn"
sed -i '/^shards 2$/d' "$E2E_TMP/sluicebig.conf"
e2e_start_sluice sluicebig "$E2E_TMP/sluicebig.conf" "$SLUICEBIG"
SLUICEBIG_PID=$E2E_LAST_PID
d_mb=() s_mb=() big_cpu=()
for r in 1 2 3; do
	for target in direct sluice; do
		port=$BIGSINK
		[ $target = sluice ] && port=$SLUICEBIG
		c0=$(cpu_ticks "$SLUICEBIG_PID")
		out=$("$BUILD/sluice-source" -q -s 4 -m "$MBIG" -l 25M "127.0.0.1:$port" 2>>"$LOG" | tail -1)
		c1=$(cpu_ticks "$SLUICEBIG_PID")
		if [ $target = sluice ]; then
			big_cpu+=("$(calc "round(($c1 - $c0) * 1e3 / $CLK_TCK / $MBIG, 2)")")
			out="$out; sluice CPU ${big_cpu[-1]} ms/msg"
		fi
		log "25M round $r: sluice-source $target: $out"
		mb=$(sed -n 's/.*MB\/s=\([0-9.]*\).*/\1/p' <<<"$out")
		acc=$(sed -n 's/.*accepted=\([0-9]*\).*/\1/p' <<<"$out")
		[ "${acc:-0}" = "$MBIG" ] || log "WARNING: 25M $target accepted ${acc:-?} of $MBIG"
		if [ $target = direct ]; then d_mb+=("${mb:-0}"); else s_mb+=("${mb:-0}"); fi
	done
done
e2e_stop "$SLUICEBIG_PID" 35
e2e_stop "$BIGSINK_PID" 10

# --- 3. 10,000 idle sessions ----------------------------------------------------------
cat >"$E2E_TMP/idle.py" <<'PY'
# Fallback idle client: open N sessions, read the greeting, EHLO, hold until SIGTERM.
import selectors, signal, socket, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    socks.append(s)
for s in socks:
    s.recv(512)
    s.sendall(b"EHLO idle.bench.test\r\n")
for s in socks:
    s.recv(4096)
print("idle: open=%d" % len(socks), flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
PY
if "$BUILD/sluice-source" --help 2>&1 | grep -q -- '--idle'; then
	idle_cmd=("$BUILD/sluice-source" -q --idle "$NIDLE")
	idle_tool="sluice-source --idle"
else
	idle_cmd=(python3 "$E2E_TMP/idle.py" "$NIDLE")
	idle_tool="python3 sockets"
fi
rss_kib()
{
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}
idle_per=()
for r in 1 2 3; do
	read -r ip up <<<"$(e2e_free_ports 2 "${P[@]}")"
	e2e_sluice_conf "$E2E_TMP/idle$r.conf" "$ip" "$up" "log-level warn" \
		"max-connections-per-ip 0" "max-sessions 20000"
	sed -i '/^shards 2$/d' "$E2E_TMP/idle$r.conf"
	e2e_start_sluice "idle-sluice$r" "$E2E_TMP/idle$r.conf" "$ip"
	spid=$E2E_LAST_PID
	sleep 0.5
	rss0=$(rss_kib "$spid")
	if [ "$idle_tool" = "python3 sockets" ]; then
		e2e_start "idle$r" "${idle_cmd[@]}" "$ip"
	else
		e2e_start "idle$r" "${idle_cmd[@]}" "127.0.0.1:$ip"
	fi
	ipid=$E2E_LAST_PID
	open=
	for ((i = 0; i < 600; i++)); do
		open=$(sed -n 's/.*idle: open=\([0-9]*\).*/\1/p' "$E2E_TMP/idle$r.out" | tail -1)
		[ -n "$open" ] && break
		e2e_alive "$ipid" || break
		sleep 0.1
	done
	sleep 1
	rss1=$(rss_kib "$spid")
	if [ -n "$open" ] && [ "$open" -gt 0 ]; then
		per=$(calc "round(($rss1 - $rss0) / $open, 2)")
	else
		per=0
		log "idle round $r: the idle client did not report open sessions: $(tail -2 "$E2E_TMP/idle$r.err")"
	fi
	idle_per+=("$per")
	log "idle round $r ($idle_tool): open=${open:-?} sluice VmRSS $rss0 -> $rss1 KiB: $per KiB/session"
	e2e_stop "$ipid" 10
	sleep 1
	e2e_stop "$spid" 10 || log "idle round $r: sluice needed SIGKILL (it did not exit on SIGTERM)"
done

# --- table ------------------------------------------------------------------------------
md_d_rate=$(median "${d_rate[@]}")
md_s_rate=$(median "${s_rate[@]}")
md_cpu=$(median "${s_cpu[@]}")
md_d_p99=$(median "${d_p99[@]}")
md_s_p99=$(median "${s_p99[@]}")
md_d_ss=$(median "${d_ssrate[@]}")
md_s_ss=$(median "${s_ssrate[@]}")
md_d_mb=$(median "${d_mb[@]}")
md_s_mb=$(median "${s_mb[@]}")
md_idle=$(median "${idle_per[@]}")
md_big_cpu=$(median "${big_cpu[@]}")
ratio()
{
	calc "'%.1f%%' % (100.0 * $1 / $2) if $2 else 'n/a'"
}
verdict()
{
	if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo "met"; else echo "**missed**"; fi
}
{
	echo
	echo "### sluice end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, loopback"
	echo
	echo "Median of 3 rounds; baseline measured in the same run. Raw rounds: \`${LOG#"$ROOT"/}\`."
	echo
	echo "| load | measure | sluice | baseline | ratio | target |"
	echo "|---|---|---:|---:|---:|---|"
	echo "| 4 KiB x 50 sessions, $M4K msgs, Postfix smtp-source -d | msgs/s | $md_s_rate | $md_d_rate (straight to smtp-sink) | $(ratio "$md_s_rate" "$md_d_rate") | >= 75%: $(verdict "$md_s_rate >= 0.75 * $md_d_rate") |"
	echo "| same, sluice-source | msgs/s | $md_s_ss | $md_d_ss (straight to smtp-sink) | $(ratio "$md_s_ss" "$md_d_ss") | |"
	echo "| same, sluice-source | p99 ms | $md_s_p99 | $md_d_p99 (straight to smtp-sink) | $(ratio "$md_s_p99" "$md_d_p99") | |"
	echo "| same, smtp-source | sluice CPU us/msg | $md_cpu | | | <= 40: $(verdict "$md_cpu <= 40") |"
	echo "| 25 MiB x 4 sessions, $MBIG msgs, sluice-source | MB/s | $md_s_mb | $md_d_mb (straight to sluice-sink) | $(ratio "$md_s_mb" "$md_d_mb") | >= 75%: $(verdict "$md_s_mb >= 0.75 * $md_d_mb") |"
	echo "| same | sluice CPU ms per 25 MiB message | $md_big_cpu | | | |"
	echo "| $NIDLE idle sessions ($idle_tool) | VmRSS KiB/session | $md_idle | | | <= 8: $(verdict "$md_idle <= 8") |"
	if [ ${#pf_rate[@]} -gt 0 ]; then
		md_pf=$(median "${pf_rate[@]}")
		md_pfs=$(median "${pfs_rate[@]}")
		echo "| 4 KiB x 50 sessions, $MPF msgs: sluice vs Postfix 3.7 smtpd_proxy_filter pass-through | msgs/s | $md_pfs | $md_pf (Postfix) | $(ratio "$md_pfs" "$md_pf") | |"
	fi
} | tee "$MD"
{
	echo "rounds: 4k direct ${d_rate[*]} | via sluice ${s_rate[*]} | cpu us/msg ${s_cpu[*]}"
	echo "rounds: sluice-source direct msgs/s ${d_ssrate[*]} p99 ${d_p99[*]} | via sluice msgs/s ${s_ssrate[*]} p99 ${s_p99[*]}"
	echo "rounds: 25M direct ${d_mb[*]} | via sluice ${s_mb[*]} | sluice CPU ms/msg ${big_cpu[*]}"
	echo "rounds: idle KiB/session ${idle_per[*]}"
	echo "rounds: postfix ${pf_rate[*]:-} | sluice (same) ${pfs_rate[*]:-}"
	cat "$MD"
} >>"$LOG"
