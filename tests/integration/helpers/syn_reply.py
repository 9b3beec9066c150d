#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Send one bare SYN and print the reply's "sport flags" (e.g. "8445 SA"), or "none".

  syn_reply.py DST PORT SPORT

SPORT 0 picks a random source port. (tests/lib/packets.sh syn_reply.)
"""
import logging
import sys

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IP, TCP, RandShort, conf, sr1  # noqa: E402

conf.verb = 0
sport = int(sys.argv[3]) or RandShort()
reply = sr1(IP(dst=sys.argv[1]) / TCP(sport=sport, dport=int(sys.argv[2]), flags="S"),
            timeout=3)
print(f"{reply[TCP].sport} {reply[TCP].flags}" if reply and TCP in reply else "none")
