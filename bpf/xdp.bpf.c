// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP entry point: the ingress half of TC (public -> target, drop the hidden target or with
 * --reject answer it with XDP_TX, ICMP errors' quotes put back), run before the stack
 * allocates an skb. Same parser, policy, answers and accounting as TC; replies are still
 * rewritten by TC egress. */
#define BPFREDIR_CTX_XDP
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfredir.h"
#include "lib/ctx.h"
#include "lib/hook.h"
#include "lib/rewrite.h"

/* The port unreachable for UDP p, grown in front of its IP header (bpf_xdp_adjust_head) and
 * cut where the quote ends; as TC's hook_reject_udp. */
static __always_inline int hook_reject_udp(struct xdp_md *ctx, const struct pkt *p,
					   __u32 flow_hash)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr eth, *out;
	struct iphdr *ip = data + sizeof(eth);
	struct reject_quote *q;
	__u32 zero = 0, qlen = 0, sum, hdrs, total, frame_len;
	__u8 tos;
	int ip_len;
	__u64 len;

	if (p->l3_off != sizeof(eth) || (void *)(ip + 1) > data_end)
		return -1;
	__builtin_memcpy(&eth, data, sizeof(eth));
	tos = ip->tos;
	ip_len = reject_udp_quote_len(data, data_end, p, &qlen);
	if (ip_len < 0 || ip_len > data_end - data - sizeof(eth) || qlen == 0 ||
	    qlen > ICMP6_QUOTE_MAX)
		return -1;
	q = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!q)
		return -1;
	quote_clear(q);
	/* As in TC: bounded again right before the call, for 6.1's verifier. */
	len = qlen;
	barrier_var(len);
	if (len < QUOTE_MIN || len > ICMP6_QUOTE_MAX ||
	    bpf_xdp_load_bytes(ctx, sizeof(eth), q->buf, len))
		return -1;
	sum = quote_sum(q, qlen);
	if (!reject_icmp_allowed(p->saddr, p->is_ipv6))
		return -1;
	hdrs = p->is_ipv6 ? ICMP6_HDRS : ICMP4_HDRS;
	total = sizeof(eth) + hdrs + qlen;
	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		return -1;
	/* The frame's length as a number of its own: clang would add total to the packet
	 * pointer, which 6.1's verifier refuses for a value whose bounds it lost. */
	frame_len = ctx->data_end - ctx->data;
	barrier_var(frame_len);
	if (bpf_xdp_adjust_tail(ctx, (int)total - (int)frame_len))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	out = data;
	if (p->is_ipv6) {
		struct reject_icmp6 e = {};

		icmp6_error_fill(&e, &eth, p, qlen, reject_icmp_ident(p, flow_hash));
		icmp6_error_csum(&e, qlen, sum);
		if (data + REJECT_HDRS_LEN(e) > data_end)
			return -1;
		__builtin_memcpy(out, &e.eth, REJECT_HDRS_LEN(e));
	} else {
		struct reject_icmp4 e = {};

		icmp4_error_fill(&e, &eth, p, tos, qlen, reject_icmp_ident(p, 0));
		icmp4_error_csum(&e, sum);
		if (data + REJECT_HDRS_LEN(e) > data_end)
			return -1;
		__builtin_memcpy(out, &e.eth, REJECT_HDRS_LEN(e));
	}
	return 0;
}

/* Direct access: XDP has no skb checksum state to keep (rewrite.h). */
static __always_inline int hook_rewrite_port(struct xdp_md *ctx, const struct pkt *p, bool dest,
					     __be16 new_port)
{
	return rewrite_port(ctx_data(ctx), ctx_end(ctx), p, dest, new_port);
}

SEC("xdp")
int bpfredir_xdp(struct xdp_md *ctx)
{
	return hook_ingress(ctx, false);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
