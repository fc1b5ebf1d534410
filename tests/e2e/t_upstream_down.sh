#!/usr/bin/env bash
# t_upstream_down: an unusable upstream must never turn into a 250 for a recipient, and
# must not take sluice down. Three sub-cases, each with its own sluice:
#   refused: the upstream port has no listener. Session 1 (one command at a time): RCPT
#     gets a 4xx (451 4.4.1 expected) within 3 s, DATA is then refused (not 354), RSET
#     250, QUIT 221. Session 2 pipelines MAIL+RCPT+DATA in one write: 250, 4xx, and no
#     354. Then a sluice-sink is started on that port and session 3 relays a message:
#     RCPT 250, end of data 250, and the sink's ledger has it (sluice recovers by itself).
#   silent: the upstream accepts TCP but never greets (python), upstream-timeout 2s: RCPT
#     gets a 4xx 1.5-4.5 s after it was sent; the session goes on (RSET 250, QUIT 221);
#     the fake upstream sees sluice close that connection.
#   greet554: the upstream greets with `554 5.3.2`: RCPT gets a 4xx within 3 s; QUIT 221.
# In every sub-case sluice is still running afterwards and a new session gets 220, and
# sluice exits 0 at SIGTERM.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink

# Fake upstreams: silent (accepts, never speaks) and greet554 (refuses in its greeting).
cat >fakeup.py <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
mode, port, ready, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
note = sc.note_to(log)
def serve(c, n):
    c.settimeout(90)
    t0 = time.monotonic()
    note("conn %d accepted" % n)
    try:
        if mode == "greet554":
            c.sendall(b"554 5.3.2 upstream.e2e.test no service here\r\n")
        f = c.makefile("rb")
        for _ in range(100):
            l = f.readline()
            if not l:
                break
            note("conn %d got %r" % (n, l))
            if mode == "greet554":
                if l.upper().startswith(b"QUIT"):
                    c.sendall(b"221 2.0.0 bye\r\n")
                    break
                c.sendall(b"503 5.5.1 no service\r\n")
        note("conn %d closed by peer after %.2f s" % (n, time.monotonic() - t0))
    except OSError as e:
        note("conn %d error %s after %.2f s" % (n, e, time.monotonic() - t0))
    finally:
        c.close()
sc.serve_upstream(port, ready, serve, 110)
PY

cat >client.py <<'PY'
import os, sys
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
from smtpclient import problems, reply, step, want
what, port = sys.argv[1], int(sys.argv[2])

def conn():
    return sc.conn(port)

def start(label):
    """A new session: greeting 220, EHLO 250."""
    s, f = conn()
    want(label + " greeting", reply(f, s), ["220"])
    step(s, f, label + " EHLO", "EHLO down.e2e.test", ["250"])
    return s, f

def rcpt_refused(label, tmin, tmax, rcpt_timeout=10.0):
    s, f = start(label)
    step(s, f, label + " MAIL", "MAIL FROM:<a@e2e.test>", ["250"])
    got, dt = step(s, f, label + " RCPT", "RCPT TO:<b@e2e.test>", ["4"], rcpt_timeout)
    if got.startswith("4") and not tmin <= dt <= tmax:
        problems.append("%s: RCPT's 4xx came after %.2f s, want %.1f-%.1f s" % (label, dt, tmin, tmax))
    got, _ = step(s, f, label + " DATA", "DATA", ["554", "503", "4"])
    if got.startswith("354"):
        s.sendall(b".\r\n")
        reply(f, s)
    step(s, f, label + " RSET", "RSET", ["250"])
    step(s, f, label + " QUIT", "QUIT", ["221"])
    s.close()

def pipelined(label):
    s, f = start(label)
    s.sendall(b"MAIL FROM:<a@e2e.test>\r\nRCPT TO:<b@e2e.test>\r\nDATA\r\n")
    want(label + " pipelined MAIL", reply(f, s), ["250"])
    want(label + " pipelined RCPT", reply(f, s), ["4"])
    got = reply(f, s)
    want(label + " pipelined DATA", got, ["554", "503", "4"])
    if got.startswith("354"):
        s.sendall(b".\r\n")
        reply(f, s)
    step(s, f, label + " QUIT", "QUIT", ["221"])
    s.close()

def deliver(label, msgid):
    s, f = start(label)
    step(s, f, label + " MAIL", "MAIL FROM:<a@e2e.test>", ["250"])
    step(s, f, label + " RCPT", "RCPT TO:<b@e2e.test>", ["250"])
    got, _ = step(s, f, label + " DATA", "DATA", ["354"])
    if got.startswith("354"):
        s.sendall(b"Message-ID: <" + msgid.encode() + b">\r\nSubject: back\r\n\r\nhello again\r\n")
        step(s, f, label + " end of data", ".", ["250"])
    step(s, f, label + " QUIT", "QUIT", ["221"])
    s.close()

def greet(label):
    s, f = conn()
    want(label + " greeting", reply(f, s), ["220"])
    step(s, f, label + " QUIT", "QUIT", ["221"])
    s.close()

if what == "refused":
    rcpt_refused("session 1", 0.0, 3.0)
    pipelined("session 2")
elif what == "deliver":
    deliver("session 3", sys.argv[3])
elif what == "silent":
    rcpt_refused("silent upstream", 1.5, 4.5)
elif what == "greet554":
    rcpt_refused("554 greeting", 0.0, 3.0)
elif what == "greet":
    greet("next session")
sc.done()
PY

# client NAME ARGS...: run client.py, log its output, record its problems under NAME.
client()
{
	e2e_case_client "$1" 60 client.py "${@:2}"
}

# finish NAME PID PORT: sluice still up and serving, then stops with status 0.
finish()
{
	local name=$1 pid=$2 port=$3
	e2e_case_alive "$name" "$pid" && client "$name-after" greet "$port"
	e2e_case_stop "$name" "$pid"
}

# fake_up NAME MODE: fakeup.py MODE on $up_port as NAME (log NAME.log), wait for it.
fake_up()
{
	e2e_start "$1" python3 fakeup.py "$2" "$up_port" "$E2E_TMP/$1.ready" "$E2E_TMP/$1.log"
	e2e_wait_file "$E2E_TMP/$1.ready" 10 || e2e_fail "fake upstream ($2) did not start"
}

# --- refused: nobody listens on the upstream port (run.sh checked it is free) ---
up_port=$(e2e_port 0)
port=$(e2e_port 1)
e2e_log "=== sub-case refused: upstream 127.0.0.1:$up_port has no listener"
e2e_sluice refused "$port" "$up_port" "upstream-timeout 5s"
pid=$E2E_LAST_PID
client refused refused "$port"
e2e_alive "$pid" || e2e_case_fail refused "sluice died with the upstream down: $(tail -2 refused-sluice.err)"
e2e_start_sink sink "$up_port" --quiet --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
client refused-recover deliver "$port" "down-recovered@e2e.test"
finish refused "$pid" "$port"
e2e_stop "$sink_pid" 10
touch sink.ledger
grep -q '^down-recovered@e2e.test ' sink.ledger ||
	e2e_case_fail refused "the message sent once the upstream was back is not in the sink's ledger"

# --- silent: accepts TCP, never greets ---
up_port=$(e2e_port 2)
port=$(e2e_port 3)
e2e_log "=== sub-case silent: upstream accepts and never greets, upstream-timeout 2s"
fake_up silent-up silent
e2e_sluice silent "$port" "$up_port" "upstream-timeout 2s"
pid=$E2E_LAST_PID
client silent silent "$port"
closed=0
for ((i = 0; i < 30; i++)); do
	grep -q 'closed by peer' silent-up.log 2>/dev/null && closed=1 && break
	sleep 0.1
done
sed 's/^/  silent-up: /' silent-up.log >&2
[ $closed = 1 ] || e2e_case_fail silent "sluice did not close its connection to the silent upstream"
finish silent "$pid" "$port"

# --- greet554: refuses in its greeting ---
up_port=$(e2e_port 4)
port=$(e2e_port 5)
e2e_log "=== sub-case greet554: upstream greets with 554"
fake_up g554-up greet554
e2e_sluice greet554 "$port" "$up_port" "upstream-timeout 5s"
pid=$E2E_LAST_PID
client greet554 greet554 "$port"
sed 's/^/  g554-up: /' g554-up.log >&2
finish greet554 "$pid" "$port"

e2e_case_finish
exit 0
