#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Send 10 datagrams at once from SRC to DST:PORT out of IFACE; prints how many ICMP
destination-unreachable errors came back.

  udp_burst.py IFACE SRC DST PORT

(tests/integration/reject_icmp.sh burst.)
"""
import logging
import sys
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IP, IPv6, UDP, ICMP, ICMPv6DestUnreach, AsyncSniffer, send, conf
conf.verb = 0
iface, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
v6 = ":" in dst
l3 = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
def err(p):
    return (ICMPv6DestUnreach in p) if v6 else (ICMP in p and p[ICMP].type == 3)
s = AsyncSniffer(iface=iface, lfilter=err, store=True); s.start(); time.sleep(0.3)
send([l3 / UDP(sport=30000 + i, dport=port) / b"burst" for i in range(10)])
time.sleep(1); s.stop()
print(len(s.results or []))
