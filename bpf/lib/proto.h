/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Protocol numbers, header fields and offsets the datapath reads and writes. Most are
 * #defines in uapi headers, which vmlinux.h cannot carry; the names are the kernel's, so a
 * reader can look each one up there.
 */
#ifndef BPFREDIR_PROTO_H
#define BPFREDIR_PROTO_H

/* Ethernet */
#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

/* The TTL and hop limit the kernel gives what it sends (net.ipv4.ip_default_ttl,
 * net.ipv6.conf.*.hop_limit, as Debian leaves them) */
#define IPDEFTTL 64

/* IPv4: frag_off's flags and offset, the ToS field's parts */
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define INET_ECN_MASK 0x03
#define IPTOS_TOS_MASK 0x1e
#define IPTOS_PREC_INTERNETCONTROL 0xc0

/* IPv6: the fragment header's offset and more-fragments flag, the flow label in the first word */
#define IPV6_FRAG_OFFSET_MASK 0xFFF8
#define IPV6_FRAG_MF 0x0001
#define IPV6_FLOWLABEL_MASK 0xfffff

/* The IPv6 extension headers and ICMPv6 (IPPROTO_TCP, _UDP, _ICMP, _AH are in vmlinux.h). */
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60

/* TCP: flags (the byte at TCP_FLAGS_OFF), and where the flags and checksums sit */
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define TCP_FLAGS_OFF 13
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

/* ICMP and ICMPv6 types and codes */
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4
#define ICMPV6_PORT_UNREACH 4

/* Address families (bpf_fib_lookup, sk_lookup) */
#define AF_INET 2
#define AF_INET6 10

/* skb->pkt_type */
#define PACKET_HOST 0
#define PACKET_BROADCAST 1
#define PACKET_MULTICAST 2
#define PACKET_OTHERHOST 3
#define PACKET_LOOPBACK 5

/* TC verdicts (tcx: TCX_NEXT, TCX_PASS, TCX_DROP) */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* Offsets into a packet are masked with these before they move a packet pointer, so the
 * verifier knows their range: an IP header starts within the first L3_OFF_MASK bytes
 * (parse.h puts it after Ethernet and at most two VLAN tags), and an L4 offset is checked
 * against L4_OFF_MASK first. The masks never change an offset they are applied to. */
#define L3_OFF_MASK 0x3f
#define L4_OFF_MASK 0x3ff

#endif /* BPFREDIR_PROTO_H */
