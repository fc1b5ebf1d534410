#!/usr/bin/env bash
# t_capabilities: what a message needs is checked against what the upstream offers at
# RCPT time (issue 5, "check what the upstream offers against what the message needs").
# sluice relays to a sluice-sink offering SIZE 5000 without SMTPUTF8 and 8BITMIME
# (capabilities/limited.txt: MAIL SIZE=6000 -> RCPT 552 5.3.4, BODY=8BITMIME -> 554
# 5.6.3, SMTPUTF8 -> 553 5.6.7, SIZE=4000 -> delivered), then to one offering
# everything (capabilities/full.txt: the same transactions get 250).
# Pass: every reply as scripted; the limited sink's ledger holds only caps-fits, the
# full one caps-utf8.
# e2e-timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_cmds python3
e2e_need_bins sluice sluice-sink

problems=()
run() # NAME N SCRIPT SINK_ARGS...
{
	local name=$1 n=$2 script=$3
	shift 3
	local sink_port port
	sink_port=$(e2e_port $((2 * n)))
	port=$(e2e_port $((2 * n + 1)))
	e2e_start_sink "$name-sink" "$sink_port" --ledger "$E2E_TMP/$name.ledger" "$@"
	local sink_pid=$E2E_LAST_PID
	e2e_sluice "$name" "$port" "$sink_port"
	local pid=$E2E_LAST_PID
	python3 "$E2E_LIB_DIR/smtpscript.py" --port "$port" --timeout 10 \
		"$E2E_LIB_DIR/capabilities/$script" >"$name.out.txt" 2>&1
	sed "s/^/  $name: /" "$name.out.txt" >&2
	grep -q '^ok ' "$name.out.txt" || problems+=("$name: $(head -1 "$name.out.txt")")
	e2e_stop "$pid" 10
	[ "$E2E_LAST_RC" = 0 ] || problems+=("$name: sluice exited with status $E2E_LAST_RC")
	e2e_stop "$sink_pid" 10
	touch "$name.ledger"
}
run limited 0 limited.txt --size 5000 --no-smtputf8 --no-8bitmime
run full 1 full.txt
got=$(cut -d' ' -f1 limited.ledger | paste -sd' ')
[ "$got" = "caps-fits@e2e.test" ] || problems+=("limited sink got '$got', want only caps-fits@e2e.test")
got=$(cut -d' ' -f1 full.ledger | paste -sd' ')
[ "$got" = "caps-utf8@e2e.test" ] || problems+=("full sink got '$got', want only caps-utf8@e2e.test")

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
