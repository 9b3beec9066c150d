/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every packet hook does with a packet, written once over ctx.h: parse it (pulling
 * once when TC's linear area cuts the headers short), put an ICMP error's quote right, ask
 * the policy, and carry out its verdict. The entry file supplies the two steps that differ
 * by more than a name: the port rewrite (hook_rewrite_port: skb helpers for TC, direct
 * access for XDP) and making room for a port unreachable (hook_reject_udp, reject.h).
 */
#ifndef BPFREDIR_HOOK_H
#define BPFREDIR_HOOK_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ctx.h"
#include "parse.h"
#include "policy.h"
#include "reject.h"
#include "icmp.h"
#include "frag.h"

/* Put new_port in p's destination (dest) or source port, checksum updated: 0, or non-zero
 * when the packet refuses it. */
static __always_inline int hook_rewrite_port(ctx_t *ctx, const struct pkt *p, bool dest,
					     __be16 new_port);

/* An Ethernet frame, or (l3) the packet of an L3 device, which starts at its IP header. */
static __always_inline int hook_parse_once(ctx_t *ctx, struct pkt *p, bool ingress, bool l3)
{
	void *data = ctx_data(ctx);
	void *data_end = ctx_end(ctx);

	if (CTX_HAS_L3_FRAMES && l3)
		return parse_l3_packet(data, data_end, ctx_l3_proto(ctx), p);
	return parse_packet(data, data_end, p, ingress);
}

/* Headers usually sit in the linear area; when they do not, the parser sees a truncated
 * packet, so pull once and look again rather than pulling every packet. */
static __always_inline int hook_parse(ctx_t *ctx, struct pkt *p, bool ingress, bool l3)
{
	int parsed = hook_parse_once(ctx, p, ingress, l3);
	int pulled;

	if (parsed != PARSE_MALFORMED && parsed != PARSE_PORTS_ONLY)
		return parsed;
	pulled = ctx_pull(ctx, ctx->data_end - ctx->data);
	if (pulled)
		return pulled < 0 ? PARSE_MALFORMED : parsed;
	/* Whatever the first look left is looked at again: starting from nothing lets the
	 * verifier check the second look once, not once per way the first one ended. */
	__builtin_memset(p, 0, sizeof(*p));
	return hook_parse_once(ctx, p, ingress, l3);
}

/* What the hook returns for a verdict carried out. */
static __always_inline int verdict_action(ctx_t *ctx, int verdict)
{
	if (verdict == VERDICT_REJECT)
		return ctx_bounce(ctx);
	return verdict == VERDICT_DROP_HIDDEN || verdict == VERDICT_DROP_MALFORMED ||
			       verdict == VERDICT_DROP_UNTRACKED
		       ? CTX_DROP
		       : CTX_PASS;
}

/* The port of a first fragment whose checksum lies in a later one (frag.h): the port alone,
 * and the checksum's change left for that fragment. */
static __always_inline int hook_rewrite_head(ctx_t *ctx, const struct pkt *p, __be16 new_port)
{
	if (ctx_store(ctx, p->l4_off + offsetof(struct tcphdr, dest), &new_port, sizeof(new_port)))
		return -1;
	barrier_var(ctx);
	return frag_head_record(ctx_data(ctx), ctx_end(ctx), p, p->dport, new_port);
}

static __always_inline int hook_rewrite(ctx_t *ctx, const struct pkt *p, bool ingress,
					__be16 new_port)
{
	barrier_var(ctx);
	if (ingress && frag_split_csum(p, ctx_end(ctx), ctx_data(ctx)))
		return hook_rewrite_head(ctx, p, new_port);
	return hook_rewrite_port(ctx, p, ingress, new_port);
}

/* Carry out the policy's verdict; a rewrite the packet refuses becomes a malformed drop, a
 * reject with no answer to give a hidden drop. */
static __always_inline int hook_apply(ctx_t *ctx, const struct pkt *p, int verdict, bool ingress,
				      __be16 new_port)
{
	if (verdict == VERDICT_REWRITE && hook_rewrite(ctx, p, ingress, new_port))
		verdict = VERDICT_DROP_MALFORMED;
	if (verdict == VERDICT_REJECT_LATER && hook_rewrite(ctx, p, ingress, new_port))
		verdict = VERDICT_DROP_HIDDEN;
	if (verdict == VERDICT_REJECT && reject(ctx, p))
		verdict = VERDICT_DROP_HIDDEN;
	account(p, verdict, ingress, new_port);
	return verdict_action(ctx, verdict);
}

static __always_inline int hook_ingress(ctx_t *ctx, bool l3)
{
	struct pkt p = {};
	__be16 new_port = 0;
	int parsed = hook_parse(ctx, &p, true, l3);
	int verdict;

	if (icmp_error(ctx, &p, parsed, true))
		return CTX_PASS;
	if (parsed == PARSE_FRAG_TAIL) {
		frag_tail_fix(ctx, &p);
		account(&p, VERDICT_PASS, true, 0);
		return CTX_PASS;
	}
	p.l2_dest = ctx_l2_dest(ctx, &p);
	verdict = ingress_policy(ctx, ctx_ifindex(ctx), parsed, &p, &new_port);
	return hook_apply(ctx, &p, verdict, true, new_port);
}

#endif /* BPFREDIR_HOOK_H */
