// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Table-driven test of the TC and XDP programs through BPF_PROG_TEST_RUN. Each case builds a rule
 * set (a hash map of policy entries, made and filled the way the loader does) and installs
 * it in the policy map's slot, runs a few steps (packets through ingress or egress, each
 * checked byte for byte; deleting the rules; swapping in a second set; emptying the slot),
 * then runs one frame through ingress or egress and checks the verdict, the output frame
 * byte for byte against one built independently, the TCP/UDP checksum by full
 * recomputation, the stats and port_stats deltas, and the exact contents of the flows and
 * pending maps.
 *
 * The binary runs in network namespaces of its own (netns.h): the first table in one that
 * does not forward, where this host's addresses are those the local-address map holds (the
 * server's, as the loader records them); the scope table in one that forwards the
 * stranger's prefixes (and the tunneled host's, through encapsulating routes), where only
 * the server's addresses are local; the default-route table in one that forwards everything
 * else through a default route. A last test loads a skeleton with a small pending map and
 * floods it with spoofed SYNs.
 *
 * Every packet that goes on must get TC_PASS (TC_ACT_UNSPEC, TCX_NEXT), so programs after
 * ours still see it: a case's retval 0 stands for that.
 *
 * The tables run twice: with TC ingress, then with the XDP program in its place (as in
 * `load --mode xdp`, where egress stays TC). XDP verdicts are read as TC's (XDP_PASS as
 * TC_PASS, XDP_DROP as TC_ACT_SHOT), so the same cases check the same bytes, checksums,
 * counters and tables; cases without any ingress packet, and those only TC can tell apart
 * (frames for another host's MAC address), run with TC only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "tc.skel.h"
#include "xdp.skel.h"
#include "pktbuild.h"
#include "netns.h"
#include "testutil.h"

#define TC_ACT_SHOT 2
#define NO_STAT (-1)
/* BPF_PROG_TEST_RUN without an ifindex runs the skb on loopback, which is 1 in a netns. */
#define LO_IFINDEX 1
#define MAX_RULES 2
#define MAX_STEPS 8
#define MAX_ENTRIES 6

#define PUB 8445
#define PUB2 8446
#define TGT 8443
#define TGT2 8447
#define UPUB 5353
#define UTGT 5354
#define CPORT 40000
#define CPORT2 40001

struct rule_spec {
	__u16 pub, tgt; /* host order; pub == 0 ends the list */
	__u8 proto;
	bool hide, hide_local;
	const char *addr; /* REDIR_F_ADDR: only packets to this address (v4 or v6) */
};

enum step_op {
	STEP_END,
	STEP_IN,	 /* pkt through ingress */
	STEP_OUT,	 /* pkt through egress */
	STEP_DEL_RULES,	 /* delete every entry of the live set, as `del` does one by one */
	STEP_SWAP,	 /* install a new set made of the case's swap rules, as `apply` does */
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
	struct rule_spec rules[MAX_RULES];
	struct step pre[MAX_STEPS];
	struct rule_spec swap[MAX_RULES]; /* the set STEP_SWAP installs (may be empty) */
	bool egress;
	struct pkt_spec pkt;
	__u16 exp_sport, exp_dport; /* ports in the expected output, 0 = unchanged */
	__u32 retval;
	int stat; /* the one counter expected to go up by one, or NO_STAT */
	/* Exactly what flows and pending hold afterwards, nothing more. */
	struct entry tables[MAX_ENTRIES];
	/* Create no port_stats entries: the datapath must not create any either. */
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
#define TCP_RULE { .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true }
#define UDP_RULE { .pub = UPUB, .tgt = UTGT, .proto = IPPROTO_UDP, .hide = true }
/* The TCP rule with --no-hide. */
#define TCP_RULE_OPEN { .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP }
#define UDP_RULE_OPEN { .pub = UPUB, .tgt = UTGT, .proto = IPPROTO_UDP }
/* The TCP rule with --hide-local. */
#define TCP_RULE_HIDE_LOCAL \
	{ .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true, .hide_local = true }
/* A second public port for the TCP target. */
#define TCP_RULE2 { .pub = PUB2, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true }
/* Another public port to another target: what a swapped-in set holds. */
#define TCP_RULE_NEW { .pub = PUB2, .tgt = TGT2, .proto = IPPROTO_TCP, .hide = true }
/* The TCP rule's port numbers, for UDP. */
#define UDP_SAME_PORTS_RULE { .pub = PUB, .tgt = TGT, .proto = IPPROTO_UDP, .hide = true }
/* The TCP rule, narrowed to one destination address. */
#define TCP_RULE_ADDR(addr_) \
	{ .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true, .addr = (addr_) }
#define STRANGER4 "203.0.113.99" /* HOST_STRANGER, in the forwarded prefix */
#define STRANGER6 "2001:db8:2::99"
#define DSTOPTS8 60, 60, 60, 60, 60, 60, 60, 60

/* Steps. */
#define IN(pkt_, port_) { .op = STEP_IN, .pkt = &(pkt_), .port = (port_) }
#define IN_DROPPED(pkt_) { .op = STEP_IN, .pkt = &(pkt_), .retval = TC_ACT_SHOT }
#define OUT(pkt_, port_) { .op = STEP_OUT, .pkt = &(pkt_), .port = (port_) }
#define DEL_RULES { .op = STEP_DEL_RULES }
#define SWAP { .op = STEP_SWAP }
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
#define PENDING_PAIR(pub_, tgt_) PEND(IN, pub_, tgt_), PEND(OUT, tgt_, pub_)
#define CLOSING(dir_, local_, port_) \
	{ T_PENDING, FLOW_DIR_##dir_, (local_), (port_), 0, FLOW_F_CLOSING }
#define CLOSING_PAIR(pub_, tgt_) CLOSING(IN, pub_, tgt_), CLOSING(OUT, tgt_, pub_)
#define FLOWS_PAIR(pub_, tgt_) FLOW(IN, pub_, tgt_), FLOW(OUT, tgt_, pub_)
#define PENDING .tables = { PENDING_PAIR(PUB, TGT) }
#define UPENDING .tables = { PENDING_PAIR(UPUB, UTGT) }
#define ESTABLISHED .tables = { FLOWS_PAIR(PUB, TGT) }
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

static const struct tcase cases[] = {
	{ "v4 tcp syn to public port rewritten, recorded in pending", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "v4 tcp to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v4 tcp to unrelated port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, 22, SYN) }, .stat = STAT_PASSED },
	{ "arp passed untouched", { TCP_RULE },
	  .pkt = { .l3 = ETH_P_ARP, .src = HOST_CLIENT, .dst = HOST_SERVER }, .stat = STAT_PASSED },
	{ "v4 truncated tcp header dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .l4_trunc = 12 },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 truncated udp header dropped", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0), .l4_trunc = 6 },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 non-first fragment to hidden port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .frag_off = 185 },
	  .stat = STAT_PASSED },
	{ "v4 first fragment (MF) to public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .frag_off = 0x2000 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "v4 with options rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .ip_opt_len = 12 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "v4 802.1q tagged rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .vlans = 1 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "v4 802.1ad+802.1q tagged to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .vlans = 2 },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v6 tcp rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "v6 tcp to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v6 hop-by-hop + dest-opts chain rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 2, .ext = { 0, 60 } },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	/* parse.h walks chains of up to IPV6_MAX_EXT_HDRS (8); only longer ones are malformed. */
	{ "v6 chain of exactly 8 ext headers rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 8, .ext = { DSTOPTS8 } },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "v6 chain of 9 ext headers dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 9,
		   .ext = { DSTOPTS8, 60 } },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	/* Shapes we do not translate are dropped only where a rule could name their port;
	 * elsewhere they go on as if we were not there. A port we cannot read at all could
	 * be a hidden one, so that packet is dropped whatever the port. */
	{ "v4 tiny first fragment (8 bytes of tcp) to an unrelated port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, 22, SYN), .frag_off = 0x2000,
		   .l4_trunc = 8 }, .stat = STAT_PASSED },
	{ "v4 tiny first fragment (8 bytes of tcp) to the public port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .frag_off = 0x2000,
		   .l4_trunc = 8 }, .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 tiny first fragment (4 bytes of tcp) to the hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .frag_off = 0x2000,
		   .l4_trunc = 4 }, .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 first fragment with 3 bytes of tcp dropped: no port to read", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, 22, SYN), .frag_off = 0x2000,
		   .l4_trunc = 3 }, .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v6 first fragment with 8 bytes of tcp to an unrelated port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, 22, SYN), .n_ext = 1,
		   .ext = { PKT_IPV6_FRAGMENT }, .l4_trunc = 8 }, .stat = STAT_PASSED },
	{ "v4 udp header cut after the ports, unrelated port, passed", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, 53, 0), .l4_trunc = 4 },
	  .stat = STAT_PASSED },
	{ "v4 behind 3 tags to an unrelated port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, 22, SYN), .vlans = 3 }, .stat = STAT_PASSED },
	{ "v4 behind 3 tags to the public port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .vlans = 3 },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 udp with ip options behind 5 tags to the hidden port dropped", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0), .vlans = 5, .ip_opt_len = 8 },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v6 behind 8 tags to an unrelated port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, 22, SYN), .vlans = 8 },
	  .stat = STAT_PASSED },
	{ "v6 behind 9 tags dropped: deeper than we look", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, 22, SYN), .vlans = 9 },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v6 behind 3 tags with an ext header dropped: not walked there", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, 22, SYN), .vlans = 3, .n_ext = 1,
		   .ext = { 60 } }, .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 icmp behind 3 tags passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_ICMP, 0, 0), .vlans = 3 }, .stat = STAT_PASSED },
	{ "v6 chain of 9 ext headers to an unrelated port dropped: past the walk", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, 22, SYN), .n_ext = 9,
		   .ext = { DSTOPTS8, 60 } },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 udp rewritten, recorded in pending", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "v6 udp rewritten, recorded in pending", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "v4 udp zero checksum stays zero", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0), .udp_no_csum = true },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "v4 udp checksum computing to zero sent as 0xffff", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0), .zero_csum_dport = UTGT },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "udp to hidden tcp port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, TGT, 0) }, .stat = STAT_PASSED },
	{ "udp to tcp-only public port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, PUB, 0) }, .stat = STAT_PASSED },
	{ "hide-local rule: target dropped from outside too", { TCP_RULE_HIDE_LOCAL },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "hide-local rule: public port rewritten", { TCP_RULE_HIDE_LOCAL },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	/* A SYN-ACK from the service does not promote: it answers spoofed SYNs too. */
	{ "egress v4 syn-ack sport rewritten to public, still pending", { TCP_RULE },
	  .pre = { IN(syn4, TGT) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, PENDING },
	{ "egress v6 syn-ack sport rewritten to public, still pending", { TCP_RULE },
	  .pre = { IN(syn6, TGT) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IPV6, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, PENDING },
	/* From a hidden target, to a client no connection entry names: it would show the port. */
	{ "egress reply to unknown client dropped", { TCP_RULE }, .pre = { IN(syn4, TGT) },
	  .egress = true, .pkt = { REPLY(ETH_P_IP, HOST_STRANGER) }, .retval = TC_ACT_SHOT,
	  .stat = STAT_HIDDEN_UNTRACKED_DROPPED, PENDING },
	{ "egress ack to unknown client dropped, promotes nothing", { TCP_RULE },
	  .pre = { IN(syn4, TGT) }, .egress = true,
	  .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_SERVER, HOST_STRANGER, TGT, CPORT, ACK) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED, PENDING },
	{ "egress ack from another port of the server untouched, promotes nothing", { TCP_RULE },
	  .pre = { IN(syn4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, 22, ACK) }, .stat = NO_STAT, PENDING },
	{ "egress reply rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, PENDING },
	{ "pending connection rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "established flow rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE_ESTABLISHED,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, ESTABLISHED },
	{ "established flow's reply rewritten after rule deleted", { TCP_RULE },
	  AFTER_DELETE_ESTABLISHED, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	/* Passed untranslated, the SYN forgets IN(its dport) and OUT(its dport) from pending;
	 * flows it leaves alone (it may be spoofed), until the service's SYN-ACK shows the
	 * connection there is over. */
	{ "fresh syn not rewritten after rule deleted, forgets pending IN", { TCP_RULE },
	  AFTER_DELETE, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .stat = STAT_PASSED, .tables = { PEND(OUT, TGT, PUB) } },
	{ "fresh syn not rewritten after rule deleted, leaves the established flows", { TCP_RULE },
	  AFTER_DELETE_ESTABLISHED, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .stat = STAT_PASSED, ESTABLISHED },
	{ "target reachable after rule and hidden deleted, forgets pending OUT", { TCP_RULE },
	  AFTER_DELETE, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .stat = STAT_PASSED, .tables = { PEND(IN, PUB, TGT) } },
	{ "target reachable after rule and hidden deleted, leaves the established flows",
	  { TCP_RULE }, AFTER_DELETE_ESTABLISHED,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .stat = STAT_PASSED, ESTABLISHED },
	{ "syn-ack to a direct syn after rule deleted: drops the stale flows, untouched",
	  { TCP_RULE }, .pre = { ESTABLISH4, DEL_RULES, IN(syn4_tgt, 0) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) }, .stat = NO_STAT },
	/* A translated connection leaves nothing that bites a direct one from the same client
	 * port: its replies keep the target port. */
	{ "egress reply to direct syn after rule deleted untouched", { TCP_RULE },
	  .pre = { IN(syn4, TGT), DEL_RULES, IN(syn4_tgt, 0) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) }, .stat = NO_STAT,
	  .tables = { PEND(IN, PUB, TGT) } },
	{ "egress ack to direct syn after established and deleted untouched", { TCP_RULE },
	  .pre = { ESTABLISH4, DEL_RULES, IN(syn4_tgt, 0), OUT(synack4, 0) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) }, .stat = NO_STAT },
	{ "direct syn to --no-hide target passed, drops the stale pending OUT", { TCP_RULE_OPEN },
	  .pre = { IN(syn4, TGT) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .stat = STAT_PASSED,
	  .tables = { PEND(IN, PUB, TGT) } },
	{ "direct syn to --no-hide target passed, leaves the established flows", { TCP_RULE_OPEN },
	  .pre = { ESTABLISH4 },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .stat = STAT_PASSED, ESTABLISHED },
	{ "direct syn to --no-hide target: the service's challenge ack still via flows",
	  { TCP_RULE_OPEN }, .pre = { ESTABLISH4, IN(syn4_tgt, 0) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	{ "direct syn to --no-hide target: its syn-ack drops the stale flows, untouched",
	  { TCP_RULE_OPEN }, .pre = { ESTABLISH4, IN(syn4_tgt, 0) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) }, .stat = NO_STAT },
	{ "egress v6 reply to direct syn to --no-hide target untouched", { TCP_RULE_OPEN },
	  .pre = { IN(syn6, TGT), IN(syn6_tgt, 0) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IPV6, HOST_CLIENT) }, .stat = NO_STAT,
	  .tables = { PEND(IN, PUB, TGT) } },
	{ "non-syn straight to --no-hide target keeps the pending entries", { TCP_RULE_OPEN },
	  .pre = { IN(syn4, TGT) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) }, .stat = STAT_PASSED, PENDING },
	{ "non-syn straight to --no-hide target keeps the established flows", { TCP_RULE_OPEN },
	  .pre = { ESTABLISH4 },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .stat = STAT_PASSED, ESTABLISHED },
	{ "udp straight to --no-hide target forgets nothing", { UDP_RULE_OPEN },
	  .pre = { IN(udp4, UTGT) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0) }, .stat = STAT_PASSED, UPENDING },
	/* A SYN the hidden port drops never reaches the service: a spoofed one must not cut
	 * the live connection's replies. */
	{ "dropped syn to hidden target keeps the pending entries", { TCP_RULE },
	  .pre = { IN(syn4, TGT) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED, PENDING },
	{ "dropped syn to hidden target keeps the established flows", { TCP_RULE },
	  .pre = { ESTABLISH4 },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED, ESTABLISHED },
	{ "dropped syn leaves flows and pending untouched (its tuple established)", { TCP_RULE },
	  .pre = { ESTABLISH4, IN(syn4_c2, TGT) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED,
	  .tables = { FLOWS_PAIR(PUB, TGT), PEND_FROM(CPORT2, IN, PUB, TGT),
		      PEND_FROM(CPORT2, OUT, TGT, PUB) } },
	{ "dropped syn leaves flows and pending untouched (its tuple pending)", { TCP_RULE },
	  .pre = { ESTABLISH4, IN(syn4_c2, TGT) },
	  .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_CLIENT, HOST_SERVER, CPORT2, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED,
	  .tables = { FLOWS_PAIR(PUB, TGT), PEND_FROM(CPORT2, IN, PUB, TGT),
		      PEND_FROM(CPORT2, OUT, TGT, PUB) } },
	{ "egress reply after dropped direct syn still rewritten", { TCP_RULE },
	  .pre = { IN(syn4, TGT), IN_DROPPED(syn4_tgt) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, PENDING },
	{ "egress ack after dropped direct syn still rewritten, established", { TCP_RULE },
	  .pre = { ESTABLISH4, IN_DROPPED(syn4_tgt) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },

	/* Promotion: from pending to flows on the service's first packet that is neither a
	 * SYN nor a RST. */
	{ "promotion: client ack rewritten via pending, still pending", { TCP_RULE },
	  .pre = { IN(syn4, TGT), OUT(synack4, PUB) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "promotion: service ack moves the connection to flows", { TCP_RULE },
	  .pre = { IN(syn4, TGT), OUT(synack4, PUB), IN(ack4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	{ "promotion: v6 service ack moves the connection to flows", { TCP_RULE },
	  .pre = { IN(syn6, TGT), OUT(synack6, PUB), IN(ack6, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	{ "promotion: service data (psh-ack) promotes", { TCP_RULE },
	  .pre = { IN(syn4, TGT), OUT(synack4, PUB) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	{ "promotion: service fin-ack does not promote, marks the connection closing",
	  { TCP_RULE }, .pre = { IN(syn4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | FIN) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, CLOSING_TABLES },
	{ "promotion: service rst rewritten, not promoted, forgets the connection",
	  { TCP_RULE }, .pre = { IN(syn4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, RST) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN },
	{ "promotion: service rst-ack rewritten, not promoted, forgets the connection",
	  { TCP_RULE }, .pre = { IN(syn4, TGT), OUT(synack4, PUB), IN(ack4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, RST | ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN },
	{ "promotion: service bare syn rewritten, not promoted", { TCP_RULE },
	  .pre = { IN(syn4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, PENDING },
	{ "promotion: established client packets rewritten via flows", { TCP_RULE },
	  .pre = { ESTABLISH4 }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, ESTABLISHED },
	{ "promotion: established v6 replies rewritten via flows", { TCP_RULE },
	  .pre = { ESTABLISH6 }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, PSH | ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	/* flows is looked up before pending, and what is found in flows is only used. */
	{ "promotion: non-syn through the rule recorded in pending, forgets nothing",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4 },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB2, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PENDING_PAIR(PUB2, TGT) } },
	{ "promotion: established reply takes flows' public port over pending's",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4, IN(ack4_pub2, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PENDING_PAIR(PUB2, TGT) } },
	{ "promotion: established reply writes nothing back", { TCP_RULE },
	  .pre = { ESTABLISH4, DEL_RULES, IN(syn4, 0) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	{ "promotion: reply after rule deleted still promotes", { TCP_RULE }, AFTER_DELETE,
	  .egress = true, .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
	{ "promotion: through the second public port of a shared target",
	  { TCP_RULE, TCP_RULE2 }, .pre = { IN(syn4_pub2, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB2, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB2, TGT) } },
	{ "promotion: udp reply promotes", { UDP_RULE }, .pre = { IN(udp4, UTGT) },
	  .egress = true, .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0) },
	  .exp_sport = UPUB, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(UPUB, UTGT) } },
	{ "promotion: v6 udp reply promotes", { UDP_RULE }, .pre = { IN(udp6, UTGT) },
	  .egress = true, .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) },
	  .exp_sport = UPUB, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(UPUB, UTGT) } },
	{ "promotion: udp datagrams before the reply rewritten via pending", { UDP_RULE },
	  .pre = { IN(udp4, UTGT) }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "promotion: udp datagrams after the reply rewritten via flows", { UDP_RULE },
	  .pre = { IN(udp4, UTGT), OUT(udp_reply4, UPUB), DEL_RULES },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .tables = { FLOWS_PAIR(UPUB, UTGT) } },

	/* A fresh SYN through the rule writes pending only: flows keeps a live connection of
	 * the same tuple (the SYN may be spoofed) until the service's SYN-ACK shows it is over. */
	{ "syn: fresh syn through the rule leaves flows, waits in pending", { TCP_RULE },
	  .pre = { ESTABLISH4 }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PENDING_PAIR(PUB, TGT) } },
	{ "syn: the service's syn-ack takes pending, drops what flows held", { TCP_RULE },
	  .pre = { ESTABLISH4, IN(syn4, TGT) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) }, .exp_sport = PUB,
	  .stat = STAT_REVERSE_REWRITTEN, PENDING },
	{ "syn: spoofed syn to the second public port leaves the live connection's flows",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4 },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB2, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PENDING_PAIR(PUB2, TGT) } },
	{ "syn: then the service's challenge ack keeps the live public port, promotes nothing",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4, IN(syn4_pub2, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PENDING_PAIR(PUB2, TGT) } },
	{ "syn: then the live connection's client packets still via flows",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4, IN(syn4_pub2, TGT) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK | PSH) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PENDING_PAIR(PUB2, TGT) } },
	{ "syn: then the live connection's service data keeps its public port",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4, IN(syn4_pub2, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PENDING_PAIR(PUB2, TGT) } },
	{ "syn: the live connection's fin puts it back, closing, over the spoofed pending",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4, IN(syn4_pub2, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, FIN | ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { CLOSING_PAIR(PUB, TGT), PEND(IN, PUB2, TGT) } },
	{ "syn: a syn a rule does not apply to leaves the established flows", { TCP_RULE },
	  .pre = { ESTABLISH4, SWAP }, .swap = { TCP_RULE_ADDR(STRANGER4) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED, ESTABLISHED },
	/* A client reusing its port after a close, through the other public port. */
	{ "reuse: after the service's fin, a syn to the second public port: syn-ack takes it",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4, OUT(finout4, PUB), IN(syn4_pub2, TGT) },
	  .egress = true, .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB2, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { CLOSING(IN, PUB, TGT), PENDING_PAIR(PUB2, TGT) } },
	{ "reuse: after the client's rst, a syn to the second public port: syn-ack takes it",
	  { TCP_RULE, TCP_RULE2 }, .pre = { ESTABLISH4, IN(rst4, TGT), IN(syn4_pub2, TGT) },
	  .egress = true, .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB2, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { PENDING_PAIR(PUB2, TGT) } },
	{ "reuse: after the client's rst, the new connection through the second port promotes",
	  { TCP_RULE, TCP_RULE2 },
	  .pre = { ESTABLISH4, IN(rst4, TGT), IN(syn4_pub2, TGT), OUT(synack4_pub2, PUB2),
		   IN(ack4_pub2, TGT) },
	  .egress = true, .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB2, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB2, TGT) } },
	{ "reuse: a new syn through the rule on a closing tuple opens it again", { TCP_RULE },
	  .pre = { ESTABLISH4, OUT(finout4, PUB), IN(syn4, TGT), OUT(synack4, PUB) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "reuse: and the service's ack promotes it", { TCP_RULE },
	  .pre = { ESTABLISH4, OUT(finout4, PUB), IN(syn4, TGT), OUT(synack4, PUB), IN(ack4, TGT) },
	  .egress = true, .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },

	/* Closing: the service's FIN moves the connection to pending, closing; its RST ends it.
	 * The client's FIN and RST (maybe spoofed) change nothing. */
	{ "close: service fin moves an established connection to pending, closing", { TCP_RULE },
	  .pre = { ESTABLISH4 }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, FIN | ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, CLOSING_TABLES },
	{ "close: v6 service fin moves an established connection to pending, closing",
	  { TCP_RULE }, .pre = { ESTABLISH6 }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, FIN | ACK | PSH) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, CLOSING_TABLES },
	{ "close: then the client's ack and fin still rewritten", { TCP_RULE },
	  .pre = { ESTABLISH4, OUT(finout4, PUB), IN(ack4, TGT) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, FIN | ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, CLOSING_TABLES },
	{ "close: then the service's last ack rewritten, not promoted", { TCP_RULE },
	  .pre = { ESTABLISH4, OUT(finout4, PUB), IN(fin4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, CLOSING_TABLES },
	{ "close: time_wait: a retransmitted fin-ack of the service still rewritten", { TCP_RULE },
	  .pre = { ESTABLISH4, OUT(finout4, PUB), IN(fin4, TGT), IN(fin4, TGT) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, FIN | ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, CLOSING_TABLES },
	{ "close: client closes first: its fin changes nothing", { TCP_RULE },
	  .pre = { ESTABLISH4 }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, FIN | ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, ESTABLISHED },
	{ "close: client closes first: the service's fin then moves it to pending", { TCP_RULE },
	  .pre = { ESTABLISH4, IN(fin4, TGT), OUT(ackout4, PUB) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, FIN | ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, CLOSING_TABLES },
	{ "close: simultaneous close: the client's fin after the service's still rewritten",
	  { TCP_RULE }, .pre = { ESTABLISH4, IN(fin4, TGT), OUT(finout4, PUB) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, CLOSING_TABLES },
	{ "close: the client's rst (maybe spoofed) leaves the established flows", { TCP_RULE },
	  .pre = { ESTABLISH4 }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, RST) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, ESTABLISHED },
	{ "close: the client's rst leaves a pending connection", { TCP_RULE },
	  .pre = { IN(syn4, TGT) }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, RST | ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "close: service rst ends an established connection", { TCP_RULE },
	  .pre = { ESTABLISH4 }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, RST | ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN },
	{ "close: v6 service rst ends an established connection", { TCP_RULE },
	  .pre = { ESTABLISH6 }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, RST) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN },
	{ "close: service rst ends a closing connection", { TCP_RULE },
	  .pre = { ESTABLISH4, OUT(finout4, PUB) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, RST) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN },
	{ "close: service rst leaves another connection of the client alone", { TCP_RULE },
	  .pre = { ESTABLISH4, IN(syn4_c2, TGT), OUT(rstout4, PUB) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) }, .retval = TC_ACT_SHOT,
	  .stat = STAT_HIDDEN_UNTRACKED_DROPPED,
	  .tables = { PEND_FROM(CPORT2, IN, PUB, TGT), PEND_FROM(CPORT2, OUT, TGT, PUB) } },
	{ "close: after the service's rst, what it sends from the target is dropped",
	  { TCP_RULE }, .pre = { ESTABLISH4, OUT(rstout4, PUB) }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) }, .retval = TC_ACT_SHOT,
	  .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "forget: ingress syn-ack is no fresh syn, rewritten via flows", { TCP_RULE },
	  AFTER_DELETE_ESTABLISHED, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN | ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, ESTABLISHED },
	{ "forget: fresh syn from another client port forgets nothing of this one", { TCP_RULE },
	  .pre = { ESTABLISH4 }, .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_CLIENT, HOST_SERVER,
					       CPORT2, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB, TGT), PEND_FROM(CPORT2, IN, PUB, TGT),
		      PEND_FROM(CPORT2, OUT, TGT, PUB) } },

	/* The rule set is swapped whole: one update of the policy slot. */
	{ "swap: the old rule's port passes at once", { TCP_RULE }, .swap = { TCP_RULE_NEW },
	  .pre = { IN(syn4, TGT), SWAP },
	  .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_CLIENT, HOST_SERVER, CPORT2, PUB, SYN) },
	  .stat = STAT_PASSED, PENDING },
	{ "swap: the new rule's port is rewritten at once", { TCP_RULE }, .swap = { TCP_RULE_NEW },
	  .pre = { IN(syn4, TGT), SWAP },
	  .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_CLIENT, HOST_SERVER, CPORT2, PUB2, SYN) },
	  .exp_dport = TGT2, .stat = STAT_REWRITTEN,
	  .tables = { PENDING_PAIR(PUB, TGT), PEND_FROM(CPORT2, IN, PUB2, TGT2),
		      PEND_FROM(CPORT2, OUT, TGT2, PUB2) } },
	{ "swap: the old hidden target is reachable at once", { TCP_RULE },
	  .swap = { TCP_RULE_NEW }, .pre = { IN_DROPPED(syn4_tgt), SWAP },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .stat = STAT_PASSED },
	{ "swap: the new hidden target is dropped at once", { TCP_RULE },
	  .swap = { TCP_RULE_NEW }, .pre = { SWAP },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT2, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "swap: a connection of the old set keeps its translation", { TCP_RULE },
	  .swap = { TCP_RULE_NEW }, .pre = { IN(syn4, TGT), SWAP },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "swap: an empty set passes the old rule's port", { TCP_RULE }, .pre = { SWAP },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED },

	/* No set in the slot: no rules, nothing hidden; recorded connections still work. */
	{ "empty slot: syn to public port passed", { TCP_RULE }, .pre = { EMPTY_SLOT },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED },
	{ "empty slot: syn to hidden port passed, not dropped", { TCP_RULE },
	  .pre = { EMPTY_SLOT }, .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) },
	  .stat = STAT_PASSED },
	{ "empty slot: udp to public and hidden ports passed", { UDP_RULE },
	  .pre = { EMPTY_SLOT, IN(udp_tgt4, 0) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) }, .stat = STAT_PASSED },
	{ "empty slot: pending connection still rewritten", { TCP_RULE },
	  .pre = { IN(syn4, TGT), EMPTY_SLOT },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "empty slot: reply still rewritten and promoted", { TCP_RULE },
	  .pre = { IN(syn4, TGT), EMPTY_SLOT }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },

	/* Without forwarding the FIB says nothing (FWD_DISABLED before any lookup): this host's
	 * addresses (local_addrs), L2 group frames and the IPv4 addresses every host takes
	 * decide. Another host's addresses, as a bridge port or a macvlan's lower device sees
	 * them, are left alone; whose MAC address a frame is for does not decide (a macvlan of
	 * this host takes its own frames from the lower device). */
	{ "not forwarding: v4 to another host's address on public port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .stat = STAT_PASSED },
	{ "not forwarding: v6 to another host's address on hidden port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, TGT, SYN) },
	  .stat = STAT_PASSED },
	{ "not forwarding: v4 frame for another mac to our address on public port rewritten",
	  { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .l2_dest = PKT_L2_OTHER },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "not forwarding: v6 frame for another mac to our address on hidden port dropped",
	  { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN), .l2_dest = PKT_L2_OTHER },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "not forwarding: udp broadcast frame to a subnet address on hidden port dropped",
	  { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_STRANGER, UTGT, 0),
		   .l2_dest = PKT_L2_BROADCAST },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "not forwarding: v6 udp multicast frame on hidden port dropped", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_UDP, HOST_ALLHOSTS, UTGT, 0),
		   .l2_dest = PKT_L2_MULTICAST },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "not forwarding: udp to the subnet's broadcast address in a unicast frame dropped",
	  { UDP_RULE }, .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_SERVER_BCAST, UTGT, 0) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "not forwarding: udp to the subnet's broadcast address on public port rewritten",
	  { UDP_RULE }, .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_SERVER_BCAST, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "not forwarding: udp to 255.255.255.255 on hidden port dropped", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_LBCAST, UTGT, 0),
		   .l2_dest = PKT_L2_BROADCAST },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "not forwarding: udp to 224.0.0.1 in a unicast frame on hidden port dropped",
	  { UDP_RULE }, .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_ALLHOSTS, UTGT, 0) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "not forwarding: rule with another address leaves the packet alone",
	  { TCP_RULE_ADDR(STRANGER4) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED },
	/* Every case checks port_stats (see port_stats_expected); these single out sharing. */
	{ "port_stats: syn to the second public port counted under it", { TCP_RULE, TCP_RULE2 },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB2, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .tables = { PENDING_PAIR(PUB2, TGT) } },
	{ "port_stats: reply counted under the public port the client used",
	  { TCP_RULE, TCP_RULE2 }, .pre = { IN(syn4_pub2, TGT) }, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB2, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { PENDING_PAIR(PUB2, TGT) } },
	{ "port_stats: drop counted under the shared hidden port", { TCP_RULE, TCP_RULE2 },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "port_stats: udp counted under the udp entry, not the tcp one",
	  { TCP_RULE, UDP_SAME_PORTS_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, PUB, 0) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "port_stats: udp drop counted under the udp entry", { TCP_RULE, UDP_SAME_PORTS_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_UDP, TGT, 0) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "port_stats: established flow after rule deleted counted under public port",
	  { TCP_RULE }, AFTER_DELETE_ESTABLISHED,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, ESTABLISHED },
	{ "port_stats: promoting reply counted under the public port", { TCP_RULE, TCP_RULE2 },
	  .pre = { IN(syn4_pub2, TGT), DEL_RULES }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) },
	  .exp_sport = PUB2, .stat = STAT_REVERSE_REWRITTEN,
	  .tables = { FLOWS_PAIR(PUB2, TGT) } },
	{ "port_stats: rewrite without an entry creates none", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING, .no_port_stats = true },
	{ "port_stats: hidden drop without an entry creates none", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED, .no_port_stats = true },
	/* An interface the live set does not name is attached but inert: what `apply` leaves
	 * between attaching and switching, or after switching and before detaching. */
	{ "inert interface: syn to public port passed untouched", { TCP_RULE },
	  .pre = { IFACE_OFF }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .stat = STAT_PASSED },
	{ "inert interface: v6 syn to hidden port passed", { TCP_RULE },
	  .pre = { IFACE_OFF }, .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) },
	  .stat = STAT_PASSED },
	{ "inert interface: a pending connection's ack still rewritten", { TCP_RULE },
	  .pre = { IN(syn4, TGT), IFACE_OFF }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	/* port_interest is the hooks' first filter: a port it does not name is passed at once.
	 * The loader marks a rule's ports before the rule acts; here the marks are taken away. */
	{ "unmarked ports: syn to public port passed untouched", { TCP_RULE },
	  .pre = { UNMARK }, .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .stat = STAT_PASSED },
	{ "unmarked ports: reply from target of a pending connection untouched", { TCP_RULE },
	  .pre = { IN(syn4, TGT), UNMARK }, .egress = true, .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .stat = NO_STAT, PENDING },
	{ "inert interface: the reply to a pending connection still rewritten", { TCP_RULE },
	  .pre = { IN(syn4, TGT), IFACE_OFF }, .egress = true, .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, PENDING },

	/* A connection whose entries are gone (evicted): what the service sends it from the
	 * hidden target would show the port, so egress drops it, where ingress drops the same
	 * port: packets of this host to another, on an interface the live set enables. */
	{ "untracked: established data after eviction dropped", { TCP_RULE },
	  .pre = { ESTABLISH4, EVICT }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "untracked: v6 established data after eviction dropped", { TCP_RULE },
	  .pre = { ESTABLISH6, EVICT }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK | PSH) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "untracked: syn-ack of an evicted pending entry dropped", { TCP_RULE },
	  .pre = { IN(syn4, TGT), EVICT }, .egress = true, .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "untracked: v6 syn-ack of an evicted pending entry dropped", { TCP_RULE },
	  .pre = { IN(syn6, TGT), EVICT }, .egress = true, .pkt = { REPLY(ETH_P_IPV6, HOST_CLIENT) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "untracked: server-first data after a shared target's other rule went, dropped",
	  { TCP_RULE, TCP_RULE2 }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "untracked: udp reply after eviction dropped", { UDP_RULE },
	  .pre = { IN(udp4, UTGT), OUT(udp_reply4, UPUB), EVICT }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "untracked: v6 udp from the hidden port dropped", { UDP_RULE }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_UNTRACKED_DROPPED },
	{ "untracked: to one of this host's addresses (a local client) passed", { TCP_RULE },
	  .egress = true,
	  .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_SERVER, HOST_SERVER, TGT, CPORT, ACK | PSH) },
	  .stat = NO_STAT },
	{ "untracked: v6 to one of this host's addresses (a local client) passed", { TCP_RULE },
	  .egress = true,
	  .pkt = { PKT(ETH_P_IPV6, IPPROTO_TCP, HOST_SERVER, HOST_SERVER, TGT, CPORT, ACK) },
	  .stat = NO_STAT },
	{ "untracked: forwarded, from another host's port of the same number, passed",
	  { TCP_RULE }, .egress = true, .received = true,
	  .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, HOST_CLIENT, TGT, CPORT, ACK) },
	  .stat = NO_STAT },
	{ "untracked: received and sent back out (--reject's rst) passed", { TCP_RULE },
	  .egress = true, .received = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, RST | ACK) }, .stat = NO_STAT },
	{ "untracked: v6 received and sent back out passed", { UDP_RULE },
	  .egress = true, .received = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) }, .stat = NO_STAT },
	{ "untracked: --no-hide target's packets passed", { TCP_RULE_OPEN }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) }, .stat = NO_STAT },
	{ "untracked: after del (nothing hidden any more) passed", { TCP_RULE },
	  .pre = { ESTABLISH4, DEL_RULES, EVICT }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) }, .stat = NO_STAT },
	{ "untracked: inert interface passes", { TCP_RULE }, .pre = { IFACE_OFF }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) }, .stat = NO_STAT },
	{ "untracked: empty slot passes", { TCP_RULE }, .pre = { EMPTY_SLOT }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK) }, .stat = NO_STAT },
	{ "untracked: another port of the server passed", { TCP_RULE }, .egress = true,
	  .pkt = { FROM_SERVER(ETH_P_IP, IPPROTO_TCP, 22, ACK) }, .stat = NO_STAT },
};

/* Run in a namespace that forwards: HOST_SERVER's addresses are on lo, HOST_STRANGER's
 * prefixes are routed out of a veth pair (netns_setup_scope). */
static const struct tcase scope_cases[] = {
	{ "scope: v4 to local address on public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "scope: v6 to local address on public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "scope: v4 udp to local address on public port rewritten", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "scope: v4 to forwarded address on public port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .stat = STAT_PASSED },
	{ "scope: v6 to forwarded address on public port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .stat = STAT_PASSED },
	{ "scope: v6 udp to forwarded address on public port passed", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_UDP, HOST_STRANGER, UPUB, 0) },
	  .stat = STAT_PASSED },
	{ "scope: v4 to local address on hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "scope: v6 to local address on hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "scope: v4 to forwarded address on hidden port passed, not dropped", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, TGT, SYN) },
	  .stat = STAT_PASSED },
	{ "scope: v6 to forwarded address on hidden port passed, not dropped", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, TGT, SYN) },
	  .stat = STAT_PASSED },
	{ "scope: v4 udp to forwarded address on hidden port passed, not dropped", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_STRANGER, UTGT, 0) },
	  .stat = STAT_PASSED },
	/* The FIB lookup cannot resolve encapsulating routes (UNSUPP_LWT), but they forward. */
	{ "scope: v4 to address behind an encap route on public port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_TUNNELED, PUB, SYN) },
	  .stat = STAT_PASSED },
	{ "scope: v6 to address behind an encap route on public port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_TUNNELED, PUB, SYN) },
	  .stat = STAT_PASSED },
	{ "scope: v4 to address behind an encap route on hidden port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_TUNNELED, TGT, SYN) },
	  .stat = STAT_PASSED },
	{ "scope: v6 udp to address behind an encap route on hidden port passed", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_UDP, HOST_TUNNELED, UTGT, 0) },
	  .stat = STAT_PASSED },
	{ "scope: v4 rule with --addr of a forwarded address rewrites it",
	  { TCP_RULE_ADDR(STRANGER4) },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "scope: v6 rule with --addr of a forwarded address rewrites it",
	  { TCP_RULE_ADDR(STRANGER6) },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "scope: v4 rule with --addr leaves another local address alone",
	  { TCP_RULE_ADDR(STRANGER4) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED },
	{ "scope: v6 rule with --addr does not match the v4 address", { TCP_RULE_ADDR(STRANGER6) },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) }, .stat = STAT_PASSED },
	{ "scope: hidden port of an --addr rule passed to the forwarded address",
	  { TCP_RULE_ADDR(STRANGER4) },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, TGT, SYN) }, .stat = STAT_PASSED },
	{ "scope: hidden port of an --addr rule dropped to a local address",
	  { TCP_RULE_ADDR(STRANGER4) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "scope: v4 pending connection to --addr address rewritten after rule deleted",
	  { TCP_RULE_ADDR(STRANGER4) }, .pre = { IN(syn4_stranger, TGT), DEL_RULES },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, PENDING },
	{ "scope: v4 established flow to --addr address rewritten after rule deleted",
	  { TCP_RULE_ADDR(STRANGER4) },
	  .pre = { IN(syn4_stranger, TGT), OUT(synack4_stranger, PUB), IN(ack4_stranger, TGT),
		   OUT(ackout4_stranger, PUB), DEL_RULES },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, ESTABLISHED },
	{ "scope: egress v6 reply from --addr address rewritten", { TCP_RULE_ADDR(STRANGER6) },
	  .pre = { IN(syn6_stranger, TGT) }, .egress = true,
	  .pkt = { REPLY_FROM(ETH_P_IPV6, HOST_STRANGER, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, PENDING },
	{ "scope: egress v4 ack from --addr address promotes", { TCP_RULE_ADDR(STRANGER4) },
	  .pre = { IN(syn4_stranger, TGT), OUT(synack4_stranger, PUB) }, .egress = true,
	  .pkt = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, HOST_CLIENT, TGT, CPORT, ACK) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, ESTABLISHED },
};

/* Run in a namespace that forwards everything but its own addresses through a default route
 * (netns_setup_default_route), as a router, docker or k8s host does. */
static const struct tcase default_route_cases[] = {
	{ "default route: v4 to local address on hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "default route: v4 to a routed address on hidden port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, TGT, SYN) },
	  .stat = STAT_PASSED },
	{ "default route: v6 to a routed address on public port passed", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .stat = STAT_PASSED },
	/* No route of their own, so the lookup says "forwarded"; the kernel delivers them to
	 * a socket on 0.0.0.0 all the same. */
	{ "default route: udp to 255.255.255.255 on hidden port dropped", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_LBCAST, UTGT, 0),
		   .l2_dest = PKT_L2_BROADCAST },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "default route: udp to 224.0.0.1 on hidden port dropped", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_ALLHOSTS, UTGT, 0),
		   .l2_dest = PKT_L2_MULTICAST },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "default route: udp to 224.0.0.1 on public port rewritten", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_ALLHOSTS, UPUB, 0),
		   .l2_dest = PKT_L2_MULTICAST },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, UPENDING },
	{ "default route: tcp to 0.1.2.3 on hidden port dropped", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_ZERONET, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "default route: v6 udp to ff02::1 on hidden port dropped", { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_UDP, HOST_ALLHOSTS, UTGT, 0),
		   .l2_dest = PKT_L2_MULTICAST },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "default route: frame for another mac to our address on hidden port dropped",
	  { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .l2_dest = PKT_L2_OTHER },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "default route: udp broadcast in a frame for another mac on hidden port dropped",
	  { UDP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_UDP, HOST_LBCAST, UTGT, 0),
		   .l2_dest = PKT_L2_OTHER },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
};
/* clang-format on */

static struct tc_bpf *skel;
/* The XDP program, on skel's maps; with xdp_ingress, it stands in for TC ingress. */
static struct xdp_bpf *xskel;
static bool xdp_ingress;
static int ncpus;
static __u64 *percpu;
static struct redir_port_stats *percpu_ports;
static int live_set = -1; /* the rule set in the policy slot, or -1 */
/* BPF_F_TEST_SKB_CHECKSUM_COMPLETE makes the skb CHECKSUM_COMPLETE, as from a NIC that sums
 * what it receives, and fails the run (EBADMSG) when the program leaves skb->csum stale. */
static __u32 run_flags;
/* Probed once: the kernel takes that flag (6.11 and later). */
static bool csum_complete_ok;
/* The encapsulating routes the forwarding namespace has (netns.h). */
static struct netns_scope scope;

static const char *run_prefix(void)
{
	return run_flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE ? "checksum complete: " : "";
}

#define MAX_PORT_KEYS 12

/* The port_stats entries a case creates, and their summed counters. */
struct port_counts {
	int n;
	struct redir_port_key key[MAX_PORT_KEYS];
	__u64 count[MAX_PORT_KEYS][PORT_STAT__MAX];
};

static const char *const table_names[] = {
	[T_FLOWS] = "flows",
	[T_PENDING] = "pending",
};

static void map_fd_clear(int fd)
{
	__u8 key[64];

	while (!bpf_map_get_next_key(fd, NULL, key))
		if (bpf_map_delete_elem(fd, key))
			break;
}

static void map_clear(struct bpf_map *map)
{
	map_fd_clear(bpf_map__fd(map));
}

static int map_count(struct bpf_map *map)
{
	__u8 key[64], next[64];
	int n = 0;

	for (; !bpf_map_get_next_key(bpf_map__fd(map), n ? key : NULL, next); n++)
		memcpy(key, next, sizeof(key));
	return n;
}

static struct bpf_map *table_map(enum table t)
{
	return t == T_FLOWS ? skel->maps.flows : skel->maps.pending;
}

static int stats_read(__u64 sum[STAT__MAX])
{
	__u32 i;
	int cpu;

	for (i = 0; i < STAT__MAX; i++) {
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &i, percpu))
			return -errno;
		for (sum[i] = 0, cpu = 0; cpu < ncpus; cpu++)
			sum[i] += percpu[cpu];
	}
	return 0;
}

/* --- rule sets, made the way the loader makes them ---------------------------------------- */

/* The server's addresses (v4 and v6) and its subnet's broadcast address in local_addrs, as
 * the loader records this host's. */
static int local_addrs_record(void)
{
	/* An address of the host's has one holder here; its subnet's broadcast address none. */
	const __u32 own = 1, brd = LOCAL_ADDR_BROADCAST;
	int fd = bpf_map__fd(skel->maps.local_addrs), v6;
	__u8 addr[BPFREDIR_ADDR_LEN];

	for (v6 = 0; v6 < 2; v6++) {
		pkt_host_mapped(HOST_SERVER, v6, addr);
		if (bpf_map_update_elem(fd, addr, &own, BPF_ANY))
			return -errno;
	}
	pkt_host_mapped(HOST_SERVER_BCAST, false, addr);
	return bpf_map_update_elem(fd, addr, &brd, BPF_ANY) ? -errno : 0;
}

/* ADDR (v4 or v6 text) as a rule stores it: v4 as ::ffff:a.b.c.d. */
static int rule_addr(__u8 *dst, const char *addr)
{
	memset(dst, 0, BPFREDIR_ADDR_LEN);
	if (inet_pton(AF_INET6, addr, dst) == 1)
		return 0;
	dst[10] = 0xff;
	dst[11] = 0xff;
	return inet_pton(AF_INET, addr, dst + 12) == 1 ? 0 : -EINVAL;
}

/* A new, empty rule set. */
static int set_create(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_set", sizeof(struct redir_policy_key),
				sizeof(struct redir_rule), BPFREDIR_POLICY_ENTRIES, &opts);

	return fd < 0 ? -errno : fd;
}

/* Test runs see the netns's loopback device, which a set must name for its rules to act. */
static int set_enable_lo(int fd)
{
	struct redir_policy_key key = {.kind = POLICY_IFACE, .id = LO_IFINDEX};
	struct redir_rule unused = {};

	return bpf_map_update_elem(fd, &key, &unused, BPF_ANY) ? -errno : 0;
}

/* Mark a port in port_interest, as the loader does before a rule naming it acts. */
static int port_mark(__u16 port, __u8 proto)
{
	int fd = bpf_map__fd(skel->maps.port_interest);
	__u32 idx = port;
	__u8 bits;

	if (bpf_map_lookup_elem(fd, &idx, &bits))
		return -errno;
	bits |= proto == IPPROTO_TCP ? PORT_INTEREST_TCP : PORT_INTEREST_UDP;
	return bpf_map_update_elem(fd, &idx, &bits, BPF_ANY) ? -errno : 0;
}

/* Clear the marks of every port the tables' rules use (an array's entries cannot go). */
static int ports_unmark(void)
{
	static const __u32 ports[] = { PUB, PUB2, TGT, TGT2, UPUB, UTGT };
	int fd = bpf_map__fd(skel->maps.port_interest);
	const __u8 none = 0;
	size_t i;

	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		if (bpf_map_update_elem(fd, &ports[i], &none, BPF_ANY))
			return -errno;
	return 0;
}

/* One PUBLIC entry per rule; one HIDDEN entry per target of any hiding rule, with HIDE, and
 * HIDE_LOCAL when one of those rules asks for it. Both ports of each rule are marked. */
static int set_fill(int fd, const struct rule_spec *rules)
{
	const struct rule_spec *r;
	int err;

	for (r = rules; r < rules + MAX_RULES && r->pub; r++) {
		struct redir_policy_key key = {
			.port = htons(r->pub), .proto = r->proto, .kind = POLICY_PUBLIC};
		struct redir_rule rule = {.target_port = htons(r->tgt)};

		err = port_mark(r->pub, r->proto);
		if (!err)
			err = port_mark(r->tgt, r->proto);
		if (err)
			return err;

		if (r->hide)
			rule.flags |= REDIR_F_HIDE;
		if (r->hide_local)
			rule.flags |= REDIR_F_HIDE_LOCAL;
		if (r->addr) {
			rule.flags |= REDIR_F_ADDR;
			if (rule_addr(rule.addr, r->addr))
				return -EINVAL;
		}
		if (bpf_map_update_elem(fd, &key, &rule, BPF_NOEXIST))
			return -errno;
	}
	for (r = rules; r < rules + MAX_RULES && r->pub; r++) {
		struct redir_policy_key key = {
			.port = htons(r->tgt), .proto = r->proto, .kind = POLICY_HIDDEN};
		struct redir_rule hidden = {};

		if (!r->hide)
			continue;
		if (bpf_map_lookup_elem(fd, &key, &hidden) && errno != ENOENT)
			return -errno;
		hidden.flags |= REDIR_F_HIDE | (r->hide_local ? REDIR_F_HIDE_LOCAL : 0);
		if (bpf_map_update_elem(fd, &key, &hidden, BPF_ANY))
			return -errno;
	}
	return set_enable_lo(fd);
}

/* Put set FD in the policy slot with one update (FD < 0: empty the slot); the test keeps
 * the live set's fd, for deleting rules from it. */
static int set_install(int fd)
{
	int policy_fd = bpf_map__fd(skel->maps.policy);
	__u32 slot = 0;

	if (fd < 0 ? bpf_map_delete_elem(policy_fd, &slot) && errno != ENOENT
		   : bpf_map_update_elem(policy_fd, &slot, &fd, BPF_ANY))
		return -errno;
	if (live_set >= 0)
		close(live_set);
	live_set = fd;
	return 0;
}

static int set_make(const struct rule_spec *rules)
{
	int fd = set_create(), err;

	if (fd < 0)
		return fd;
	err = set_fill(fd, rules);
	if (!err)
		err = set_install(fd);
	if (err)
		close(fd);
	return err;
}

/* --- port_stats --------------------------------------------------------------------------- */

static void port_key_add(struct port_counts *pc, __u16 port, __u8 proto)
{
	struct redir_port_key k = {.port = htons(port), .proto = proto};
	int i;

	if (!port || !proto)
		return;
	for (i = 0; i < pc->n; i++)
		if (!memcmp(&pc->key[i], &k, sizeof(k)))
			return;
	if (pc->n < MAX_PORT_KEYS)
		pc->key[pc->n++] = k;
}

/* As the loader does, one zeroed entry per public and hidden port of the case's rules (both
 * sets); also the packet's own ports (before and after), so a count in the wrong place
 * shows. */
static int port_stats_create(const struct tcase *c, struct port_counts *pc)
{
	const struct rule_spec *r;
	int i;

	memset(pc, 0, sizeof(*pc));
	map_clear(skel->maps.port_stats);
	if (c->no_port_stats)
		return 0;
	for (r = c->rules; r < c->rules + MAX_RULES && r->pub; r++) {
		port_key_add(pc, r->pub, r->proto);
		port_key_add(pc, r->tgt, r->proto);
	}
	for (r = c->swap; r < c->swap + MAX_RULES && r->pub; r++) {
		port_key_add(pc, r->pub, r->proto);
		port_key_add(pc, r->tgt, r->proto);
	}
	port_key_add(pc, c->pkt.sport, c->pkt.proto);
	port_key_add(pc, c->pkt.dport, c->pkt.proto);
	port_key_add(pc, c->exp_sport, c->pkt.proto);
	port_key_add(pc, c->exp_dport, c->pkt.proto);
	memset(percpu_ports, 0, ncpus * sizeof(*percpu_ports));
	for (i = 0; i < pc->n; i++)
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.port_stats), &pc->key[i],
					percpu_ports, BPF_NOEXIST))
			return -errno;
	return 0;
}

static int port_stats_read(struct port_counts *pc)
{
	int i, j, cpu;

	for (i = 0; i < pc->n; i++) {
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.port_stats), &pc->key[i],
					percpu_ports))
			return -errno;
		for (j = 0; j < PORT_STAT__MAX; j++)
			for (pc->count[i][j] = 0, cpu = 0; cpu < ncpus; cpu++)
				pc->count[i][j] += percpu_ports[cpu].count[j];
	}
	return 0;
}

/* Where the datapath must count the case's packet: translations and replies under the
 * public port (the one the client used), drops under the hidden target port. */
static bool port_stat_expected(const struct tcase *c, struct redir_port_key *k, int *idx)
{
	memset(k, 0, sizeof(*k));
	k->proto = c->pkt.proto;
	switch (c->stat) {
	case STAT_REWRITTEN:
		k->port = htons(c->pkt.dport);
		*idx = PORT_STAT_REWRITTEN;
		return true;
	case STAT_REVERSE_REWRITTEN:
		k->port = htons(c->exp_sport);
		*idx = PORT_STAT_REVERSE_REWRITTEN;
		return true;
	case STAT_HIDDEN_DROPPED:
		k->port = htons(c->pkt.dport);
		*idx = PORT_STAT_HIDDEN_DROPPED;
		return true;
	default:
		return false;
	}
}

static int port_stats_check(const struct tcase *c, const struct port_counts *before,
			    const struct port_counts *after, char *why, size_t n)
{
	struct redir_port_key want_key;
	int i, j, want_idx = -1, entries;
	bool want = port_stat_expected(c, &want_key, &want_idx);

	for (i = 0; i < after->n; i++) {
		bool here = want && !memcmp(&after->key[i], &want_key, sizeof(want_key));

		for (j = 0; j < PORT_STAT__MAX; j++) {
			__u64 exp = here && j == want_idx ? 1 : 0;
			__u64 got = after->count[i][j] - before->count[i][j];

			if (got != exp)
				return fail(why, n,
					    "port_stats %u/%u %s delta: expected %llu got %llu",
					    ntohs(after->key[i].port), after->key[i].proto,
					    redir_port_stat_names[j], (unsigned long long)exp,
					    (unsigned long long)got);
		}
	}
	entries = map_count(skel->maps.port_stats);
	if (entries != after->n)
		return fail(why, n, "port_stats entries: expected %d (made by the test) got %d",
			    after->n, entries);
	return 0;
}

/* --- packets ------------------------------------------------------------------------------ */

/* The ingress_ifindex of XDP runs: lo, as for TC runs, so the FIB asked is the same. */
static int xdp_ifindex;

/* XDP's verdict as the TC verdict of the same meaning; anything else stays out of range. */
static __u32 xdp_as_tc(__u32 ret)
{
	return ret == XDP_PASS ? TC_PASS : ret == XDP_DROP ? TC_ACT_SHOT : 1000 + ret;
}

/* The verdict a case or step asks for: 0 means the packet goes on. */
static __u32 want_retval(__u32 retval)
{
	return retval ? retval : TC_PASS;
}

static int prog_run(bool egress, const struct frame *in, __u8 *out, __u32 *out_len, __u32 *ret,
		    bool received)
{
	struct __sk_buff skb_ctx = { .ingress_ifindex = LO_IFINDEX };
	struct bpf_program *prog = egress ? skel->progs.bpfredir_tc_eg : skel->progs.bpfredir_tc_in;
	struct xdp_md ctx = { .data_end = in->len, .ingress_ifindex = xdp_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->buf, .data_size_in = in->len,
		    .data_out = out, .data_size_out = PKT_MAX, .repeat = 1);
	bool xdp = !egress && xdp_ingress;
	int err;

	/* The skb checksum flags mean nothing to XDP, which has no skb. */
	if (xdp) {
		prog = xskel->progs.bpfredir_xdp;
		opts.ctx_in = &ctx;
		opts.ctx_size_in = sizeof(ctx);
	} else {
		opts.flags = run_flags;
		if (received) {
			opts.ctx_in = &skb_ctx;
			opts.ctx_size_in = sizeof(skb_ctx);
		}
	}
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
	*out_len = opts.data_size_out;
	*ret = xdp ? xdp_as_tc(opts.retval) : opts.retval;
	return err;
}

static int frames_compare(const struct frame *exp, const __u8 *out, __u32 out_len, char *why,
			  size_t n)
{
	__u32 i;

	if (out_len != exp->len)
		return fail(why, n, "output length: expected %u got %u", exp->len, out_len);
	for (i = 0; i < out_len; i++)
		if (out[i] != exp->buf[i])
			return fail(why, n, "output byte %u: expected 0x%02x got 0x%02x", i,
				    exp->buf[i], out[i]);
	return 0;
}

/* Run SPEC through ingress or egress: it must get RETVAL and come out as SPEC with PORT for
 * its dport (ingress) or sport (egress), or unchanged when PORT is 0. */
static int packet_check(bool egress, const struct pkt_spec *spec, __u16 port, __u32 retval,
			char *why, size_t n)
{
	struct pkt_spec exp_spec = *spec;
	struct frame in, exp;
	__u8 out[PKT_MAX];
	__u32 out_len, ret;
	int err;

	if (port && egress)
		exp_spec.sport = port;
	else if (port)
		exp_spec.dport = port;
	pkt_build(&in, spec);
	pkt_build(&exp, &exp_spec);
	err = prog_run(egress, &in, out, &out_len, &ret, false);
	if (err)
		return fail(why, n, "BPF_PROG_TEST_RUN: %s", strerror(-err));
	if (ret != want_retval(retval))
		return fail(why, n, "retval: expected %u got %u", want_retval(retval), ret);
	return frames_compare(&exp, out, out_len, why, n);
}

/* The mapped (::ffff:a.b.c.d for v4) address of host H, as the flow maps store it. */
static void flow_addr(__u8 *dst, enum pkt_host h, bool v6)
{
	static const __u8 v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

	if (v6) {
		memcpy(dst, pkt_host(h)->v6, BPFREDIR_ADDR_LEN);
		return;
	}
	memcpy(dst, v4_mapped, sizeof(v4_mapped));
	memcpy(dst + 12, pkt_host(h)->v4, 4);
}

/* --- flows and pending -------------------------------------------------------------------- */

/* The packet whose tuple the case's entries are keyed by: its first ingress packet. */
static const struct pkt_spec *case_client(const struct tcase *c)
{
	const struct step *st;

	for (st = c->pre; st < c->pre + MAX_STEPS && st->op != STEP_END; st++)
		if (st->op == STEP_IN)
			return st->pkt;
	return c->egress ? NULL : &c->pkt;
}

static void entry_key(struct redir_flow_key *k, const struct pkt_spec *s, const struct entry *e)
{
	memset(k, 0, sizeof(*k));
	flow_addr(k->remote_addr, s->src, s->l3 == ETH_P_IPV6);
	flow_addr(k->local_addr, s->dst, s->l3 == ETH_P_IPV6);
	k->remote_port = htons(e->remote ?: s->sport);
	k->local_port = htons(e->local);
	k->proto = s->proto;
	k->dir = e->dir;
}

static const char *dir_name(__u8 dir)
{
	return dir == FLOW_DIR_IN ? "IN" : dir == FLOW_DIR_OUT ? "OUT" : "?";
}

/* Is KEY one of the entries the case expects in table T? */
static bool entry_expected(const struct tcase *c, const struct pkt_spec *s, enum table t,
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

/* Table T holds exactly the case's entries for it. */
static int table_check(const struct tcase *c, enum table t, char *why, size_t n)
{
	enum table other = t == T_FLOWS ? T_PENDING : T_FLOWS;
	const struct pkt_spec *s = case_client(c);
	int fd = bpf_map__fd(table_map(t)), want = 0, got;
	struct redir_flow_key key, next;
	const struct entry *e;
	struct redir_flow v;

	for (e = c->tables; e < c->tables + MAX_ENTRIES && e->table; e++) {
		if (e->table != t)
			continue;
		if (!s)
			return fail(why, n, "bad case: entries, but no ingress packet to key them");
		want++;
		entry_key(&key, s, e);
		if (bpf_map_lookup_elem(fd, &key, &v))
			return fail(why, n, "%s: %s %u (client port %u) missing%s", table_names[t],
				    dir_name(e->dir), e->local, ntohs(key.remote_port),
				    bpf_map_lookup_elem(bpf_map__fd(table_map(other)), &key, &v)
					    ? ""
				    : other == T_FLOWS ? " (flows has the key)"
						       : " (pending has the key)");
		if (ntohs(v.port) != e->port)
			return fail(why, n, "%s: %s %u: expected port %u got %u", table_names[t],
				    dir_name(e->dir), e->local, e->port, ntohs(v.port));
		if (v.flags != e->flags)
			return fail(why, n, "%s: %s %u: expected flags 0x%x got 0x%x",
				    table_names[t], dir_name(e->dir), e->local, e->flags, v.flags);
	}
	got = map_count(table_map(t));
	if (got == want)
		return 0;
	/* Name one entry that should not be there. */
	for (got = 0; !bpf_map_get_next_key(fd, got ? &key : NULL, &next); got++) {
		key = next;
		if (!entry_expected(c, s, t, &key) && !bpf_map_lookup_elem(fd, &key, &v))
			return fail(why, n,
				    "%s entries: expected %d, has more: %s %u -> %u "
				    "(client port %u)",
				    table_names[t], want, dir_name(key.dir), ntohs(key.local_port),
				    ntohs(v.port), ntohs(key.remote_port));
	}
	return fail(why, n, "%s entries: expected %d got %d", table_names[t], want, got);
}

/* flows and pending hold exactly the case's entries. */
static int tables_check(const struct tcase *c, char *why, size_t n)
{
	return table_check(c, T_FLOWS, why, n) || table_check(c, T_PENDING, why, n) ? -1 : 0;
}

/* Output checksum, recomputed in full, unless there is no whole L4 segment to sum. */
static int csum_check(const struct tcase *c, const struct frame *exp, const __u8 *out, char *why,
		      size_t n)
{
	const struct pkt_spec *s = &c->pkt;
	__u16 sum;

	if (!exp->l4_off || s->l4_trunc || (s->frag_off & 0x3fff) || s->udp_no_csum)
		return 0;
	sum = pkt_l4_sum(out, exp);
	if (sum != 0xffff)
		return fail(why, n, "output L4 checksum invalid: folded sum 0x%04x, want 0xffff",
			    sum);
	return 0;
}

static int steps_run(const struct tcase *c, char *why, size_t n)
{
	char step_why[200];
	int i, err;

	for (i = 0; i < MAX_STEPS && c->pre[i].op != STEP_END; i++) {
		const struct step *st = &c->pre[i];

		switch (st->op) {
		case STEP_IN:
		case STEP_OUT:
			if (packet_check(st->op == STEP_OUT, st->pkt, st->port, st->retval,
					 step_why, sizeof(step_why)))
				return fail(why, n, "step %d (%s packet): %s", i + 1,
					    st->op == STEP_OUT ? "egress" : "ingress", step_why);
			break;
		case STEP_DEL_RULES:
			if (live_set < 0)
				return fail(why, n, "step %d: no live set", i + 1);
			map_fd_clear(live_set);
			break;
		case STEP_SWAP:
			err = set_make(c->swap);
			if (err)
				return fail(why, n, "step %d: swapping sets: %s", i + 1,
					    strerror(-err));
			break;
		case STEP_IFACE_OFF: {
			struct redir_policy_key key = {.kind = POLICY_IFACE, .id = LO_IFINDEX};

			if (live_set < 0 || bpf_map_delete_elem(live_set, &key))
				return fail(why, n, "step %d: no interface entry in the live set",
					    i + 1);
			break;
		}
		case STEP_EVICT:
			map_clear(skel->maps.flows);
			map_clear(skel->maps.pending);
			break;
		case STEP_UNMARK:
			err = ports_unmark();
			if (err)
				return fail(why, n, "step %d: unmarking ports: %s", i + 1,
					    strerror(-err));
			break;
		case STEP_EMPTY_SLOT:
			err = set_install(-1);
			if (err)
				return fail(why, n, "step %d: emptying the slot: %s", i + 1,
					    strerror(-err));
			break;
		default:
			return fail(why, n, "step %d: bad op %d", i + 1, st->op);
		}
	}
	return 0;
}

static int case_run(const struct tcase *c, char *why, size_t n)
{
	__u64 before[STAT__MAX], after[STAT__MAX];
	struct port_counts ports_before, ports_after;
	struct pkt_spec exp_spec = c->pkt;
	struct frame in, exp;
	__u8 out[PKT_MAX];
	__u32 out_len, ret;
	int i, err;

	map_clear(skel->maps.flows);
	map_clear(skel->maps.pending);
	err = set_make(c->rules);
	if (err)
		return fail(why, n, "installing rules: %s", strerror(-err));
	err = port_stats_create(c, &ports_before);
	if (err)
		return fail(why, n, "creating port_stats entries: %s", strerror(-err));
	if (steps_run(c, why, n))
		return -1;

	pkt_build(&in, &c->pkt);
	exp_spec.sport = c->exp_sport ?: c->pkt.sport;
	exp_spec.dport = c->exp_dport ?: c->pkt.dport;
	pkt_build(&exp, &exp_spec);

	if (stats_read(before) || port_stats_read(&ports_before))
		return fail(why, n, "reading stats: %s", strerror(errno));
	ports_after = ports_before;
	err = prog_run(c->egress, &in, out, &out_len, &ret, c->received);
	if (err)
		return fail(why, n, "BPF_PROG_TEST_RUN: %s", strerror(-err));
	if (stats_read(after) || port_stats_read(&ports_after))
		return fail(why, n, "reading stats: %s", strerror(errno));

	if (ret != want_retval(c->retval))
		return fail(why, n, "retval: expected %u got %u", want_retval(c->retval), ret);
	if (frames_compare(&exp, out, out_len, why, n) || csum_check(c, &exp, out, why, n))
		return -1;
	for (i = 0; i < STAT__MAX; i++) {
		__u64 want = i == c->stat ? 1 : 0;

		if (after[i] - before[i] != want)
			return fail(why, n, "stat %s delta: expected %llu got %llu", redir_stat_names[i],
				    (unsigned long long)want,
				    (unsigned long long)(after[i] - before[i]));
	}
	if (port_stats_check(c, &ports_before, &ports_after, why, n))
		return -1;
	return tables_check(c, why, n);
}

/* Does the case send any packet through ingress? */
static bool case_has_ingress(const struct tcase *c)
{
	const struct step *st;

	for (st = c->pre; st < c->pre + MAX_STEPS && st->op != STEP_END; st++)
		if (st->op == STEP_IN)
			return true;
	return !c->egress;
}

/* What this kernel lacks for the case, or NULL: packets to the tunneled host need their
 * encapsulating route (netns.h), and the checksum-complete pass its BPF_PROG_TEST_RUN flag. */
static const char *case_missing(const struct tcase *c)
{
	if (!csum_complete_ok && (run_flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE))
		return SKB_CHECKSUM_COMPLETE_FEATURE;
	if (c->pkt.dst == HOST_TUNNELED || c->pkt.src == HOST_TUNNELED)
		return netns_encap_missing(&scope, c->pkt.l3 == ETH_P_IPV6 ? AF_INET6 : AF_INET);
	return NULL;
}

static int table_run(const struct tcase *table, size_t n_cases)
{
	const char *hook = xdp_ingress ? "xdp: " : "";
	const char *missing;
	char why[256];
	size_t i;
	int failed = 0;

	for (i = 0; i < n_cases; i++) {
		if (xdp_ingress && !case_has_ingress(&table[i]))
			continue;
		missing = case_missing(&table[i]);
		if (missing) {
			skip(missing, "%s%s%s", run_prefix(), hook, table[i].name);
			continue;
		}
		if (case_run(&table[i], why, sizeof(why))) {
			printf("FAIL: %s%s%s: %s\n", run_prefix(), hook, table[i].name, why);
			failed = 1;
		} else {
			printf("PASS: %s%s%s\n", run_prefix(), hook, table[i].name);
		}
	}
	return failed;
}

/* Both ways: TC ingress, then XDP in its place. */
static int table_run_both(const struct tcase *table, size_t n_cases)
{
	int failed;

	xdp_ingress = false;
	failed = table_run(table, n_cases);
	xdp_ingress = true;
	failed |= table_run(table, n_cases);
	xdp_ingress = false;
	return failed;
}

/* The XDP program loaded on the TC skeleton's maps, as the loader shares them by pin. */
static struct xdp_bpf *xdp_load_shared(void)
{
	struct xdp_bpf *x = xdp_bpf__open();
	struct bpf_map *map, *tc_map;
	int err = 0;

	if (!x)
		return NULL;
	bpf_object__for_each_map(map, x->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		tc_map = bpf_object__find_map_by_name(skel->obj, bpf_map__name(map));
		err = tc_map ? bpf_map__reuse_fd(map, bpf_map__fd(tc_map)) : -ENOENT;
		if (err)
			break;
	}
	if (!err)
		err = xdp_bpf__load(x);
	if (err) {
		xdp_bpf__destroy(x);
		errno = -err;
		return NULL;
	}
	return x;
}

/* --- a SYN flood -------------------------------------------------------------------------- */

#define FLOOD_PENDING 1024
#define FLOOD_SYNS 20000

static __u64 flood_rng = 0x5eed2026;

static __u32 flood_rand(void)
{
	flood_rng ^= flood_rng << 13;
	flood_rng ^= flood_rng >> 7;
	flood_rng ^= flood_rng << 17;
	return flood_rng >> 16;
}

/* Put ADDR (4 or 16 bytes, by the frame's family) in F's source or destination and redo the
 * checksums it is part of. */
static void frame_set_addr(struct frame *f, bool dst, const __u8 *addr)
{
	__u8 *ip = f->buf + f->l3_off, *l4 = f->buf + f->l4_off;
	__u32 csum_off = f->proto == IPPROTO_TCP ? 16 : 6;

	if (f->v6) {
		memcpy(ip + (dst ? 24 : 8), addr, 16);
	} else {
		memcpy(ip + (dst ? 16 : 12), addr, 4);
		pkt_put16(ip + 10, 0);
		pkt_put16(ip + 10, ~pkt_csum_fold(pkt_csum_add(0, ip, f->l4_off - f->l3_off)));
	}
	pkt_put16(l4 + csum_off, 0);
	pkt_put16(l4 + csum_off, ~pkt_l4_sum(f->buf, f));
}

/* One spoofed SYN to the public port, from ADDR:SPORT, and the service's SYN-ACK to it:
 * both translated, the checksum still right. */
static int flood_pair(bool v6, const __u8 *addr, __u16 sport, char *why, size_t n)
{
	struct pkt_spec syn = {PKT(v6 ? ETH_P_IPV6 : ETH_P_IP, IPPROTO_TCP, HOST_STRANGER,
				   HOST_SERVER, sport, PUB, SYN)};
	struct pkt_spec synack = {PKT(v6 ? ETH_P_IPV6 : ETH_P_IP, IPPROTO_TCP, HOST_SERVER,
				      HOST_STRANGER, TGT, sport, SYN | ACK)};
	struct frame f;
	__u8 out[PKT_MAX];
	__u32 out_len, ret;
	int i, err;

	for (i = 0; i < 2; i++) {
		pkt_build(&f, i ? &synack : &syn);
		frame_set_addr(&f, i, addr);
		err = prog_run(i, &f, out, &out_len, &ret, false);
		if (err || ret != TC_PASS || out_len != f.len)
			return fail(why, n, "%s: err %d retval %u length %u", i ? "syn-ack" : "syn",
				    err, ret, out_len);
		if (((out[f.l4_off + 2 * !i] << 8) | out[f.l4_off + 2 * !i + 1]) != (i ? PUB : TGT))
			return fail(why, n, "%s not translated", i ? "syn-ack" : "syn");
		if (pkt_l4_sum(out, &f) != 0xffff)
			return fail(why, n, "%s: output checksum invalid", i ? "syn-ack" : "syn");
	}
	return 0;
}

/*
 * A connection that made it to flows survives a flood of spoofed SYNs to its public port:
 * pending (here FLOOD_PENDING entries) churns, flows keeps it, and its packets and replies
 * are still translated afterwards. One that was only pending is pushed out.
 */
static int flood_run(char *why, size_t n)
{
	static const struct rule_spec rules[MAX_RULES] = {TCP_RULE};
	static const struct step script[] = {ESTABLISH4, IN(syn4_c2, TGT)};
	/* What the maps hold before the flood: the established connection from CPORT, and
	 * the one from CPORT2 still pending (keyed as syn4's tuple, see case_client). */
	static const struct tcase before = {
		.pre = {IN(syn4, TGT)},
		.tables = {FLOWS_PAIR(PUB, TGT), PEND_FROM(CPORT2, IN, PUB, TGT),
			   PEND_FROM(CPORT2, OUT, TGT, PUB)},
	};
	static const struct tcase established = {.pre = {IN(syn4, TGT)}, ESTABLISHED};
	static const struct entry c2_out = PEND_FROM(CPORT2, OUT, TGT, PUB);
	static const struct entry c2_in = PEND_FROM(CPORT2, IN, PUB, TGT);
	static const struct pkt_spec ackout4_c2 = {
		PKT(ETH_P_IP, IPPROTO_TCP, HOST_SERVER, HOST_CLIENT, TGT, CPORT2, ACK)};
	struct tc_bpf *flood_skel;
	struct redir_flow_key k;
	struct redir_flow v;
	char sub[200];
	int i, err, pending;

	flood_skel = tc_bpf__open();
	if (!flood_skel)
		return fail(why, n, "tc_bpf__open: %s", strerror(errno));
	err = bpf_map__set_max_entries(flood_skel->maps.pending, FLOOD_PENDING);
	if (!err)
		err = tc_bpf__load(flood_skel);
	if (err) {
		tc_bpf__destroy(flood_skel);
		return fail(why, n, "loading with a small pending map: %s", strerror(-err));
	}
	set_install(-1); /* the old skeleton's set */
	xdp_bpf__destroy(xskel); /* on the old skeleton's maps; the flood is TC only */
	xskel = NULL;
	tc_bpf__destroy(skel);
	skel = flood_skel;
	err = local_addrs_record();
	if (err)
		return fail(why, n, "recording the server's addresses: %s", strerror(-err));
	err = set_make(rules);
	if (err)
		return fail(why, n, "installing rules: %s", strerror(-err));

	for (i = 0; i < (int)(sizeof(script) / sizeof(script[0])); i++)
		if (packet_check(script[i].op == STEP_OUT, script[i].pkt, script[i].port, 0, sub,
				 sizeof(sub)))
			return fail(why, n, "before the flood, packet %d: %s", i + 1, sub);
	if (tables_check(&before, sub, sizeof(sub)))
		return fail(why, n, "before the flood: %s", sub);

	for (i = 0; i < FLOOD_SYNS; i++) {
		__u8 addr[16] = {0x20, 0x01, 0x0d, 0xb8, 0xf1};
		bool v6 = flood_rand() & 1;
		__u32 r = flood_rand();

		if (v6) {
			memcpy(addr + 12, &r, 4);
		} else {
			addr[0] = 10;
			memcpy(addr + 1, &r, 3);
		}
		if (flood_pair(v6, addr, 1024 + flood_rand() % 64000, sub, sizeof(sub)))
			return fail(why, n, "spoofed SYN %d: %s", i + 1, sub);
	}

	pending = map_count(skel->maps.pending);
	printf("# syn flood: pending holds %d entries after %d spoofed SYNs\n", pending,
	       FLOOD_SYNS);
	if (pending > FLOOD_PENDING || pending < FLOOD_PENDING / 2)
		return fail(why, n, "pending holds %d entries after the flood, want %d..%d",
			    pending, FLOOD_PENDING / 2, FLOOD_PENDING);
	/* flows holds the established connection, and nothing of the flood. */
	if (table_check(&established, T_FLOWS, sub, sizeof(sub)))
		return fail(why, n, "after the flood: %s", sub);
	/* The connection from CPORT2 was only pending: pushed out, its reply dropped rather than
	 * sent from the hidden port. */
	entry_key(&k, &syn4, &c2_out);
	if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.pending), &k, &v))
		return fail(why, n, "the pending connection's OUT survived %d spoofed SYNs",
			    FLOOD_SYNS);
	entry_key(&k, &syn4, &c2_in);
	if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.pending), &k, &v))
		return fail(why, n, "the pending connection's IN survived %d spoofed SYNs",
			    FLOOD_SYNS);
	if (packet_check(true, &ackout4_c2, 0, TC_ACT_SHOT, sub, sizeof(sub)))
		return fail(why, n, "after the flood, the pending connection's reply: %s", sub);
	/* The established connection goes on, both ways, and stays in flows. */
	if (packet_check(false, &ack4, TGT, 0, sub, sizeof(sub)))
		return fail(why, n, "after the flood, the client's ack: %s", sub);
	if (packet_check(true, &ackout4, PUB, 0, sub, sizeof(sub)))
		return fail(why, n, "after the flood, the service's ack: %s", sub);
	if (table_check(&established, T_FLOWS, sub, sizeof(sub)))
		return fail(why, n, "at the end: %s", sub);
	return 0;
}

/* Keep this thread on the CPU it runs on; SAVED gets what it was allowed before. */
static int pin_to_this_cpu(cpu_set_t *saved)
{
	int cpu = sched_getcpu();
	cpu_set_t one;

	if (cpu < 0 || sched_getaffinity(0, sizeof(*saved), saved))
		return -errno;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof(one), &one) ? -errno : 0;
}

int main(void)
{
	char why[256];
	int failed = 0, err;
	__u32 slot = 0, id;
	cpu_set_t cpus_saved;

	if (netns_enter_fresh(why, sizeof(why))) {
		printf("FAIL: setup: network namespace: %s\n", why);
		return 1;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		printf("FAIL: setup: libbpf_num_possible_cpus: %d\n", ncpus);
		return 1;
	}
	percpu = calloc(ncpus, sizeof(*percpu));
	percpu_ports = calloc(ncpus, sizeof(*percpu_ports));
	skel = tc_bpf__open_and_load();
	if (!percpu || !percpu_ports || !skel) {
		printf("FAIL: setup: cannot open and load the TC skeleton: %s\n", strerror(errno));
		return 1;
	}
	xskel = xdp_load_shared();
	if (!xskel) {
		printf("FAIL: setup: cannot load the XDP program on the TC maps: %s\n",
		       strerror(errno));
		return 1;
	}
	if (local_addrs_record()) {
		printf("FAIL: setup: recording the server's addresses: %s\n", strerror(errno));
		return 1;
	}
	if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.policy), &slot, &id) || errno != ENOENT) {
		printf("FAIL: policy slot empty after load: %s\n", strerror(errno));
		failed = 1;
	} else {
		printf("PASS: policy slot empty after load\n");
	}
	xdp_ifindex = if_nametoindex("lo");
	failed |= table_run_both(cases, sizeof(cases) / sizeof(cases[0]));
	/* XDP has no skb, so no checksum state: this pass is TC's only. */
	err = probe_skb_checksum_complete(why, sizeof(why));
	if (err < 0) {
		printf("FAIL: setup: %s\n", why);
		failed = 1;
	} else {
		csum_complete_ok = err;
		run_flags = BPF_F_TEST_SKB_CHECKSUM_COMPLETE;
		failed |= table_run(cases, sizeof(cases) / sizeof(cases[0]));
		run_flags = 0;
	}

	if (netns_enter_fresh(why, sizeof(why)) || netns_setup_scope(&scope, why, sizeof(why))) {
		printf("FAIL: setup: forwarding network namespace: %s\n", why);
		failed = 1;
	} else {
		xdp_ifindex = if_nametoindex("lo");
		failed |= table_run_both(scope_cases, sizeof(scope_cases) / sizeof(scope_cases[0]));
		netns_teardown_scope();
	}

	if (netns_enter_fresh(why, sizeof(why)) || netns_setup_default_route(why, sizeof(why))) {
		printf("FAIL: setup: namespace with a default route: %s\n", why);
		failed = 1;
	} else {
		xdp_ifindex = if_nametoindex("lo");
		failed |= table_run_both(default_route_cases,
					 sizeof(default_route_cases) / sizeof(default_route_cases[0]));
		netns_teardown_scope();
	}

	/* An LRU map keeps free lists per CPU: a run that moves between CPUs leaves entries in
	 * the first CPU's lists, out of the flood's reach (seen on 6.1), so what the flood
	 * evicts would depend on the scheduler. It runs on one CPU. */
	err = pin_to_this_cpu(&cpus_saved);
	if (err) {
		printf("FAIL: syn flood: cannot run on one CPU: %s\n", strerror(-err));
		failed = 1;
	} else if (netns_enter_fresh(why, sizeof(why)) || flood_run(why, sizeof(why))) {
		printf("FAIL: syn flood: %s\n", why);
		failed = 1;
	} else {
		printf("PASS: syn flood: an established flow survives %d spoofed SYNs and their "
		       "SYN-ACKs with pending at %d entries\n",
		       FLOOD_SYNS, FLOOD_PENDING);
	}
	if (!err)
		sched_setaffinity(0, sizeof(cpus_saved), &cpus_saved);
	set_install(-1);
	xdp_bpf__destroy(xskel);
	tc_bpf__destroy(skel);
	free(percpu_ports);
	free(percpu);
	return failed;
}
