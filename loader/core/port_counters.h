/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-port counters (port_slots and port_counters, see bpfredir.h): which ports have a
 * slot, and what their slots hold. Plain map fds, so the CLI and the tests run the same code.
 * Every function returns 0 or -errno and prints nothing.
 */
#ifndef BPFREDIR_CORE_PORT_COUNTERS_H
#define BPFREDIR_CORE_PORT_COUNTERS_H

#include <stddef.h>
#include <linux/types.h>
#include "bpfredir.h"

struct port_counter_maps {
	int slots;    /* port_slots */
	int counters; /* port_counters */
};

/* Give exactly ports[0..n) a slot: a port that has one keeps it and its counts, a port that
 * gets one starts from zero, and a port that no longer needs one loses it (-E2BIG: more ports
 * than slots; a derive never asks for more). */
int port_counters_set(const struct port_counter_maps *maps, const struct redir_port_key *ports,
		      size_t n);
/* The counters of port/proto (port in network order) summed over CPUs; -ENOENT: no slot. */
int port_counters_read(const struct port_counter_maps *maps, __be16 port, __u8 proto,
		       __u64 sum[PORT_STAT__MAX]);
/* How many ports have a slot, or -errno. */
int port_counters_assigned(const struct port_counter_maps *maps);
/* Add the counts of legacy_fd, the port_stats hash of a build before port_slots, to the
 * ports that have a slot here; ports without one are dropped, as their entries would be. */
int port_counters_take_legacy(const struct port_counter_maps *maps, int legacy_fd);

#endif /* BPFREDIR_CORE_PORT_COUNTERS_H */
