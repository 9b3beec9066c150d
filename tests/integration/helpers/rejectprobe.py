#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Send one fixed probe and print every frame that answers it, as hex, byte for byte.

  rejectprobe.py IFACE SRC DST PORT CASE [--wait S]
  rejectprobe.py IFACE --batch [--wait S] < "SRC DST PORT CASE OUTFILE" lines

With --batch, one probe per line of standard input, one after the other, each one's JSON
written to its OUTFILE (scapy is started once, not once a probe).

Builds the probe from the arguments alone (fixed source port, sequence number, ToS or
traffic class, IP ID, payload), so running it twice sends the same bytes: the kernel's
answer for a closed port and bpfredir's for a hidden one can be compared byte by byte.
Sent as an Ethernet frame on IFACE to the neighbour's MAC address, while a sniffer on
IFACE keeps every TCP, UDP or ICMP error frame addressed to SRC. Cases:

  syn   a bare SYN (expects RST/ACK)
  ack   an ACK-only segment with 5 bytes of data (expects a RST with seq = its ack)
  rst   a RST (expects nothing)
  udp   a UDP datagram with a 700-byte payload, so the ICMP quote is cut (v4 at 548
        bytes, v6 not at all)
  udp-big  (IPv6) a 1400-byte UDP datagram, so the ICMPv6 quote is cut at 1232 bytes
  badsum-syn, badsum-udp   syn, udp with a wrong TCP/UDP checksum (expects nothing)

Prints one JSON object: {"probe": HEX, "answers": [HEX, ...]}.
"""
import argparse
import json
import logging
import sys
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import (  # noqa: E402
    IP, IPv6, TCP, UDP, Raw, AsyncSniffer, Ether, conf, get_if_hwaddr, getmacbyip,
    getmacbyip6, sendp,
)

conf.verb = 0
SPORT = 40123


def build(args):
    v6 = ":" in args.dst
    if v6:
        l3 = IPv6(src=args.src, dst=args.dst, tc=0xb9, fl=0, hlim=61)
    else:
        l3 = IP(src=args.src, dst=args.dst, tos=0xb9, id=0x4242, ttl=61, flags="DF")
    if args.case == "syn":
        l4 = TCP(sport=SPORT, dport=args.port, seq=0x11223344, flags="S", window=64240)
    elif args.case == "ack":
        l4 = TCP(sport=SPORT, dport=args.port, seq=0x11223344, ack=0x55667788, flags="A",
                 window=502) / Raw(b"hello")
    elif args.case == "rst":
        l4 = TCP(sport=SPORT, dport=args.port, seq=0x11223344, flags="R")
    elif args.case == "udp":
        l4 = UDP(sport=SPORT, dport=args.port) / Raw(bytes(range(256)) * 2 + b"x" * 188)
    elif args.case == "udp-big":
        l4 = UDP(sport=SPORT, dport=args.port) / Raw(b"y" * 1392)
    elif args.case == "badsum-syn":
        l4 = TCP(sport=SPORT, dport=args.port, seq=0x11223344, flags="S", chksum=0x1234)
    elif args.case == "badsum-udp":
        l4 = UDP(sport=SPORT, dport=args.port, chksum=0x1234) / Raw(b"bad checksum")
    else:
        sys.exit(f"unknown case {args.case}")
    mac = getmacbyip6(args.dst) if v6 else getmacbyip(args.dst)
    if not mac:
        sys.exit(f"no neighbour MAC for {args.dst}")
    return Ether(src=get_if_hwaddr(args.iface), dst=mac) / l3 / l4


def probe(args):
    frame = build(args)
    raw = bytes(frame)
    v6 = ":" in args.dst

    # TCP, UDP or an ICMP error to SRC: not neighbour discovery, which unicasts too.
    def ours(p):
        if v6:
            if IPv6 not in p or p[IPv6].dst != args.src:
                return False
            nh, rest = p[IPv6].nh, bytes(p[IPv6].payload)
            return nh in (6, 17) or (nh == 58 and rest[:1] < b"\x80")
        return IP in p and p[IP].dst == args.src

    sniffer = AsyncSniffer(iface=args.iface, lfilter=ours, store=True)
    sniffer.start()
    time.sleep(0.3)
    sendp(frame, iface=args.iface)
    time.sleep(args.wait)
    sniffer.stop()
    return json.dumps({"probe": raw.hex(),
                       "answers": [bytes(p).hex() for p in sniffer.results or []]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("src", nargs="?")
    ap.add_argument("dst", nargs="?")
    ap.add_argument("port", type=int, nargs="?")
    ap.add_argument("case", nargs="?")
    ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("--batch", action="store_true")
    args = ap.parse_args()
    if not args.batch:
        if args.case is None:
            ap.error("SRC DST PORT CASE, or --batch")
        print(probe(args))
        return
    for line in sys.stdin:
        if not line.strip():
            continue
        src, dst, port, case, out = line.split()
        one = argparse.Namespace(iface=args.iface, src=src, dst=dst, port=int(port), case=case,
                                 wait=args.wait)
        try:
            result = probe(one)
        except Exception as e:  # one probe's failure is its own, as a process of its own was
            result = json.dumps({"error": f"probe failed: {e}"})
        with open(out, "w") as f:
            f.write(result + "\n")


if __name__ == "__main__":
    main()
