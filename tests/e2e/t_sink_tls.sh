#!/usr/bin/env bash
# t_sink_tls: sluice-sink's STARTTLS (--tls-cert/--tls-key, core/tls on its ring), with a
# test PKI made here by tests/support/gen-test-pki.sh (a test CA, a server certificate
# for sink.e2e.test, localhost, 127.0.0.1 and ::1).
# Pass, each a sub-case:
#   swaks      swaks --tls --tls-verify against the test CA delivers a message; the sink's
#              dump of it is byte-identical to what swaks sent and its ledger line equals
#              XXH64/size computed here;
#   s_client   openssl s_client -starttls smtp -verify_return_error with the test CA and
#              -verify_hostname sink.e2e.test verifies the chain, over TLS 1.3 and 1.2;
#   wrong-ca   the same with another trust anchor fails (the check above is not vacuous);
#   injection  commands pipelined after STARTTLS in plaintext are never answered (RFC 3207
#              5, CVE-2011-0411); EHLO under TLS no longer offers STARTTLS and a second
#              STARTTLS gets 503;
#   big        a 25 MiB message over TLS (python smtplib, verifying chain and name) lands
#              in the ledger with the right hash and size;
#   plain      a sink without --tls-cert offers no STARTTLS, answers it 502, and
#              swaks --tls gives up;
#   summary    the sink counts exactly the completed handshakes (tls=N at SIGTERM).
# e2e-timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice-sink
e2e_need_cmds openssl swaks python3
perl -MNet::SSLeay -e 1 2>/dev/null ||
	e2e_skip "swaks cannot do TLS without Net::SSLeay (libnet-ssleay-perl, tools/install-deps.sh)"

sh "$E2E_LIB_DIR/../support/gen-test-pki.sh" pki >pki.log 2>&1 ||
	e2e_fail "gen-test-pki.sh: $(tail -1 pki.log)"
CA=$E2E_TMP/pki/ca.crt

port=$(e2e_port 0)
plain_port=$(e2e_port 1)
mkdir dump
e2e_start_sink sink "$port" --tls-cert pki/server.crt --tls-key pki/server.key \
	--hostname sink.e2e.test --dump "$E2E_TMP/dump" --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
e2e_start_sink plain "$plain_port" --hostname plain.e2e.test
plain_pid=$E2E_LAST_PID
handshakes=0

# --- swaks: STARTTLS, verified, and the message intact
printf '%s\r\n' \
	'Message-ID: <sink-tls.1@e2e.test>' \
	'From: <alice@e2e.test>' \
	'To: <bob@e2e.test>' \
	'Subject: sluice-sink STARTTLS' \
	'' \
	'first line' \
	'.one leading dot' \
	'..two leading dots' >msg.txt
printf 'last line, no CRLF in the file' >>msg.txt
cp msg.txt expected.eml
printf '\r\n' >>expected.eml
timeout 30 swaks --server "127.0.0.1:$port" --helo client.e2e.test --tls --tls-verify \
	--tls-ca-path "$CA" --from alice@e2e.test --to bob@e2e.test \
	--data "$E2E_TMP/msg.txt" >swaks.out 2>&1
rc=$?
sed 's/^/  swaks: /' swaks.out >&2
end_reply=$(awk 'seen { print; exit } /^ ~> \.$/ { seen = 1 }' swaks.out)
if [ $rc -ne 0 ]; then
	e2e_case_fail swaks "swaks exited $rc: $(grep -E '^(<\*\*|\*\*\*)' swaks.out | head -1)"
elif ! grep -q '^=== TLS started' swaks.out; then
	e2e_case_fail swaks "swaks did not start TLS"
else
	handshakes=$((handshakes + 1))
	case $end_reply in
	"<~  250"*) ;;
	*) e2e_case_fail swaks "end-of-data reply under TLS is not 250: '$end_reply'" ;;
	esac
fi

# --- s_client: the chain and the name verify, TLS 1.3 and 1.2
# s_client_run LABEL ARGS...: one session (EHLO, QUIT) into LABEL.out; its exit status
s_client_run()
{
	local label=$1
	shift
	printf 'EHLO s.e2e.test\r\nQUIT\r\n' | timeout 20 openssl s_client -starttls smtp \
		-connect "127.0.0.1:$port" -verify_return_error -ign_eof "$@" >"$label.out" 2>&1
}
for v in tls1_3 tls1_2; do
	s_client_run "s_client-$v" "-$v" -CAfile "$CA" -verify_hostname sink.e2e.test \
		-servername sink.e2e.test
	rc=$?
	grep -E 'Verify return code|Protocol *:|^221' "s_client-$v.out" | sed "s/^/  s_client $v: /" >&2
	if [ $rc -ne 0 ] || ! grep -q 'Verify return code: 0 (ok)' "s_client-$v.out"; then
		e2e_case_fail s_client "$v: exit $rc, $(grep -m1 -E 'verify error|Verify return' "s_client-$v.out")"
	elif ! grep -q '^221 ' "s_client-$v.out"; then
		e2e_case_fail s_client "$v: no 221 to QUIT under TLS"
	else
		handshakes=$((handshakes + 1))
	fi
done

# --- wrong-ca: trusting only the self-signed certificate, verification must fail
s_client_run wrong-ca -CAfile "$E2E_TMP/pki/selfsigned.crt"
rc=$?
grep -E 'verify error|Verify return' wrong-ca.out | head -2 | sed 's/^/  wrong-ca: /' >&2
if [ $rc -eq 0 ]; then
	e2e_case_fail wrong-ca "s_client accepted the sink's certificate against the wrong CA"
fi

# --- injection, big: python's ssl (chain and name checked)
cat >tls_client.py <<'PY'
import smtplib, socket, ssl, sys
sys.path.insert(0, __import__("os").environ["E2E_LIB_DIR"])
import smtpclient as sc

mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)

def reply(s):
    """One SMTP reply read byte-wise, so nothing after it is taken from the socket."""
    lines, line = [], b""
    while True:
        b = s.recv(1)
        if not b:
            return "EOF"
        line += b
        if line.endswith(b"\r\n"):
            lines.append(line[:-2].decode("utf-8", "replace"))
            if len(line) < 6 or line[3:4] != b"-":
                return " | ".join(lines)
            line = b""

def injection():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    sc.want("greeting", reply(s), ["220"])
    s.sendall(b"EHLO inj.e2e.test\r\nSTARTTLS\r\nNOOP\r\nMAIL FROM:<evil@e2e.test>\r\n")
    sc.want("EHLO", reply(s), ["250"])
    sc.want("STARTTLS", reply(s), ["220"])
    s.settimeout(0.5)
    try:
        extra = s.recv(4096)
        if extra:
            sc.problems.append("plaintext after the 220 to STARTTLS: %r" % extra[:80])
    except socket.timeout:
        pass
    s.settimeout(10)
    t = ctx.wrap_socket(s, server_hostname="sink.e2e.test")
    print("TLS %s %s" % (t.version(), t.cipher()[0]))
    t.sendall(b"EHLO inj.e2e.test\r\n")
    r = reply(t)
    sc.want("first reply under TLS (to EHLO, not the injected NOOP)", r, ["250-sink.e2e.test"])
    if "STARTTLS" in r:
        sc.problems.append("EHLO under TLS still offers STARTTLS: " + r)
    t.sendall(b"STARTTLS\r\n")
    sc.want("second STARTTLS", reply(t), ["503"])
    t.sendall(b"QUIT\r\n")
    sc.want("QUIT", reply(t), ["221"])
    t.close()

def big():
    line = b"x" * 76 + b"\r\n"
    head = b"Message-ID: <sink-tls.big@e2e.test>\r\nSubject: 25 MiB over TLS\r\n\r\n"
    body = line * ((25 * 1024 * 1024 - len(head) - 100) // len(line))
    data = head + body
    open("big.eml", "wb").write(data)
    with smtplib.SMTP("127.0.0.1", port, local_hostname="big.e2e.test", timeout=60) as c:
        c.starttls(context=ctx)  # checks 127.0.0.1 against the certificate's IP SAN
        print("TLS %s %s" % (c.sock.version(), c.sock.cipher()[0]))
        c.ehlo("big.e2e.test")
        c.sendmail("alice@e2e.test", ["bob@e2e.test"], data)
        c.quit()

try:
    {"injection": injection, "big": big}[mode]()
except Exception as e:
    sc.problems.append("%s: %s" % (type(e).__name__, e))
sc.done()
PY
e2e_case_client injection 30 tls_client.py injection "$port" "$CA"
grep -q '^TLS ' injection.client.out && handshakes=$((handshakes + 1))
e2e_case_client big 90 tls_client.py big "$port" "$CA"
grep -q '^TLS ' big.client.out && handshakes=$((handshakes + 1))

# --- plain: no --tls-cert, no STARTTLS
printf 'S: 220\nC: EHLO p.e2e.test\\r\\n\nS: 250\nC: STARTTLS\\r\\n\nS: 502\nC: QUIT\\r\\n\nS: 221\n' \
	>plain.txt
python3 "$E2E_LIB_DIR/smtpscript.py" --port "$plain_port" plain.txt >plain-script.out 2>&1 ||
	e2e_case_fail plain "STARTTLS on the plain sink: $(tail -1 plain-script.out)"
timeout 30 swaks --server "127.0.0.1:$plain_port" --helo client.e2e.test --tls \
	--from alice@e2e.test --to bob@e2e.test >swaks-plain.out 2>&1
rc=$?
grep -E 'STARTTLS|TLS' swaks-plain.out | sed 's/^/  swaks plain: /' >&2
if grep -q 'STARTTLS' <(grep '^<-' swaks-plain.out); then
	e2e_case_fail plain "the sink without --tls-cert offers STARTTLS"
elif [ $rc -eq 0 ]; then
	e2e_case_fail plain "swaks --tls succeeded against a sink without STARTTLS"
fi

# --- what the sink kept
e2e_stop "$sink_pid" 10
[ "$E2E_LAST_RC" = 0 ] || e2e_case_fail summary "sink exited with status $E2E_LAST_RC"
e2e_stop "$plain_pid" 10
got_tls=$(e2e_summary_field sink.out tls)
[ "$got_tls" = "$handshakes" ] ||
	e2e_case_fail summary "sink counted tls=$got_tls handshakes, the clients completed $handshakes"

if [ -f dump/1.eml ]; then
	cmp -s dump/1.eml expected.eml ||
		e2e_case_fail swaks "dumped message differs from what swaks sent: $(cmp dump/1.eml expected.eml 2>&1)"
else
	e2e_case_fail swaks "the sink dumped no message"
fi
want=$(printf '%s\n' "sink-tls.1@e2e.test $(e2e_xxh64_file expected.eml)" \
	"sink-tls.big@e2e.test $(e2e_xxh64_file big.eml)" | sort)
got=$(sort sink.ledger 2>/dev/null)
[ "$got" = "$want" ] || e2e_case_fail ledger "sink ledger '$got', want '$want'"
e2e_case_finish
exit 0
