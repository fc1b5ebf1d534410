#!/usr/bin/env bash
# t_upstream_pool: upstream connections outlive client sessions (issue 5, "Upstream
# connections are kept for reuse ... a short idle time, a cap per host"). sluice (2
# shards) relays to sluice-sink; sluice-source sends 30 messages, one session each (-1),
# one session at a time. Pass: all 30 accepted and in the sink's ledger; the sink saw at
# most 2 connections from sluice (one pool per shard; plus the start-up probe) where 30
# sessions would have cost 30 without the pool; right after, 1-2 connections to the sink are established (idle, pooled), and
# UP_POOL_IDLE_MS (5 s) later none is (closed with QUIT); sluice exits 0.
# e2e-timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_cmds ss python3
e2e_need_bins sluice sluice-sink sluice-source

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
problems=()
e2e_start_sink sink "$sink_port" --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_sluice sluice "$port" "$sink_port"
sluice_pid=$E2E_LAST_PID

# established connections from sluice to the sink
to_sink() { ss -Htn state established "( dport = :$sink_port )" | wc -l; }

timeout 60 "$E2E_BUILD/sluice-source" -q -1 -s 1 -m 30 -t x@e2e.test \
	--ledger "$E2E_TMP/source.ledger" "127.0.0.1:$port" >source.out 2>&1
e2e_log "source: $(tail -1 source.out)"
grep -q 'accepted=30 rejected=0 failed=0' source.out ||
	problems+=("source: $(tail -1 source.out), want 30 accepted")
idle=$(to_sink)
e2e_log "connections to the sink right after: $idle"
[ "$idle" -ge 1 ] && [ "$idle" -le 2 ] ||
	problems+=("$idle connections to the sink right after the run, want 1-2 idle pooled ones")
sleep 6.5
left=$(to_sink)
e2e_log "connections to the sink 6.5 s later: $left"
[ "$left" = 0 ] || problems+=("$left pooled connections still open after the 5 s idle time")

e2e_stop "$sluice_pid" 10
[ "$E2E_LAST_RC" = 0 ] || problems+=("sluice exited with status $E2E_LAST_RC")
e2e_stop "$sink_pid" 10
sessions=$(e2e_summary_field sink.out sessions)
e2e_log "sink: $(tail -1 sink.out)"
# e2e_wait_port's readiness probe was one of the sink's sessions
[ "${sessions:-99}" -le 3 ] ||
	problems+=("the sink saw $sessions connections (probe included) for 30 client sessions, want <= 3")
e2e_ledger_compare source.ledger sink.ledger equal >ledger.out 2>&1 ||
	problems+=("ledger: $(sed -n 2p ledger.out)")

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
