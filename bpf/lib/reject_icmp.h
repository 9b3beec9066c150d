/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel's port unreachable for a UDP datagram to a closed port (icmp_send,
 * icmp6_send): its lengths, and its headers with their checksums, in front of a quote of
 * the datagram the hook puts behind them. See reject.h for what it holds.
 */
#ifndef BPFREDIR_REJECT_ICMP_H
#define BPFREDIR_REJECT_ICMP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "proto.h"
#include "csum.h"
#include "parse.h"

/* icmp_send: 576 bytes in all; icmp6_send: the IPv6 minimum MTU. */
#define ICMP4_QUOTE_MAX (576 - 20 - 8)
#define ICMP6_QUOTE_MAX (1280 - 40 - 8)
/* The least a quote holds: reject_udp_quote_len() wants an IP header and a UDP one. */
#define QUOTE_MIN (20 + 8)
#define ICMP4_HDRS (20 + 8)
#define ICMP6_HDRS (40 + 8)

/*
 * The IP length of the UDP datagram p, and how much of it (from its IP header on) an ICMP
 * error quotes; -1 when the kernel would send no error: lengths it would drop the datagram
 * for, or a fragment (the kernel answers only once it has reassembled the datagram; see
 * README), or (IPv6) extension headers, which this does not walk twice.
 */
static __always_inline int reject_udp_quote_len(void *data, void *data_end, const struct pkt *p,
						__u32 *quote_len)
{
	void *l3 = data + (p->l3_off & L3_OFF_MASK);
	__u32 ip_len, max;

	if (p->is_ipv6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_UDP)
			return -1;
		ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		max = ICMP6_QUOTE_MAX;
	} else {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return -1;
		ip_len = bpf_ntohs(ip->tot_len);
		max = ICMP4_QUOTE_MAX;
	}
	if (ip_len < p->l4_off - p->l3_off + sizeof(struct udphdr))
		return -1;
	*quote_len = ip_len < max ? ip_len : max;
	return ip_len;
}

/* The headers in front of a quote, from the Ethernet header on (&eth, REJECT_HDRS_LEN()):
 * pad keeps the IP header 4-byte aligned. */
struct reject_icmp4 {
	__u16 pad;
	struct ethhdr eth;
	struct iphdr ip;
	struct icmphdr icmp;
};

struct reject_icmp6 {
	__u16 pad;
	struct ethhdr eth;
	struct ipv6hdr ip;
	struct icmp6hdr icmp;
};

#define REJECT_HDRS_LEN(e) (sizeof(e) - offsetof(typeof(e), eth))

/*
 * The Ethernet, IP and ICMP headers of the port unreachable for p, quoting the first
 * quote_len bytes of its IP packet, checksums left 0. eth is the datagram's Ethernet
 * header; tos its ToS (IPv4); ip_id / flow_label from reject_icmp_ident().
 */
static __always_inline void icmp4_error_fill(struct reject_icmp4 *e, const struct ethhdr *eth,
					     const struct pkt *p, __u8 tos, __u32 quote_len,
					     __be16 ip_id)
{
	__builtin_memcpy(e->eth.h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(e->eth.h_source, eth->h_dest, ETH_ALEN);
	e->eth.h_proto = bpf_htons(ETH_P_IP);
	((__u8 *)&e->ip)[0] = 0x45;
	e->ip.tos = (tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL;
	e->ip.tot_len = bpf_htons(ICMP4_HDRS + quote_len);
	e->ip.id = ip_id;
	e->ip.frag_off = 0;
	e->ip.ttl = IPDEFTTL;
	e->ip.protocol = IPPROTO_ICMP;
	e->ip.check = 0;
	__builtin_memcpy(&e->ip.saddr, p->daddr + 12, 4);
	__builtin_memcpy(&e->ip.daddr, p->saddr + 12, 4);
	e->icmp.type = ICMP_DEST_UNREACH;
	e->icmp.code = ICMP_PORT_UNREACH;
	e->icmp.checksum = 0;
	e->icmp.un.gateway = 0;
}

static __always_inline void icmp6_error_fill(struct reject_icmp6 *e, const struct ethhdr *eth,
					     const struct pkt *p, __u32 quote_len, __u32 flow_label)
{
	__builtin_memcpy(e->eth.h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(e->eth.h_source, eth->h_dest, ETH_ALEN);
	e->eth.h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)&e->ip = bpf_htonl(6 << 28 | (flow_label & IPV6_FLOWLABEL_MASK));
	e->ip.payload_len = bpf_htons(sizeof(e->icmp) + quote_len);
	e->ip.nexthdr = IPPROTO_ICMPV6;
	e->ip.hop_limit = IPDEFTTL;
	__builtin_memcpy(&e->ip.saddr, p->daddr, 16);
	__builtin_memcpy(&e->ip.daddr, p->saddr, 16);
	e->icmp.icmp6_type = ICMPV6_DEST_UNREACH;
	e->icmp.icmp6_code = ICMPV6_PORT_UNREACH;
	e->icmp.icmp6_cksum = 0;
	e->icmp.icmp6_dataun.un_data32[0] = 0;
}

/* Checksums of a filled error, given the sum of its quote. */
static __always_inline void icmp4_error_csum(struct reject_icmp4 *e, __u32 quote_sum)
{
	struct iphdr ip = e->ip;
	struct icmphdr icmp = e->icmp;

	e->ip.check = csum_fold(csum_add(&ip, sizeof(ip), 0));
	e->icmp.checksum = csum_fold(csum_add(&icmp, sizeof(icmp), quote_sum));
}

static __always_inline void icmp6_error_csum(struct reject_icmp6 *e, __u32 quote_len,
					     __u32 quote_sum)
{
	struct icmp6hdr icmp = e->icmp;
	__u32 sum = pseudo_v6(&e->ip.saddr, &e->ip.daddr, IPPROTO_ICMPV6,
			      sizeof(icmp) + quote_len, quote_sum);

	e->icmp.icmp6_cksum = csum_fold(csum_add(&icmp, sizeof(icmp), sum));
}

#endif /* BPFREDIR_REJECT_ICMP_H */
