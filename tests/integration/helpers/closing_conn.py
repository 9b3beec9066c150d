#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A connection the service closes first while the client goes on: what bpfredir keeps for
it then is in pending (closing), both directions.

  closing_conn.py serve PORT OUTFILE   one connection: "bye", its FIN, then what the client
                                       sends until its FIN, written to OUTFILE
  closing_conn.py client ADDR PORT GOFILE
      reads up to the service's FIN and prints "closed by the service"; once GOFILE exists,
      sends "late", then its own FIN, and prints "acked" when the service's ACK of that FIN
      arrived within 3 s (the socket is closed), else "not acked: STATE".

(tests/integration/apply.sh test_upgrade_pending.)
"""
import os
import socket
import sys
import time

TCP_CLOSE = 7
STATES = {1: "ESTABLISHED", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK"}


def serve(port, outfile):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    conn, _ = ls.accept()
    conn.sendall(b"bye\n")
    conn.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        data = conn.recv(100)
        if not data:
            break
        got += data
    with open(outfile, "wb") as f:
        f.write(got)
    conn.close()


def client(addr, port, gofile):
    s = socket.create_connection((addr, port), timeout=5)
    while s.recv(100):
        pass
    print("closed by the service", flush=True)
    while not os.path.exists(gofile):
        time.sleep(0.05)
    s.sendall(b"late\n")
    s.shutdown(socket.SHUT_WR)
    state = 0
    for _ in range(30):
        state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0]
        if state == TCP_CLOSE:
            print("acked", flush=True)
            return
        time.sleep(0.1)
    print("not acked: %s" % STATES.get(state, state), flush=True)


if sys.argv[1] == "serve":
    serve(int(sys.argv[2]), sys.argv[3])
else:
    client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
