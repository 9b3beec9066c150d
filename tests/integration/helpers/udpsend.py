#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Send one UDP datagram as an Ethernet frame, to any IPv4 destination, broadcast and
multicast included (which a socket would need a route for).

  udpsend.py IFACE DST PORT PAYLOAD [DSTMAC]

The frame goes out of IFACE (in the namespace this runs in) from its own address, to
DSTMAC, else to the MAC address DST calls for: ff:ff:ff:ff:ff:ff for 255.255.255.255 or a
subnet's broadcast address (DST ending in .255), 01:00:5e:... for a multicast group, else
the neighbour's (resolved with ARP).
"""
import ipaddress
import logging
import sys

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IP, UDP, Ether, Raw, conf, get_if_addr, getmacbyip, sendp  # noqa: E402

conf.verb = 0


def dst_mac(dst):
    addr = ipaddress.IPv4Address(dst)
    if addr.is_multicast:
        low = int(addr) & 0x7FFFFF
        return "01:00:5e:%02x:%02x:%02x" % (low >> 16, (low >> 8) & 0xFF, low & 0xFF)
    if dst == "255.255.255.255" or dst.endswith(".255"):
        return "ff:ff:ff:ff:ff:ff"
    mac = getmacbyip(dst)
    if not mac:
        raise SystemExit(f"no neighbour MAC address for {dst}")
    return mac


def main(argv):
    if len(argv) not in (4, 5):
        raise SystemExit(__doc__)
    iface, dst, port, payload = argv[:4]
    frame = (Ether(dst=argv[4] if len(argv) == 5 else dst_mac(dst)) / IP(src=get_if_addr(iface), dst=dst, ttl=64) /
             UDP(sport=40999, dport=int(port)) / Raw(payload.encode()))
    sendp(frame, iface=iface)


if __name__ == "__main__":
    main(sys.argv[1:])
