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
#include "maps.h"
#include "parse.h"

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

/* Does the live set let this attachment act? */
static __always_inline bool attachment_enabled(void *set)
{
	struct redir_attach_point *here = bpf_get_local_storage(&attach_point, 0);

	return here->cgroup_id && set_enables(set, POLICY_CGROUP, here->cgroup_id);
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

/* Only this host's own addresses: a connect() to 8445 on another machine is not ours. */
static __always_inline bool addr_is_local(const __u8 *addr)
{
	const __u32 *words = (const void *)addr;
	struct redir_local_addr key;
	__u8 *kind;

	/* ::ffff:127.0.0.0/104 and ::1 */
	if (!words[0] && !words[1] && words[2] == bpf_htonl(0xffff) && addr[12] == 127)
		return true;
	if (!words[0] && !words[1] && !words[2] && words[3] == bpf_htonl(1))
		return true;
	__builtin_memcpy(key.addr, addr, BPFREDIR_ADDR_LEN);
	kind = bpf_map_lookup_elem(&local_addrs, &key);
	return kind && *kind == LOCAL_ADDR_OWN;
}

static __always_inline void sock_key_fill(struct redir_sock_key *key,
					  const struct bpf_sock_addr *ctx, const __u8 *addr,
					  __be16 port, __u8 proto)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->cookie = bpf_get_socket_cookie((void *)ctx);
	__builtin_memcpy(key->addr, addr, BPFREDIR_ADDR_LEN);
	key->port = port;
	key->proto = proto;
}

/* connect() and sendmsg(): point the socket at the target port, remember the public one. */
static __always_inline int redirect_peer(struct bpf_sock_addr *ctx, bool v6)
{
	__u8 proto = sock_proto(ctx);
	__be16 port = (__be16)ctx->user_port;
	struct redir_sock_key sk_key;
	struct redir_flow public = {};
	__u8 addr[BPFREDIR_ADDR_LEN];
	struct redir_rule *rule;
	void *set;

	if (!proto || bpf_get_netns_cookie(ctx) != netns_cookie)
		return SOCK_ALLOW;
	sock_peer_addr(ctx, v6, addr);

	set = policy_set_get();
	rule = set_lookup(set, port, proto, POLICY_PUBLIC);
	if (rule &&
	    (rule->flags & REDIR_F_ADDR ? addr_eq(addr, rule->addr) : addr_is_local(addr)) &&
	    attachment_enabled(set)) {
		ctx->user_port = rule->target_port;
		sock_key_fill(&sk_key, ctx, addr, rule->target_port, proto);
		public.port = port;
		bpf_map_update_elem(&sock_rev, &sk_key, &public, BPF_ANY);
		stat_inc(STAT_SOCK_REDIRECTED);
		return SOCK_ALLOW;
	}

	rule = set_lookup(set, port, proto, POLICY_HIDDEN);
	if (rule && (rule->flags & REDIR_F_HIDE_LOCAL) && addr_is_local(addr) &&
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
	struct redir_sock_key sk_key;
	__u8 addr[BPFREDIR_ADDR_LEN];
	struct redir_flow *public;
	__u8 proto = sock_proto(ctx);

	if (!proto)
		return SOCK_ALLOW;
	sock_peer_addr(ctx, v6, addr);
	sock_key_fill(&sk_key, ctx, addr, (__be16)ctx->user_port, proto);
	public = bpf_map_lookup_elem(&sock_rev, &sk_key);
	if (public)
		ctx->user_port = public->port;
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
