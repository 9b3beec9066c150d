// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A connection that made it to flows survives a flood of spoofed SYNs to its public port:
 * pending (here FLOOD_PENDING entries) churns, flows keeps it, and its packets and replies
 * are still translated afterwards. One that was only pending is pushed out. Through
 * BPF_PROG_TEST_RUN on a TC skeleton loaded with a small pending map, with the cases' rule
 * and packets (datapath.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include "bpfredir.h"
#include "pktbuild.h"
#include "harness.h"
#include "fixture.h"
#include "datapath.h"

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
static bool flood_pair(struct fixture *f, bool v6, const __u8 *addr, __u16 sport)
{
	struct pkt_spec syn = { PKT(v6 ? ETH_P_IPV6 : ETH_P_IP, IPPROTO_TCP, HOST_STRANGER,
				    HOST_SERVER, sport, PUB, SYN) };
	struct pkt_spec synack = { PKT(v6 ? ETH_P_IPV6 : ETH_P_IP, IPPROTO_TCP, HOST_SERVER,
				       HOST_STRANGER, TGT, sport, SYN | ACK) };
	struct frame fr;
	__u8 out[PKT_MAX];
	__u32 out_len, ret;
	int i;

	for (i = 0; i < 2; i++) {
		const char *what = i ? "syn-ack" : "syn";

		pkt_build(&fr, i ? &synack : &syn);
		frame_set_addr(&fr, i, addr);
		out_len = sizeof(out);
		if (!ASSERT_OK(fixture_run(f, i ? HOOK_TC_EG : HOOK_TC_IN, fr.buf, fr.len, out,
					   &out_len, &ret),
			       what) ||
		    !ASSERT_EQ(ret, TC_PASS, what) || !ASSERT_EQ(out_len, fr.len, what))
			return false;
		/* The syn's destination port, the syn-ack's source port. */
		if (!ASSERT_EQ((out[fr.l4_off + 2 * !i] << 8) | out[fr.l4_off + 2 * !i + 1],
			       i ? PUB : TGT, what) ||
		    !ASSERT_EQ(pkt_l4_sum(out, &fr), 0xffff, what))
			return false;
	}
	return true;
}

static void flood_run(struct fixture *f)
{
	static const struct rule_spec rule = TCP_RULE;
	static const struct step script[] = { ESTABLISH4, IN(syn4_c2, TGT) };
	/* What the maps hold before the flood: the established connection from CPORT, and
	 * the one from CPORT2 still pending (keyed as syn4's tuple, see case_client). */
	static const struct tcase before = {
		.pre = { IN(syn4, TGT) },
		.tables = { FLOWS_CONN(PUB, TGT), PEND_FROM(CPORT2, OUT, TGT, PUB) },
	};
	static const struct tcase established = { .pre = { IN(syn4, TGT) }, ESTABLISHED };
	static const struct entry c2_out = PEND_FROM(CPORT2, OUT, TGT, PUB);
	static const struct pkt_spec ackout4_c2 = { PKT(ETH_P_IP, IPPROTO_TCP, HOST_SERVER,
							HOST_CLIENT, TGT, CPORT2, ACK) };
	struct redir_flow_key k;
	int i, pending;
	struct redir_flow v;

	if (!fixture_rules(f, &rule, 1))
		return;
	for (i = 0; i < (int)(sizeof(script) / sizeof(script[0])); i++)
		if (!packet_check(f, HOOK_TC_IN, script[i].op == STEP_OUT, script[i].pkt,
				  script[i].port, 0))
			return (void)test__fail("before the flood, packet %d", i + 1);
	if (!tables_check(f, &before))
		return (void)test__fail("before the flood");

	for (i = 0; i < FLOOD_SYNS; i++) {
		__u8 addr[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xf1 };
		bool v6 = flood_rand() & 1;
		__u32 r = flood_rand();

		if (v6) {
			memcpy(addr + 12, &r, 4);
		} else {
			addr[0] = 10;
			memcpy(addr + 1, &r, 3);
		}
		if (!flood_pair(f, v6, addr, 1024 + flood_rand() % 64000))
			return (void)test__fail("at spoofed SYN %d", i + 1);
	}

	pending = fixture_conn_count(f, true);
	printf("# syn flood: pending holds %d entries after %d spoofed SYNs\n", pending,
	       FLOOD_SYNS);
	if (!ASSERT_TRUE(pending <= FLOOD_PENDING && pending >= FLOOD_PENDING / 2,
			 "pending holds half to all of its entries after the flood"))
		return;
	/* flows holds the established connection, and nothing of the flood. */
	if (!table_check(f, &established, T_FLOWS))
		return (void)test__fail("after the flood");
	/* The connection from CPORT2 was only pending: pushed out, its reply dropped rather than
	 * sent from the hidden port. */
	entry_key(&k, &syn4, &c2_out);
	if (!ASSERT_EQ(fixture_conn_get(f, true, &k, &v), -ENOENT,
		       "the pending connection's entry is gone (lookup)"))
		return;
	if (!packet_check(f, HOOK_TC_IN, true, &ackout4_c2, 0, TC_ACT_SHOT))
		return (void)test__fail("after the flood, the pending connection's reply");
	/* The established connection goes on, both ways, and stays in flows. */
	if (!packet_check(f, HOOK_TC_IN, false, &ack4, TGT, 0))
		return (void)test__fail("after the flood, the client's ack");
	if (!packet_check(f, HOOK_TC_IN, true, &ackout4, PUB, 0))
		return (void)test__fail("after the flood, the service's ack");
	if (!table_check(f, &established, T_FLOWS))
		test__fail("at the end");
}

void test_syn_flood(void)
{
	struct fixture *f;

	if (!test__start_subtest("syn flood: an established flow survives %d spoofed SYNs and "
				 "their SYN-ACKs with pending at %d entries",
				 FLOOD_SYNS, FLOOD_PENDING))
		return;
	f = fixture_open(0, FLOOD_PENDING);
	if (f && fixture_local_addrs(f, HOST_SERVER, true))
		flood_run(f);
	fixture_close(f);
}
