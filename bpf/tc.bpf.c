// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TC entry points: ingress translates public -> target and hides the target (dropping, or
 * with --reject answering as a closed port: reject.h); egress puts the public port back on
 * replies. ICMP errors about translated connections get their quote fixed both ways
 * (icmp.h). All decisions live in policy.h, reject.h and icmp.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "lib/proto.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/reject.h"
#include "lib/icmp.h"

/* What we return for every packet we let go on, rewritten or not: TC_ACT_UNSPEC, which is
 * TCX_NEXT in a tcx chain and "no verdict, on to the next filter" for a direct-action
 * cls_bpf filter, so the programs and filters after ours (firewalls, shapers, mirroring)
 * still see every packet. TC_ACT_OK would be TCX_PASS, which ends both chains here. */
#define TC_PASS TC_ACT_UNSPEC

/* Enough for two VLAN tags, IPv6 with a few extension headers and a TCP header. */
#define TC_PULL_LEN 256

/* An Ethernet frame, or (l3) the packet of an L3 device, which starts at its IP header. */
static __always_inline int tc_parse_once(struct __sk_buff *skb, struct pkt *p, bool ingress,
					 bool l3)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (l3)
		return parse_l3_packet(data, data_end, skb->protocol, p);
	return parse_packet(data, data_end, p, ingress);
}

/* Headers usually sit in the linear area; when they do not, the parser sees a truncated
 * packet, so pull once and look again rather than pulling every packet. */
static __always_inline int tc_parse(struct __sk_buff *skb, struct pkt *p, bool ingress, bool l3)
{
	int parsed = tc_parse_once(skb, p, ingress, l3);
	__u32 len;

	if ((parsed != PARSE_MALFORMED && parsed != PARSE_PORTS_ONLY) ||
	    skb->data_end - skb->data >= skb->len)
		return parsed;
	len = skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN;
	if (bpf_skb_pull_data(skb, len))
		return PARSE_MALFORMED;
	/* Whatever the first look left is looked at again: starting from nothing lets the
	 * verifier check the second look once, not once per way the first one ended. */
	__builtin_memset(p, 0, sizeof(*p));
	return tc_parse_once(skb, p, ingress, l3);
}

/* Whom the frame was for at L2, as the stack worked it out (eth_type_trans). */
static __always_inline __u8 tc_l2_dest(const struct __sk_buff *skb)
{
	switch (skb->pkt_type) {
	case PACKET_BROADCAST:
	case PACKET_MULTICAST:
		return L2_GROUP;
	default:
		return L2_HOST;
	}
}

/* Through the skb helpers, not a direct store: the helper knows the skb's checksum state
 * (CHECKSUM_PARTIAL replies must keep only the pseudo-header sum in the field) and keeps a
 * zero UDP checksum zero. */
static __always_inline int tc_rewrite_port(struct __sk_buff *skb, const struct pkt *p, bool dest,
					   __be16 new_port)
{
	__be16 old_port = dest ? p->dport : p->sport;
	__u32 port_off = p->l4_off + (dest ? offsetof(struct tcphdr, dest) : 0);
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
	__u64 csum_flags = sizeof(__be16);
	__u32 old_word = old_port, new_word = new_port;
	__sum16 udp_csum = 0;

	if (p->proto == IPPROTO_UDP) {
		csum_flags |= BPF_F_MARK_MANGLED_0;
		if (bpf_skb_load_bytes(skb, csum_off, &udp_csum, sizeof(udp_csum)))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, csum_flags))
		return -1;
	if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
		return -1;
	/* A checksum update leaves the sum of the whole packet as it was, but a zero UDP
	 * checksum stays zero, so there the sum moves by the port's change: a CHECKSUM_COMPLETE
	 * skb must be told (the helper does nothing for other states). */
	if (p->proto == IPPROTO_UDP && !udp_csum)
		bpf_csum_update(skb, bpf_csum_diff(&old_word, sizeof(old_word), &new_word,
						   sizeof(new_word), 0));
	return 0;
}

/* The datagram becomes its port unreachable: room for the new IP and ICMP headers in front
 * of its IP header, which stays as the start of the quote, and the tail cut where the quote
 * ends. Frames with VLAN tags in them are not answered: the room would go before the tags.
 * The packet of an L3 device (l3_off 0) gets no Ethernet header. */
static __always_inline int tc_reject_udp(struct __sk_buff *skb, const struct pkt *p,
					 __u32 flow_hash)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data, no_eth = {};
	__u32 l2_len = p->l3_off, zero = 0, qlen = 0, sum, hdrs;
	struct reject_quote *q;
	struct iphdr *ip;
	int ip_len;
	__u64 len;

	if (l2_len != sizeof(*eth) && l2_len != 0)
		return -1;
	if (!l2_len)
		eth = &no_eth;
	ip = data + l2_len;
	if ((void *)(ip + 1) > data_end)
		return -1;
	ip_len = reject_udp_quote_len(data, data_end, p, &qlen);
	if (ip_len < 0 || ip_len > skb->len - l2_len || qlen == 0 || qlen > ICMP6_QUOTE_MAX)
		return -1;
	q = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!q)
		return -1;
	quote_clear(q);
	/* Bounded again right before the call, in 64 bits: 6.1's verifier forgets the bounds
	 * of a value spilled to the stack across the calls above. */
	len = qlen;
	barrier_var(len);
	if (len < QUOTE_MIN || len > ICMP6_QUOTE_MAX ||
	    bpf_skb_load_bytes(skb, l2_len, q->buf, len))
		return -1;
	sum = quote_sum(q, qlen);
	if (!reject_icmp_allowed(p->saddr, p->is_ipv6))
		return -1;

	if (p->is_ipv6) {
		struct reject_icmp6 e = {};

		icmp6_error_fill(&e, eth, p, qlen, reject_icmp_ident(p, flow_hash));
		icmp6_error_csum(&e, qlen, sum);
		hdrs = ICMP6_HDRS;
		if (bpf_skb_adjust_room(skb, hdrs, BPF_ADJ_ROOM_MAC, 0) ||
		    bpf_skb_change_tail(skb, l2_len + hdrs + qlen, 0))
			return -1;
		if (!l2_len)
			return bpf_skb_store_bytes(skb, 0, &e.ip, hdrs, BPF_F_RECOMPUTE_CSUM);
		return bpf_skb_store_bytes(skb, 0, &e.eth, REJECT_HDRS_LEN(e),
					   BPF_F_RECOMPUTE_CSUM);
	} else {
		struct reject_icmp4 e = {};

		icmp4_error_fill(&e, eth, p, ip->tos, qlen, reject_icmp_ident(p, 0));
		icmp4_error_csum(&e, sum);
		hdrs = ICMP4_HDRS;
		if (bpf_skb_adjust_room(skb, hdrs, BPF_ADJ_ROOM_MAC, 0) ||
		    bpf_skb_change_tail(skb, l2_len + hdrs + qlen, 0))
			return -1;
		if (!l2_len)
			return bpf_skb_store_bytes(skb, 0, &e.ip, hdrs, BPF_F_RECOMPUTE_CSUM);
		return bpf_skb_store_bytes(skb, 0, &e.eth, REJECT_HDRS_LEN(e),
					   BPF_F_RECOMPUTE_CSUM);
	}
}

/* Would the kernel take p's L4 checksum (reject_l4_csum_ok)? One the device or GRO checked
 * (CHECKSUM_UNNECESSARY) it takes as it is; a segment too long to sum here is answered. */
static __always_inline int tc_l4_csum_ok(struct __sk_buff *skb, const struct pkt *p)
{
	__u32 ip_len = reject_ip_len((void *)(long)skb->data, (void *)(long)skb->data_end, p);
	__u32 zero = 0, l4_len;
	struct reject_quote *q;
	__u64 len;

	if (!ip_len)
		return CSUM_BAD;
	if (bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY) >= 0)
		return CSUM_OK;
	l4_len = ip_len - (p->l4_off - p->l3_off);
	if (l4_len > QUOTE_BUF)
		return CSUM_OK;
	q = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!q || l4_len < 8)
		return CSUM_BAD;
	quote_clear(q);
	/* 64 bits, so the bounds checked are those of the register the call gets. */
	len = l4_len;
	barrier_var(len);
	if (len < 8 || len > QUOTE_BUF)
		return CSUM_BAD;
	if (bpf_skb_load_bytes(skb, p->l4_off, q->buf, len))
		return CSUM_BAD;
	return reject_l4_csum_ok(q, l4_len, p);
}

/* Answer p as a closed port would, out of the interface it came in on. Non-zero when there
 * is no answer to give (the kernel would give none, or the ICMP rate limit says no): the
 * packet is then dropped. */
static __always_inline int tc_reject(struct __sk_buff *skb, const struct pkt *p)
{
	/* The kernel answers unicast only (tcp_v4_rcv, icmp_send). The flow hash first: it
	 * dissects the packet as it arrived. */
	__u32 flow_hash = p->is_ipv6 ? bpf_get_hash_recalc(skb) : 0;
	int len, csum;

	if (skb->pkt_type != PACKET_HOST)
		return -1;
	csum = tc_l4_csum_ok(skb, p);
	if (csum == CSUM_BAD)
		return -1;
	if (p->proto == IPPROTO_TCP) {
		/* Keeps clang from reusing &skb->data from the checksum check: the verifier
		 * refuses loads through a moved context pointer. */
		barrier_var(skb);
		len = reject_tcp((void *)(long)skb->data, (void *)(long)skb->data_end, p, flow_hash,
				 csum == CSUM_PARTIAL);
		if (len < 0 || bpf_skb_change_tail(skb, len, 0))
			return -1;
	} else if (tc_reject_udp(skb, p, flow_hash)) {
		return -1;
	}
	/* What the device verified was the packet, not our answer: let the peer check it. */
	bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	return 0;
}

/* Carry out the policy's verdict; a rewrite the skb refuses becomes a malformed drop, a
 * reject with no answer to give a hidden drop. */
static __always_inline int tc_apply(struct __sk_buff *skb, const struct pkt *p, int verdict,
				    bool ingress, __be16 new_port)
{
	if (verdict == VERDICT_REWRITE && tc_rewrite_port(skb, p, ingress, new_port))
		verdict = VERDICT_DROP_MALFORMED;
	if (verdict == VERDICT_REJECT && tc_reject(skb, p))
		verdict = VERDICT_DROP_HIDDEN;
	account(p, verdict, ingress, new_port);
	if (verdict == VERDICT_REJECT)
		return bpf_redirect(skb->ifindex, 0);
	return verdict == VERDICT_DROP_HIDDEN || verdict == VERDICT_DROP_MALFORMED ||
			       verdict == VERDICT_DROP_UNTRACKED
		       ? TC_ACT_SHOT
		       : TC_PASS;
}

/* An ICMP error about a translated connection gets its quote's port put right, in place
 * (icmp.h); true when it did. */
static __always_inline bool tc_icmp_error(struct __sk_buff *skb, const struct pkt *p, int parsed,
					  bool ingress)
{
	struct icmp_quote q = {};
	void *data, *data_end;
	__be16 port;

	if (parsed != PARSE_NO_PORTS || (p->proto != IPPROTO_ICMP && p->proto != IPPROTO_ICMPV6))
		return false;
	/* Keeps clang from reusing &skb->data from the parse: the verifier refuses loads
	 * through a moved context pointer. */
	barrier_var(skb);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (parse_icmp_error(data, data_end, p, &q)) {
		/* The quote may lie past the linear area: pull once and look again. */
		if (data_end - data >= skb->len ||
		    bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN))
			return false;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		if (parse_icmp_error(data, data_end, p, &q))
			return false;
	}
	port = icmp_error_policy(&q, ingress);
	if (!port || icmp_error_rewrite(data, data_end, &q, ingress, port))
		return false;
	stat_inc(STAT_ICMP_TRANSLATED);
	return true;
}

static __always_inline int tc_ingress(struct __sk_buff *skb, bool l3)
{
	struct pkt p = {};
	__be16 new_port = 0;
	int parsed = tc_parse(skb, &p, true, l3);
	int verdict;

	if (tc_icmp_error(skb, &p, parsed, true))
		return TC_PASS;
	p.l2_dest = tc_l2_dest(skb);
	verdict = ingress_policy(skb, skb->ifindex, parsed, &p, &new_port);
	return tc_apply(skb, &p, verdict, true, new_port);
}

static __always_inline int tc_egress(struct __sk_buff *skb, bool l3)
{
	struct pkt p = {};
	__be16 new_port = 0;
	int parsed = tc_parse(skb, &p, false, l3);
	int verdict;

	if (tc_icmp_error(skb, &p, parsed, false))
		return TC_PASS;
	if (parsed == PARSE_NO_PORTS)
		reject_learn((void *)(long)skb->data, (void *)(long)skb->data_end, &p);
	/* skb_iif is set on reception: zero, this host made the packet. */
	verdict = egress_policy(skb->ifindex, !skb->ingress_ifindex, parsed, &p, &new_port);
	return tc_apply(skb, &p, verdict, false, new_port);
}

SEC("tcx/ingress")
int bpfredir_tc_in(struct __sk_buff *skb)
{
	return tc_ingress(skb, false);
}

SEC("tcx/egress")
int bpfredir_tc_eg(struct __sk_buff *skb)
{
	return tc_egress(skb, false);
}

/* The same for L3 devices (tun, WireGuard, IP tunnels, PPP: no link-layer header), which
 * the loader attaches instead by the device's type. */
SEC("tcx/ingress")
int bpfredir_l3_in(struct __sk_buff *skb)
{
	return tc_ingress(skb, true);
}

SEC("tcx/egress")
int bpfredir_l3_eg(struct __sk_buff *skb)
{
	return tc_egress(skb, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
