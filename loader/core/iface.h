/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What an interface hands its TC and XDP programs, by its device type (ARPHRD_*): frames
 * that start with an Ethernet header, or packets that start at their IP header (L3 devices:
 * tun, WireGuard, IP tunnels, PPP), which get the TC programs that parse from there. Other
 * device types are refused: bpfredir cannot find the IP header in what they carry.
 *
 * iface_kind_of() is the mapping alone, with no system call, so the unit tests use it too.
 */
#ifndef BPFREDIR_IFACE_H
#define BPFREDIR_IFACE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/if_arp.h>
#include <linux/types.h>

/* The TC programs of L3 devices, pinned under these names next to bpfredir_tc_in/eg. */
#define L3_IN_PROG_NAME "bpfredir_l3_in"
#define L3_EG_PROG_NAME "bpfredir_l3_eg"

enum iface_kind {
	IFACE_KIND_ETHER, /* Ethernet-framed: bpfredir_tc_in/eg, and XDP */
	IFACE_KIND_L3,	  /* starts at the IP header: bpfredir_l3_in/eg, no XDP */
};

/* What a device of type `type` gives TC; `remote` (remote_len bytes) is its link-layer
 * broadcast address, for a GRE device the tunnel's remote end. -EPROTONOSUPPORT for a type
 * that is neither, -EADDRNOTAVAIL for a GRE device without a fixed unicast remote: the
 * kernel gives those a link-layer header (ipgre_header_ops), so TC would see the outer IP
 * and GRE headers in front of the packet. */
static inline int iface_kind_of(__u16 type, const __u8 *remote, size_t remote_len)
{
	size_t i;
	bool any = false;

	switch (type) {
	case ARPHRD_ETHER:
	case ARPHRD_LOOPBACK: /* lo: frames with an all-zero Ethernet header */
		return IFACE_KIND_ETHER;
	case ARPHRD_IPGRE:
	case ARPHRD_IP6GRE:
		for (i = 0; i < remote_len; i++)
			any |= remote[i] != 0;
		/* An IPv4 multicast remote (224/4) gets the header too. */
		if (!any || (type == ARPHRD_IPGRE && remote_len == 4 && (remote[0] & 0xf0) == 0xe0))
			return -EADDRNOTAVAIL;
		return IFACE_KIND_L3;
	case ARPHRD_NONE:  /* tun, WireGuard, xfrm interfaces */
	case ARPHRD_RAWIP: /* cellular modems */
	case ARPHRD_PPP:
	case ARPHRD_TUNNEL: /* ipip, vti */
	case ARPHRD_TUNNEL6:
	case ARPHRD_SIT:
		return IFACE_KIND_L3;
	default:
		return -EPROTONOSUPPORT;
	}
}

/* The kind of interface ifindex (in this network namespace); its type in *type when asked.
 * -errno when it cannot be read, or iface_kind_of()'s refusal. */
int iface_kind(int ifindex, __u16 *type);
/* Can bpfredir attach to interface ifindex, in XDP mode when xdp? 0, or -errno with why[n]
 * saying what is wrong, to follow "interface NAME ". */
int iface_check(int ifindex, bool xdp, char *why, size_t n);

#endif /* BPFREDIR_IFACE_H */
