#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Probes sent one after another from one client port, as a scanner with a fixed source
port sends them (nmap -g, hping3 -s), each with every answer it gets.

  seqprobe.py IFACE SPORT PROBE [PROBE ...]

PROBE is PROTO:ADDR:PORT (PROTO tcp, a bare SYN, or udp, a datagram; an IPv6 ADDR in
brackets). SPORT 0 gives every probe a fresh random source port instead: each is then
answered as it would be alone. Prints one line per probe, its answers joined by commas, in
the order they came:

  tcp SPORT FLAGS   a TCP segment from ADDR to the probe's source port
  udp SPORT         a datagram from ADDR to the probe's source port
  icmp QUOTED-DPORT an ICMP/ICMPv6 destination unreachable from ADDR quoting the probe
  none              no answer within the wait
"""
import logging
import random
import sys
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import (  # noqa: E402
    IP, IPv6, TCP, UDP, ICMP, IPerror, IPerror6, TCPerror, UDPerror, ICMPv6DestUnreach,
    AsyncSniffer, Raw, conf, send,
)

conf.verb = 0
WAIT = 0.5


def parse(probe):
    proto, rest = probe.split(":", 1)
    addr, port = rest.rsplit(":", 1)
    return proto, addr.strip("[]"), int(port)


def describe(pkt, addr, sport):
    src = pkt[IPv6].src if IPv6 in pkt else pkt[IP].src if IP in pkt else None
    if src != addr:
        return None
    if IPerror in pkt or IPerror6 in pkt:
        if not (ICMPv6DestUnreach in pkt or (ICMP in pkt and pkt[ICMP].type == 3)):
            return None
        quoted = pkt[IPerror] if IPerror in pkt else pkt[IPerror6]
        for layer in (TCPerror, UDPerror):
            if layer in quoted and quoted[layer].sport == sport:
                return f"icmp {quoted[layer].dport}"
        return None
    if TCP in pkt and pkt[TCP].dport == sport:
        return f"tcp {pkt[TCP].sport} {pkt[TCP].flags}"
    if UDP in pkt and pkt[UDP].dport == sport:
        return f"udp {pkt[UDP].sport}"
    return None


def main():
    iface, fixed = sys.argv[1], int(sys.argv[2])
    for probe in sys.argv[3:]:
        proto, addr, port = parse(probe)
        sport = fixed or random.randint(20000, 60000)
        l3 = IPv6(dst=addr) if ":" in addr else IP(dst=addr)
        l4 = (TCP(sport=sport, dport=port, flags="S", seq=random.randint(0, 2**32 - 1))
              if proto == "tcp" else UDP(sport=sport, dport=port) / Raw(b"seqprobe"))
        sniffer = AsyncSniffer(iface=iface, store=True)
        sniffer.start()
        time.sleep(0.1)
        send(l3 / l4)
        time.sleep(WAIT)
        sniffer.stop()
        answers = [a for a in (describe(p, addr, sport) for p in sniffer.results or []) if a]
        print(",".join(answers) or "none", flush=True)


if __name__ == "__main__":
    main()
