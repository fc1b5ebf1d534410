#!/usr/bin/env bash
# t_upstream_tls: STARTTLS from sluice to its upstream (issue 5, TLS policies), against
# sluice-sink with a throw-away PKI (tests/support/gen-test-pki.sh). Each case: a sink,
# a sluice (upstream-tls POLICY, ca-file PKI/ca.crt), and sluice-source sending N
# messages to x@e2e.test. Cases (policy, sink certificate -> expected):
#   verify-ok          verify, CA-signed for 127.0.0.1  -> all accepted, over TLS, and
#                      byte-identical in the sink's ledger (4k and 1M messages, and one
#                      25 MiB message: the content goes through tls_write in bounded steps)
#   verify-plain       verify, sink without STARTTLS     -> every RCPT 451 4.7.4, nothing sent
#   verify-expired     verify, expired certificate       -> 451 4.7.5, nothing sent
#   verify-selfsigned  verify, self-signed certificate   -> 451 4.7.5, nothing sent
#   opp-selfsigned     opportunistic, self-signed        -> accepted, over TLS
#   opp-plain          opportunistic, no STARTTLS        -> accepted, in plaintext
# Pass: each as expected (sluice-source's summary, the sink's ledger and its tls=N count,
# the RCPT reply seen by a swaks probe for the refusals); every sluice exits 0.
# e2e-timeout: 180
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_cmds openssl swaks python3
e2e_need_bins sluice sluice-sink sluice-source

sh "$E2E_LIB_DIR/../support/gen-test-pki.sh" pki >pki.log 2>&1 ||
	e2e_fail "gen-test-pki.sh: $(tail -1 pki.log)"
problems=()

# run NAME N POLICY CERT(or -) WANT(accept|refuse) REPLY-PREFIX SOURCE-ARGS...
run()
{
	local name=$1 n=$2 policy=$3 cert=$4 want=$5 reply=$6
	shift 6
	local sink_port port sink_args=()
	sink_port=$(e2e_port $((2 * n)))
	port=$(e2e_port $((2 * n + 1)))
	[ "$cert" = - ] || sink_args=(--tls-cert "pki/$cert.crt" --tls-key "pki/$cert.key")
	e2e_start_sink "$name-sink" "$sink_port" --ledger "$E2E_TMP/$name-sink.ledger" \
		"${sink_args[@]}"
	local sink_pid=$E2E_LAST_PID
	e2e_sluice "$name" "$port" "$sink_port" "upstream-tls $policy" \
		"ca-file $E2E_TMP/pki/ca.crt" "upstream-timeout 10s"
	local pid=$E2E_LAST_PID
	if [ "$want" = accept ]; then
		timeout 120 "$E2E_BUILD/sluice-source" -q -t x@e2e.test \
			--ledger "$E2E_TMP/$name-source.ledger" "$@" "127.0.0.1:$port" \
			>"$name-source.out" 2>&1
		e2e_log "$name: $(tail -1 "$name-source.out")"
		grep -q ' rejected=0 failed=0 ' "$name-source.out" ||
			problems+=("$name: $(tail -1 "$name-source.out"), want every message accepted")
	else
		timeout 30 swaks --server "127.0.0.1:$port" --to x@e2e.test --from a@e2e.test \
			>"$name-swaks.out" 2>&1
		local got
		got=$(grep -E -A1 '^ -> RCPT TO:' "$name-swaks.out" | sed -n '2s/^<\*\* //p')
		e2e_log "$name: RCPT -> '$got'"
		case $got in
		"$reply"*) ;;
		*) problems+=("$name: RCPT got '$got', want '$reply...'") ;;
		esac
	fi
	e2e_stop "$pid" 10
	[ "$E2E_LAST_RC" = 0 ] || problems+=("$name: sluice exited with status $E2E_LAST_RC")
	e2e_stop "$sink_pid" 10
	touch "$name-sink.ledger"
	local tls
	tls=$(e2e_summary_field "$name-sink.out" tls)
	e2e_log "$name: sink $(tail -1 "$name-sink.out")"
	if [ "$want" = accept ]; then
		e2e_ledger_compare "$name-source.ledger" "$name-sink.ledger" equal >"$name-ledger.out" 2>&1 ||
			problems+=("$name: ledger: $(sed -n 2p "$name-ledger.out")")
	else
		[ ! -s "$name-sink.ledger" ] || problems+=("$name: a message reached the sink")
	fi
	case $name in
	verify-ok | verify-big | opp-selfsigned) [ "${tls:-0}" -ge 1 ] || problems+=("$name: the sink saw no TLS session (tls=${tls:-?})") ;;
	opp-plain) [ "${tls:-0}" = 0 ] || problems+=("$name: tls=$tls on a sink without STARTTLS") ;;
	esac
}

run verify-ok 0 verify server accept "" -s 2 -m 40 -l 4k,1M
run verify-plain 1 verify - refuse "451 4.7.4"
run verify-expired 2 verify expired refuse "451 4.7.5"
run verify-selfsigned 3 verify selfsigned refuse "451 4.7.5"
run opp-selfsigned 0 opportunistic selfsigned accept "" -s 2 -m 20
run opp-plain 1 opportunistic - accept "" -m 5
run verify-big 2 verify server accept "" -m 1 -l 25M

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
