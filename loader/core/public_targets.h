/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * public_targets (see bpfredir.h): the targets each public port has had, under which the
 * datapath finds a client's connection, and the IN entries in flows that keep a connection
 * whose target its port no longer remembers. Plain map fds, so the CLI and the tests run the
 * same code. Every function returns 0 or -errno and prints nothing.
 */
#ifndef BPFREDIR_CORE_PUBLIC_TARGETS_H
#define BPFREDIR_CORE_PUBLIC_TARGETS_H

#include <linux/types.h>
#include "bpfredir.h"

struct public_targets_maps {
	int targets;   /* public_targets */
	int flows;     /* read; written where a connection needs an IN entry */
	int flows_gen; /* moved on after any change to either (redir_flow_cached) */
};

/* A rule port/proto -> target (ports in network order) is in force, or about to be: its
 * target becomes the port's first, the one before second. A target that drops out first gives
 * every connection in flows through the port to it an IN entry, and marks the port. */
int public_targets_note(const struct public_targets_maps *maps, __be16 port, __u8 proto,
			__be16 target);
/* Mark every port some IN entry in flows names (a build before public_targets kept one for
 * every connection), so the datapath looks for them. */
int public_targets_mark_in_entries(const struct public_targets_maps *maps);

#endif /* BPFREDIR_CORE_PUBLIC_TARGETS_H */
