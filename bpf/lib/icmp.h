/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors about a translated connection carry the ports as the wire saw them, which
 * the socket on the other side of the translation does not know. Path MTU discovery needs
 * them right: a router's "fragmentation needed" / "packet too big" quotes our reply with
 * its source port already rewritten to the public port, and the kernel looks the socket up
 * by the quoted ports.
 *
 * - ingress: an error quoting a packet this host sent from the public port (the reply,
 *   after egress rewrote it) gets the quote's source port put back to the target, found as
 *   the client's own packets find it (client_conn_target: remote = quote's destination,
 *   public port = quote's source);
 * - egress: an error this host sends quoting a packet it received on the target port (after
 *   ingress rewrote it) gets the quote's destination port put back to the public port,
 *   through the OUT entry.
 *
 * The quote's L4 checksum (when the quote holds it and, for UDP, it is not 0) and then the
 * ICMP checksum are updated incrementally (RFC 1624). The ICMPv6 pseudo-header covers only
 * the outer addresses, which do not change. Nothing of the quote is trusted: its IP header
 * length, extension headers and ports are read within data_end only; a quote too short to
 * hold the ports is left alone (RFC 792 promises 8 bytes of L4 header, which hold them).
 * Plain data/data_end work, over ctx.h's names where the hook shows, so TC and XDP share it.
 */
#ifndef BPFREDIR_ICMP_H
#define BPFREDIR_ICMP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "proto.h"
#include "csum.h"
#include "ctx.h"
#include "policy.h"

#define ICMP_QUOTE_EXT_HDRS 4

/* Where the quoted packet's ports and checksum are, and its flow as seen in the quote. */
struct icmp_quote {
	struct pkt inner;  /* saddr, daddr, sport, dport, proto, is_ipv6 of the quote */
	__u32 inner_l4;	   /* offset of the quote's TCP/UDP header */
	__u32 l4_csum_off; /* offset of its checksum, 0 when the quote lacks it or UDP sent 0 */
	__u32 icmp_csum_off;
};

static __always_inline bool icmp_is_error(__u8 type, bool v6)
{
	if (v6)
		return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
		       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

static __always_inline int icmp_quote_ports(void *l4, void *data, void *data_end, __u8 proto,
					    struct icmp_quote *q)
{
	__be16 *ports = l4;
	__u32 csum_end = proto == IPPROTO_TCP ? TCP_CSUM_OFF + 2 : UDP_CSUM_OFF + 2;

	/* Every offset kept stays under L4_OFF_MASK, so masking never changes it. */
	if ((void *)(ports + 2) > data_end || l4 - data > L4_OFF_MASK - 32)
		return -1;
	q->inner.sport = ports[0];
	q->inner.dport = ports[1];
	q->inner_l4 = l4 - data;
	q->l4_csum_off = 0;
	if (l4 + csum_end <= data_end) {
		__be16 *csum = l4 + csum_end - 2;

		if (proto == IPPROTO_TCP || *csum)
			q->l4_csum_off = (void *)csum - data;
	}
	return 0;
}

/* Parse the error's quote; outer is the ICMP packet as parse_packet left it. 0 when it is an
 * error quoting a TCP/UDP packet (or first fragment) whose ports are in reach. */
static __always_inline int parse_icmp_error(void *data, void *data_end, const struct pkt *outer,
					    struct icmp_quote *q)
{
	void *icmp = data + (outer->l4_off & L4_OFF_MASK);
	void *cursor = icmp + 8, *l4;
	__u8 type;
	int l3;

	if (outer->l4_off > L4_OFF_MASK || cursor > data_end)
		return -1;
	if (outer->proto != (outer->is_ipv6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP))
		return -1;
	type = *(__u8 *)icmp;
	if (!icmp_is_error(type, outer->is_ipv6))
		return -1;
	q->icmp_csum_off = icmp + 2 - data;
	if (outer->is_ipv6)
		l3 = l3_parse_v6(cursor, data, data_end, &q->inner, &l4, ICMP_QUOTE_EXT_HDRS, false,
				 false);
	else
		l3 = l3_parse_v4(cursor, data, data_end, &q->inner, &l4, false, false);
	if (l3 != PARSE_L4)
		return -1;
	return icmp_quote_ports(l4, data, data_end, q->inner.proto, q);
}

/* The port the quote should carry, or 0 when no connection of ours is quoted. ingress: the
 * error came in, about a packet we sent; else it goes out, about one we received. */
static __always_inline __be16 icmp_error_policy(const struct icmp_quote *q, bool ingress)
{
	const struct pkt *in = &q->inner;
	struct redir_flow_key fk;
	struct redir_flow flow;

	if (ingress)
		return client_conn_target(in->daddr, in->saddr, in->dport, in->sport, in->proto);
	flow_key_fill(&fk, in->saddr, in->daddr, in->sport, in->dport, in->proto, FLOW_DIR_OUT);
	return flow_lookup(&fk, &flow, NULL) ? flow.port : 0;
}

/* Put new_port in the quote (its source port on ingress, destination on egress) and update
 * both checksums. */
static __always_inline int icmp_error_rewrite(void *data, void *data_end,
					      const struct icmp_quote *q, bool ingress,
					      __be16 new_port)
{
	__u32 port_off = q->inner_l4 + (ingress ? 0 : 2);
	__be16 *port = data + (port_off & L4_OFF_MASK);
	__u16 *icmp_csum = data + (q->icmp_csum_off & L4_OFF_MASK);
	__be16 old_port;

	if ((void *)(port + 1) > data_end || (void *)(icmp_csum + 1) > data_end)
		return -1;
	old_port = *port;
	*port = new_port;
	*icmp_csum = csum_replace16(*icmp_csum, old_port, new_port);
	if (q->l4_csum_off) {
		__u16 *l4_csum = data + (q->l4_csum_off & L4_OFF_MASK);
		__u16 old_csum, new_csum;

		if ((void *)(l4_csum + 1) > data_end)
			return -1;
		old_csum = *l4_csum;
		new_csum = csum_replace16(old_csum, old_port, new_port);
		/* UDP sends a sum of 0 as 0xffff: 0 means "no checksum". */
		if (q->inner.proto == IPPROTO_UDP && !new_csum)
			new_csum = 0xffff;
		*l4_csum = new_csum;
		*icmp_csum = csum_replace16(*icmp_csum, old_csum, new_csum);
	}
	return 0;
}

/* An ICMP error about a translated connection gets its quote's port put right, in place;
 * true when it did. ingress: the error came in, else it goes out. */
static __always_inline bool icmp_error(ctx_t *ctx, const struct pkt *p, int parsed, bool ingress)
{
	struct icmp_quote q = {};
	void *data, *data_end;
	__be16 port;

	if (parsed != PARSE_NO_PORTS || (p->proto != IPPROTO_ICMP && p->proto != IPPROTO_ICMPV6))
		return false;
	/* Keeps clang from reusing &ctx->data from the parse: the verifier refuses loads
	 * through a moved context pointer. */
	barrier_var(ctx);
	data = ctx_data(ctx);
	data_end = ctx_end(ctx);
	if (parse_icmp_error(data, data_end, p, &q)) {
		/* The quote may lie past the linear area: pull once and look again. */
		if (ctx_pull(ctx, data_end - data))
			return false;
		data = ctx_data(ctx);
		data_end = ctx_end(ctx);
		if (parse_icmp_error(data, data_end, p, &q))
			return false;
	}
	port = icmp_error_policy(&q, ingress);
	if (!port || icmp_error_rewrite(data, data_end, &q, ingress, port))
		return false;
	stat_inc(STAT_ICMP_TRANSLATED);
	return true;
}

#endif /* BPFREDIR_ICMP_H */
