// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP entry point: the ingress half of TC (public -> target, drop the hidden target), run
 * before the stack allocates an skb. Same parser, policy and accounting as TC; replies are
 * still rewritten by TC egress. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfredir.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"
#include "rewrite.h"

SEC("xdp")
int bpfredir_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt p = {};
	__be16 new_port = 0;
	int parsed = parse_packet(data, data_end, &p);
	int verdict = ingress_policy(ctx, ctx->ingress_ifindex, parsed, &p, &new_port);

	if (verdict == VERDICT_REWRITE && rewrite_port(data, data_end, &p, true, new_port))
		verdict = VERDICT_DROP_MALFORMED;
	/* Not answered here yet: dropped, never passed on to the hidden port. */
	if (verdict == VERDICT_REJECT)
		verdict = VERDICT_DROP_HIDDEN;
	account(&p, verdict, true, new_port);
	return verdict == VERDICT_DROP_HIDDEN || verdict == VERDICT_DROP_MALFORMED ? XDP_DROP
										   : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
