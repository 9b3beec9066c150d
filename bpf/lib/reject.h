/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reject instead of drop (add --reject): answer a packet aimed at a hidden port exactly as
 * the kernel answers one for a port where nothing listens, so a scan cannot tell the two
 * apart. TCP gets the RST of tcp_v4_send_reset()/tcp_v6_send_reset(), UDP the port
 * unreachable of icmp_send()/icmp6_send(). Field by field (what the kernel does, and so
 * what we do):
 *
 * - TCP: no answer to a RST. To a segment with ACK: RST, seq = its ack_seq. Otherwise
 *   RST/ACK, seq 0, ack_seq = seq + SYN + FIN + data length. 20-byte header, window 0.
 *   IPv4: ToS = the segment's minus ECN, ID 0, DF, TTL 64. IPv6: traffic class the
 *   segment's minus ECN, hop limit 64, flow label a per-flow hash like the kernel's (whose
 *   key is secret; see reject_tcp).
 * - UDP: ICMP type 3 code 3 quoting the datagram from its IP header, at most 576 bytes in
 *   all; ToS (the datagram's & 0x1e) | 0xc0, no DF, TTL 64; the ID goes on from the last
 *   one the kernel used for that peer (see reject_seen). ICMPv6 type 1 code 4 quoting at
 *   most 1232 bytes (1280 in all), traffic class 0, hop limit 64, the flow label the
 *   kernel's own port unreachables to that peer carry (see reject_seen).
 * - Answers go from the packet's destination address to its source, Ethernet addresses
 *   swapped (the kernel routes its answer, which on a LAN or behind one gateway gives the
 *   same). A packet with a wrong TCP/UDP checksum gets none (reject_l4_csum_ok).
 *
 * The kernel rate-limits ICMP errors per destination (net.ipv4.icmp_ratelimit, 1 s, and
 * net.ipv6.icmp.ratelimit, 1 s scaled down by the route's prefix length, 250 ms for a /64;
 * a burst of 6) and overall (icmp_msgs_per_sec). reject_icmp_allowed() applies the same
 * per-source token bucket with the default values (v6 as for a /64), in a table of its
 * own: the kernel's counters cannot be read from BPF. The global limit is not mirrored.
 * RSTs are not rate-limited by the kernel, nor here.
 *
 * Everything here works on data/data_end or on plain buffers, so TC and XDP share it; only
 * making room (bpf_skb_adjust_room, bpf_skb_change_tail, or the XDP adjust helpers) is the
 * hook's.
 */
#ifndef BPFREDIR_REJECT_H
#define BPFREDIR_REJECT_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "proto.h"
#include "csum.h"
#include "parse.h"

#define REJECT_TTL 64
/* icmp_send: 576 bytes in all; icmp6_send: the IPv6 minimum MTU. */
#define ICMP4_QUOTE_MAX (576 - 20 - 8)
#define ICMP6_QUOTE_MAX (1280 - 40 - 8)
/* The least a quote holds: reject_udp_quote_len() wants an IP header and a UDP one. */
#define QUOTE_MIN (20 + 8)
#define ICMP4_HDRS (20 + 8)
#define ICMP6_HDRS (40 + 8)

/* inet_peer_xrlim_allow(): a bucket of up to 6 tokens per source, one per timeout. */
#define ICMP_RL_BURST 6
#define ICMP4_RL_TIMEOUT_NS 1000000000ULL
#define ICMP6_RL_TIMEOUT_NS 250000000ULL
#define ICMP_RL_ENTRIES 16384

/* Scratch space for an ICMP error's quote, to checksum it: bpf_csum_diff takes at most
 * 512 bytes at a time, and zeros past the quote add nothing to the sum. */
#define QUOTE_CHUNK 512
#define QUOTE_BUF (3 * QUOTE_CHUNK)

struct reject_quote {
	__u8 buf[QUOTE_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct reject_quote);
} reject_scratch SEC(".maps");

struct reject_rl {
	__u64 last_ns;
	__u64 tokens_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ICMP_RL_ENTRIES);
	__type(key, struct redir_local_addr);
	__type(value, struct reject_rl);
} reject_ratelimit SEC(".maps");

/*
 * What the kernel's own port unreachables to a peer carried, seen leaving by TC egress, so
 * ours carry the same: the ICMPv6 flow label, which the kernel derives from the address
 * pair (and the ICMP type and code, not the ports), so it is the same for every closed port;
 * and the IPv4 ID, which the kernel takes from a counter per address pair that grows by 1
 * and a random amount below the jiffies elapsed since its last use (ip_idents_reserve).
 */
struct reject_seen_key {
	__u8 remote[BPFREDIR_ADDR_LEN];
	__u8 local[BPFREDIR_ADDR_LEN];
};

struct reject_seen {
	__u64 id_ns; /* when ip_id was used */
	__u32 flow_label;
	__u16 ip_id; /* host order */
	__u8 has_label;
	__u8 has_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ICMP_RL_ENTRIES);
	__type(key, struct reject_seen_key);
	__type(value, struct reject_seen);
} reject_seen SEC(".maps");

/* The kernel's HZ on Debian; only scales the random part of the ID's growth. */
#define REJECT_NS_PER_JIFFY (1000000000ULL / 250)

/* May this host send src an ICMP error now? A token bucket like the kernel's per peer. */
static __always_inline bool reject_icmp_allowed(const __u8 *src, bool v6)
{
	__u64 timeout = v6 ? ICMP6_RL_TIMEOUT_NS : ICMP4_RL_TIMEOUT_NS;
	__u64 now = bpf_ktime_get_ns(), tokens;
	struct redir_local_addr key;
	struct reject_rl *rl, fresh;

	__builtin_memcpy(key.addr, src, BPFREDIR_ADDR_LEN);
	rl = bpf_map_lookup_elem(&reject_ratelimit, &key);
	if (!rl) {
		/* A new peer starts full, less the token this error takes. */
		fresh.last_ns = now;
		fresh.tokens_ns = (ICMP_RL_BURST - 1) * timeout;
		bpf_map_update_elem(&reject_ratelimit, &key, &fresh, BPF_ANY);
		return true;
	}
	tokens = rl->tokens_ns + (now - rl->last_ns);
	rl->last_ns = now;
	if (tokens > ICMP_RL_BURST * timeout)
		tokens = ICMP_RL_BURST * timeout;
	if (tokens < timeout) {
		rl->tokens_ns = tokens;
		return false;
	}
	rl->tokens_ns = tokens - timeout;
	return true;
}

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

struct rst4 {
	struct iphdr ip;
	struct tcphdr tcp;
};

struct rst6 {
	struct ipv6hdr ip;
	struct tcphdr tcp;
};

/*
 * Turn the TCP segment p (parsed from data) into the kernel's RST for it, in place: the new
 * IP header goes where the old one started and the TCP header right after it, so the frame
 * only shrinks. The Ethernet addresses are swapped, unless there are none (an L3 device's
 * packet starts at its IP header, l3_off 0). Returns the new frame length, for the hook to trim to, or -1 when the
 * kernel would not answer (a RST, or lengths it would drop the segment for). flow_hash
 * (IPv6) makes the flow label: the kernel's is a hash of the answer's flow, ports included,
 * keyed with a secret chosen at boot, so no one can predict it; the packet's own flow hash
 * (bpf_get_hash_recalc, symmetric) is as unpredictable and as stable per flow.
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
		r.ip.hop_limit = REJECT_TTL;
		__builtin_memcpy(&r.ip.saddr, p->daddr, 16);
		__builtin_memcpy(&r.ip.daddr, p->saddr, 16);
		r.tcp.source = p->dport;
		r.tcp.dest = p->sport;
		r.tcp.seq = seq;
		r.tcp.ack_seq = ack_seq;
		((__u8 *)&r.tcp)[12] = 5 << 4;
		((__u8 *)&r.tcp)[13] = flags;
		sum = pseudo_v6(&r.ip.saddr, &r.ip.daddr, IPPROTO_TCP, sizeof(r.tcp), 0);
		r.tcp.check = partial_same_place(p, sizeof(r.ip), partial)
				      ? ~csum_fold(sum)
				      : csum_fold(csum_add(&r.tcp, sizeof(r.tcp), sum));
		if (l3 + sizeof(r) > data_end)
			return -1;
		if (p->l3_off)
			eth_swap(eth);
		__builtin_memcpy(l3, &r, sizeof(r));
		return p->l3_off + sizeof(r);
	} else {
		struct rst4 r = {};

		((__u8 *)&r.ip)[0] = 0x45;
		r.ip.tos = ds & ~INET_ECN_MASK;
		r.ip.tot_len = bpf_htons(sizeof(r));
		r.ip.frag_off = bpf_htons(IP_DF);
		r.ip.ttl = REJECT_TTL;
		r.ip.protocol = IPPROTO_TCP;
		__builtin_memcpy(&r.ip.saddr, p->daddr + 12, 4);
		__builtin_memcpy(&r.ip.daddr, p->saddr + 12, 4);
		r.ip.check = csum_fold(csum_add(&r.ip, sizeof(r.ip), 0));
		r.tcp.source = p->dport;
		r.tcp.dest = p->sport;
		r.tcp.seq = seq;
		r.tcp.ack_seq = ack_seq;
		((__u8 *)&r.tcp)[12] = 5 << 4;
		((__u8 *)&r.tcp)[13] = flags;
		sum = pseudo_v4(&r.ip.saddr, &r.ip.daddr, IPPROTO_TCP, sizeof(r.tcp), 0);
		r.tcp.check = partial_same_place(p, sizeof(r.ip), partial)
				      ? ~csum_fold(sum)
				      : csum_fold(csum_add(&r.tcp, sizeof(r.tcp), sum));
		if (l3 + sizeof(r) > data_end)
			return -1;
		if (p->l3_off)
			eth_swap(eth);
		__builtin_memcpy(l3, &r, sizeof(r));
		return p->l3_off + sizeof(r);
	}
}

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
	e->ip.ttl = REJECT_TTL;
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
	e->ip.hop_limit = REJECT_TTL;
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

/* volatile: clang would turn the loop into a memset call, which BPF does not have. */
static __always_inline void quote_clear(struct reject_quote *q)
{
	volatile __u64 *w = (__u64 *)q->buf;
	int i;

	for (i = 0; i < QUOTE_BUF / 8; i++)
		w[i] = 0;
}

static __always_inline void seen_key(struct reject_seen_key *k, const __u8 *remote,
				     const __u8 *local)
{
	__builtin_memcpy(k->remote, remote, BPFREDIR_ADDR_LEN);
	__builtin_memcpy(k->local, local, BPFREDIR_ADDR_LEN);
}

/* TC egress (or XDP_TX's caller): learn from a port unreachable the kernel sends. p is the
 * ICMP packet as parse_packet left it. */
static __always_inline void reject_learn(void *data, void *data_end, const struct pkt *p)
{
	__u8 *icmp = data + (p->l4_off & L4_OFF_MASK), *l3 = data + (p->l3_off & L3_OFF_MASK);
	struct reject_seen_key k;
	struct reject_seen *seen, fresh = {};

	if ((p->proto != IPPROTO_ICMP && p->proto != IPPROTO_ICMPV6) || p->l4_off > L4_OFF_MASK)
		return;
	if ((void *)(icmp + 2) > data_end || (void *)(l3 + 8) > data_end)
		return;
	if (p->is_ipv6 ? icmp[0] != ICMPV6_DEST_UNREACH || icmp[1] != ICMPV6_PORT_UNREACH
		       : icmp[0] != ICMP_DEST_UNREACH || icmp[1] != ICMP_PORT_UNREACH)
		return;
	seen_key(&k, p->daddr, p->saddr);
	seen = bpf_map_lookup_elem(&reject_seen, &k);
	if (!seen)
		seen = &fresh;
	if (p->is_ipv6) {
		seen->flow_label = bpf_ntohl(*(__be32 *)l3) & IPV6_FLOWLABEL_MASK;
		seen->has_label = 1;
	} else {
		seen->ip_id = bpf_ntohs(((struct iphdr *)l3)->id);
		seen->id_ns = bpf_ktime_get_ns();
		seen->has_id = 1;
	}
	if (seen == &fresh)
		bpf_map_update_elem(&reject_seen, &k, &fresh, BPF_ANY);
}

/* The flow label (IPv6) or IP ID (IPv4, network order) of our port unreachable to p's
 * source: the kernel's as learned, else one of our own, then remembered so the next error
 * to that peer goes on from it. flow_hash: the datagram's, for a first label. */
static __always_inline __u32 reject_icmp_ident(const struct pkt *p, __u32 flow_hash)
{
	struct reject_seen_key k;
	struct reject_seen *seen, fresh = {};
	__u64 now = bpf_ktime_get_ns(), jiffies;
	__u32 ident;

	seen_key(&k, p->saddr, p->daddr);
	seen = bpf_map_lookup_elem(&reject_seen, &k);
	if (!seen)
		seen = &fresh;
	if (p->is_ipv6) {
		if (!seen->has_label) {
			seen->flow_label =
				(flow_hash << 16 | flow_hash >> 16) & IPV6_FLOWLABEL_MASK;
			seen->has_label = 1;
		}
		ident = seen->flow_label;
	} else {
		ident = bpf_get_prandom_u32() & 0xffff;
		if (seen->has_id) {
			jiffies = (now - seen->id_ns) / REJECT_NS_PER_JIFFY;
			ident = seen->ip_id + 1 + (jiffies ? bpf_get_prandom_u32() % jiffies : 0);
		}
		seen->ip_id = ident;
		seen->id_ns = now;
		seen->has_id = 1;
		ident = bpf_htons(ident & 0xffff);
	}
	if (seen == &fresh)
		bpf_map_update_elem(&reject_seen, &k, &fresh, BPF_ANY);
	return ident;
}

/* Sum of the first len bytes of buf, which is zero past them. */
static __always_inline __u32 quote_sum(struct reject_quote *q, __u32 len)
{
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < QUOTE_BUF / QUOTE_CHUNK; i++)
		if (len > i * QUOTE_CHUNK)
			sum = csum_add(q->buf + i * QUOTE_CHUNK, QUOTE_CHUNK, sum);
	return sum;
}

/*
 * The IP length of p (header included), or 0 when the kernel would drop p for it: shorter
 * than p's headers, or longer than what arrived.
 */
static __always_inline __u32 reject_ip_len(void *data, void *data_end, const struct pkt *p)
{
	void *l3 = data + (p->l3_off & L3_OFF_MASK);
	__u32 ip_len;

	if (p->is_ipv6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	} else {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end)
			return 0;
		ip_len = bpf_ntohs(ip->tot_len);
	}
	if (ip_len < p->l4_off - p->l3_off + 8)
		return 0;
	return ip_len;
}

/*
 * Would the kernel take the TCP/UDP checksum of p, whose whole L4 segment (l4_len bytes) is
 * in q? It silently drops a segment with a wrong one before it looks for a socket, so a
 * probe with a bad checksum (nmap --badsum) must get no answer here either. A UDP checksum
 * of 0 means none over IPv4 and is dropped over IPv6. A field holding just the
 * pseudo-header sum is a CHECKSUM_PARTIAL packet from a local peer (a veth), which the
 * stack takes as verified.
 */
enum reject_csum {
	CSUM_BAD,
	CSUM_OK,
	CSUM_PARTIAL, /* left to offload: the answer must be too (see reject_tcp) */
};

static __always_inline int reject_l4_csum_ok(struct reject_quote *q, __u32 l4_len,
					     const struct pkt *p)
{
	__u32 off = p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF, sum;
	__u16 field = *(__u16 *)(q->buf + off);

	if (p->proto == IPPROTO_UDP && !field)
		return p->is_ipv6 ? CSUM_BAD : CSUM_OK;
	if (p->is_ipv6)
		sum = pseudo_v6((const void *)p->saddr, (const void *)p->daddr, p->proto, l4_len,
				0);
	else
		sum = pseudo_v4((const void *)(p->saddr + 12), (const void *)(p->daddr + 12),
				p->proto, l4_len, 0);
	if (field == (__u16)~csum_fold(sum))
		return CSUM_PARTIAL;
	return csum_fold(quote_sum(q, l4_len) + (__u64)sum) ? CSUM_BAD : CSUM_OK;
}

#endif /* BPFREDIR_REJECT_H */
