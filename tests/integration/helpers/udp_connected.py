#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""One datagram from a socket connected to ADDR:PORT, which takes a reply from that very
port only; prints "echo", "payload-differs", "refused" (an ICMP error came back) or "none"
(nothing at all within SECONDS).

  udp_connected.py ADDR PORT SECONDS

(tests/lib/packets.sh udp_connected.)
"""
import socket
import sys

addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
s.connect((addr, port))
msg = b"udp-connected %d" % id(s)
s.send(msg)
try:
    print("echo" if s.recv(2048) == msg else "payload-differs")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("none")
