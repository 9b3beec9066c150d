/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel's RST for a TCP segment to a closed port (tcp_v4_send_reset,
 * tcp_v6_send_reset), built in place over the segment: see reject.h for what it holds.
 */
#ifndef BPFREDIR_REJECT_TCP_H
#define BPFREDIR_REJECT_TCP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "proto.h"
#include "csum.h"
#include "parse.h"

static __always_inline void eth_swap(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
}

static __always_inline bool partial_same_place(const struct pkt *p, __u32 ip_hdr_len, bool partial)
{
	return partial && p->l4_off == p->l3_off + ip_hdr_len;
}

/* The RST's TCP header, the same for both families: the segment's ports swapped, no
 * options. pseudo_sum is the pseudo-header's sum; left_to_offload: the checksum field gets
 * only that sum (see partial in reject_tcp). */
static __always_inline void rst_tcp_fill(struct tcphdr *tcp, const struct pkt *p, __u32 seq,
					 __u32 ack_seq, __u8 flags, __u32 pseudo_sum,
					 bool left_to_offload)
{
	tcp->source = p->dport;
	tcp->dest = p->sport;
	tcp->seq = seq;
	tcp->ack_seq = ack_seq;
	((__u8 *)tcp)[12] = 5 << 4;
	((__u8 *)tcp)[13] = flags;
	tcp->check = left_to_offload ? ~csum_fold(pseudo_sum)
				     : csum_fold(csum_add(tcp, sizeof(*tcp), pseudo_sum));
}

struct rst4 {
	struct iphdr ip;
	struct tcphdr tcp;
};

struct rst6 {
	struct ipv6hdr ip;
	struct tcphdr tcp;
};

/* The answer r, len bytes, in place of the segment from l3 on, the Ethernet addresses
 * swapped where there are any: the new frame length, or -1 when the frame cannot hold it. */
static __always_inline int rst_put(void *l3, void *data_end, struct ethhdr *eth,
				   const struct pkt *p, const void *r, __u32 len)
{
	if (l3 + len > data_end)
		return -1;
	if (p->l3_off)
		eth_swap(eth);
	__builtin_memcpy(l3, r, len);
	return p->l3_off + len;
}

/*
 * Turn the TCP segment p (parsed from data) into the kernel's RST for it, in place: the new
 * IP header goes where the old one started and the TCP header right after it, so the frame
 * only shrinks. The Ethernet addresses are swapped, unless there are none (an L3 device's
 * packet starts at its IP header, l3_off 0). Returns the new frame length, for the hook to
 * trim to, or -1 when the kernel would not answer (a RST, or lengths it would drop the
 * segment for). flow_hash (IPv6) makes the flow label: the kernel's is a hash of the
 * answer's flow, ports included, keyed with a secret chosen at boot, so no one can predict
 * it; the packet's own flow hash (bpf_get_hash_recalc, symmetric) is as unpredictable and as
 * stable per flow.
 *
 * partial: the segment came from a local peer that left its checksum to offload
 * (CHECKSUM_PARTIAL, reject_l4_csum_ok); the skb stays so, with the checksum's place where
 * the segment's was. When the RST's TCP header lands in that place, its checksum field gets
 * the pseudo-header sum, as the stack's own offloaded segments do: the device (or
 * skb_checksum_help where it has no offload) completes it, and a veth peer trusts it.
 */
static __always_inline int reject_tcp(void *data, void *data_end, const struct pkt *p,
				      __u32 flow_hash, bool partial)
{
	struct ethhdr *eth = data;
	void *l3 = data + (p->l3_off & L3_OFF_MASK);
	struct tcphdr *th = data + (p->l4_off & L4_OFF_MASK);
	__u32 seq, ack_seq = 0, ip_len, hdr_len, seg_len, doff, sum;
	__u8 flags, ds;

	if (p->l4_off > L4_OFF_MASK || (void *)(eth + 1) > data_end || (void *)(th + 1) > data_end)
		return -1;
	if (p->tcp_flags & TCP_FLAG_RST)
		return -1;
	doff = (((__u8 *)th)[12] >> 4) * 4;
	if (doff < sizeof(*th))
		return -1;
	if (p->is_ipv6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		ds = (bpf_ntohl(*(__be32 *)ip6) >> 20) & 0xff;
	} else {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		ip_len = bpf_ntohs(ip->tot_len);
		ds = ip->tos;
	}
	hdr_len = (p->l4_off - p->l3_off) + doff;
	/* The kernel drops what is shorter than its headers or than the IP length says. */
	if (ip_len < hdr_len || ip_len > data_end - l3)
		return -1;
	seg_len = ip_len - hdr_len;
	flags = TCP_FLAG_RST;
	if (p->tcp_flags & TCP_FLAG_ACK) {
		seq = th->ack_seq;
	} else {
		seq = 0;
		ack_seq = bpf_htonl(bpf_ntohl(th->seq) + seg_len + !!(p->tcp_flags & TCP_FLAG_SYN) +
				    !!(p->tcp_flags & TCP_FLAG_FIN));
		flags |= TCP_FLAG_ACK;
	}

	if (p->is_ipv6) {
		struct rst6 r = {};

		*(__be32 *)&r.ip =
			bpf_htonl(6 << 28 | (__u32)(ds & ~INET_ECN_MASK) << 20 |
				  ((flow_hash << 16 | flow_hash >> 16) & IPV6_FLOWLABEL_MASK));
		r.ip.payload_len = bpf_htons(sizeof(r.tcp));
		r.ip.nexthdr = IPPROTO_TCP;
		r.ip.hop_limit = IPDEFTTL;
		__builtin_memcpy(&r.ip.saddr, p->daddr, 16);
		__builtin_memcpy(&r.ip.daddr, p->saddr, 16);
		sum = pseudo_v6(&r.ip.saddr, &r.ip.daddr, IPPROTO_TCP, sizeof(r.tcp), 0);
		rst_tcp_fill(&r.tcp, p, seq, ack_seq, flags, sum,
			     partial_same_place(p, sizeof(r.ip), partial));
		return rst_put(l3, data_end, eth, p, &r, sizeof(r));
	} else {
		struct rst4 r = {};

		((__u8 *)&r.ip)[0] = 0x45;
		r.ip.tos = ds & ~INET_ECN_MASK;
		r.ip.tot_len = bpf_htons(sizeof(r));
		r.ip.frag_off = bpf_htons(IP_DF);
		r.ip.ttl = IPDEFTTL;
		r.ip.protocol = IPPROTO_TCP;
		__builtin_memcpy(&r.ip.saddr, p->daddr + 12, 4);
		__builtin_memcpy(&r.ip.daddr, p->saddr + 12, 4);
		r.ip.check = csum_fold(csum_add(&r.ip, sizeof(r.ip), 0));
		sum = pseudo_v4(&r.ip.saddr, &r.ip.daddr, IPPROTO_TCP, sizeof(r.tcp), 0);
		rst_tcp_fill(&r.tcp, p, seq, ack_seq, flags, sum,
			     partial_same_place(p, sizeof(r.ip), partial));
		return rst_put(l3, data_end, eth, p, &r, sizeof(r));
	}
}

#endif /* BPFREDIR_REJECT_TCP_H */
