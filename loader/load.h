/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* load's steps, shared by a fresh load (load.c) and a load over a loaded pin dir (reload.c). */
#ifndef BPFREDIR_LOAD_H
#define BPFREDIR_LOAD_H

#include <limits.h>
#include "loader.h"

struct load_ctx {
	const struct load_request *req;
	bool reload; /* into a loaded pin dir: every map, policy too, is reused */
	int ifindexes[MAX_IFACES];
	int cgroup_fds[MAX_CGROUPS];
	__u64 cgroup_ids[MAX_CGROUPS];
	char cgroup_paths[MAX_CGROUPS][PATH_MAX];
	struct objects obj;
	struct pin_txn *txn; /* link pins, made at commit (NULL on reload: at once) */
};

/* Interfaces and cgroups of the request found (and checked), or the exit code. */
int check_targets(struct load_ctx *ctx);
/* The skeletons loaded, or the exit code after a message. */
int load_objects(struct load_ctx *ctx);
void load_ctx_free(struct load_ctx *ctx);
/* The pin dir locked and loaded: the programs upgraded, and what the request adds attached. */
int reload_locked(const struct load_request *req);

#endif /* BPFREDIR_LOAD_H */
