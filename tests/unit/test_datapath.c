// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Table-driven test of the TC programs through BPF_PROG_TEST_RUN. Each case fills the
 * rules/hidden maps, optionally runs a priming ingress packet (and then deletes the rules),
 * runs one frame through ingress or egress, and checks the verdict, the output frame byte
 * for byte against one built independently, the TCP/UDP checksum by full recomputation,
 * the stats and port_stats deltas and the flows map.
 *
 * The binary runs in network namespaces of its own (netns.h): the first table in one that
 * does not forward, where every destination is this host's; the scope table in one that
 * forwards the stranger's prefixes (and the tunneled host's, through encapsulating routes),
 * where only the server's addresses are local.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "tc.skel.h"
#include "pktbuild.h"
#include "netns.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define NO_STAT (-1)
#define MAX_RULES 2

#define PUB 8445
#define PUB2 8446
#define TGT 8443
#define UPUB 5353
#define UTGT 5354
#define CPORT 40000

struct rule_spec {
	__u16 pub, tgt; /* host order; pub == 0 ends the list */
	__u8 proto;
	bool hide;
	const char *addr; /* REDIR_F_ADDR: only packets to this address (v4 or v6) */
};

struct tcase {
	const char *name;
	struct rule_spec rules[MAX_RULES];
	const struct pkt_spec *prime; /* ingress packet run first, must pass */
	bool drop_rules;	      /* then empty the rules and hidden maps */
	const struct pkt_spec *then;  /* then this ingress packet, whatever its verdict */
	bool egress;
	struct pkt_spec pkt;
	__u16 exp_sport, exp_dport; /* ports in the expected output, 0 = unchanged */
	__u32 retval;
	int stat;  /* the one counter expected to go up by one, or NO_STAT */
	int flows; /* entries in the flows map afterwards */
	/* Create no port_stats entries: the datapath must not create any either. */
	bool no_port_stats;
};

/* clang-format off */
/* Client -> server on ingress; server -> DST_ on egress. */
#define TO_SERVER(l3_, proto_, dport_, flags_)                                                  \
	.l3 = (l3_), .proto = (proto_), .src = HOST_CLIENT, .dst = HOST_SERVER, .sport = CPORT, \
	.dport = (dport_), .tcp_flags = (flags_)
#define TO_HOST(l3_, proto_, dst_, dport_, flags_)                                         \
	.l3 = (l3_), .proto = (proto_), .src = HOST_CLIENT, .dst = (dst_), .sport = CPORT, \
	.dport = (dport_), .tcp_flags = (flags_)
#define REPLY_FROM(l3_, src_, dst_)                                                     \
	.l3 = (l3_), .proto = IPPROTO_TCP, .src = (src_), .dst = (dst_), .sport = TGT, \
	.dport = CPORT, .tcp_flags = PKT_TCP_FLAG_SYN | PKT_TCP_FLAG_ACK
#define REPLY(l3_, dst_) REPLY_FROM(l3_, HOST_SERVER, dst_)
#define SYN PKT_TCP_FLAG_SYN
#define ACK PKT_TCP_FLAG_ACK
#define TCP_RULE { .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true }
#define UDP_RULE { .pub = UPUB, .tgt = UTGT, .proto = IPPROTO_UDP, .hide = true }
/* The TCP rule with --no-hide. */
#define TCP_RULE_OPEN { .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP }
/* A second public port for the TCP target. */
#define TCP_RULE2 { .pub = PUB2, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true }
/* The TCP rule's port numbers, for UDP. */
#define UDP_SAME_PORTS_RULE { .pub = PUB, .tgt = TGT, .proto = IPPROTO_UDP, .hide = true }
/* The TCP rule, narrowed to one destination address. */
#define TCP_RULE_ADDR(addr_) \
	{ .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true, .addr = (addr_) }
#define STRANGER4 "203.0.113.99" /* HOST_STRANGER, in the forwarded prefix */
#define STRANGER6 "2001:db8:2::99"
/* The client's SYN went through, then the rule and its hidden entry were deleted. */
#define AFTER_DELETE .prime = &syn4, .drop_rules = true
#define DSTOPTS8 60, 60, 60, 60, 60, 60, 60, 60

static const struct pkt_spec syn4 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) };
static const struct pkt_spec syn6 = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) };
/* The same client port straight to the target. */
static const struct pkt_spec syn4_tgt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) };
static const struct pkt_spec syn6_tgt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) };
static const struct pkt_spec syn4_pub2 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB2, SYN) };
static const struct pkt_spec syn4_stranger = {
	TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) };
static const struct pkt_spec syn6_stranger = {
	TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) };

static const struct tcase cases[] = {
	{ "v4 tcp syn to public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
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
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 with options rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .ip_opt_len = 12 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 802.1q tagged rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .vlans = 1 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 802.1ad+802.1q tagged to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .vlans = 2 },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v6 tcp rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v6 tcp to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v6 hop-by-hop + dest-opts chain rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 2, .ext = { 0, 60 } },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	/* parse.h walks chains of up to IPV6_MAX_EXT_HDRS (8); only longer ones are malformed. */
	{ "v6 chain of exactly 8 ext headers rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 8, .ext = { DSTOPTS8 } },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v6 chain of 9 ext headers dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 9,
		   .ext = { DSTOPTS8, 60 } },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 udp rewritten", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v6 udp rewritten", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 udp zero checksum stays zero", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0), .udp_no_csum = true },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 udp checksum computing to zero sent as 0xffff", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0), .zero_csum_dport = UTGT },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "udp to hidden tcp port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, TGT, 0) }, .stat = STAT_PASSED },
	{ "udp to tcp-only public port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, PUB, 0) }, .stat = STAT_PASSED },
	{ "egress v4 reply sport rewritten to public", { TCP_RULE }, .prime = &syn4, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	{ "egress v6 reply sport rewritten to public", { TCP_RULE }, .prime = &syn6, .egress = true,
	  .pkt = { REPLY(ETH_P_IPV6, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	{ "egress reply to unknown client untouched", { TCP_RULE }, .prime = &syn4, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_STRANGER) }, .stat = NO_STAT, .flows = 2 },
	{ "egress reply rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	{ "established flow rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "fresh syn not rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED, .flows = 2 },
	/* The direct SYN removes the OUT flow its tuple had from the translated one. */
	{ "target reachable after rule and hidden deleted", { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .stat = STAT_PASSED, .flows = 1 },
	/* A translated connection leaves nothing that bites a direct one from the same client
	 * port: its replies keep the target port. */
	{ "egress reply to direct syn after rule deleted untouched", { TCP_RULE }, AFTER_DELETE,
	  .then = &syn4_tgt, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) }, .stat = NO_STAT, .flows = 1 },
	{ "direct syn to --no-hide target passed, drops the stale reply flow", { TCP_RULE_OPEN },
	  .prime = &syn4,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .stat = STAT_PASSED, .flows = 1 },
	{ "egress v6 reply to direct syn to --no-hide target untouched", { TCP_RULE_OPEN },
	  .prime = &syn6, .then = &syn6_tgt, .egress = true,
	  .pkt = { REPLY(ETH_P_IPV6, HOST_CLIENT) }, .stat = NO_STAT, .flows = 1 },
	{ "non-syn straight to --no-hide target keeps the reply flow", { TCP_RULE_OPEN },
	  .prime = &syn4,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, ACK) }, .stat = STAT_PASSED, .flows = 2 },
	/* A SYN the hidden port drops never reaches the service: a spoofed one must not cut
	 * the live connection's replies. */
	{ "dropped syn to hidden target keeps the reply flow", { TCP_RULE }, .prime = &syn4,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED, .flows = 2 },
	{ "egress reply after dropped direct syn still rewritten", { TCP_RULE }, .prime = &syn4,
	  .then = &syn4_tgt, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	/* Without forwarding every destination is ours, even one the scope table forwards. */
	{ "not forwarding: v4 to any address on public port rewritten", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "not forwarding: v6 to any address on hidden port dropped", { TCP_RULE },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "not forwarding: rule with another address leaves the packet alone",
	  { TCP_RULE_ADDR(STRANGER4) },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED },
	/* Every case checks port_stats (see port_stats_expected); these single out sharing. */
	{ "port_stats: syn to the second public port counted under it", { TCP_RULE, TCP_RULE2 },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB2, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "port_stats: reply counted under the public port the client used",
	  { TCP_RULE, TCP_RULE2 }, .prime = &syn4_pub2, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB2, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	{ "port_stats: drop counted under the shared hidden port", { TCP_RULE, TCP_RULE2 },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "port_stats: udp counted under the udp entry, not the tcp one",
	  { TCP_RULE, UDP_SAME_PORTS_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, PUB, 0) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "port_stats: udp drop counted under the udp entry", { TCP_RULE, UDP_SAME_PORTS_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_UDP, TGT, 0) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "port_stats: established flow after rule deleted counted under public port",
	  { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "port_stats: rewrite without an entry creates none", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2, .no_port_stats = true },
	{ "port_stats: hidden drop without an entry creates none", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED, .no_port_stats = true },
};

/* Run in a namespace that forwards: HOST_SERVER's addresses are on lo, HOST_STRANGER's
 * prefixes are routed out of a veth pair (netns_setup_scope). */
static const struct tcase scope_cases[] = {
	{ "scope: v4 to local address on public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "scope: v6 to local address on public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "scope: v4 udp to local address on public port rewritten", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
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
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "scope: v6 rule with --addr of a forwarded address rewrites it",
	  { TCP_RULE_ADDR(STRANGER6) },
	  .pkt = { TO_HOST(ETH_P_IPV6, IPPROTO_TCP, HOST_STRANGER, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
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
	{ "scope: v4 established flow to --addr address rewritten after rule deleted",
	  { TCP_RULE_ADDR(STRANGER4) }, .prime = &syn4_stranger, .drop_rules = true,
	  .pkt = { TO_HOST(ETH_P_IP, IPPROTO_TCP, HOST_STRANGER, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "scope: egress v6 reply from --addr address rewritten", { TCP_RULE_ADDR(STRANGER6) },
	  .prime = &syn6_stranger, .egress = true,
	  .pkt = { REPLY_FROM(ETH_P_IPV6, HOST_STRANGER, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
};
/* clang-format on */

static const char *const stat_names[STAT__MAX] = {
	[STAT_REWRITTEN] = "rewritten",
	[STAT_REVERSE_REWRITTEN] = "reverse_rewritten",
	[STAT_HIDDEN_DROPPED] = "hidden_dropped",
	[STAT_MALFORMED_DROPPED] = "malformed_dropped",
	[STAT_PASSED] = "passed",
	[STAT_SOCK_REDIRECTED] = "sock_redirected",
};

static struct tc_bpf *skel;
static int ncpus;
static __u64 *percpu;
static struct redir_port_stats *percpu_ports;

#define MAX_PORT_KEYS 8

/* The port_stats entries a case creates, and their summed counters. */
struct port_counts {
	int n;
	struct redir_port_key key[MAX_PORT_KEYS];
	__u64 count[MAX_PORT_KEYS][PORT_STAT__MAX];
};

static const char *const port_stat_names[PORT_STAT__MAX] = {
	[PORT_STAT_REWRITTEN] = "rewritten",
	[PORT_STAT_REVERSE_REWRITTEN] = "reverse_rewritten",
	[PORT_STAT_HIDDEN_DROPPED] = "hidden_dropped",
};

static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

static void map_clear(struct bpf_map *map)
{
	__u8 key[64];

	while (!bpf_map_get_next_key(bpf_map__fd(map), NULL, key))
		if (bpf_map_delete_elem(bpf_map__fd(map), key))
			break;
}

static int map_count(struct bpf_map *map)
{
	__u8 key[64], next[64];
	int n = 0;

	for (; !bpf_map_get_next_key(bpf_map__fd(map), n ? key : NULL, next); n++)
		memcpy(key, next, sizeof(key));
	return n;
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

/* ADDR (v4 or v6 text) as the rules map stores it: v4 as ::ffff:a.b.c.d. */
static int rule_addr(__u8 *dst, const char *addr)
{
	memset(dst, 0, BPFREDIR_ADDR_LEN);
	if (inet_pton(AF_INET6, addr, dst) == 1)
		return 0;
	dst[10] = 0xff;
	dst[11] = 0xff;
	return inet_pton(AF_INET, addr, dst + 12) == 1 ? 0 : -EINVAL;
}

static int rules_install(const struct tcase *c)
{
	const struct rule_spec *r;
	__u32 one = 1;

	for (r = c->rules; r < c->rules + MAX_RULES && r->pub; r++) {
		struct redir_rule_key rk = {.public_port = htons(r->pub), .proto = r->proto};
		struct redir_rule rv = {.target_port = htons(r->tgt),
					.flags = r->hide ? REDIR_F_HIDE : 0};
		struct redir_port_key hk = {.port = htons(r->tgt), .proto = r->proto};

		if (r->addr) {
			rv.flags |= REDIR_F_ADDR;
			if (rule_addr(rv.addr, r->addr))
				return -EINVAL;
		}
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.rules), &rk, &rv, BPF_ANY))
			return -errno;
		if (r->hide && bpf_map_update_elem(bpf_map__fd(skel->maps.hidden), &hk, &one, 0))
			return -errno;
	}
	return 0;
}

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

/* As the loader does, one zeroed entry per public and hidden port of the case's rules;
 * also the packet's own ports (before and after), so a count in the wrong place shows. */
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
					    port_stat_names[j], (unsigned long long)exp,
					    (unsigned long long)got);
		}
	}
	entries = map_count(skel->maps.port_stats);
	if (entries != after->n)
		return fail(why, n, "port_stats entries: expected %d (made by the test) got %d",
			    after->n, entries);
	return 0;
}

static int prog_run(bool egress, const struct frame *in, __u8 *out, __u32 *out_len, __u32 *ret)
{
	struct bpf_program *prog = egress ? skel->progs.bpfredir_tc_eg : skel->progs.bpfredir_tc_in;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->buf, .data_size_in = in->len,
		    .data_out = out, .data_size_out = PKT_MAX, .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);

	*out_len = opts.data_size_out;
	*ret = opts.retval;
	return err;
}

/* The mapped (::ffff:a.b.c.d for v4) address of host H, as the flows map stores it. */
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

/* The IN entry (public -> target) and OUT entry (target -> public) of an ingress rewrite. */
static int flows_check(const struct tcase *c, char *why, size_t n)
{
	const struct pkt_spec *s = &c->pkt;
	__u16 local[2] = {s->dport, c->exp_dport}, want[2] = {c->exp_dport, s->dport};
	int i;

	for (i = 0; i < 2; i++) {
		struct redir_flow_key k = {.remote_port = htons(s->sport),
					   .local_port = htons(local[i]),
					   .proto = s->proto,
					   .dir = i ? FLOW_DIR_OUT : FLOW_DIR_IN};
		struct redir_flow v;

		flow_addr(k.remote_addr, s->src, s->l3 == ETH_P_IPV6);
		flow_addr(k.local_addr, s->dst, s->l3 == ETH_P_IPV6);
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.flows), &k, &v))
			return fail(why, n, "flow %s %u missing", i ? "OUT" : "IN", local[i]);
		if (ntohs(v.port) != want[i])
			return fail(why, n, "flow %s %u: expected port %u got %u", i ? "OUT" : "IN",
				    local[i], want[i], ntohs(v.port));
	}
	return 0;
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

static int case_run(const struct tcase *c, char *why, size_t n)
{
	__u64 before[STAT__MAX], after[STAT__MAX];
	struct port_counts ports_before, ports_after;
	struct pkt_spec exp_spec = c->pkt;
	struct frame in, exp;
	__u8 out[PKT_MAX];
	__u32 out_len, ret;
	int i, err, flows;

	map_clear(skel->maps.rules);
	map_clear(skel->maps.hidden);
	map_clear(skel->maps.flows);
	err = rules_install(c);
	if (err)
		return fail(why, n, "installing rules: %s", strerror(-err));
	err = port_stats_create(c, &ports_before);
	if (err)
		return fail(why, n, "creating port_stats entries: %s", strerror(-err));
	if (c->prime) {
		pkt_build(&in, c->prime);
		err = prog_run(false, &in, out, &out_len, &ret);
		if (err || ret != TC_ACT_OK)
			return fail(why, n, "priming packet: err %d retval %u", err, ret);
	}
	if (c->drop_rules) {
		map_clear(skel->maps.rules);
		map_clear(skel->maps.hidden);
	}
	if (c->then) {
		pkt_build(&in, c->then);
		err = prog_run(false, &in, out, &out_len, &ret);
		if (err)
			return fail(why, n, "second packet: BPF_PROG_TEST_RUN: %s", strerror(-err));
	}

	pkt_build(&in, &c->pkt);
	exp_spec.sport = c->exp_sport ?: c->pkt.sport;
	exp_spec.dport = c->exp_dport ?: c->pkt.dport;
	pkt_build(&exp, &exp_spec);

	ports_after = ports_before;
	if (stats_read(before) || port_stats_read(&ports_before))
		return fail(why, n, "reading stats: %s", strerror(errno));
	err = prog_run(c->egress, &in, out, &out_len, &ret);
	if (err)
		return fail(why, n, "BPF_PROG_TEST_RUN: %s", strerror(-err));
	if (stats_read(after) || port_stats_read(&ports_after))
		return fail(why, n, "reading stats: %s", strerror(errno));

	if (ret != c->retval)
		return fail(why, n, "retval: expected %u got %u", c->retval, ret);
	if (frames_compare(&exp, out, out_len, why, n) || csum_check(c, &exp, out, why, n))
		return -1;
	for (i = 0; i < STAT__MAX; i++) {
		__u64 want = i == c->stat ? 1 : 0;

		if (after[i] - before[i] != want)
			return fail(why, n, "stat %s delta: expected %llu got %llu", stat_names[i],
				    (unsigned long long)want,
				    (unsigned long long)(after[i] - before[i]));
	}
	if (port_stats_check(c, &ports_before, &ports_after, why, n))
		return -1;
	flows = map_count(skel->maps.flows);
	if (flows != c->flows)
		return fail(why, n, "flows entries: expected %d got %d", c->flows, flows);
	if (!c->egress && c->exp_dport)
		return flows_check(c, why, n);
	return 0;
}

static int table_run(const struct tcase *table, size_t n_cases)
{
	char why[256];
	size_t i;
	int failed = 0;

	for (i = 0; i < n_cases; i++) {
		if (case_run(&table[i], why, sizeof(why))) {
			printf("FAIL: %s: %s\n", table[i].name, why);
			failed = 1;
		} else {
			printf("PASS: %s\n", table[i].name);
		}
	}
	return failed;
}

int main(void)
{
	char why[256];
	int failed = 0;

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
	failed |= table_run(cases, sizeof(cases) / sizeof(cases[0]));

	if (netns_enter_fresh(why, sizeof(why)) || netns_setup_scope(why, sizeof(why))) {
		printf("FAIL: setup: forwarding network namespace: %s\n", why);
		failed = 1;
	} else {
		failed |= table_run(scope_cases, sizeof(scope_cases) / sizeof(scope_cases[0]));
		netns_teardown_scope();
	}
	tc_bpf__destroy(skel);
	free(percpu_ports);
	free(percpu);
	return failed;
}
