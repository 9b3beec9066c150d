#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Bulk TCP transfers for the datapath tests.

  xfer.py serve PORT
      A dual-stack ([::], IPV6_V6ONLY off) TCP echo service on PORT: every byte received
      is sent back; at the client's EOF the reply side is closed too.

  xfer.py echo HOST PORT BYTES
      Connects to HOST:PORT and sends BYTES random bytes while reading the echo back, then
      half-closes and reads to EOF. Prints one JSON line: ok (the echo is byte-identical),
      sent, received, sha256_sent, sha256_received, seconds, and error when a call failed.
      Both directions carry the whole payload, so a transfer through the redirect
      exercises the ingress rewrite (client to service) and the egress one (replies).
"""
import hashlib
import json
import os
import socket
import sys
import threading
import time

CHUNK = 65536
TIMEOUT = 20.0


def serve_conn(conn):
    with conn:
        try:
            while True:
                data = conn.recv(CHUNK)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(port):
    lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lsock.bind(("::", port))
    lsock.listen(128)
    print(f"echo service on tcp port {port}", flush=True)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve_conn, args=(conn,), daemon=True).start()


def echo(host, port, nbytes):
    payload = os.urandom(nbytes)
    res = {"ok": False, "sent": 0, "received": 0,
           "sha256_sent": hashlib.sha256(payload).hexdigest()}
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    errors = []

    def sender():
        try:
            view = memoryview(payload)
            while res["sent"] < nbytes:
                n = sock.send(view[res["sent"]:res["sent"] + CHUNK])
                res["sent"] += n
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(f"send: {e}")

    start = time.monotonic()
    digest = hashlib.sha256()
    try:
        sock.connect((host, port))
        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        while True:
            data = sock.recv(CHUNK)
            if not data:
                break
            digest.update(data)
            res["received"] += len(data)
        thread.join(TIMEOUT)
    except OSError as e:
        errors.append(f"recv: {e}")
    finally:
        sock.close()
    res["seconds"] = round(time.monotonic() - start, 3)
    res["sha256_received"] = digest.hexdigest()
    if errors:
        res["error"] = "; ".join(errors)
    res["ok"] = (not errors and res["received"] == nbytes and
                 res["sha256_received"] == res["sha256_sent"])
    print(json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "echo":
        return echo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
