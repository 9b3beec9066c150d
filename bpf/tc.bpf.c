// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TC entry points: ingress translates public -> target and hides the target (dropping, or
 * with --reject answering as a closed port: reject.h); egress puts the public port back on
 * replies. ICMP errors about translated connections get their quote fixed both ways
 * (icmp.h). All decisions live in policy.h, reject.h and icmp.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "lib/ctx.h"
#include "lib/hook.h"
#include "lib/rewrite.h"

/* Ingress: the checksum as the skb's checksum state wants it (a veth peer's CHECKSUM_PARTIAL
 * packet keeps only the pseudo-header sum in the field, which the port is not part of; the
 * packet's sum, CHECKSUM_COMPLETE's, stays as it was when the port and the checksum move
 * together) and a zero UDP checksum zero; the port by a direct store, which costs a fraction
 * of a helper call. A direct store makes the verifier unclone a cloned skb on entry to the
 * program: cheap on ingress, where skbs are rarely clones, but every TCP segment leaves as
 * one, so egress stores through the helper. Where the kernel shows the state (6.2 on) the
 * checksum is updated in place as bpf_l4_csum_replace would, else through that helper.
 * Returns 0, or -1 when the packet refuses it. */
static __always_inline int rewrite_dport(struct __sk_buff *skb, const struct pkt *p,
					 __be16 new_port)
{
	__u32 off = p->l4_off, csum_off, old_word = p->dport, new_word = new_port;
	__u64 csum_flags = sizeof(__be16);
	void *data, *data_end, *l4;
	__sum16 udp_csum = 0;
	int ip_summed;

	if (off > REWRITE_MAX_L4_OFF)
		return -1;
	ip_summed = ctx_ip_summed(skb);
	if (ip_summed == SKB_CHECKSUM_PARTIAL) {
		l4 = ctx_data(skb) + off;
		if (l4 + 4 > ctx_end(skb))
			return -1;
		((__be16 *)l4)[1] = new_port;
		return 0;
	}
	if (ip_summed >= 0) {
		struct udphdr *uh = ctx_data(skb) + off;

		/* Both headers are longer than the UDP one. */
		if ((void *)(uh + 1) > ctx_end(skb))
			return -1;
		udp_csum = p->proto == IPPROTO_UDP ? uh->check : 1;
		if (rewrite_port(ctx_data(skb), ctx_end(skb), p, true, new_port))
			return -1;
		/* A zero UDP checksum stays zero, so the packet's sum moved by the port's
		 * change. */
		if (!udp_csum && ip_summed == SKB_CHECKSUM_COMPLETE)
			bpf_csum_update(skb, bpf_csum_diff(&old_word, sizeof(old_word), &new_word,
							   sizeof(new_word), 0));
		return 0;
	}
	csum_off = off + (p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
	if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = ctx_data(skb) + off;

		if ((void *)(uh + 1) > ctx_end(skb))
			return -1;
		udp_csum = uh->check;
		csum_flags |= BPF_F_MARK_MANGLED_0;
	}
	if (bpf_l4_csum_replace(skb, csum_off, p->dport, new_port, csum_flags))
		return -1;
	/* The helper moved the packet: look again. */
	barrier_var(skb);
	data = ctx_data(skb);
	data_end = ctx_end(skb);
	l4 = data + off;
	if (l4 + 4 > data_end)
		return -1;
	((__be16 *)l4)[1] = new_port;
	/* The sum of the whole packet stays as it was but for a zero UDP checksum, which stays
	 * zero: a CHECKSUM_COMPLETE skb must be told (the helper does nothing for others). */
	if (p->proto == IPPROTO_UDP && !udp_csum)
		bpf_csum_update(skb, bpf_csum_diff(&old_word, sizeof(old_word), &new_word,
						   sizeof(new_word), 0));
	return 0;
}

/* Egress: both through the skb helpers (see rewrite_dport), which also keep a zero UDP
 * checksum zero. A CHECKSUM_PARTIAL packet, which the local stack's are on a device with
 * checksum offload, needs no checksum update (rewrite_dport), so only its port is stored. */
static __always_inline int hook_rewrite_port(struct __sk_buff *skb, const struct pkt *p, bool dest,
					     __be16 new_port)
{
	__be16 old_port = dest ? p->dport : p->sport;
	__u32 port_off = p->l4_off + (dest ? offsetof(struct tcphdr, dest) : 0);
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
	__u64 csum_flags = sizeof(__be16);
	__u32 old_word = old_port, new_word = new_port;
	__sum16 udp_csum = 0;

	if (dest)
		return rewrite_dport(skb, p, new_port);
	if (ctx_ip_summed(skb) == SKB_CHECKSUM_PARTIAL)
		return bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) ? -1 : 0;
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

/* hdrs bytes of room in front of the quote, the tail cut where the quote ends, and the answer's
 * headers written from its Ethernet header on (eth), or from its IP header (ip) where the
 * device has none (l2_len 0). len: eth's headers' length. */
static __always_inline int reject_udp_put(struct __sk_buff *skb, __u32 l2_len, __u32 hdrs,
					  __u32 qlen, const void *eth, const void *ip, __u32 len)
{
	if (bpf_skb_adjust_room(skb, hdrs, BPF_ADJ_ROOM_MAC, 0) ||
	    bpf_skb_change_tail(skb, l2_len + hdrs + qlen, 0))
		return -1;
	if (!l2_len)
		return bpf_skb_store_bytes(skb, 0, ip, hdrs, BPF_F_RECOMPUTE_CSUM);
	return bpf_skb_store_bytes(skb, 0, eth, len, BPF_F_RECOMPUTE_CSUM);
}

/* The datagram becomes its port unreachable: room for the new IP and ICMP headers in front
 * of its IP header, which stays as the start of the quote, and the tail cut where the quote
 * ends. Frames with VLAN tags in them are not answered: the room would go before the tags.
 * The packet of an L3 device (l3_off 0) gets no Ethernet header. */
static __always_inline int hook_reject_udp(struct __sk_buff *skb, const struct pkt *p,
					   __u32 flow_hash)
{
	void *data = ctx_data(skb);
	void *data_end = ctx_end(skb);
	struct ethhdr *eth = data, no_eth = {};
	__u32 l2_len = p->l3_off, qlen, sum;
	struct iphdr *ip;

	if (l2_len != sizeof(*eth) && l2_len != 0)
		return -1;
	/* The Ethernet header checked on its own, though the IP header's check covers it:
	 * at a variable offset, 6.1's verifier need not carry that check back to eth. */
	if (!l2_len)
		eth = &no_eth;
	else if ((void *)(eth + 1) > data_end)
		return -1;
	ip = data + l2_len;
	if ((void *)(ip + 1) > data_end ||
	    reject_udp_quote(skb, data, data_end, p, l2_len, &qlen, &sum))
		return -1;

	if (p->is_ipv6) {
		struct reject_icmp6 e = {};

		icmp6_error_fill(&e, eth, p, qlen, reject_icmp_ident(p, flow_hash));
		icmp6_error_csum(&e, qlen, sum);
		return reject_udp_put(skb, l2_len, ICMP6_HDRS, qlen, &e.eth, &e.ip,
				      REJECT_HDRS_LEN(e));
	} else {
		struct reject_icmp4 e = {};

		icmp4_error_fill(&e, eth, p, ip->tos, qlen, reject_icmp_ident(p, 0));
		icmp4_error_csum(&e, sum);
		return reject_udp_put(skb, l2_len, ICMP4_HDRS, qlen, &e.eth, &e.ip,
				      REJECT_HDRS_LEN(e));
	}
}

static __always_inline int tc_egress(struct __sk_buff *skb, bool l3)
{
	struct pkt p = {};
	__be16 new_port = 0;
	int parsed, verdict;

	/* What leaves by the interface it came in on is --reject's answer (bpf_redirect back
	 * out): an answer about the hidden port, never a reply of a translated connection,
	 * whatever an earlier packet from the same client port left in the tables. */
	if (skb->ingress_ifindex == skb->ifindex)
		return CTX_PASS;
	parsed = hook_parse(skb, &p, false, l3);
	if (icmp_error(skb, &p, parsed, false))
		return CTX_PASS;
	if (parsed == PARSE_NO_PORTS)
		reject_learn(ctx_data(skb), ctx_end(skb), &p);
	/* skb_iif is set on reception: zero, this host made the packet. */
	verdict = egress_policy(ctx_ifindex(skb), !skb->ingress_ifindex, parsed, &p, &new_port);
	return hook_apply(skb, &p, verdict, false, new_port);
}

SEC("tcx/ingress")
int bpfredir_tc_in(struct __sk_buff *skb)
{
	return hook_ingress(skb, false);
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
	return hook_ingress(skb, true);
}

SEC("tcx/egress")
int bpfredir_l3_eg(struct __sk_buff *skb)
{
	return tc_egress(skb, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
