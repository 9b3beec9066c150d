/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Derived maps (a set's hidden entries, port_stats, local_addrs) are recomputed, not counted up
 * and down, so they cannot drift whatever failed before. */
#ifndef BPFREDIR_CORE_MAPSYNC_H
#define BPFREDIR_CORE_MAPSYNC_H

#include <stdbool.h>
#include <stddef.h>

/* Make map fd hold exactly n keys, with values[i * value_stride] for keys[i] (only for new keys
 * when keep_values, so counters survive). Only keys that owned() accepts (all, without it) may
 * be removed. 0 or -errno. */
int map_set_exactly(int fd, const void *keys, size_t key_size, const void *values,
		    size_t value_stride, size_t n, bool keep_values,
		    bool (*owned)(const void *key));

#endif /* BPFREDIR_CORE_MAPSYNC_H */
