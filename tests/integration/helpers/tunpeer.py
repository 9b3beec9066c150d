#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A peer on the far side of a tun device (an L3 device: packets start at the IP header).

  tunpeer.py create NAME [TYPE]
      Make NAME a persistent tun device (IFF_TUN, no packet info), of device type TYPE
      (ARPHRD_* number, set with TUNSETLINK) when given. Remove it with `ip link del NAME`.
  tunpeer.py probe NAME LOCAL PEER CASE PORT [CASE PORT ...]
      Attach to NAME and, for each CASE, write one packet from PEER to LOCAL:PORT into it
      (so the kernel receives it on NAME), then read what the kernel sends back to PEER
      within a second. Prints JSON: {"cases": [{"case", "port", "answers": [...]}]}, an
      answer being {"proto": "tcp", "sport", "flags"}, {"proto": "udp", "sport",
      "payload_ok"} or {"proto": "icmp", "type", "code", "sport", "dport"} (the quote's
      ports).

Cases: syn (a TCP SYN), udp (a datagram, 'tunpeer <n>'). LOCAL and PEER are both IPv4 or
both IPv6. Run it in the network namespace that holds NAME.
"""
import fcntl
import json
import logging
import os
import random
import select
import struct
import subprocess
import sys
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import (ICMP, IP, TCP, UDP, ICMPv6DestUnreach, IPv6, TCPerror,  # noqa: E402
                       UDPerror, raw)

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETLINK = 0x400454CD
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def tun_open(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def wait_running(name):
    """Until the device is up for real. Attaching turns its carrier on, but the kernel
    activates its queue (and marks it UP) only in the link watch, up to a second later:
    what the kernel sends before that is dropped."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "-j", "link", "show", "dev", name], capture_output=True,
                             text=True, check=False).stdout
        if out and json.loads(out)[0].get("operstate") == "UP":
            return
        time.sleep(0.05)
    raise SystemExit(f"{name} did not come up")


def create(name, dev_type=None):
    fd = tun_open(name)
    if dev_type is not None:
        fcntl.ioctl(fd, TUNSETLINK, int(dev_type))
    fcntl.ioctl(fd, TUNSETPERSIST, 1)
    os.close(fd)


def packet(case, local, peer, port, sport):
    v6 = ":" in local
    ip = IPv6(src=peer, dst=local) if v6 else IP(src=peer, dst=local)
    if case == "syn":
        return ip / TCP(sport=sport, dport=port, flags="S", seq=1000), sport
    if case == "udp":
        return ip / UDP(sport=sport, dport=port) / (b"tunpeer %d" % sport), sport
    raise SystemExit(f"unknown case {case}")


def answer_of(data, peer, sport, payload):
    """What the kernel sent back to PEER about the probe from SPORT, or None."""
    version = data[0] >> 4 if data else 0
    if version == 4:
        pkt = IP(data)
        if pkt.dst != peer:
            return None
    elif version == 6:
        pkt = IPv6(data)
        if pkt.dst != peer:
            return None
    else:
        return None
    if TCP in pkt and pkt[TCP].dport == sport:
        return {"proto": "tcp", "sport": pkt[TCP].sport, "flags": str(pkt[TCP].flags),
                "ack": pkt[TCP].ack}
    if UDP in pkt and ICMP not in pkt and ICMPv6DestUnreach not in pkt and pkt[UDP].dport == sport:
        return {"proto": "udp", "sport": pkt[UDP].sport,
                "payload_ok": bytes(pkt[UDP].payload) == payload}
    err = pkt[ICMP] if ICMP in pkt else pkt[ICMPv6DestUnreach] if ICMPv6DestUnreach in pkt else None
    if err is not None:
        # scapy names the quoted headers TCPerror and UDPerror (v4), TCP and UDP (v6).
        inner = err.payload
        for layer in (TCPerror, UDPerror, TCP, UDP):
            if layer in inner and inner[layer].sport == sport:
                return {"proto": "icmp", "type": err.type, "code": err.code,
                        "sport": inner[layer].sport, "dport": inner[layer].dport}
    return None


def probe(name, local, peer, pairs):
    fd = tun_open(name)
    wait_running(name)
    out = []
    # A source port of its own per probe: the answers to earlier probes (a SYN-ACK the
    # kernel sends again, unanswered) are not this one's.
    base = random.randrange(20000, 60000)
    for n, (case, port) in enumerate(pairs):
        pkt, sport = packet(case, local, peer, int(port), base + n)
        payload = bytes(pkt[UDP].payload) if UDP in pkt else b""
        # What was queued before this probe is not its answer.
        while select.select([fd], [], [], 0)[0]:
            os.read(fd, 65535)
        os.write(fd, raw(pkt))
        answers = []
        deadline = time.monotonic() + 1.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            got = answer_of(os.read(fd, 65535), peer, sport, payload)
            if not got:
                continue
            # Reset a SYN-ACK, as a peer with no such connection does: the kernel would
            # send it again a second later, into the next probe's wait.
            if got["proto"] == "tcp" and got["flags"] == "SA":
                ip = IPv6(src=peer, dst=local) if ":" in local else IP(src=peer, dst=local)
                os.write(fd, raw(ip / TCP(sport=sport, dport=got["sport"], flags="R",
                                          seq=got["ack"])))
            got.pop("ack", None)
            answers.append(got)
        out.append({"case": case, "port": int(port), "answers": answers})
    os.close(fd)
    print(json.dumps({"cases": out}))


def main(argv):
    if len(argv) >= 2 and argv[0] == "create":
        create(argv[1], argv[2] if len(argv) > 2 else None)
    elif len(argv) >= 6 and argv[0] == "probe" and len(argv) % 2 == 0:
        probe(argv[1], argv[2], argv[3], list(zip(argv[4::2], argv[5::2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
