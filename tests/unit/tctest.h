/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the ICMP and reject tests share on top of the fixture: their rule set (tcp 8445 ->
 * 8443 and udp 5353 -> 5354, both targets hidden) and the client's packets to the server.
 */
#ifndef TCTEST_H
#define TCTEST_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "tc.skel.h"
#include "pktbuild.h"
#include "fixture.h"

#define PUB 8445
#define TGT 8443
#define UPUB 5353
#define UTGT 5354
#define CPORT 40000

/* clang-format off */
/* The fields of a pkt_spec for a packet from the client's CPORT to the server's dport_. */
#define CLIENT_PKT(l3_, proto_, dport_, flags_) \
	.l3 = (l3_), .proto = (proto_), .src = HOST_CLIENT, .dst = HOST_SERVER, \
	.sport = CPORT, .dport = (dport_), .tcp_flags = (flags_)
/* clang-format on */

/* Both rules with FLAGS (REDIR_F_HIDE, and REDIR_F_REJECT or not), in a fresh set that the
 * policy map's slot 0 then holds; -errno on failure. */
static inline int tctest_rules_install(struct tc_bpf *skel, __u16 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	static const struct {
		__u16 pub, tgt;
		__u8 proto;
	} rules[] = { { PUB, TGT, IPPROTO_TCP }, { UPUB, UTGT, IPPROTO_UDP } };
	int fd, err = 0;
	__u32 slot = 0;
	size_t i;

	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_set", sizeof(struct redir_policy_key),
			    sizeof(struct redir_rule), BPFREDIR_POLICY_ENTRIES, &opts);
	if (fd < 0)
		return -errno;
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]) && !err; i++) {
		struct redir_policy_key pk = { .port = htons(rules[i].pub),
					       .proto = rules[i].proto,
					       .kind = POLICY_PUBLIC };
		struct redir_policy_key hk = { .port = htons(rules[i].tgt),
					       .proto = rules[i].proto,
					       .kind = POLICY_HIDDEN };
		struct redir_rule pr = { .target_port = htons(rules[i].tgt), .flags = flags };
		struct redir_rule hr = { .flags = flags };

		__u32 ports[2] = { rules[i].pub, rules[i].tgt };
		__u8 bit = rules[i].proto == IPPROTO_TCP ? PORT_INTEREST_TCP : PORT_INTEREST_UDP;
		int j;

		/* Marked before the rule acts, as the loader does. */
		for (j = 0; j < 2 && !err; j++)
			if (bpf_map_update_elem(bpf_map__fd(skel->maps.port_interest), &ports[j],
						&bit, BPF_ANY))
				err = -errno;
		if (!err && (bpf_map_update_elem(fd, &pk, &pr, BPF_NOEXIST) ||
			     bpf_map_update_elem(fd, &hk, &hr, BPF_NOEXIST)))
			err = -errno;
	}
	/* Test runs see the netns's loopback device, which the set must name to act on it. */
	if (!err) {
		struct redir_policy_key lo = { .kind = POLICY_IFACE, .id = LO_IFINDEX };
		struct redir_rule unused = {};

		if (bpf_map_update_elem(fd, &lo, &unused, BPF_NOEXIST))
			err = -errno;
	}
	if (!err && bpf_map_update_elem(bpf_map__fd(skel->maps.policy), &slot, &fd, BPF_ANY))
		err = -errno;
	close(fd); /* the policy map holds it */
	return err;
}

#endif /* TCTEST_H */
