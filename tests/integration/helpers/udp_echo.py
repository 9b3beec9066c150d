#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A dual-stack ([::], IPV6_V6ONLY off) UDP echo service on PORT: every datagram goes back
to its sender, from PORT, empty ones included. (socat's UDP-RECVFROM fork PIPE never answers
an empty datagram and then serves no one else, and nmap -sU sends empty ones.)

  udp_echo.py PORT

(tests/integration/scanner.sh.)
"""
import socket
import sys

s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
