#!/usr/bin/env bash
# t_logs: sluice's JSON log lines after a mixed run. One sluice (2 shards) relays to a
# sluice-sink --dump --ledger that rejects every 3rd message at end of data (--data-reply
# 554), then, restarted on the same port, every 3rd at RCPT (--rcpt-reply 550). Clients:
# 2 swaks messages; sluice-source -1 -s 4 -m 30 -l 4k against each sink; 3 python
# sessions (odd characters in EHLO and in a quoted sender, protocol errors, a UTF-8
# sender with SMTPUTF8 abandoned mid-DATA). Then sluice is stopped (SIGTERM).
# Pass:
#   - every stdout line of sluice is a JSON object with "ts" and "event";
#   - exactly one "event":"session" line per connection: after the first sink phase
#     (waiting up to 5 s for the session lines) each connection the test made itself
#     (start-up probe, 2 swaks, 3 python; known by their EHLO names) has exactly one,
#     and source 1 (-1, only end-of-data rejections, no failures allowed) has one line
#     with one transaction per message sent, plus at most 3 (-s 4 minus 1) lines without
#     any (a parallel session that found no message left), nothing else; the second
#     source run RSETs after a RCPT rejection and goes on in the same session, so its
#     session lines must all be the source's and carry exactly its `sent` transactions;
#     session ids are distinct; the sum of all "transactions" is the number of tx lines;
#   - every tx line carries shard (int), session (str), client (str), from (str),
#     rcpts (list of str), size (int), outcome (accepted|rejected|aborted), reply
#     (str or null) and duration_ms (number), and its session has a session line with
#     the same shard and client; at least one tx of each outcome is present, and the
#     rejected ones include the sink's 554 text;
#   - accepted tx lines = messages the sinks accepted = files dumped;
#   - the Received header of every dumped message names an id SESSION.TX that is an
#     accepted tx line (same session id and tx number), and the swaks message's header
#     names its EHLO and 127.0.0.1.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink sluice-source
e2e_need_cmds swaks

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
mkdir -p dump1 dump2
e2e_start_sink sink1 "$sink_port" --quiet --dump "$E2E_TMP/dump1" --ledger "$E2E_TMP/sink1.ledger" \
	--data-reply "554 5.7.1 e2e says no" --every 3
sink_pid=$E2E_LAST_PID
e2e_sluice_conf sluice.conf "$port" "$sink_port"
e2e_start_sluice sluice sluice.conf "$port"
sluice_pid=$E2E_LAST_PID
conns=1 # the probe of e2e_start_sluice

problems=()
for i in 1 2; do
	printf 'Message-ID: <logs-swaks-%s@e2e.test>\r\nSubject: logs %s\r\n\r\nhello\r\n' "$i" "$i" \
		>"swaks$i.txt"
	timeout 30 swaks --server "127.0.0.1:$port" --helo "swaks$i.e2e.test" --from "s$i@e2e.test" \
		--to "r$i@e2e.test" --data "$E2E_TMP/swaks$i.txt" --timeout 20 >"swaks$i.out" 2>&1
	conns=$((conns + 1))
	grep -q '^<-  250 2.0.0' "swaks$i.out" ||
		problems+=("swaks message $i not accepted: $(grep -E '^<[*~]' "swaks$i.out" | head -1)")
done

# run_source N: sluice-source -1; its messages are added to conns (exact for source 1,
# whose rejections all come at end of data, after which -1 QUITs).
run_source()
{
	timeout 60 "$E2E_BUILD/sluice-source" -1 -s 4 -m 30 -l 4k --timeout 20s "127.0.0.1:$port" \
		>"source$1.out" 2>"source$1.err"
	local rc=$? sent failed
	e2e_log "source $1 (rc $rc): $(tail -1 "source$1.out")"
	sent=$(e2e_summary_field "source$1.out" sent)
	failed=$(e2e_summary_field "source$1.out" failed)
	if [ $rc != 0 ] || [ -z "$sent" ]; then
		e2e_fail "sluice-source $1 exited $rc: $(tail -1 "source$1.err")"
	fi
	[ "$failed" = 0 ] ||
		e2e_fail "sluice-source $1 had $failed failed messages: connection counts are unknown"
	conns=$((conns + sent))
	last_sent=$sent
}
run_source 1

cat >clients.py <<'PY'
import os, sys
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
from smtpclient import reply
port = int(sys.argv[1])
def conn():
    return sc.conn(port, nodelay=False)
def step(s, f, line):
    s.sendall(line + b"\r\n")
    r = reply(f)
    print("%r -> %s" % (line, r))
    return r
# 1: characters a JSON writer must escape, in the EHLO name and a quoted local part
s, f = conn(); reply(f)
step(s, f, b'EHLO odd"helo\\name')
step(s, f, b'MAIL FROM:<"we\\"ird\\\\one"@e2e.test>')
step(s, f, b"RCPT TO:<b@e2e.test>")
if step(s, f, b"DATA").startswith("354"):
    step(s, f, b"Message-ID: <logs-odd@e2e.test>\r\nSubject: odd\r\n\r\nodd\r\n.")
step(s, f, b"QUIT"); s.close()
# 2: protocol errors
s, f = conn(); reply(f)
step(s, f, b"XYZZY")
step(s, f, b"MAIL FROM:<a@e2e.test>")
step(s, f, b"HELO errors.e2e.test")
step(s, f, b"RCPT TO:<b@e2e.test>")
step(s, f, b"QUIT"); s.close()
# 3: a UTF-8 sender, abandoned mid-DATA
s, f = conn(); reply(f)
step(s, f, b"EHLO utf8.e2e.test")
step(s, f, "MAIL FROM:<j\u00fcrgen@e2e.test> SMTPUTF8".encode())
step(s, f, b"RCPT TO:<b@e2e.test>")
if step(s, f, b"DATA").startswith("354"):
    s.sendall(b"Subject: gone\r\n\r\npartial line\r\n")
s.close()
print("sessions 3")
PY
timeout 60 python3 clients.py "$port" >clients.out 2>&1 ||
	e2e_fail "python clients failed: $(tail -2 clients.out)"
sed 's/^/  clients: /' clients.out >&2
conns=$((conns + 3))

# Checkpoint: every connection so far has ended; wait for their session lines.
count_sessions()
{
	python3 -c 'import json, sys
n = 0
for l in open(sys.argv[1], "rb"):
    try:
        n += json.loads(l).get("event") == "session"
    except Exception:
        pass
print(n)' sluice.out
}
for ((i = 0; i < 50; i++)); do
	[ "$(count_sessions)" -ge "$conns" ] && break
	sleep 0.1
done
sleep 0.5 # a surplus line, if any, shows up too
n=$(count_sessions)
e2e_log "checkpoint: $n session lines for $conns connections (check.py judges them)"
cp sluice.out sluice.out.phase1
sent1=$last_sent

e2e_stop "$sink_pid" 10
# The old sink's listening socket can outlive its process for a moment (io_uring frees
# its files in a kernel worker after exit): wait until the port can be bound again.
python3 - "$sink_port" <<'EOF' || e2e_fail "port $sink_port still busy 10 s after sink1 exited"
import socket, sys, time
for _ in range(100):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
        s.listen(1)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
    finally:
        s.close()
sys.exit(1)
EOF
e2e_start_sink sink2 "$sink_port" --quiet --dump "$E2E_TMP/dump2" --ledger "$E2E_TMP/sink2.ledger" \
	--rcpt-reply "550 5.1.1 e2e no such user" --every 3
sink_pid=$E2E_LAST_PID
run_source 2
sent2=$last_sent

e2e_alive "$sluice_pid" || e2e_fail "sluice died: $(tail -2 sluice.err)"
e2e_stop "$sluice_pid" 15
[ "$E2E_LAST_RC" = 0 ] || problems+=("sluice exited with status $E2E_LAST_RC at SIGTERM")
e2e_stop "$sink_pid" 10
acc1=$(e2e_summary_field sink1.out accepted)
acc2=$(e2e_summary_field sink2.out accepted)
e2e_log "sink1: $(tail -1 sink1.out); sink2: $(tail -1 sink2.out)"
[ -n "$acc1" ] && [ -n "$acc2" ] || e2e_fail "no summary line from a sink"

cat >check.py <<'PY'
import glob, json, re, sys
out, phase1 = sys.argv[1], sys.argv[2]
sent1, sent2, accepted = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
problems = []
lines = open(out, "rb").read().split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
events = []
for no, raw in enumerate(lines, 1):
    try:
        j = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        problems.append("stdout line %d is not JSON (%s): %r" % (no, e, raw[:200]))
        continue
    if not isinstance(j, dict) or "event" not in j or "ts" not in j:
        problems.append("stdout line %d is not an object with ts and event: %r" % (no, raw[:200]))
        continue
    j["_line"] = no
    events.append(j)
sess = [j for j in events if j["event"] == "session"]
txs = [j for j in events if j["event"] == "tx"]
print("lines %d: %d session, %d tx, others %s" % (len(lines), len(sess), len(txs),
      sorted(set(j["event"] for j in events) - {"session", "tx"})))
ph1 = open(phase1, "rb").read().count(b"\n")
early = [j for j in events if j["_line"] <= ph1 and j["event"] == "session"]
# the connections this test made itself, each known by its EHLO name ("" = the probe)
for helo in ("", "swaks1.e2e.test", "swaks2.e2e.test", 'odd"helo\\name', "errors.e2e.test",
             "utf8.e2e.test"):
    n = sum(1 for j in early if j.get("helo") == helo)
    if n != 1:
        problems.append("%d session lines for the one connection with EHLO %r" % (n, helo))
src = [j for j in early if j.get("helo") == "source.sluice.test"]
other = [j.get("helo") for j in early if j.get("helo") not in (
    "", "swaks1.e2e.test", "swaks2.e2e.test", 'odd"helo\\name', "errors.e2e.test",
    "utf8.e2e.test", "source.sluice.test")]
if other:
    problems.append("phase 1 session lines with unexpected EHLO names: %r" % other)
one = sum(1 for j in src if j.get("transactions") == 1)
zero = sum(1 for j in src if j.get("transactions") == 0)
print("phase 1: %d session lines; source 1 (-1): %d with one tx, %d with none" % (
    len(early), one, zero))
# -1 = one message per connection; a parallel session that finds no message left
# may connect and QUIT without a transaction (at most -s minus 1 of them)
if one != sent1 or zero > 3 or one + zero != len(src):
    problems.append("source 1 sent %d messages with -1 -s 4: its session lines are %d with "
                    "one tx, %d with none, %d other" % (sent1, one, zero, len(src) - one - zero))
late = [j for j in events if j["_line"] > ph1 and j["event"] == "session"]
if any(j.get("helo") != "source.sluice.test" for j in late):
    problems.append("session lines after phase 1 that are not sluice-source's: %s" % [
        j.get("helo") for j in late if j.get("helo") != "source.sluice.test"])
if sum(j.get("transactions", 0) for j in late) != sent2:
    problems.append("source 2 sent %d messages; its %d session lines count %d transactions" % (
        sent2, len(late), sum(j.get("transactions", 0) for j in late)))
ids = {}
for j in sess:
    if j.get("session") in ids:
        problems.append("session id %s logged twice" % j.get("session"))
    ids[j.get("session")] = j
ntx = sum(j.get("transactions", 0) for j in sess)
if ntx != len(txs):
    problems.append("session lines count %d transactions, there are %d tx lines" % (ntx, len(txs)))
types = {"shard": int, "session": str, "client": str, "from": str, "rcpts": list,
         "size": int, "outcome": str, "reply": (str, type(None)), "duration_ms": (int, float)}
outcomes = {}
for j in txs:
    for k, t in types.items():
        if k not in j:
            problems.append("tx line %d without %s" % (j["_line"], k))
        elif not isinstance(j[k], t) or isinstance(j[k], bool):
            problems.append("tx line %d: %s has the wrong type %s" % (j["_line"], k, type(j[k]).__name__))
    if not all(isinstance(r, str) for r in j.get("rcpts", [])):
        problems.append("tx line %d: rcpts not all strings" % j["_line"])
    o = j.get("outcome")
    outcomes[o] = outcomes.get(o, 0) + 1
    if o not in ("accepted", "rejected", "aborted"):
        problems.append("tx line with outcome %r" % o)
    if o == "accepted" and not (j.get("reply") or "").startswith("250"):
        problems.append("accepted tx with reply %r" % j.get("reply"))
    se = ids.get(j.get("session"))
    if se is None:
        problems.append("tx line for session %s, which has no session line" % j.get("session"))
    elif se.get("shard") != j.get("shard") or se.get("client") != j.get("client"):
        problems.append("tx and session lines disagree on shard/client for %s" % j.get("session"))
print("tx outcomes: %s" % outcomes)
for o in ("accepted", "rejected", "aborted"):
    if not outcomes.get(o):
        problems.append("no tx line with outcome %s" % o)
if not any((j.get("reply") or "").startswith("554 5.7.1 e2e says no") for j in txs):
    problems.append("no rejected tx line carries the sink's '554 5.7.1 e2e says no'")
acc = {(j.get("session"), j.get("tx")): j for j in txs if j.get("outcome") == "accepted"}
dumps = sorted(glob.glob("dump1/*.eml") + glob.glob("dump2/*.eml"))
if not (len(acc) == accepted == len(dumps)):
    problems.append("accepted tx lines %d, sink accepted %d, dumped %d: all must be equal" % (
        len(acc), accepted, len(dumps)))
rx = re.compile(rb"^Received: from (\S+) \(\[([^\]]*)\]\)\r\n\tby \S+ \(sluice\) with \S+ id ([0-9a-f]{16})\.(\d+)[;\r]")
for d in dumps:
    data = open(d, "rb").read()
    m = rx.match(data)
    if not m:
        problems.append("%s: no sluice Received header with an id first: %r" % (d, data[:200]))
        continue
    sid, n = m.group(3).decode(), int(m.group(4))
    if (sid, n) not in acc:
        problems.append("%s: Received id %s.%d is not an accepted tx line (session %s)" % (
            d, sid, n, "logged" if sid in ids else "unknown"))
    if b"logs-swaks-1@e2e.test" in data and (m.group(1) != b"swaks1.e2e.test" or m.group(2) != b"127.0.0.1"):
        problems.append("%s: Received says from %r [%r], want swaks1.e2e.test [127.0.0.1]" % (
            d, m.group(1), m.group(2)))
print("dumped messages checked: %d" % len(dumps))
for p in problems:
    print("PROBLEM " + p)
sys.exit(1 if problems else 0)
PY
python3 check.py sluice.out sluice.out.phase1 "$sent1" "$sent2" $((acc1 + acc2)) >check.out 2>&1
rc=$?
sed 's/^/  check: /' check.out >&2
if [ $rc != 0 ]; then
	first=$(grep -E '^(PROBLEM|Traceback)' check.out | head -1)
	problems+=("${first:-check.py exited $rc}")
	n=$(grep -c '^PROBLEM' check.out)
	[ "$n" -gt 1 ] && problems+=("and $((n - 1)) more log problem(s), see check.out")
fi

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
