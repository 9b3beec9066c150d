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
#include "cache.h"

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

/* k's entry in this CPU's cache (NULL only if the lookup failed), for flow_cache_get and,
 * after a miss, flow_cache_put: one lookup serves both. */
static __always_inline struct redir_flow_cached *flow_cache_entry(const struct redir_flow_key *k)
{
	__u32 slot = cache_slot(k, sizeof(*k) / sizeof(__u32), BPFREDIR_FLOW_CACHE_BITS);

	return bpf_map_lookup_elem(&flow_cache, &slot);
}

/* The answer e holds for k, if it was written in generation gen. */
static __always_inline bool flow_cache_get(const struct redir_flow_cached *e,
					   const struct redir_flow_key *k, __u64 gen, __be16 *port)
{
	if (!e || e->gen != gen || !cache_key_eq(&e->key, k, sizeof(*k) / sizeof(__u64)))
		return false;
	*port = e->port;
	return true;
}

static __always_inline void flow_cache_put(struct redir_flow_cached *e,
					   const struct redir_flow_key *k, __u64 gen, __be16 port)
{
	if (!e)
		return;
	e->key = *k;
	e->gen = gen;
	e->port = port;
}

#endif /* BPFREDIR_FLOW_CACHE_H */
