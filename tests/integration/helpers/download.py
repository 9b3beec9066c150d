#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A download of N pseudo-random bytes (the same N every time), served or fetched.

  download.py serve N PORT        serve it to every connection on PORT (v4 and v6)
  download.py get N ADDR PORT     fetch it; prints "LENGTH SHA256-GOT SHA256-SENT"

(tests/integration/reject_icmp.sh, path MTU discovery.)
"""
import hashlib
import random
import socket
import sys

n = int(sys.argv[2])
data = random.Random(2026).randbytes(n)
if sys.argv[1] == "serve":
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", int(sys.argv[3]))); s.listen(8)
    while True:
        c, _ = s.accept()
        try:
            c.recv(16); c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1)
        except OSError:
            pass
        c.close()
else:
    c = socket.create_connection((sys.argv[3], int(sys.argv[4])), timeout=30)
    c.sendall(b"go"); got = bytearray()
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += b
    print(len(got), hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())
