/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps every BPF object shares. Each object includes this file; the loader pins the
 * maps by name in the pin dir and makes every later object reuse them, so TC, XDP and the
 * socket hooks all read one rule set. The other maps live beside their only users:
 * reject's (reject_scratch, reject_ratelimit, reject_seen) in reject_state.h, for TC and
 * XDP; the socket hooks' (attach_point, sock_peers) in sock.bpf.c.
 */
#ifndef BPFREDIR_MAPS_H
#define BPFREDIR_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "cache.h"
#include "pending.h"

/* The live rule set; see redir_policy_key. The loader creates the set and fills the slot.
 * Sizes rather than types: clang leaves types this deep as forward declarations in BTF. */
struct policy_set {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_POLICY_ENTRIES);
	__uint(key_size, sizeof(struct redir_policy_key));
	__uint(value_size, sizeof(struct redir_rule));
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct policy_set);
} policy SEC(".maps");

/* Sized by the loader (load --flows N) before load, as pending (pending.h) is. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFREDIR_DEFAULT_FLOWS);
	__type(key, struct redir_flow_key);
	__type(value, struct redir_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_LOCAL_ADDRS);
	__type(key, struct redir_local_addr);
	__type(value, __u32);
} local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_ADDR_HOLDERS);
	__type(key, struct redir_addr_holder);
	__type(value, __u8);
} addr_holders SEC(".maps");

/* local_addrs' generation: addr_cache (policy.h) answers only for the one it was written in. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} addrs_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFREDIR_STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* The loader's record of legacy tc attachments; see redir_tc_attach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFREDIR_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct redir_tc_attach);
} tc_legacy SEC(".maps");

/* Slots are assigned by the loader, which reads them all at once through a mapping; the
 * datapath only counts into them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BPFREDIR_PORTS);
	__type(key, __u32);
	__type(value, struct redir_port_slots);
} port_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFREDIR_PORT_COUNTERS);
	__type(key, __u32);
	__type(value, struct redir_port_stats);
} port_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_PORTS);
	__type(key, __u32);
	__type(value, __u8);
} port_interest SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_PORTS);
	__type(key, __u32);
	__type(value, struct redir_public_targets);
} public_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} iface_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_PORTS);
	__type(key, __u32);
	__type(value, __u8);
} port_hidden SEC(".maps");

/* Is port hidden for proto (PORT_HIDDEN_*), and *reject: with --reject? */
static __always_inline bool port_is_hidden(__be16 port, __u8 proto, bool *reject)
{
	__u32 idx = bpf_ntohs(port);
	__u8 *bits = bpf_map_lookup_elem(&port_hidden, &idx);
	bool tcp = proto == IPPROTO_TCP;

	if (!bits || !(*bits & (tcp ? PORT_HIDDEN_TCP : PORT_HIDDEN_UDP)))
		return false;
	if (reject)
		*reject = *bits & (tcp ? PORT_REJECT_TCP : PORT_REJECT_UDP);
	return true;
}

/* port's PORT_INTEREST_* bits, all protocols'. See port_interest. */
static __always_inline __u8 port_interest_bits(__be16 port)
{
	__u32 idx = bpf_ntohs(port);
	__u8 *bits = bpf_map_lookup_elem(&port_interest, &idx);

	return bits ? *bits : 0;
}

/* The bit of port_interest that says proto might match a rule or a connection on a port. */
static __always_inline __u8 interest_bit(__u8 proto)
{
	return proto == IPPROTO_TCP ? PORT_INTEREST_TCP : PORT_INTEREST_UDP;
}

/* The bit that says a port has been public for proto. */
static __always_inline __u8 interest_public_bit(__u8 proto)
{
	return proto == IPPROTO_TCP ? PORT_INTEREST_PUBLIC_TCP : PORT_INTEREST_PUBLIC_UDP;
}

/* Could a packet of proto on port match a rule or a connection? */
static __always_inline bool port_of_interest(__be16 port, __u8 proto)
{
	return port_interest_bits(port) & interest_bit(proto);
}

/* Is addr (in the maps' form, v4 as ::ffff:a.b.c.d) an address of one of this host's
 * interfaces? (local_addrs also holds subnet broadcast addresses, for the datapath.) */
static __always_inline bool addr_is_own(const __u8 *addr)
{
	struct redir_local_addr key;
	__u32 *holders;

	__builtin_memcpy(key.addr, addr, BPFREDIR_ADDR_LEN);
	holders = bpf_map_lookup_elem(&local_addrs, &key);
	return holders && (*holders & LOCAL_ADDR_HOLDERS);
}

/* Is addr one of this host's: loopback, or an address of one of its interfaces? */
static __always_inline bool addr_is_host(const __u8 *addr)
{
	const __u32 *words = (const void *)addr;

	/* ::ffff:127.0.0.0/104 and ::1 */
	if (!words[0] && !words[1] && words[2] == bpf_htonl(0xffff) && addr[12] == 127)
		return true;
	if (!words[0] && !words[1] && !words[2] && words[3] == bpf_htonl(1))
		return true;
	return addr_is_own(addr);
}

/* The live rule set. A hook reads it once per packet or call, so every decision it makes
 * comes from one set even while `apply` swaps in another. */
static __always_inline void *policy_set_get(void)
{
	__u32 slot = 0;

	return bpf_map_lookup_elem(&policy, &slot);
}

/* The set's entry for port/proto of one kind, or NULL. */
static __always_inline struct redir_rule *set_lookup(void *set, __be16 port, __u8 proto, __u8 kind)
{
	struct redir_policy_key key = { .port = port, .proto = proto, .kind = kind };

	return set ? bpf_map_lookup_elem(set, &key) : NULL;
}

/* Does the set let the attachment (POLICY_IFACE or POLICY_CGROUP, id) act? */
static __always_inline bool set_enables(void *set, __u8 kind, __u64 id)
{
	struct redir_policy_key key = { .kind = kind, .id = id };

	return set && bpf_map_lookup_elem(set, &key);
}

/* Is the interface in its iface_slots slot? (An empty slot holds 0, the ifindex of a
 * BPF_PROG_TEST_RUN sk_lookup context, which has no interface: such a context counts as
 * arriving on an enabled one. No packet hook has ifindex 0.) */
static __always_inline bool iface_slotted(__u32 ifindex)
{
	__u32 slot = ifindex % BPFREDIR_IFACE_SLOTS;
	__u32 *held = bpf_map_lookup_elem(&iface_slots, &slot);

	return held && *held == ifindex;
}

/* Does the live set let the interface act? Its slot answers for most, the set for the rest. */
static __always_inline bool iface_enabled(__u32 ifindex)
{
	return iface_slotted(ifindex) || set_enables(policy_set_get(), POLICY_IFACE, ifindex);
}

static __always_inline void stat_inc(enum redir_stat idx)
{
	__u32 key = idx;
	__u64 *count = bpf_map_lookup_elem(&stats, &key);

	if (count)
		*count += 1;
}

static __always_inline void port_stat_inc(__be16 port, __u8 proto, enum redir_port_stat idx)
{
	__u32 key = bpf_ntohs(port);
	struct redir_port_slots *slots = bpf_map_lookup_elem(&port_slots, &key);
	struct redir_port_stats *stats;

	if (!slots)
		return;
	key = slots->slot[port_slot_of(proto)];
	stats = key ? bpf_map_lookup_elem(&port_counters, &key) : NULL;
	if (stats && idx < PORT_STAT__MAX)
		stats->count[idx] += 1;
}

#endif /* BPFREDIR_MAPS_H */
