#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A SYN flood from spoofed documentation addresses, for the flow-table tests.

  synflood.py --iface IF --dst-mac MAC --dst ADDR --dport PORT --seconds S
              [--min-count N] [--net CIDR ...]

Sends bare IPv4 SYNs as fast as one raw socket (AF_PACKET) on IF allows, for S seconds and
at least N SYNs (but never past 3 S seconds), to ADDR:PORT (MAC: the next hop's). Each SYN comes from a random address
of the --net ranges (default 198.51.100.0/24 and 203.0.113.0/24) and a random port; the
ranges must lie inside the documentation networks (RFC 5737), so no SYN ever names a real
host, unlike e.g. hping3 --rand-source, which draws from all of IPv4. Prints one JSON line:
sent, seconds, pps, nets, distinct_sources (address/port pairs in the frame pool).
"""
import argparse
import ipaddress
import json
import random
import socket
import struct
import sys
import time

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
POOL = 65536


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def own_mac(iface):
    """The interface's MAC, asked of this network namespace (SIOCGIFHWADDR)."""
    import fcntl
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        info = fcntl.ioctl(s.fileno(), 0x8927, struct.pack("256s", iface.encode()[:15]))
    finally:
        s.close()
    return info[18:24]


def frame(src_mac, dst_mac, src, dst, sport, dport, seq, ip_id):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, 64,
                     socket.IPPROTO_TCP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dst-mac", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--dport", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--min-count", type=int, default=0)
    ap.add_argument("--net", action="append")
    args = ap.parse_args()

    nets = [ipaddress.ip_network(n) for n in (args.net or ["198.51.100.0/24", "203.0.113.0/24"])]
    for net in nets + [ipaddress.ip_network(args.dst)]:
        if net.version != 4 or not any(net.subnet_of(d) for d in DOC_NETS):
            ap.error(f"{net} is not inside the IPv4 documentation networks")
    hosts = [h.packed for net in nets for h in net.hosts()]
    dst = ipaddress.ip_address(args.dst).packed
    dst_mac = bytes.fromhex(args.dst_mac.replace(":", ""))
    src_mac = own_mac(args.iface)

    rnd = random.Random()
    pairs = set()
    pool = []
    while len(pool) < POOL:
        src, sport = rnd.choice(hosts), rnd.randint(1024, 65535)
        if (src, sport) in pairs:
            continue
        pairs.add((src, sport))
        pool.append(frame(src_mac, dst_mac, src, dst, sport, args.dport,
                          rnd.getrandbits(32), rnd.getrandbits(16)))

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((args.iface, 0))
    send = sock.send
    sent = 0
    start = time.monotonic()
    deadline = start + args.seconds
    # Check the clock every 256 frames: time.monotonic() costs as much as a send.
    while True:
        for i in range(256):
            try:
                send(pool[(sent + i) % POOL])
            except BlockingIOError:
                pass
        sent += 256
        now = time.monotonic()
        if now >= deadline and (sent >= args.min_count or now >= deadline + 2 * args.seconds):
            break
    seconds = time.monotonic() - start
    print(json.dumps({"sent": sent, "seconds": round(seconds, 3), "pps": int(sent / seconds),
                      "nets": [str(n) for n in nets], "distinct_sources": len(pool)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
