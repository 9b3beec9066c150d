// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Keep local_addrs current while no bpfredir process runs: the socket hooks cannot ask the
 * FIB whether a destination is this host's, so they read that map, and these programs
 * follow the kernel's own address notifications (the ones behind RTM_NEWADDR/RTM_DELADDR)
 * in the network namespace the rules belong to.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpfredir.h"
#include "maps.h"
#include "parse.h"

#define RTM_NEWADDR 20
#define RTM_DELADDR 21

/* Set at load time: the netns whose addresses count. */
const volatile __u64 netns_cookie = 0;

static __always_inline void track_addr(int event, struct net_device *dev,
				       const struct redir_local_addr *addr)
{
	struct net *net = BPF_CORE_READ(dev, nd_net.net);
	__u8 present = 1;

	if (!net || BPF_CORE_READ(net, net_cookie) != netns_cookie)
		return;
	if (event == RTM_NEWADDR)
		bpf_map_update_elem(&local_addrs, addr, &present, BPF_ANY);
	else if (event == RTM_DELADDR)
		bpf_map_delete_elem(&local_addrs, addr);
}

SEC("fentry/rtmsg_ifa")
int BPF_PROG(bpfredir_addr4, int event, struct in_ifaddr *ifa)
{
	struct redir_local_addr addr;

	addr_from_v4(addr.addr, BPF_CORE_READ(ifa, ifa_local));
	track_addr(event, BPF_CORE_READ(ifa, ifa_dev, dev), &addr);
	return 0;
}

SEC("fentry/__ipv6_ifa_notify")
int BPF_PROG(bpfredir_addr6, int event, struct inet6_ifaddr *ifp)
{
	struct redir_local_addr addr;

	BPF_CORE_READ_INTO(&addr.addr, ifp, addr.in6_u.u6_addr8);
	track_addr(event, BPF_CORE_READ(ifp, idev, dev), &addr);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
