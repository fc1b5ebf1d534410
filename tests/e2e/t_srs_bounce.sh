#!/usr/bin/env bash
# t_srs_bounce: SRS in the server (issue 5, "SRS"): sluice (1 shard, srs-domain
# fwd.e2e.test, srs-max-uses 3) relays to fake_upstream.py, which logs every command.
#   1. alice@sender.test -> x@e2e.test: the upstream gets MAIL FROM:<SRS0=...@fwd.e2e.test>,
#      and Mail::SRS (an independent implementation) reverses it to alice@sender.test;
#   2. a bounce (MAIL FROM:<>) to that SRS address: 250, and the upstream gets
#      MAIL FROM:<> and RCPT TO:<alice@sender.test>: the bounce reaches the original sender;
#   3. the same SRS address with a non-null sender: 550 5.7.1 (no relay through SRS);
#   4. a changed hash character (forged): 550 5.7.1; an address Mail::SRS made 10 days
#      ago with our secret (expired, srs-max-age 3): 550 5.7.1;
#   5. bounces 2 and 3 to the address are accepted, the 4th is 550 5.7.1 (srs-max-uses 3);
#   6. a null sender to a normal recipient stays null upstream.
# Pass: all of the above; sluice exits 0 at SIGTERM. Skips when Mail::SRS is missing.
# e2e-timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_cmds python3 perl
e2e_need_bins sluice
perl -MMail::SRS -e 1 2>/dev/null || e2e_skip "perl Mail::SRS not installed (libmail-srs-perl)"

up=$(e2e_port 0)
port=$(e2e_port 1)
printf '%s\n' "t_srs_bounce-secret-one-0123456789" "t_srs_bounce-secret-old-0123456789" >secrets
e2e_start up python3 "$E2E_LIB_DIR/fake_upstream.py" --mode normal_354 --port "$up" \
	--log "$E2E_TMP/up.log" --pidfile "$E2E_TMP/up.pid" --lifetime 50
up_pid=$E2E_LAST_PID
e2e_wait_file "$E2E_TMP/up.pid" 10 || e2e_fail "fake upstream did not start: $(tail -3 up.err)"
e2e_sluice sluice "$port" "$up" "shards 1" "srs-domain fwd.e2e.test" \
	"srs-secret $E2E_TMP/secrets" "srs-max-uses 3"
sluice_pid=$E2E_LAST_PID

problems=()
cat >client.py <<'PY'
import os, sys
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc
port, what = int(sys.argv[1]), sys.argv[2]

def tx(sender, rcpt, want_rcpt, data=True):
    s, f = sc.conn(port)
    sc.want("greeting", sc.reply(f, s), ["220"])
    sc.step(s, f, "EHLO", "EHLO client.e2e.test", ["250"], timed=False)
    sc.step(s, f, "MAIL <%s>" % sender, "MAIL FROM:<%s>" % sender, ["250"], timed=False)
    got = sc.step(s, f, "RCPT <%s>" % rcpt, "RCPT TO:<%s>" % rcpt, [want_rcpt], timed=False)[0]
    if data and got.startswith("250"):
        sc.step(s, f, "DATA", "DATA", ["354"], timed=False)
        s.sendall(b"Subject: t_srs_bounce\r\n\r\nbody\r\n.\r\n")
        sc.want("end of data", sc.reply(f, s), ["250"])
    sc.step(s, f, "QUIT", "QUIT", ["221"], timed=False)
    s.close()

if what == "send":
    tx("alice@sender.test", "x@e2e.test", "250")
else:
    sender, rcpt, want = sys.argv[3], sys.argv[4], sys.argv[5]
    tx(sender, rcpt, want)
sc.done()
PY
client() # ARGS: a client run whose problems are ours
{
	timeout 30 python3 client.py "$port" "$@" >>client.out 2>&1 ||
		problems+=("$*: $(grep -m1 -E 'PROBLEM|Traceback' client.out)")
}

# 1. the forward: the upstream's MAIL FROM is our SRS0 address
client send
srs=$(sed -n 's/.* < MAIL FROM:<\(SRS0=[^>]*\)>.*/\1/p' up.log | head -1)
e2e_log "sluice wrote: $srs"
case $srs in
*@fwd.e2e.test) ;;
*) problems+=("the upstream's MAIL FROM is not an SRS0 address of fwd.e2e.test: '$(grep 'MAIL FROM' up.log | head -1)'") ;;
esac
back=$(e2e_msrs fwd.e2e.test reverse "$srs")
[ "$back" = alice@sender.test ] || problems+=("Mail::SRS reverses '$srs' to '$back', want alice@sender.test")

# 2. the bounce reaches the original sender with a null sender
client bounce "" "$srs" 250
grep -q ' < RCPT TO:<alice@sender.test>' up.log ||
	problems+=("the bounce's RCPT to alice@sender.test never reached the upstream")
grep -q ' < MAIL FROM:<>' up.log || problems+=("the bounce's MAIL FROM:<> never reached the upstream")

# 3. no relay through SRS with a real sender
client relay mallory@evil.test "$srs" "550 5.7.1"
# 4. forged and expired
hash=${srs:5:4}
flip=${hash:0:1}
[ "$flip" = A ] && flip=B || flip=A
client forged "" "${srs:0:5}$flip${srs:6}" "550 5.7.1"
old=$(T=$(($(date +%s) - 10 * 86400)) e2e_msrs fwd.e2e.test forward bob@sender.test)
client expired "" "$old" "550 5.7.1"
# 5. bounded uses: bounces 2 and 3 pass, the 4th does not
client use2 "" "$srs" 250
client use3 "" "$srs" 250
client use4 "" "$srs" "550 5.7.1"
# 6. a null sender stays null
client null "" "y@e2e.test" 250
n=$(grep -c ' < MAIL FROM:<>' up.log)
[ "$n" -ge 4 ] || problems+=("$n null-sender MAIL FROMs reached the upstream, want 4 (3 bounces + 1)")
grep -q ' < RCPT TO:<bob@sender.test>' up.log && problems+=("the expired bounce was relayed")
grep -q 'mallory' up.log && problems+=("the non-null sender's mail through SRS reached the upstream")
cat client.out >&2

e2e_stop "$sluice_pid" 10
[ "$E2E_LAST_RC" = 0 ] || problems+=("sluice exited with status $E2E_LAST_RC at SIGTERM")
e2e_stop "$up_pid" 5
if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM %s\n' "${problems[@]}" >&2
	e2e_fail "${#problems[@]} problem(s); first: ${problems[0]}"
fi
exit 0
