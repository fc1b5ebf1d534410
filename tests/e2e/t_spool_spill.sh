#!/usr/bin/env bash
# t_spool_spill: large messages past the per-shard memory budget move to an unlinked file
# (issue 5, "The body"). sluice with 1 shard and spool-memory 64M (room for one large
# message: a 25 MiB spool reserves ~33.4 MiB) relays to sluice-sink while sluice-source
# sends 16 messages of 25M and 4k over 8 sessions at once. Every spool starts in memory;
# one that grows past 1 MiB (SPOOL_SPILL_AT) beyond the budget is moved to a file.
# Pass: every message accepted and byte-identical in the sink's ledger; sluice's tx log
# shows spilled transactions ("spool":"file", the large ones but one) and in-memory ones
# (the small ones); spool-dir holds no file afterwards (unlinked from birth); peak
# anonymous memory stays far below 8 x 25 MiB (VmRSS sampled while it runs < 200 MiB);
# sluice exits 0.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink sluice-source

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
mkdir -p spool
problems=()
e2e_start_sink sink "$sink_port" --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_sluice sluice "$port" "$sink_port" "shards 1" "spool-memory 64M" "spool-dir $E2E_TMP/spool"
sluice_pid=$E2E_LAST_PID

timeout 100 "$E2E_BUILD/sluice-source" -q -s 8 -m 16 -l 25M,4k -t x@e2e.test \
	--ledger "$E2E_TMP/source.ledger" "127.0.0.1:$port" >source.out 2>&1 &
src=$!
peak=0
while kill -0 "$src" 2>/dev/null; do
	anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$sluice_pid/status" 2>/dev/null)
	[ "${anon:-0}" -gt "$peak" ] && peak=$anon
	sleep 0.05
done
wait "$src"
e2e_log "source: $(tail -1 source.out); sluice peak RssAnon $((peak / 1024)) MiB"
grep -q 'accepted=16 rejected=0 failed=0' source.out ||
	problems+=("source: $(tail -1 source.out), want 16 accepted")
[ "$peak" -lt $((200 * 1024)) ] || problems+=("peak anonymous RSS $((peak / 1024)) MiB, want < 200")
e2e_stop "$sluice_pid" 10
[ "$E2E_LAST_RC" = 0 ] || problems+=("sluice exited with status $E2E_LAST_RC")
e2e_stop "$sink_pid" 10
e2e_ledger_compare source.ledger sink.ledger equal >ledger.out 2>&1 ||
	problems+=("ledger: $(sed -n 2p ledger.out)")
files=$(grep -c '"event":"tx".*"spool":"file"' sluice-sluice.out)
mem=$(grep '"event":"tx"' sluice-sluice.out | grep -vc '"spool":"file"')
e2e_log "transactions spooled to file: $files, in memory: $mem"
[ "$files" -ge 1 ] || problems+=("no transaction was spooled to a file")
[ "$mem" -ge 1 ] || problems+=("no transaction was spooled in memory")
left=$(find spool -type f | wc -l)
[ "$left" = 0 ] || problems+=("$left files left in spool-dir")

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
