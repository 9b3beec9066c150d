// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ICMP errors that quote a translated connection, through BPF_PROG_TEST_RUN. Each case
 * installs the rules (tcp 8445->8443, udp 5353->5354), lets the client's SYN and datagram
 * through ingress (so the connection tables hold them), then runs one ICMP or
 * ICMPv6 frame through ingress or egress and compares the output byte for byte with a frame
 * built here from scratch: the quote as pkt_build makes it with the translated port (so its
 * L4 checksum is computed afresh, not incrementally) and a freshly computed ICMP checksum.
 *
 * - ingress: a router's error about the service's reply, which left with sport 8445: the
 *   quote's source port goes back to 8443;
 * - egress: this host's error about a client packet it received on 8443: the quote's
 *   destination port goes back to 8445;
 * - untouched: errors about other connections, non-errors, quotes of non-first fragments
 *   or too short to hold the ports.
 *
 * Every case runs a second time with the skb CHECKSUM_COMPLETE: the checksum updates cancel
 * out in the packet's sum, so skb->csum must stay right. The ingress cases run a third time
 * through the XDP program (--mode xdp), on the same maps: its glue is TC's, its rewrite not.
 */
#include <string.h>
#include "bpfredir.h"
#include "pktbuild.h"
#include "harness.h"
#include "fixture.h"
#include "tctest.h"

#define CPORT2 40001
#define BUF_MAX 1024

struct icase {
	const char *name;
	bool egress;
	__u8 type, code;	    /* of the error */
	struct pkt_spec quoted;	    /* the packet the error quotes, as it was on the wire */
	__u32 quote_l4;		    /* bytes of its L4 header (and data) quoted; 0: all */
	__u16 exp_sport, exp_dport; /* the quote's ports afterwards; 0: unchanged */
};

/* clang-format off */
#define SERVER_REPLY_TO(l3_, proto_, sport_, dport_, flags_) \
	.l3 = (l3_), .proto = (proto_), .src = HOST_SERVER, .dst = HOST_CLIENT, \
	.sport = (sport_), .dport = (dport_), .tcp_flags = (flags_)
#define SERVER_REPLY(l3_, proto_, sport_, flags_) \
	SERVER_REPLY_TO(l3_, proto_, sport_, CPORT, flags_)
#define ACKPSH (PKT_TCP_FLAG_ACK | PKT_TCP_FLAG_PSH)

static const struct icase cases[] = {
	{ "ingress v4 frag needed quoting the reply: sport 8445 -> 8443", false, 3, 4,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, PUB, ACKPSH) }, .exp_sport = TGT },
	{ "ingress v4 frag needed quoting 8 bytes of tcp: sport back, no l4 checksum", false, 3,
	  4, { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, PUB, ACKPSH) }, .quote_l4 = 8,
	  .exp_sport = TGT },
	{ "ingress v4 time exceeded quoting the reply", false, 11, 0,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, PUB, ACKPSH) }, .exp_sport = TGT },
	{ "ingress v4 frag needed quoting a reply with ip options", false, 3, 4,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, PUB, ACKPSH), .ip_opt_len = 8 },
	  .exp_sport = TGT },
	{ "ingress v6 packet too big quoting the reply: sport 8445 -> 8443", false, 2, 0,
	  { SERVER_REPLY(ETH_P_IPV6, IPPROTO_TCP, PUB, ACKPSH) }, .exp_sport = TGT },
	{ "ingress v6 packet too big quoting a reply behind extension headers", false, 2, 0,
	  { SERVER_REPLY(ETH_P_IPV6, IPPROTO_TCP, PUB, ACKPSH), .n_ext = 2, .ext = { 0, 60 } },
	  .exp_sport = TGT },
	{ "ingress v4 port unreachable quoting the udp reply", false, 3, 3,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_UDP, UPUB, 0) }, .exp_sport = UTGT },
	{ "ingress v4 port unreachable quoting a udp reply without checksum", false, 3, 3,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_UDP, UPUB, 0), .udp_no_csum = true },
	  .exp_sport = UTGT },
	{ "ingress v6 port unreachable quoting the udp reply", false, 1, 4,
	  { SERVER_REPLY(ETH_P_IPV6, IPPROTO_UDP, UPUB, 0) }, .exp_sport = UTGT },
	{ "egress v4 port unreachable quoting the client's datagram: dport 5354 -> 5353", true,
	  3, 3, { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0) }, .exp_dport = UPUB },
	{ "egress v6 port unreachable quoting the client's datagram", true, 1, 4,
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) }, .exp_dport = UPUB },
	{ "egress v4 frag needed quoting the client's segment: dport 8443 -> 8445", true, 3, 4,
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, ACKPSH) }, .exp_dport = PUB },
	{ "egress v6 time exceeded quoting the client's segment", true, 3, 0,
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, TGT, ACKPSH) }, .exp_dport = PUB },
	/* Untouched. */
	{ "ingress error about another client port untouched", false, 3, 4,
	  { SERVER_REPLY_TO(ETH_P_IP, IPPROTO_TCP, PUB, CPORT2, ACKPSH) }, .quote_l4 = 0 },
	{ "ingress error about the target port itself untouched", false, 3, 4,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, TGT, ACKPSH) }, .quote_l4 = 0 },
	{ "egress error about the public port untouched", true, 3, 3,
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UPUB, 0) }, .quote_l4 = 0 },
	{ "ingress echo request (no error) untouched", false, 8, 0,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, PUB, ACKPSH) }, .quote_l4 = 0 },
	{ "ingress v6 echo reply (no error) untouched", false, 129, 0,
	  { SERVER_REPLY(ETH_P_IPV6, IPPROTO_TCP, PUB, ACKPSH) }, .quote_l4 = 0 },
	{ "ingress error quoting a non-first fragment untouched", false, 3, 4,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, PUB, ACKPSH), .frag_off = 185 }, .quote_l4 = 0 },
	{ "ingress error quoting 2 bytes of tcp untouched", false, 3, 4,
	  { SERVER_REPLY(ETH_P_IP, IPPROTO_TCP, PUB, ACKPSH) }, .quote_l4 = 2 },
};
/* clang-format on */

struct iframe {
	__u8 buf[BUF_MAX];
	__u32 len;
};

/* An ICMP error frame: router -> server (ingress) or server -> client (egress), quoting
 * quoted (its first quote_l4 bytes of L4, or all), with every checksum computed afresh. */
static void error_build(const struct icase *c, const struct pkt_spec *quoted, struct iframe *f)
{
	static const __u8 macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	const struct pkt_host_addrs *src = pkt_host(c->egress ? HOST_SERVER : HOST_STRANGER);
	const struct pkt_host_addrs *dst = pkt_host(c->egress ? HOST_CLIENT : HOST_SERVER);
	bool v6 = quoted->l3 == ETH_P_IPV6;
	__u32 hl = v6 ? 40 : 20, qlen, icmp_len;
	__u8 *ip = f->buf + 14, *icmp = ip + hl;
	struct frame q;

	pkt_build(&q, quoted);
	qlen = q.l4_off - q.l3_off + (c->quote_l4 ? c->quote_l4 : q.l4_len);
	icmp_len = 8 + qlen;
	memset(f, 0, sizeof(*f));
	memcpy(f->buf, macs, sizeof(macs));
	pkt_put16(f->buf + 12, v6 ? ETH_P_IPV6 : ETH_P_IP);
	icmp[0] = c->type;
	icmp[1] = c->code;
	if (!v6 && c->type == 3 && c->code == 4)
		pkt_put16(icmp + 6, 1280); /* next-hop MTU */
	if (v6 && c->type == 2)
		pkt_put16(icmp + 6, 1280);
	memcpy(icmp + 8, q.buf + q.l3_off, qlen);
	if (v6) {
		__u32 sum = 58 + icmp_len;

		ip[0] = 0x60;
		pkt_put16(ip + 4, icmp_len);
		ip[6] = 58;
		ip[7] = 64;
		memcpy(ip + 8, src->v6, 16);
		memcpy(ip + 24, dst->v6, 16);
		sum = pkt_csum_add(sum, ip + 8, 32);
		pkt_put16(icmp + 2, ~pkt_csum_fold(pkt_csum_add(sum, icmp, icmp_len)));
	} else {
		ip[0] = 0x45;
		pkt_put16(ip + 2, 20 + icmp_len);
		ip[8] = 64;
		ip[9] = IPPROTO_ICMP;
		memcpy(ip + 12, src->v4, 4);
		memcpy(ip + 16, dst->v4, 4);
		pkt_put16(ip + 10, ~pkt_csum_fold(pkt_csum_add(0, ip, 20)));
		pkt_put16(icmp + 2, ~pkt_csum_fold(pkt_csum_add(0, icmp, icmp_len)));
	}
	f->len = 14 + hl + icmp_len;
}

static bool run(struct fixture *f, enum hook hook, const struct iframe *in, struct iframe *out,
		__u32 *ret)
{
	out->len = sizeof(out->buf);
	return ASSERT_OK(fixture_run(f, hook, in->buf, in->len, out->buf, &out->len, ret),
			 "BPF_PROG_TEST_RUN");
}

/* The client's SYN and datagram, v4 and v6, through ingress, and the service's answer to the
 * datagram through egress: both recorded (a UDP flow is found from its client's packets once
 * the service has answered, as it has when an error quotes its answer). */
static bool connections_make(struct fixture *f)
{
	static const struct pkt_spec pkts[] = {
		{ CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, PUB, PKT_TCP_FLAG_SYN) },
		{ CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, PUB, PKT_TCP_FLAG_SYN) },
		{ CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
		{ CLIENT_PKT(ETH_P_IPV6, IPPROTO_UDP, UPUB, 0) },
		{ SERVER_REPLY(ETH_P_IP, IPPROTO_UDP, UTGT, 0) },
		{ SERVER_REPLY(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) },
	};
	static struct iframe in, out;
	__u32 ret;
	struct frame fr;
	size_t i;

	fixture_conns_clear(f);
	for (i = 0; i < sizeof(pkts) / sizeof(pkts[0]); i++) {
		pkt_build(&fr, &pkts[i]);
		memcpy(in.buf, fr.buf, fr.len);
		in.len = fr.len;
		if (!run(f, pkts[i].src == HOST_SERVER ? HOOK_TC_EG : HOOK_TC_IN, &in, &out,
			 &ret) ||
		    !ASSERT_EQ(ret, TC_PASS, "retval setting up a connection"))
			return false;
	}
	return true;
}

/* ingress: TC's ingress program, or XDP's, which must put a quote right the same way. */
static void case_run(struct fixture *f, const struct icase *c, enum hook ingress)
{
	static struct iframe in, exp, out;
	struct pkt_spec translated = c->quoted;
	__u64 before, after;
	bool changes = c->exp_sport || c->exp_dport;
	__u32 ret;

	if (!tctest_rules(f, false) || !connections_make(f))
		return;
	if (c->exp_sport)
		translated.sport = c->exp_sport;
	if (c->exp_dport)
		translated.dport = c->exp_dport;
	error_build(c, &c->quoted, &in);
	error_build(c, &translated, &exp);
	if (!fixture_stat(f, STAT_ICMP_TRANSLATED, &before) ||
	    !run(f, c->egress ? HOOK_TC_EG : ingress, &in, &out, &ret) ||
	    !fixture_stat(f, STAT_ICMP_TRANSLATED, &after))
		return;
	if (!ASSERT_EQ(ret, TC_PASS, "retval") || !ASSERT_EQ(out.len, exp.len, "length") ||
	    !ASSERT_MEMEQ(out.buf, exp.buf, exp.len, "output"))
		return;
	ASSERT_EQ(after - before, (__u64)changes, "icmp_translated increase");
}

void test_icmp_quote(void)
{
	struct fixture *f = fixture_open(FIX_XDP, 0);
	int csum_complete;
	size_t i;

	if (!f || !fixture_local_addrs(f, HOST_SERVER, false))
		goto out;
	csum_complete = fixture_probe_csum_complete();
	/* Then again with the skb CHECKSUM_COMPLETE, as from a NIC that sums what it
	 * receives: the run fails (EBADMSG) when the program leaves skb->csum stale. */
	for (f->tc_run_flags = 0;; f->tc_run_flags = BPF_F_TEST_SKB_CHECKSUM_COMPLETE) {
		const char *prefix = f->tc_run_flags ? "checksum complete: " : "";

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (f->tc_run_flags && csum_complete < 0)
				break;
			if (!test__start_subtest("icmp: %s%s", prefix, cases[i].name))
				continue;
			if (f->tc_run_flags && !csum_complete)
				test__skip(SKB_CHECKSUM_COMPLETE_FEATURE);
			else
				case_run(f, &cases[i], HOOK_TC_IN);
		}
		if (f->tc_run_flags)
			break;
	}
	/* --mode xdp: the same errors arriving through XDP ingress (egress stays TC's). */
	f->tc_run_flags = 0;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!cases[i].egress && test__start_subtest("icmp: xdp: %s", cases[i].name))
			case_run(f, &cases[i], HOOK_XDP);
	}
out:
	fixture_close(f);
}
