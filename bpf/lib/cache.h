/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the datapath's per-CPU caches of a map's answers (flow_cache, addr_cache) share: the
 * generation that keeps an answer honest (see redir_flow_cached), a key's direct-mapped slot
 * and its comparison, a word at a time.
 */
#ifndef BPFREDIR_CACHE_H
#define BPFREDIR_CACHE_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* The generation in gen_map (an ARRAY of one __u64). Read before the map it stands for: a
 * change made after the read then outdates what the lookup found. */
static __always_inline __u64 gen_now(void *gen_map)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(gen_map, &zero);

	return gen ? *(volatile __u64 *)gen : 0;
}

/* After every change to the map gen_map stands for: each cached answer may be another now. */
static __always_inline void gen_move_on(void *gen_map)
{
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(gen_map, &zero);

	if (gen)
		__sync_fetch_and_add(gen, 1);
}

/* The slot, among 1 << bits, of a key of n_words 32-bit words: the words folded together and
 * hashed by multiplication, a few instructions; a collision only sends the colliding keys to
 * the map. */
static __always_inline __u32 cache_slot(const void *key, int n_words, int bits)
{
	const __u32 *w = key;
	__u32 h = 0;
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < n_words; i++)
		h ^= w[i];
	return (h * 0x9e3779b1U) >> (32 - bits);
}

/* Are the keys at a and b, n_words 64-bit words each (both 8-byte aligned), the same? */
static __always_inline bool cache_key_eq(const void *a, const void *b, int n_words)
{
	const __u64 *x = a, *y = b;
	__u64 diff = 0;
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < n_words; i++)
		diff |= x[i] ^ y[i];
	return !diff;
}

#endif /* BPFREDIR_CACHE_H */
