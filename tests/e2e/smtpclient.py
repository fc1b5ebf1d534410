"""tests/e2e/smtpclient.py -- small SMTP helpers for the end-to-end tests' inline python.

The t_*.sh tests write their client scripts (and tiny fake upstreams) into their temp
dir; such a script imports this module with

    import os, sys
    sys.path.insert(0, os.environ["E2E_LIB_DIR"])
    import smtpclient as sc

(lib.sh exports E2E_LIB_DIR, the directory of this file). Python 3 stdlib only.

Conventions: a reply is one string, its lines without CR LF joined by " | "; "EOF" when
the peer closed before sending a line, "TIMEOUT" when none came in time. What goes
wrong is appended to `problems`; done() prints each as a "PROBLEM ..." line (the shell
side reports the first one) and exits 1 if there are any.
Decisions: everything is IPv4 loopback; no function retries or loops without a bound.
"""

import socket
import sys
import threading
import time

problems = []


def connect(port, host="127.0.0.1", timeout=10, nodelay=True, rcvbuf=0, src=None):
    """A TCP socket connected to host:port with `timeout` set; TCP_NODELAY unless
    nodelay is false; SO_RCVBUF set to rcvbuf (if not 0) and bound to the source address
    src (if given) before connecting."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if src:
            s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((host, port))
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        s.close()
        raise
    return s


def conn(port, **kw):
    """connect(port, **kw) and a binary file to read it by lines: (socket, file)."""
    s = connect(port, **kw)
    return s, s.makefile("rb")


def reply(f, s=None, timeout=10.0, errors=False):
    """Read one (possibly multi-line) reply from the file f.

    With the socket s: its timeout is set to `timeout` first, and a time-out ends the
    reply (the lines read so far, else "TIMEOUT"). errors=True: any other socket error
    ends it too (the lines so far, else "ERROR <error>"). Without s (or errors=False)
    such exceptions propagate to the caller."""
    lines = []
    try:
        if s is not None:
            s.settimeout(timeout)
        while True:
            l = f.readline()
            if not l:
                return " | ".join(lines) or "EOF"
            lines.append(l.decode(errors="replace").rstrip("\r\n"))
            if l[3:4] != b"-":
                return " | ".join(lines)
    except (socket.timeout, TimeoutError):
        if s is None:
            raise
        return " | ".join(lines) or "TIMEOUT"
    except OSError as e:
        if s is None or not errors:
            raise
        return " | ".join(lines) or "ERROR %s" % e


def recv_reply(s, timeout=5.0):
    """One reply read straight from the socket s (no file object, so s.close() really
    closes): a last line cut short by the close counts as a line; "EOF" on a close or
    a reset before any line, "TIMEOUT" if none came within `timeout` seconds."""
    s.settimeout(timeout)
    buf = b""
    lines = []
    try:
        while True:
            while b"\n" not in buf:
                d = s.recv(4096)
                if not d:
                    return " | ".join(lines + ([buf.decode(errors="replace")] if buf else [])) or "EOF"
                buf += d
            i = buf.index(b"\n")
            l, buf = buf[:i + 1], buf[i + 1:]
            lines.append(l.decode(errors="replace").rstrip("\r\n"))
            if l[3:4] != b"-":
                return " | ".join(lines)
    except socket.timeout:
        return " | ".join(lines) or "TIMEOUT"
    except ConnectionResetError:
        return " | ".join(lines) or "EOF"


def want(label, got, prefixes, width=None):
    """Print "label: got" and note a problem unless got starts with one of prefixes;
    width: show (and record) at most that many characters of got. True if it did."""
    ok = any(got.startswith(p) for p in prefixes)
    shown = got if width is None else got[:width]
    print("%s: %s%s" % (label, shown, "" if ok else "   <-- want " + "/".join(prefixes)), flush=True)
    if not ok:
        problems.append("%s: want %s, got '%s'" % (label, " or ".join(prefixes), shown))
    return ok


def step(s, f, label, line, prefixes, timeout=10.0, timed=True, width=None, errors=False):
    """Send line (CR LF added), read the reply within `timeout` seconds (reply() with
    errors) and want() it (with width); timed: the label shows the seconds the reply
    took. Returns (reply, seconds)."""
    s.sendall(line.encode() + b"\r\n")
    t0 = time.monotonic()
    got = reply(f, s, timeout, errors)
    dt = time.monotonic() - t0
    want("%s (%.2f s)" % (label, dt) if timed else label, got, prefixes, width)
    return got, dt


def done():
    """Print every problem as "PROBLEM ..." and exit: 1 if there were any, else 0."""
    for p in problems:
        print("PROBLEM " + p)
    sys.exit(1 if problems else 0)


def note_to(path):
    """A function note(msg) that appends "MONOTONIC-SECONDS msg" lines to the file path
    (line buffered, so the shell side can grep it while the writer runs)."""
    lf = open(path, "a", buffering=1)

    def note(msg):
        lf.write("%.3f %s\n" % (time.monotonic(), msg))
    return note


def serve_upstream(port, ready, serve, lifetime, most=200):
    """A fake upstream's accept loop: listen on 127.0.0.1:port, write "1" to the file
    ready, then run serve(conn, n) in a daemon thread for the n-th connection (from 1)
    until `lifetime` seconds have passed or `most` connections were accepted."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    ls.settimeout(1)
    with open(ready, "w") as rf:
        rf.write("1\n")
    end = time.monotonic() + lifetime
    n = 0
    while time.monotonic() < end and n < most:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        n += 1
        threading.Thread(target=serve, args=(c, n), daemon=True).start()
