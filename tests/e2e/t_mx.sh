#!/bin/bash
# t_mx.sh -- issue 5: MX delivery (upstream none) through a real DNS server.
#
# NSD serves a zone "test." on 127.0.0.1; sluice resolves through it (--dns) and
# delivers to sluice-sinks listening on several loopback addresses (127.0.0.2..9 and
# ::1) at one mx-port, plus one on an explicit port. Cases (one message each, checked
# by the client's replies and by each sink's ledger):
#   pref      MX 10 (nothing listens) then MX 20: fallback to the backup MX
#   v6        MX host with AAAA ::1 and A 127.0.0.4 (nothing there): IPv6 first
#   implicit  no MX, an A record: implicit MX (RFC 5321 5.1)
#   nullmx    MX 0 "." (RFC 7505): 556 5.1.10 at RCPT
#   nxdomain  the domain does not exist: 550 5.1.2 at RCPT
#   port      dest@host:PORT: that port, no MX lookup
#   tls       tls-policy verify: the MX's certificate (test CA) verified
#   badcert   verify and a certificate for another name: 451 4.7.5, nothing sent
#   notls     verify and no STARTTLS: 451 4.7.4; opportunistic (zone tls-policy): sent
#   fan       three hosts at once: one 250, each sink has the message once
#   split     two hosts, one refuses the message: the sender gets the refusal, the host
#             that accepted is remembered, and the retry does not reach it again
#   rcptno    a destination's RCPT refusal is relayed naming the destination
#   size/utf8 the MX offers SIZE 10000 and no SMTPUTF8: refused at RCPT, named
#   loop      a destination address that is our own listener: 554 5.4.6
#   pool      6 more messages to the tls host: its connections are reused
#   orphan    a RCPT refused 451 by one destination while another took it; the
#             message goes on for another RCPT; the retry of the refused one skips the
#             destination that has it
#   dropped   a host says 421 to one RCPT and closes: the client reads 451 (its session
#             goes on), and the next RCPTs for that host get a fresh connection
#   bounce    SRS on: a bounce to our SRS address reaches the original sender's MX
#   postmaster  postmaster@zone (no rule) and bare <Postmaster> go to `postmaster`
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink
e2e_need_cmds python3 openssl
python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null ||
	e2e_skip "no IPv6 loopback"

read -r PL PD PMX PX PF <<<"$(e2e_free_ports 5)"

sh "$E2E_LIB_DIR/../support/gen-test-pki.sh" pki >pki.log 2>&1 ||
	e2e_fail "gen-test-pki.sh: $(tail -1 pki.log)"

# --- DNS ---
cat >test.zone <<'ZONE'
pref           MX    10 mx1.pref.test.
pref           MX    20 mx2.pref.test.
mx1.pref       A     127.0.0.2
mx2.pref       A     127.0.0.3
v6             MX    10 mx.v6.test.
mx.v6          AAAA  ::1
mx.v6          A     127.0.0.4
implicit       A     127.0.0.5
nullmx         MX    0 .
tls            MX    10 sink.e2e.test.
sink.e2e       A     127.0.0.6
badcert        MX    10 mx.badcert.test.
mx.badcert     A     127.0.0.7
notls          MX    10 mx.notls.test.
mx.notls       A     127.0.0.8
notls2         MX    10 mx.notls.test.
refuse         MX    10 mx.refuse.test.
mx.refuse      A     127.0.0.9
flaky          MX    10 mx.flaky.test.
mx.flaky       A     127.0.0.13
small          MX    10 mx.small.test.
mx.small       A     127.0.0.12
orig           MX    10 mx.orig.test.
mx.orig        A     127.0.0.11
rcptno         MX    10 mx.rcptno.test.
mx.rcptno      A     127.0.0.10
port           A     127.0.0.1
fake           A     127.0.0.1
ZONE
e2e_start_nsd test test.zone "$PD"

# --- sinks: NAME ADDR PORT ARGS... ---
TLS_OK=(--tls-cert pki/server.crt --tls-key pki/server.key)
e2e_start_ledger_sink pref 127.0.0.3 "$PMX"
e2e_start_ledger_sink v6 "[::1]" "$PMX"
e2e_start_ledger_sink implicit 127.0.0.5 "$PMX"
e2e_start_ledger_sink tls 127.0.0.6 "$PMX" "${TLS_OK[@]}"
e2e_start_ledger_sink badcert 127.0.0.7 "$PMX" --tls-cert pki/wrongname.crt --tls-key pki/wrongname.key
e2e_start_ledger_sink notls 127.0.0.8 "$PMX"
e2e_start_ledger_sink refuse 127.0.0.9 "$PMX" --data-reply '554 5.6.0 refused by the refuse sink'
e2e_start_ledger_sink rcptno 127.0.0.10 "$PMX" --rcpt-reply '550 5.1.1 no such user here'
e2e_start_ledger_sink port 127.0.0.1 "$PX"
e2e_start_ledger_sink orig 127.0.0.11 "$PMX"
e2e_start_ledger_sink small 127.0.0.12 "$PMX" --size 10000 --no-smtputf8
# an upstream whose first connection closes right after refusing a@fake.test
e2e_start fake python3 "$E2E_LIB_DIR/fake_upstream.py" --mode normal_354 --port "$PF" \
	--log "$E2E_TMP/fake.log" --pidfile "$E2E_TMP/fake.pid" --lifetime 200 \
	--refuse-rcpt 'a@fake.test=421 4.3.2 closing for maintenance' --rcpt-close-conns 1
e2e_wait_file "$E2E_TMP/fake.pid" 10 || e2e_fail "fake upstream did not start: $(tail -3 fake.err)"
# every 2nd transaction's RCPTs get 451 (the 2nd, 4th, ... MAIL this sink sees)
e2e_start_ledger_sink flaky 127.0.0.13 "$PMX" --rcpt-reply '451 4.3.0 try again later' --every 2

# --- sluice ---
cat >zones.txt <<ZONES
zone e2e.test
pref@e2e.test      forward a@pref.test
v6@e2e.test        forward a@v6.test
implicit@e2e.test  forward a@implicit.test
nullmx@e2e.test    forward a@nullmx.test
nxdomain@e2e.test  forward a@nosuch.test
port@e2e.test      forward a@port.test:$PX
tls@e2e.test       forward a@tls.test
badcert@e2e.test   forward a@badcert.test
notls@e2e.test     forward a@notls.test
notls2@e2e.test    forward a@notls2.test
fan@e2e.test       forward a@pref.test b@implicit.test c@v6.test
split@e2e.test     forward s@tls.test s@refuse.test
rcptno@e2e.test    forward a@rcptno.test
small@e2e.test     forward a@small.test
loop@e2e.test      forward a@[127.0.0.1]:$PL
pair@e2e.test      forward p@tls.test p@flaky.test
other@e2e.test     forward o@implicit.test
warm@e2e.test      forward w@flaky.test
drop1@e2e.test     forward a@fake.test:$PF
drop2@e2e.test     forward b@fake.test:$PF
drop3@e2e.test     forward c@fake.test:$PF
verified-domain pref.test
verified-domain v6.test
verified-domain implicit.test
verified-domain nullmx.test
verified-domain nosuch.test
verified-domain port.test
verified-domain tls.test
verified-domain badcert.test
verified-domain notls.test
verified-domain notls2.test
verified-domain refuse.test
verified-domain rcptno.test
verified-domain small.test
verified-domain flaky.test
verified-domain fake.test
tls-policy fake.test none
tls-policy flaky.test none
verified-domain [127.0.0.1]
tls-policy small.test none
tls-policy rcptno.test none
tls-policy orig.test none
tls-policy pref.test none
tls-policy v6.test none
tls-policy implicit.test none
tls-policy port.test none
tls-policy notls2.test opportunistic
tls-policy refuse.test none
ZONES
cat >sluice.conf <<CONF
listen 127.0.0.1:$PL
upstream none
dns 127.0.0.1:$PD
mx-port $PMX
tls-policy verify
ca-file $E2E_TMP/pki/ca.crt
shards 2
hostname sluice.e2e.test
zones $E2E_TMP/zones.txt
postmaster pm@orig.test
srs-domain fwd.test
srs-secret $E2E_TMP/srs.secret
upstream-timeout 10s
connect-timeout 3s
CONF
printf '%s\n' "t_mx-secret-0123456789abcdef" >srs.secret
e2e_start_sluice sluice sluice.conf "$PL"
SLUICE_PID=$E2E_LAST_PID

# --- the client ---
cat >client.py <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["E2E_LIB_DIR"])
import smtpclient as sc

port = int(sys.argv[1])

def send(label, rcpt, rcpt_want, dot_want, body_id, sender="sender@orig.test", params=""):
    s, f = sc.conn(port)
    sc.want(label + " banner", sc.reply(f, s), ["220"])
    sc.step(s, f, label + " EHLO", "EHLO client.e2e.test", ["250"], timed=False)
    sc.step(s, f, label + " MAIL", "MAIL FROM:<%s>%s" % (sender, params), ["250"], timed=False)
    got, _ = sc.step(s, f, label + " RCPT", "RCPT TO:<%s>" % rcpt, rcpt_want, timeout=20)
    if dot_want is not None and got.startswith("250"):
        sc.step(s, f, label + " DATA", "DATA", ["354"], timed=False)
        msg = ("Message-ID: <%s@client.e2e.test>\r\nSubject: %s\r\n\r\nbody of %s\r\n.\r\n"
               % (body_id, label, body_id))
        s.sendall(msg.encode())
        sc.want(label + " end of data", sc.reply(f, s, 20), dot_want)
    s.sendall(b"QUIT\r\n")
    s.close()

which = sys.argv[2]
if which == "main":
    send("pref", "pref@e2e.test", ["250"], ["250"], "m-pref")
    send("v6", "v6@e2e.test", ["250"], ["250"], "m-v6")
    send("implicit", "implicit@e2e.test", ["250"], ["250"], "m-implicit")
    send("nullmx", "nullmx@e2e.test", ["556 5.1.10"], None, "m-nullmx")
    send("nxdomain", "nxdomain@e2e.test", ["550 5.1.2"], None, "m-nx")
    send("port", "port@e2e.test", ["250"], ["250"], "m-port")
    send("tls", "tls@e2e.test", ["250"], ["250"], "m-tls")
    send("badcert", "badcert@e2e.test", ["451 4.7.5"], None, "m-badcert")
    send("notls", "notls@e2e.test", ["451 4.7.4"], None, "m-notls")
    send("notls2", "notls2@e2e.test", ["250"], ["250"], "m-notls2")
    # what the destination's MX cannot take is refused at RCPT, naming it
    send("size", "small@e2e.test", ["552 5.3.4 [small.test]"], None, "m-size", params=" SIZE=50000")
    send("utf8", "small@e2e.test", ["553 5.6.7 [small.test]"], None, "m-utf8", params=" SMTPUTF8")
    send("small-ok", "small@e2e.test", ["250"], ["250"], "m-small", params=" SIZE=500")
    # a destination that is sluice itself: refused, never a session with ourselves
    send("loop", "loop@e2e.test", ["554 5.4.6 [[127.0.0.1]]"], None, "m-loop")
    send("rcptno", "rcptno@e2e.test", ["550 5.1.1 [rcptno.test] no such user"], None, "m-rcptno")
    # no rule covers postmaster@e2e.test: RFC 5321 4.5.1 wants it taken anyway
    send("postmaster", "PostMaster@e2e.test", ["250 2.1.5 [orig.test]"], ["250"], "m-pm1")
    send("postmaster-bare", "Postmaster", ["250 2.1.5 [orig.test]"], ["250"], "m-pm2")
    send("fan", "fan@e2e.test", ["250"], ["250 2.0.0 Ok: delivered to 3 destination hosts"], "m-fan")
elif which == "pool":
    for i in range(6):
        send("pool%d" % i, "tls@e2e.test", ["250"], ["250 2.0.0 [tls.test]"], "m-pool%d" % i)
elif which == "bounce":
    # a bounce to the SRS address of a message we forwarded: to the original sender's MX
    send("bounce", sys.argv[3], ["250 2.1.5 [orig.test]"], ["250 2.0.0 [orig.test]"], "m-bounce",
         sender="")
elif which == "orphan":
    # RCPT pair@ is refused 451 (flaky) although tls.test took it; the message goes on
    # for other@ and reaches tls.test. The sender's retry of pair@ must not reach
    # tls.test again.
    send("warm", "warm@e2e.test", ["250"], ["250"], "m-warm")   # flaky's 1st MAIL: ok
    msg = b"Message-ID: <m-orphan@client.e2e.test>\r\nSubject: orphan\r\n\r\nbody\r\n.\r\n"
    s, f = sc.conn(port)
    sc.want("orphan banner", sc.reply(f, s), ["220"])
    sc.step(s, f, "orphan EHLO", "EHLO client.e2e.test", ["250"], timed=False)
    sc.step(s, f, "orphan MAIL", "MAIL FROM:<sender@orig.test>", ["250"], timed=False)
    sc.step(s, f, "orphan RCPT pair", "RCPT TO:<pair@e2e.test>", ["451 4.3.0 [flaky.test]"])
    sc.step(s, f, "orphan RCPT other", "RCPT TO:<other@e2e.test>", ["250"])
    sc.step(s, f, "orphan DATA", "DATA", ["354"], timed=False)
    s.sendall(msg)
    sc.want("orphan end of data", sc.reply(f, s, 20), ["250"])
    # the retry, as a sender's queue would make it: the same message, the refused RCPT
    sc.step(s, f, "retry MAIL", "MAIL FROM:<sender@orig.test>", ["250"], timed=False)
    sc.step(s, f, "retry RCPT pair", "RCPT TO:<pair@e2e.test>", ["250"])
    sc.step(s, f, "retry DATA", "DATA", ["354"], timed=False)
    s.sendall(msg)
    sc.want("retry end of data", sc.reply(f, s, 20), ["250 2.0.0 Ok: delivered to 2"])
    s.sendall(b"QUIT\r\n")
    s.close()
elif which == "dropped":
    # the host refuses drop1's destination and closes the connection: the next RCPTs
    # for that host open a fresh one (no stale refusal, no wait)
    s, f = sc.conn(port)
    sc.want("dropped banner", sc.reply(f, s), ["220"])
    sc.step(s, f, "dropped EHLO", "EHLO client.e2e.test", ["250"], timed=False)
    sc.step(s, f, "dropped MAIL", "MAIL FROM:<sender@orig.test>", ["250"], timed=False)
    # its 421 is relayed as 451: the upstream closes, our session goes on
    sc.step(s, f, "dropped RCPT 1", "RCPT TO:<drop1@e2e.test>",
            ["451 4.3.2 [fake.test] closing for maintenance"])
    time.sleep(0.5)  # the close reaches sluice while the leg is idle
    sc.step(s, f, "dropped RCPT 2", "RCPT TO:<drop2@e2e.test>", ["250"])
    sc.step(s, f, "dropped RCPT 3", "RCPT TO:<drop3@e2e.test>", ["250"])
    sc.step(s, f, "dropped DATA", "DATA", ["354"], timed=False)
    s.sendall(b"Message-ID: <m-dropped@client.e2e.test>\r\n\r\nbody\r\n.\r\n")
    sc.want("dropped end of data", sc.reply(f, s, 20), ["250"])
    s.sendall(b"QUIT\r\n")
    s.close()
elif which == "split":
    # the tls host takes it, the refuse host refuses the content: the refusal, named
    send("split", "split@e2e.test", ["250"], ["554 5.6.0 [refuse.test] refused"], "m-split")
sc.done()
PY
python3 client.py "$PL" main >client-main.out 2>&1 ||
	e2e_fail "client: $(grep -m1 PROBLEM client-main.out || tail -3 client-main.out)"

# each sink holds exactly what it should
ledger_has()
{
	local sink=$1 id=$2 n=$3 got
	got=$(grep -c "^$id@client.e2e.test " "$sink.ledger" 2>/dev/null)
	[ "${got:-0}" = "$n" ] || e2e_fail "sink $sink has message $id ${got:-0} times, want $n"
}
ledger_has pref m-pref 1
ledger_has v6 m-v6 1
ledger_has implicit m-implicit 1
ledger_has port m-port 1
ledger_has tls m-tls 1
ledger_has notls m-notls2 1
ledger_has pref m-fan 1
ledger_has implicit m-fan 1
ledger_has v6 m-fan 1
for s in badcert notls; do
	ledger_has "$s" m-badcert 0
done
ledger_has notls m-notls 0

# SRS in MX delivery: what a destination saw as our MAIL FROM is bounced back; the
# bounce goes to the original sender's own MX (orig.test), with a null sender
srs=$("$E2E_BUILD/sluice" -c sluice.conf --srs-forward sender@orig.test 2>srs.err) ||
	e2e_fail "sluice --srs-forward: $(cat srs.err)"
case $srs in SRS0=*@fwd.test) ;; *) e2e_fail "not an SRS0 address of fwd.test: '$srs'" ;; esac
python3 client.py "$PL" bounce "$srs" >client-bounce.out 2>&1 ||
	e2e_fail "bounce: $(grep -m1 PROBLEM client-bounce.out)"
ledger_has small m-small 1
ledger_has small m-size 0
ledger_has orig m-bounce 1
ledger_has orig m-pm1 1
ledger_has orig m-pm2 1

# a RCPT refused by one of its destinations while another took it: the retry of
# that recipient does not reach the one that took it
python3 client.py "$PL" orphan >client-orphan.out 2>&1 ||
	e2e_fail "orphan: $(grep -m1 PROBLEM client-orphan.out)"
ledger_has tls m-orphan 1
ledger_has implicit m-orphan 1
ledger_has flaky m-orphan 1

# a host that drops its connection between two RCPTs of one transaction
python3 client.py "$PL" dropped >client-dropped.out 2>&1 ||
	e2e_fail "dropped: $(grep -m1 -E 'PROBLEM|Error' client-dropped.out)"
grep -q ' c2 < RCPT TO:<b@fake.test>' fake.log ||
	e2e_fail "the RCPT after the dropped connection did not go to a fresh one: $(grep RCPT fake.log)"
grep -q ' c2 content-end' fake.log || e2e_fail "the message never reached the fresh connection"

# fan-out with a partial failure, then the sender's retry (twice)
for round in 1 2; do
	python3 client.py "$PL" split >"client-split-$round.out" 2>&1 ||
		e2e_fail "split round $round: $(grep -m1 PROBLEM "client-split-$round.out")"
done
ledger_has tls m-split 1
grep -q '"event":"leg".*"outcome":"duplicate skipped"' sluice.out ||
	e2e_fail "no leg was skipped as a duplicate on the retry"

# a busy destination keeps its connection (pool per destination host): 9 messages
# reached the tls host (tls, 6 x pool, split once: the retry is skipped); at most 2
# connections per shard
python3 client.py "$PL" pool >client-pool.out 2>&1 ||
	e2e_fail "pool: $(grep -m1 PROBLEM client-pool.out)"
e2e_stop "$(cat tls.pid)"
sessions=$(e2e_summary_field tls.out sessions)
msgs=$(e2e_summary_field tls.out messages)
e2e_log "tls sink: sessions=$sessions messages=$msgs"
[ "${msgs:-0}" -ge 8 ] || e2e_fail "the tls sink saw ${msgs:-0} transactions, want >= 8"
[ "${sessions:-99}" -le 4 ] || e2e_fail "the tls sink saw $sessions connections for $msgs transactions: no reuse"

e2e_stop "$SLUICE_PID"
[ "$E2E_LAST_RC" = 0 ] || e2e_fail "sluice exited with status $E2E_LAST_RC"
e2e_log "MX preference, IPv6 first, implicit MX, null MX, NXDOMAIN, explicit port, TLS" \
	"verify/refused/opportunistic, fan-out and a deduplicated retry: ok"
