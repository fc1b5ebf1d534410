#!/usr/bin/env bash
# t_routing: RCPT routing through the zone table (issue 4, "At RCPT time"), end to end.
# sluice (zones: tests/e2e/routing.zones) relays to fake_upstream.py, which refuses
# first@ (550), second@ (451) and refused@dest.test (550) and logs every command. The
# client scripts (tests/e2e/routing/*.txt, run by smtpscript.py) pin the client's
# replies; this file checks what the upstream saw and what sluice logged:
#   forward     two destinations -> two upstream RCPTs, one 250 to the client
#   fallback    a|b|c tried in order until one takes it; all refusing -> the 4xx
#   partial     one of two destinations refuses -> the client's RCPT is refused
#   dedup       two recipients naming one destination -> one upstream RCPT
#   drop        250 at RCPT and end of data, no upstream transaction at all
#   refusals    reject/defer texts, 5.7.1 not ours and relay tricks, 5.1.1 unknown,
#               no verified destination; none of them reaches the upstream
#   subaddress  sub-address + tag=append, catch-all, unverified destination left out,
#               a dropped recipient beside forwarded ones
# Each script runs against an upstream with PIPELINING and one without. Then
# routing-mail-refused.txt against an upstream that refuses MAIL (both ways): each
# forwarded RCPT gets MAIL's refusal, the dropped one 250, and no content goes up.
# Pass: every script gets exactly its replies; the upstream log shows exactly the
# RCPTs listed below (and never a refused or unverified address); 4 messages reach
# the upstream; sluice's JSON log has the tx and rcpt lines described below.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_cmds python3
e2e_need_bins sluice

problems=()

# variant NAME N FAKE_ARGS...: start fake_upstream.py FAKE_ARGS (plus the refusals
# above) as NAME-up on port N*2 and sluice NAME on port N*2+1, run the scripts given in
# $scripts, stop both; NAME-up.cmds gets the upstream's "cN COMMAND" lines.
variant()
{
	local name=$1 n=$2
	shift 2
	local up port
	up=$(e2e_port $((2 * n)))
	port=$(e2e_port $((2 * n + 1)))
	rm -f "$name-up.pid"
	e2e_start "$name-up" python3 "$E2E_LIB_DIR/fake_upstream.py" --mode normal_354 \
		--port "$up" --log "$E2E_TMP/$name-up.log" --pidfile "$E2E_TMP/$name-up.pid" \
		--lifetime 100 \
		--refuse-rcpt "first@dest.test=550 5.1.1 first refuses" \
		--refuse-rcpt "second@dest.test=451 4.2.0 second busy" \
		--refuse-rcpt "refused@dest.test=550 5.1.1 nope" "$@"
	local up_pid=$E2E_LAST_PID
	e2e_wait_file "$E2E_TMP/$name-up.pid" 10 ||
		e2e_fail "fake upstream $name-up did not start: $(tail -3 "$name-up.err")"
	e2e_sluice_conf "$name.conf" "$port" "$up" "zones $E2E_TMP/zones.txt"
	e2e_start_sluice "$name" "$name.conf" "$port"
	local pid=$E2E_LAST_PID
	# shellcheck disable=SC2086 # $scripts is a list of paths
	python3 "$E2E_LIB_DIR/smtpscript.py" --port "$port" --timeout 10 \
		--log "$E2E_TMP/$name-transcripts" $scripts >"$name.scripts.out" 2>&1
	sed "s/^/  $name: /" "$name.scripts.out" >&2
	while IFS= read -r l; do
		problems+=("$name: $l")
	done < <(grep -v '^ok ' "$name.scripts.out")
	e2e_alive "$pid" || problems+=("$name: sluice died: $(tail -2 "$name.err")")
	e2e_stop "$pid" 10
	[ "$E2E_LAST_RC" = 0 ] || problems+=("$name: sluice exited with status $E2E_LAST_RC at SIGTERM")
	e2e_stop "$up_pid" 5
	sed -n 's/^[0-9.]* \(c[0-9]*\) < \(.*\)$/\1 \2/p' "$name-up.log" >"$name-up.cmds"
}

# rcpts_after CMDS SENDER: the RCPT addresses of the transaction that began with
# MAIL FROM:<SENDER>, space-separated, in order (its connection's RCPTs up to the next
# MAIL or RSET there: connections are pooled, so one may carry several sessions)
rcpts_after()
{
	awk -v from="MAIL FROM:<$2>" '
		!conn && index($0, from) { conn = $1; next }
		conn && $1 == conn && ($2 == "MAIL" || $2 == "RSET") { exit }
		conn && $1 == conn && $2 == "RCPT" { sub(/.*RCPT TO:</, ""); sub(/>.*/, ""); out = out (out ? " " : "") $0 }
		END { print out }' "$1"
}

expect_rcpts() # CMDS SENDER WANT
{
	local got
	got=$(rcpts_after "$1" "$2")
	[ "$got" = "$3" ] || problems+=("${1%-up.cmds}: $2: upstream RCPTs '$got', want '$3'")
}

cp "$E2E_LIB_DIR/routing.zones" zones.txt
scripts=$(echo "$E2E_LIB_DIR"/routing/*.txt)
# the same scripts against an upstream with PIPELINING (RCPTs in one write) and one
# without (one RCPT at a time): the same replies, the same upstream RCPTs
variant pipe 0
variant nopipe 1 --no-pipelining
for v in pipe nopipe; do
	c=$v-up.cmds
	expect_rcpts "$c" fwd@e2e.test "alice@dest.test bob@dest2.test"
	expect_rcpts "$c" fallback@e2e.test \
		"first@dest.test second@dest.test third@dest.test first@dest.test second@dest.test"
	expect_rcpts "$c" partial@e2e.test "ok@dest.test refused@dest.test"
	expect_rcpts "$c" dedup@e2e.test "shared@dest.test"
	expect_rcpts "$c" subaddr@e2e.test "bob+Tag@dest.test catch@dest.test mixed@dest.test"
	for sender in dropper@e2e.test refusals@e2e.test; do
		grep -qF "MAIL FROM:<$sender>" "$c" &&
			problems+=("$v: $sender: the upstream saw a transaction that had no forwarded recipient")
	done
	for bad in unverified.test evil.test not-ours.test spam@ 127.0.0.1; do
		grep -qF "$bad" "$c" &&
			problems+=("$v: the upstream saw '$bad': $(grep -F "$bad" "$c" | head -1)")
	done
	got=$(grep -c ' content-end' "$v-up.log")
	[ "$got" = 4 ] ||
		problems+=("$v: $got messages reached the upstream, want 4 (forward, fallback, dedup, subaddress)")
done
# an upstream that refuses MAIL, with and without PIPELINING
scripts=$E2E_LIB_DIR/routing-mail-refused.txt
variant mailno 2 --mail-reply "550 5.7.1 sender refused"
variant mailno-nopipe 3 --mail-reply "550 5.7.1 sender refused" --no-pipelining
for v in mailno mailno-nopipe; do
	grep -q ' content-end' "$v-up.log" && problems+=("$v: content reached an upstream that refused MAIL")
done
cp pipe.out sluice.out

# sluice's log: python reads the JSON lines
python3 - sluice.out >log.check 2>&1 <<'PY' || true
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
txs = {l.get("from"): l for l in lines if l.get("event") == "tx"}
rcpts = [l for l in lines if l.get("event") == "rcpt"]
def want(cond, what):
    if not cond:
        print("PROBLEM log: " + what)
tx = txs.get("fwd@e2e.test", {})
want(tx.get("outcome") == "accepted" and tx.get("dests") == ["alice@dest.test", "bob@dest2.test"],
     "fwd tx: %s" % tx)
tx = txs.get("dropper@e2e.test", {})
want(tx.get("outcome") == "dropped" and tx.get("dropped_rcpts") == 1, "dropper tx: %s" % tx)
tx = txs.get("subaddr@e2e.test", {})
want(tx.get("accepted_rcpts") == 4 and tx.get("dropped_rcpts") == 1 and len(tx.get("dests", [])) == 3,
     "subaddr tx: %s" % tx)
def rcpt(addr):
    return [r for r in rcpts if r.get("rcpt") == addr]
want(any(r["action"] == "reject" and r["rule"] == "old@route.test" for r in rcpt("old@route.test")),
     "no reject line for old@route.test")
want(any(r["action"] == "defer" for r in rcpt("busy@route.test")), "no defer line for busy@")
want(any(r["action"] == "refuse" and r["zone"] is None for r in rcpt("someone@not-ours.test")),
     "no refuse line for someone@not-ours.test")
want(any(r.get("unverified_left_out") == 1 for r in rcpt("mixed@route.test")),
     "no line saying mixed@route.test's unverified destination was left out")
want(any(r["outcome"] == "partly refused upstream" for r in rcpt("half@route.test")),
     "no 'partly refused upstream' line for half@route.test")
want(any(r["action"] == "drop" for r in rcpt("spam@route.test")), "no drop line for spam@")
PY
cat log.check >&2
while IFS= read -r l; do
	problems+=("${l#PROBLEM }")
done < <(grep -E '^(PROBLEM|Traceback)' log.check)

if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
