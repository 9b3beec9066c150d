// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Opening a loaded instance's maps by their pins, and the live rule set through policy's slot. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "hostaddr.h"
#include "log.h"
#include "maps.h"
#include "objects.h"
#include "pins.h"
#include "ruleset.h"
#include "steer.h"

/* Loaded by a build from before port_slots: its per-port counters are the port_stats hash.
 * Only a read view takes them from there (maps->legacy_port_stats); a verb that changes the
 * instance needs this build's maps, which load or apply makes. */
static bool legacy_counters(struct pinned_maps *maps, const char *name)
{
	char path[PATH_MAX];

	if (strcmp(name, "port_slots") && strcmp(name, "port_counters"))
		return false;
	if (maps->legacy_port_stats < 0 && !pin_path(path, sizeof(path), "maps", "port_stats"))
		maps->legacy_port_stats = bpf_obj_get(path);
	return maps->legacy_port_stats >= 0;
}

/* The live rule set: the map in policy's one slot. An fd, or -errno. */
static int live_set_of(int policy_fd)
{
	__u32 slot = 0, set_id;
	int fd;

	if (bpf_map_lookup_elem(policy_fd, &slot, &set_id))
		return -errno;
	fd = bpf_map_get_fd_by_id(set_id);
	return fd < 0 ? -errno : fd;
}

int live_set_open(void)
{
	char path[PATH_MAX];
	int policy_fd, fd;

	if (pin_path(path, sizeof(path), "maps", "policy"))
		return -EBADF;
	policy_fd = bpf_obj_get(path);
	if (policy_fd < 0)
		return -errno;
	fd = live_set_of(policy_fd);
	close(policy_fd);
	return fd;
}

static int open_maps(struct pinned_maps *maps, bool read_only)
{
	struct {
		const char *name;
		int *fd;
		bool writers_only; /* a build before it runs without it: a read view does too */
	} want[] = {
		{ "policy", &maps->policy, false },
		{ "flows", &maps->flows, false },
		{ "local_addrs", &maps->local_addrs, false },
		{ "addr_holders", &maps->addr_holders, false },
		{ "stats", &maps->stats, false },
		{ "port_slots", &maps->port_counters.slots, false },
		{ "port_counters", &maps->port_counters.counters, false },
		{ "port_interest", &maps->port_interest, false },
		{ "public_targets", &maps->public_targets, true },
		{ "flows_gen", &maps->flows_gen, true },
		{ "addrs_gen", &maps->addrs_gen, true },
		{ "iface_slots", &maps->iface_slots, true },
		{ "port_hidden", &maps->port_hidden, true },
		{ "pending_buckets", &maps->pending_buckets, true },
		{ "pending_seed", &maps->pending_seed, true },
	};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		*want[i].fd = -1;
	maps->rules = maps->legacy_port_stats = -1;
	maps->steer = STEER_MAPS_NONE;
	if (!is_loaded())
		return pr_warn_err(-ENOENT, "not loaded at %s (run 'bpfredir load' first)",
				   pin_dir);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (pin_path(path, sizeof(path), "maps", want[i].name))
			return pr_warn_err(-EBADF, "pin dir not open: %s", pin_dir);
		*want[i].fd = bpf_obj_get(path);
		if (*want[i].fd < 0 && errno == ENOENT && read_only &&
		    (want[i].writers_only || legacy_counters(maps, want[i].name)))
			continue;
		if (*want[i].fd < 0) {
			int err = errno;

			close_pinned_maps(maps);
			/* A map this build added: the instance runs an older build's programs. */
			if (err == ENOENT && !objects_this_build_loaded())
				return pr_warn_err(
					-err,
					"%s was loaded by another build, which has no %s: "
					"'bpfredir load' or 'apply' upgrades it in place",
					pin_dir, pin_display("maps", want[i].name));
			return pr_warn_err(-err, "cannot open pinned map %s: %s",
					   pin_display("maps", want[i].name), strerror(err));
		}
	}
	if (steer_running()) {
		int err = steer_maps_open(&maps->steer);

		if (err) {
			close_pinned_maps(maps);
			return pr_warn_err(err, "cannot open the steering maps in %s: %s",
					   pin_display("maps", NULL), strerror(-err));
		}
	}
	maps->rules = live_set_of(maps->policy);
	if (maps->rules < 0) {
		int err = maps->rules;

		close_pinned_maps(maps);
		return pr_warn_err(err, "no rule set in %s/maps/policy: %s", pin_dir,
				   strerror(-err));
	}
	return 0;
}

int open_pinned_maps(struct pinned_maps *maps)
{
	return open_maps(maps, false);
}

int open_pinned_maps_read(struct pinned_maps *maps)
{
	return open_maps(maps, true);
}

void close_pinned_maps(struct pinned_maps *maps)
{
	int *fds[] = { &maps->policy,
		       &maps->rules,
		       &maps->flows,
		       &maps->pending_buckets,
		       &maps->pending_seed,
		       &maps->local_addrs,
		       &maps->addr_holders,
		       &maps->stats,
		       &maps->port_counters.slots,
		       &maps->port_counters.counters,
		       &maps->port_interest,
		       &maps->public_targets,
		       &maps->flows_gen,
		       &maps->addrs_gen,
		       &maps->iface_slots,
		       &maps->port_hidden,
		       &maps->legacy_port_stats };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	steer_maps_close(&maps->steer);
}

struct derive_maps pinned_derive_maps(const struct pinned_maps *maps)
{
	return (struct derive_maps){ .counters = maps->port_counters,
				     .port_interest = maps->port_interest,
				     .public_targets = maps->public_targets,
				     .flows = maps->flows,
				     .flows_gen = maps->flows_gen,
				     .iface_slots = maps->iface_slots,
				     .port_hidden = maps->port_hidden,
				     .steer_socket = maps->steer.wildcard >= 0,
				     .steer = maps->steer };
}

int sync_derived(const struct pinned_maps *maps)
{
	struct derive_maps derive = pinned_derive_maps(maps);
	int err = ruleset_derive(maps->rules, &derive);

	return err ? err : sync_local_addrs(maps->local_addrs, maps->addr_holders, maps->addrs_gen);
}

int sync_live_derived(const struct pinned_maps *maps)
{
	struct derive_maps derive = pinned_derive_maps(maps);
	int set_fd = live_set_of(maps->policy), err;

	if (set_fd < 0)
		return set_fd;
	err = ruleset_derive(set_fd, &derive);
	close(set_fd);
	return err;
}
