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
static __always_inline int hook_reject_udp(struct xdp_md *ctx, const struct pkt *p, __u32 flow_hash)
{
	void *data = ctx_data(ctx), *data_end = ctx_end(ctx);
	struct ethhdr eth, *out;
	struct iphdr *ip = data + sizeof(eth);
	__u32 qlen, sum, hdrs, total;
	__u8 tos;

	if (p->l3_off != sizeof(eth) || (void *)(ip + 1) > data_end)
		return -1;
	__builtin_memcpy(&eth, data, sizeof(eth));
	tos = ip->tos;
	if (reject_udp_quote(ctx, data, data_end, p, sizeof(eth), &qlen, &sum))
		return -1;
	hdrs = p->is_ipv6 ? ICMP6_HDRS : ICMP4_HDRS;
	total = sizeof(eth) + hdrs + qlen;
	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		return -1;
	if (ctx_set_len(ctx, total))
		return -1;
	data = ctx_data(ctx);
	data_end = ctx_end(ctx);
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
