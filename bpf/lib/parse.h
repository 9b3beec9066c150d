/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one packet parser, over data/data_end, shared by every packet hook.
 *
 * Policy for shapes that could hide a port from us (docs/design.md, "Packet shapes"):
 * - up to two VLAN tags (802.1Q, 802.1ad) in the frame are skipped; tags the driver moved
 *   into skb metadata are already gone from the frame;
 * - IPv4 options are skipped using ihl;
 * - IPv6 extension headers are walked up to IPV6_MAX_EXT_HDRS;
 * - fragments are judged by what they reassemble to: a first fragment by its ports (the
 *   kernel reassembles only a datagram whose first fragment holds at least 8 bytes, and
 *   drops overlaps, so its ports are the datagram's); one too short to hold them is passed,
 *   as the kernel discards it. Other fragments carry no ports and are passed: without the
 *   first fragment, which we judge, they never reassemble. The one exception is PARSE_FRAG_TAIL
 *   (frag.h): the IPv4 TCP fragment that may hold a translated datagram's checksum;
 * - a shape we do not translate but whose ports we can still read (a TCP/UDP header cut
 *   short after its ports, e.g. a tiny first fragment; a TCP/UDP packet right behind more
 *   tags than we walk, up to VLAN_PEEK_DEPTH) is PARSE_PORTS_ONLY: the policy passes it
 *   when no rule can name its port and drops it otherwise;
 * - one whose destination port we cannot read is malformed: it could be aimed at a hidden
 *   port. That includes a chain of more than IPV6_MAX_EXT_HDRS extension headers: every
 *   header walked multiplies the ways the parse can end, which the verifier checks one by
 *   one, and walking further exceeds its budget.
 * Frames of L3 devices (tun, WireGuard, IP tunnels, PPP) start at the IP header:
 * parse_l3_packet() parses those, by the protocol the skb says.
 */
#ifndef BPFREDIR_PARSE_H
#define BPFREDIR_PARSE_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include "proto.h"

#define IPV6_MAX_EXT_HDRS 8
#define VLAN_MAX_DEPTH 2
/* How deep a tag stack we look through for the ports alone (see PARSE_PORTS_ONLY). */
#define VLAN_PEEK_DEPTH 8

enum parse_result {
	PARSE_PORTS,	  /* TCP or UDP with readable ports */
	PARSE_NO_PORTS,	  /* not IP, not TCP/UDP, or a non-first fragment; for an unfragmented
			  * ICMP/ICMPv6 packet, proto, addresses, l3_off and l4_off are set
			  * (icmp.h reads the error's quote from there) */
	PARSE_MALFORMED,  /* claims to carry ports we cannot read */
	PARSE_PORTS_ONLY, /* TCP or UDP whose proto and ports are read, in a shape we do not
			   * translate: the rest of its L4 header is cut short, or it is behind
			   * more tags than we rewrite through */
	PARSE_L4,	  /* l3_parse_*() only: the L4 header it found is for the caller to read */
	PARSE_FRAG_TAIL,  /* a non-first IPv4 TCP fragment at byte 8 or 16 of the segment, where
			   * a translated datagram's checksum may lie: addresses, l3_off, l4_off
			   * (its payload) and frag_off are set (frag.h) */
};

/* Whom the frame was sent to at L2; the hook fills it in (TC from skb->pkt_type, XDP from
 * the destination MAC address). */
enum l2_dest {
	L2_HOST,  /* one host's address (ours, or another's: see dest_is_local), or no L2 */
	L2_GROUP, /* a broadcast or multicast address */
};

struct pkt {
	__u8 saddr[BPFREDIR_ADDR_LEN]; /* v4 as ::ffff:a.b.c.d */
	__u8 daddr[BPFREDIR_ADDR_LEN];
	__u32 l4_off; /* from data to the TCP/UDP header */
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 is_ipv6;
	__u8 l3_off;	/* from data to the IP header */
	__u8 l2_dest;	/* enum l2_dest */
	__u8 frag;	/* the first fragment of a fragmented datagram */
	__u16 frag_off; /* PARSE_FRAG_TAIL: where its payload lies in the segment, in bytes */
};

static __always_inline void addr_from_v4(__u8 *dst, __be32 v4)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &v4, 4);
}

/* Both must be 4-byte aligned; clang has no inline memcmp for BPF. */
static __always_inline bool addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const void *)a, *y = (const void *)b;

	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]));
}

/* The L4 header is cut short: its ports may still be there (both TCP and UDP start with
 * them), enough for the policy to leave alone a packet no rule can name. */
static __always_inline int parse_ports_only(void *l4, void *data, void *data_end, __u8 proto,
					    struct pkt *p)
{
	__be16 *ports = l4;

	/* A first fragment too short for the ports never reassembles: the kernel cuts a
	 * fragment that is not the last to a multiple of 8 bytes and drops an empty one
	 * with its whole datagram (IPv6: a first fragment without the whole upper-layer
	 * header, RFC 7112). It is the kernel's to drop. */
	if ((void *)(ports + 2) > data_end)
		return p->frag ? PARSE_NO_PORTS : PARSE_MALFORMED;
	p->sport = ports[0];
	p->dport = ports[1];
	/* The flags when the cut leaves them (a 16-byte first fragment): a SYN is then told
	 * from the rest of its connection. */
	p->tcp_flags = 0;
	if (proto == IPPROTO_TCP && (void *)((__u8 *)l4 + TCP_FLAGS_OFF + 1) <= data_end)
		p->tcp_flags = ((__u8 *)l4)[TCP_FLAGS_OFF];
	p->proto = proto;
	p->l4_off = l4 - data;
	return PARSE_PORTS_ONLY;
}

static __always_inline int parse_l4(void *l4, void *data, void *data_end, __u8 proto, struct pkt *p)
{
	/* One bounds check per protocol, each right before its reads: the verifier does not
	 * carry a shared, protocol-dependent length into the branches. */
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return parse_ports_only(l4, data, data_end, proto, p);
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[TCP_FLAGS_OFF];
	} else {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return parse_ports_only(l4, data, data_end, proto, p);
		p->sport = uh->source;
		p->dport = uh->dest;
		p->tcp_flags = 0;
	}
	p->proto = proto;
	p->l4_off = l4 - data;
	return PARSE_PORTS;
}

/* p's IPv4 addresses, protocol, and where its IP header (at cursor) and the header after it
 * lie. */
static __always_inline void pkt_fill_v4(struct pkt *p, const struct iphdr *iph, void *cursor,
					void *data, __u32 hdr_len, __u8 proto)
{
	addr_from_v4(p->saddr, iph->saddr);
	addr_from_v4(p->daddr, iph->daddr);
	p->is_ipv6 = 0;
	p->l3_off = cursor - data;
	p->l4_off = cursor + hdr_len - data;
	p->proto = proto;
}

/* A non-first IPv4 fragment: PARSE_FRAG_TAIL when it is TCP and starts at byte 8 or 16 of
 * the segment (the checksum is at 16), with what frag.h needs set; else PARSE_NO_PORTS. */
static __always_inline int frag_tail_v4(struct iphdr *iph, void *cursor, void *data, __u32 hdr_len,
					struct pkt *p)
{
	__u16 off = (bpf_ntohs(iph->frag_off) & IP_OFFSET) * 8;

	if (iph->protocol != IPPROTO_TCP || off > TCP_CSUM_OFF)
		return PARSE_NO_PORTS;
	pkt_fill_v4(p, iph, cursor, data, hdr_len, IPPROTO_TCP);
	p->frag_off = off;
	return PARSE_FRAG_TAIL;
}

/*
 * The IP header at cursor, walked to the header after it. PARSE_L4 when that is TCP or UDP:
 * p's addresses, is_ipv6, l3_off and proto are then set and *l4 points at it; else
 * PARSE_NO_PORTS (for IPv6 with the addresses set; with icmp, for an unfragmented ICMP or
 * ICMPv6 packet or first fragment, with l4_off and proto set too: icmp.h reads the error's
 * quote from there) or PARSE_MALFORMED; with tails, PARSE_FRAG_TAIL (frag_tail_v4). The
 * packet parser and the ICMP error's quote (icmp.h) both use these, with their own limits:
 * how many IPv6 extension headers to walk (max_ext), whether AH is one of them (ah), whether
 * ICMP is looked for (icmp), whether a checksum-holding fragment is (tails).
 */
static __always_inline int l3_parse_v4(void *cursor, void *data, void *data_end, struct pkt *p,
				       void **l4, bool icmp, bool tails)
{
	struct iphdr *iph = cursor;
	__u32 hdr_len;
	__u8 proto;

	if (cursor + sizeof(*iph) > data_end)
		return PARSE_MALFORMED;
	/* Read version/ihl as a byte: bitfield order is an ABI detail we do not want here. */
	if ((*(__u8 *)iph >> 4) != 4)
		return PARSE_MALFORMED;
	hdr_len = (*(__u8 *)iph & 0xF) * 4;
	if (hdr_len < sizeof(*iph))
		return PARSE_MALFORMED;
	if (cursor + hdr_len > data_end)
		return PARSE_MALFORMED;
	proto = iph->protocol;
	if (icmp && proto == IPPROTO_ICMP && !(iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))) {
		pkt_fill_v4(p, iph, cursor, data, hdr_len, IPPROTO_ICMP);
		return PARSE_NO_PORTS;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return PARSE_NO_PORTS;
	if (iph->frag_off & bpf_htons(IP_OFFSET))
		return tails ? frag_tail_v4(iph, cursor, data, hdr_len, p) : PARSE_NO_PORTS;
	p->frag = !!(iph->frag_off & bpf_htons(IP_MF));
	pkt_fill_v4(p, iph, cursor, data, hdr_len, proto);
	*l4 = cursor + hdr_len;
	return PARSE_L4;
}

static __always_inline bool ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_AH || nexthdr == IPPROTO_FRAGMENT;
}

static __always_inline int l3_parse_v6(void *cursor, void *data, void *data_end, struct pkt *p,
				       void **l4, const int max_ext, bool ah, bool icmp)
{
	struct ipv6hdr *ip6h = cursor;
	__u8 nexthdr;
	int i;

	if (cursor + sizeof(*ip6h) > data_end)
		return PARSE_MALFORMED;
	if ((*(__u8 *)ip6h >> 4) != 6)
		return PARSE_MALFORMED;
	__builtin_memcpy(p->saddr, &ip6h->saddr, BPFREDIR_ADDR_LEN);
	__builtin_memcpy(p->daddr, &ip6h->daddr, BPFREDIR_ADDR_LEN);
	p->is_ipv6 = 1;
	p->l3_off = cursor - data;
	nexthdr = ip6h->nexthdr;
	cursor += sizeof(*ip6h);

#pragma unroll
	for (i = 0; i < max_ext; i++) {
		struct ipv6_opt_hdr *opt = cursor;
		struct frag_hdr *frag = cursor;

		switch (nexthdr) {
		case IPPROTO_TCP:
		case IPPROTO_UDP:
			goto found;
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (cursor + sizeof(*opt) > data_end)
				return PARSE_MALFORMED;
			nexthdr = opt->nexthdr;
			cursor += (opt->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			if (!ah)
				return PARSE_NO_PORTS;
			if (cursor + sizeof(*opt) > data_end)
				return PARSE_MALFORMED;
			nexthdr = opt->nexthdr;
			cursor += (opt->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if (cursor + sizeof(*frag) > data_end)
				return PARSE_MALFORMED;
			if (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK))
				return PARSE_NO_PORTS;
			p->frag = !!(frag->frag_off & bpf_htons(IPV6_FRAG_MF));
			nexthdr = frag->nexthdr;
			cursor += sizeof(*frag);
			break;
		case IPPROTO_ICMPV6:
			if (icmp) {
				p->l4_off = cursor - data;
				p->proto = IPPROTO_ICMPV6;
			}
			return PARSE_NO_PORTS;
		default:
			/* No next header, ESP, ...: nothing with ports we could rewrite. */
			return PARSE_NO_PORTS;
		}
	}
	/* Exactly max_ext headers used every pass on them. */
	if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP)
		/* The chain goes on and may still lead to TCP/UDP: refuse to guess. */
		return ipv6_is_ext(nexthdr) ? PARSE_MALFORMED : PARSE_NO_PORTS;
found:
	p->proto = nexthdr;
	*l4 = cursor;
	return PARSE_L4;
}

/* The IP packet at cursor, of ethertype h_proto. */
static __always_inline int parse_ip(void *cursor, void *data, void *data_end, __be16 h_proto,
				    struct pkt *p)
{
	void *l4;
	int l3;

	if (h_proto == bpf_htons(ETH_P_IP))
		l3 = l3_parse_v4(cursor, data, data_end, p, &l4, true, true);
	else if (h_proto == bpf_htons(ETH_P_IPV6))
		l3 = l3_parse_v6(cursor, data, data_end, p, &l4, IPV6_MAX_EXT_HDRS, true, true);
	else
		return PARSE_NO_PORTS;
	if (l3 != PARSE_L4)
		return l3;
	return parse_l4(l4, data, data_end, p->proto, p);
}

/* Step over the VLAN tag h_proto names, if it names one: 1 when it did (h_proto is then
 * what the tag carries), 0 when h_proto is no tag, -1 when the tag is cut short. */
static __always_inline int vlan_step(void **cursor, void *data_end, __be16 *h_proto)
{
	struct vlan_hdr *vh = *cursor;

	if (*h_proto != bpf_htons(ETH_P_8021Q) && *h_proto != bpf_htons(ETH_P_8021AD))
		return 0;
	if (*cursor + sizeof(*vh) > data_end)
		return -1;
	*h_proto = vh->h_vlan_encapsulated_proto;
	*cursor += sizeof(*vh);
	return 1;
}

/* A frame with more tags than we walk: look through up to VLAN_PEEK_DEPTH of them for the
 * ports alone, so that the policy can leave alone a frame no rule can name. Only a TCP/UDP
 * header right after the IP header is found (IPv4 options included, IPv6 extension headers
 * not): the full walk once more at each further depth would multiply what the verifier
 * checks past its budget. */
static __always_inline int peek_deep_ports(void *cursor, void *data_end, __be16 h_proto,
					   struct pkt *p)
{
	__be16 *ports;
	__u8 proto;
	int i;

	/* A rare path: one copy of the loop, not one per depth. */
#pragma clang loop unroll(disable)
	for (i = VLAN_MAX_DEPTH; i < VLAN_PEEK_DEPTH; i++) {
		int tag = vlan_step(&cursor, data_end, &h_proto);

		if (tag < 0)
			return PARSE_MALFORMED;
		if (!tag)
			break;
	}
	if (h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = cursor;

		if ((void *)(iph + 1) > data_end || (*(__u8 *)iph >> 4) != 4 ||
		    (*(__u8 *)iph & 0xF) < 5)
			return PARSE_MALFORMED;
		proto = iph->protocol;
		if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) ||
		    iph->frag_off & bpf_htons(IP_OFFSET))
			return PARSE_NO_PORTS;
		ports = cursor + (*(__u8 *)iph & 0xF) * 4;
	} else if (h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = cursor;

		if ((void *)(ip6h + 1) > data_end || (*(__u8 *)ip6h >> 4) != 6)
			return PARSE_MALFORMED;
		proto = ip6h->nexthdr;
		if (ipv6_is_ext(proto))
			return PARSE_MALFORMED;
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return PARSE_NO_PORTS;
		ports = (void *)(ip6h + 1);
	} else {
		/* Still more tags: deeper than we look. */
		return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD)
			       ? PARSE_MALFORMED
			       : PARSE_NO_PORTS;
	}
	if ((void *)(ports + 2) > data_end)
		return PARSE_MALFORMED;
	p->sport = ports[0];
	p->dport = ports[1];
	p->proto = proto;
	p->tcp_flags = 0;
	return PARSE_PORTS_ONLY;
}

/* An Ethernet frame. Egress never drops, so only ingress looks past VLAN_MAX_DEPTH tags. */
static __always_inline int parse_packet(void *data, void *data_end, struct pkt *p, bool ingress)
{
	struct ethhdr *eth = data;
	void *cursor = data + sizeof(*eth);
	__be16 h_proto;
	int i;

	if (cursor > data_end)
		return PARSE_NO_PORTS;
	p->l2_dest = eth->h_dest[0] & 1 ? L2_GROUP : L2_HOST;
	h_proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < VLAN_MAX_DEPTH; i++) {
		int tag = vlan_step(&cursor, data_end, &h_proto);

		if (tag < 0)
			return PARSE_MALFORMED;
		if (!tag)
			break;
	}
	if (h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD))
		return ingress ? peek_deep_ports(cursor, data_end, h_proto, p) : PARSE_MALFORMED;
	return parse_ip(cursor, data, data_end, h_proto, p);
}

/* A packet of an L3 device (no link-layer header): the IP header is at data, and the skb's
 * protocol says which IP it is. */
static __always_inline int parse_l3_packet(void *data, void *data_end, __be16 protocol,
					   struct pkt *p)
{
	return parse_ip(data, data, data_end, protocol, p);
}

#endif /* BPFREDIR_PARSE_H */
