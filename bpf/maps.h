/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of bpfredir. Each BPF object includes this file; the loader pins the maps by
 * name in the pin dir and makes every later object reuse them, so TC, XDP and the socket
 * hooks all read one rule set.
 */
#ifndef BPFREDIR_MAPS_H
#define BPFREDIR_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfredir.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_RULES);
	__type(key, struct redir_rule_key);
	__type(value, struct redir_rule);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_RULES);
	__type(key, struct redir_port_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hidden SEC(".maps");

/* Sized by the loader (load --flows N) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFREDIR_DEFAULT_FLOWS);
	__type(key, struct redir_flow_key);
	__type(value, struct redir_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_RULES);
	__type(key, struct redir_port_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hidden_local SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFREDIR_DEFAULT_FLOWS);
	__type(key, struct redir_sock_key);
	__type(value, struct redir_flow);
} sock_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_LOCAL_ADDRS);
	__type(key, struct redir_local_addr);
	__type(value, __u8);
} local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Entries are made by the loader; the datapath only counts into them. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2 * BPFREDIR_MAX_RULES);
	__type(key, struct redir_port_key);
	__type(value, struct redir_port_stats);
} port_stats SEC(".maps");

static __always_inline void stat_inc(enum redir_stat idx)
{
	__u32 key = idx;
	__u64 *count = bpf_map_lookup_elem(&stats, &key);

	if (count)
		*count += 1;
}

static __always_inline void port_stat_inc(__be16 port, __u8 proto, enum redir_port_stat idx)
{
	struct redir_port_key key = { .port = port, .proto = proto };
	struct redir_port_stats *stats = bpf_map_lookup_elem(&port_stats, &key);

	if (stats && idx < PORT_STAT__MAX)
		stats->count[idx] += 1;
}

#endif /* BPFREDIR_MAPS_H */
