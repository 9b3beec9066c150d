// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Keeping a derived map at exactly the keys it should hold. */
#include <errno.h>
#include <string.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include "bpfredir.h"
#include "mapsync.h"

/* Remove the keys of map fd that are not keys[0..n) and that owned() accepts (all, without
 * it). */
static int map_remove_stale(int fd, const void *keys, size_t key_size, size_t n,
			    bool (*owned)(const void *key))
{
	static __u8 stale[BPFREDIR_MAX_ADDR_HOLDERS * sizeof(struct redir_addr_holder)];
	__u8 key[sizeof(struct redir_addr_holder)], prev[sizeof(key)];
	size_t n_stale = 0, i;
	bool first = true;

	if (key_size > sizeof(key))
		return -EINVAL;
	while (!bpf_map_get_next_key(fd, first ? NULL : prev, key)) {
		first = false;
		memcpy(prev, key, key_size);
		for (i = 0; i < n; i++)
			if (!memcmp((const __u8 *)keys + i * key_size, key, key_size))
				break;
		if (i == n && (!owned || owned(key)) && (n_stale + 1) * key_size <= sizeof(stale))
			memcpy(&stale[n_stale++ * key_size], key, key_size);
	}
	for (i = 0; i < n_stale; i++)
		if (bpf_map_delete_elem(fd, &stale[i * key_size]) && errno != ENOENT)
			return -errno;
	return 0;
}

/* Make a derived map hold exactly n keys, with values[i * value_stride] for keys[i] (only
 * for new keys when keep_values, so counters survive). Only keys that owned() accepts (all,
 * without it) may be removed. New entries go in before stale ones come out, so a key that
 * stays never blinks out; only a map too full to take the new ones first loses its stale
 * ones first. */
int map_set_exactly(int fd, const void *keys, size_t key_size, const void *values,
		    size_t value_stride, size_t n, bool keep_values, bool (*owned)(const void *key))
{
	__u64 flags = keep_values ? BPF_NOEXIST : BPF_ANY;
	bool pruned = false;
	size_t i;
	int err;

	for (i = 0; i < n; i++) {
		const void *key = (const __u8 *)keys + i * key_size;
		const void *value = (const __u8 *)values + i * value_stride;

		if (!bpf_map_update_elem(fd, key, value, flags) || (keep_values && errno == EEXIST))
			continue;
		if (errno != E2BIG || pruned)
			return -errno;
		err = map_remove_stale(fd, keys, key_size, n, owned);
		if (err)
			return err;
		pruned = true;
		if (bpf_map_update_elem(fd, key, value, flags) && !(keep_values && errno == EEXIST))
			return -errno;
	}
	return map_remove_stale(fd, keys, key_size, n, owned);
}
