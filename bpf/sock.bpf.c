// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup sock_addr entry points. Local clients' packets never cross the TC hooks of the
 * external interface, so they are redirected where the socket picks its peer: connect()
 * (TCP, connected UDP, TCP Fast Open) and sendmsg() (unconnected UDP). Then recvmsg() and
 * getpeername() show the public port again, so the client cannot tell.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "lib/maps.h"
#include "lib/parse.h"

#define SOCK_ALLOW 1
#define SOCK_REJECT 0
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define ECONNREFUSED 111

/* cgroup hooks see every netns the cgroup's processes use; rules belong to the one the
 * loader ran in. Set at load time. */
const volatile __u64 netns_cookie = 0;

/* See redir_attach_point. Here rather than in maps.h: only socket programs have one. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, struct redir_attach_point);
} attach_point SEC(".maps");

/* See redir_sock_peers. sock_addr_func_proto offers bpf_sk_storage_get to every cgroup
 * sock_addr hook, for any attach type, since 5.8 at the latest: well before the 6.6 this
 * project needs. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct redir_sock_peers);
} sock_peers SEC(".maps");

/* Nested attachments (a pod's cgroup and a container's inside it) both run for a process
 * in the inner one, the inner first. The nearest enabled one decides alone: the outer one
 * would otherwise see the port the inner one rewrote, and refuse it where the target is
 * hidden from local clients. Ancestors are the calling task's: the one making the call. */
static __always_inline bool nearest_attachment(void *set, __u64 here)
{
	bool below_here = false;
	__u32 level;
	__u64 id;

	for (level = 0; level < BPFREDIR_CGROUP_LEVELS; level++) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;
		if (below_here && set_enables(set, POLICY_CGROUP, id))
			return false;
		if (id == here)
			below_here = true;
	}
	return true;
}

/* Does the live set let this attachment act? */
static __always_inline bool attachment_enabled(void *set)
{
	struct redir_attach_point *here = bpf_get_local_storage(&attach_point, 0);

	return here->cgroup_id && set_enables(set, POLICY_CGROUP, here->cgroup_id) &&
	       nearest_attachment(set, here->cgroup_id);
}

static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	if (ctx->type == SOCK_STREAM)
		return IPPROTO_TCP;
	if (ctx->type == SOCK_DGRAM)
		return IPPROTO_UDP;
	return 0;
}

/* The peer address in the one form every map uses (v4 as ::ffff:a.b.c.d). A v4-mapped
 * address on an AF_INET6 socket thus lands on the same key as plain IPv4. */
static __always_inline void sock_peer_addr(const struct bpf_sock_addr *ctx, bool v6, __u8 *addr)
{
	__u32 *words = (void *)addr;

	if (!v6) {
		addr_from_v4(addr, ctx->user_ip4);
		return;
	}
	words[0] = ctx->user_ip6[0];
	words[1] = ctx->user_ip6[1];
	words[2] = ctx->user_ip6[2];
	words[3] = ctx->user_ip6[3];
}

/* The kernel connects a socket asked for the unspecified address to loopback: 0.0.0.0 to
 * 127.0.0.1 (ip_route_connect), :: to ::1 (tcp_v6_connect, ip6_datagram_connect,
 * udpv6_sendmsg) and ::ffff:0.0.0.0 on an AF_INET6 socket to ::ffff:127.0.0.1 (the IPv4 path).
 * Put addr as the kernel will, so that it counts as local and the peer remembered for
 * getpeername/recvfrom is the one the socket will show. (:: on an AF_INET6 socket bound to an
 * IPv4-mapped address becomes ::ffff:127.0.0.1 instead; that peer is then not remembered.) */
static __always_inline void addr_unspecified_to_loopback(__u8 *addr)
{
	__u32 *words = (void *)addr;

	if (words[0] || words[1] || words[3])
		return;
	if (words[2] == bpf_htonl(0xffff))
		words[3] = bpf_htonl(0x7f000001);
	else if (!words[2])
		words[3] = bpf_htonl(1);
}

/* The socket now talks to addr:target, asked for as addr:public: remember it in the
 * socket's own storage, in the peer's slot or, for a new peer, in the socket's oldest. */
static __always_inline void peer_remember(struct bpf_sock_addr *ctx, const __u8 *addr,
					  __be16 target, __be16 public)
{
	struct redir_sock_peers *peers;
	struct bpf_sock *sk = ctx->sk;
	__u32 i, slot;

	if (!sk)
		return;
	peers = bpf_sk_storage_get(&sock_peers, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!peers)
		return;
	for (i = 0; i < BPFREDIR_SOCK_PEERS; i++) {
		if (peers->peer[i].target_port == target && addr_eq(peers->peer[i].addr, addr)) {
			peers->peer[i].public_port = public;
			return;
		}
	}
	slot = peers->next % BPFREDIR_SOCK_PEERS;
	peers->next = slot + 1;
	__builtin_memcpy(peers->peer[slot].addr, addr, BPFREDIR_ADDR_LEN);
	peers->peer[slot].target_port = target;
	peers->peer[slot].public_port = public;
}

/* connect() and sendmsg(): point the socket at the target port, remember the public one. */
static __always_inline int redirect_peer(struct bpf_sock_addr *ctx, bool v6)
{
	__u8 proto = sock_proto(ctx);
	__be16 port = (__be16)ctx->user_port;
	__u8 addr[BPFREDIR_ADDR_LEN];
	struct redir_rule *rule;
	void *set;

	if (!proto || bpf_get_netns_cookie(ctx) != netns_cookie)
		return SOCK_ALLOW;
	sock_peer_addr(ctx, v6, addr);
	addr_unspecified_to_loopback(addr);

	/* Only this host's own addresses: a connect() to 8445 on another machine is not ours. */
	set = policy_set_get();
	rule = set_lookup(set, port, proto, POLICY_PUBLIC);
	if (rule && (rule->flags & REDIR_F_ADDR ? addr_eq(addr, rule->addr) : addr_is_host(addr)) &&
	    attachment_enabled(set)) {
		ctx->user_port = rule->target_port;
		peer_remember(ctx, addr, rule->target_port, port);
		stat_inc(STAT_SOCK_REDIRECTED);
		return SOCK_ALLOW;
	}

	rule = set_lookup(set, port, proto, POLICY_HIDDEN);
	if (rule && (rule->flags & REDIR_F_HIDE_LOCAL) && addr_is_host(addr) &&
	    attachment_enabled(set)) {
		/* What a port with no listener answers, rather than the EPERM of a bare reject. */
		bpf_set_retval(-ECONNREFUSED);
		stat_inc(STAT_SOCK_REFUSED);
		return SOCK_REJECT;
	}
	return SOCK_ALLOW;
}

/* recvmsg() and getpeername(): the peer shows as the public port it was reached on. */
static __always_inline int restore_peer(struct bpf_sock_addr *ctx, bool v6)
{
	__be16 port = (__be16)ctx->user_port;
	struct redir_sock_peers *peers;
	__u8 addr[BPFREDIR_ADDR_LEN];
	struct bpf_sock *sk = ctx->sk;
	__u32 i;

	if (!sk || !sock_proto(ctx))
		return SOCK_ALLOW;
	peers = bpf_sk_storage_get(&sock_peers, sk, NULL, 0);
	if (!peers)
		return SOCK_ALLOW;
	sock_peer_addr(ctx, v6, addr);
	for (i = 0; i < BPFREDIR_SOCK_PEERS; i++) {
		if (peers->peer[i].target_port == port && addr_eq(peers->peer[i].addr, addr)) {
			ctx->user_port = peers->peer[i].public_port;
			break;
		}
	}
	return SOCK_ALLOW;
}

SEC("cgroup/connect4")
int bpfredir_conn4(struct bpf_sock_addr *ctx)
{
	return redirect_peer(ctx, false);
}

SEC("cgroup/connect6")
int bpfredir_conn6(struct bpf_sock_addr *ctx)
{
	return redirect_peer(ctx, true);
}

SEC("cgroup/sendmsg4")
int bpfredir_send4(struct bpf_sock_addr *ctx)
{
	return redirect_peer(ctx, false);
}

SEC("cgroup/sendmsg6")
int bpfredir_send6(struct bpf_sock_addr *ctx)
{
	return redirect_peer(ctx, true);
}

SEC("cgroup/recvmsg4")
int bpfredir_recv4(struct bpf_sock_addr *ctx)
{
	return restore_peer(ctx, false);
}

SEC("cgroup/recvmsg6")
int bpfredir_recv6(struct bpf_sock_addr *ctx)
{
	return restore_peer(ctx, true);
}

SEC("cgroup/getpeername4")
int bpfredir_peer4(struct bpf_sock_addr *ctx)
{
	return restore_peer(ctx, false);
}

SEC("cgroup/getpeername6")
int bpfredir_peer6(struct bpf_sock_addr *ctx)
{
	return restore_peer(ctx, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
