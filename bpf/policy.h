/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one redirect policy, shared by every packet hook: given a parsed packet, decide
 * whether to rewrite a port, drop, or pass. Hooks only apply the decision.
 */
#ifndef BPFREDIR_POLICY_H
#define BPFREDIR_POLICY_H

#include "maps.h"
#include "parse.h"

enum redir_verdict {
	VERDICT_PASS,
	VERDICT_REWRITE, /* ingress: dport := port; egress: sport := port */
	VERDICT_DROP_HIDDEN,
	VERDICT_DROP_MALFORMED,
};

static __always_inline void flow_key_fill(struct redir_flow_key *k, const __u8 *remote_addr,
					  const __u8 *local_addr, __be16 remote_port,
					  __be16 local_port, __u8 proto, __u8 dir)
{
	__builtin_memcpy(k->remote_addr, remote_addr, BPFREDIR_ADDR_LEN);
	__builtin_memcpy(k->local_addr, local_addr, BPFREDIR_ADDR_LEN);
	k->remote_port = remote_port;
	k->local_port = local_port;
	k->proto = proto;
	k->dir = dir;
	k->pad[0] = 0;
	k->pad[1] = 0;
}

/* Remember both directions of a translated connection: IN keeps the connection on its
 * target after its rule is deleted, OUT lets the reply be rewritten without guessing which
 * public port (several may share a target) the client used. */
static __always_inline void flow_record(const struct pkt *p, __be16 target_port)
{
	struct redir_flow_key k;
	struct redir_flow v = {};

	flow_key_fill(&k, p->saddr, p->daddr, p->sport, p->dport, p->proto, FLOW_DIR_IN);
	v.port = target_port;
	bpf_map_update_elem(&flows, &k, &v, BPF_ANY);

	flow_key_fill(&k, p->saddr, p->daddr, p->sport, target_port, p->proto, FLOW_DIR_OUT);
	v.port = p->dport;
	bpf_map_update_elem(&flows, &k, &v, BPF_ANY);
}

static __always_inline int ingress_policy(int parsed, const struct pkt *p, __be16 *new_dport)
{
	struct redir_rule_key rk = {};
	struct redir_hidden_key hk = {};
	struct redir_flow_key fk;
	struct redir_rule *rule;
	struct redir_flow *flow;
	bool new_connection;

	if (parsed == PARSE_MALFORMED)
		return VERDICT_DROP_MALFORMED;
	if (parsed != PARSE_PORTS)
		return VERDICT_PASS;

	/* A fresh SYN starts a new connection, which only a live rule may translate: a stale
	 * flow with the same tuple must not resurrect a deleted rule. */
	new_connection = p->proto == IPPROTO_TCP &&
			 (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	if (!new_connection) {
		flow_key_fill(&fk, p->saddr, p->daddr, p->sport, p->dport, p->proto, FLOW_DIR_IN);
		flow = bpf_map_lookup_elem(&flows, &fk);
		if (flow) {
			*new_dport = flow->port;
			return VERDICT_REWRITE;
		}
	}

	rk.public_port = p->dport;
	rk.proto = p->proto;
	rule = bpf_map_lookup_elem(&rules, &rk);
	if (rule) {
		*new_dport = rule->target_port;
		flow_record(p, rule->target_port);
		return VERDICT_REWRITE;
	}

	hk.port = p->dport;
	hk.proto = p->proto;
	if (bpf_map_lookup_elem(&hidden, &hk))
		return VERDICT_DROP_HIDDEN;
	return VERDICT_PASS;
}

static __always_inline int egress_policy(int parsed, const struct pkt *p, __be16 *new_sport)
{
	struct redir_flow_key fk;
	struct redir_flow *flow;

	if (parsed != PARSE_PORTS)
		return VERDICT_PASS;
	flow_key_fill(&fk, p->daddr, p->saddr, p->dport, p->sport, p->proto, FLOW_DIR_OUT);
	flow = bpf_map_lookup_elem(&flows, &fk);
	if (!flow)
		return VERDICT_PASS;
	*new_sport = flow->port;
	return VERDICT_REWRITE;
}

#endif /* BPFREDIR_POLICY_H */
