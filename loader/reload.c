// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* load and apply over a loaded pin dir: this build's programs take over in place with every
 * map kept, and what the request adds is attached. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "core/pending.h"
#include "core/public_targets.h"
#include "core/steer.h"
#include "load.h"
#include "iface.h"

/* The size the loaded instance's flow table was made with: a reload keeps every map. */
static int loaded_flows(__u32 *flows)
{
	int err = pinned_map_entries("flows", flows);

	if (err == -EBADF)
		return fail("pin dir not open: %s", pin_dir);
	if (err)
		return fail("cannot read the loaded flow table %s: %s",
			    pin_display("maps", "flows"), strerror(-err));
	return 0;
}

/* What the new programs read first, in line with the rules before they run. from_another:
 * another build ran the programs, and IN entries it left in flows (every build before
 * public_targets kept one for each connection) are found only on ports marked for them, so
 * those ports are marked too. */
static int sync_pinned_maps(bool from_another)
{
	struct public_targets_maps targets;
	struct pinned_maps maps;
	int err;

	if (open_pinned_maps(&maps))
		return -1;
	err = sync_derived(&maps);
	if (err) {
		close_pinned_maps(&maps);
		return fail_err(-1, "cannot bring the maps in line with the rules: %s",
				local_addrs_error(err));
	}
	targets = (struct public_targets_maps){ maps.public_targets, maps.flows, maps.flows_gen };
	err = from_another ? public_targets_mark_in_entries(&targets) : 0;
	close_pinned_maps(&maps);
	if (err)
		return fail_err(-1, "cannot mark the ports of the loaded connections in %s: %s",
				pin_display("maps", "public_targets"), strerror(-err));
	return 0;
}

/* Socket steering's maps that this build has and the loaded one had not, made before the
 * maps are brought in line with the rules. */
static int steer_maps_pinned(void)
{
	int err = steer_pin_maps();

	if (err)
		return fail_err(-1, "cannot make this build's steering maps in %s: %s",
				pin_display("maps", NULL), strerror(-err));
	return 0;
}

/* The map `name` of an older build, which this build's maps replace: what it holds is
 * carried over by take(maps, its fd), and the map goes. What it holds is a report or what an
 * eviction could lose: if it cannot be carried over, say so (`what` is not carried over) and
 * go on. */
static void take_legacy_map(const char *name, int (*take)(struct pinned_maps *maps, int fd),
			    const char *what)
{
	struct pinned_maps maps;
	char path[PATH_MAX];
	int fd, err;

	if (!pin_exists("maps", name) || pin_path(path, sizeof(path), "maps", name))
		return;
	fd = bpf_obj_get(path);
	err = fd < 0 ? -errno : 0;
	if (!err && open_pinned_maps(&maps))
		err = -EIO;
	else if (!err) {
		err = take(&maps, fd);
		close_pinned_maps(&maps);
	}
	if (fd >= 0)
		close(fd);
	if (err)
		fail("%s are not carried over: %s", what, strerror(-err));
	err = pin_unlink("maps", name);
	if (err)
		fail("cannot remove %s: %s", pin_display("maps", name), strerror(-err));
}

/* A build from before port_slots counted per port in port_stats, which only its programs
 * counted in: its counts are added to the new slots. */
static int take_port_stats(struct pinned_maps *maps, int fd)
{
	return port_counters_take_legacy(&maps->port_counters, fd);
}

/* A build from before pending_buckets kept new and closing connections in a hash named
 * pending: they go into this build's table, after the switch (so that none its programs
 * wrote is missed). One not carried over is one an eviction could lose: a handshake the client
 * then retries, a close's last packets. */
static int take_pending(struct pinned_maps *maps, int fd)
{
	struct pending_table table;
	int err = pending_table_open(&table, maps->pending_buckets, maps->pending_seed);

	return err ? err : pending_table_take_legacy(&table, fd);
}

/* On a loaded pin dir: this build's programs take over in place (link updates, legacy
 * filters replaced) with every map kept, so rules and connections survive; the same build
 * changes nothing. What the new programs read first is brought in line with the rules
 * before they run. Returns how many attachments now run this build's programs, or -1 after
 * a message. load and apply both come through here, so a restart or reload of the service
 * with a new package never unloads. */
int upgrade_programs(void)
{
	struct load_request req = {};
	struct load_ctx ctx = { .req = &req, .reload = true };
	int updated, guard, xdp_fd, i, err;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	/* The same build: only a guard that went (or is not the kind wanted) is attached. */
	if (objects_this_build_loaded()) {
		if (sync_pinned_maps(false))
			return -1;
		return guard_intact() ? 0 : guard_upgrade_or_fail();
	}
	/* Loading pins the maps this build has and the loaded one had not, so the maps are
	 * brought in line after it, before the new programs run. */
	if (loaded_flows(&req.flows) || load_objects(&ctx) || steer_maps_pinned() ||
	    sync_pinned_maps(true)) {
		load_ctx_free(&ctx);
		return -1;
	}
	updated = objects_update_links(&ctx.obj);
	if (updated < 0) {
		load_ctx_free(&ctx);
		return fail_err(-1, "cannot switch the attachments to this build: %s",
				strerror(-updated));
	}
	/* Netfilter links cannot be updated in place: core/guard.c swaps the guard's links. */
	guard = guard_upgrade_or_fail();
	if (guard < 0) {
		load_ctx_free(&ctx);
		return -1;
	}
	updated += guard;
	/* The pinned programs are what attach and apply use next: make them this build's. */
	err = updated > 0 ? objects_repin_progs(&ctx.obj) : 0;
	/* Socket steering's link is updated in place, its sock_ops program pinned again. */
	if (!err) {
		int steer = steer_upgrade();

		err = steer < 0 ? steer : 0;
		updated += steer > 0 ? steer : 0;
	}
	/* Loaded by a build from before XDP mode, with the same TC code: pin the XDP program. */
	xdp_fd = err ? -1 : open_pinned_prog(XDP_PROG_NAME);
	if (!err && xdp_fd == -ENOENT)
		err = objects_pin_xdp_prog(&ctx.obj, &xdp_fd);
	else if (xdp_fd >= 0)
		close(xdp_fd);
	/* Loaded by a build from before L3 devices, with the same TC code: pin their programs. */
	if (!err) {
		int l3_fd = open_pinned_prog(L3_IN_PROG_NAME);

		if (l3_fd == -ENOENT)
			err = objects_pin_l3_progs(&ctx.obj);
		close_fds(&l3_fd, 1);
	}
	load_ctx_free(&ctx);
	if (!err) {
		take_legacy_map("port_stats", take_port_stats,
				"the older build's per-port counters");
		take_legacy_map("pending", take_pending,
				"the older build's new and closing connections");
	}
	if (!err && objects_record_build())
		return fail_err(-1, "cannot record this build in %s", pin_display("maps", "build"));
	return err ? -1 : updated;
}

/* load on a loaded pin dir: the programs upgraded (or kept, for the same build), and the
 * interfaces and cgroups asked for and not yet attached are attached. */
int reload_locked(const struct load_request *req)
{
	struct load_ctx ctx = { .req = req };
	int tc_fds[2] = { -1, -1 }, sock_fds[N_SOCK_HOOKS], xdp_fd = -1, ret, i, err = 0;
	int updated = 0, attached = 0;
	struct pinned_maps maps;
	bool maps_open = false;
	__u32 flows;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	for (i = 0; i < N_SOCK_HOOKS; i++)
		sock_fds[i] = -1;
	ret = loaded_flows(&flows);
	if (!ret && req->flows != BPFREDIR_DEFAULT_FLOWS && flows_entries(req->flows) != flows)
		ret = fail("loaded with --flows %u; 'bpfredir unload' first to change it", flows);
	if (!ret && req->steer_socket != steer_running())
		ret = fail("loaded with --steering %s; 'bpfredir unload' first to change it",
			   steer_running() ? "socket" : "packet");
	if (!ret)
		ret = check_targets(&ctx);
	if (!ret) {
		updated = upgrade_programs();
		ret = updated < 0 ? EXIT_FAIL : 0;
	}
	if (!ret && open_pinned_maps(&maps))
		ret = EXIT_FAIL;
	else if (!ret)
		maps_open = true;
	if (!ret)
		xdp_fd = open_pinned_prog(XDP_PROG_NAME);
	if (!ret && (open_pinned_tc_progs(tc_fds) || open_pinned_progs(sock_fds) || xdp_fd < 0))
		ret = fail("cannot open the pinned programs: %s", strerror(errno));
	/* Attach, then act (an interrupted apply may have left one attached but inert). */
	for (i = 0; !ret && i < req->n_ifaces; i++) {
		bool intact = iface_attached(ctx.ifindexes[i]);

		if (intact && ruleset_enabled(maps.rules, POLICY_IFACE, ctx.ifindexes[i]))
			continue;
		if (!intact)
			ret = iface_attach(NULL, ctx.ifindexes[i], req->ifnames[i], tc_fds, xdp_fd,
					   req->if_modes[i], req->attach)
				      ? EXIT_FAIL
				      : 0;
		err = ret ? 0 : ruleset_enable(maps.rules, POLICY_IFACE, ctx.ifindexes[i], true);
		if (err)
			ret = fail("cannot enable interface %s: %s", req->ifnames[i],
				   strerror(-err));
		attached++;
	}
	for (i = 0; !ret && i < req->n_cgroups; i++) {
		bool intact = cgroup_attached(ctx.cgroup_ids[i]);

		if (intact && ruleset_enabled(maps.rules, POLICY_CGROUP, ctx.cgroup_ids[i]))
			continue;
		if (!intact)
			err = attach_cgroup(NULL, ctx.cgroup_fds[i], ctx.cgroup_ids[i], sock_fds);
		if (!err)
			err = ruleset_enable(maps.rules, POLICY_CGROUP, ctx.cgroup_ids[i], true);
		if (err)
			ret = fail("cannot attach to cgroup %s: %s", ctx.cgroup_paths[i],
				   strerror(-err));
		attached++;
	}
	close_fds(tc_fds, 2);
	close_fds(&xdp_fd, 1);
	close_fds(sock_fds, N_SOCK_HOOKS);
	if (maps_open)
		close_pinned_maps(&maps);
	if (!ret)
		printf("already loaded at %s: %s%s\n", pin_dir,
		       updated > 0 ? "programs replaced by this build, maps kept" : "same build",
		       attached ? "; new attachments made" : "");
	load_ctx_free(&ctx);
	return ret ? EXIT_FAIL : EXIT_OK;
}
