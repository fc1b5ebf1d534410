#!/bin/bash
# t_mx_faults.sh -- issue 5's fault runs with the zero-loss ledger, MX delivery.
#
# sluice (upstream none) resolves through NSD on loopback and delivers to sluice-sinks
# at one mx-port; sluice-source writes a ledger of every message it saw acknowledged
# with 250, and each run checks that every one of them is in the ledger of every sink
# it was forwarded to (same id, same content hash), and that the faults really hit
# (some messages refused, none lost):
#   ok      a healthy destination: everything accepted
#   reset   the sink drops every 3rd connection mid-DATA
#   stall   the sink stops reading mid-DATA every 3rd message (upstream-timeout 3s)
#   mixed   fan-out to the healthy and the resetting host: 250 only when both took it
#   servfail / timeout  a second and third sluice whose resolver answers SERVFAIL to
#           everything / never answers: every message refused 451 4.4.3, none hangs
# e2e-timeout: 240
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink sluice-source
e2e_need_cmds python3

read -r PL PL2 PL3 PD PS PT PMX <<<"$(e2e_free_ports 7)"

# --- DNS: NSD with the destinations; a SERVFAIL server; a silent one ---
cat >test.zone <<'ZONE'
ok         MX    10 mx.ok.test.
mx.ok      A     127.0.0.2
reset      MX    10 mx.reset.test.
mx.reset   A     127.0.0.3
stall      MX    10 mx.stall.test.
mx.stall   A     127.0.0.4
ZONE
e2e_start_nsd test test.zone "$PD"
cat >fakedns.py <<'PY'
# answers every query with SERVFAIL (mode servfail) or reads and never answers (silent)
import socket, sys
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", port)); t.listen(16)   # c-ares may retry over TCP: accept, say nothing
open(sys.argv[3], "w").write("ready\n")
while True:
    q, peer = s.recvfrom(512)
    if mode == "servfail" and len(q) >= 12:
        # same id and question, QR=1, RD copied, RA=1, RCODE=2, no answers
        r = q[:2] + bytes([0x80 | (q[2] & 0x01), 0x82]) + q[4:6] + b"\0\0\0\0\0\0" + q[12:]
        s.sendto(r, peer)
PY
e2e_start dns-servfail python3 fakedns.py servfail "$PS" "$E2E_TMP/servfail.ready"
e2e_start dns-silent python3 fakedns.py silent "$PT" "$E2E_TMP/silent.ready"
e2e_wait_file servfail.ready 10 && e2e_wait_file silent.ready 10 ||
	e2e_fail "the fake DNS servers did not start"

# --- sinks ---
e2e_start_ledger_sink ok 127.0.0.2 "$PMX" --quiet
e2e_start_ledger_sink reset 127.0.0.3 "$PMX" --quiet --disconnect-in-data 2000 --every 3
e2e_start_ledger_sink stall 127.0.0.4 "$PMX" --quiet --stall-in-data 2000 --every 3

# --- three sluices: NSD, SERVFAIL, silent resolver ---
cat >zones.txt <<'ZONES'
zone e2e.test
ok@e2e.test     forward a@ok.test
reset@e2e.test  forward a@reset.test
stall@e2e.test  forward a@stall.test
mixed@e2e.test  forward m@ok.test m@reset.test
verified-domain ok.test
verified-domain reset.test
verified-domain stall.test
ZONES
sluice_conf()
{
	cat <<CONF
listen 127.0.0.1:$1
upstream none
dns 127.0.0.1:$2
mx-port $PMX
tls-policy none
shards 2
hostname sluice.e2e.test
zones $E2E_TMP/zones.txt
upstream-timeout 3s
connect-timeout 2s
CONF
}
sluice_conf "$PL" "$PD" >sluice.conf
sluice_conf "$PL2" "$PS" >sluice-servfail.conf
sluice_conf "$PL3" "$PT" >sluice-silent.conf
e2e_start_sluice sluice sluice.conf "$PL"
SLUICE_PID=$E2E_LAST_PID
e2e_start_sluice sluice-servfail sluice-servfail.conf "$PL2"
e2e_start_sluice sluice-silent sluice-silent.conf "$PL3"

# run NAME PORT RCPT MESSAGES: sluice-source with a ledger; sets ACC REJ FAIL
run()
{
	local name=$1 port=$2 rcpt=$3 n=$4
	"$E2E_BUILD/sluice-source" -q -s 4 -m "$n" -l 4k,64k -t "$rcpt" --timeout 30s \
		--ledger "$E2E_TMP/src-$name.ledger" "127.0.0.1:$port" >"src-$name.out" 2>&1
	ACC=$(e2e_summary_field "src-$name.out" accepted)
	REJ=$(e2e_summary_field "src-$name.out" rejected)
	FAIL=$(e2e_summary_field "src-$name.out" failed)
	e2e_log "$name: $(tail -1 "src-$name.out")"
	touch "src-$name.ledger"
}
# in_sink NAME SINK: every message acknowledged in run NAME is in SINK's ledger
in_sink()
{
	touch "$2.ledger"
	e2e_ledger_compare "src-$1.ledger" "$2.ledger" subset >"cmp-$1-$2.out" ||
		e2e_fail "$1: acknowledged but not at sink $2: $(tail -1 "cmp-$1-$2.out")"
}

run ok "$PL" ok@e2e.test 60
[ "$ACC" = 60 ] || e2e_fail "ok: $ACC of 60 accepted"
in_sink ok ok

run reset "$PL" reset@e2e.test 60
[ "${REJ:-0}" -ge 5 ] || e2e_fail "reset: only ${REJ:-0} refused: did the fault hit?"
[ "${ACC:-0}" -ge 20 ] || e2e_fail "reset: only ${ACC:-0} accepted"
in_sink reset reset

run stall "$PL" stall@e2e.test 12
[ "${REJ:-0}" -ge 1 ] || e2e_fail "stall: nothing refused: did the fault hit?"
in_sink stall stall
grep -q '451 4.4.2' sluice.out || e2e_fail "stall: no 451 4.4.2 time-out in sluice's log"

run mixed "$PL" mixed@e2e.test 30
[ "${REJ:-0}" -ge 3 ] || e2e_fail "mixed: only ${REJ:-0} refused: did the fault hit?"
in_sink mixed ok
in_sink mixed reset

run servfail "$PL2" ok@e2e.test 5
[ "${ACC:-x}" = 0 ] && [ "${REJ:-0}" = 5 ] ||
	e2e_fail "servfail: accepted=${ACC:-?} rejected=${REJ:-?}, want 0 and 5"
grep -q '451 4.4.3' sluice-servfail.out || e2e_fail "servfail: no 451 4.4.3 in the log"

run silent "$PL3" ok@e2e.test 3
[ "${ACC:-x}" = 0 ] && [ "${REJ:-0}" = 3 ] ||
	e2e_fail "silent resolver: accepted=${ACC:-?} rejected=${REJ:-?}, want 0 and 3"

for pid in "$SLUICE_PID"; do
	e2e_stop "$pid"
	[ "$E2E_LAST_RC" = 0 ] || e2e_fail "sluice exited with status $E2E_LAST_RC"
done
e2e_log "no acknowledged message lost: resets, stalls, fan-out, SERVFAIL, DNS time-outs"
