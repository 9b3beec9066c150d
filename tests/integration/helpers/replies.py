#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Every IPv4 TCP segment from PEER to the client port PORT that reaches IFACE, and every ICMP
error from PEER about a packet from PORT, one line each as it comes, until SIGTERM:

  sport=N flags=F ttl=N [DF ]id=N win=N len=N      (flags in the order FSRPAUEC, as hping3)
  icmp type=T code=C quoted-sport=N quoted-dport=N

replies.py IFACE PEER PORT READYFILE; READYFILE is made once the socket listens. A scanner
such as hping3 shows only the replies from the port it sent to: this shows what came from
any port. (tests/integration/scanner.sh.)
"""
import signal
import socket
import struct
import sys

TCP_FLAGS = "FSRPAUEC"


def tcp_line(ip, ihl):
    tcp = ip[ihl:]
    sport, dport = struct.unpack("!HH", tcp[0:4])
    bits = tcp[13]
    flags = "".join(c for i, c in enumerate(TCP_FLAGS) if bits & (1 << i)) or "none"
    win = struct.unpack("!H", tcp[14:16])[0]
    frag = struct.unpack("!H", ip[6:8])[0]
    df = "DF " if frag & 0x4000 else ""
    ipid = struct.unpack("!H", ip[4:6])[0]
    total = struct.unpack("!H", ip[2:4])[0]
    return dport, f"sport={sport} flags={flags} ttl={ip[8]} {df}id={ipid} win={win} len={total}"


def icmp_line(ip, ihl):
    icmp = ip[ihl:]
    quoted = icmp[8:]
    if len(quoted) < 20 or len(quoted) < (quoted[0] & 0xF) * 4 + 4:
        return None, None
    qihl = (quoted[0] & 0xF) * 4
    qs, qd = struct.unpack("!HH", quoted[qihl:qihl + 4])
    return qs, f"icmp type={icmp[0]} code={icmp[1]} quoted-sport={qs} quoted-dport={qd}"


def main():
    iface, peer, port, ready = sys.argv[1:5]
    peer, port = socket.inet_aton(peer), int(port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((iface, 0))
    open(ready, "w").close()
    while True:
        frame, info = sock.recvfrom(65535)
        if info[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 20:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0xF) * 4
        if ip[12:16] != peer or len(ip) < ihl + 20:
            continue
        if ip[9] == socket.IPPROTO_TCP:
            client_port, line = tcp_line(ip, ihl)
        elif ip[9] == socket.IPPROTO_ICMP:
            client_port, line = icmp_line(ip, ihl)
        else:
            continue
        if client_port == port:
            print(line, flush=True)


main()
