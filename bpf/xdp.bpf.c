// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP entry point: the ingress half of TC (public -> target, drop the hidden target or with
 * --reject answer it with XDP_TX, ICMP errors' quotes put back), run before the stack
 * allocates an skb. Same parser, policy, answers and accounting as TC; replies are still
 * rewritten by TC egress. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfredir.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/rewrite.h"
#include "lib/reject.h"
#include "lib/icmp.h"

/* Keys the IPv6 RST flow label's hash, as the kernel keys its own (XDP has no skb hash). */
static __u32 flow_key;

static __always_inline __u32 xdp_flow_hash(const struct pkt *p)
{
	const __u32 *s = (const void *)p->saddr, *d = (const void *)p->daddr;
	__u32 h, i;

	if (!flow_key)
		flow_key = bpf_get_prandom_u32() | 1;
	h = flow_key ^ ((__u32)p->sport << 16 | p->dport);
	for (i = 0; i < 4; i++) {
		h = (h ^ s[i]) * 0x9e3779b1;
		h = (h ^ d[i]) * 0x85ebca6b;
		h ^= h >> 15;
	}
	return h;
}

/* reject_l4_csum_ok() on the whole L4 segment, loaded with bpf_xdp_load_bytes. */
static __always_inline int xdp_l4_csum_ok(struct xdp_md *ctx, const struct pkt *p)
{
	__u32 ip_len = reject_ip_len((void *)(long)ctx->data, (void *)(long)ctx->data_end, p);
	__u32 zero = 0, l4_len;
	struct reject_quote *q;
	__u64 len;

	if (!ip_len)
		return CSUM_BAD;
	l4_len = ip_len - (p->l4_off - p->l3_off);
	if (l4_len > QUOTE_BUF)
		return CSUM_OK;
	q = bpf_map_lookup_elem(&reject_scratch, &zero);
	if (!q)
		return CSUM_BAD;
	quote_clear(q);
	len = l4_len;
	barrier_var(len);
	if (len < 8 || len > QUOTE_BUF || bpf_xdp_load_bytes(ctx, p->l4_off, q->buf, len))
		return CSUM_BAD;
	return reject_l4_csum_ok(q, l4_len, p);
}

/* The port unreachable for UDP p, grown in front of its IP header (bpf_xdp_adjust_head) and
 * cut where the quote ends; as tc_reject_udp. */
static __always_inline int xdp_reject_udp(struct xdp_md *ctx, const struct pkt *p)
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
	/* As in tc_reject_udp: bounded again right before the call, for 6.1's verifier. */
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

		icmp6_error_fill(&e, &eth, p, qlen, reject_icmp_ident(p, xdp_flow_hash(p)));
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

/* Answer p as a closed port would (reject.h), back out of the interface: 0 to XDP_TX it.
 * Only frames to a unicast MAC address: the kernel answers unicast only. */
static __always_inline int xdp_reject(struct xdp_md *ctx, const struct pkt *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	int len, csum;

	if ((void *)(eth + 1) > data_end || eth->h_dest[0] & 1)
		return -1;
	csum = xdp_l4_csum_ok(ctx, p);
	if (csum == CSUM_BAD)
		return -1;
	if (p->proto != IPPROTO_TCP)
		return xdp_reject_udp(ctx, p);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	len = reject_tcp(data, data_end, p, xdp_flow_hash(p), false);
	if (len < 0)
		return -1;
	return bpf_xdp_adjust_tail(ctx, len - (int)(data_end - data)) ? -1 : 0;
}

/* An ICMP error about a translated connection: its quote's port put back (icmp.h). */
static __always_inline bool xdp_icmp_error(struct xdp_md *ctx, const struct pkt *p, int parsed)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct icmp_quote q = {};
	__be16 port;

	if (parsed != PARSE_NO_PORTS || parse_icmp_error(data, data_end, p, &q))
		return false;
	port = icmp_error_policy(&q, true);
	if (!port || icmp_error_rewrite(data, data_end, &q, true, port))
		return false;
	stat_inc(STAT_ICMP_TRANSLATED);
	return true;
}

SEC("xdp")
int bpfredir_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt p = {};
	__be16 new_port = 0;
	int parsed = parse_packet(data, data_end, &p, true);
	int verdict;

	if (xdp_icmp_error(ctx, &p, parsed))
		return XDP_PASS;
	verdict = ingress_policy(ctx, ctx->ingress_ifindex, parsed, &p, &new_port);
	if (verdict == VERDICT_REWRITE && rewrite_port(data, data_end, &p, true, new_port))
		verdict = VERDICT_DROP_MALFORMED;
	if (verdict == VERDICT_REJECT && xdp_reject(ctx, &p))
		verdict = VERDICT_DROP_HIDDEN;
	account(&p, verdict, true, new_port);
	if (verdict == VERDICT_REJECT)
		return XDP_TX;
	return verdict == VERDICT_DROP_HIDDEN || verdict == VERDICT_DROP_MALFORMED ? XDP_DROP
										   : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
