#!/usr/bin/env python3
"""fake_upstream.py -- a scripted, misbehaving SMTP upstream for sluice's e2e tests.

    fake_upstream.py --mode MODE --port P --log FILE [--pidfile FILE] [options]

Listens on 127.0.0.1:P, serves each connection in a thread and writes one line per event
to --log (flushed at once, so a test can read it while this runs):

    SECONDS cN accept                       connection N accepted
    SECONDS cN > 220 ...                    a reply we sent (first line of it)
    SECONDS cN < EHLO x                     a command line received
    SECONDS cN content-line b'...'          a line of message content (first 50 only)
    SECONDS cN content-bytes N [total]      content bytes received (early_dot_reply)
    SECONDS cN content-end                  the "." that ends the content
    SECONDS cN closed-by-peer after S       EOF from sluice (S seconds after accept)
    SECONDS cN error ...                    a socket error / our own time limit

SECONDS is time.time() (wall clock, comparable between processes).

Options --refuse-rcpt ADDR=REPLY (repeatable) and --mail-reply REPLY answer those
commands with the given reply instead of 250, in every mode. --rcpt-close-conns N: the
first N connections close right after a refused RCPT's reply (an upstream that drops
the connection between two of sluice's RCPTs).

Modes (what differs from a plain upstream; every mode answers EHLO/HELO/MAIL/RCPT/RSET/
NOOP with 2xx and QUIT with 221, advertises PIPELINING unless --no-pipelining):
    normal_354       DATA -> 354, content read up to ".", then 250.
    data250          DATA -> "250 2.0.0 ..." (a protocol violation: 354 is due).
    data554          DATA -> "554 5.7.1 no"; what follows is read as commands.
    early_dot_reply  DATA -> 354; after --early-after bytes of content (default 2 MiB),
                     "250 2.0.0 ..." while the rest is still arriving; then it stops
                     reading for --pause seconds (default 1) so that sluice is surely
                     still sending, and reads on until EOF.
    greet554         the first --bad-conns connections (default: all) greet with
                     "554 busy" followed by extra bytes in the same write ("250 trailing
                     junk"), then only read until EOF; later connections are normal_354.

Every wait is bounded: the listener stops after --lifetime seconds (default 120), each
connection after --conn-timeout seconds without a byte (default 60). SIGTERM ends it.

Decision: one file with modes instead of one script per test, so that each regression
test states only which misbehaviour it needs; the event log is the assertion surface.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time

log_lock = threading.Lock()
log_file = None


def note(conn, what):
    with log_lock:
        log_file.write("%.3f c%d %s\n" % (time.time(), conn, what))
        log_file.flush()


def send(c, conn, text):
    c.sendall(text)
    note(conn, "> " + text.split(b"\r\n", 1)[0].decode(errors="replace"))


class Conn:
    """One upstream connection: a line reader over a socket with a byte count."""

    def __init__(self, sock, n, args):
        self.c = sock
        self.n = n
        self.args = args
        self.buf = b""
        self.t0 = time.time()

    def fill(self, limit=65536):
        """Read more bytes into buf; False at EOF."""
        try:
            d = self.c.recv(limit)
        except socket.timeout:
            note(self.n, "error timeout after %.2f s" % (time.time() - self.t0))
            return False
        if not d:
            note(self.n, "closed-by-peer after %.2f s" % (time.time() - self.t0))
            return False
        self.buf += d
        return True

    def line(self):
        """One CRLF-terminated line without the CRLF, or None at EOF."""
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                note(self.n, "error line longer than 1 MiB")
                return None
            if not self.fill():
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line


def read_content(cn):
    """Read message content up to the "." line; True if the "." came."""
    shown = 0
    while True:
        line = cn.line()
        if line is None:
            return False
        if line == b".":
            note(cn.n, "content-end")
            return True
        if shown < 50:
            note(cn.n, "content-line %r" % line[:100])
            shown += 1


def early_reply_content(cn):
    """early_dot_reply: reply 250 after some content, pause, then read the rest."""
    args = cn.args
    total = len(cn.buf)
    tail = cn.buf[-8:]
    ended = b"\r\n.\r\n" in cn.buf
    cn.buf = b""
    while total < args.early_after and not ended:
        if not cn.fill():
            note(cn.n, "content-bytes %d (EOF before the early reply)" % total)
            return
        total += len(cn.buf)
        ended = b"\r\n.\r\n" in tail + cn.buf
        tail = (tail + cn.buf)[-8:]
        cn.buf = b""
    note(cn.n, "content-bytes %d%s" % (total, ", content-end seen" if ended else ""))
    send(cn.c, cn.n, b"250 2.0.0 queued early, before the content ended\r\n")
    # stop reading for a while: sluice's body send stays blocked on a full window,
    # so our reply surely arrives while it is still sending
    time.sleep(args.pause)
    while cn.fill():
        total += len(cn.buf)
        ended = ended or b"\r\n.\r\n" in tail + cn.buf
        tail = (tail + cn.buf)[-8:]
        cn.buf = b""
    note(cn.n, "content-bytes %d total%s" % (total, ", content-end seen" if ended else ""))


def rcpt_refusal(args, line):
    """The --refuse-rcpt reply for this RCPT line's address, or None."""
    start, end = line.find(b"<"), line.find(b">")
    addr = line[start + 1:end].decode(errors="replace").lower() if 0 <= start < end else ""
    for spec in args.refuse_rcpt:
        want, _, reply = spec.partition("=")
        if want.lower() == addr:
            return reply.encode() + b"\r\n"
    return None


def serve(sock, n, args):
    cn = Conn(sock, n, args)
    sock.settimeout(args.conn_timeout)
    note(n, "accept")
    try:
        if args.mode == "greet554" and (args.bad_conns == 0 or n <= args.bad_conns):
            # the refusal and extra bytes in one write: they arrive in one recv
            sock.sendall(b"554 busy\r\n250 trailing junk\r\n")
            note(n, "> 554 busy (+ 250 trailing junk)")
            while cn.fill():
                note(n, "< %r" % cn.buf[:100])
                cn.buf = b""
            return
        send(sock, n, b"220 fake.e2e.test ESMTP fake_upstream\r\n")
        while True:
            line = cn.line()
            if line is None:
                return
            note(n, "< " + line[:200].decode(errors="replace"))
            verb = line[:4].upper()
            if verb == b"EHLO":
                if args.no_pipelining:
                    send(sock, n, b"250-fake.e2e.test\r\n250 8BITMIME\r\n")
                else:
                    send(sock, n, b"250-fake.e2e.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT" and rcpt_refusal(args, line) is not None:
                send(sock, n, rcpt_refusal(args, line))
                if n <= args.rcpt_close_conns:
                    note(n, "closing after the RCPT reply")
                    return
            elif verb == b"MAIL" and args.mail_reply:
                send(sock, n, args.mail_reply.encode() + b"\r\n")
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                send(sock, n, b"250 2.0.0 ok\r\n")
            elif verb == b"QUIT":
                send(sock, n, b"221 2.0.0 bye\r\n")
                return
            elif line.upper() == b"DATA":
                if args.mode == "data250":
                    send(sock, n, b"250 2.0.0 sure, queued (but you never sent it)\r\n")
                elif args.mode == "data554":
                    send(sock, n, b"554 5.7.1 no\r\n")
                elif args.mode == "early_dot_reply":
                    send(sock, n, b"354 go ahead\r\n")
                    early_reply_content(cn)
                    return
                else:
                    send(sock, n, b"354 go ahead\r\n")
                    if not read_content(cn):
                        return
                    send(sock, n, b"250 2.0.0 queued\r\n")
            else:
                send(sock, n, b"500 5.5.2 unknown command\r\n")
    except OSError as e:
        note(n, "error %s after %.2f s" % (e, time.time() - cn.t0))
    finally:
        sock.close()


def main():
    global log_file
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True,
                    choices=["normal_354", "data250", "data554", "early_dot_reply",
                             "greet554"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--pidfile")
    ap.add_argument("--no-pipelining", action="store_true")
    ap.add_argument("--refuse-rcpt", action="append", default=[], metavar="ADDR=REPLY",
                    help="answer RCPT TO:<ADDR> with REPLY (repeatable)")
    ap.add_argument("--mail-reply", help="answer every MAIL with this reply")
    ap.add_argument("--rcpt-close-conns", type=int, default=0,
                    help="connections 1..N close after their first refused RCPT")
    ap.add_argument("--bad-conns", type=int, default=0)
    ap.add_argument("--early-after", type=int, default=2 << 20)
    ap.add_argument("--pause", type=float, default=1.0,
                    help="early_dot_reply: seconds without reading after the reply")
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--conn-timeout", type=float, default=60.0)
    args = ap.parse_args()

    log_file = open(args.log, "a")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(64)
    ls.settimeout(0.5)
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pidfile + ".tmp", args.pidfile)
    end = time.time() + args.lifetime
    n = 0
    while time.time() < end and n < 1000:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        n += 1
        threading.Thread(target=serve, args=(c, n, args), daemon=True).start()
    with log_lock:
        log_file.write("%.3f c0 lifetime over\n" % time.time())
        log_file.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
