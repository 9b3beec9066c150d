// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <bpf/bpf.h>
#include "pending.h"

int pending_seed_init(int seed_fd)
{
	static const struct redir_pending_seed none;
	struct redir_pending_seed seed;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(seed_fd, &zero, &seed))
		return -errno;
	if (memcmp(&seed, &none, sizeof(seed)))
		return 0;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		return -EIO;
	return bpf_map_update_elem(seed_fd, &zero, &seed, BPF_ANY) ? -errno : 0;
}

int pending_table_open(struct pending_table *t, int buckets_fd, int seed_fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), zero = 0;

	if (bpf_map_get_info_by_fd(buckets_fd, &info, &len) ||
	    bpf_map_lookup_elem(seed_fd, &zero, &t->seed))
		return -errno;
	if (info.value_size != sizeof(struct redir_pending_bucket))
		return -EINVAL;
	t->buckets_fd = buckets_fd;
	t->n_buckets = info.max_entries;
	return 0;
}

/* k's bucket (index *idx) into *b: the way that holds k, -ENOENT if none, or -errno. */
static int bucket_read(const struct pending_table *t, const struct redir_flow_key *k, __u64 *hash,
		       __u32 *idx, struct redir_pending_bucket *b)
{
	int i;

	*hash = pending_hash(k, &t->seed);
	*idx = pending_bucket_of(*hash, t->n_buckets);
	if (bpf_map_lookup_elem(t->buckets_fd, idx, b))
		return -errno;
	for (i = 0; i < BPFREDIR_PENDING_WAYS; i++)
		if (pending_word_matches(b->word[i], *hash) && !memcmp(&b->key[i], k, sizeof(*k)))
			return i;
	return -ENOENT;
}

int pending_table_get(const struct pending_table *t, const struct redir_flow_key *k,
		      struct redir_flow *v)
{
	struct redir_pending_bucket b;
	__u64 hash;
	__u32 idx;
	int i = bucket_read(t, k, &hash, &idx, &b);

	if (i < 0)
		return i;
	*v = pending_flow(b.word[i]);
	return 0;
}

int pending_table_put(const struct pending_table *t, const struct redir_flow_key *k,
		      const struct redir_flow *v)
{
	struct redir_pending_bucket b;
	__u64 hash;
	__u32 idx;
	int i = bucket_read(t, k, &hash, &idx, &b);

	if (i < 0 && i != -ENOENT)
		return i;
	if (i < 0) {
		for (i = 0; i < BPFREDIR_PENDING_WAYS && b.word[i]; i++)
			;
		if (i == BPFREDIR_PENDING_WAYS) {
			i = b.next % BPFREDIR_PENDING_WAYS;
			b.next = i + 1;
		}
	}
	b.key[i] = *k;
	b.word[i] = pending_word(hash, v->port, v->flags);
	return bpf_map_update_elem(t->buckets_fd, &idx, &b, BPF_ANY) ? -errno : 0;
}

/* Buckets read per system call: the tests walk tables of tens of thousands. */
#define WALK_BATCH 512

int pending_table_walk(const struct pending_table *t,
		       int (*fn)(const struct redir_flow_key *k, const struct redir_flow *v,
				 void *ctx),
		       void *ctx)
{
	static struct redir_pending_bucket buckets[WALK_BATCH];
	static __u32 keys[WALK_BATCH];
	__u32 start = 0, next, count, i;
	int way, err = 0;

	while (!err && start < t->n_buckets) {
		count = WALK_BATCH;
		if (bpf_map_lookup_batch(t->buckets_fd, start ? &start : NULL, &next, keys, buckets,
					 &count, NULL) &&
		    errno != ENOENT)
			return -errno;
		for (i = 0; !err && i < count; i++) {
			for (way = 0; !err && way < BPFREDIR_PENDING_WAYS; way++) {
				struct redir_flow v = pending_flow(buckets[i].word[way]);

				if (buckets[i].word[way])
					err = fn(&buckets[i].key[way], &v, ctx);
			}
		}
		if (count < WALK_BATCH)
			break;
		start = next;
	}
	return err;
}

static int count_one(const struct redir_flow_key *k, const struct redir_flow *v, void *ctx)
{
	(void)k;
	(void)v;
	(*(int *)ctx)++;
	return 0;
}

int pending_table_count(const struct pending_table *t)
{
	int n = 0, err = pending_table_walk(t, count_one, &n);

	return err ? err : n;
}

int pending_table_clear(const struct pending_table *t)
{
	static const struct redir_pending_bucket empty;
	__u32 idx;

	for (idx = 0; idx < t->n_buckets; idx++)
		if (bpf_map_update_elem(t->buckets_fd, &idx, &empty, BPF_ANY))
			return -errno;
	return 0;
}

int pending_table_take_legacy(const struct pending_table *t, int legacy_fd)
{
	struct redir_flow_key key, next;
	struct redir_flow v;
	bool first = true;
	int err;

	while (!bpf_map_get_next_key(legacy_fd, first ? NULL : &key, &next)) {
		key = next;
		first = false;
		/* Gone meanwhile: its connection ended or was evicted. */
		if (bpf_map_lookup_elem(legacy_fd, &key, &v))
			continue;
		err = pending_table_put(t, &key, &v);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}
