// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Keep local_addrs current while no bpfredir process runs: the socket hooks cannot ask the
 * FIB whether a destination is this host's, so they read that map, and these programs
 * follow the kernel's own address notifications (the ones behind RTM_NEWADDR/RTM_DELADDR)
 * in the network namespace the rules belong to.
 *
 * A notification is not one more or one less holder of an address. The kernel sends
 * RTM_NEWADDR again for an address it already has: rtmsg_ifa from inet_rtm_newaddr when
 * NLM_F_REPLACE changes an existing one (`ip addr change`/`replace`), from check_lifetime
 * when its preferred lifetime runs out, and from __inet_del_ifa for a secondary address
 * promoted to primary; __ipv6_ifa_notify when DAD completes again (link down and up with
 * keep_addr_on_down) (a change of an IPv6 address notifies with event 0, which is neither).
 * So each address is counted by its holders (addr_holders: interface and address, for IPv4
 * also prefix length and ifa_address, what the kernel keeps unique): a NEWADDR counts only
 * when it brings a holder the table did not have, a DELADDR only when it takes one it had,
 * and the address leaves local_addrs with its last holder, not while another interface
 * still has it. Address changes run under RTNL, so these programs never run at once and
 * count without atomics; a bpfredir command rewriting both maps at the same moment may
 * race them, and the next sync (any command, or `bpfredir watch`) puts that right.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpfredir.h"
#include "lib/maps.h"
#include "lib/parse.h"

#define RTM_NEWADDR 20
#define RTM_DELADDR 21

/* Set at load time: the netns whose addresses count. */
const volatile __u64 netns_cookie = 0;

static __always_inline void holder_added(const struct redir_addr_holder *h)
{
	struct redir_local_addr key;
	const __u8 unused = 0;
	const __u32 one = 1;
	__u32 *count;

	/* Known already: a repeated notification. (Or the table is full: the address then
	 * counts as not ours, as a sync would say loudly.) */
	if (bpf_map_update_elem(&addr_holders, h, &unused, BPF_NOEXIST))
		return;
	__builtin_memcpy(key.addr, h->addr, BPFREDIR_ADDR_LEN);
	count = bpf_map_lookup_elem(&local_addrs, &key);
	if (count)
		*count += 1;
	else if (bpf_map_update_elem(&local_addrs, &key, &one, BPF_NOEXIST))
		bpf_map_delete_elem(&addr_holders, h); /* no room: keep both tables in step */
	else
		gen_move_on(&addrs_gen);
}

static __always_inline void holder_removed(const struct redir_addr_holder *h)
{
	struct redir_local_addr key;
	__u32 *count;

	/* Not one that was counted. */
	if (bpf_map_delete_elem(&addr_holders, h))
		return;
	__builtin_memcpy(key.addr, h->addr, BPFREDIR_ADDR_LEN);
	count = bpf_map_lookup_elem(&local_addrs, &key);
	if (count && *count > 1)
		*count -= 1;
	else if (!bpf_map_delete_elem(&local_addrs, &key))
		gen_move_on(&addrs_gen);
}

static __always_inline void track_addr(int event, struct net_device *dev,
				       const struct redir_addr_holder *h)
{
	struct net *net = BPF_CORE_READ(dev, nd_net.net);

	if (!net || BPF_CORE_READ(net, net_cookie) != netns_cookie)
		return;
	if (event == RTM_NEWADDR)
		holder_added(h);
	else if (event == RTM_DELADDR)
		holder_removed(h);
}

SEC("fentry/rtmsg_ifa")
int BPF_PROG(bpfredir_addr4, int event, struct in_ifaddr *ifa)
{
	struct net_device *dev = BPF_CORE_READ(ifa, ifa_dev, dev);
	struct redir_addr_holder h = {};

	addr_from_v4(h.addr, BPF_CORE_READ(ifa, ifa_local));
	h.ifindex = BPF_CORE_READ(dev, ifindex);
	h.peer4 = BPF_CORE_READ(ifa, ifa_address);
	h.prefixlen = BPF_CORE_READ(ifa, ifa_prefixlen);
	track_addr(event, dev, &h);
	return 0;
}

SEC("fentry/__ipv6_ifa_notify")
int BPF_PROG(bpfredir_addr6, int event, struct inet6_ifaddr *ifp)
{
	struct net_device *dev = BPF_CORE_READ(ifp, idev, dev);
	struct redir_addr_holder h = {};

	BPF_CORE_READ_INTO(&h.addr, ifp, addr.in6_u.u6_addr8);
	h.ifindex = BPF_CORE_READ(dev, ifindex);
	track_addr(event, dev, &h);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
