/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pending from user space (pending_buckets and pending_seed: see redir_pending_bucket), the
 * same table bpf/lib/pending.h keeps: for the seed at load, the entries of an older build's
 * pending hash carried over on upgrade, and the tests' reading of what the datapath left.
 * Each returns 0 or -errno and prints nothing.
 */
#ifndef BPFREDIR_CORE_PENDING_H
#define BPFREDIR_CORE_PENDING_H

#include "bpfredir.h"

/* A seed from getrandom for a table whose seed is still 0 (it was just made); one that
 * has one keeps it, or the entries in it could no longer be found. */
int pending_seed_init(int seed_fd);

struct pending_table {
	int buckets_fd;
	__u32 n_buckets;
	struct redir_pending_seed seed;
};

int pending_table_open(struct pending_table *t, int buckets_fd, int seed_fd);
/* k's entry into *v; -ENOENT: none. */
int pending_table_get(const struct pending_table *t, const struct redir_flow_key *k,
		      struct redir_flow *v);
/* As the datapath writes one. The datapath may write the same bucket meanwhile: one of the
 * two writes is then lost, as an eviction would lose it. */
int pending_table_put(const struct pending_table *t, const struct redir_flow_key *k,
		      const struct redir_flow *v);

/* Calls fn on every entry, bucket by bucket, until it returns non-zero (which is returned). */
int pending_table_walk(const struct pending_table *t,
		       int (*fn)(const struct redir_flow_key *k, const struct redir_flow *v,
				 void *ctx),
		       void *ctx);
/* The entries in use, or -errno. */
int pending_table_count(const struct pending_table *t);
/* Every entry gone, as an eviction of all of them would. */
int pending_table_clear(const struct pending_table *t);
/* The entries of an older build's pending (an LRU hash of redir_flow_key -> redir_flow)
 * written into t. */
int pending_table_take_legacy(const struct pending_table *t, int legacy_fd);

#endif /* BPFREDIR_CORE_PENDING_H */
