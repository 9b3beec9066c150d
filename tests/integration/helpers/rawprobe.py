#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Crafted packets for the datapath tests, and every answer they get.

  rawprobe.py [--iface IF ...] [--wait S] CASE ADDR PORT [CASE ADDR PORT ...]

Sends each CASE to ADDR:PORT from its own source port, while sniffing on the IFs (default:
every interface of the namespace but lo) for any packet from the ADDRs, then waits S
seconds (default 1.5) for late answers. Prints one JSON object:

  {"cases": [{"case", "addr", "port", "sport", "answers": [{"proto", "sport", "dport",
              "flags", "len", "ihl", "payload_ok"}]}],
   "from_ports": {"tcp 192.0.2.2:8443": n, "udp [2001:db8::2]:5354": n, ...}}

from_ports counts every TCP/UDP packet seen from an ADDR, by its source port: the hidden
port must not show up there at all. An answer of a case is a TCP/UDP packet from ADDR to
the case's source port, or an ICMP/ICMPv6 error from ADDR quoting the case's packet (proto
"icmp", sport/dport the quoted ports). IPv4 or IPv6 follows ADDR; the source address is
this namespace's own, as its routes choose. Cases (TCP ones are SYNs):

  syn          a bare SYN
  badsum-syn   a bare SYN with a wrong TCP checksum
  udp          a UDP datagram (payload "rawprobe <sport>")
  frag-syn     a SYN with 20 bytes of TCP options, fragmented: the first fragment holds
               the ports and the whole 20-byte base header (24 bytes of TCP)
  frag-syn-8   the same SYN, first fragment 8 bytes: ports, but the TCP header cut short
               (nmap -f); the checksum lies in the third fragment
  frag-syn-16  the same SYN, first fragment 16 bytes (nmap --mtu 16): the flags, not the
               checksum, which lies in the second fragment
  frag-syn-2   the same SYN, first fragment 2 bytes: too short to hold the ports
  frag-udp     a 1200-byte UDP datagram in three fragments, the first holding the UDP
               header and 8 bytes
  frag-udp-2   that datagram, first fragment 2 bytes: too short to hold the ports
  ipopt-syn    (IPv4) a SYN with IP options NOP + Record Route (ihl 8)
  ext2-syn     (IPv6) a SYN behind hop-by-hop and destination options headers
  ext8-syn     (IPv6) hop-by-hop + 7 destination options headers: exactly 8
  ext9-syn     (IPv6) hop-by-hop + 8 destination options headers: 9, one too many
  ext9-udp     (IPv6) the same chain in front of a UDP datagram

A case may end in @TAGS: the frames then carry those VLAN tags, outermost first, e.g.
syn@ad0,q0 (802.1ad id 0, then 802.1Q id 0) or udp@q100; they are sent on the route's
interface to the neighbour's MAC address, with the tags written in the frame.

payload_ok (UDP answers): the answer's payload is what the case sent (an echo service);
ihl: the answer's IPv4 header length in 32-bit words (above 5: it carries IP options).
"""
import argparse
import ipaddress
import json
import logging
import random
import socket
import sys
import threading
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import (  # noqa: E402
    IP, IPv6, TCP, UDP, IPerror, IPerror6, TCPerror, UDPerror, IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPOption_NOP, IPOption_RR, PadN, Raw,
    AsyncSniffer, Dot1AD, Dot1Q, Ether, conf, getmacbyip, getmacbyip6, send, sendp,
)

conf.verb = 0
conf.sniff_promisc = False

SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None),
            ("WScale", 7)]  # 20 bytes: the TCP header is 40
UDP_BIG = 1200


def is_v6(addr):
    return ":" in addr


def l4_bytes(src, dst, l4):
    """The L4 segment with its checksum computed over the right pseudo-header."""
    pkt = (IPv6(src=src, dst=dst) if is_v6(dst) else IP(src=src, dst=dst)) / l4
    raw = bytes(pkt)
    return raw[40:] if is_v6(dst) else raw[20:]


def fragments(src, dst, proto, seg, cuts):
    """seg split at the byte offsets in cuts (multiples of 8), as IPv4 or IPv6 fragments."""
    frag_id = random.randint(1, 0xFFFF)
    bounds = [0] + list(cuts) + [len(seg)]
    out = []
    for i in range(len(bounds) - 1):
        start, end = bounds[i], bounds[i + 1]
        more = i < len(bounds) - 2
        if is_v6(dst):
            out.append(IPv6(src=src, dst=dst) /
                       IPv6ExtHdrFragment(nh=proto, id=frag_id, offset=start // 8, m=int(more)) /
                       Raw(seg[start:end]))
        else:
            out.append(IP(src=src, dst=dst, proto=proto, id=frag_id, flags="MF" if more else 0,
                          frag=start // 8) / Raw(seg[start:end]))
    return out


def dstopts(n):
    layers = None
    for _ in range(n):
        h = IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 4)])
        layers = h if layers is None else layers / h
    return layers


def build(case, src, dst, port, sport):
    """Packets of one case, and the payload an echo would send back (UDP) or None."""
    syn = TCP(sport=sport, dport=port, flags="S", seq=random.randint(0, 2**32 - 1))
    payload = f"rawprobe {sport}".encode()
    big = (payload + b" " + b"x" * UDP_BIG)[:UDP_BIG]
    v6 = is_v6(dst)
    base = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    if case == "syn":
        return [base / syn], None
    if case == "badsum-syn":
        seg = bytearray(l4_bytes(src, dst, syn))
        seg[16] ^= 0x55
        return [(IPv6(src=src, dst=dst, nh=6) if v6 else IP(src=src, dst=dst, proto=6)) /
                Raw(bytes(seg))], None
    if case == "udp":
        return [base / UDP(sport=sport, dport=port) / Raw(payload)], payload
    if case.startswith("frag-syn"):
        seg = l4_bytes(src, dst, TCP(sport=sport, dport=port, flags="S", options=SYN_OPTS,
                                     seq=random.randint(0, 2**32 - 1)))
        assert len(seg) == 40
        first = {"frag-syn": 24, "frag-syn-8": 8, "frag-syn-16": 16, "frag-syn-2": 2}[case]
        # A 2-byte first fragment leaves a hole before offset 8: it cannot reassemble.
        # Fragments of 8 bytes, as nmap -f sends them, up to the end of the TCP header.
        cuts = (list(range(first, 40, first)) if first in (8, 16) else
                [first] if first % 8 == 0 else [first, 8])
        frags = fragments(src, dst, 6, seg, cuts)
        if first % 8:
            del frags[1]  # the hole
        return frags, None
    if case.startswith("frag-udp"):
        seg = l4_bytes(src, dst, UDP(sport=sport, dport=port) / Raw(big))
        if case == "frag-udp":
            return fragments(src, dst, 17, seg, [16, 616]), big
        frags = fragments(src, dst, 17, seg, [2, 8, 616])
        del frags[1]
        return frags, None
    if case == "ipopt-syn":
        if v6:
            raise ValueError("ipopt-syn is IPv4 only")
        opts = [IPOption_NOP(), IPOption_RR(pointer=4, routers=["0.0.0.0", "0.0.0.0"])]
        return [IP(src=src, dst=dst, options=opts) / syn], None
    if case.startswith("ext"):
        if not v6:
            raise ValueError(f"{case} is IPv6 only")
        n = {"ext2": 1, "ext8": 7, "ext9": 8}[case.split("-")[0]]
        hbh = IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00" * 4)])
        chain = IPv6(src=src, dst=dst) / hbh / dstopts(n)
        if case.endswith("-udp"):
            return [chain / UDP(sport=sport, dport=port) / Raw(payload)], payload
        return [chain / syn], None
    raise ValueError(f"unknown case {case}")


def tagged(pkts, tags, dst):
    """The packets as Ethernet frames carrying tags ("ad0,q0": 802.1ad id 0, 802.1Q id 0)."""
    mac = getmacbyip6(dst) if is_v6(dst) else getmacbyip(dst)
    if not mac:
        raise RuntimeError(f"no neighbour MAC address for {dst}")
    iface = conf.route6.route(dst)[0] if is_v6(dst) else conf.route.route(dst)[0]
    frames = []
    for p in pkts:
        layers = [(Dot1AD if t.startswith("ad") else Dot1Q)(vlan=int(t.lstrip("adq")))
                  for t in tags.split(",")]
        frame = Ether(dst=mac, type=0x88A8 if isinstance(layers[0], Dot1AD) else 0x8100)
        for i, layer in enumerate(layers):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            layer.type = (0x88A8 if isinstance(nxt, Dot1AD) else 0x8100 if nxt is not None
                          else 0x86DD if is_v6(dst) else 0x0800)
            frame = frame / layer
        frames.append(frame / p)
    return iface, frames


def describe(pkt, addrs):
    """(addr, proto, sport, dport, flags, payload, IPv4 ihl) of a packet from one of addrs,
    or None."""
    if IPv6 in pkt:
        addr = pkt[IPv6].src
    elif IP in pkt:
        addr = pkt[IP].src
    else:
        return None
    if addr not in addrs:
        return None
    # An ICMP error quotes our packet: report the quoted ports.
    # (Behind a quoted fragment header scapy parses TCP/UDP, not TCPerror/UDPerror.)
    if IPerror in pkt or IPerror6 in pkt:
        quoted = pkt[IPerror] if IPerror in pkt else pkt[IPerror6]
        for layer in (TCPerror, UDPerror, TCP, UDP):
            if layer in quoted:
                return (addr, "icmp", quoted[layer].sport, quoted[layer].dport, "", b"", None)
        return (addr, "icmp", None, None, "", b"", None)
    ihl = pkt[IP].ihl if IP in pkt else None
    if TCP in pkt:
        return (addr, "tcp", pkt[TCP].sport, pkt[TCP].dport, str(pkt[TCP].flags),
                bytes(pkt[TCP].payload), ihl)
    if UDP in pkt:
        return (addr, "udp", pkt[UDP].sport, pkt[UDP].dport, "", bytes(pkt[UDP].payload), ihl)
    return None


def endpoint(addr, port):
    return f"[{addr}]:{port}" if is_v6(addr) else f"{addr}:{port}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", action="append")
    ap.add_argument("--wait", type=float, default=1.5)
    ap.add_argument("probes", nargs="+", metavar="CASE ADDR PORT")
    args = ap.parse_args()
    if len(args.probes) % 3:
        ap.error("CASE ADDR PORT triples expected")
    # if_nameindex() asks this network namespace (/sys may be another's).
    ifaces = args.iface or [name for _, name in socket.if_nameindex() if name != "lo"]

    base_sport = random.randint(20000, 59000)
    cases = []
    for i in range(0, len(args.probes), 3):
        case, port = args.probes[i], int(args.probes[i + 2])
        dst = str(ipaddress.ip_address(args.probes[i + 1]))
        src = conf.route6.route(dst)[1] if is_v6(dst) else conf.route.route(dst)[1]
        sport = base_sport + i // 3
        shape, _, tags = case.partition("@")
        pkts, echo = build(shape, src, dst, port, sport)
        iface = None
        if tags:
            iface, pkts = tagged(pkts, tags, dst)
        cases.append({"case": case, "addr": dst, "port": port, "sport": sport, "pkts": pkts,
                      "iface": iface, "echo": echo, "answers": []})
    addrs = {c["addr"] for c in cases}

    seen = []
    started = threading.Event()
    sniffer = AsyncSniffer(iface=ifaces, store=False,
                           prn=lambda p: seen.append(describe(p, addrs)),
                           started_callback=started.set)
    sniffer.start()
    if not started.wait(5):
        print(json.dumps({"error": "sniffer did not start"}))
        return 1
    time.sleep(0.2)
    for c in cases:
        if c["iface"]:
            sendp(c["pkts"], iface=c["iface"])
        else:
            send(c["pkts"])
    time.sleep(args.wait)
    sniffer.stop()

    from_ports = {}
    by_key = {(c["addr"], c["sport"]): c for c in cases}
    for d in seen:
        if d is None:
            continue
        addr, proto, sport, dport, flags, payload, ihl = d
        if proto != "icmp":
            key = f"{proto} {endpoint(addr, sport)}"
            from_ports[key] = from_ports.get(key, 0) + 1
            c = by_key.get((addr, dport))
        else:
            c = by_key.get((addr, sport))
        if c is None:
            continue
        ans = {"proto": proto, "sport": sport, "dport": dport, "flags": flags,
               "len": len(payload), "ihl": ihl}
        if proto == "udp" and c["echo"] is not None:
            ans["payload_ok"] = payload == c["echo"]
        c["answers"].append(ans)
    out = {"cases": [{k: c[k] for k in ("case", "addr", "port", "sport", "answers")}
                     for c in cases],
           "from_ports": from_ports}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
