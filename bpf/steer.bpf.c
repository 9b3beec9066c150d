// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket steering (load --steering socket): a TCP rule's new connections are handed, at the
 * kernel's own socket lookup, to the listener on the rule's target. The connection then is a
 * connection on the public port: its replies carry that port without a rewrite, its packets
 * never run a bpfredir program after the handshake, and no table holds it. TC and XDP still
 * drop (or reject) what is aimed at the hidden target and translate UDP rules; the netns guard
 * still keeps the target hidden on every other path.
 *
 * A lookup the rule does not apply to, or whose target has no listener here, is left to the
 * kernel, which finds no socket on the public port and refuses the connection as the recipe's
 * REDIRECT to a closed port would.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "lib/proto.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/sk_lookup.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, BPFREDIR_MAX_LISTENERS);
	__type(key, struct redir_listener_key);
	__type(value, __u64);
} steer_listeners SEC(".maps");

/* Set at load time: the netns whose listeners count. A cgroup's sock_ops program sees the
 * sockets of every netns its processes use, and sk_lookup would hand a connection to a
 * socket of another netns as readily as to one of its own. */
const volatile __u64 netns_cookie = 0;

/* The target a TCP connection from remote to local:port is steered to, or 0: a rule steered
 * at socket lookup for the port, for this address, on an interface the live set enables. A
 * local client (through loopback, or from one of this host's addresses to another, which
 * shows the device that owns the address) is steered as the recipe's `nat OUTPUT` would. */
static __always_inline __be16 steer_target(const __u8 *remote, const __u8 *local, __be16 port,
					   __u32 ifindex)
{
	struct redir_rule *rule;
	void *set;

	if (!(port_interest_bits(port) & PORT_INTEREST_PUBLIC_TCP))
		return 0;
	set = policy_set_get();
	rule = set_lookup(set, port, IPPROTO_TCP, POLICY_PUBLIC);
	if (!rule || !(rule->flags & REDIR_F_SOCKET))
		return 0;
	if ((rule->flags & REDIR_F_ADDR) && !addr_eq(local, rule->addr))
		return 0;
	if (ifindex != LOOPBACK_IFINDEX && !set_enables(set, POLICY_IFACE, ifindex) &&
	    !addr_is_own(remote))
		return 0;
	return rule->target_port;
}

/* Hand the lookup to target's listener for local, else for the wildcard address of its
 * family (0.0.0.0 for IPv4), else for :: (a dual-stack socket takes IPv4 too; a v6only one is
 * refused by bpf_sk_assign and the lookup goes on without it). 0 when one took it. */
static __always_inline int steer_to_listener(struct bpf_sk_lookup *ctx, const __u8 *local,
					     __be16 target, bool v4)
{
	struct redir_listener_key key = { .port = target };
	struct bpf_sock *sk;
	int i, err = -1;

	__builtin_memcpy(key.addr, local, BPFREDIR_ADDR_LEN);
	for (i = 0; i < 3 && err; i++) {
		if (i == 1 && !v4)
			continue;
		if (i) {
			__builtin_memset(key.addr, 0, BPFREDIR_ADDR_LEN);
			if (i == 1)
				key.addr[10] = key.addr[11] = 0xff;
		}
		sk = bpf_map_lookup_elem(&steer_listeners, &key);
		if (!sk)
			continue;
		err = bpf_sk_assign(ctx, sk, 0);
		bpf_sk_release(sk);
	}
	return err;
}

SEC("sk_lookup")
int bpfredir_steer(struct bpf_sk_lookup *ctx)
{
	__u32 remote[4], local[4];
	__be16 port = bpf_htons(ctx->local_port), target;

	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	sk_lookup_addrs(ctx, remote, local);
	target = steer_target((__u8 *)remote, (__u8 *)local, port, ctx->ingress_ifindex);
	if (!target)
		return SK_PASS;
	if (steer_to_listener(ctx, (__u8 *)local, target, ctx->family == AF_INET)) {
		stat_inc(STAT_STEER_NO_LISTENER);
		return SK_PASS;
	}
	stat_inc(STAT_STEERED);
	port_stat_inc(port, IPPROTO_TCP, PORT_STAT_REWRITTEN);
	return SK_PASS;
}

/* A service that starts listening on a steered rule's target (a restart, a new instance) is
 * registered under the address it binds, in this network namespace only. */
SEC("sockops")
int bpfredir_listen(struct bpf_sock_ops *ctx)
{
	struct redir_listener_key key = {};
	__u32 family = ctx->family;

	if (ctx->op != BPF_SOCK_OPS_TCP_LISTEN_CB || bpf_get_netns_cookie(ctx) != netns_cookie)
		return 1;
	key.port = bpf_htons(ctx->local_port);
	if (!(port_interest_bits(key.port) & PORT_INTEREST_LISTENER_TCP))
		return 1;
	if (family == AF_INET) {
		addr_from_v4(key.addr, ctx->local_ip4);
	} else if (family == AF_INET6) {
		__u32 *w = (__u32 *)key.addr;

		w[0] = ctx->local_ip6[0];
		w[1] = ctx->local_ip6[1];
		w[2] = ctx->local_ip6[2];
		w[3] = ctx->local_ip6[3];
	} else {
		return 1;
	}
	bpf_sock_hash_update(ctx, &steer_listeners, &key, BPF_ANY);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
