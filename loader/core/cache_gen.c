// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <bpf/bpf.h>
#include "bpfredir.h"
#include "cache_gen.h"

/* The datapath moves a generation on by one, atomically; this read-modify-write may race it
 * and lose its increments, so it steps further than any run of them reaches meanwhile: the
 * generation still only rises, and none comes back. */
int cache_gen_bump(int gen_fd)
{
	__u32 zero = 0;
	__u64 gen;

	if (bpf_map_lookup_elem(gen_fd, &zero, &gen))
		return -errno;
	gen += BPFREDIR_GEN_LOADER_STEP;
	return bpf_map_update_elem(gen_fd, &zero, &gen, BPF_ANY) ? -errno : 0;
}
