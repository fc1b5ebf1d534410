#!/usr/bin/env python3
"""smtpscript.py -- run client->server SMTP transcripts over a raw loopback socket.

    smtpscript.py [--host H] --port P [--log DIR] [--timeout S] SCRIPT.txt...
    smtpscript.py --ledger-line FILE     (prints "XXH64 SIZE" of a message file)

Script lines (one directive per line; blank lines and '#' comments ignored):
    C: <bytes>          sent exactly, in one write. Escapes: \\r \\n \\t \\\\ \\xHH, and
                        {rep:N:TEXT} = TEXT repeated N times. Several commands in one C:
                        line are one write (pipelining).
    D: N [MSGID]        send N bytes of message content (CRLF lines, no line starting with
                        '.', a Message-ID header when MSGID is given); the final "." is
                        not sent: write it with a C: line.
    S: CODE [REGEX]     expect one reply (a multi-line reply counts once). CODE is three
                        characters, digits or 'x' for any digit (5xx). REGEX is searched
                        in the reply text (all lines, code and '-'/' ' removed, joined
                        with '\\n').
    S: CLOSED           expect the server to close the connection (EOF, no more bytes).
    L+: MSGID / L-: MSGID  ledger expectations, checked by the caller (t_transcripts.sh)
                        against the upstream sink's ledger: this driver ignores them.
At the end of a script that does not end with S: CLOSED, any unexpected extra reply
bytes are a failure (a smuggled command that was executed shows up this way).

Each script is one TCP session. Output: "ok NAME" per script, or "FAIL NAME:LINE: ..."
with the expectation, the reply received and the last bytes sent. Exit 1 if any failed.

Decision: the driver speaks raw bytes instead of smtplib, because the scripts must
control exactly which bytes go into which write (bare LF, pipelined batches, BDAT
chunks), which smtplib normalises away.
"""

import argparse
import ctypes
import os
import re
import socket
import sys
import time


def unescape(text):
    def rep(m):
        return m.group(2) * int(m.group(1))
    text = re.sub(r"\{rep:(\d+):([^}]*)\}", rep, text)
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "r":
                out += b"\r"
            elif n == "n":
                out += b"\n"
            elif n == "t":
                out += b"\t"
            elif n == "\\":
                out += b"\\"
            elif n == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 2
            else:
                raise ValueError("unknown escape \\" + n)
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def make_content(size, msgid):
    """Exactly `size` bytes of message content: CRLF lines, none starting with '.'."""
    head = b""
    if msgid:
        head += b"Message-ID: <" + msgid.encode() + b">\r\n"
    head += b"From: <a@e2e.test>\r\nTo: <b@e2e.test>\r\nSubject: size test\r\n\r\n"
    rest = size - len(head)
    if rest < 2:
        raise ValueError("D: %d is smaller than the headers (%d)" % (size, len(head) + 2))
    body = bytearray()
    while rest > 160:
        body += b"x" * 78 + b"\r\n"
        rest -= 80
    if rest <= 80:
        parts = [rest]
    else:
        parts = [rest // 2, rest - rest // 2]
    for p in parts:
        body += b"y" * (p - 2) + b"\r\n"
    out = head + bytes(body)
    assert len(out) == size
    return out


class Mismatch(Exception):
    pass


class Session:
    def __init__(self, host, port, timeout, log):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect((host, port))
        self.buf = b""
        self.timeout = timeout
        self.log = log
        self.eof = False

    def send(self, data):
        self.log.write(b"C: " + repr(data).encode() + b"\n")
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data
        return data

    def read_line(self, deadline):
        while b"\n" not in self.buf:
            if self.eof or not self._fill(deadline):
                return None
        i = self.buf.index(b"\n")
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return line

    def read_reply(self):
        """Return (code, [raw lines]) or (None, partial lines) on EOF."""
        deadline = time.monotonic() + self.timeout
        lines = []
        while True:
            line = self.read_line(deadline)
            if line is None:
                if self.buf:
                    lines.append(self.buf)
                    self.buf = b""
                return None, lines
            lines.append(line)
            self.log.write(b"S: " + repr(line).encode() + b"\n")
            if not line.endswith(b"\r\n"):
                raise Mismatch("reply line not ended by CRLF: %r" % line)
            if len(line) < 5 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b"\r"):
                raise Mismatch("malformed reply line: %r" % line)
            if line[3:4] != b"-":
                return line[:3].decode(), lines

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def describe(lines):
    return " | ".join(l.decode("utf-8", "replace").rstrip("\r\n") for l in lines) or "(nothing)"


def run_script(path, host, port, timeout, logdir):
    name = os.path.basename(path)
    with open(path, "r", encoding="utf-8") as f:
        raw_lines = f.read().split("\n")
    logf = open(os.path.join(logdir, name + ".log"), "wb") if logdir else open(os.devnull, "wb")
    last_sent = b"(nothing yet)"
    sess = None
    lineno = 0
    try:
        sess = Session(host, port, timeout, logf)
        ended_closed = False
        for lineno, line in enumerate(raw_lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.startswith("C: ") or line == "C:":
                data = unescape(line[3:])
                last_sent = data
                try:
                    sess.send(data)
                except (BrokenPipeError, ConnectionResetError) as e:
                    raise Mismatch("send failed (%s): server closed the connection" % e)
                ended_closed = False
            elif line.startswith("D: "):
                parts = line[3:].split()
                data = make_content(int(parts[0]), parts[1] if len(parts) > 1 else None)
                last_sent = b"(%d bytes of content)" % len(data)
                try:
                    sess.send(data)
                except (BrokenPipeError, ConnectionResetError) as e:
                    raise Mismatch("send failed (%s): server closed the connection" % e)
            elif line.startswith("S: "):
                want = line[3:].strip()
                if want == "CLOSED":
                    try:
                        code, got = sess.read_reply()
                    except socket.timeout:
                        raise Mismatch("expected the server to close the connection; it is "
                                       "still open after %ss" % timeout)
                    if code is not None or got:
                        raise Mismatch("expected the connection to close; got %s" % describe(got))
                    ended_closed = True
                    continue
                wcode, _, wre = want.partition(" ")
                if not re.fullmatch(r"[0-9x]{3}", wcode):
                    raise Mismatch("bad S: line in script")
                try:
                    code, got = sess.read_reply()
                except socket.timeout:
                    raise Mismatch("expected %s%s; no reply within %ss (after sending %r)" % (
                        wcode, " /" + wre + "/" if wre else "", timeout, last_sent[-120:]))
                if code is None:
                    raise Mismatch("expected %s%s; connection closed (got %s) after sending %r" % (
                        wcode, " /" + wre + "/" if wre else "", describe(got), last_sent[-120:]))
                codeok = all(w == "x" or w == c for w, c in zip(wcode, code))
                text = "\n".join(l[4:].decode("utf-8", "replace").rstrip("\r\n") for l in got)
                textok = not wre or re.search(wre, text) is not None
                if not (codeok and textok):
                    raise Mismatch("expected %s%s; got %s (after sending %r)" % (
                        wcode, " /" + wre + "/" if wre else "", describe(got), last_sent[-120:]))
            elif line.startswith("L+: ") or line.startswith("L-: "):
                continue
            else:
                raise Mismatch("unknown directive %r" % line)
        if not ended_closed:
            # Anything further the server says is a reply nobody asked for.
            sess.sock.settimeout(0.3)
            try:
                extra = sess.buf + sess.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                extra = sess.buf
            except OSError:
                extra = sess.buf
            if extra:
                lineno = len(raw_lines)
                raise Mismatch("unexpected extra reply at end of script: %r" % extra[:300])
        print("ok %s" % name)
        return True
    except Mismatch as e:
        print("FAIL %s:%d: %s" % (name, lineno, e))
        return False
    except (OSError, ValueError) as e:
        print("FAIL %s:%d: %s: %s" % (name, lineno, type(e).__name__, e))
        return False
    finally:
        if sess:
            sess.close()
        logf.close()


def ledger_line(path):
    """XXH64 (seed 0) and size of the message content minus leading Received: fields."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while data[pos:pos + 9].lower() == b"received:":
        nl = data.find(b"\n", pos)
        if nl < 0:
            pos = len(data)
            break
        pos = nl + 1
        while pos < len(data) and data[pos:pos + 1] in (b" ", b"\t"):
            nl = data.find(b"\n", pos)
            pos = len(data) if nl < 0 else nl + 1
    body = data[pos:]
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH64.restype = ctypes.c_uint64
    lib.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    return "%016x %d" % (lib.XXH64(body, len(body), 0), len(body))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--log", help="directory for per-script transcripts")
    ap.add_argument("--ledger-line", metavar="FILE")
    ap.add_argument("scripts", nargs="*")
    a = ap.parse_args()
    if a.ledger_line:
        print(ledger_line(a.ledger_line))
        return 0
    if a.port is None or not a.scripts:
        ap.error("--port and at least one script are required")
    if a.log:
        os.makedirs(a.log, exist_ok=True)
    ok = True
    for s in a.scripts:
        ok = run_script(s, a.host, a.port, a.timeout, a.log) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
