#!/usr/bin/env bash
# t_regressions: one sub-case per fixed server bug, each named after the bug ("each bug
# fix adds a test named after the bug"). Every sub-case has its own sluice (shards 1,
# upstream-timeout 3s) and, where it needs one, its own fake upstream
# (tests/e2e/fake_upstream.py, which logs what it receives). Each must fail against the
# behaviour before the fix and pass now:
#   data250: the upstream answers DATA with 250 instead of 354. Session 1 sends one
#     command at a time (sluice sends DATA upstream after the content), session 2
#     pipelines RCPT+DATA (sluice sends DATA upstream at once, "early DATA"). Assert: each
#     end-of-data reply is a 4xx, never 250 (seen: 451 4.4.0 Upstream protocol error for
#     session 1, 451 4.4.2 Upstream connection lost for session 2); the fake never gets
#     content.
#   early_dot_reply: the upstream says 354, reads 2 MiB of a 20 MiB message, replies 250
#     and stops reading for 1 s. Assert: the end-of-data reply is a 4xx, never 250; the
#     fake really replied before the "." (its log says so); sluice stays up; then the fake
#     is replaced by a sluice-sink on the same port and a new session's message is
#     accepted (250) and is in the sink's ledger.
#   nonreading_client_shutdown: a client with SO_RCVBUF 4096 pipelines NOOPs and never
#     reads (until its sends stall for 2 s); command-timeout 1s, shutdown-timeout 1s;
#     SIGTERM. Assert: sluice exits with status 0 within 20 s (a closing session's last
#     send gets 10 s, then is aborted; before the fix sluice never exited).
#   greeting_refused_pipelined_rcpt: the upstream greets "554 busy" plus extra bytes
#     ("250 trailing junk") in the same write; the client pipelines two RCPTs. Decided
#     after running it (the fixed server, against the old one):
#     session A, every connection refused: both RCPTs get 451 4.4.0/4.4.1/4.4.2 and the
#       second one is NOT "Upstream protocol error" (old: the second connection was torn
#       down by the first one's leftover bytes -> "protocol error" and a "bad reply" warn).
#     session B, only the first connection refused: RCPT 1 4xx, RCPT 2 250 from a fresh
#       connection that really spoke (the fake logs EHLO and the RCPT for c@e2e.test's
#       destination, inbox@sink.e2e.test in the default test zones), the message
#       is accepted (250) and the fake saw its end; old: RCPT 2 got 451 protocol error.
#     And sluice's stdout has no "bad reply"/"unexpected reply" warn line.
#   early_data_local_reject: the client pipelines RCPT+DATA (sluice sends MAIL, RCPT,
#     DATA upstream in one write; the fake says 354), then sends content with a bare LF.
#     Assert: the client gets 554 5.6.0; the fake sees its connection closed within
#     1.5 s of that 554 and never receives a "." line or a QUIT as content (old: "QUIT"
#     went out as content and the connection was held for upstream-timeout).
#   early_data_refused: the same pipelining; the fake answers RCPT 250 and DATA with
#     "554 5.7.1 no". Assert: the client gets 250, 354 (from sluice), and at the end of
#     its content the relayed "554 5.7.1", never 250; the fake never receives the content
#     (as commands). Run twice: content sent after the fake's 554, and at once.
#     NOTE: this one passes against the pre-fix server too; it guards the refusal path
#     that the fixes for data250 (2xx-to-DATA check) and early_data_local_reject (no
#     QUIT while an early DATA is open) changed.
# Every sluice must also still serve a new session (220) and exit 0 at SIGTERM.
# Prints "sub-case NAME: FAIL: why" per failure; exit 1 on any failure, 77 only when
# python3 is missing.
# e2e-timeout: 240
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_cmds python3
for b in sluice sluice-sink; do
	[ -x "$E2E_BUILD/$b" ] || e2e_fail "$E2E_BUILD/$b not built (run make)"
done
FAKE=$E2E_LIB_DIR/fake_upstream.py

# 12 ports: the ones from run.sh (8) and as many more as needed.
PORTS=("${E2E_PORTS[@]}")
if [ ${#PORTS[@]} -lt 12 ]; then
	# shellcheck disable=SC2207
	PORTS+=($(e2e_free_ports $((12 - ${#PORTS[@]})) "${PORTS[@]}"))
fi
[ ${#PORTS[@]} -ge 12 ] || e2e_fail "could not find 12 free ports"

# begin_case NAME N DESCRIPTION: sub-case NAME starts: sets name, up=PORTS[2N] (its
# upstream's port) and lp=PORTS[2N+1] (its sluice's).
begin_case()
{
	name=$1
	up=${PORTS[$((2 * $2))]} lp=${PORTS[$((2 * $2 + 1))]}
	e2e_log "=== sub-case $name: $3"
}

# start_sluice [LINE...]: write $name.conf, a one-shard sluice config (listen $lp, upstream
# $up, upstream-timeout 3s, the default test zones, then the LINEs), and start
# $name-sluice on it; sets pid.
start_sluice()
{
	e2e_default_zones "$E2E_TMP/default-zones.txt"
	{
		echo "# written by $E2E_NAME"
		echo "listen 127.0.0.1:$lp"
		echo "upstream 127.0.0.1:$up"
		echo "shards 1"
		echo "hostname sluice.e2e.test"
		echo "upstream-timeout 3s"
		echo "zones $E2E_TMP/default-zones.txt"
		local l
		for l in "$@"; do
			echo "$l"
		done
	} >"$name.conf"
	e2e_start_sluice "$name-sluice" "$name.conf" "$lp"
	pid=$E2E_LAST_PID
}

# fake ARGS...: start fake_upstream.py ARGS as $name-up on $up (log $name-up.log), wait
# for its pidfile; sets up_pid.
fake()
{
	local f=$name-up
	rm -f "$f.pid"
	e2e_start "$f" python3 "$FAKE" --port "$up" --log "$E2E_TMP/$f.log" \
		--pidfile "$E2E_TMP/$f.pid" --lifetime 200 "$@"
	up_pid=$E2E_LAST_PID
	e2e_wait_file "$E2E_TMP/$f.pid" 10 ||
		e2e_fail "fake upstream $f did not start: $(tail -3 "$f.err")"
}

cat >client.py <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
from smtpclient import problems, want
what, port = sys.argv[1], int(sys.argv[2])

def conn(rcvbuf=0):
    return sc.conn(port, rcvbuf=rcvbuf)

def reply(f, s, timeout=10.0):
    return sc.reply(f, s, timeout, errors=True)

def step(s, f, label, line, prefixes, timeout=10.0):
    return sc.step(s, f, label, line, prefixes, timeout, timed=False, errors=True)[0]

def wait_log(path, needle, secs):
    """Wait up to secs for needle in the fake upstream's log; seconds waited or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        try:
            with open(path, errors="replace") as lf:
                if needle in lf.read():
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    return None

def begin(label, ehlo="EHLO"):
    s, f = conn()
    want(label + " greeting", reply(f, s), ["220"])
    step(s, f, label + " " + ehlo, ehlo + " client.e2e.test", ["250"])
    step(s, f, label + " MAIL", "MAIL FROM:<a@e2e.test>", ["250"])
    return s, f

def end(s, f, label):
    step(s, f, label + " QUIT", "QUIT", ["221"])
    s.close()

def msg(msgid, body=b"hello\r\n"):
    return b"Message-ID: <" + msgid.encode() + b">\r\nSubject: regression\r\n\r\n" + body

if what == "data250":
    # one command at a time: sluice answers DATA, then sends DATA upstream itself
    s, f = begin("data250")
    step(s, f, "data250 RCPT", "RCPT TO:<b@e2e.test>", ["250"])
    step(s, f, "data250 DATA", "DATA", ["354"])
    s.sendall(msg("data250@e2e.test"))
    step(s, f, "data250 end of data", ".", ["4"])
    end(s, f, "data250")
elif what == "data250_early":
    # RCPT+DATA in one write: sluice sends DATA upstream before the content exists
    uplog = sys.argv[3]
    s, f = begin(what)
    s.sendall(b"RCPT TO:<b@e2e.test>\r\nDATA\r\n")
    want(what + " pipelined RCPT", reply(f, s), ["250"])
    got = reply(f, s)
    want(what + " pipelined DATA", got, ["354", "4"])
    if got.startswith("354"):
        if wait_log(uplog, "> 250 2.0.0 sure", 5) is None:
            problems.append("the upstream never answered the early DATA with 250")
        s.sendall(msg("data250-early@e2e.test"))
        step(s, f, what + " end of data", ".", ["4"])
    end(s, f, what)
elif what == "early_dot":
    size = int(sys.argv[3])
    s, f = begin("early_dot")
    step(s, f, "early_dot RCPT", "RCPT TO:<b@e2e.test>", ["250"])
    step(s, f, "early_dot DATA", "DATA", ["354"])
    line = b"x" * 998 + b"\r\n"
    s.settimeout(60)
    s.sendall(msg("early-dot@e2e.test", line * (size // len(line))))
    t0 = time.monotonic()
    got = step(s, f, "early_dot end of data", ".", ["4"], 60.0)
    print("early_dot: end-of-data reply after %.2f s" % (time.monotonic() - t0))
    end(s, f, "early_dot")
elif what == "deliver":
    s, f = begin("deliver")
    step(s, f, "deliver RCPT", "RCPT TO:<b@e2e.test>", ["250"])
    step(s, f, "deliver DATA", "DATA", ["354"])
    s.sendall(msg(sys.argv[3]))
    step(s, f, "deliver end of data", ".", ["250"], 30.0)
    end(s, f, "deliver")
elif what == "nonreading":
    # tiny receive window, lots of pipelined NOOPs, never a read: sluice's replies pile
    # up until its send blocks on a zero window
    ready = sys.argv[3]
    s, f = conn(4096)
    s.setblocking(False)
    chunk = b"NOOP\r\n" * 10000
    sent, t0, last = 0, time.monotonic(), time.monotonic()
    while time.monotonic() - t0 < 15 and time.monotonic() - last < 2:
        try:
            sent += s.send(chunk)
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.05)
        except OSError as e:
            print("nonreading: send error %s" % e)
            break
    stalled = time.monotonic() - last
    print("nonreading: sent %d bytes, stalled for %.2f s, never read" % (sent, stalled), flush=True)
    with open(ready, "w") as rf:
        rf.write("%d %.2f\n" % (sent, stalled))
    if stalled < 2:
        problems.append("the client's sends never stalled (sluice kept reading)")
    else:
        time.sleep(60) # the test stops this process by pid
elif what in ("greet_all_refuse", "greet_first_refuses"):
    # two RCPTs in one write: the first one's connection is refused in its greeting
    # (with extra bytes after the refusal), the second RCPT opens a fresh connection
    label = what
    s, f = begin(label, "HELO")
    s.sendall(b"RCPT TO:<b@e2e.test>\r\nRCPT TO:<c@e2e.test>\r\n")
    want(label + " RCPT 1", reply(f, s), ["451 4.4.0", "451 4.4.1", "451 4.4.2"])
    if what == "greet_all_refuse":
        got = reply(f, s)
        want(label + " RCPT 2", got, ["451 4.4.0", "451 4.4.1", "451 4.4.2"])
        if "protocol error" in got.lower():
            problems.append(label + " RCPT 2: '%s': the fresh connection was not spoken to" % got)
    else:
        want(label + " RCPT 2", reply(f, s), ["250"])
        step(s, f, label + " DATA", "DATA", ["354"])
        s.sendall(msg("greet-second@e2e.test"))
        step(s, f, label + " end of data", ".", ["250"])
    end(s, f, label)
elif what in ("early_local_reject", "early_refused", "early_refused_now"):
    uplog = sys.argv[3]
    s, f = begin(what)
    # RCPT+DATA in one write: sluice sends MAIL, RCPT and DATA upstream in one write
    s.sendall(b"RCPT TO:<b@e2e.test>\r\nDATA\r\n")
    want(what + " pipelined RCPT", reply(f, s), ["250"])
    want(what + " pipelined DATA", reply(f, s), ["354"])
    if what == "early_local_reject":
        if wait_log(uplog, "> 354", 5) is None:
            problems.append("the upstream never said 354 to the early DATA")
        s.sendall(msg("bare-lf@e2e.test", b"bare\nLF\r\n"))
        step(s, f, what + " end of data", ".", ["554 5.6.0"])
        dt = wait_log(uplog, "closed-by-peer", 5)
        print("%s: upstream connection closed %s after the 554" %
              (what, "never (5 s)" if dt is None else "%.2f s" % dt), flush=True)
        if dt is None or dt > 1.5:
            problems.append("the upstream connection was not closed within 1.5 s of the "
                            "local rejection (%s)" % ("5 s" if dt is None else "%.2f s" % dt))
    else:
        if what == "early_refused" and wait_log(uplog, "> 554 5.7.1", 5) is None:
            problems.append("the upstream never refused the early DATA")
        s.sendall(msg(what + "@e2e.test"))
        step(s, f, what + " end of data", ".", ["554 5.7.1"])
    end(s, f, what)
elif what == "greet":
    s, f = conn()
    want("next session greeting", reply(f, s), ["220"])
    end(s, f, "next session")
sc.done()
PY

# client NAME ARGS...: run client.py, log its output, record its problems under NAME.
client()
{
	e2e_case_client "$1" 90 client.py "${@:2}"
}

# show NAME: copy a fake upstream's log into the test log.
show()
{
	[ -f "$1.log" ] && sed "s/^/  $1: /" "$1.log" >&2
}

# finish NAME PID PORT: sluice still up and serving, then stops with status 0.
finish()
{
	local name=$1 pid=$2 port=$3
	e2e_case_alive "$name" "$pid" && client "$name-after" greet "$port"
	e2e_case_stop "$name" "$pid"
	sed "s/^/  $name-sluice: /" "$name-sluice.out" >&2
}

# --- data250 ---
begin_case data250 0 "the upstream answers DATA with 250"
fake --mode data250
start_sluice
client "$name" data250 "$lp"
client "$name-early" data250_early "$lp" "$E2E_TMP/$name-up.log"
if grep -q ' content-line' "$name-up.log"; then
	e2e_case_fail "$name" "the upstream received content after its 250 to DATA"
fi
show "$name-up"
finish "$name" "$pid" "$lp"
e2e_stop "$up_pid" 5

# --- early_dot_reply ---
begin_case early_dot_reply 1 "the upstream replies 250 while 20 MiB of content still arrive"
fake --mode early_dot_reply --early-after $((2 << 20)) --pause 1
start_sluice
client "$name" early_dot "$lp" $((20 << 20))
# the scenario really happened: the fake's reply went out before the "."
for ((i = 0; i < 50; i++)); do
	grep -q 'content-bytes .* total' "$name-up.log" 2>/dev/null && break
	sleep 0.1
done
show "$name-up"
first=$(grep -m1 'content-bytes' "$name-up.log")
case $first in
*content-bytes*content-end*) e2e_case_fail "$name" "the fake saw the whole content before its early reply: $first" ;;
*content-bytes*) ;;
*) e2e_case_fail "$name" "the fake upstream never received content" ;;
esac
e2e_alive "$pid" || e2e_case_fail "$name" "sluice died after the early reply: $(tail -2 "$name-sluice.err")"
e2e_stop "$up_pid" 5
e2e_start_sink "$name-sink" "$up" --quiet --ledger "$E2E_TMP/$name-sink.ledger"
sink_pid=$E2E_LAST_PID
client "$name-next" deliver "$lp" "early-dot-next@e2e.test"
finish "$name" "$pid" "$lp"
e2e_stop "$sink_pid" 10
grep -q '^early-dot-next@e2e.test ' "$name-sink.ledger" 2>/dev/null ||
	e2e_case_fail "$name" "the next session's message is not in the sink's ledger"

# --- nonreading_client_shutdown ---
begin_case nonreading_client_shutdown 2 "a client that never reads, then SIGTERM"
start_sluice "command-timeout 1s" "shutdown-timeout 1s"
e2e_start "$name-client" python3 client.py nonreading "$lp" "$E2E_TMP/$name.ready"
cl_pid=$E2E_LAST_PID
if ! e2e_wait_file "$E2E_TMP/$name.ready" 25; then
	e2e_case_fail "$name" "the client did not get its sends stalled within 25 s"
fi
sed "s/^/  $name-client: /" "$name-client.out" >&2
if e2e_alive "$cl_pid"; then
	e2e_log "client stalled (sent, stalled s: $(cat "$name.ready")); SIGTERM to sluice"
	t0=$(date +%s%N)
	kill -TERM "$pid"
	if e2e_wait_exit "$pid" 25; then
		ms=$((($(date +%s%N) - t0) / 1000000))
		e2e_log "sluice exited with status $E2E_LAST_RC after $ms ms"
		[ "$E2E_LAST_RC" = 0 ] || e2e_case_fail "$name" "sluice exited with status $E2E_LAST_RC"
		[ $ms -le 20000 ] || e2e_case_fail "$name" "sluice took $ms ms to exit (want <= 20 s)"
	else
		e2e_case_fail "$name" "sluice still running 25 s after SIGTERM (a client that never reads pins it)"
		e2e_stop "$pid" 1
	fi
else
	e2e_case_fail "$name" "the client ended early: $(tail -1 "$name-client.out")"
	e2e_stop "$pid" 25
fi
e2e_stop "$cl_pid" 5
sed "s/^/  $name-sluice: /" "$name-sluice.out" >&2

# --- greeting_refused_pipelined_rcpt ---
begin_case greeting_refused_pipelined_rcpt 3 "the upstream greets 554 + extra bytes, two pipelined RCPTs"
# connections 1-3 are refused: session A uses 1 and 2, session B 3 (refused) and 4 (good)
fake --mode greet554 --bad-conns 3
start_sluice
client "$name-A" greet_all_refuse "$lp"
client "$name-B" greet_first_refuses "$lp"
show "$name-up"
n=$(grep -c ' accept$' "$name-up.log")
[ "$n" -ge 4 ] || e2e_case_fail "$name" "the fake upstream saw $n connections, want 4 (2 per session)"
grep -q ' < EHLO ' "$name-up.log" ||
	e2e_case_fail "$name" "no fresh connection got as far as EHLO (the second RCPT's connection was not spoken to)"
# c@e2e.test is routed by the default test zones to inbox@sink.e2e.test
grep -q ' < RCPT TO:<inbox@sink.e2e.test>' "$name-up.log" ||
	e2e_case_fail "$name" "the second RCPT never reached the fresh connection"
grep -q ' content-end$' "$name-up.log" ||
	e2e_case_fail "$name" "session B's message never reached the fresh connection"
if grep -E '"event":"warn".*(bad reply|unexpected reply)' "$name-sluice.out" >&2; then
	e2e_case_fail "$name" "sluice logged a bad/unexpected upstream reply (leftovers of the refused connection)"
fi
finish "$name" "$pid" "$lp"
e2e_stop "$up_pid" 5

# --- early_data_local_reject ---
begin_case early_data_local_reject 4 "early DATA said 354, then sluice refuses the content (bare LF)"
fake --mode normal_354
start_sluice
client "$name" early_local_reject "$lp" "$E2E_TMP/$name-up.log"
show "$name-up"
grep -q ' > 354' "$name-up.log" || e2e_case_fail "$name" "the fake upstream never said 354 (no early DATA?)"
if grep -E "content-line b'QUIT'|content-line b'RSET'" "$name-up.log" >&2; then
	e2e_case_fail "$name" "sluice sent a command to the upstream as message content"
fi
if grep -q ' content-end$' "$name-up.log"; then
	e2e_case_fail "$name" "the upstream received a \".\": it may queue a message sluice refused"
fi
finish "$name" "$pid" "$lp"
e2e_stop "$up_pid" 5

# --- early_data_refused ---
begin_case early_data_refused 5 "early DATA refused by the upstream with 554 5.7.1"
fake --mode data554
start_sluice
client "$name" early_refused "$lp" "$E2E_TMP/$name-up.log"
client "$name-now" early_refused_now "$lp" "$E2E_TMP/$name-up.log"
show "$name-up"
if grep -E ' < (Message-ID|Subject|hello|\.$)' "$name-up.log" >&2; then
	e2e_case_fail "$name" "the refused message's content reached the upstream"
fi
finish "$name" "$pid" "$lp"
e2e_stop "$up_pid" 5

# a sanitizer build reports on stderr (an ASan abort also shows as a bad exit status)
for f in *-sluice.err *-sink.err; do
	[ -f "$f" ] || continue
	if grep -q 'Sanitizer' "$f"; then
		sed "s/^/  $f: /" "$f" | head -40 >&2
		e2e_case_fail "${f%.err}" "sanitizer report in $f: $(grep -m1 'Sanitizer' "$f")"
	fi
done

e2e_case_finish
exit 0
