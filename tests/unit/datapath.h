/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What test_datapath.c and test_flood.c share: the shape of a case (rules, steps before, the
 * packet under test, and what must follow), the packets and rules cases are written with,
 * and the checks of a packet's run and of the connection tables' exact contents.
 *
 * Every packet that goes on must get TC_PASS (TC_ACT_UNSPEC, TCX_NEXT), so programs after
 * ours still see it: a case's or step's retval 0 stands for that.
 */
#ifndef BPFREDIR_DATAPATH_H
#define BPFREDIR_DATAPATH_H

#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "bpfredir.h"
#include "core/ruleset.h"
#include "pktbuild.h"
#include "harness.h"
#include "fixture.h"

#define NO_STAT (-1)
#define MAX_RULES 2
#define MAX_STEPS 8
#define MAX_ENTRIES 6

#define PUB 8445
#define PUB2 8446
#define TGT 8443
#define TGT2 8447
#define TGT3 8448
#define UPUB 5353
#define UTGT 5354
#define CPORT 40000
#define CPORT2 40001

enum step_op {
	STEP_END,
	STEP_IN,	 /* pkt through ingress */
	STEP_OUT,	 /* pkt through egress */
	STEP_DEL_RULES,	 /* delete every entry of the live set, as `del` does one by one */
	STEP_SWAP,	 /* install a new set made of the case's swap rules, as `apply` does */
	STEP_SWAP2,	 /* the same with the case's swap2 rules */
	STEP_EMPTY_SLOT, /* leave the policy slot empty, as right after load */
	STEP_IFACE_OFF,	 /* take the interface out of the live set, as `apply` does */
	STEP_UNMARK,	 /* clear port_interest, which the loader never does */
	STEP_EVICT,	 /* empty flows and pending, as LRU eviction would */
};

struct step {
	enum step_op op;
	const struct pkt_spec *pkt;
	__u32 retval; /* the verdict pkt must get */
	__u16 port;   /* the port the rewrite must give it (dport in, sport out); 0: untouched */
};

enum table { T_END, T_FLOWS, T_PENDING };

/* One entry of flows or pending. Its key is the case's tuple: remote = the source of the
 * case's first ingress packet (a step or the packet under test) with port `remote` (0: that
 * packet's source port), local = that packet's destination, same family and protocol. */
struct entry {
	enum table table;
	__u8 dir;
	__u16 local, port; /* key's local port; value's port */
	__u16 remote;
	__u16 flags; /* value's flags (FLOW_F_CLOSING) */
};

struct tcase {
	const char *name;
	struct rule_spec rules[MAX_RULES]; /* public_port 0 ends the list */
	struct step pre[MAX_STEPS];
	struct rule_spec swap[MAX_RULES];  /* the set STEP_SWAP installs (may be empty) */
	struct rule_spec swap2[MAX_RULES]; /* the set STEP_SWAP2 installs */
	bool egress;
	struct pkt_spec pkt;
	__u16 exp_sport, exp_dport; /* ports in the expected output, 0 = unchanged */
	bool to_port_zero;	    /* the output's destination port is 0 (reject_later) */
	__u32 retval;
	int stat; /* the one counter expected to go up by one, or NO_STAT */
	/* Exactly what flows and pending hold afterwards, nothing more. */
	struct entry tables[MAX_ENTRIES];
	/* Give no port a counter slot: the datapath must not count anywhere then. */
	bool no_port_stats;
	/* The packet under test was received (skb_iif set), not made by this host: forwarded,
	 * or one of --reject's answers. */
	bool received;
};

/* clang-format off */
#define PKT(l3_, proto_, src_, dst_, sport_, dport_, flags_)                                  \
	.l3 = (l3_), .proto = (proto_), .src = (src_), .dst = (dst_), .sport = (sport_),     \
	.dport = (dport_), .tcp_flags = (flags_)
/* Client -> server on ingress; server -> DST_ on egress. */
#define TO_SERVER(l3_, proto_, dport_, flags_) \
	PKT(l3_, proto_, HOST_CLIENT, HOST_SERVER, CPORT, dport_, flags_)
#define TO_HOST(l3_, proto_, dst_, dport_, flags_) \
	PKT(l3_, proto_, HOST_CLIENT, dst_, CPORT, dport_, flags_)
#define REPLY_FROM(l3_, src_, dst_) PKT(l3_, IPPROTO_TCP, src_, dst_, TGT, CPORT, SYN | ACK)
#define REPLY(l3_, dst_) REPLY_FROM(l3_, HOST_SERVER, dst_)
/* The service (or another port of the server) answering the client. */
#define FROM_SERVER(l3_, proto_, sport_, flags_) \
	PKT(l3_, proto_, HOST_SERVER, HOST_CLIENT, sport_, CPORT, flags_)
#define SYN PKT_TCP_FLAG_SYN
#define ACK PKT_TCP_FLAG_ACK
#define RST PKT_TCP_FLAG_RST
#define PSH PKT_TCP_FLAG_PSH
#define FIN PKT_TCP_FLAG_FIN
#define TCP_RULE { .public_port = PUB, .target_port = TGT, .proto = IPPROTO_TCP }
#define UDP_RULE { .public_port = UPUB, .target_port = UTGT, .proto = IPPROTO_UDP }
/* The TCP rule with --no-hide. */
#define TCP_RULE_OPEN \
	{ .public_port = PUB, .target_port = TGT, .proto = IPPROTO_TCP, .no_hide = true }
#define UDP_RULE_OPEN \
	{ .public_port = UPUB, .target_port = UTGT, .proto = IPPROTO_UDP, .no_hide = true }
/* The rules with --reject. */
#define TCP_RULE_REJECT \
	{ .public_port = PUB, .target_port = TGT, .proto = IPPROTO_TCP, .reject = true }
#define UDP_RULE_REJECT \
	{ .public_port = UPUB, .target_port = UTGT, .proto = IPPROTO_UDP, .reject = true }
/* The TCP rule with --hide-local. */
#define TCP_RULE_HIDE_LOCAL \
	{ .public_port = PUB, .target_port = TGT, .proto = IPPROTO_TCP, .hide_local = true }
/* A second public port for the TCP target. */
#define TCP_RULE2 { .public_port = PUB2, .target_port = TGT, .proto = IPPROTO_TCP }
/* The public port moved to another target, and then to a third. */
#define TCP_RULE_MOVED { .public_port = PUB, .target_port = TGT2, .proto = IPPROTO_TCP }
#define TCP_RULE_MOVED2 { .public_port = PUB, .target_port = TGT3, .proto = IPPROTO_TCP }
/* Another public port to another target: what a swapped-in set holds. */
#define TCP_RULE_NEW { .public_port = PUB2, .target_port = TGT2, .proto = IPPROTO_TCP }
/* The TCP rule's port numbers, for UDP. */
#define UDP_SAME_PORTS_RULE { .public_port = PUB, .target_port = TGT, .proto = IPPROTO_UDP }
/* The TCP rule, narrowed to one destination address (as the maps store it). */
#define TCP_RULE_ADDR(addr_) \
	{ .public_port = PUB, .target_port = TGT, .proto = IPPROTO_TCP, .has_addr = true, \
	  .addr = addr_ }
/* HOST_STRANGER, in the forwarded prefix: 203.0.113.99 (v4-mapped) and 2001:db8:2::99. */
#define STRANGER4 { [10] = 0xff, [11] = 0xff, 203, 0, 113, 99 }
#define STRANGER6 { 0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 0x99 }
#define DSTOPTS8 60, 60, 60, 60, 60, 60, 60, 60

/* Steps. */
#define IN(pkt_, port_) { .op = STEP_IN, .pkt = &(pkt_), .port = (port_) }
#define IN_DROPPED(pkt_) { .op = STEP_IN, .pkt = &(pkt_), .retval = TC_ACT_SHOT }
#define OUT(pkt_, port_) { .op = STEP_OUT, .pkt = &(pkt_), .port = (port_) }
#define DEL_RULES { .op = STEP_DEL_RULES }
#define SWAP { .op = STEP_SWAP }
#define SWAP2 { .op = STEP_SWAP2 }
#define EMPTY_SLOT { .op = STEP_EMPTY_SLOT }
#define IFACE_OFF { .op = STEP_IFACE_OFF }
#define UNMARK { .op = STEP_UNMARK }
#define EVICT { .op = STEP_EVICT }
/* The client's SYN went through (and is pending), then the rule and its hidden entry were
 * deleted. */
#define AFTER_DELETE .pre = { IN(syn4, TGT), DEL_RULES }
/* A whole handshake and the service's first ACK: the connection is promoted to flows. */
#define ESTABLISH4 IN(syn4, TGT), OUT(synack4, PUB), IN(ack4, TGT), OUT(ackout4, PUB)
#define ESTABLISH6 IN(syn6, TGT), OUT(synack6, PUB), IN(ack6, TGT), OUT(ackout6, PUB)
#define AFTER_DELETE_ESTABLISHED .pre = { ESTABLISH4, DEL_RULES }

/* Table entries. */
#define FLOW(dir_, local_, port_) { T_FLOWS, FLOW_DIR_##dir_, (local_), (port_), 0, 0 }
#define PEND(dir_, local_, port_) { T_PENDING, FLOW_DIR_##dir_, (local_), (port_), 0, 0 }
#define PEND_FROM(rport_, dir_, local_, port_) \
	{ T_PENDING, FLOW_DIR_##dir_, (local_), (port_), (rport_), 0 }
/* A new connection through pub_: its OUT entry alone (policy.h, pending_record). */
#define PENDING_CONN(pub_, tgt_) PEND(OUT, tgt_, pub_)
#define CLOSING(dir_, local_, port_) \
	{ T_PENDING, FLOW_DIR_##dir_, (local_), (port_), 0, FLOW_F_CLOSING }
#define CLOSING_PAIR(pub_, tgt_) CLOSING(IN, pub_, tgt_), CLOSING(OUT, tgt_, pub_)
/* An established connection through pub_: its OUT entry alone (redir_flow_key). */
#define FLOWS_CONN(pub_, tgt_) FLOW(OUT, tgt_, pub_)
#define PENDING .tables = { PENDING_CONN(PUB, TGT) }
/* A UDP flow before the service answers: its OUT entry alone (policy.h, pending_record). */
#define UPENDING .tables = { PEND(OUT, UTGT, UPUB) }
#define ESTABLISHED .tables = { FLOWS_CONN(PUB, TGT) }
#define CLOSING_TABLES .tables = { CLOSING_PAIR(PUB, TGT) }

static const struct pkt_spec syn4 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) };
static const struct pkt_spec syn6 = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) };
static const struct pkt_spec ack4 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) };
static const struct pkt_spec ack6 = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, ACK) };
static const struct pkt_spec synack4 = { REPLY(ETH_P_IP, HOST_CLIENT) };
static const struct pkt_spec synack6 = { REPLY(ETH_P_IPV6, HOST_CLIENT) };
static const struct pkt_spec ackout4 = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) };
static const struct pkt_spec ackout6 = { FROM_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK) };
static const struct pkt_spec udp4 = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) };
static const struct pkt_spec udp6 = { TO_SERVER(ETH_P_IPV6, IPPROTO_UDP, UPUB, 0) };
static const struct pkt_spec udp_tgt4 = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0) };
static const struct pkt_spec udp_reply4 = { FROM_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0) };
/* The same client port straight to the target. */
static const struct pkt_spec syn4_tgt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) };
static const struct pkt_spec syn6_tgt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) };
static const struct pkt_spec syn4_pub2 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB2, SYN) };
static const struct pkt_spec synack4_pub2 = { REPLY(ETH_P_IP, HOST_CLIENT) };
/* Closing: the service's FIN and RST, the client's. */
static const struct pkt_spec finout4 = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, FIN | ACK) };
static const struct pkt_spec rstout4 = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, RST | ACK) };
static const struct pkt_spec fin4 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, FIN | ACK) };
static const struct pkt_spec rst4 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, RST) };
static const struct pkt_spec ack4_pub2 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB2, ACK) };
/* Another client port of the same client. */
static const struct pkt_spec syn4_c2 = {
	PKT(ETH_P_IP, IPPROTO_TCP, HOST_CLIENT, HOST_SERVER, CPORT2, PUB, SYN) };
static const struct pkt_spec syn4_stranger = {
	TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) };
static const struct pkt_spec synack4_stranger = {
	REPLY_FROM(ETH_P_IP, HOST_STRANGER, HOST_CLIENT) };
static const struct pkt_spec ack4_stranger = {
	TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, ACK) };
static const struct pkt_spec ackout4_stranger = {
	PKT(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, HOST_CLIENT, TGT, CPORT, ACK) };
static const struct pkt_spec syn6_stranger = {
	TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) };

/* clang-format on */

static const char *const table_names[] = {
	[T_FLOWS] = "flows",
	[T_PENDING] = "pending",
};

/* How many rules a case's list holds. */
static inline int rules_count(const struct rule_spec *rules)
{
	int n = 0;

	while (n < MAX_RULES && rules[n].public_port)
		n++;
	return n;
}

/* The verdict a case or step asks for: 0 means the packet goes on. */
static inline __u32 want_retval(__u32 retval)
{
	return retval ? retval : TC_PASS;
}

static inline bool frames_compare(const struct frame *exp, const __u8 *out, __u32 out_len)
{
	return ASSERT_EQ(out_len, exp->len, "output length") &&
	       ASSERT_MEMEQ(out, exp->buf, exp->len, "output");
}

/* Run SPEC through INGRESS (TC's or XDP's) or TC egress: it must get RETVAL and come out as
 * SPEC with PORT for its dport (ingress) or sport (egress), or unchanged when PORT is 0. */
static inline bool packet_check(struct fixture *f, enum hook ingress, bool egress,
				const struct pkt_spec *spec, __u16 port, __u32 retval)
{
	struct pkt_spec exp_spec = *spec;
	struct frame in, exp;
	__u8 out[PKT_MAX];
	__u32 out_len = sizeof(out), ret;

	if (port && egress)
		exp_spec.sport = port;
	else if (port)
		exp_spec.dport = port;
	pkt_build(&in, spec);
	pkt_build(&exp, &exp_spec);
	return ASSERT_OK(fixture_run(f, egress ? HOOK_TC_EG : ingress, in.buf, in.len, out,
				     &out_len, &ret),
			 "BPF_PROG_TEST_RUN") &&
	       ASSERT_EQ(ret, want_retval(retval), "retval") && frames_compare(&exp, out, out_len);
}

/* The mapped (::ffff:a.b.c.d for v4) address of host H, as the flow maps store it. */
static inline void flow_addr(__u8 *dst, enum pkt_host h, bool v6)
{
	pkt_host_mapped(h, v6, dst);
}

/* The packet whose tuple the case's entries are keyed by: its first ingress packet. */
static inline const struct pkt_spec *case_client(const struct tcase *c)
{
	const struct step *st;

	for (st = c->pre; st < c->pre + MAX_STEPS && st->op != STEP_END; st++)
		if (st->op == STEP_IN)
			return st->pkt;
	return c->egress ? NULL : &c->pkt;
}

static inline void entry_key(struct redir_flow_key *k, const struct pkt_spec *s,
			     const struct entry *e)
{
	memset(k, 0, sizeof(*k));
	flow_addr(k->remote_addr, s->src, s->l3 == ETH_P_IPV6);
	flow_addr(k->local_addr, s->dst, s->l3 == ETH_P_IPV6);
	k->remote_port = htons(e->remote ?: s->sport);
	k->local_port = htons(e->local);
	k->proto = s->proto;
	k->dir = e->dir;
}

static inline const char *dir_name(__u8 dir)
{
	return dir == FLOW_DIR_IN ? "IN" : dir == FLOW_DIR_OUT ? "OUT" : "?";
}

/* Is KEY one of the entries the case expects in table T? */
static inline bool entry_expected(const struct tcase *c, const struct pkt_spec *s, enum table t,
				  const struct redir_flow_key *key)
{
	const struct entry *e;

	for (e = c->tables; s && e < c->tables + MAX_ENTRIES && e->table; e++) {
		struct redir_flow_key k;

		entry_key(&k, s, e);
		if (e->table == t && !memcmp(&k, key, sizeof(k)))
			return true;
	}
	return false;
}

/* An entry of the table that the case does not expect, for table_check's report. */
struct unexpected {
	const struct tcase *c;
	const struct pkt_spec *s;
	enum table t;
	struct redir_flow_key key;
	struct redir_flow v;
};

static inline int find_unexpected(const struct redir_flow_key *k, const struct redir_flow *v,
				  void *ctx)
{
	struct unexpected *u = ctx;

	if (entry_expected(u->c, u->s, u->t, k))
		return 0;
	u->key = *k;
	u->v = *v;
	return 1;
}

/* Table T holds exactly the case's entries for it. */
static inline bool table_check(struct fixture *f, const struct tcase *c, enum table t)
{
	enum table other = t == T_FLOWS ? T_PENDING : T_FLOWS;
	const struct pkt_spec *s = case_client(c);
	struct unexpected u = { .c = c, .s = s, .t = t };
	struct redir_flow_key key;
	int want = 0, got, err;
	const struct entry *e;
	struct redir_flow v;
	char what[64];

	for (e = c->tables; e < c->tables + MAX_ENTRIES && e->table; e++) {
		if (e->table != t)
			continue;
		if (!ASSERT_OK_PTR(s, "bad case: entries, but no ingress packet to key them"))
			return false;
		want++;
		entry_key(&key, s, e);
		if (fixture_conn_get(f, t == T_PENDING, &key, &v))
			return test__fail("%s: %s %u (client port %u) missing%s", table_names[t],
					  dir_name(e->dir), e->local, ntohs(key.remote_port),
					  fixture_conn_get(f, other == T_PENDING, &key, &v) ? ""
					  : other == T_FLOWS ? " (flows has the key)"
							     : " (pending has the key)");
		snprintf(what, sizeof(what), "%s: %s %u: port", table_names[t], dir_name(e->dir),
			 e->local);
		if (!ASSERT_EQ(ntohs(v.port), e->port, what))
			return false;
		snprintf(what, sizeof(what), "%s: %s %u: flags", table_names[t], dir_name(e->dir),
			 e->local);
		if (!ASSERT_EQ(v.flags, e->flags, what))
			return false;
	}
	got = fixture_conn_count(f, t == T_PENDING);
	if (got == want)
		return true;
	if (got < 0)
		return test__fail("%s entries: %s", table_names[t], strerror(-got));
	/* Name one entry that should not be there. */
	err = fixture_conn_walk(f, t == T_PENDING, find_unexpected, &u);
	if (err == 1)
		return test__fail("%s entries: expected %d, has more: %s %u -> %u "
				  "(client port %u)",
				  table_names[t], want, dir_name(u.key.dir),
				  ntohs(u.key.local_port), ntohs(u.v.port),
				  ntohs(u.key.remote_port));
	return test__fail("%s entries: expected %d got %d", table_names[t], want, got);
}

/* flows and pending hold exactly the case's entries. */
static inline bool tables_check(struct fixture *f, const struct tcase *c)
{
	return table_check(f, c, T_FLOWS) && table_check(f, c, T_PENDING);
}

#endif /* BPFREDIR_DATAPATH_H */
