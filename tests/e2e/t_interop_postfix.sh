#!/usr/bin/env bash
# t_interop_postfix: Postfix's own test tools on either side of sluice.
#   1. smtp-source -s 10 -m 2000 -l 4096 -d (sessions reused, pipelining) -> sluice ->
#      smtp-sink -c;
#   2. smtp-source -s 5 -m 200 -l 4096 (one message per connection) -> sluice ->
#      smtp-sink -c;
#   3. sluice-source -s 10 -m 2000 -l 4k -> sluice -> smtp-sink -c.
# Pass: each client exits 0 (smtp-source exits 1 on any rejected reply), sluice-source
# reports accepted=2000 rejected=0 failed=0, and smtp-sink's final counter shows exactly
# as many messages (mesg=N) as were sent; sluice still runs at the end.
# e2e-timeout: 180
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice
e2e_need_cmds /usr/sbin/smtp-source /usr/sbin/smtp-sink

problems=()
sink_mesg()
{
	tr '\r' '\n' <"$1" | sed -n 's/.*mesg=\([0-9][0-9]*\).*/\1/p' | tail -1
}

# run_part NAME WANT CLIENT-ARGS... ; the client command gets the sluice address appended.
run_part()
{
	local name=$1 want=$2
	shift 2
	local sinkp=${E2E_PORTS[$pi]} sluicep=${E2E_PORTS[$((pi + 1))]}
	pi=$((pi + 2))
	e2e_log "=== $name: $* (want $want messages)"
	e2e_start_smtp_sink "$name-sink" "$sinkp" -c
	local sink_pid=$E2E_LAST_PID
	e2e_sluice "$name" "$sluicep" "$sinkp"
	local sluice_pid=$E2E_LAST_PID
	timeout 90 "$@" "127.0.0.1:$sluicep" >"$name.client.out" 2>"$name.client.err"
	local rc=$?
	e2e_log "$name client rc $rc: $(tail -1 "$name.client.out") $(tail -1 "$name.client.err")"
	[ $rc = 0 ] || problems+=("$name: client exited $rc: $(tail -1 "$name.client.err")")
	case $1 in
	*sluice-source)
		local a r f
		a=$(e2e_summary_field "$name.client.out" accepted)
		r=$(e2e_summary_field "$name.client.out" rejected)
		f=$(e2e_summary_field "$name.client.out" failed)
		[ "$a/$r/$f" = "$want/0/0" ] ||
			problems+=("$name: sluice-source accepted=$a rejected=$r failed=$f, want $want/0/0")
		;;
	esac
	e2e_alive "$sluice_pid" || problems+=("$name: sluice died: $(tail -1 "$name-sluice.err")")
	e2e_stop "$sluice_pid" 15
	e2e_stop "$sink_pid" 5
	local m
	m=$(sink_mesg "$E2E_TMP/$name-sink.out")
	[ "$m" = "$want" ] || problems+=("$name: smtp-sink counted ${m:-no} messages, want $want")
}

pi=0
run_part pf-reuse 2000 /usr/sbin/smtp-source -s 10 -m 2000 -l 4096 -d \
	-f sender@e2e.test -t rcpt@e2e.test
run_part pf-single 200 /usr/sbin/smtp-source -s 5 -m 200 -l 4096 \
	-f sender@e2e.test -t rcpt@e2e.test
if [ -x "$E2E_BUILD/sluice-source" ]; then
	run_part sluice-source 2000 "$E2E_BUILD/sluice-source" -s 10 -m 2000 -l 4k
else
	e2e_log "sluice-source not built: part 3 not run"
	problems+=("sluice-source not built (part 3 not run)")
fi

e2e_fail_on "${problems[@]}"
exit 0
