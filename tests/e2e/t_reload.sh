#!/usr/bin/env bash
# t_reload: zone reload under load (issue 4, "Lookup and reload"). sluice (2 shards)
# routes to sluice-sink --ledger while:
#   - sluice-source runs (1000 messages of 4k and 64k, 8 sessions, one run after the
#     other until the reloads end) send to stable@reload.test, a rule every version of
#     the file keeps;
#   - a probe client runs transactions that each ask for a1, b1, a20, b20@reload.test,
#     sleeping up to 60 ms between the first two RCPTs and the last two: odd versions
#     of the file have the rules a1..a20, even ones b1..b20, never both;
#   - the zone file is replaced 100 times (versions 1..100; odd: rewritten in place,
#     even: written aside and renamed over it; every 10th also gets a SIGHUP; each
#     version adds and removes 20 rules and a varying number of drop rules), and once,
#     between versions 50 and 51, with a broken file.
# Pass: every message of every source run is accepted and byte-identical in the sink's
# ledger (no session dropped, nothing lost), and >= 5 runs overlapped the reloads; every probe transaction saw one version
# (a's accepted and b's refused, or the reverse: never a mix, so no table was half
# loaded and no transaction changed tables midway); sluice logged >= 50 "zones" loads
# and the broken file's refusal with FILE:LINE; after the last version, RCPT
# v100@reload.test is accepted and v99@reload.test refused; sluice exits 0 at SIGTERM
# (in the ASan build that includes LeakSanitizer finding no leak).
# e2e-timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_cmds python3
e2e_need_bins sluice sluice-sink sluice-source

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
ZONES=$E2E_TMP/reload.zones

# version K [FILE]: zone file version K on stdout
version()
{
	local k=$1 i
	echo "# t_reload version $k"
	echo "zone reload.test"
	echo "stable@reload.test forward stable@sink.e2e.test"
	echo "v$k@reload.test forward v$k@sink.e2e.test"
	for i in $(seq 1 20); do
		if [ $((k % 2)) = 1 ]; then
			echo "a$i@reload.test forward a@sink.e2e.test"
		else
			echo "b$i@reload.test forward b@sink.e2e.test"
		fi
	done
	for i in $(seq 1 $((k * 37 % 300))); do
		echo "filler$i@reload.test drop"
	done
	echo "verified-domain sink.e2e.test"
}
version 0 >"$ZONES"

e2e_start_sink sink "$sink_port" --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_sluice_conf sluice.conf "$port" "$sink_port" "zones $ZONES"
e2e_start_sluice sluice sluice.conf "$port"
sluice_pid=$E2E_LAST_PID

# runs of 1000 messages, one after the other, until the reloads are done (at most 400)
cat >source.sh <<SH
for i in \$(seq 1 400); do
	[ -e "$E2E_TMP/reload.done" ] && break
	"$E2E_BUILD/sluice-source" -s 8 -m 1000 -l 4k,64k -q -t stable@reload.test \\
		--ledger "$E2E_TMP/source.\$i.ledger" "127.0.0.1:$port" || exit 1
done
SH
e2e_start source bash source.sh
source_pid=$E2E_LAST_PID

cat >probe.py <<'PY'
import os, random, sys, time
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
port, stop = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 200
n = mixed = 0
while not os.path.exists(stop) and time.monotonic() < deadline and n < 5000:
    # a session per transaction: refused RCPTs count toward max-errors
    s, f = sc.conn(port)
    s.sendall(b"EHLO probe.e2e.test\r\nMAIL FROM:<probe@e2e.test>\r\n"
              b"RCPT TO:<a1@reload.test>\r\nRCPT TO:<b1@reload.test>\r\n")
    got = [sc.reply(f, s) for _ in range(5)][2:]
    time.sleep(random.random() * 0.06)  # reloads land inside the transaction
    s.sendall(b"RCPT TO:<a20@reload.test>\r\nRCPT TO:<b20@reload.test>\r\nQUIT\r\n")
    got += [sc.reply(f, s) for _ in range(3)]
    s.close()
    codes = "".join(g[:1] for g in got)
    n += 1
    if codes not in ("225252", "252522"):  # MAIL, a1, b1, a20, b20, QUIT
        mixed += 1
        if mixed <= 5:
            sc.problems.append("transaction %d saw a mix of versions: %s" % (n, got))
print("probe: %d transactions, %d mixed" % (n, mixed))
if n < 20:
    sc.problems.append("only %d probe transactions ran" % n)
sc.done()
PY
timeout 250 python3 probe.py "$port" "$E2E_TMP/probe.stop" >probe.out 2>&1 &
probe_pid=$!

broken_line=
for k in $(seq 1 100); do
	if [ $((k % 2)) = 1 ]; then
		version "$k" >"$ZONES"
	else
		version "$k" >"$ZONES.new" && mv "$ZONES.new" "$ZONES"
	fi
	[ $((k % 10)) = 0 ] && kill -HUP "$sluice_pid"
	if [ "$k" = 50 ]; then
		sleep 0.2
		{ version 50; echo "x@reload.test explode"; } >"$ZONES.new"
		broken_line=$(wc -l <"$ZONES.new")
		mv "$ZONES.new" "$ZONES"
	fi
	sleep 0.1
done
sleep 1 # the last version's reload
touch reload.done

problems=()
# the last version is the one in force
cat >final.py <<'PY'
import os, sys
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
s, f = sc.conn(int(sys.argv[1]))
sc.want("greeting", sc.reply(f, s), ["220"])
sc.step(s, f, "EHLO", "EHLO final.e2e.test", ["250"], timed=False)
sc.step(s, f, "MAIL", "MAIL FROM:<final@e2e.test>", ["250"], timed=False)
sc.step(s, f, "RCPT v100 (the last version's rule)", "RCPT TO:<v100@reload.test>", ["250"], timed=False)
sc.step(s, f, "RCPT v99 (removed by the last version)", "RCPT TO:<v99@reload.test>", ["550 5.1.1"], timed=False)
sc.step(s, f, "QUIT", "QUIT", ["221"], timed=False)
sc.done()
PY
timeout 30 python3 final.py "$port" >final.out 2>&1 || problems+=("final: $(grep -m1 PROBLEM final.out)")
cat final.out >&2

if ! e2e_wait_exit "$source_pid" 200; then
	problems+=("sluice-source did not finish within 200 s")
elif [ "$E2E_LAST_RC" != 0 ]; then
	problems+=("a sluice-source run failed: $(tail -3 source.err)")
fi
touch probe.stop
wait "$probe_pid" || problems+=("probe: $(grep -m1 -E 'PROBLEM|Traceback' probe.out)")
cat probe.out >&2
e2e_alive "$sluice_pid" || problems+=("sluice died: $(tail -2 sluice.err)")
e2e_stop "$sluice_pid" 20
[ "$E2E_LAST_RC" = 0 ] || problems+=("sluice exited with status $E2E_LAST_RC at SIGTERM: $(tail -3 sluice.err)")
e2e_stop "$sink_pid" 10

runs=$(grep -c '^sent=' source.out)
e2e_log "source: $runs runs of 1000 messages during the reloads"
while read -r l; do
	case $l in
	*" accepted=1000 rejected=0 failed=0 "*) ;;
	*) problems+=("a source run did not get its 1000 messages accepted: $l") ;;
	esac
done < <(grep '^sent=' source.out)
[ "$runs" -ge 5 ] || problems+=("only $runs source runs overlapped the reloads, want >= 5")
cat source.*.ledger >source.ledger
e2e_ledger_compare source.ledger sink.ledger equal >ledger.out 2>&1 ||
	problems+=("ledger: $(sed -n 2p ledger.out)")
cat ledger.out >&2

loads=$(grep '"event":"zones"' sluice.out | grep -c '"outcome":"loaded"')
e2e_log "zones reloads logged: $loads loaded, $(grep '"event":"zones"' sluice.out | grep -c '"outcome":"refused"') refused"
[ "$loads" -ge 50 ] || problems+=("only $loads zone reloads logged as loaded, want >= 50 of 100")
grep '"event":"zones"' sluice.out | grep '"outcome":"refused"' |
	grep -q "reload.zones:$broken_line: " ||
	problems+=("no refused reload naming reload.zones:$broken_line: $(grep '"refused"' sluice.out | head -1)")

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
