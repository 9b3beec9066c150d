/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What reject's answers need beyond the packet: a per-CPU scratch buffer to checksum a
 * quote or a segment in, the per-source ICMP rate limit (reject_icmp_allowed), and what the
 * kernel's own port unreachables carried (reject_learn, reject_icmp_ident). reject_scratch,
 * reject_ratelimit and reject_seen are defined here, not in maps.h: only TC and XDP, which
 * include this file, have them.
 */
#ifndef BPFREDIR_REJECT_STATE_H
#define BPFREDIR_REJECT_STATE_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "proto.h"
#include "csum.h"
#include "parse.h"

/* inet_peer_xrlim_allow(): a bucket of up to 6 tokens per source, one per timeout. */
#define ICMP_RL_BURST 6
#define ICMP4_RL_TIMEOUT_NS 1000000000ULL
#define ICMP6_RL_TIMEOUT_NS 250000000ULL
#define ICMP_RL_ENTRIES 16384

/* Scratch space for an ICMP error's quote or a segment, to checksum it: bpf_csum_diff takes at most
 * 512 bytes at a time, and zeros past the quote add nothing to the sum. */
#define QUOTE_CHUNK 512
#define QUOTE_BUF (3 * QUOTE_CHUNK)

struct reject_quote {
	__u8 buf[QUOTE_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct reject_quote);
} reject_scratch SEC(".maps");

struct reject_rl {
	__u64 last_ns;
	__u64 tokens_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ICMP_RL_ENTRIES);
	__type(key, struct redir_local_addr);
	__type(value, struct reject_rl);
} reject_ratelimit SEC(".maps");

/*
 * What the kernel's own port unreachables to a peer carried, seen leaving by TC egress, so
 * ours carry the same: the ICMPv6 flow label, which the kernel derives from the address
 * pair (and the ICMP type and code, not the ports), so it is the same for every closed port;
 * and the IPv4 ID, which the kernel takes from a counter per address pair that grows by 1
 * and a random amount below the jiffies elapsed since its last use (ip_idents_reserve).
 */
struct reject_seen_key {
	__u8 remote[BPFREDIR_ADDR_LEN];
	__u8 local[BPFREDIR_ADDR_LEN];
};

struct reject_seen {
	__u64 id_ns; /* when ip_id was used */
	__u32 flow_label;
	__u16 ip_id; /* host order */
	__u8 has_label;
	__u8 has_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ICMP_RL_ENTRIES);
	__type(key, struct reject_seen_key);
	__type(value, struct reject_seen);
} reject_seen SEC(".maps");

/* The kernel's HZ on Debian; only scales the random part of the ID's growth. */
#define REJECT_NS_PER_JIFFY (1000000000ULL / 250)

/* May this host send src an ICMP error now? A token bucket like the kernel's per peer. */
static __always_inline bool reject_icmp_allowed(const __u8 *src, bool v6)
{
	__u64 timeout = v6 ? ICMP6_RL_TIMEOUT_NS : ICMP4_RL_TIMEOUT_NS;
	__u64 now = bpf_ktime_get_ns(), tokens;
	struct redir_local_addr key;
	struct reject_rl *rl, fresh;

	__builtin_memcpy(key.addr, src, BPFREDIR_ADDR_LEN);
	rl = bpf_map_lookup_elem(&reject_ratelimit, &key);
	if (!rl) {
		/* A new peer starts full, less the token this error takes. */
		fresh.last_ns = now;
		fresh.tokens_ns = (ICMP_RL_BURST - 1) * timeout;
		bpf_map_update_elem(&reject_ratelimit, &key, &fresh, BPF_ANY);
		return true;
	}
	tokens = rl->tokens_ns + (now - rl->last_ns);
	rl->last_ns = now;
	if (tokens > ICMP_RL_BURST * timeout)
		tokens = ICMP_RL_BURST * timeout;
	if (tokens < timeout) {
		rl->tokens_ns = tokens;
		return false;
	}
	rl->tokens_ns = tokens - timeout;
	return true;
}

/* volatile: clang would turn the loop into a memset call, which BPF does not have. */
static __always_inline void quote_clear(struct reject_quote *q)
{
	volatile __u64 *w = (__u64 *)q->buf;
	int i;

	for (i = 0; i < QUOTE_BUF / 8; i++)
		w[i] = 0;
}

/* Sum of the first len bytes of buf, which is zero past them. */
static __always_inline __u32 quote_sum(struct reject_quote *q, __u32 len)
{
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < QUOTE_BUF / QUOTE_CHUNK; i++)
		if (len > i * QUOTE_CHUNK)
			sum = csum_add(q->buf + i * QUOTE_CHUNK, QUOTE_CHUNK, sum);
	return sum;
}

static __always_inline void seen_key(struct reject_seen_key *k, const __u8 *remote,
				     const __u8 *local)
{
	__builtin_memcpy(k->remote, remote, BPFREDIR_ADDR_LEN);
	__builtin_memcpy(k->local, local, BPFREDIR_ADDR_LEN);
}

/* TC egress (or XDP_TX's caller): learn from a port unreachable the kernel sends. p is the
 * ICMP packet as parse_packet left it. */
static __always_inline void reject_learn(void *data, void *data_end, const struct pkt *p)
{
	__u8 *icmp = data + (p->l4_off & L4_OFF_MASK), *l3 = data + (p->l3_off & L3_OFF_MASK);
	struct reject_seen_key k;
	struct reject_seen *seen, fresh = {};

	if ((p->proto != IPPROTO_ICMP && p->proto != IPPROTO_ICMPV6) || p->l4_off > L4_OFF_MASK)
		return;
	if ((void *)(icmp + 2) > data_end || (void *)(l3 + 8) > data_end)
		return;
	if (p->is_ipv6 ? icmp[0] != ICMPV6_DEST_UNREACH || icmp[1] != ICMPV6_PORT_UNREACH
		       : icmp[0] != ICMP_DEST_UNREACH || icmp[1] != ICMP_PORT_UNREACH)
		return;
	seen_key(&k, p->daddr, p->saddr);
	seen = bpf_map_lookup_elem(&reject_seen, &k);
	if (!seen)
		seen = &fresh;
	if (p->is_ipv6) {
		seen->flow_label = bpf_ntohl(*(__be32 *)l3) & IPV6_FLOWLABEL_MASK;
		seen->has_label = 1;
	} else {
		seen->ip_id = bpf_ntohs(((struct iphdr *)l3)->id);
		seen->id_ns = bpf_ktime_get_ns();
		seen->has_id = 1;
	}
	if (seen == &fresh)
		bpf_map_update_elem(&reject_seen, &k, &fresh, BPF_ANY);
}

/* The flow label (IPv6) or IP ID (IPv4, network order) of our port unreachable to p's
 * source: the kernel's as learned, else one of our own, then remembered so the next error
 * to that peer goes on from it. flow_hash: the datagram's, for a first label. */
static __always_inline __u32 reject_icmp_ident(const struct pkt *p, __u32 flow_hash)
{
	struct reject_seen_key k;
	struct reject_seen *seen, fresh = {};
	__u64 now = bpf_ktime_get_ns(), jiffies;
	__u32 ident;

	seen_key(&k, p->saddr, p->daddr);
	seen = bpf_map_lookup_elem(&reject_seen, &k);
	if (!seen)
		seen = &fresh;
	if (p->is_ipv6) {
		if (!seen->has_label) {
			seen->flow_label =
				(flow_hash << 16 | flow_hash >> 16) & IPV6_FLOWLABEL_MASK;
			seen->has_label = 1;
		}
		ident = seen->flow_label;
	} else {
		ident = bpf_get_prandom_u32() & 0xffff;
		if (seen->has_id) {
			jiffies = (now - seen->id_ns) / REJECT_NS_PER_JIFFY;
			ident = seen->ip_id + 1 + (jiffies ? bpf_get_prandom_u32() % jiffies : 0);
		}
		seen->ip_id = ident;
		seen->id_ns = now;
		seen->has_id = 1;
		ident = bpf_htons(ident & 0xffff);
	}
	if (seen == &fresh)
		bpf_map_update_elem(&reject_seen, &k, &fresh, BPF_ANY);
	return ident;
}

#endif /* BPFREDIR_REJECT_STATE_H */
