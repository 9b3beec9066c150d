// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket steering (load --steering socket): a TCP rule's new connections are handed, at the
 * kernel's own socket lookup, to the listener on the rule's target. The connection then is a
 * connection on the public port: its replies carry that port without a rewrite, no steering
 * program runs for its packets after the handshake, and no table holds it. TC and XDP still
 * drop (or reject) what is aimed at the hidden target and translate UDP rules (a TCP public
 * port has no TCP bit in port_interest here, so its packets pass them after that lookup); the
 * netns guard still keeps the target hidden on every other path.
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
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2 * BPFREDIR_PORTS);
	__type(key, __u32);
	__type(value, __u64);
} steer_wildcard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, BPFREDIR_MAX_LISTENERS);
	__type(key, struct redir_listener_key);
	__type(value, __u64);
} steer_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_PORTS);
	__type(key, __u32);
	__type(value, __u8);
} steer_bound SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_PORTS);
	__type(key, __u32);
	__type(value, __be16);
} steer_fast SEC(".maps");

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
	if (ifindex != LOOPBACK_IFINDEX && !iface_enabled(ifindex) && !addr_is_own(remote))
		return 0;
	return rule->target_port;
}

static __always_inline int assign_and_release(struct bpf_sk_lookup *ctx, struct bpf_sock *sk)
{
	int err = bpf_sk_assign(ctx, sk, 0);

	bpf_sk_release(sk);
	return err;
}

/* Does target have listeners bound to one address (so the slow way, which reads the
 * lookup's address)? */
static __always_inline bool target_has_bound(__be16 target)
{
	__u32 idx = bpf_ntohs(target);
	__u8 *bound = bpf_map_lookup_elem(&steer_bound, &idx);

	return bound && *bound;
}

/* The common case the cheap way: a rule no address limits, a connection on an interface
 * iface_slots notes, a target listening on any address. 1: handed to the listener; 0: not
 * that case (the slow way decides); -1: the listener refused it. */
static __always_inline int steer_fast_path(struct bpf_sk_lookup *ctx, __be16 port)
{
	__u32 idx = bpf_ntohs(port);
	__be16 *target = bpf_map_lookup_elem(&steer_fast, &idx);
	struct bpf_sock *sk;

	if (!target || !*target ||
	    (ctx->ingress_ifindex != LOOPBACK_IFINDEX && !iface_slotted(ctx->ingress_ifindex)) ||
	    target_has_bound(*target))
		return 0;
	idx = steer_wildcard_slot(bpf_ntohs(*target), ctx->family == AF_INET6);
	sk = bpf_map_lookup_elem(&steer_wildcard, &idx);
	if (!sk)
		return 0;
	return assign_and_release(ctx, sk) ? -1 : 1;
}

/* A registered member of target's listeners bound to addr, or NULL. */
static __always_inline struct bpf_sock *member_lookup(const __u8 *addr, __be16 target)
{
	struct redir_listener_key key = { .port = target };
	struct bpf_sock *sk;
	int i;

	__builtin_memcpy(key.addr, addr, BPFREDIR_ADDR_LEN);
	for (i = 0; i < BPFREDIR_LISTENER_MEMBERS; i++) {
		key.member = i;
		sk = bpf_map_lookup_elem(&steer_listeners, &key);
		if (sk)
			return sk;
	}
	return NULL;
}

/* The wildcard slot's listener closed, and others of its group may listen on: one bound to
 * any address of the family (for IPv4, a dual-stack :: one after 0.0.0.0 ones), which takes
 * the slot. */
static __always_inline struct bpf_sock *wildcard_member(__u32 slot, __be16 target, bool v6)
{
	__u8 any[BPFREDIR_ADDR_LEN] = {};
	struct bpf_sock *sk = NULL;

	if (!v6) {
		any[10] = any[11] = 0xff;
		sk = member_lookup(any, target);
		any[10] = any[11] = 0;
	}
	if (!sk)
		sk = member_lookup(any, target);
	if (sk)
		bpf_map_update_elem(&steer_wildcard, &slot, sk, BPF_ANY);
	return sk;
}

/* Hand the lookup to target's listener bound to local (when the port has any bound to one
 * address), else to its listener bound to any address. 0 when one took it. */
static __always_inline int steer_to_listener(struct bpf_sk_lookup *ctx, const __u8 *local,
					     __be16 target, bool v6)
{
	struct bpf_sock *sk;
	__u32 slot;

	if (target_has_bound(target)) {
		sk = member_lookup(local, target);
		if (sk)
			return assign_and_release(ctx, sk);
	}
	slot = steer_wildcard_slot(bpf_ntohs(target), v6);
	sk = bpf_map_lookup_elem(&steer_wildcard, &slot);
	if (!sk)
		sk = wildcard_member(slot, target, v6);
	return sk ? assign_and_release(ctx, sk) : -1;
}

enum steer_result {
	STEER_NOT_OURS,
	STEER_HANDED,	   /* to the target's listener */
	STEER_NO_LISTENER, /* the rule applies, but no listener takes it: the kernel refuses */
};

static __always_inline int steer_lookup(struct bpf_sk_lookup *ctx, __be16 port)
{
	int fast = steer_fast_path(ctx, port);
	__u32 remote[4], local[4];
	__be16 target;

	if (fast)
		return fast > 0 ? STEER_HANDED : STEER_NO_LISTENER;
	sk_lookup_addrs(ctx, remote, local);
	target = steer_target((__u8 *)remote, (__u8 *)local, port, ctx->ingress_ifindex);
	if (!target)
		return STEER_NOT_OURS;
	return steer_to_listener(ctx, (__u8 *)local, target, ctx->family == AF_INET6)
		       ? STEER_NO_LISTENER
		       : STEER_HANDED;
}

SEC("sk_lookup")
int bpfredir_steer(struct bpf_sk_lookup *ctx)
{
	__be16 port = bpf_htons(ctx->local_port);

	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	switch (steer_lookup(ctx, port)) {
	case STEER_HANDED:
		stat_inc(STAT_STEERED);
		port_stat_inc(port, IPPROTO_TCP, PORT_STAT_REWRITTEN);
		break;
	case STEER_NO_LISTENER:
		stat_inc(STAT_STEER_NO_LISTENER);
		port_stat_inc(port, IPPROTO_TCP, PORT_STAT_STEER_REFUSED);
		break;
	}
	return SK_PASS;
}

/* A new listener takes a free member number of its address and port, from its cookie's on;
 * with none free, its cookie's. (A closed member's entry the kernel drops: its number is free
 * again.) */
static __always_inline void listen_member(struct bpf_sock_ops *ctx, struct redir_listener_key *key)
{
	__u32 start = bpf_get_socket_cookie(ctx) % BPFREDIR_LISTENER_MEMBERS, i;
	long err = -1;

	for (i = 0; i < BPFREDIR_LISTENER_MEMBERS && err; i++) {
		key->member = (start + i) % BPFREDIR_LISTENER_MEMBERS;
		err = bpf_sock_hash_update(ctx, &steer_listeners, key, BPF_NOEXIST);
	}
	if (err) {
		key->member = start;
		bpf_sock_hash_update(ctx, &steer_listeners, key, BPF_ANY);
	}
}

/* Every listener goes in the hash as a member of its address and port. One bound to any
 * address goes in its family's wildcard slot too, a dual-stack :: one in the IPv4 slot as
 * well unless a 0.0.0.0 one holds it (a v6only one there is refused by bpf_sk_assign, and
 * the lookup goes on as if none were); one bound to one address has its port marked. */
static __always_inline void listen_register(struct bpf_sock_ops *ctx, __u32 family,
					    struct redir_listener_key *key)
{
	const __u32 *w = (const __u32 *)key->addr;
	__u16 port = bpf_ntohs(key->port);
	__u32 slot;
	__u8 one = 1;

	listen_member(ctx, key);
	if (family == AF_INET && !w[3]) {
		slot = steer_wildcard_slot(port, false);
		bpf_sock_map_update(ctx, &steer_wildcard, &slot, BPF_ANY);
	} else if (family == AF_INET6 && !(w[0] | w[1] | w[2] | w[3])) {
		slot = steer_wildcard_slot(port, true);
		bpf_sock_map_update(ctx, &steer_wildcard, &slot, BPF_ANY);
		slot = steer_wildcard_slot(port, false);
		bpf_sock_map_update(ctx, &steer_wildcard, &slot, BPF_NOEXIST);
	} else {
		slot = port;
		bpf_map_update_elem(&steer_bound, &slot, &one, BPF_ANY);
	}
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
	listen_register(ctx, family, &key);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
