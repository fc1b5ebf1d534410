#!/usr/bin/env bash
# t_reuse: sluice keeps its upstream connection across the transactions of a client
# session instead of opening one per message. sluice-source -s 2 -m 200 -d (several
# messages per session) -l 4k --ledger through sluice (2 shards) to sluice-sink --ledger.
# Pass: the source got 200 accepted, 0 rejected, 0 failed; the ledgers are equal; on
# SIGTERM the sink's summary line shows messages=200 but sessions <= 4 (its start-up probe
# + 2 client sessions, with one of slack for a reconnect); sluice logged 200 accepted tx lines
# spread over at most 4 sessions; sluice still runs at the end and exits 0 at SIGTERM.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink sluice-source

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
e2e_start_sink sink "$sink_port" --quiet --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_sluice_conf sluice.conf "$port" "$sink_port"
e2e_start_sluice sluice sluice.conf "$port"
sluice_pid=$E2E_LAST_PID

problems=()
timeout 90 "$E2E_BUILD/sluice-source" -s 2 -m 200 -d -l 4k --timeout 20s \
	--ledger "$E2E_TMP/source.ledger" "127.0.0.1:$port" >source.out 2>source.err
rc=$?
e2e_log "source (rc $rc): $(tail -1 source.out)"
[ $rc = 0 ] || e2e_fail "sluice-source exited $rc: $(tail -1 source.err)"
acc=$(e2e_summary_field source.out accepted)
rej=$(e2e_summary_field source.out rejected)
fail=$(e2e_summary_field source.out failed)
[ "$acc" = 200 ] && [ "$rej" = 0 ] && [ "$fail" = 0 ] ||
	problems+=("source: accepted=$acc rejected=$rej failed=$fail, want 200/0/0")

e2e_alive "$sluice_pid" || problems+=("sluice died: $(tail -2 sluice.err)")
e2e_stop "$sink_pid" 10
summary=$(grep '^sink:' sink.out | tail -1)
e2e_log "sink summary: ${summary:-(none)}"
sessions=$(e2e_summary_field sink.out sessions)
messages=$(e2e_summary_field sink.out messages)
if [ -z "$sessions" ] || [ -z "$messages" ]; then
	problems+=("no summary line from the sink: $(tail -1 sink.out)")
else
	[ "$messages" = 200 ] || problems+=("the sink saw $messages messages, want 200")
	[ "$sessions" -le 4 ] ||
		problems+=("sluice opened $sessions upstream sessions for 200 messages over 2 client sessions (want <= 4): no reuse")
fi
touch source.ledger sink.ledger
if ! out=$(e2e_ledger_compare source.ledger sink.ledger equal); then
	problems+=("$(echo "$out" | sed -n 2p)")
fi
e2e_log "$out"

e2e_stop "$sluice_pid" 15
[ "$E2E_LAST_RC" = 0 ] || problems+=("sluice exited with status $E2E_LAST_RC at SIGTERM")
read -r ntx nsess < <(python3 -c 'import json, sys
acc, sess = 0, set()
for l in open(sys.argv[1], "rb"):
    try:
        j = json.loads(l)
    except ValueError:
        continue
    if j.get("event") == "tx" and j.get("outcome") == "accepted":
        acc += 1
        sess.add(j.get("session"))
print(acc, len(sess))' sluice.out)
e2e_log "sluice log: $ntx accepted tx lines over $nsess sessions"
[ "$ntx" = 200 ] || problems+=("sluice logged $ntx accepted tx lines, want 200")
[ "$nsess" -le 4 ] || problems+=("sluice's accepted tx lines come from $nsess sessions, want <= 4 with -s 2 -d")

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
