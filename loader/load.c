// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A fresh load: everything made, attached and pinned, or nothing. Links are pinned last with
 * the policy map, whose pin marks the instance loaded, so a load killed midway leaves what the
 * next command cleans up. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/utsname.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "load.h"
#include "iface.h"
#include "core/probe.h"
#include "core/steer.h"
#include "tc.skel.h"

/* Before anything is loaded: an interface keeps the mode it has, and XDP mode needs a free
 * XDP hook. */
static int check_iface_mode(int ifindex, const char *ifname, enum iface_mode want)
{
	int cur = iface_mode_of(ifindex);

	if (cur >= 0 && cur != (int)want)
		return fail("interface %s is attached in %s mode; 'bpfredir unload' first to "
			    "change it",
			    ifname, iface_mode_name(cur));
	if (cur < 0 && want != IFACE_TC)
		return xdp_check_foreign(ifindex, ifname);
	return 0;
}

int check_targets(struct load_ctx *ctx)
{
	char why[160];
	int i;

	if (ctx->req->attach == ATTACH_TCX && ctx->req->n_ifaces && !probe_tcx())
		return fail(
			"--attach tcx: this kernel has no tcx (Linux 6.6 has it); leave --attach "
			"out, or --attach tc, for a clsact qdisc");
	for (i = 0; i < ctx->req->n_ifaces; i++) {
		ctx->ifindexes[i] = if_nametoindex(ctx->req->ifnames[i]);
		if (!ctx->ifindexes[i])
			return fail("unknown interface '%s'", ctx->req->ifnames[i]);
		if (iface_check(ctx->ifindexes[i], ctx->req->if_modes[i] != IFACE_TC, why,
				sizeof(why)))
			return fail("interface %s %s", ctx->req->ifnames[i], why);
		if (check_iface_mode(ctx->ifindexes[i], ctx->req->ifnames[i],
				     ctx->req->if_modes[i]))
			return EXIT_FAIL;
	}
	for (i = 0; i < ctx->req->n_cgroups; i++)
		if (open_cgroup(ctx->req->cgroups[i], ctx->cgroup_paths[i], PATH_MAX,
				&ctx->cgroup_fds[i], &ctx->cgroup_ids[i]))
			return EXIT_FAIL;
	return 0;
}

/* The skeletons loaded, or what failed in words. */
int load_objects(struct load_ctx *ctx)
{
	static const char *const what[] = {
		[OBJECTS_TC] = "the TC programs",
		[OBJECTS_XDP] = "the XDP program",
		[OBJECTS_SOCK] = "the socket programs",
	};
	enum objects_stage stage;
	int err = objects_load(&ctx->obj, ctx->req->flows, ctx->reload, &stage);

	if (!err)
		return 0;
	if (stage == OBJECTS_OPEN)
		return fail("cannot open the BPF programs: %s", strerror(-err));
	if (stage == OBJECTS_NETNS)
		return fail("cannot read this network namespace's cookie: %s", strerror(-err));
	if (stage == OBJECTS_TC && ctx->reload)
		return fail("cannot load this build over the loaded one, keeping its maps: %s "
			    "(-v says more; 'bpfredir unload' first to start afresh)",
			    strerror(-err));
	return fail("cannot load %s: %s%s", what[stage], strerror(-err),
		    verbose ? "" : " (-v shows the verifier log)");
}

void load_ctx_free(struct load_ctx *ctx)
{
	int i;

	objects_free(&ctx->obj);
	for (i = 0; i < ctx->req->n_cgroups; i++)
		if (ctx->cgroup_fds[i] >= 0)
			close(ctx->cgroup_fds[i]);
}

static int attach_all(struct load_ctx *ctx)
{
	int prog_fds[N_SOCK_HOOKS], tc_prog_fds[2], xdp_fd, i, err;

	if (objects_pin_progs(&ctx->obj, tc_prog_fds, &xdp_fd, prog_fds))
		return EXIT_FAIL;
	for (i = 0; i < ctx->req->n_ifaces; i++)
		if (iface_attach(ctx->txn, ctx->ifindexes[i], ctx->req->ifnames[i], tc_prog_fds,
				 xdp_fd, ctx->req->if_modes[i], ctx->req->attach))
			return EXIT_FAIL;
	err = objects_watch_addresses(&ctx->obj, ctx->req->flows, ctx->txn);
	if (err && verbose)
		fprintf(stderr,
			"bpfredir load: cannot follow address changes (%s); local "
			"addresses are refreshed by each bpfredir command instead\n",
			strerror(-err));
	for (i = 0; i < ctx->req->n_cgroups; i++) {
		err = attach_cgroup(ctx->txn, ctx->cgroup_fds[i], ctx->cgroup_ids[i], prog_fds);
		if (err)
			return fail("cannot attach to cgroup %s: %s", ctx->cgroup_paths[i],
				    strerror(-err));
	}
	return 0;
}

/* The policy map starts with an empty slot: give it a rule set with no rules that lets this
 * load's interfaces and cgroups act. */
static int install_first_set(struct load_ctx *ctx)
{
	int set_fd = ruleset_create(), err = 0, i;

	if (set_fd < 0)
		return fail("cannot create the rule set: %s", strerror(-set_fd));
	for (i = 0; i < ctx->req->n_ifaces && !err; i++)
		err = ruleset_enable(set_fd, POLICY_IFACE, ctx->ifindexes[i], true);
	for (i = 0; i < ctx->req->n_cgroups && !err; i++)
		err = ruleset_enable(set_fd, POLICY_CGROUP, ctx->cgroup_ids[i], true);
	if (!err)
		err = ruleset_install(bpf_map__fd(ctx->obj.tc->maps.policy), set_fd);
	close(set_fd);
	if (err)
		return fail("cannot install the rule set: %s", strerror(-err));
	return 0;
}

/* The last step: link pins, then the policy map's pin, which makes the instance loaded.
 * Killed before this, the load leaves no marker and the next command cleans up. */
static int commit(struct load_ctx *ctx)
{
	char path[PATH_MAX];
	int err;

	err = sync_local_addrs(bpf_map__fd(ctx->obj.tc->maps.local_addrs),
			       bpf_map__fd(ctx->obj.tc->maps.addr_holders),
			       bpf_map__fd(ctx->obj.tc->maps.addrs_gen));
	if (err)
		return fail("cannot record local addresses: %s", local_addrs_error(err));
	err = objects_record_build();
	if (err)
		return fail("cannot record this build in %s: %s", pin_display("maps", "build"),
			    strerror(-err));
	err = pin_txn_commit(ctx->txn);
	if (!err)
		err = pin_path(path, sizeof(path), "maps", "policy");
	if (!err && bpf_obj_pin(bpf_map__fd(ctx->obj.tc->maps.policy), path))
		err = -errno;
	if (err)
		return fail("cannot pin under %s: %s", pin_dir, strerror(-err));
	return 0;
}

/* Before anything is made: a kernel without what bpfredir cannot do without is refused. */
static int check_kernel(const struct load_request *req)
{
	const struct probe_need *unmet = probe_unmet_need();
	const char *steer_lacks = req->steer_socket ? steer_unsupported() : NULL;
	struct utsname uts;

	if (!unmet && !steer_lacks)
		return 0;
	if (uname(&uts))
		snprintf(uts.release, sizeof(uts.release), "?");
	if (!unmet)
		return fail("--steering socket: this kernel (%s) has %s", uts.release, steer_lacks);
	return fail("this kernel (%s) has no %s, which bpfredir needs: Linux %s brought it "
		    "(bpfredir is tested on Linux 6.1 and later)",
		    uts.release, unmet->what, unmet->since);
}

int load_locked(const struct load_request *req)
{
	static struct pin_txn txn;
	struct load_ctx ctx = { .req = req, .txn = &txn };
	int ret, i;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	if (flows_entries(req->flows) != req->flows)
		fprintf(stderr,
			"bpfredir %s: flows %u raised to %u (%u per possible CPU: a smaller LRU "
			"table evicts early on kernels before 6.16)\n",
			cur_cmd ? cur_cmd->name : "load", req->flows, flows_entries(req->flows),
			BPFREDIR_LRU_PER_CPU);
	pin_txn_init(&txn);
	ret = check_kernel(req);
	if (!ret)
		ret = check_targets(&ctx);
	if (!ret)
		ret = pins_make_subdirs() ? EXIT_FAIL : 0;
	if (!ret)
		ret = load_objects(&ctx);
	if (!ret)
		ret = install_first_set(&ctx);
	/* Steering first: the cgroups attach its sock_ops program too. */
	if (!ret && req->steer_socket)
		ret = steer_start(&txn, bpf_map__fd(ctx.obj.tc->maps.policy)) ? EXIT_FAIL : 0;
	if (!ret)
		ret = attach_all(&ctx);
	if (!ret)
		ret = guard_start(&txn, bpf_map__fd(ctx.obj.tc->maps.policy)) ? EXIT_FAIL : 0;
	if (!ret)
		ret = commit(&ctx);

	/* A load that failed midway leaves nothing pinned, so nothing stays attached. */
	if (ret)
		remove_pins(false);
	pin_txn_end(&txn);
	load_ctx_free(&ctx);
	if (!ret)
		guard_announce_running();
	return ret ? EXIT_FAIL : EXIT_OK;
}
