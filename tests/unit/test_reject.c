// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * --reject through BPF_PROG_TEST_RUN: a packet to a hidden port whose rule says reject comes
 * out of TC ingress as the kernel's answer for a closed port, redirected (TC_ACT_REDIRECT),
 * and is checked byte for byte against an answer built here from the kernel's rules
 * (tcp_v4_send_reset/tcp_v6_send_reset, icmp_send/icmp6_send), field by field as the
 * "Reject fidelity" section of docs/design.md states them.
 *
 * Not compared: the IPv4 ICMP ID (random, as the kernel's is unpredictable) and so the IP
 * checksum, which is verified instead; the IPv6 flow label (a keyed hash in the kernel).
 * No answer (TC_ACT_SHOT, counted as a hidden drop): to a RST, to a frame not addressed to
 * this host's MAC address, to UDP in a VLAN-tagged frame or a fragment, and past the ICMP
 * rate limit (6 in a burst per source).
 *
 * A segment whose checksum field holds the pseudo-header sum only came from a local peer
 * that left it to offload (CHECKSUM_PARTIAL): its RST is left to offload the same way.
 *
 * Learning: after the kernel's own port unreachable to a peer leaves through egress, ours
 * to that peer carry its ICMPv6 flow label, and an IPv4 ID going on from its ID.
 *
 * Under BPF_PROG_TEST_RUN the device is lo, whose MAC address is all zeros: frames sent "to
 * this host" carry that destination.
 */
#include <string.h>
#include <unistd.h>
#include "bpfredir.h"
#include "pktbuild.h"
#include "harness.h"
#include "fixture.h"
#include "tctest.h"

#define BIG_MAX 2048
#define TOS 0xb9 /* a DSCP and an ECN bit: the answers keep one and drop the other */

/* EXP_LATER: a fragment, sent on to port 0 for the kernel to answer once it reassembled the
 * datagram (policy.h, reject_later). */
enum expect { EXP_RST, EXP_ICMP, EXP_NONE, EXP_LATER };

struct rcase {
	const char *name;
	struct pkt_spec pkt;
	__u32 big_payload; /* nonzero: a UDP datagram with this much payload, built here */
	bool other_host;   /* the frame's destination MAC is not this host's */
	bool no_reject;	   /* the rule only hides (drop) */
	bool bad_csum;	   /* the L4 checksum is wrong */
	bool partial_csum; /* the L4 checksum field holds the pseudo-header sum only */
	enum expect expect;
};

/* clang-format off */
#define SYN PKT_TCP_FLAG_SYN
#define ACK PKT_TCP_FLAG_ACK
#define RST PKT_TCP_FLAG_RST
#define FIN PKT_TCP_FLAG_FIN
#define PSH PKT_TCP_FLAG_PSH

static const struct rcase cases[] = {
	{ "v4 syn: rst/ack, ack = seq + 1 + data", { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .expect = EXP_RST },
	{ "v4 ack: rst, seq = its ack", { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, ACK | PSH) },
	  .expect = EXP_RST },
	{ "v4 fin (no ack): rst/ack, ack = seq + 1 + data",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, FIN) }, .expect = EXP_RST },
	{ "v4 rst: no answer", { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, RST) },
	  .expect = EXP_NONE },
	{ "v4 rst/ack: no answer", { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, RST | ACK) },
	  .expect = EXP_NONE },
	{ "v4 syn with ip options: rst without them",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .ip_opt_len = 8 }, .expect = EXP_RST },
	{ "v4 syn in a vlan tag: rst in the tag", { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN),
	  .vlans = 1 }, .expect = EXP_RST },
	{ "v4 syn to another host's mac: no answer",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .other_host = true, .expect = EXP_NONE },
	{ "v4 syn, rule without --reject: dropped", { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .no_reject = true, .expect = EXP_NONE },
	{ "v6 syn: rst/ack", { CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) }, .expect = EXP_RST },
	{ "v6 ack: rst", { CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK) }, .expect = EXP_RST },
	{ "v6 rst: no answer", { CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, TGT, RST) },
	  .expect = EXP_NONE },
	{ "v6 syn behind extension headers: rst without them",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN), .n_ext = 2, .ext = { 0, 60 } },
	  .expect = EXP_RST },
	{ "v4 udp: port unreachable quoting it all", { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0) },
	  .expect = EXP_ICMP },
	{ "v4 udp with ip options: quoted with them",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0), .ip_opt_len = 4 }, .expect = EXP_ICMP },
	{ "v4 udp, 700 bytes of data: quote cut at 548",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0) }, .big_payload = 700, .expect = EXP_ICMP },
	{ "v4 udp without checksum: quoted as is",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0), .udp_no_csum = true }, .expect = EXP_ICMP },
	{ "v4 udp first fragment: sent on to port 0, for the kernel to answer",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0), .frag_off = 0x2000 }, .expect = EXP_LATER },
	{ "v4 syn first fragment: sent on to port 0, for the kernel to answer",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .frag_off = 0x2000 }, .expect = EXP_LATER },
	{ "v4 udp in a vlan tag: no answer", { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0),
	  .vlans = 1 }, .expect = EXP_NONE },
	{ "v6 udp: port unreachable quoting it all",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) }, .expect = EXP_ICMP },
	{ "v6 udp, 700 bytes of data: quoted whole",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) }, .big_payload = 700,
	  .expect = EXP_ICMP },
	{ "v6 udp, 1400 bytes of data: quote cut at 1232",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) }, .big_payload = 1400,
	  .expect = EXP_ICMP },
	{ "v6 udp to another host's mac: no answer",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0) }, .other_host = true,
	  .expect = EXP_NONE },
	{ "v4 syn with a bad checksum: no answer", { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .bad_csum = true, .expect = EXP_NONE },
	{ "v6 ack with a bad checksum: no answer",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, TGT, ACK) }, .bad_csum = true, .expect = EXP_NONE },
	{ "v4 udp with a bad checksum: no answer", { CLIENT_PKT(ETH_P_IP, IPPROTO_UDP, UTGT, 0) },
	  .bad_csum = true, .expect = EXP_NONE },
	{ "v6 udp without checksum (invalid in v6): no answer",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_UDP, UTGT, 0), .udp_no_csum = true },
	  .expect = EXP_NONE },
	{ "v4 syn with a checksum left to offload (veth peer): rst/ack",
	  { CLIENT_PKT(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .partial_csum = true,
	  .expect = EXP_RST },
	{ "v6 syn with a checksum left to offload (veth peer): rst/ack",
	  { CLIENT_PKT(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) }, .partial_csum = true,
	  .expect = EXP_RST },
};
/* clang-format on */

/* --- frames ------------------------------------------------------------------------------- */

struct big {
	__u8 buf[BIG_MAX];
	__u32 len, l3_off, l4_off;
	bool v6;
};

static __u16 get16(const __u8 *p)
{
	return p[0] << 8 | p[1];
}

static void put32(__u8 *p, __u32 v)
{
	pkt_put16(p, v >> 16);
	pkt_put16(p + 2, v & 0xffff);
}

static __u32 get32(const __u8 *p)
{
	return (__u32)get16(p) << 16 | get16(p + 2);
}

static void ip4_csum(__u8 *ip, __u32 len)
{
	pkt_put16(ip + 10, 0);
	pkt_put16(ip + 10, ~pkt_csum_fold(pkt_csum_add(0, ip, len)));
}

/* Folded sum of an L4 segment at l4 (len bytes) with its pseudo-header: 0xffff when its
 * checksum is right. */
static __u16 l4_sum(const __u8 *ip, bool v6, __u8 proto, const __u8 *l4, __u32 len)
{
	__u32 sum = proto + len;

	sum = v6 ? pkt_csum_add(sum, ip + 8, 32) : pkt_csum_add(sum, ip + 12, 8);
	return pkt_csum_fold(pkt_csum_add(sum, l4, len));
}

/* The case's input frame: pkt_build's, or a big UDP datagram; with ToS / traffic class TOS,
 * and this host's MAC address (all zeros, lo's) as destination unless other_host. */
static void input_build(const struct rcase *c, struct big *f)
{
	struct pkt_spec spec = c->pkt;
	struct frame small;
	__u8 *ip;

	if (c->other_host)
		spec.l2_dest = PKT_L2_OTHER;
	pkt_build(&small, &spec);
	memset(f, 0, sizeof(*f));
	memcpy(f->buf, small.buf, small.len);
	f->len = small.len;
	f->l3_off = small.l3_off;
	f->l4_off = small.l4_off;
	f->v6 = small.v6;
	ip = f->buf + f->l3_off;
	if (c->big_payload) {
		__u32 udp_len = 8 + c->big_payload, i;
		__u8 *udp = f->buf + f->l4_off;

		for (i = 0; i < c->big_payload; i++)
			udp[8 + i] = i * 7;
		f->len = f->l4_off + udp_len;
		pkt_put16(udp + 4, udp_len);
		if (f->v6)
			pkt_put16(ip + 4, udp_len);
		else
			pkt_put16(ip + 2, f->l4_off - f->l3_off + udp_len);
		pkt_put16(udp + 6, 0);
		pkt_put16(udp + 6, ~l4_sum(ip, f->v6, IPPROTO_UDP, udp, udp_len));
	}
	if (f->v6) {
		ip[0] = 0x60 | TOS >> 4;
		ip[1] = (TOS & 0xf) << 4;
	} else {
		ip[1] = TOS;
		ip4_csum(ip, (ip[0] & 0xf) * 4);
	}
	if (c->bad_csum || c->partial_csum) {
		__u8 *l4 = f->buf + f->l4_off;
		__u32 off = c->pkt.proto == IPPROTO_TCP ? 16 : 6;
		__u32 l4_len = f->len - f->l4_off, sum = c->pkt.proto + l4_len;

		sum = f->v6 ? pkt_csum_add(sum, ip + 8, 32) : pkt_csum_add(sum, ip + 12, 8);
		if (c->partial_csum)
			pkt_put16(l4 + off, pkt_csum_fold(sum));
		else
			l4[off] ^= 0x55;
	}
}

/* The kernel's RST for input frame in. */
static void rst_build(const struct big *in, const struct rcase *c, struct big *exp)
{
	const __u8 *iip = in->buf + in->l3_off, *ith = in->buf + in->l4_off;
	__u32 ip_len = in->v6 ? 40 + get16(iip + 4) : get16(iip + 2);
	__u32 data = ip_len - (in->l4_off - in->l3_off) - (ith[12] >> 4) * 4;
	__u8 flags = c->pkt.tcp_flags, *ip, *th;
	__u32 hl = in->v6 ? 40 : 20;

	memset(exp, 0, sizeof(*exp));
	memcpy(exp->buf, in->buf + 6, 6);
	memcpy(exp->buf + 6, in->buf, 6);
	memcpy(exp->buf + 12, in->buf + 12, in->l3_off - 12); /* ethertype, any tags */
	exp->l3_off = in->l3_off;
	exp->l4_off = in->l3_off + hl;
	exp->len = exp->l4_off + 20;
	exp->v6 = in->v6;
	ip = exp->buf + exp->l3_off;
	th = exp->buf + exp->l4_off;
	if (in->v6) {
		ip[0] = 0x60 | (TOS & ~3) >> 4;
		ip[1] = ((TOS & ~3) & 0xf) << 4; /* flow label: not compared */
		pkt_put16(ip + 4, 20);
		ip[6] = IPPROTO_TCP;
		ip[7] = 64;
		memcpy(ip + 8, iip + 24, 16);
		memcpy(ip + 24, iip + 8, 16);
	} else {
		ip[0] = 0x45;
		ip[1] = TOS & ~3;
		pkt_put16(ip + 2, 40);
		pkt_put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = IPPROTO_TCP;
		memcpy(ip + 12, iip + 16, 4);
		memcpy(ip + 16, iip + 12, 4);
		ip4_csum(ip, 20);
	}
	memcpy(th, ith + 2, 2);
	memcpy(th + 2, ith, 2);
	if (flags & PKT_TCP_FLAG_ACK) {
		memcpy(th + 4, ith + 8, 4);
		th[13] = PKT_TCP_FLAG_RST;
	} else {
		put32(th + 8, get32(ith + 4) + data + !!(flags & SYN) + !!(flags & FIN));
		th[13] = PKT_TCP_FLAG_RST | PKT_TCP_FLAG_ACK;
	}
	th[12] = 5 << 4;
	pkt_put16(th + 16, ~l4_sum(ip, in->v6, IPPROTO_TCP, th, 20));
	/* Left to offload like the segment: the pseudo-header sum only (in place of its). */
	if (c->partial_csum && in->l4_off == exp->l4_off)
		pkt_put16(th + 16,
			  pkt_csum_fold(in->v6 ? pkt_csum_add(IPPROTO_TCP + 20, ip + 8, 32)
					       : pkt_csum_add(IPPROTO_TCP + 20, ip + 12, 8)));
}

/* The kernel's port unreachable for input frame in (no tags: those get no answer). */
static void icmp_build(const struct big *in, struct big *exp)
{
	const __u8 *iip = in->buf + in->l3_off;
	__u32 ip_len = in->v6 ? 40 + get16(iip + 4) : get16(iip + 2);
	__u32 max = in->v6 ? 1280 - 48 : 576 - 28, q = ip_len < max ? ip_len : max;
	__u32 hl = in->v6 ? 40 : 20;
	__u8 *ip, *icmp;

	memset(exp, 0, sizeof(*exp));
	memcpy(exp->buf, in->buf + 6, 6);
	memcpy(exp->buf + 6, in->buf, 6);
	memcpy(exp->buf + 12, in->buf + 12, 2);
	exp->l3_off = 14;
	exp->l4_off = 14 + hl;
	exp->len = exp->l4_off + 8 + q;
	exp->v6 = in->v6;
	ip = exp->buf + 14;
	icmp = exp->buf + exp->l4_off;
	memcpy(icmp + 8, iip, q);
	if (in->v6) {
		ip[0] = 0x60;
		pkt_put16(ip + 4, 8 + q);
		ip[6] = 58;
		ip[7] = 64;
		memcpy(ip + 8, iip + 24, 16);
		memcpy(ip + 24, iip + 8, 16);
		icmp[0] = 1;
		icmp[1] = 4;
		pkt_put16(icmp + 2, ~l4_sum(ip, true, 58, icmp, 8 + q));
	} else {
		ip[0] = 0x45;
		ip[1] = (TOS & 0x1e) | 0xc0;
		pkt_put16(ip + 2, 28 + q);
		ip[8] = 64;
		ip[9] = IPPROTO_ICMP;
		memcpy(ip + 12, iip + 16, 4);
		memcpy(ip + 16, iip + 12, 4);
		icmp[0] = 3;
		icmp[1] = 3;
		pkt_put16(icmp + 2, ~pkt_csum_fold(pkt_csum_add(0, icmp, 8 + q)));
	}
}

/* Byte for byte, but for the IPv4 ICMP ID and header checksum (the checksum must still be
 * right) and the IPv6 flow label. */
static bool answer_compare(const struct big *exp, const __u8 *out, __u32 out_len, bool icmp)
{
	const __u8 *ip = out + exp->l3_off;
	__u32 i, l3 = exp->l3_off;

	if (!ASSERT_EQ(out_len, exp->len, "answer length"))
		return false;
	for (i = 0; i < out_len; i++) {
		bool varies = exp->v6 ? (i == l3 + 1 && !((out[i] ^ exp->buf[i]) & 0xf0)) ||
						i == l3 + 2 || i == l3 + 3
				      : icmp && (i == l3 + 4 || i == l3 + 5 || i == l3 + 10 ||
						 i == l3 + 11);

		if (!varies && !ASSERT_MEMEQ(out + i, exp->buf + i, 1, "answer"))
			return test__fail("at answer byte %u", i);
	}
	return exp->v6 || ASSERT_EQ(pkt_csum_fold(pkt_csum_add(0, ip, 20)), 0xffff,
				    "answer's IPv4 header checksum");
}

/* --- rules, counters ---------------------------------------------------------------------- */

/* IN through ingress, TC's or XDP's (XDP_TX reads as TC_ACT_REDIRECT). */
static bool run(struct fixture *f, enum hook h, const struct big *in, __u8 *out, __u32 *out_len,
		__u32 *ret)
{
	*out_len = BIG_MAX;
	return ASSERT_OK(fixture_run(f, h, in->buf, in->len, out, out_len, ret),
			 "BPF_PROG_TEST_RUN");
}

/* --- cases -------------------------------------------------------------------------------- */

static void case_run(struct fixture *f, enum hook h, const struct rcase *c)
{
	static struct big in, exp;
	static __u8 out[BIG_MAX];
	__u64 rej0, drop0, rej1, drop1;
	__u32 out_len, ret;

	if (!tctest_rules(f, !c->no_reject))
		return;
	fixture_clear(f->tc->maps.reject_ratelimit);
	input_build(c, &in);
	if (!fixture_stat(f, STAT_REJECTED, &rej0) ||
	    !fixture_stat(f, STAT_HIDDEN_DROPPED, &drop0) || !run(f, h, &in, out, &out_len, &ret) ||
	    !fixture_stat(f, STAT_REJECTED, &rej1) || !fixture_stat(f, STAT_HIDDEN_DROPPED, &drop1))
		return;

	if (c->expect == EXP_LATER) {
		if (ASSERT_EQ(ret, TC_PASS, "retval (passed on)") &&
		    ASSERT_EQ(out_len, in.len, "length unchanged")) {
			ASSERT_EQ(get16(out + in.l4_off + 2), 0, "destination port");
			ASSERT_EQ(rej1 - rej0, 1, "rejected increase");
			ASSERT_EQ(drop1 - drop0, 0, "hidden_dropped increase");
		}
		return;
	}
	if (c->expect == EXP_NONE) {
		if (ASSERT_EQ(ret, TC_ACT_SHOT, "retval (dropped)")) {
			ASSERT_EQ(rej1 - rej0, 0, "rejected increase");
			ASSERT_EQ(drop1 - drop0, 1, "hidden_dropped increase");
		}
		return;
	}
	if (!ASSERT_EQ(ret, TC_ACT_REDIRECT, "retval (redirect)") ||
	    !ASSERT_EQ(rej1 - rej0, 1, "rejected increase") ||
	    !ASSERT_EQ(drop1 - drop0, 0, "hidden_dropped increase"))
		return;
	if (c->expect == EXP_RST)
		rst_build(&in, c, &exp);
	else
		icmp_build(&in, &exp);
	answer_compare(&exp, out, out_len, c->expect == EXP_ICMP);
}

/* Six errors in a burst to one source, then none until a token comes back (1 s for IPv4);
 * another source has its own bucket. */
static void ratelimit_run(struct fixture *f, enum hook h, bool v6)
{
	struct rcase c = { .pkt = {
				   CLIENT_PKT(v6 ? ETH_P_IPV6 : ETH_P_IP, IPPROTO_UDP, UTGT, 0) } };
	static struct big in, other;
	static __u8 out[BIG_MAX];
	__u32 out_len, ret;
	int i;

	if (!tctest_rules(f, true))
		return;
	fixture_clear(f->tc->maps.reject_ratelimit);
	input_build(&c, &in);
	c.pkt.src = HOST_STRANGER;
	input_build(&c, &other);
	for (i = 0; i < 8; i++) {
		if (!run(f, h, &in, out, &out_len, &ret))
			return;
		if (!ASSERT_EQ(ret, i < 6 ? TC_ACT_REDIRECT : TC_ACT_SHOT,
			       i < 6 ? "retval in the burst (redirect)"
				     : "retval past the burst (dropped)"))
			return (void)test__fail("at datagram %d", i + 1);
	}
	if (!run(f, h, &other, out, &out_len, &ret) ||
	    !ASSERT_EQ(ret, TC_ACT_REDIRECT, "another source: retval (an answer)"))
		return;
	usleep(v6 ? 300000 : 1100000);
	if (!run(f, h, &in, out, &out_len, &ret) ||
	    !ASSERT_EQ(ret, TC_ACT_REDIRECT, "after a token came back: retval (an answer)"))
		return;
	if (run(f, h, &in, out, &out_len, &ret))
		ASSERT_EQ(ret, TC_ACT_SHOT, "right after: retval (dropped)");
}

/* The kernel's port unreachable (server -> client) for a closed port leaves through egress
 * with flow label / IP ID `ident`; then a datagram to the hidden port is rejected. */
static void learn_run(struct fixture *f, bool v6)
{
	struct rcase c = { .pkt = {
				   CLIENT_PKT(v6 ? ETH_P_IPV6 : ETH_P_IP, IPPROTO_UDP, UTGT, 0) } };
	static struct big in, closed, kernel_err;
	static __u8 out[BIG_MAX];
	__u32 out_len = BIG_MAX, ret, ident = v6 ? 0xabcde : 0xfff0, got;
	__u8 *ip;

	if (!tctest_rules(f, true))
		return;
	fixture_clear(f->tc->maps.reject_ratelimit);
	fixture_clear(f->tc->maps.reject_seen);
	input_build(&c, &in);
	c.pkt.dport = 5999;
	input_build(&c, &closed);
	icmp_build(&closed, &kernel_err);
	ip = kernel_err.buf + 14;
	if (v6) {
		ip[1] = (ip[1] & 0xf0) | ident >> 16;
		pkt_put16(ip + 2, ident & 0xffff);
	} else {
		pkt_put16(ip + 4, ident);
		ip4_csum(ip, 20);
	}
	if (!ASSERT_OK(
		    fixture_run(f, HOOK_TC_EG, kernel_err.buf, kernel_err.len, out, &out_len, &ret),
		    "the kernel's error through egress") ||
	    !ASSERT_EQ(ret, TC_PASS, "the kernel's error through egress: retval"))
		return;
	if (!run(f, HOOK_TC_IN, &in, out, &out_len, &ret) ||
	    !ASSERT_EQ(ret, TC_ACT_REDIRECT, "the datagram: retval (redirect)"))
		return;
	ip = out + 14;
	if (v6) {
		got = (ip[1] & 0xf) << 16 | get16(ip + 2);
		ASSERT_EQ(got, ident, "flow label (the kernel's)");
	} else {
		got = (get16(ip + 4) - ident) & 0xffff;
		if (!ASSERT_TRUE(got >= 1 && got <= 100, "IP ID goes on from the kernel's"))
			test__fail("IP ID 0x%04x, the kernel's 0x%04x", get16(ip + 4), ident);
	}
}

/* TC ingress, then XDP in its place: XDP answers the same, but tells no other host's frames
 * apart (no pkt_type; only multicast and broadcast addresses) and sees no offloaded
 * checksums. */
void test_reject(void)
{
	struct fixture *f = fixture_open(FIX_XDP, 0);
	enum hook h;
	size_t i;
	int v6;

	if (!f || !fixture_local_addrs(f, HOST_SERVER, false))
		goto out;
	for (h = HOOK_TC_IN; h <= HOOK_XDP; h += HOOK_XDP - HOOK_TC_IN) {
		const char *prefix = h == HOOK_XDP ? "xdp: " : "";

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (h == HOOK_XDP && (cases[i].other_host || cases[i].partial_csum))
				continue;
			if (test__start_subtest("reject: %s%s", prefix, cases[i].name))
				case_run(f, h, &cases[i]);
		}
		for (v6 = 0; v6 < 2; v6++)
			if (test__start_subtest(
				    "reject: %sv%d icmp rate limit%s", prefix, v6 ? 6 : 4,
				    h == HOOK_XDP ? "" : ": a burst of 6, then one a token"))
				ratelimit_run(f, h, v6);
	}
	for (v6 = 0; v6 < 2; v6++)
		if (test__start_subtest(
			    "reject: v%d learns from the kernel's port unreachable (%s)",
			    v6 ? 6 : 4, v6 ? "its flow label" : "its IP ID, going on"))
			learn_run(f, v6);
out:
	fixture_close(f);
}
