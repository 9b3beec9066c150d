/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What sk_lookup programs (the netns guard's, socket steering's) read of their context: the
 * lookup's addresses in the maps' form.
 */
#ifndef BPFREDIR_SK_LOOKUP_H
#define BPFREDIR_SK_LOOKUP_H

#include "parse.h"

/* The loopback device's ifindex in every network namespace: sk_lookup's ingress_ifindex for
 * a connection to 127/8 or ::1 (one to another address of this host's shows the device that
 * owns the address). */
#define LOOPBACK_IFINDEX 1

/* ctx reads with the verifier's rules kept: each is one 4-byte load at a fixed offset, which
 * barrier_var keeps clang from merging across branches into a load through a moved ctx
 * pointer (refused). */
static __always_inline void sk_lookup_addrs(struct bpf_sk_lookup *ctx, __u32 remote[4],
					    __u32 local[4])
{
	__u32 family = ctx->family, r4 = ctx->remote_ip4, l4 = ctx->local_ip4;
	int i;

	barrier_var(r4);
	barrier_var(l4);
	remote[0] = ctx->remote_ip6[0];
	remote[1] = ctx->remote_ip6[1];
	remote[2] = ctx->remote_ip6[2];
	remote[3] = ctx->remote_ip6[3];
	local[0] = ctx->local_ip6[0];
	local[1] = ctx->local_ip6[1];
	local[2] = ctx->local_ip6[2];
	local[3] = ctx->local_ip6[3];
	for (i = 0; i < 4; i++) {
		barrier_var(remote[i]);
		barrier_var(local[i]);
	}
	if (family == AF_INET) {
		addr_from_v4((__u8 *)remote, r4);
		addr_from_v4((__u8 *)local, l4);
	}
}

#endif /* BPFREDIR_SK_LOOKUP_H */
