/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reject instead of drop (add --reject): answer a packet aimed at a hidden port exactly as
 * the kernel answers one for a port where nothing listens, so a scan cannot tell the two
 * apart: TCP gets the RST of tcp_v4_send_reset()/tcp_v6_send_reset() (reject_tcp.h), UDP
 * the port unreachable of icmp_send()/icmp6_send() (reject_icmp.h), within the kernel's
 * ICMP rate limit and carrying what its own errors to that peer carried (reject_state.h).
 * Field by field, what the kernel does and so what we do, and what cannot match: the
 * "Reject fidelity" section of docs/design.md, the one copy of that specification.
 *
 * Everything here works on data/data_end, on plain buffers or through ctx.h, so TC and XDP
 * share it; only making room for a port unreachable's headers (bpf_skb_adjust_room, or the
 * XDP adjust helpers) is the hook's: the entry file defines hook_reject_udp().
 */
#ifndef BPFREDIR_REJECT_H
#define BPFREDIR_REJECT_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "proto.h"
#include "csum.h"
#include "parse.h"
#include "ctx.h"
#include "reject_state.h"
#include "reject_tcp.h"
#include "reject_icmp.h"

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

/* Would the kernel take p's L4 checksum (reject_l4_csum_ok)? One the device or GRO checked
 * it takes as it is; a segment too long to sum here is answered. */
static __always_inline int l4_csum_ok(ctx_t *ctx, const struct pkt *p)
{
	__u32 ip_len = reject_ip_len(ctx_data(ctx), ctx_end(ctx), p);
	__u32 zero = 0, l4_len;
	struct reject_quote *q;
	__u64 len;

	if (!ip_len)
		return CSUM_BAD;
	if (ctx_csum_verified(ctx))
		return CSUM_OK;
	l4_len = ip_len - (p->l4_off - p->l3_off);
	if (l4_len > QUOTE_BUF)
		return CSUM_OK;
	q = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!q)
		return CSUM_BAD;
	quote_clear(q);
	/* 64 bits, so the bounds checked are those of the register the call gets. */
	len = l4_len;
	barrier_var(len);
	if (len < 8 || len > QUOTE_BUF || ctx_load(ctx, p->l4_off, q->buf, len))
		return CSUM_BAD;
	return reject_l4_csum_ok(q, l4_len, p);
}

/*
 * The quote of the UDP datagram p in its port unreachable, from its IP header (l2_len into
 * the frame) on: its length and its sum. Non-zero when there is no answer to give: the
 * kernel would send none, or the rate limit says no (the rate limit last: it takes a token).
 */
static __always_inline int reject_udp_quote(ctx_t *ctx, void *data, void *data_end,
					    const struct pkt *p, __u32 l2_len, __u32 *quote_len,
					    __u32 *sum)
{
	__u32 zero = 0, qlen = 0;
	struct reject_quote *q;
	int ip_len;
	__u64 len;

	ip_len = reject_udp_quote_len(data, data_end, p, &qlen);
	if (ip_len < 0 || ip_len > ctx_len(ctx) - l2_len || qlen == 0 || qlen > ICMP6_QUOTE_MAX)
		return -1;
	q = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!q)
		return -1;
	quote_clear(q);
	/* Bounded again right before the call, in 64 bits: 6.1's verifier forgets the bounds
	 * of a value spilled to the stack across the calls above. */
	len = qlen;
	barrier_var(len);
	if (len < QUOTE_MIN || len > ICMP6_QUOTE_MAX || ctx_load(ctx, l2_len, q->buf, len))
		return -1;
	*sum = quote_sum(q, qlen);
	if (!reject_icmp_allowed(p->saddr, p->is_ipv6))
		return -1;
	*quote_len = qlen;
	return 0;
}

/* The port unreachable for UDP p, in place of p (reject_udp_quote, then the headers in front
 * of the quote): the hook's, as only making room differs. */
static __always_inline int hook_reject_udp(ctx_t *ctx, const struct pkt *p, __u32 flow_hash);

/* Answer p as a closed port would, out of the interface it came in on. Non-zero when there
 * is no answer to give (the kernel would give none, or the ICMP rate limit says no): the
 * packet is then dropped. */
static __always_inline int reject(ctx_t *ctx, const struct pkt *p)
{
	/* The flow hash first: TC's dissects the packet as it arrived. */
	__u32 flow_hash = p->is_ipv6 ? ctx_flow_hash(ctx, p) : 0;
	int len, csum;

	if (!ctx_unicast(ctx, p))
		return -1;
	csum = l4_csum_ok(ctx, p);
	if (csum == CSUM_BAD)
		return -1;
	if (p->proto == IPPROTO_TCP) {
		/* Keeps clang from reusing &ctx->data from the checksum check: the verifier
		 * refuses loads through a moved context pointer. */
		barrier_var(ctx);
		len = reject_tcp(ctx_data(ctx), ctx_end(ctx), p, flow_hash,
				 CTX_HAS_CSUM_STATE && csum == CSUM_PARTIAL);
		if (len < 0 || ctx_set_len(ctx, len))
			return -1;
	} else if (hook_reject_udp(ctx, p, flow_hash)) {
		return -1;
	}
	ctx_answer_done(ctx);
	return 0;
}

#endif /* BPFREDIR_REJECT_H */
