#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""One datagram from an unconnected socket (it takes a reply from any port); prints the
reply's "source-port echo|payload-differs", or "none" after 1.5 s.

  udp_ask.py ADDR PORT

(tests/integration/datapath_traffic.sh udp_ask.)
"""
import socket
import sys

addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
msg = b"udp-ask %d" % id(s)
s.sendto(msg, (addr, port))
try:
    data, peer = s.recvfrom(2048)
    print(peer[1], "echo" if data == msg else "payload-differs")
except socket.timeout:
    print("none")
