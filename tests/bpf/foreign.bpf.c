// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Someone else's TC program, for the tests (tests/tools/foreign.c loads and attaches it): it
 * counts every packet it sees and, for TCP and UDP, each watched port it finds as destination
 * or source. On a packet with a watched port it returns the verdict it was loaded with
 * (TCX_NEXT by default); on anything else TCX_NEXT, so ARP and neighbour discovery go on.
 * The same code serves a tcx link and a direct-action cls_bpf filter, whose verdicts have the
 * same values (TC_ACT_UNSPEC, TC_ACT_OK, TC_ACT_SHOT).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define FOREIGN_PORTS 4

/* Watched ports, host order (0: unused); the verdict for packets that carry one. */
const volatile __u16 watched[FOREIGN_PORTS];
const volatile int verdict = TCX_NEXT;

/* [0] every packet; [1 + 2i] watched[i] as destination port; [2 + 2i] as source port. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 + 2 * FOREIGN_PORTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* The L4 ports of an unfragmented TCP or UDP packet straight after its IP header; 0 if none. */
static __always_inline int l4_ports(struct __sk_buff *skb, __be16 ports[2])
{
	__u32 l4_off;
	__u8 proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) ||
		    (ip.frag_off & bpf_htons(0x1fff)))
			return -1;
		proto = ip.protocol;
		l4_off = ETH_HLEN + ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		proto = ip6.nexthdr;
		l4_off = ETH_HLEN + sizeof(ip6);
	} else {
		return -1;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -1;
	return bpf_skb_load_bytes(skb, l4_off, ports, 2 * sizeof(ports[0]));
}

static __always_inline int foreign(struct __sk_buff *skb)
{
	__be16 ports[2];
	bool matched = false;
	int i;

	count(0);
	if (l4_ports(skb, ports))
		return TCX_NEXT;
	for (i = 0; i < FOREIGN_PORTS; i++) {
		if (!watched[i])
			continue;
		if (bpf_ntohs(ports[1]) == watched[i]) {
			count(1 + 2 * i);
			matched = true;
		}
		if (bpf_ntohs(ports[0]) == watched[i]) {
			count(2 + 2 * i);
			matched = true;
		}
	}
	return matched ? verdict : TCX_NEXT;
}

SEC("tcx/ingress")
int foreign_in(struct __sk_buff *skb)
{
	return foreign(skb);
}

SEC("tcx/egress")
int foreign_eg(struct __sk_buff *skb)
{
	return foreign(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
