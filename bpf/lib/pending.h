/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pending, the table of new and closing connections: a set-associative table in an ARRAY
 * (see redir_pending_bucket), read and written without locks by every packet hook on every
 * CPU at once. What keeps a reader from taking one entry's value for another's is the check
 * in each way's word; what a race can cost is an entry, as an eviction would.
 */
#ifndef BPFREDIR_PENDING_H
#define BPFREDIR_PENDING_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfredir.h"
#include "cache.h"

/* Sized by the loader (pending_buckets_for), like flows. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFREDIR_DEFAULT_FLOWS / 8 / BPFREDIR_PENDING_WAYS);
	__type(key, __u32);
	__type(value, struct redir_pending_bucket);
} pending_buckets SEC(".maps");

/* Written once, by the loader that creates the instance. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct redir_pending_seed);
} pending_seed SEC(".maps");

#define PENDING_KEY_WORDS (sizeof(struct redir_flow_key) / sizeof(__u64))

/* k's bucket, and in *hash k's hash (pending_hash), which its way's word carries. */
static __always_inline struct redir_pending_bucket *pending_bucket(const struct redir_flow_key *k,
								   __u64 *hash)
{
	/* The loader sizes the table at load; the program reads the size it got. */
	__u32 zero = 0, n_buckets = ((struct bpf_map *)&pending_buckets)->max_entries, idx;
	struct redir_pending_seed *seed = bpf_map_lookup_elem(&pending_seed, &zero);

	if (!seed)
		return NULL;
	*hash = pending_hash(k, seed);
	idx = pending_bucket_of(*hash, n_buckets);
	return bpf_map_lookup_elem(&pending_buckets, &idx);
}

/* The way of b that holds k (of hash hash), or -1; *word: its word as read, once. */
static __always_inline int pending_way(struct redir_pending_bucket *b,
				       const struct redir_flow_key *k, __u64 hash, __u64 *word)
{
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < BPFREDIR_PENDING_WAYS; i++) {
		__u64 w = *(volatile __u64 *)&b->word[i];

		if (pending_word_matches(w, hash) &&
		    cache_key_eq(&b->key[i], k, PENDING_KEY_WORDS)) {
			*word = w;
			return i;
		}
	}
	return -1;
}

/* k's entry, in *v. Whether there is one. */
static __always_inline bool pending_get(const struct redir_flow_key *k, struct redir_flow *v)
{
	struct redir_pending_bucket *b;
	__u64 hash, word;

	b = pending_bucket(k, &hash);
	if (!b || pending_way(b, k, hash, &word) < 0)
		return false;
	*v = pending_flow(word);
	return true;
}

/* k's entry := port, flags: in its way if it has one (unwritten if unchanged), else in an
 * empty way, else in the bucket's oldest. */
static __always_inline void pending_put(const struct redir_flow_key *k, __be16 port, __u16 flags)
{
	struct redir_pending_bucket *b;
	__u64 hash, word, old;
	int i;

	b = pending_bucket(k, &hash);
	if (!b)
		return;
	word = pending_word(hash, port, flags);
	i = pending_way(b, k, hash, &old);
	if (i >= 0) {
		if (old != word)
			*(volatile __u64 *)&b->word[i & (BPFREDIR_PENDING_WAYS - 1)] = word;
		return;
	}
#pragma clang loop unroll(full)
	for (i = 0; i < BPFREDIR_PENDING_WAYS; i++)
		if (!*(volatile __u64 *)&b->word[i])
			break;
	if (i == BPFREDIR_PENDING_WAYS) {
		i = b->next % BPFREDIR_PENDING_WAYS;
		b->next = i + 1;
	}
	i &= BPFREDIR_PENDING_WAYS - 1;
	*(volatile __u64 *)&b->word[i] = 0;
	b->key[i] = *k;
	*(volatile __u64 *)&b->word[i] = word;
}

/* Whether there was one. */
static __always_inline bool pending_delete(const struct redir_flow_key *k)
{
	struct redir_pending_bucket *b;
	__u64 hash, word;
	int i;

	b = pending_bucket(k, &hash);
	if (!b)
		return false;
	i = pending_way(b, k, hash, &word);
	if (i < 0)
		return false;
	*(volatile __u64 *)&b->word[i & (BPFREDIR_PENDING_WAYS - 1)] = 0;
	return true;
}

#endif /* BPFREDIR_PENDING_H */
