// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup sock_addr entry points: local clients are redirected at connect() time, since
 * their packets never cross the TC hooks of the external interface. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "maps.h"
#include "parse.h"

#define SOCK_ALLOW 1
#define AF_INET 2
#define SOCK_STREAM 1
#define SOCK_DGRAM 2

/* cgroup hooks see every netns the cgroup's processes use; rules belong to the one the
 * loader ran in. Set at load time. */
const volatile __u64 netns_cookie = 0;

static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	if (ctx->type == SOCK_STREAM)
		return IPPROTO_TCP;
	if (ctx->type == SOCK_DGRAM)
		return IPPROTO_UDP;
	return 0;
}

/* Only this host's own addresses: a connect() to 8445 on another machine is not ours. */
static __always_inline bool is_local_v4(__be32 addr)
{
	struct redir_local_addr key;

	if ((bpf_ntohl(addr) >> 24) == 127)
		return true;
	addr_from_v4(key.addr, addr);
	return bpf_map_lookup_elem(&local_addrs, &key) != NULL;
}

static __always_inline void redirect_local_v4(struct bpf_sock_addr *ctx)
{
	struct redir_rule_key rk = {};
	struct redir_rule *rule;

	rk.proto = sock_proto(ctx);
	rk.public_port = (__be16)ctx->user_port;
	if (!rk.proto || bpf_get_netns_cookie(ctx) != netns_cookie)
		return;
	rule = bpf_map_lookup_elem(&rules, &rk);
	if (!rule || !is_local_v4(ctx->user_ip4))
		return;
	ctx->user_port = rule->target_port;
	stat_inc(STAT_SOCK_REDIRECTED);
}

SEC("cgroup/connect4")
int bpfredir_conn4(struct bpf_sock_addr *ctx)
{
	redirect_local_v4(ctx);
	return SOCK_ALLOW;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
