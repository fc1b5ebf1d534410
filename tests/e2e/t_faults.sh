#!/usr/bin/env bash
# t_faults: upstream faults must never turn into a 250 for the sender (DESIGN invariant 1).
# One sub-case per sluice-sink fault, each with its own sluice (upstream-timeout 3s) and
# sink (--every 3 --ledger), loaded by sluice-source (-s 5, 300 x 4 KiB; 30 messages
# with 10 sessions for the stall case, where each faulty message costs the 3 s timeout;
# 100 with 10 sessions for the delay, which the sink applies to every message).
# Pass, per sub-case:
#   - every message in the source's ledger (acknowledged with 250) is in the sink's
#     ledger with the same hash and size;
#   - reply faults, disconnect and stall: rejected+failed > 0 and accepted > 0;
#     delay: everything accepted and the ledgers are equal;
#   - relay check: swaks through a second sluice to a sink with the same fault at
#     --every 1: for reply faults swaks must print exactly the sink's code, enhanced code
#     and text (sluice relays the upstream reply); for disconnect/stall the end-of-data
#     reply must be 4xx (a transient upstream fault must not bounce the mail) or the
#     connection dropped, within upstream-timeout + 5 s; for delay, 250;
#   - sluice is still running at the end of the sub-case.
# All sub-cases run; the test fails if any failed, naming each.
# e2e-timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink sluice-source
e2e_need_cmds swaks

read -r -a ports <<<"$(e2e_free_ports 28 "${E2E_PORTS[@]}")"
pi=0
next_port()
{
	port_out=${ports[$pi]}
	pi=$((pi + 1))
}

# A message bigger than the disconnect/stall thresholds, for swaks.
{
	printf 'Message-ID: <faults-swaks@e2e.test>\r\nSubject: fault relay\r\n\r\n'
	for ((i = 0; i < 200; i++)); do
		printf 'line %03d of a message long enough to cross the fault threshold ......\r\n' "$i"
	done
} >big.txt

failures=()
case_fail()
{
	e2e_log "sub-case $1: FAIL: $2"
	failures+=("$1: $2")
}

# run_case NAME KIND WANT SINK-ARGS...   KIND: reply | drop | delay
run_case()
{
	local name=$1 kind=$2 want=$3
	shift 3
	local dir=$E2E_TMP/$name
	mkdir -p "$dir"
	local sinkp sluicep sink2p sluice2p
	next_port; sinkp=$port_out
	next_port; sluicep=$port_out
	next_port; sink2p=$port_out
	next_port; sluice2p=$port_out
	local msgs=300 sess=5
	[ "$name" = stall ] && msgs=30 && sess=10
	# --delay-ms applies to every message (it is not an --every fault)
	[ "$name" = delay ] && msgs=100 && sess=10

	e2e_log "=== sub-case $name: sink $* --every 3"
	e2e_start_sink "$name-sink" "$sinkp" --quiet --every 3 --ledger "$dir/sink.ledger" "$@"
	local sink_pid=$E2E_LAST_PID
	e2e_sluice_conf "$dir/sluice.conf" "$sluicep" "$sinkp" "upstream-timeout 3s"
	e2e_start_sluice "$name-sluice" "$dir/sluice.conf" "$sluicep"
	local sluice_pid=$E2E_LAST_PID

	timeout 120 "$E2E_BUILD/sluice-source" -s "$sess" -m "$msgs" -l 4k \
		--ledger "$dir/source.ledger" "127.0.0.1:$sluicep" >"$dir/source.out" 2>"$dir/source.err"
	local rc=$?
	e2e_log "$name source (rc $rc): $(tail -1 "$dir/source.out")"
	[ $rc = 0 ] || case_fail "$name" "sluice-source exited $rc: $(tail -1 "$dir/source.err")"
	local acc rej fail
	acc=$(e2e_summary_field "$dir/source.out" accepted)
	rej=$(e2e_summary_field "$dir/source.out" rejected)
	fail=$(e2e_summary_field "$dir/source.out" failed)
	e2e_alive "$sluice_pid" || case_fail "$name" "sluice died: $(tail -2 "$E2E_TMP/$name-sluice.err")"
	e2e_stop "$sink_pid" 10
	touch "$dir/source.ledger" "$dir/sink.ledger"
	local mode=subset
	[ "$kind" = delay ] && mode=equal
	local out
	if ! out=$(e2e_ledger_compare "$dir/source.ledger" "$dir/sink.ledger" $mode); then
		case_fail "$name" "$(echo "$out" | sed -n 2p)"
	fi
	e2e_log "$name $out"
	if [ -z "$acc" ] || [ -z "$rej" ] || [ -z "$fail" ]; then
		case_fail "$name" "no summary from sluice-source: $(tail -1 "$dir/source.out")"
	elif [ "$kind" = delay ]; then
		[ "$acc" = "$msgs" ] || case_fail "$name" "accepted $acc of $msgs with only a delay"
	else
		[ $((rej + fail)) -gt 0 ] || case_fail "$name" "no message rejected or failed (accepted $acc)"
		[ "$acc" -gt 0 ] || case_fail "$name" "nothing accepted: faults hit every message"
	fi
	e2e_stop "$sluice_pid" 15

	# Relay check: every message hits the fault.
	e2e_start_sink "$name-sink1" "$sink2p" --quiet --every 1 "$@"
	local sink2_pid=$E2E_LAST_PID
	e2e_sluice_conf "$dir/sluice1.conf" "$sluice2p" "$sink2p" "upstream-timeout 3s"
	e2e_start_sluice "$name-sluice1" "$dir/sluice1.conf" "$sluice2p"
	local sluice2_pid=$E2E_LAST_PID
	local t0 t1
	t0=$(date +%s)
	timeout 30 swaks --server "127.0.0.1:$sluice2p" --helo client.e2e.test \
		--from a@e2e.test --to b@e2e.test --data "$E2E_TMP/big.txt" \
		--timeout 20 >"$dir/swaks.out" 2>&1
	t1=$(date +%s)
	local rcpt_reply data_reply
	rcpt_reply=$(grep -E -A1 '^ -> RCPT TO:' "$dir/swaks.out" | sed -n 2p)
	data_reply=$(awk 'seen { print; exit } /^ -> \.$/ { seen = 1 }' "$dir/swaks.out")
	e2e_log "$name swaks: RCPT -> '$rcpt_reply'; end of data -> '${data_reply:-(none)}'"
	case $kind in
	reply)
		local line=$data_reply
		case $* in --rcpt-reply*) line=$rcpt_reply ;; esac
		if ! [[ $line =~ ^\<[*~-]*\ +$want$ ]]; then
			case_fail "$name" "sluice did not relay '$want': swaks got '${line:-(nothing)}'"
		fi
		;;
	drop)
		case $data_reply in
		"<** 4"* | "<~* 4"* | "" | "*** Remote host closed connection"*) ;;
		*) case_fail "$name" "end-of-data reply '$data_reply', want 4xx or a dropped connection" ;;
		esac
		if [ -z "$data_reply" ] && ! grep -q -E '^ -> \.$' "$dir/swaks.out"; then
			case_fail "$name" "swaks never reached the end of data: $(tail -2 "$dir/swaks.out" | tr '\n' ' ')"
		fi
		[ $((t1 - t0)) -le 8 ] || case_fail "$name" "swaks took $((t1 - t0))s (upstream-timeout is 3s)"
		;;
	delay)
		case $data_reply in
		"<-  250"*) ;;
		*) case_fail "$name" "end-of-data reply '$data_reply', want 250" ;;
		esac
		;;
	esac
	e2e_alive "$sluice2_pid" || case_fail "$name" "sluice (relay check) died"
	e2e_stop "$sluice2_pid" 15
	e2e_stop "$sink2_pid" 10
}

run_case rcpt550 reply "550 5.1.1 no such user" --rcpt-reply "550 5.1.1 no such user"
run_case rcpt451 reply "451 4.3.0 try later" --rcpt-reply "451 4.3.0 try later"
run_case data554 reply "554 5.7.1 rejected" --data-reply "554 5.7.1 rejected"
run_case data452 reply "452 4.3.1 full" --data-reply "452 4.3.1 full"
run_case disconnect drop "" --disconnect-in-data 2000
run_case stall drop "" --stall-in-data 2000
run_case delay delay "" --delay-ms 300

if [ ${#failures[@]} -gt 0 ]; then
	printf '%s\n' "${failures[@]}" >&2
	msg=$(printf '%s; ' "${failures[@]}")
	e2e_fail "${#failures[@]} problem(s): ${msg%; }"
fi
exit 0
