/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flows' answers for established connections, cached per CPU where a packet finds them with
 * an array lookup (see redir_flow_cached). TC and XDP share it; the cache only ever holds an
 * answer flows gave in the generation flows_gen still holds, so policy.h decides as if it
 * were not there. Only the packet hooks use it: they run with bottom halves off (TC egress)
 * or in them (ingress, XDP), so none starts on a CPU while another writes that CPU's entry.
 */
#ifndef BPFREDIR_FLOW_CACHE_H
#define BPFREDIR_FLOW_CACHE_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfredir.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFREDIR_FLOW_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct redir_flow_cached);
} flow_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} flows_gen SEC(".maps");

/* Read before flows is: a change made after the read then outdates what the lookup found. */
static __always_inline __u64 flows_gen_now(void)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&flows_gen, &zero);

	return gen ? *(volatile __u64 *)gen : 0;
}

/* After every change to flows: each cached answer may be another now. */
static __always_inline void flows_changed(void)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&flows_gen, &zero);

	if (gen)
		__sync_fetch_and_add(gen, 1);
}

/* Multiplicative hashing of the key's words folded together: a few instructions, and a
 * collision only costs the colliding connections a flows lookup. */
static __always_inline __u32 flow_cache_slot(const struct redir_flow_key *k)
{
	const __u32 *w = (const void *)k;
	__u32 h = w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4] ^ w[5] ^ w[6] ^ w[7] ^ w[8] ^ w[9];

	return (h * 0x9e3779b1U) >> (32 - BPFREDIR_FLOW_CACHE_BITS);
}

static __always_inline bool flow_cache_get(const struct redir_flow_key *k, __u64 gen, __be16 *port)
{
	__u32 slot = flow_cache_slot(k);
	struct redir_flow_cached *e = bpf_map_lookup_elem(&flow_cache, &slot);
	const __u64 *have, *want = (const void *)k;

	if (!e || e->gen != gen)
		return false;
	have = (const void *)&e->key;
	if (have[0] != want[0] || have[1] != want[1] || have[2] != want[2] || have[3] != want[3] ||
	    have[4] != want[4])
		return false;
	*port = e->port;
	return true;
}

static __always_inline void flow_cache_put(const struct redir_flow_key *k, __u64 gen, __be16 port)
{
	__u32 slot = flow_cache_slot(k);
	struct redir_flow_cached *e = bpf_map_lookup_elem(&flow_cache, &slot);

	if (!e)
		return;
	e->key = *k;
	e->gen = gen;
	e->port = port;
}

#endif /* BPFREDIR_FLOW_CACHE_H */
