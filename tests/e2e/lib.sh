# tests/e2e/lib.sh -- helpers shared by the end-to-end tests (sourced, not run).
#
# A test is `t_NAME.sh BUILD_DIR TMPDIR PORT...` (run.sh passes an absolute build
# directory, a private empty temp dir and a handful of distinct free loopback ports).
# It calls e2e_init "$@" first; from then on every process it starts with e2e_start is
# recorded (pid + start time) in $E2E_TMP/pids, stopped by the EXIT trap, and killed
# again by run.sh if the test itself was killed by its time limit.
#
# Exit codes: 0 pass, 1 fail (reason in $E2E_TMP/reason, printed by run.sh), 77 skip.
# Decisions: everything on 127.0.0.1 / ::1; every wait is bounded (deciseconds loops);
# processes are stopped by pid only, TERM first, KILL after a bounded wait; ledgers are
# compared as sorted line sets so the order of parallel sessions does not matter.

set -u

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# exported: the tests' inline python finds smtpclient.py through it
export E2E_LIB_DIR
E2E_LAST_PID=
E2E_LAST_RC=

# e2e_init BUILD_DIR TMPDIR PORT...: set E2E_BUILD, E2E_TMP, E2E_PORTS, cd to TMPDIR,
# install the cleanup trap.
e2e_init()
{
	if [ $# -lt 2 ]; then
		echo "usage: $0 BUILD_DIR TMPDIR [PORT...]" >&2
		exit 2
	fi
	E2E_BUILD=$(cd "$1" 2>/dev/null && pwd) || E2E_BUILD=$1
	E2E_TMP=$2
	shift 2
	E2E_PORTS=("$@")
	mkdir -p "$E2E_TMP" || exit 1
	cd "$E2E_TMP" || exit 1
	: >"$E2E_TMP/pids"
	rm -f "$E2E_TMP/reason"
	E2E_NAME=$(basename "$0" .sh)
	trap e2e_cleanup EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
}

e2e_log()
{
	echo "[$(date +%T)] $E2E_NAME: $*" >&2
}

# e2e_fail MSG: record the reason and exit 1.
e2e_fail()
{
	e2e_log "FAIL: $*"
	printf '%s\n' "$*" >"$E2E_TMP/reason"
	exit 1
}

# e2e_skip MSG: record the reason and exit 77.
e2e_skip()
{
	e2e_log "SKIP: $*"
	printf '%s\n' "$*" >"$E2E_TMP/reason"
	exit 77
}

# e2e_fail_on ITEM...: if any ITEM is given, print each (a line each) and fail with all
# of them joined by "; ".
e2e_fail_on()
{
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" >&2
	local msg
	msg=$(printf '%s; ' "$@")
	e2e_fail "${msg%; }"
}

# Sub-cases: a test that runs several sub-cases records each failure with e2e_case_fail
# and goes on; e2e_case_finish at the end fails the test naming all of them.
E2E_FAILURES=()

# e2e_case_fail NAME MSG: log and remember a failure of sub-case NAME.
e2e_case_fail()
{
	e2e_log "sub-case $1: FAIL: $2"
	E2E_FAILURES+=("$1: $2")
}

# e2e_case_finish: if any sub-case failed, print each failure and fail with
# "N problem(s): a; b; ...".
e2e_case_finish()
{
	[ ${#E2E_FAILURES[@]} -gt 0 ] || return 0
	printf '%s\n' "${E2E_FAILURES[@]}" >&2
	local msg
	msg=$(printf '%s; ' "${E2E_FAILURES[@]}")
	e2e_fail "${#E2E_FAILURES[@]} problem(s): ${msg%; }"
}

# e2e_case_output NAME FILE RC: copy FILE (a client's output) into the test log, each
# line prefixed "  NAME: "; if RC is not 0, a failure of sub-case NAME: FILE's first
# PROBLEM/FAIL/Traceback line, else the exit status and FILE's last line.
e2e_case_output()
{
	local name=$1 f=$2 rc=$3
	sed "s/^/  $name: /" "$f" >&2
	if [ "$rc" != 0 ]; then
		local first
		first=$(grep -E '^(PROBLEM|FAIL|Traceback)' "$f" | head -1)
		e2e_case_fail "$name" "${first:-client exited $rc: $(tail -1 "$f")}"
	fi
}

# e2e_case_client NAME SECONDS SCRIPT ARGS...: run `python3 SCRIPT ARGS` (at most
# SECONDS), output to NAME.client.out, judged by e2e_case_output.
e2e_case_client()
{
	local name=$1 secs=$2
	shift 2
	timeout "$secs" python3 "$@" >"$name.client.out" 2>&1
	e2e_case_output "$name" "$name.client.out" $?
}

# e2e_case_alive NAME PID: true while sluice PID runs; else a failure of sub-case NAME
# ("sluice died" and the end of NAME-sluice.err), false.
e2e_case_alive()
{
	e2e_alive "$2" && return 0
	e2e_case_fail "$1" "sluice died: $(tail -2 "$1-sluice.err")"
	return 1
}

# e2e_case_stop NAME PID: stop sluice PID (SIGTERM, 10 s); a failure of sub-case NAME
# unless it exits with status 0.
e2e_case_stop()
{
	e2e_stop "$2" 10
	[ "$E2E_LAST_RC" = 0 ] || e2e_case_fail "$1" "sluice exited with status $E2E_LAST_RC at SIGTERM"
}

# e2e_config_refused FILE LINE OPTION...: run `sluice --check-config OPTION... FILE`
# (at most 10 s, output into the test log). Prints nothing if it exits 1 with a line
# "FILE:LINE: reason" (a "sluice: " prefix allowed), else one line saying what is wrong.
e2e_config_refused()
{
	local f=$1 line=$2 out rc
	shift 2
	out=$(timeout 10 "$E2E_BUILD/sluice" --check-config "$@" "$f" 2>&1)
	rc=$?
	echo "--- $f (rc $rc): $out" >&2
	if [ $rc -ne 1 ]; then
		echo "$f: exit $rc, want 1 (output: ${out:0:120})"
	elif ! grep -q -E "^(sluice: )?$f:$line: ." <<<"$out"; then
		echo "$f: want a line '$f:$line: reason', got: ${out:0:160}"
	fi
}

# e2e_need_bins NAME...: skip unless $E2E_BUILD/NAME exists for each NAME.
e2e_need_bins()
{
	local b
	for b in "$@"; do
		[ -x "$E2E_BUILD/$b" ] || e2e_skip "$E2E_BUILD/$b not built"
	done
}

# e2e_need_cmds CMD...: skip unless each command is on PATH (or an absolute path).
e2e_need_cmds()
{
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || e2e_skip "$c not installed"
	done
}

# e2e_port I: the I-th port handed over by run.sh (0-based); a fresh one if absent.
e2e_port()
{
	if [ "$1" -lt "${#E2E_PORTS[@]}" ]; then
		echo "${E2E_PORTS[$1]}"
	else
		e2e_free_ports 1
	fi
}

# e2e_free_ports N [EXCLUDE...]: print N distinct ports, free on 127.0.0.1 (and on ::1
# where IPv6 exists), outside the kernel's ephemeral range so that outgoing connections
# made meanwhile cannot take them.
e2e_free_ports()
{
	python3 "$(dirname "${BASH_SOURCE[0]}")/free_ports.py" "$@"
}

# e2e_proc_stat PID N: field N (as numbered in proc(5): 3 = state, 22 = start time) of
# /proc/PID/stat, empty when PID is gone. The fields are counted after the last ')':
# the command name in field 2 may hold blanks (NSD renames its processes "nsd: xfrd"),
# which shifted every later field for a plain awk '{print $22}'.
e2e_proc_stat()
{
	local s n=$2
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	# shellcheck disable=SC2086 # split into the fields on purpose
	set -- $s
	shift $((n - 3))
	echo "$1"
}

# e2e_start NAME CMD...: run CMD in the background, stdout to NAME.out, stderr to
# NAME.err (in $E2E_TMP); sets E2E_LAST_PID and records it for cleanup.
e2e_start()
{
	local name=$1
	shift
	"$@" >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err" </dev/null &
	E2E_LAST_PID=$!
	local st
	st=$(e2e_proc_stat "$E2E_LAST_PID" 22)
	echo "$E2E_LAST_PID ${st:-0} $name" >>"$E2E_TMP/pids"
	e2e_log "started $name pid $E2E_LAST_PID: $*"
}

# e2e_alive PID: true while the process runs (and is not a zombie).
e2e_alive()
{
	local s
	kill -0 "$1" 2>/dev/null || return 1
	s=$(e2e_proc_stat "$1" 3)
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

# e2e_wait_port HOST PORT [SECONDS] [PID]: wait until HOST:PORT accepts a connection;
# fail early if PID (the server) has died.
e2e_wait_port()
{
	local host=$1 port=$2 secs=${3:-10} pid=${4:-}
	local i
	for ((i = 0; i < secs * 10; i++)); do
		if python3 -c 'import socket,sys
h=sys.argv[1]; fam=socket.AF_INET6 if ":" in h else socket.AF_INET
s=socket.socket(fam); s.settimeout(1); s.connect((h,int(sys.argv[2])))' "$host" "$port" 2>/dev/null; then
			return 0
		fi
		if [ -n "$pid" ] && ! e2e_alive "$pid"; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# e2e_wait_file FILE [SECONDS]: wait until FILE exists and is not empty.
e2e_wait_file()
{
	local f=$1 secs=${2:-10} i
	for ((i = 0; i < secs * 10; i++)); do
		[ -s "$f" ] && return 0
		sleep 0.1
	done
	return 1
}

# e2e_wait_exit PID SECONDS: wait for PID to end; sets E2E_LAST_RC to its exit status.
# Returns 1 if it is still running after SECONDS.
e2e_wait_exit()
{
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		if ! e2e_alive "$pid"; then
			wait "$pid" 2>/dev/null
			E2E_LAST_RC=$?
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# e2e_stop PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10), then SIGKILL.
# Sets E2E_LAST_RC (exit status; 137 if it had to be killed). Returns 1 if KILL was
# needed.
e2e_stop()
{
	local pid=$1 secs=${2:-10}
	E2E_LAST_RC=
	if ! e2e_alive "$pid"; then
		wait "$pid" 2>/dev/null
		E2E_LAST_RC=$?
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null
	e2e_wait_exit "$pid" "$secs" && return 0
	e2e_log "pid $pid ignored SIGTERM for ${secs}s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null
	e2e_wait_exit "$pid" 5
	E2E_LAST_RC=137
	return 1
}

# e2e_cleanup: EXIT trap: stop every recorded process still running (by pid, checking
# its start time so a reused pid is never touched).
e2e_cleanup()
{
	local rc=$?
	local pid st name cur
	[ -f "$E2E_TMP/pids" ] || return $rc
	while read -r pid st name; do
		[ -n "$pid" ] || continue
		cur=$(e2e_proc_stat "$pid" 22)
		[ -n "$cur" ] && [ "$cur" = "$st" ] || continue
		e2e_alive "$pid" || continue
		kill -TERM "$pid" 2>/dev/null
	done <"$E2E_TMP/pids"
	local i
	for ((i = 0; i < 30; i++)); do
		local any=0
		while read -r pid st name; do
			cur=$(e2e_proc_stat "$pid" 22)
			[ -n "$cur" ] && [ "$cur" = "$st" ] && e2e_alive "$pid" && any=1
		done <"$E2E_TMP/pids"
		[ $any = 0 ] && break
		sleep 0.1
	done
	while read -r pid st name; do
		cur=$(e2e_proc_stat "$pid" 22)
		if [ -n "$cur" ] && [ "$cur" = "$st" ] && e2e_alive "$pid"; then
			e2e_log "cleanup: $name (pid $pid) ignored SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done <"$E2E_TMP/pids"
	return $rc
}

# e2e_died PID NAME: if PID has ended, log how (exit status or signal) and fail.
e2e_died()
{
	e2e_alive "$1" && return 0
	wait "$1" 2>/dev/null
	local rc=$?
	local how="exit status $rc"
	[ $rc -gt 128 ] && how="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
	e2e_log "$2 stderr: $(tail -5 "$E2E_TMP/$2.err")"
	e2e_fail "$2 (pid $1) ended during start-up: $how"
}

# e2e_sluice_conf FILE LISTEN_PORT UPSTREAM_PORT [KEY VALUE lines...]: write a sluice
# config: listen on 127.0.0.1:LISTEN_PORT, upstream 127.0.0.1:UPSTREAM_PORT, 2 shards,
# plus extra lines (each argument one line, e.g. "max-recipients 3"). Without a
# "zones FILE" line among them, the default test zones (e2e_default_zones) are used.
e2e_sluice_conf()
{
	local f=$1 lp=$2 up=$3
	shift 3
	local l zones=
	for l in "$@"; do
		case $l in zones\ *) zones=given ;; esac
	done
	if [ -z "$zones" ]; then
		e2e_default_zones "$E2E_TMP/default-zones.txt"
		set -- "zones $E2E_TMP/default-zones.txt" "$@"
	fi
	{
		echo "# written by $E2E_NAME"
		echo "listen 127.0.0.1:$lp"
		echo "upstream 127.0.0.1:$up"
		echo "shards 2"
		echo "hostname sluice.e2e.test"
		for l in "$@"; do
			echo "$l"
		done
	} >"$f"
}

# e2e_default_zones FILE: the zones every test uses unless it gives its own `zones`
# line: each test domain (e2e.test, example.test: sluice-source's default,
# bench.test) forwards every address to one inbox at the sink.
e2e_default_zones()
{
	cat >"$1" <<'ZONES'
# e2e default zones (tests/e2e/lib.sh)
zone e2e.test
*@e2e.test forward inbox@sink.e2e.test
zone example.test
*@example.test forward inbox@sink.e2e.test
zone bench.test
*@bench.test forward inbox@sink.e2e.test
verified-domain sink.e2e.test
ZONES
}

# e2e_start_sluice NAME CONF PORT: start $E2E_BUILD/sluice -c CONF, wait for PORT.
# Sets E2E_LAST_PID.
e2e_start_sluice()
{
	local name=$1 conf=$2 port=$3
	e2e_start "$name" "$E2E_BUILD/sluice" -c "$conf"
	local pid=$E2E_LAST_PID
	if ! e2e_wait_port 127.0.0.1 "$port" 15 "$pid"; then
		e2e_died "$pid" "$name"
		e2e_log "sluice stderr: $(tail -5 "$E2E_TMP/$name.err")"
		e2e_log "sluice stdout: $(tail -5 "$E2E_TMP/$name.out")"
		e2e_fail "sluice ($name) did not listen on 127.0.0.1:$port within 15s"
	fi
	E2E_LAST_PID=$pid
}

# e2e_sluice NAME PORT UPSTREAM_PORT [LINE...]: write NAME.conf (e2e_sluice_conf) and
# start sluice NAME-sluice on it (e2e_start_sluice). Sets E2E_LAST_PID.
e2e_sluice()
{
	local name=$1 port=$2 up=$3
	shift 3
	e2e_sluice_conf "$name.conf" "$port" "$up" "$@"
	e2e_start_sluice "$name-sluice" "$name.conf" "$port"
}

# e2e_start_sink NAME PORT ARGS...: start $E2E_BUILD/sluice-sink ARGS 127.0.0.1:PORT
# with a pidfile, wait for it. Sets E2E_LAST_PID.
e2e_start_sink()
{
	local name=$1 port=$2
	shift 2
	rm -f "$E2E_TMP/$name.pid"
	e2e_start "$name" "$E2E_BUILD/sluice-sink" --pidfile "$E2E_TMP/$name.pid" "$@" \
		"127.0.0.1:$port"
	local pid=$E2E_LAST_PID
	if ! e2e_wait_file "$E2E_TMP/$name.pid" 15 || ! e2e_wait_port 127.0.0.1 "$port" 5 "$pid"
	then
		e2e_died "$pid" "$name"
		e2e_log "sink stderr: $(tail -5 "$E2E_TMP/$name.err")"
		e2e_fail "sluice-sink ($name) did not start on 127.0.0.1:$port"
	fi
	E2E_LAST_PID=$pid
}

# e2e_start_nsd ZONE RECORDS PORT: Debian's NSD, authoritative for ZONE on
# 127.0.0.1:PORT over UDP and TCP, its files in $E2E_TMP/nsd. RECORDS holds the
# zone's records relative to ZONE; the SOA, the NS and its address (ns.ZONE A
# 127.0.0.1) are written here, TTL 60. Waits until NSD answers ZONE's SOA. Skips the
# test (77) when nsd is not installed.
e2e_start_nsd()
{
	local zone=$1 zonefile=$2 port=$3 d=$E2E_TMP/nsd i
	[ -x /usr/sbin/nsd ] || e2e_skip "nsd is not installed (apt-get install nsd)"
	mkdir -p "$d"
	{
		echo "\$ORIGIN $zone."
		echo "\$TTL 60"
		echo "@ SOA ns.$zone. hostmaster.$zone. 1 3600 600 86400 60"
		echo "@ NS ns.$zone."
		echo "ns A 127.0.0.1"
		cat "$zonefile"
	} >"$d/$zone.zone"
	cat >"$d/nsd.conf" <<CONF
server:
	ip-address: 127.0.0.1@$port
	port: $port
	username: ""
	chroot: ""
	zonesdir: "$d"
	database: ""
	pidfile: "$d/nsd.pid"
	xfrdfile: "$d/xfrd.state"
	zonelistfile: "$d/zone.list"
	xfrdir: "$d"
	logfile: "$d/nsd.log"
	server-count: 1
	verbosity: 0
	reuseport: no
remote-control:
	control-enable: no
zone:
	name: "$zone"
	zonefile: "$d/$zone.zone"
CONF
	e2e_start nsd /usr/sbin/nsd -d -c "$d/nsd.conf"
	local pid=$E2E_LAST_PID
	for ((i = 0; i < 50; i++)); do
		python3 - "$port" "$zone" <<'PY' && return 0
import socket, struct, sys
name = b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[2].split(".")) + b"\0"
q = struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + name + struct.pack(">HH", 6, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
d = s.recv(512)
sys.exit(0 if d[:2] == q[:2] and d[3] & 15 == 0 else 1)
PY
		e2e_alive "$pid" || e2e_fail "nsd died: $(tail -3 "$d/nsd.log" "$E2E_TMP/nsd.err" 2>/dev/null)"
		sleep 0.1
	done
	e2e_fail "nsd does not answer for $zone on 127.0.0.1:$port"
}

# e2e_start_ledger_sink NAME ADDR PORT ARGS...: sluice-sink ARGS on ADDR:PORT (any
# loopback address, [::1] too) with the ledger $E2E_TMP/NAME.ledger, named NAME in its
# greeting; waits for its pidfile. For tests with several destinations (MX delivery).
e2e_start_ledger_sink()
{
	local name=$1 addr=$2 port=$3
	shift 3
	rm -f "$E2E_TMP/$name.pid"
	e2e_start "$name" "$E2E_BUILD/sluice-sink" --pidfile "$E2E_TMP/$name.pid" \
		--ledger "$E2E_TMP/$name.ledger" --hostname "$name.sink" "$@" "$addr:$port"
	e2e_wait_file "$E2E_TMP/$name.pid" 15 ||
		e2e_fail "sink $name did not start on $addr:$port: $(tail -3 "$E2E_TMP/$name.err")"
}

# e2e_start_smtp_sink NAME PORT ARGS...: Postfix smtp-sink on 127.0.0.1:PORT.
e2e_start_smtp_sink()
{
	local name=$1 port=$2
	shift 2
	e2e_start "$name" /usr/sbin/smtp-sink -u nobody "$@" "127.0.0.1:$port" 1024
	local pid=$E2E_LAST_PID
	e2e_wait_port 127.0.0.1 "$port" 10 "$pid" ||
		e2e_fail "smtp-sink ($name) did not start: $(tail -3 "$E2E_TMP/$name.err")"
	E2E_LAST_PID=$pid
}

# e2e_summary_field FILE KEY: the value of KEY=VALUE in the last summary line of FILE
# (sluice-source's `sent=N accepted=N ...` or sluice-sink's `sink: ...`).
e2e_summary_field()
{
	grep -E "(^|[ :])$2=" "$1" 2>/dev/null | tail -1 | tr ' ' '\n' |
		sed -n "s/^$2=//p" | tail -1
}

# e2e_ledger_compare SOURCE_LEDGER SINK_LEDGER MODE: MODE "equal" (same set of lines)
# or "subset" (every SOURCE line is in SINK). Prints what differs (ids missing from the
# sink, ids whose hash/size differ, extra ids in the sink) and returns 1 on mismatch.
e2e_ledger_compare()
{
	python3 - "$@" <<'EOF'
import sys
src_path, sink_path, mode = sys.argv[1:4]
def load(p):
    d, bad = {}, 0
    try:
        f = open(p, "r", errors="replace")
    except OSError as e:
        print("cannot read %s: %s" % (p, e))
        sys.exit(1)
    with f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                bad += 1
                continue
            d.setdefault(parts[0], []).append((parts[1], parts[2]))
    return d, bad
src, sbad = load(src_path)
sink, kbad = load(sink_path)
problems = []
if sbad or kbad:
    problems.append("malformed ledger lines: source %d, sink %d" % (sbad, kbad))
dups = [k for k, v in src.items() if len(v) > 1]
if dups:
    problems.append("%d duplicate ids in source ledger (e.g. %s)" % (len(dups), dups[0]))
missing = [k for k in src if k not in sink]
differ = [k for k in src if k in sink and src[k][0] not in sink[k]]
extra = [k for k in sink if k not in src]
if missing:
    problems.append("%d acknowledged ids missing from sink: %s" % (len(missing), " ".join(sorted(missing)[:10])))
if differ:
    k = sorted(differ)[0]
    problems.append("%d ids differ in hash/size, e.g. %s source %s sink %s" % (len(differ), k, src[k][0], sink[k][0]))
if mode == "equal" and extra:
    problems.append("%d ids in sink but not acknowledged to source: %s" % (len(extra), " ".join(sorted(extra)[:10])))
print("ledger: source %d ids, sink %d ids, missing %d, differ %d, extra-in-sink %d" % (len(src), len(sink), len(missing), len(differ), len(extra)))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
}

# e2e_xxh64_file FILE: "HASH SIZE" of FILE per the ledger rule (leading Received:
# fields skipped), computed with libxxhash through ctypes.
e2e_xxh64_file()
{
	python3 "$E2E_LIB_DIR/smtpscript.py" --ledger-line "$1"
}

# e2e_msrs DOMAIN forward|reverse ADDRESS...: Mail::SRS (Guarded, MaxAge 3) for our
# forwarding DOMAIN with the secrets in $SECRETS (default ./secrets), one result per
# line ("ERROR: ..." when it refuses); T=UNIXTIME fakes its clock. Errors go to
# msrs.err.
e2e_msrs()
{
	local domain=$1
	shift
	SECRETS=${SECRETS:-secrets} T=${T:-} DOMAIN=$domain perl -e '
		BEGIN { my $t = $ENV{T}; *CORE::GLOBAL::time = sub { length $t ? $t : CORE::time() } }
		use Mail::SRS;
		open(my $f, "<", $ENV{SECRETS}) or die "$ENV{SECRETS}: $!";
		chomp(my @secrets = <$f>);
		my $srs = Mail::SRS->new(Secret => \@secrets, MaxAge => 3);
		my $op = shift;
		for my $a (@ARGV) {
			my $r = eval { $srs->$op($a, $ENV{DOMAIN}) };
			if (defined $r) { print "$r\n" } else { $@ =~ s/ at \/.*//s; print "ERROR: $@\n" }
		}' "$@" 2>>msrs.err
}
