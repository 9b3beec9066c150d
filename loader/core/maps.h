/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A loaded instance's maps, opened from the pin dir: what every verb after load works on. */
#ifndef BPFREDIR_CORE_MAPS_H
#define BPFREDIR_CORE_MAPS_H

#include "port_counters.h"
#include "ruleset.h"

struct pinned_maps {
	int policy; /* the outer map */
	int rules;  /* the live rule set in its slot: public and hidden entries */
	int flows;
	int local_addrs;
	int addr_holders;
	int stats;
	struct port_counter_maps port_counters;
	int pending_buckets, pending_seed;
	int port_interest;
	int public_targets;
	int flows_gen;
	int addrs_gen;
	int iface_slots;
	int port_hidden;
	struct steer_maps steer; /* every fd -1 unless the instance steers at socket lookup */
	/* A build's before port_slots, whose counters a read view shows; else -1. */
	int legacy_port_stats;
};

/* 0, or -errno after a pr_warn (-ENOENT: not loaded); every fd -1 then. */
/* The live rule set of the open pin dir, alone: an fd, or -errno. */
int live_set_open(void);
int open_pinned_maps(struct pinned_maps *maps);
/* The same for a view that only reads: an instance of a build from before port_slots is
 * shown with its port_stats counters (port_counters' fds -1). */
int open_pinned_maps_read(struct pinned_maps *maps);
void close_pinned_maps(struct pinned_maps *maps);
/* The maps of an instance that ruleset_derive() keeps in line. */
struct derive_maps pinned_derive_maps(const struct pinned_maps *maps);
/* Bring what is derived from the rules and the host (the set's hidden entries, per-port
 * counters, local addresses) in line with them. */
int sync_derived(const struct pinned_maps *maps);
/* What is derived from the rules, from the set in policy's slot now (maps->rules may be the
 * one apply just replaced). 0 or -errno. */
int sync_live_derived(const struct pinned_maps *maps);

#endif /* BPFREDIR_CORE_MAPS_H */
