#!/usr/bin/env bash
# t_transcripts: golden client->server transcripts (tests/e2e/transcripts/*.txt) run over
# loopback by smtpscript.py against sluice (max-line-length 512, max-recipients 3,
# max-message-size 10000) relaying to sluice-sink --dump --ledger.
# Pass: every script gets exactly the replies it expects, in order, and no extra ones;
# then, with the sink stopped, every "L+: ID [XXH64 SIZE]" line of the scripts is in the
# sink's ledger (with that hash and size when given) and no "L-: ID" is; and no dumped
# message contains the word SMUGGLED. Per-script transcripts are kept in TMP/transcripts.
# e2e-timeout: 180
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
mkdir dump
e2e_start_sink sink "$sink_port" --dump "$E2E_TMP/dump" --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_sluice_conf sluice.conf "$port" "$sink_port" \
	"max-line-length 512" "max-recipients 3" "max-message-size 10000"
e2e_start_sluice sluice sluice.conf "$port"
sluice_pid=$E2E_LAST_PID

problems=()
python3 "$E2E_LIB_DIR/smtpscript.py" --port "$port" --timeout 10 --log "$E2E_TMP/transcripts" \
	"$E2E_LIB_DIR"/transcripts/*.txt >scripts.out 2>&1
cat scripts.out >&2
while IFS= read -r l; do
	problems+=("$l")
done < <(grep -v '^ok ' scripts.out)

e2e_alive "$sluice_pid" || problems+=("sluice died: $(tail -2 sluice.err)")
e2e_stop "$sink_pid" 10
touch sink.ledger
cat sink.ledger >&2

for f in "$E2E_LIB_DIR"/transcripts/*.txt; do
	s=$(basename "$f")
	while read -r tag id hash size; do
		case $tag in
		L+:)
			if ! grep -q "^$id " sink.ledger; then
				problems+=("$s: message $id was not relayed to the sink")
			elif [ -n "$hash" ] && ! grep -q "^$id $hash $size\$" sink.ledger; then
				problems+=("$s: message $id reached the sink altered: '$(grep "^$id " sink.ledger | head -1)', want '$id $hash $size'")
			fi
			;;
		L-:)
			grep -q "^$id " sink.ledger &&
				problems+=("$s: message $id reached the sink, but must not have")
			;;
		esac
	done < <(grep -E '^L[+-]: ' "$f")
done
if grep -rl SMUGGLED dump >/dev/null 2>&1; then
	problems+=("smuggled content reached the sink: $(grep -rl SMUGGLED dump | head -3 | tr '\n' ' ')")
fi

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
