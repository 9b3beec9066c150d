#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Probes and a sink for the netns guard test (guard.sh): many paths tried at once.

  guardprobe.py sink LOG SPEC...
      A service that records what reaches it. SPEC is udp:PORT (an IPv4 socket on
      0.0.0.0:PORT and an IPv6 one on [::]:PORT, which also get broadcast and multicast) or
      tcp:PORT (a dual-stack listener). Every datagram is written to LOG as "PORT PAYLOAD" and
      echoed to its sender, from the address it was sent to; TCP connections are accepted
      and closed.

  guardprobe.py probe [--timeout S] NAME=KIND:ADDR:PORT[:DEV] ...
      All probes at once, from threads; prints one JSON object {NAME: RESULT}. ADDR may be
      IPv6 (then written in brackets: [2001:db8::2]). KIND:
        tcp    connect(): "open", "refused" (RST) or "none" (no answer within S)
        udp    a connected socket sends NAME, waits for a reply: "echo", "refused" (an ICMP
               error came back) or "none"
        syn    a bare SYN sent with scapy behind DEV (a number) IPv6 destination options
               headers, or (IPv4) with DEV bytes of IP options: "open" (SYN-ACK), "refused"
               (RST) or "none"
        spoof  one UDP datagram with payload NAME, sent with scapy from ADDR itself (the
               server's own address, which IPv6 does not refuse as a martian): "sent"
        bcast  one datagram with payload NAME to a broadcast address, out of DEV: "sent"
        mcast  one datagram with payload NAME to a multicast group, out of DEV: "sent"
      Whether a bcast or mcast datagram arrived is read from the sink's LOG.

  guardprobe.py stream SECONDS PREFIX ADDR PORT
      UDP datagrams PREFIX-1, PREFIX-2, ... to ADDR:PORT, one every millisecond for
      SECONDS; prints how many were sent.
"""
import json
import select
import socket
import struct
import sys
import threading
import time

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
# Not every Python names it.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def sink(log_path, specs):
    socks = {}
    for spec in specs:
        kind, port = spec.split(":")
        port = int(port)
        if kind == "udp":
            v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            v4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            v4.bind(("0.0.0.0", port))
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            v6.bind(("::", port))
            socks[v4] = ("udp", port)
            socks[v6] = ("udp", port)
        else:
            t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("::", port))
            t.listen(64)
            socks[t] = ("tcp", port)
    with open(log_path, "a", buffering=1) as log:
        while True:
            ready, _, _ = select.select(list(socks), [], [])
            for s in ready:
                kind, port = socks[s]
                if kind == "tcp":
                    conn, _ = s.accept()
                    conn.close()
                    continue
                data, anc, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(12))
                log.write("%d %s\n" % (port, data.decode(errors="replace")))
                # From the address the datagram was sent to (its in_pktinfo's spec_dst),
                # so a client that reached us through another interface's address (the
                # weak host model) takes the answer.
                reply_anc = [(socket.IPPROTO_IP, IP_PKTINFO,
                              struct.pack("I4s4s", 0, a[2][4:8], b"\0" * 4))
                             for a in anc if a[0] == socket.IPPROTO_IP and a[1] == IP_PKTINFO]
                try:
                    s.sendmsg([data], reply_anc, 0, peer)
                except OSError:
                    pass


def split_target(text):
    """KIND:ADDR:PORT[:DEV], ADDR possibly [v6]."""
    kind, rest = text.split(":", 1)
    if rest.startswith("["):
        addr, rest = rest[1:].split("]:", 1)
    else:
        addr, rest = rest.split(":", 1)
    parts = rest.split(":")
    return kind, addr, int(parts[0]), parts[1] if len(parts) > 1 else None


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def probe_tcp(name, addr, port, dev, timeout):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, OSError):
        return "none"
    finally:
        s.close()


def probe_udp(name, addr, port, dev, timeout):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        s.send(name.encode())
        return "echo" if s.recv(2048) == name.encode() else "other"
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, OSError):
        return "none"
    finally:
        s.close()


def probe_cast(name, addr, port, dev, timeout):
    fam = family(addr)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, dev.encode())
        ifindex = socket.if_nametoindex(dev)
        if fam == socket.AF_INET:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                         struct.pack("4s4si", b"\0" * 4, b"\0" * 4, ifindex))
            s.sendto(name.encode(), (addr, port))
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            s.sendto(name.encode(), (addr, port, 0, ifindex))
        return "sent"
    except OSError as e:
        return "error: %s" % e
    finally:
        s.close()


def probe_syn(name, addr, port, dev, timeout):
    # Sniffed rather than sr1(): scapy does not match an answer to a request that had
    # extension headers.
    from scapy.all import (IP, IPOption_NOP, IPv6, IPv6ExtHdrDestOpt, TCP, AsyncSniffer,
                           conf, send)
    import random
    n = int(dev or 0)
    sport = random.randint(20000, 60000)
    if ":" in addr:
        iface = conf.route6.route(addr)[0]
        pkt = IPv6(dst=addr)
        for _ in range(n):
            pkt = pkt / IPv6ExtHdrDestOpt()
    else:
        iface = conf.route.route(addr)[0]
        pkt = IP(dst=addr, options=[IPOption_NOP()] * n)
    sniffer = AsyncSniffer(iface=iface, count=1,
                           lfilter=lambda x: TCP in x and x[TCP].sport == port and
                           x[TCP].dport == sport)
    sniffer.start()
    time.sleep(0.2)
    send(pkt / TCP(sport=sport, dport=port, flags="S"), iface=iface)
    sniffer.join(timeout)
    if sniffer.running:
        sniffer.stop()
    got = sniffer.results
    if not got:
        return "none"
    flags = got[0][TCP].flags
    return "refused" if flags.R else "open" if flags.S else "other"


def probe_spoof(name, addr, port, dev, timeout):
    from scapy.all import IP, IPv6, UDP, conf, send
    if ":" in addr:
        iface = conf.route6.route(addr)[0]
        pkt = IPv6(src=addr, dst=addr)
    else:
        iface = conf.route.route(addr)[0]
        pkt = IP(src=addr, dst=addr)
    send(pkt / UDP(sport=40000, dport=port) / name.encode(), iface=iface)
    return "sent"


def probe(args):
    timeout = 1.5
    if args and args[0] == "--timeout":
        timeout = float(args[1])
        args = args[2:]
    kinds = {"tcp": probe_tcp, "udp": probe_udp, "syn": probe_syn, "spoof": probe_spoof,
             "bcast": probe_cast, "mcast": probe_cast}
    results = {}

    def run(name, target):
        kind, addr, port, dev = split_target(target)
        results[name] = kinds[kind](name, addr, port, dev, timeout)

    if any(arg.split("=", 1)[1].startswith(("syn:", "spoof:")) for arg in args):
        # Once, before the threads: importing scapy is slow and not thread-safe.
        import logging
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        from scapy.all import conf
        conf.verb = 0
    threads = []
    for arg in args:
        name, target = arg.split("=", 1)
        t = threading.Thread(target=run, args=(name, target))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print(json.dumps(results, sort_keys=True))


def stream(seconds, prefix, addr, port):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        try:
            s.sendto(b"%s-%d" % (prefix.encode(), n), (addr, port))
        except OSError:
            pass
        time.sleep(0.001)
    print(n)


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        sink(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "stream":
        stream(float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        probe(sys.argv[2:])
