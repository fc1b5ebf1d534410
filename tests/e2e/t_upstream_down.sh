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

failures=()
case_fail()
{
	e2e_log "sub-case $1: FAIL: $2"
	failures+=("$1: $2")
}

# Fake upstreams: silent (accepts, never speaks) and greet554 (refuses in its greeting).
cat >fakeup.py <<'PY'
import socket, sys, threading, time
mode, port, ready, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lf = open(log, "a", buffering=1)
def note(msg):
    lf.write("%.3f %s\n" % (time.monotonic(), msg))
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
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
ls.settimeout(1)
open(ready, "w").write("%d\n" % 1)
end = time.monotonic() + 110
n = 0
while time.monotonic() < end and n < 200:
    try:
        c, _ = ls.accept()
    except socket.timeout:
        continue
    n += 1
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
PY

cat >client.py <<'PY'
import socket, sys, time
what, port = sys.argv[1], int(sys.argv[2])
problems = []

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, s.makefile("rb")

def reply(f, s, timeout=10.0):
    s.settimeout(timeout)
    lines = []
    try:
        while True:
            l = f.readline()
            if not l:
                return " | ".join(lines) or "EOF"
            lines.append(l.decode(errors="replace").rstrip("\r\n"))
            if l[3:4] != b"-":
                return " | ".join(lines)
    except (socket.timeout, TimeoutError):
        return " | ".join(lines) or "TIMEOUT"

def want(label, got, prefixes):
    ok = any(got.startswith(p) for p in prefixes)
    print("%s: %s%s" % (label, got, "" if ok else "   <-- want " + "/".join(prefixes)))
    if not ok:
        problems.append("%s: want %s, got '%s'" % (label, " or ".join(prefixes), got))
    return ok

def step(s, f, label, line, prefixes, timeout=10.0):
    s.sendall(line.encode() + b"\r\n")
    t0 = time.monotonic()
    got = reply(f, s, timeout)
    dt = time.monotonic() - t0
    want("%s (%.2f s)" % (label, dt), got, prefixes)
    return got, dt

def rcpt_refused(label, tmin, tmax, rcpt_timeout=10.0):
    s, f = conn()
    want(label + " greeting", reply(f, s), ["220"])
    step(s, f, label + " EHLO", "EHLO down.e2e.test", ["250"])
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
    s, f = conn()
    want(label + " greeting", reply(f, s), ["220"])
    step(s, f, label + " EHLO", "EHLO down.e2e.test", ["250"])
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
    s, f = conn()
    want(label + " greeting", reply(f, s), ["220"])
    step(s, f, label + " EHLO", "EHLO down.e2e.test", ["250"])
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
for p in problems:
    print("PROBLEM " + p)
sys.exit(1 if problems else 0)
PY

# client NAME ARGS...: run client.py, log its output, record its problems under NAME.
client()
{
	local name=$1
	shift
	timeout 60 python3 client.py "$@" >"$name.client.out" 2>&1
	local rc=$?
	sed "s/^/  $name: /" "$name.client.out" >&2
	if [ $rc != 0 ]; then
		local first
		first=$(grep -E '^(PROBLEM|Traceback)' "$name.client.out" | head -1)
		case_fail "$name" "${first:-client exited $rc: $(tail -1 "$name.client.out")}"
	fi
}

# finish NAME PID PORT: sluice still up and serving, then stops with status 0.
finish()
{
	local name=$1 pid=$2 port=$3
	if e2e_alive "$pid"; then
		client "$name-after" greet "$port"
	else
		case_fail "$name" "sluice died: $(tail -2 "$name-sluice.err")"
	fi
	e2e_stop "$pid" 10
	[ "$E2E_LAST_RC" = 0 ] || case_fail "$name" "sluice exited with status $E2E_LAST_RC at SIGTERM"
}

# --- refused: nobody listens on the upstream port (run.sh checked it is free) ---
up_port=$(e2e_port 0)
port=$(e2e_port 1)
e2e_log "=== sub-case refused: upstream 127.0.0.1:$up_port has no listener"
e2e_sluice_conf refused.conf "$port" "$up_port" "upstream-timeout 5s"
e2e_start_sluice refused-sluice refused.conf "$port"
pid=$E2E_LAST_PID
client refused refused "$port"
e2e_alive "$pid" || case_fail refused "sluice died with the upstream down: $(tail -2 refused-sluice.err)"
e2e_start_sink sink "$up_port" --quiet --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
client refused-recover deliver "$port" "down-recovered@e2e.test"
finish refused "$pid" "$port"
e2e_stop "$sink_pid" 10
touch sink.ledger
grep -q '^down-recovered@e2e.test ' sink.ledger ||
	case_fail refused "the message sent once the upstream was back is not in the sink's ledger"

# --- silent: accepts TCP, never greets ---
up_port=$(e2e_port 2)
port=$(e2e_port 3)
e2e_log "=== sub-case silent: upstream accepts and never greets, upstream-timeout 2s"
e2e_start silent-up python3 fakeup.py silent "$up_port" "$E2E_TMP/silent-up.ready" "$E2E_TMP/silent-up.log"
e2e_wait_file "$E2E_TMP/silent-up.ready" 10 || e2e_fail "fake upstream (silent) did not start"
e2e_sluice_conf silent.conf "$port" "$up_port" "upstream-timeout 2s"
e2e_start_sluice silent-sluice silent.conf "$port"
pid=$E2E_LAST_PID
client silent silent "$port"
closed=0
for ((i = 0; i < 30; i++)); do
	grep -q 'closed by peer' silent-up.log 2>/dev/null && closed=1 && break
	sleep 0.1
done
sed 's/^/  silent-up: /' silent-up.log >&2
[ $closed = 1 ] || case_fail silent "sluice did not close its connection to the silent upstream"
finish silent "$pid" "$port"

# --- greet554: refuses in its greeting ---
up_port=$(e2e_port 4)
port=$(e2e_port 5)
e2e_log "=== sub-case greet554: upstream greets with 554"
e2e_start g554-up python3 fakeup.py greet554 "$up_port" "$E2E_TMP/g554-up.ready" "$E2E_TMP/g554-up.log"
e2e_wait_file "$E2E_TMP/g554-up.ready" 10 || e2e_fail "fake upstream (greet554) did not start"
e2e_sluice_conf greet554.conf "$port" "$up_port" "upstream-timeout 5s"
e2e_start_sluice greet554-sluice greet554.conf "$port"
pid=$E2E_LAST_PID
client greet554 greet554 "$port"
sed 's/^/  g554-up: /' g554-up.log >&2
finish greet554 "$pid" "$port"

if [ ${#failures[@]} -gt 0 ]; then
	printf '%s\n' "${failures[@]}" >&2
	msg=$(printf '%s; ' "${failures[@]}")
	e2e_fail "${#failures[@]} problem(s): ${msg%; }"
fi
exit 0
