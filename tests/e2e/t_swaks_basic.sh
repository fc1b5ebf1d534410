#!/usr/bin/env bash
# t_swaks_basic: one message from swaks through sluice to sluice-sink --dump.
# Pass: swaks sees 250 for the end of data; the sink dumped exactly one message; it
# starts with exactly one Received: field (naming sluice's hostname in its "by" clause)
# and, apart from that field, is byte-identical to what swaks sent (dot-stuffed lines in
# the body included); the sink's ledger line equals XXH64/size computed here.
# e2e-timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice sluice-sink
e2e_need_cmds swaks

sink_port=$(e2e_port 0)
port=$(e2e_port 1)
mkdir dump
e2e_start_sink sink "$sink_port" --dump "$E2E_TMP/dump" --ledger "$E2E_TMP/sink.ledger"
sink_pid=$E2E_LAST_PID
port6=$(e2e_port 2)
have6=0
python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null && have6=1
if [ $have6 = 1 ]; then
	e2e_sluice_conf sluice.conf "$port" "$sink_port" "listen [::1]:$port6"
else
	e2e_sluice_conf sluice.conf "$port" "$sink_port"
fi
e2e_start_sluice sluice sluice.conf "$port"
if [ $have6 = 1 ]; then
	printf 'S: 220\nC: EHLO six.e2e.test\\r\\n\nS: 250\nC: QUIT\\r\\n\nS: 221\nS: CLOSED\n' >six.txt
	python3 "$E2E_LIB_DIR/smtpscript.py" --host ::1 --port "$port6" six.txt >six.out 2>&1 ||
		e2e_fail "session on [::1]:$port6: $(cat six.out)"
fi

# The body has lines that need dot-stuffing on the wire. No trailing CRLF: swaks adds
# one before the final ".", so what it sends is this file + CRLF.
printf '%s\r\n' \
	'Message-ID: <swaks-basic.1@e2e.test>' \
	'From: <alice@e2e.test>' \
	'To: <bob@e2e.test>' \
	'Subject: sluice e2e basic' \
	'' \
	'first line' \
	'.one leading dot' \
	'..two leading dots' \
	'.' \
	' leading space, trailing space ' \
	'a line with	a tab' >msg.txt
printf 'last line, no CRLF in the file' >>msg.txt
cp msg.txt expected.eml
printf '\r\n' >>expected.eml

timeout 30 swaks --server "127.0.0.1:$port" --helo client.e2e.test \
	--from alice@e2e.test --to bob@e2e.test --data "$E2E_TMP/msg.txt" >swaks.out 2>&1
rc=$?
cat swaks.out >&2
[ $rc -eq 0 ] || e2e_fail "swaks exited $rc: $(grep -E '^(<\*\*|\*\*\*)' swaks.out | head -2 | tr '\n' ' ')"
end_reply=$(awk 'seen { print; exit } /^ -> \.$/ { seen = 1 }' swaks.out)
case $end_reply in
"<-  250"*) ;;
*) e2e_fail "end-of-data reply to swaks is not 250: '$end_reply'" ;;
esac

e2e_stop "$sink_pid" 10
n=$(find dump -type f | wc -l)
[ "$n" = 1 ] || e2e_fail "sink dumped $n messages, want 1"
got=$(find dump -type f)

python3 - "$got" expected.eml <<'PY' || e2e_fail "$(tail -1 "$E2E_TMP/compare.txt")"
import sys
got = open(sys.argv[1], "rb").read()
want = open(sys.argv[2], "rb").read()
out = open("compare.txt", "w")
def bad(msg):
    out.write(msg + "\n")
    sys.exit(1)
if not got.lower().startswith(b"received:"):
    bad("dumped message does not start with Received: (%r)" % got[:60])
pos = got.index(b"\n") + 1
while got[pos:pos + 1] in (b" ", b"\t"):
    pos = got.index(b"\n", pos) + 1
rcv, rest = got[:pos], got[pos:]
if not rcv.endswith(b"\r\n") or b"\n" in rcv.replace(b"\r\n", b""):
    bad("Received: field has bare LF/CR or no CRLF: %r" % rcv)
if b"sluice.e2e.test" not in rcv:
    bad("Received: field does not name the configured hostname sluice.e2e.test: %r" % rcv)
if rest.lower().startswith(b"received:"):
    bad("more than one Received: field was prepended")
if rest != want:
    i = next((i for i in range(min(len(rest), len(want))) if rest[i] != want[i]), min(len(rest), len(want)))
    bad("relayed message differs from what swaks sent at byte %d: got %r want %r" % (i, rest[i:i + 40], want[i:i + 40]))
out.write("ok: %d header bytes added: %r\n" % (len(rcv), rcv))
PY
cat compare.txt >&2

want_line="swaks-basic.1@e2e.test $(e2e_xxh64_file expected.eml)"
got_line=$(cat sink.ledger 2>/dev/null)
[ "$got_line" = "$want_line" ] ||
	e2e_fail "sink ledger line '$got_line', want '$want_line'"
exit 0
