#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Send one bare SYN and wait for nothing.

  send_syn.py DST SPORT DPORT SEQ [SRC]

SRC, when given, is the source address (one that never answers, say). (tests/integration/
flow_state.sh.)
"""
import logging
import sys

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IP, TCP, conf, send  # noqa: E402

conf.verb = 0
dst, sport, dport, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ip = IP(src=sys.argv[5], dst=dst) if len(sys.argv) > 5 else IP(dst=dst)
send(ip / TCP(sport=sport, dport=dport, flags="S", seq=seq))
