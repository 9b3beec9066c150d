/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket steering (bpf/steer.bpf.c, load --steering socket): TCP rules applied at the
 * kernel's socket lookup instead of by rewriting packets. An instance steers this way when
 * links/steer_sk_lookup is pinned; maps/steer_listeners holds the targets' listeners, which
 * steer_register() finds among the running processes and the sock_ops program registers as
 * they start listening in an attached cgroup.
 */
#ifndef BPFREDIR_CORE_STEER_H
#define BPFREDIR_CORE_STEER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "bpfredir.h"
#include "pins.h"

#define STEER_LISTEN_PROG_NAME "bpfredir_listen"
/* Its cgroup links' pins: links/cgroup_<id>_listen. */
#define STEER_LISTEN_SUFFIX "listen"

/* Does the loaded instance steer TCP at socket lookup? */
bool steer_running(void);
/* NULL when this kernel can steer, else what it lacks, for a message. */
const char *steer_unsupported(void);
/* Load the steering programs on the instance's maps (policy through policy_fd), attach the
 * sk_lookup one to this network namespace through txn and pin the sock_ops one for cgroup
 * attachments. 0 or -errno. */
int steer_start(struct pin_txn *txn, int policy_fd);
/* A loaded instance that steers, by another build: the steering maps this build has and it
 * had not made and pinned, so the maps can be brought in line before the programs run.
 * 0 or -errno. */
int steer_pin_maps(void);
/* A loaded instance that steers: its sk_lookup link and its cgroups' sock_ops links pointed
 * at this build's programs, the sock_ops program pinned again. How many links changed, or
 * -errno. */
int steer_upgrade(void);
/* The maps the steering program reads, besides the rule set (bpfredir.h says what each
 * holds); every fd -1 for an instance that rewrites packets. */
struct steer_maps {
	int wildcard;  /* steer_wildcard */
	int listeners; /* steer_listeners */
	int bound;     /* steer_bound */
	int fast;      /* steer_fast */
};

#define STEER_MAPS_NONE ((struct steer_maps){ -1, -1, -1, -1 })

/* The pinned ones: 0, or -errno with every fd -1. */
int steer_maps_open(struct steer_maps *maps);
void steer_maps_close(struct steer_maps *maps);
/* Register every listening TCP socket of this network namespace on one of ports (network
 * order) that a process holds, under the address it is bound to. How many were registered,
 * or -errno (a process that exits meanwhile is skipped). */
int steer_register(const struct steer_maps *maps, const __be16 *ports, size_t n_ports);
/* steer_fast exactly targets (by public port, host order; 0 for none). 0 or -errno. */
int steer_fast_set(const struct steer_maps *maps, const __be16 targets[BPFREDIR_PORTS]);

#endif /* BPFREDIR_CORE_STEER_H */
