#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Connections for the flow-table tests (tests/integration/flow_state.sh).

  flowprobe.py serve --port P
      A TCP and UDP service on port P (IPv4). Each TCP line and each UDP datagram is a
      request: "echo TEXT" answers TEXT; "push SECONDS TEXT" answers TEXT after SECONDS
      (data the client did not ask for at that moment: the service speaks first); "close"
      answers "bye" and closes the connection (TCP: the service closes first).

  flowprobe.py connect ADDR PORT [--sport S] [--close client|server|abort] [--count N]
      N connections (default 1) one after another to ADDR:PORT, each one "echo" and its
      answer, then closed: by the client (FIN), by the service ("close"), or aborted by the
      client (RST, SO_LINGER 0). --sport binds each to port S (SO_REUSEADDR). --close
      mixed alternates client and server. Prints {"ok": N, "failed": N, "error": ...}.

  flowprobe.py udp-push ADDR PORT SECONDS [--wait W]
      From an unconnected UDP socket: "echo e" to ADDR:PORT and its answer, then "push
      SECONDS x", and wait up to W seconds (default SECONDS + 2) for that answer. Prints
      {"echo_from": [a, p] or null, "answer": bool, "from": [a, p]}.

  flowprobe.py victim tcp|udp|udp-connect ADDR PORT SECONDS
      One socket asks ADDR:PORT for an answer in SECONDS ("push SECONDS v"), then reads it
      and shows the peer as the socket API does then: {"from": [a, p]} (UDP: recvfrom),
      {"peername": [a, p]} (TCP, connected UDP: getpeername after the answer).

  flowprobe.py peers PORT N
      One unconnected UDP socket sends "echo" to 127.0.0.1 ... 127.0.0.N at PORT, then reads
      the N answers. Prints {"from": [[a, p], ...]} as recvfrom showed them.

  flowprobe.py spray PORT N
      One unconnected UDP socket sends a datagram to each of N loopback addresses
      (127.0.0.2 on) at PORT, from each CPU it may run on in turn (an LRU map keeps recent
      entries per CPU for a while). Prints {"sent": N * CPUs, "cpus": CPUs}.

  flowprobe.py sniff --iface IF --src ADDR --port P --seconds S [--ready FILE]
      Counts the TCP and UDP packets from ADDR with source port P seen on IF (IPv4, by an
      AF_PACKET socket) for S seconds, and the TCP ones by flags. --ready: a file made once
      the socket listens. Prints {"count": N, "flags": {...}, "all_from_src": N}.
"""
import json
import os
import select
import socket
import struct
import sys
import threading
import time

from lines import lines_of

TIMEOUT = 5.0


def emit(obj):
    print(json.dumps(obj), flush=True)


# --- the service -------------------------------------------------------------------------

def answer(req, send):
    """Run one request; send(bytes) delivers an answer."""
    text = req.decode(errors="replace").strip()
    verb, _, rest = text.partition(" ")
    if verb == "echo":
        send(rest.encode() + b"\n")
    elif verb == "push":
        delay, _, what = rest.partition(" ")
        timer = threading.Timer(float(delay), lambda: send(what.encode() + b"\n"))
        timer.daemon = True
        timer.start()
    elif verb == "close":
        send(b"bye\n")
        return False
    return True


def serve_tcp_conn(conn):
    lock = threading.Lock()

    def send(data):
        with lock:
            try:
                conn.sendall(data)
            except OSError:
                pass

    with conn:
        for line in lines_of(conn):
            if not answer(line, send):
                # The pushes still pending must not outlive the close.
                time.sleep(0.05)
                return


def serve(port):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(512)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    print(f"serving tcp+udp port {port}", flush=True)
    while True:
        ready, _, _ = select.select([tcp, udp], [], [])
        if tcp in ready:
            conn, _ = tcp.accept()
            threading.Thread(target=serve_tcp_conn, args=(conn,), daemon=True).start()
        if udp in ready:
            data, peer = udp.recvfrom(4096)
            answer(data, lambda d, peer=peer: udp.sendto(d, peer))


# --- clients -----------------------------------------------------------------------------

def recv_line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()


def one_connection(addr, port, sport, close, i):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    with sock:
        if sport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", sport))
        sock.connect((addr, port))
        sock.sendall(f"echo n{i}\n".encode())
        got = recv_line(sock)
        if got != f"n{i}":
            raise OSError(f"connection {i}: answer {got!r}")
        if close == "server":
            sock.sendall(b"close\n")
            if recv_line(sock) != "bye":
                raise OSError(f"connection {i}: no bye")
            # The service's FIN: wait for it, then close our side.
            sock.recv(1)
        elif close == "abort":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def connect(args):
    addr, port = args[0], int(args[1])
    opts = dict(zip(args[2::2], args[3::2]))
    sport = int(opts.get("--sport", 0))
    close = opts.get("--close", "client")
    count = int(opts.get("--count", 1))
    res = {"ok": 0, "failed": 0}
    for i in range(count):
        mode = close if close != "mixed" else ("client", "server")[i % 2]
        try:
            one_connection(addr, port, sport, mode, i)
            res["ok"] += 1
        except OSError as e:
            res["failed"] += 1
            res.setdefault("error", str(e))
    emit(res)


def udp_push(args):
    addr, port, delay = args[0], int(args[1]), float(args[2])
    opts = dict(zip(args[3::2], args[4::2]))
    wait = float(opts.get("--wait", delay + 2))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    res = {"echo_from": None, "answer": False}
    sock.sendto(b"echo e", (addr, port))
    ready, _, _ = select.select([sock], [], [], TIMEOUT)
    if ready:
        _, src = sock.recvfrom(4096)
        res["echo_from"] = [src[0], src[1]]
    sock.sendto(f"push {delay} x".encode(), (addr, port))
    ready, _, _ = select.select([sock], [], [], wait)
    if ready:
        _, src = sock.recvfrom(4096)
        res["answer"] = True
        res["from"] = [src[0], src[1]]
    emit(res)


def victim(args):
    mode, addr, port, delay = args[0], args[1], int(args[2]), float(args[3])
    stype = socket.SOCK_STREAM if mode == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, stype)
    sock.settimeout(delay + TIMEOUT)
    req = f"push {delay} v\n".encode()
    res = {}
    with sock:
        if mode == "udp":
            sock.sendto(req, (addr, port))
            _, src = sock.recvfrom(4096)
            res["from"] = [src[0], src[1]]
        else:
            sock.connect((addr, port))
            sock.send(req)
            if mode == "tcp":
                recv_line(sock)
            else:
                _, src = sock.recvfrom(4096)
                res["from"] = [src[0], src[1]]
            peer = sock.getpeername()
            res["peername"] = [peer[0], peer[1]]
    emit(res)


def peers(args):
    port, n = int(args[0]), int(args[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    for i in range(1, n + 1):
        sock.sendto(b"echo p", (f"127.0.0.{i}", port))
    got = []
    try:
        for _ in range(n):
            _, src = sock.recvfrom(4096)
            got.append([src[0], src[1]])
    except OSError:
        pass
    emit({"from": sorted(got)})


def spray(args):
    port, n = int(args[0]), int(args[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    cpus = sorted(os.sched_getaffinity(0))
    for cpu in cpus:
        os.sched_setaffinity(0, {cpu})
        for i in range(2, n + 2):
            addr = f"127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            try:
                sock.sendto(b"echo s", (addr, port))
                sent += 1
            except OSError:
                pass
    emit({"sent": sent, "cpus": len(cpus)})


# --- what reaches the client ---------------------------------------------------------------

TCP_FLAGS = "FSRPAUEC"


def sniff(args):
    opts = dict(zip(args[0::2], args[1::2]))
    src = socket.inet_aton(opts["--src"])
    port = int(opts["--port"])
    deadline = time.monotonic() + float(opts["--seconds"])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind((opts["--iface"], 0))
    if "--ready" in opts:
        open(opts["--ready"], "w").close()
    res = {"count": 0, "flags": {}, "all_from_src": 0}
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        frame, info = sock.recvfrom(65535)
        if info[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 20:
            continue
        if struct.unpack("!H", frame[12:14])[0] != 0x0800:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0xF) * 4
        if ip[12:16] != src:
            continue
        res["all_from_src"] += 1
        proto = ip[9]
        if proto not in (socket.IPPROTO_TCP, socket.IPPROTO_UDP) or len(ip) < ihl + 4:
            continue
        if struct.unpack("!H", ip[ihl:ihl + 2])[0] != port:
            continue
        res["count"] += 1
        if proto == socket.IPPROTO_TCP and len(ip) >= ihl + 14:
            bits = ip[ihl + 13]
            name = "".join(c for i, c in enumerate(TCP_FLAGS) if bits & (1 << i)) or "none"
        else:
            name = "udp"
        res["flags"][name] = res["flags"].get(name, 0) + 1
    emit(res)


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    cmd, rest = args[0], args[1:]
    if cmd == "serve":
        serve(int(dict(zip(rest[0::2], rest[1::2]))["--port"]))
    elif cmd == "connect":
        connect(rest)
    elif cmd == "udp-push":
        udp_push(rest)
    elif cmd == "sniff":
        sniff(rest)
    elif cmd == "victim":
        victim(rest)
    elif cmd == "spray":
        spray(rest)
    elif cmd == "peers":
        peers(rest)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
