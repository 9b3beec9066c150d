/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Internet checksum (RFC 1071) as the datapath needs it: sums over buffers (through
 * bpf_csum_diff, which both TC and XDP have), the TCP/UDP pseudo-headers, and the
 * incremental update of one 16-bit word (RFC 1624).
 */
#ifndef BPFREDIR_CSUM_H
#define BPFREDIR_CSUM_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* The checksum field for a 32-bit sum (or a few of them added in 64 bits): folded to 16
 * bits and complemented. */
static __always_inline __u16 csum_fold(__u64 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return ~csum & 0xffff;
}

/* seed plus the sum of size bytes at buf; size a multiple of 4, at most 512. */
static __always_inline __u32 csum_add(void *buf, __u32 size, __u32 seed)
{
	return bpf_csum_diff(NULL, 0, buf, size, seed);
}

/* ~m + m', folded: what a checksum owes when one 16-bit word it covers changes from old to
 * new, for csum_apply16 to add now or later (frag.h carries it to another fragment). */
static __always_inline __u16 csum_diff16(__u16 old, __u16 new)
{
	__u32 sum = (__u16)~old + new;

	return (sum & 0xffff) + (sum >> 16);
}

/* HC' = ~(~HC + diff), diff from csum_diff16 (RFC 1624, eqn. 3). */
static __always_inline __u16 csum_apply16(__u16 check, __u16 diff)
{
	__u32 sum = (__u16)~check + diff;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* The checksum check after one 16-bit word of what it covers changed from old to new. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	return csum_apply16(check, csum_diff16(old, new));
}

struct pseudo6 {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be32 len;
	__be32 nexthdr;
};

/* seed plus the sum of the IPv4 pseudo-header (RFC 768, 793) of len bytes of proto from saddr
 * to daddr. */
static __always_inline __u32 pseudo_v4(const __be32 *saddr, const __be32 *daddr, __u8 proto,
				       __u32 len, __u32 seed)
{
	__be32 ph[3];

	ph[0] = *saddr;
	ph[1] = *daddr;
	ph[2] = bpf_htonl((__u32)proto << 16 | len);
	return csum_add(ph, sizeof(ph), seed);
}

/* The same with the IPv6 pseudo-header (RFC 8200 8.1). Typed pointers, not void: they tell
 * clang the addresses are 4-byte aligned, so it copies words rather than bytes. */
static __always_inline __u32 pseudo_v6(const struct in6_addr *saddr, const struct in6_addr *daddr,
				       __u8 proto, __u32 len, __u32 seed)
{
	struct pseudo6 ph = {};

	ph.saddr = *saddr;
	ph.daddr = *daddr;
	ph.len = bpf_htonl(len);
	ph.nexthdr = bpf_htonl(proto);
	return csum_add(&ph, sizeof(ph), seed);
}

#endif /* BPFREDIR_CSUM_H */
