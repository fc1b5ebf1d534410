#!/usr/bin/env bash
# t_limits: the per-shard session limits, the error limit and the two client time-outs.
# Each sub-case has its own sluice (shards 1 where a per-shard limit is measured) in
# front of one sluice-sink --ledger, driven by a python client over loopback.
# Pass, per sub-case:
#   sessions: max-sessions 3: three sessions get 220; a 4th concurrent connection gets
#     `421 4.3.2` and is closed; after one of the three QUITs (and its connection has
#     closed), a new connection gets 220 (retried for at most 3 s while the slot frees);
#   perip: max-connections-per-ip 2: two connections from 127.0.0.1 get 220, the third
#     gets `421 4.7.0` and is closed; a connection from 127.0.0.2 (another address) at
#     the same time gets 220; after one 127.0.0.1 session QUITs, 127.0.0.1 is served
#     again;
#   errors: max-errors 3: the third bad command gets its 500, then `421 4.7.0`, then the
#     connection closes (a transcript run by smtpscript.py);
#   cmdtimeout: command-timeout 1s: a client idle after the greeting, and one idle after
#     EHLO, each get `421 4.4.2 ... timeout ...` 0.8-3 s after their last command, then
#     the connection closes;
#   datatimeout: data-timeout 1s: a client that stops after 4000 bytes of DATA content
#     gets a 421 (0.8-3 s later), the connection closes, and once the sink is stopped
#     its ledger does not contain that message;
#   sluice is still running at the end of each sub-case.
# All sub-cases run; the test fails if any failed, naming each.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink

sink_port=$(e2e_port 0)
e2e_start_sink sink "$sink_port" --quiet --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID

cat >limits.py <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
from smtpclient import problems, recv_reply as reply

port = int(sys.argv[2])


def conn(src=None):
    return sc.connect(port, nodelay=False, src=src)


def expect(what, got, prefix):
    if not got.startswith(prefix):
        problems.append("%s: want '%s...', got '%s'" % (what, prefix, got))
        return False
    return True


def expect_closed(what, s):
    got = reply(s, 5)
    if got != "EOF":
        problems.append("%s: want the connection closed, got '%s'" % (what, got))


def cmd(s, line):
    s.sendall(line.encode() + b"\r\n")
    return reply(s)


def quit_and_wait(s, what):
    expect(what + " QUIT", cmd(s, "QUIT"), "221")
    expect_closed(what + " after QUIT", s)
    s.close()


def served_again(what, src=None):
    """A new connection gets 220; retried while the freed slot is recycled."""
    last = ""
    for i in range(30):
        s = conn(src)
        last = reply(s)
        if last.startswith("220"):
            print("%s: served again after %d retries" % (what, i))
            quit_and_wait(s, what)
            return
        s.close()
        time.sleep(0.1)
    problems.append("%s: no 220 within 3 s after a session ended; last reply '%s'" % (what, last))


def settle():
    # e2e_wait_port's probe connection was a session too: let sluice finish it first
    time.sleep(0.3)


def sessions():
    settle()
    held = []
    for i in range(3):
        s = conn()
        expect("session %d greeting" % (i + 1), reply(s), "220")
        held.append(s)
    s4 = conn()
    got = reply(s4)
    print("4th connection: %s" % got)
    if expect("4th concurrent connection", got, "421 4.3.2"):
        expect_closed("4th connection after its 421", s4)
    s4.close()
    # the held sessions still work
    expect("held session EHLO", cmd(held[1], "EHLO limits.e2e.test"), "250")
    quit_and_wait(held.pop(0), "session 1")
    served_again("after session 1 ended")
    for s in held:
        quit_and_wait(s, "held session")


def perip():
    settle()
    held = []
    for i in range(2):
        s = conn("127.0.0.1")
        expect("127.0.0.1 connection %d greeting" % (i + 1), reply(s), "220")
        held.append(s)
    s3 = conn("127.0.0.1")
    got = reply(s3)
    print("3rd connection from 127.0.0.1: %s" % got)
    if expect("3rd connection from 127.0.0.1", got, "421 4.7.0"):
        expect_closed("3rd connection after its 421", s3)
    s3.close()
    try:
        o = conn("127.0.0.2")
    except OSError as e:
        print("127.0.0.2 unusable (%s): other-address check skipped" % e)
        o = None
    if o is not None:
        got = reply(o)
        print("connection from 127.0.0.2: %s" % got)
        expect("connection from 127.0.0.2 (under its own limit)", got, "220")
        quit_and_wait(o, "127.0.0.2 session")
    quit_and_wait(held.pop(0), "127.0.0.1 session 1")
    served_again("127.0.0.1 after a session ended", "127.0.0.1")
    for s in held:
        quit_and_wait(s, "127.0.0.1 session")


def idle_timeout(after_ehlo):
    what = "idle after EHLO" if after_ehlo else "idle after greeting"
    s = conn()
    expect(what + " greeting", reply(s), "220")
    if after_ehlo:
        expect(what + " EHLO", cmd(s, "EHLO limits.e2e.test"), "250")
    t0 = time.monotonic()
    got = reply(s, 6)
    dt = time.monotonic() - t0
    print("%s: '%s' after %.2f s" % (what, got, dt))
    if expect(what, got, "421 4.4.2"):
        if "timeout" not in got:
            problems.append("%s: 421 without the word 'timeout': '%s'" % (what, got))
        if not 0.8 <= dt <= 3.0:
            problems.append("%s: 421 came after %.2f s; command-timeout is 1s" % (what, dt))
        expect_closed(what + " after its 421", s)
    s.close()


def cmdtimeout():
    idle_timeout(False)
    idle_timeout(True)


def datatimeout():
    msgid = sys.argv[3]
    s = conn()
    expect("greeting", reply(s), "220")
    expect("EHLO", cmd(s, "EHLO limits.e2e.test"), "250")
    expect("MAIL", cmd(s, "MAIL FROM:<a@e2e.test>"), "250")
    expect("RCPT", cmd(s, "RCPT TO:<b@e2e.test>"), "250")
    if not expect("DATA", cmd(s, "DATA"), "354"):
        return
    part = b"Message-ID: <" + msgid.encode() + b">\r\nSubject: stalls\r\n\r\n"
    while len(part) < 4000:
        part += b"z" * 78 + b"\r\n"
    s.sendall(part)
    t0 = time.monotonic()
    got = reply(s, 6)
    dt = time.monotonic() - t0
    print("stalled DATA: '%s' after %.2f s" % (got, dt))
    if expect("client stalled in DATA", got, "421"):
        if not 0.8 <= dt <= 3.0:
            problems.append("stalled DATA: 421 came after %.2f s; data-timeout is 1s" % dt)
        expect_closed("stalled DATA after its 421", s)
    s.close()


{"sessions": sessions, "perip": perip, "cmdtimeout": cmdtimeout,
 "datatimeout": datatimeout}[sys.argv[1]]()
sc.done()
PY

# run_case NAME PORT-INDEX CONFIG-LINES...: a sluice with these settings, limits.py NAME.
run_case()
{
	local name=$1 port
	port=$(e2e_port "$2")
	shift 2
	e2e_log "=== sub-case $name: $*"
	e2e_sluice "$name" "$port" "$sink_port" "$@"
	local pid=$E2E_LAST_PID
	if [ "$name" = errors ]; then
		cat >errors.txt <<'EOF'
# max-errors 3: the third protocol error gets its reply, then 421 and the close
S: 220
C: EHLO limits.e2e.test\r\n
S: 250
C: XYZZY\r\n
S: 500
C: RCPT TO:<b@e2e.test>\r\n
S: 503
C: NOSUCHCOMMAND\r\n
S: 500
S: 421 ^4\.7\.0
S: CLOSED
EOF
		python3 "$E2E_LIB_DIR/smtpscript.py" --port "$port" --timeout 5 --log "$E2E_TMP/transcripts" \
			errors.txt >"$name.py.out" 2>&1
	else
		timeout 60 python3 limits.py "$name" "$port" "limits-$name@e2e.test" >"$name.py.out" 2>&1
	fi
	e2e_case_output "$name" "$name.py.out" $?
	e2e_case_alive "$name" "$pid"
	e2e_case_stop "$name" "$pid"
}

run_case sessions 1 "shards 1" "max-sessions 3"
run_case perip 2 "shards 1" "max-connections-per-ip 2"
run_case errors 3 "max-errors 3"
run_case cmdtimeout 4 "command-timeout 1s"
run_case datatimeout 5 "data-timeout 1s"

e2e_stop "$sink_pid" 10
touch sink.ledger
if grep -q '^limits-datatimeout@e2e.test ' sink.ledger; then
	e2e_case_fail datatimeout "the stalled message reached the sink: $(grep '^limits-datatimeout' sink.ledger)"
fi

e2e_case_finish
exit 0
