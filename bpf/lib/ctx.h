/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What TC and XDP spell differently, under one set of names, so the glue over them (hook.h,
 * icmp_error, l4_csum_ok, reject) is written once. The entry file picks its hook: it
 * defines BPFREDIR_CTX_XDP before its includes for XDP, and nothing for TC.
 *
 * Everything here is __always_inline or a macro: each object compiles only its own hook's
 * branch, and the instructions are those the hook would have written by hand.
 */
#ifndef BPFREDIR_CTX_H
#define BPFREDIR_CTX_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "proto.h"
#include "parse.h"

#ifdef BPFREDIR_CTX_XDP

/* A macro, not a typedef: vmlinux.h makes context accesses CO-RE relocations, which name
 * the type they go through, and the kernel's BTF has no ctx_t. */
#define ctx_t struct xdp_md

#define CTX_PASS XDP_PASS
#define CTX_DROP XDP_DROP
/* Frames of an L3 device (no Ethernet header) reach only TC. */
#define CTX_HAS_L3_FRAMES 0
/* No checksum state comes with the frame: nothing is CHECKSUM_PARTIAL or verified. */
#define CTX_HAS_CSUM_STATE 0

#define ctx_load(c, off, to, len) bpf_xdp_load_bytes(c, off, to, len)
#define ctx_store(c, off, from, len) bpf_xdp_store_bytes(c, off, from, len)

static __always_inline __u32 ctx_ifindex(const ctx_t *ctx)
{
	return ctx->ingress_ifindex;
}

/* The frame's length. */
static __always_inline __u64 ctx_len(ctx_t *ctx)
{
	return ctx->data_end - ctx->data;
}

/* Nothing of an XDP frame lies outside data/data_end: there is never more to pull in. */
static __always_inline int ctx_pull(ctx_t *ctx, __u64 seen)
{
	return 1;
}

/* Keys the IPv6 RST flow label's hash, as the kernel keys its own (XDP has no skb hash). */
static __u32 flow_key;

/* p's flow hash, for an IPv6 answer's flow label. */
static __always_inline __u32 ctx_flow_hash(ctx_t *ctx, const struct pkt *p)
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

/* Was p sent to this host alone at L2? The kernel answers unicast only. */
static __always_inline bool ctx_unicast(ctx_t *ctx, const struct pkt *p)
{
	return p->l2_dest == L2_HOST;
}

/* Whom the frame was for at L2: what parse_packet read from its destination address. */
static __always_inline __u8 ctx_l2_dest(ctx_t *ctx, const struct pkt *p)
{
	return p->l2_dest;
}

/* The IP version of an L3 device's packet; XDP sees none. */
static __always_inline __be16 ctx_l3_proto(ctx_t *ctx)
{
	return 0;
}

/* Cut (or grow) the frame to len bytes. */
static __always_inline int ctx_set_len(ctx_t *ctx, __u32 len)
{
	/* The frame's length as a number of its own: clang would add len to the packet
	 * pointer, which the verifier refuses for the end of the packet, and 6.1's for a
	 * value whose bounds it lost. */
	__u32 frame_len = ctx->data_end - ctx->data;

	barrier_var(frame_len);
	return bpf_xdp_adjust_tail(ctx, (int)len - (int)frame_len);
}

/* Has the device checked the frame's L4 checksum? XDP is not told. */
static __always_inline bool ctx_csum_verified(ctx_t *ctx)
{
	return false;
}

/* The answer is written: nothing to tell the stack, which has not seen the frame. */
static __always_inline void ctx_answer_done(ctx_t *ctx)
{
}

/* The answer goes back out where the packet came in. */
static __always_inline int ctx_bounce(ctx_t *ctx)
{
	return XDP_TX;
}

#else /* TC */

#define ctx_t struct __sk_buff

/* What we return for every packet we let go on, rewritten or not: TC_ACT_UNSPEC, which is
 * TCX_NEXT in a tcx chain and "no verdict, on to the next filter" for a direct-action
 * cls_bpf filter, so the programs and filters after ours (firewalls, shapers, mirroring)
 * still see every packet. TC_ACT_OK would be TCX_PASS, which ends both chains here. */
#define CTX_PASS TC_ACT_UNSPEC
#define CTX_DROP TC_ACT_SHOT
#define CTX_HAS_L3_FRAMES 1
#define CTX_HAS_CSUM_STATE 1

/* Enough for two VLAN tags, IPv6 with a few extension headers and a TCP header. */
#define TC_PULL_LEN 256

#define ctx_load(c, off, to, len) bpf_skb_load_bytes(c, off, to, len)
/* CHECKSUM_COMPLETE's sum kept right for the bytes the store changes. */
#define ctx_store(c, off, from, len) bpf_skb_store_bytes(c, off, from, len, BPF_F_RECOMPUTE_CSUM)

static __always_inline __u32 ctx_ifindex(const ctx_t *ctx)
{
	return ctx->ifindex;
}

/* The packet's length, linear or not. */
static __always_inline __u64 ctx_len(ctx_t *ctx)
{
	return ctx->len;
}

/* Headers usually sit in the linear area; when a look at them came up short, pull (once)
 * what they could span. seen: what the look saw (data_end - data). 0 when it pulled, so a
 * second look may see more; 1 when the whole packet was seen already; -1 when the pull
 * failed. */
static __always_inline int ctx_pull(ctx_t *ctx, __u64 seen)
{
	if (seen >= ctx->len)
		return 1;
	return bpf_skb_pull_data(ctx, ctx->len < TC_PULL_LEN ? ctx->len : TC_PULL_LEN) ? -1 : 0;
}

/* The packet's own flow hash (symmetric, keyed at boot): see reject_tcp. Called before the
 * packet changes, as it dissects the packet as it is. */
static __always_inline __u32 ctx_flow_hash(ctx_t *ctx, const struct pkt *p)
{
	return bpf_get_hash_recalc(ctx);
}

/* Whom the frame was for at L2, as the stack worked it out (eth_type_trans): the kernel
 * answers PACKET_HOST only (tcp_v4_rcv, icmp_send). */
static __always_inline bool ctx_unicast(ctx_t *ctx, const struct pkt *p)
{
	return ctx->pkt_type == PACKET_HOST;
}

/* Whom the frame was sent to at L2, as the stack worked it out. */
static __always_inline __u8 ctx_l2_dest(ctx_t *ctx, const struct pkt *p)
{
	switch (ctx->pkt_type) {
	case PACKET_BROADCAST:
	case PACKET_MULTICAST:
		return L2_GROUP;
	default:
		return L2_HOST;
	}
}

/* Which IP an L3 device's packet (tun, WireGuard, IP tunnels, PPP) is: no Ethernet header
 * says so. */
static __always_inline __be16 ctx_l3_proto(ctx_t *ctx)
{
	return ctx->protocol;
}

static __always_inline int ctx_set_len(ctx_t *ctx, __u32 len)
{
	return bpf_skb_change_tail(ctx, len, 0);
}

/* The skb's ip_summed, CHECKSUM_NONE (0) to CHECKSUM_PARTIAL (3), read through
 * bpf_cast_to_kern_ctx (6.2 and later), or -1 where there is none (6.1): libbpf resolves the
 * weak kfunc to nothing there, and the verifier drops the branch that calls it. */
#define SKB_CHECKSUM_COMPLETE 2
#define SKB_CHECKSUM_PARTIAL 3

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

static __always_inline int ctx_ip_summed(ctx_t *ctx)
{
	struct sk_buff *skb;

	if (!bpf_ksym_exists(bpf_cast_to_kern_ctx))
		return -1;
	skb = bpf_cast_to_kern_ctx(ctx);
	return BPF_CORE_READ_BITFIELD(skb, ip_summed);
}

/* Has the device or GRO checked the L4 checksum (CHECKSUM_UNNECESSARY)? */
static __always_inline bool ctx_csum_verified(ctx_t *ctx)
{
	return bpf_csum_level(ctx, BPF_CSUM_LEVEL_QUERY) >= 0;
}

/* What the device verified was the packet, not our answer: let the peer check it. */
static __always_inline void ctx_answer_done(ctx_t *ctx)
{
	bpf_csum_level(ctx, BPF_CSUM_LEVEL_RESET);
}

/* The answer goes back out of the interface the packet came in on. */
static __always_inline int ctx_bounce(ctx_t *ctx)
{
	return bpf_redirect(ctx->ifindex, 0);
}

#endif /* BPFREDIR_CTX_XDP */

static __always_inline void *ctx_data(const ctx_t *ctx)
{
	return (void *)(long)ctx->data;
}

static __always_inline void *ctx_end(const ctx_t *ctx)
{
	return (void *)(long)ctx->data_end;
}

#endif /* BPFREDIR_CTX_H */
