/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The generations that keep the datapath's per-CPU caches honest (flows_gen for flow_cache,
 * addrs_gen for addr_cache: see bpfredir.h). Returns 0 or -errno and prints nothing.
 */
#ifndef BPFREDIR_CORE_CACHE_GEN_H
#define BPFREDIR_CORE_CACHE_GEN_H

/* After a change to the map a cache answers for: every answer cached before is outdated. */
int cache_gen_bump(int gen_fd);

#endif /* BPFREDIR_CORE_CACHE_GEN_H */
