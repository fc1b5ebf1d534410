#!/usr/bin/env bash
# t_shutdown: graceful stop. A 25 MiB DATA transfer is in progress (sent at ~5 MB/s) and
# 8 sessions sit idle (3 after the greeting, 3 after EHLO, 2 inside a transaction after
# MAIL+RCPT) when sluice gets SIGTERM (shutdown-timeout 20s).
# Pass: the transfer finishes with 250 and the sink's ledger has it; every idle session
# receives a 421 reply (then the connection closes); a connection attempt after SIGTERM
# gets no 220; sluice exits with status 0, within shutdown-timeout + 5 s.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
e2e_start_sink sink "$sink_port" --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_sluice_conf sluice.conf "$port" "$sink_port" "shutdown-timeout 20s"
e2e_start_sluice sluice sluice.conf "$port"
sluice_pid=$E2E_LAST_PID

cat >client.py <<'PY'
import json, os, sys, threading, time
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
from smtpclient import reply
port = int(sys.argv[1])
res = {"idle": [], "big": None}
def conn():
    return sc.conn(port, timeout=30)
def idle(kind):
    s, f = conn()
    r = reply(f)
    if kind in ("ehlo", "mail"):
        s.sendall(b"EHLO idle.e2e.test\r\n"); reply(f)
    if kind == "mail":
        s.sendall(b"MAIL FROM:<a@e2e.test>\r\n"); reply(f)
        s.sendall(b"RCPT TO:<b@e2e.test>\r\n"); reply(f)
    ready.release()
    s.settimeout(40)
    try:
        r = reply(f)
    except OSError as e:
        r = "error: %s" % e
    res["idle"].append({"state": kind, "got": r, "at": time.time()})
def big():
    s, f = conn()
    reply(f)
    s.sendall(b"EHLO big.e2e.test\r\n"); reply(f)
    s.sendall(b"MAIL FROM:<a@e2e.test>\r\n"); r1 = reply(f)
    s.sendall(b"RCPT TO:<b@e2e.test>\r\n"); r2 = reply(f)
    s.sendall(b"DATA\r\n"); r3 = reply(f)
    if not r3.startswith("354"):
        res["big"] = "DATA not accepted: %s / %s / %s" % (r1, r2, r3)
        ready.release()
        return
    body = b"Message-ID: <shutdown-big@e2e.test>\r\nSubject: big\r\n\r\n"
    line = b"x" * 78 + b"\r\n"
    body += line * ((25 * 1024 * 1024 - len(body)) // len(line))
    sent = 0
    chunk = 256 * 1024
    try:
        while sent < len(body):
            s.sendall(body[sent:sent + chunk])
            sent += chunk
            if sent >= 2 * 1024 * 1024 and not getattr(big, "told", False):
                big.told = True
                ready.release()
            time.sleep(0.05)
        s.sendall(b".\r\n")
        res["big"] = reply(f)
    except OSError as e:
        res["big"] = "error after %d bytes: %s" % (sent, e)
    res["big_done"] = time.time()
ready = threading.Semaphore(0)
ts = [threading.Thread(target=idle, args=(k,)) for k in ("greet",) * 3 + ("ehlo",) * 3 + ("mail",) * 2]
ts.append(threading.Thread(target=big))
for t in ts:
    t.start()
for _ in ts:
    ready.acquire(timeout=30)
open("ready", "w").write("%f\n" % time.time())
for t in ts:
    t.join(60)
print(json.dumps(res))
PY

e2e_start client python3 client.py "$port"
client_pid=$E2E_LAST_PID
e2e_wait_file ready 30 || e2e_fail "client did not get its sessions going: $(tail -3 client.err)"
term_at=$(date +%s.%N)
kill -TERM "$sluice_pid"
sleep 0.5
late=$(python3 -c 'import socket,sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
    s.settimeout(3)
    print(s.recv(100).decode(errors="replace").strip() or "EOF")
except OSError as e:
    print("refused: %s" % e)' "$port")
e2e_log "connection after SIGTERM: $late"

problems=()
case $late in 220*) problems+=("a connection after SIGTERM got a greeting: $late") ;; esac
e2e_wait_exit "$client_pid" 60 || e2e_fail "client still running 60s after SIGTERM"
if e2e_wait_exit "$sluice_pid" 30; then
	rc=$E2E_LAST_RC
	took=$(python3 -c "import time; print('%.1f' % (time.time() - $term_at))")
	e2e_log "sluice exited $rc ${took}s after SIGTERM"
	[ "$rc" = 0 ] || problems+=("sluice exited $rc after SIGTERM, want 0")
	python3 -c "import sys; sys.exit(0 if $took <= 25 else 1)" ||
		problems+=("sluice took ${took}s to exit (shutdown-timeout 20s)")
else
	problems+=("sluice still running 30s after SIGTERM")
fi
res=$(tail -1 client.out)
e2e_log "client: $res"
python3 - "$res" "$term_at" >check.out <<'PY'
import json, sys
r = json.loads(sys.argv[1])
t0 = float(sys.argv[2])
if not str(r.get("big")).startswith("250"):
    print("25 MiB transfer in progress at SIGTERM got %r, want 250" % r.get("big"))
if len(r["idle"]) != 8:
    print("only %d of 8 idle sessions reported" % len(r["idle"]))
for i in r["idle"]:
    if not i["got"].startswith("421"):
        print("idle session (%s) got %r, want 421" % (i["state"], i["got"]))
    else:
        print("# idle session (%s) got 421 %.1fs after SIGTERM" % (i["state"], i["at"] - t0))
PY
cat check.out >&2
while IFS= read -r l; do
	problems+=("$l")
done < <(grep -v '^#' check.out)
e2e_stop "$sink_pid" 10
grep -q '^shutdown-big@e2e.test ' sink.ledger 2>/dev/null ||
	problems+=("the 25 MiB message is not in the sink's ledger")

e2e_fail_on "${problems[@]}"
exit 0
