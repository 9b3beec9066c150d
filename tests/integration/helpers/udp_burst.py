#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Send 10 datagrams at once from SRC to DST:PORT out of IFACE; prints how many ICMP
destination-unreachable errors came back.

  udp_burst.py IFACE SRC DST PORT

The datagrams leave from ten UDP sockets bound beforehand (ports 30000-30009), one sendto
each: the burst must be over well within the ICMP rate limiters' period (a token a second), or
the count depends on how long it took. scapy's send, which builds each packet as it goes,
took over a second in an emulated guest. A sniffer counts the errors on the wire (the
sockets are not connected, so they are not told).

(tests/integration/reject_icmp.sh burst.)
"""
import logging
import socket
import sys
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import ICMP, ICMPv6DestUnreach, AsyncSniffer, conf

conf.verb = 0
iface, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
v6 = ":" in dst
family = socket.AF_INET6 if v6 else socket.AF_INET


def err(p):
    return (ICMPv6DestUnreach in p) if v6 else (ICMP in p and p[ICMP].type == 3)


socks = []
for i in range(10):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((src, 30000 + i))
    socks.append(s)
sniffer = AsyncSniffer(iface=iface, lfilter=err, store=True)
sniffer.start()
time.sleep(0.3)
for s in socks:
    s.sendto(b"burst", (dst, port))
time.sleep(1)
sniffer.stop()
print(len(sniffer.results or []))
