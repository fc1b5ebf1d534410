#!/usr/bin/env bash
# t_ledger_10k: 10,000 messages, 1 KiB to 25 MiB, with dot-stuffed lines, from 20
# parallel sessions through sluice to sluice-sink; both sides keep ledgers.
# Two sluice-source runs at once: 18 sessions x 9,976 messages rotating through 16 sizes
# from 1 KiB to 1 MiB, and 2 sessions x 24 messages of 25 MiB (two runs keep the count
# of 25 MiB messages exact, whatever order a rotation list is served in); about 1.5 GiB.
# Pass: both sources exit 0 with accepted summing to 10,000 (none rejected or failed);
# the union of the source ledgers (every message sluice acknowledged with 250) equals the
# sink's ledger (same ids, same XXH64 and size: byte-identical apart from Received:);
# sluice is still running at the end and exits 0 on SIGTERM.
# E2E_QUICK=1 divides the message counts by 20 (for slow stand-in binaries).
# e2e-timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink sluice-source

small_n=9976
big_n=24
if [ "${E2E_QUICK:-0}" = 1 ]; then
	small_n=496
	big_n=4
fi
total=$((small_n + big_n))
sizes=1k,2k,4k,8k,16k,32k,64k,128k,1k,2k,4k,8k,16k,32k,64k,1M

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
e2e_start_sink sink "$sink_port" --quiet --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_sluice_conf sluice.conf "$port" "$sink_port"
e2e_start_sluice sluice sluice.conf "$port"
sluice_pid=$E2E_LAST_PID

start=$(date +%s)
e2e_start src-small timeout 240 "$E2E_BUILD/sluice-source" -s 18 -m "$small_n" -l "$sizes" \
	--dots --ledger "$E2E_TMP/src-small.ledger" "127.0.0.1:$port"
small_pid=$E2E_LAST_PID
e2e_start src-big timeout 240 "$E2E_BUILD/sluice-source" -s 2 -m "$big_n" -l 25M \
	--dots --ledger "$E2E_TMP/src-big.ledger" "127.0.0.1:$port"
big_pid=$E2E_LAST_PID
e2e_wait_exit "$small_pid" 250 || e2e_fail "sluice-source (small) did not finish"
small_rc=$E2E_LAST_RC
e2e_wait_exit "$big_pid" 250 || e2e_fail "sluice-source (25M) did not finish"
big_rc=$E2E_LAST_RC
e2e_log "sources done in $(($(date +%s) - start))s"
e2e_log "small: $(tail -1 src-small.out)"
e2e_log "big:   $(tail -1 src-big.out)"
[ "$small_rc" = 0 ] || e2e_fail "sluice-source (small) exited $small_rc: $(tail -2 src-small.err)"
[ "$big_rc" = 0 ] || e2e_fail "sluice-source (25M) exited $big_rc: $(tail -2 src-big.err)"
e2e_alive "$sluice_pid" || e2e_fail "sluice died during the run: $(tail -3 sluice.err)"

acc=0
for s in small big; do
	for k in accepted rejected failed; do
		v=$(e2e_summary_field "src-$s.out" "$k")
		[ -n "$v" ] || e2e_fail "no $k= in src-$s summary: $(tail -1 "src-$s.out")"
		eval "${s}_$k=\$v"
	done
done
acc=$((small_accepted + big_accepted))

e2e_stop "$sink_pid" 10
e2e_log "sink: $(tail -1 sink.out)"
cat src-small.ledger src-big.ledger >source.ledger
cmp_out=$(e2e_ledger_compare source.ledger sink.ledger equal)
cmp_rc=$?
e2e_log "$cmp_out"
[ "$cmp_rc" = 0 ] || e2e_fail "$(echo "$cmp_out" | sed -n 2p)"
[ "$acc" = "$total" ] ||
	e2e_fail "accepted $acc of $total (small: rejected $small_rejected failed $small_failed; 25M: accepted $big_accepted rejected $big_rejected failed $big_failed)"
n=$(wc -l <source.ledger)
[ "$n" = "$total" ] || e2e_fail "source ledgers hold $n lines, want $total"

e2e_stop "$sluice_pid" 40
[ "$E2E_LAST_RC" = 0 ] || e2e_fail "sluice exited $E2E_LAST_RC on SIGTERM, want 0"
exit 0
