#!/usr/bin/env python3
"""free_ports.py N [EXCLUDE...]: print N distinct TCP ports free on 127.0.0.1 (and on
::1 where IPv6 exists), outside the kernel's ephemeral range so that outgoing
connections made meanwhile cannot take them. Used by run.sh and lib.sh."""
import random, socket, sys
n = int(sys.argv[1])
exclude = set(int(x) for x in sys.argv[2:])
lo, hi = 32768, 60999
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
except OSError:
    pass
cands = [p for p in range(10000, 65000) if not lo <= p <= hi and p not in exclude]
random.shuffle(cands)
out = []
for p in cands[:5000]:
    ok = True
    for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.bind((addr, p))
        except OSError as e:
            if not (fam == socket.AF_INET6 and e.errno in (97, 99)):
                ok = False
        finally:
            s.close()
    if ok:
        out.append(p)
        if len(out) == n:
            break
if len(out) < n:
    sys.exit("no free ports")
print(" ".join(map(str, out)))
