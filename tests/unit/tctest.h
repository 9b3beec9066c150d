/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the ICMP and reject tests share on top of the fixture: their rule set (tcp 8445 ->
 * 8443 and udp 5353 -> 5354, both targets hidden) and the client's packets to the server.
 */
#ifndef TCTEST_H
#define TCTEST_H

#include <stdbool.h>
#include "core/ruleset.h"
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

/* Both rules, hiding their targets, and with REJECT answering packets to them as a closed
 * port would. */
static inline bool tctest_rules(struct fixture *f, bool reject)
{
	const struct rule_spec rules[] = {
		{ .public_port = PUB, .target_port = TGT, .proto = IPPROTO_TCP, .reject = reject },
		{ .public_port = UPUB,
		  .target_port = UTGT,
		  .proto = IPPROTO_UDP,
		  .reject = reject },
	};

	return fixture_rules(f, rules, 2);
}

#endif /* TCTEST_H */
