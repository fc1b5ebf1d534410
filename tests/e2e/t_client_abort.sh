#!/usr/bin/env bash
# t_client_abort: clients that vanish in the middle of a transaction. Three sub-cases,
# each with its own sluice (upstream-timeout 3s):
#   data: sluice -> sluice-sink --ledger. Three clients start a 1 MiB message and go away
#     after 512 KiB: DATA then close (FIN), DATA then abortive close (RST), BDAT 1048576
#     then close. Pass: sluice's stdout gets a tx line with "outcome":"aborted" for each
#     of the three (within 5 s); then a normal 1 MiB message through the same sluice gets
#     250; with the sink stopped, its ledger has that message and none of the three.
#   dot: sluice -> sluice-sink --delay-ms 1500 --ledger. A client sends a whole message
#     and its final "." and closes at once, while sluice waits for the upstream's reply.
#     Pass: sluice logs a tx line for it (any outcome) and the session's line within
#     5 s; a following message through the same sluice gets 250 and is in the ledger.
#     (Whether the abandoned message itself reached the sink is logged, not judged: it
#     was complete, so either is allowed.)
#   rcpt: sluice -> a python upstream that greets, accepts EHLO and MAIL and never
#     answers RCPT. A client sends RCPT and closes 0.5 s later, while sluice waits for
#     the upstream's RCPT reply. Pass: sluice logs an aborted tx and the session line,
#     and the fake upstream sees its connection closed (QUIT or EOF), within
#     upstream-timeout + 2 s = 5 s of the client's close (sluice reads nothing from a
#     paused client, so it may only notice at the upstream's deadline);
#     a new session is served (220, EHLO 250) and its own RCPT gets a 4xx, not another
#     session's stale reply, about upstream-timeout (3 s) later.
# In every sub-case sluice keeps running and exits 0 at SIGTERM.
# e2e-timeout: 150
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink

cat >client.py <<'PY'
import os, socket, struct, sys, time
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
from smtpclient import problems, reply
what, port = sys.argv[1], int(sys.argv[2])
MIB = 1 << 20

def conn():
    return sc.conn(port)

def want(label, got, prefixes):
    return sc.want(label, got, prefixes, width=160)

def step(s, f, label, line, prefixes, timeout=10.0):
    return sc.step(s, f, label, line, prefixes, timeout, width=160)[0]

def message(msgid, size):
    m = bytearray(b"Message-ID: <" + msgid.encode() + b">\r\nSubject: abort test\r\n\r\n")
    while len(m) + 80 <= size:
        m += b"a" * 78 + b"\r\n"
    m += b"b" * (size - len(m) - 2) + b"\r\n"
    return bytes(m)

def start(label, rcpt_timeout=10.0, rcpt_want=("250",)):
    s, f = conn()
    want(label + " greeting", reply(f, s), ["220"])
    step(s, f, label + " EHLO", "EHLO abort.e2e.test", ["250"])
    step(s, f, label + " MAIL", "MAIL FROM:<a@e2e.test>", ["250"])
    return s, f

def abort_data(kind, msgid):
    label = "abort-" + kind
    s, f = start(label)
    step(s, f, label + " RCPT", "RCPT TO:<b@e2e.test>", ["250"])
    body = message(msgid, MIB)
    if kind == "bdat":
        s.sendall(b"BDAT %d LAST\r\n" % len(body))
    else:
        step(s, f, label + " DATA", "DATA", ["354"])
    s.sendall(body[:MIB // 2])
    time.sleep(0.2)
    if kind == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("%s: closed after %d of %d bytes" % (label, MIB // 2, len(body)))

def deliver(label, msgid, size):
    s, f = start(label)
    step(s, f, label + " RCPT", "RCPT TO:<b@e2e.test>", ["250"])
    if step(s, f, label + " DATA", "DATA", ["354"]).startswith("354"):
        s.sendall(message(msgid, size))
        step(s, f, label + " end of data", ".", ["250"], 20.0)
    step(s, f, label + " QUIT", "QUIT", ["221"])
    s.close()

def abort_dot(msgid):
    label = "abort-dot"
    s, f = start(label)
    step(s, f, label + " RCPT", "RCPT TO:<b@e2e.test>", ["250"])
    step(s, f, label + " DATA", "DATA", ["354"])
    s.sendall(message(msgid, 64 * 1024) + b".\r\n")
    s.close()
    print("%s: closed right after the final dot" % label)

def abort_rcpt():
    label = "abort-rcpt"
    s, f = start(label)
    s.sendall(b"RCPT TO:<b@e2e.test>\r\n")
    got = reply(f, s, 0.5)
    print("%s: reply within 0.5 s: %s (none expected)" % (label, got))
    s.close()
    print("%s: closed while the RCPT waits for the upstream" % label)

def next_rcpt():
    label = "next session"
    s, f = start(label)
    t0 = time.monotonic()
    got = step(s, f, label + " RCPT", "RCPT TO:<c@e2e.test>", ["4"], 10.0)
    dt = time.monotonic() - t0
    if got.startswith("4") and not 2.0 <= dt <= 6.0:
        problems.append("%s: RCPT's 4xx after %.2f s, want about upstream-timeout (3 s)" % (label, dt))
    step(s, f, label + " QUIT", "QUIT", ["221"])
    s.close()

if what in ("fin", "rst", "bdat"):
    abort_data(what, sys.argv[3])
elif what == "deliver":
    deliver("after the aborts", sys.argv[3], MIB)
elif what == "dot":
    abort_dot(sys.argv[3])
elif what == "rcpt":
    abort_rcpt()
elif what == "next":
    next_rcpt()
sc.done()
PY

# A fake upstream that never answers RCPT (and notes when its connection ends).
cat >stallup.py <<'PY'
import os, sys
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
port, ready, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
note = sc.note_to(log)
def serve(c, n):
    c.settimeout(90)
    note("conn %d accepted" % n)
    try:
        c.sendall(b"220 stall.e2e.test ESMTP\r\n")
        f = c.makefile("rb")
        for _ in range(200):
            l = f.readline()
            if not l:
                note("conn %d EOF" % n)
                break
            note("conn %d got %r" % (n, l))
            cmd = l[:4].upper()
            if cmd in (b"EHLO", b"HELO"):
                c.sendall(b"250 stall.e2e.test\r\n")
            elif cmd == b"QUIT":
                c.sendall(b"221 2.0.0 bye\r\n")
                note("conn %d QUIT" % n)
                break
            elif cmd == b"RCPT":
                note("conn %d RCPT stalled" % n)
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")
    except OSError as e:
        note("conn %d error %s" % (n, e))
    finally:
        c.close()
sc.serve_upstream(port, ready, serve, 140)
PY

# client NAME ARGS...: run client.py, log its output, record its problems under NAME.
client()
{
	e2e_case_client "$1" 60 client.py "${@:2}"
}

# count_log FILE PYTHON-CONDITION: how many JSON lines of FILE satisfy the condition
# (on the dict `j`); lines that are not JSON are ignored here (t_logs judges them).
count_log()
{
	python3 - "$1" "$2" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1], errors="replace"):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if isinstance(j, dict) and eval(sys.argv[2]):
        n += 1
print(n)
EOF
}

now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

# wait_log FILE WANT DEADLINE_MS PYTHON-CONDITION: wait until count_log reaches WANT or
# the clock passes DEADLINE_MS (now_ms scale); prints the last count.
wait_log()
{
	local f=$1 want=$2 deadline=$3 cond=$4 i n=0
	for ((i = 0; i < 200; i++)); do
		n=$(count_log "$f" "$cond")
		[ "$n" -ge "$want" ] && break
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.1
	done
	echo "$n"
}

# finish NAME PID: sluice still up, then stops with status 0.
finish()
{
	local name=$1 pid=$2
	e2e_case_alive "$name" "$pid"
	e2e_case_stop "$name" "$pid"
	sed "s/^/  $name-sluice stdout: /" "$name-sluice.out" >&2
}

# after NAME MSGID WHAT: while sluice ($pid) runs, relay MSGID through it; stop it
# (finish) and the sink; MSGID must be in NAME-sink.ledger (the message sent after WHAT).
after()
{
	local name=$1 msgid=$2
	e2e_alive "$pid" && client "$name-after" deliver "$port" "$msgid"
	finish "$name" "$pid"
	e2e_stop "$sink_pid" 10
	touch "$name-sink.ledger"
	cat "$name-sink.ledger" >&2
	grep -q "^$msgid " "$name-sink.ledger" ||
		e2e_case_fail "$name" "the message sent after $3 is not in the sink's ledger"
}

ABORTED='j.get("event") == "tx" and j.get("outcome") == "aborted"'

# relay NAME SINK-ARG...: sluice-sink NAME-sink --quiet SINK-ARGs --ledger NAME-sink.ledger
# on $sink_port (sink_pid), then sluice NAME-sluice (upstream-timeout 3s) on $port (pid).
relay()
{
	local name=$1
	shift
	e2e_start_sink "$name-sink" "$sink_port" --quiet "$@" --ledger "$E2E_TMP/$name-sink.ledger"
	sink_pid=$E2E_LAST_PID
	e2e_sluice "$name" "$port" "$sink_port" "upstream-timeout 3s"
	pid=$E2E_LAST_PID
}

# --- data: the client goes away in the middle of the content ---
sink_port=$(e2e_port 0)
port=$(e2e_port 1)
e2e_log "=== sub-case data"
relay data
n=0
for kind in fin rst bdat; do
	client "data-$kind" "$kind" "$port" "abort-$kind@e2e.test"
	n=$((n + 1))
	got=$(wait_log data-sluice.out $n $(($(now_ms) + 5000)) "$ABORTED")
	[ "$got" -ge $n ] ||
		e2e_case_fail data "no aborted tx logged within 5 s after the '$kind' client left mid-content ($got aborted lines for $n aborts)"
	e2e_alive "$pid" || break
done
after data abort-after@e2e.test "the aborts"
for kind in fin rst bdat; do
	grep -q "^abort-$kind@e2e.test " data-sink.ledger &&
		e2e_case_fail data "the message abandoned mid-content ($kind) reached the sink"
done

# --- dot: the client goes away while sluice waits for the end-of-data reply ---
sink_port=$(e2e_port 2)
port=$(e2e_port 3)
e2e_log "=== sub-case dot"
relay dot --delay-ms 1500
client dot dot "$port" "abort-dot@e2e.test"
deadline=$(($(now_ms) + 5000))
# the probe connection of e2e_wait_port is a session too: 2 session lines
got=$(wait_log dot-sluice.out 1 $deadline 'j.get("event") == "tx"')
[ "$got" -ge 1 ] || e2e_case_fail dot "no tx line logged within 5 s for the client that left after its final dot"
got=$(wait_log dot-sluice.out 2 $deadline 'j.get("event") == "session"')
[ "$got" -ge 2 ] || e2e_case_fail dot "no session line logged within 5 s for the client that left after its final dot"
after dot dot-after@e2e.test "the abandoned one"
if grep -q '^abort-dot@e2e.test ' dot-sink.ledger; then
	e2e_log "dot: the abandoned (complete) message did reach the sink (allowed)"
else
	e2e_log "dot: the abandoned (complete) message did not reach the sink (allowed)"
fi

# --- rcpt: the client goes away while sluice waits for the upstream's RCPT reply ---
up_port=$(e2e_port 4)
port=$(e2e_port 5)
e2e_log "=== sub-case rcpt"
e2e_start stall-up python3 stallup.py "$up_port" "$E2E_TMP/stall-up.ready" "$E2E_TMP/stall-up.log"
e2e_wait_file "$E2E_TMP/stall-up.ready" 10 || e2e_fail "fake upstream did not start"
e2e_sluice rcpt "$port" "$up_port" "upstream-timeout 3s"
pid=$E2E_LAST_PID
client rcpt rcpt "$port"
t_close=$(now_ms)
# sluice reads nothing from a client while it waits for the upstream (backpressure), so
# it may learn of the departure only when the upstream answers or its deadline
# (upstream-timeout 3s) passes: the bound is that deadline plus 2 s.
deadline=$((t_close + 5000))
got=$(wait_log rcpt-sluice.out 1 $deadline "$ABORTED")
t_logged=$(now_ms)
[ "$got" -ge 1 ] || e2e_case_fail rcpt "no aborted tx logged within 5 s after the client left during RCPT"
e2e_log "rcpt: aborted tx logged about $((t_logged - t_close)) ms after the client left"
got=$(wait_log rcpt-sluice.out 2 $deadline 'j.get("event") == "session"')
[ "$got" -ge 2 ] || e2e_case_fail rcpt "no session line logged within 5 s after the client left during RCPT"
closed=0
for ((i = 0; i < 100; i++)); do
	grep -q -E 'conn 1 (EOF|QUIT|error)' stall-up.log 2>/dev/null && closed=1 && break
	[ "$(now_ms)" -lt "$deadline" ] || break
	sleep 0.1
done
[ $closed = 1 ] ||
	e2e_case_fail rcpt "sluice kept its upstream connection open 5 s after the client left"
e2e_alive "$pid" && client rcpt-next next "$port"
sed 's/^/  stall-up: /' stall-up.log >&2
finish rcpt "$pid"

e2e_case_finish
exit 0
