#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""One connection held open across a change of the server's programs: an echo through it
now, and one more once GOFILE exists, each reply printed on a line of its own.

  held_echo.py ADDR PORT GOFILE

(tests/integration/apply.sh held_echo.)
"""
import os
import socket
import sys
import time

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"before\n")
print(s.recv(100).decode().strip(), flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
s.sendall(b"after\n")
print(s.recv(100).decode().strip(), flush=True)
