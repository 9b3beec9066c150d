#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Socket probe for the local-client tests: one real socket, its result as one JSON line.

  sockprobe.py serve --port P --tag TAG [--fastopen]
      A dual-stack ([::], IPV6_V6ONLY off) TCP and UDP echo service on port P. For every
      TCP line and every UDP datagram it answers "TAG ADDR PORT DATA", ADDR PORT being the
      peer it sees (v4-mapped addresses shown as plain IPv4). --fastopen enables
      TCP_FASTOPEN on the listener.

  sockprobe.py MODE ADDR PORT
      One client exchange with the service at ADDR:PORT, printed as JSON:
        tcp                   connect(), send, recv
        tcp-fastopen          sendto(MSG_FASTOPEN), recv
        tcp-fastopen-connect  setsockopt(TCP_FASTOPEN_CONNECT), connect(), send, recv
        udp                   unconnected sendto(), recvfrom()
        udp-connect           connect(), send(), recvfrom()
        hold                  tcp connect() and one exchange, then one exchange per line
                              read on stdin (one JSON line each), until EOF
      The socket is AF_INET6 when ADDR contains ':' (so ::ffff:a.b.c.d is IPv4-mapped on
      an AF_INET6 socket), else AF_INET.

Every call is bounded by SO_RCVTIMEO/SO_SNDTIMEO (3 s): a call that times out fails with
EAGAIN (11), or EINPROGRESS (115) for connect().

JSON keys: ok (bool), errno and error (when a call failed), op (the call that failed),
peername, sockname, from ([addr, port] as the socket API shows them), service, service_saw
([addr, port] the service saw, normalised), reply (raw text), syn_data (TFO: the SYN carried
data that the server acknowledged).
"""
import json
import select
import socket
import struct
import sys
import threading

from lines import lines_of

TIMEOUT = 3.0
# Not every Python names these.
TCP_FASTOPEN = getattr(socket, "TCP_FASTOPEN", 23)
TCP_FASTOPEN_CONNECT = getattr(socket, "TCP_FASTOPEN_CONNECT", 30)
MSG_FASTOPEN = getattr(socket, "MSG_FASTOPEN", 0x20000000)
TCPI_OPT_SYN_DATA = 32


def norm(addr):
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def pair(sockaddr):
    return [sockaddr[0], sockaddr[1]]


# --- the service -------------------------------------------------------------------------

def answer(tag, peer, data):
    text = data.decode(errors="replace").strip()
    return f"{tag} {norm(peer[0])} {peer[1]} {text}\n".encode()


def serve_tcp_conn(conn, peer, tag):
    with conn:
        for line in lines_of(conn):
            try:
                conn.sendall(answer(tag, peer, line))
            except OSError:
                return


def serve(port, tag, fastopen):
    tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if fastopen:
        tcp.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN, 16)
    tcp.bind(("::", port))
    tcp.listen(64)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("::", port))
    print(f"serving {tag} on tcp+udp port {port}", flush=True)
    while True:
        ready, _, _ = select.select([tcp, udp], [], [])
        if tcp in ready:
            conn, peer = tcp.accept()
            threading.Thread(target=serve_tcp_conn, args=(conn, peer, tag), daemon=True).start()
        if udp in ready:
            data, peer = udp.recvfrom(4096)
            udp.sendto(answer(tag, peer, data), peer)


# --- the clients -------------------------------------------------------------------------

class Failed(Exception):
    def __init__(self, op, err):
        super().__init__(op)
        self.op = op
        self.err = err


def call(op, fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        raise Failed(op, e) from e


def parse_reply(res, data):
    text = data.decode(errors="replace")
    res["reply"] = text.strip()
    fields = text.split()
    if len(fields) >= 3 and fields[2].isdigit():
        res["service"] = fields[0]
        res["service_saw"] = [fields[1], int(fields[2])]


def recv_line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def names(res, sock, peer=True):
    res["sockname"] = pair(sock.getsockname())
    if peer:
        res["peername"] = pair(sock.getpeername())


def syn_data(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    # struct tcp_info: state, ca_state, retransmits, probes, backoff, options, ...
    return bool(struct.unpack_from("B", info, 5)[0] & TCPI_OPT_SYN_DATA)


def client(mode, addr, port, res):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    stype = socket.SOCK_DGRAM if mode.startswith("udp") else socket.SOCK_STREAM
    sock = socket.socket(family, stype)
    # Blocking calls bounded by the kernel's timeouts rather than Python's settimeout(),
    # which makes the socket non-blocking and so turns sendto(MSG_FASTOPEN) into
    # EINPROGRESS. A timed-out call fails with EAGAIN (or EINPROGRESS for connect).
    tv = struct.pack("ll", int(TIMEOUT), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    dest = (addr, port)
    msg = f"hello from {mode}\n".encode()
    with sock:
        if mode in ("tcp", "hold"):
            call("connect", sock.connect, dest)
            names(res, sock)
            call("send", sock.sendall, msg)
            parse_reply(res, call("recv", recv_line, sock))
        elif mode == "tcp-fastopen":
            call("sendto", sock.sendto, msg, MSG_FASTOPEN, dest)
            parse_reply(res, call("recv", recv_line, sock))
            names(res, sock)
            res["syn_data"] = syn_data(sock)
        elif mode == "tcp-fastopen-connect":
            call("setsockopt", sock.setsockopt, socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1)
            call("connect", sock.connect, dest)
            call("send", sock.sendall, msg)
            parse_reply(res, call("recv", recv_line, sock))
            names(res, sock)
            res["syn_data"] = syn_data(sock)
        elif mode == "udp":
            call("sendto", sock.sendto, msg, dest)
            data, src = call("recvfrom", sock.recvfrom, 4096)
            res["from"] = pair(src)
            names(res, sock, peer=False)
            parse_reply(res, data)
        elif mode == "udp-connect":
            call("connect", sock.connect, dest)
            names(res, sock)
            call("send", sock.send, msg)
            data, src = call("recvfrom", sock.recvfrom, 4096)
            res["from"] = pair(src)
            parse_reply(res, data)
        else:
            raise SystemExit(f"sockprobe: unknown mode {mode}")
        res["ok"] = "service" in res
        if mode == "hold":
            emit(res)
            hold(sock)


def hold(sock):
    """One exchange per stdin line on the open connection; a JSON line for each."""
    for line in sys.stdin:
        step = line.strip()
        res = {"ok": False, "step": step}
        try:
            call("send", sock.sendall, f"{step}\n".encode())
            parse_reply(res, call("recv", recv_line, sock))
            res["ok"] = res.get("reply", "").endswith(step)
        except Failed as e:
            failed(res, e)
        emit(res)


def failed(res, e):
    res["ok"] = False
    res["op"] = e.op
    res["errno"] = e.err.errno
    res["error"] = e.err.strerror


def emit(res):
    print(json.dumps(res), flush=True)


def main():
    args = sys.argv[1:]
    if args[:1] == ["serve"]:
        rest = [a for a in args[1:] if a != "--fastopen"]
        opts = dict(zip(rest[0::2], rest[1::2]))
        serve(int(opts["--port"]), opts["--tag"], "--fastopen" in args)
        return
    if len(args) != 3:
        raise SystemExit(__doc__)
    mode, addr, port = args
    res = {"ok": False, "mode": mode, "addr": addr, "port": int(port)}
    try:
        client(mode, addr, int(port), res)
    except Failed as e:
        failed(res, e)
    if mode != "hold" or "op" in res:
        emit(res)


if __name__ == "__main__":
    main()
