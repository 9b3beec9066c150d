// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* load and unload: everything bpfredir attaches lives as a pin under the pin dir, so the
 * loader can exit and a later invocation (or unload) finds it all again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "iface.h"
#include "core/probe.h"
#include "tc.skel.h"

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

static int parse_load_args(int argc, char **argv, struct load_request *req)
{
	static const struct option opts[] = {
		{ "iface", required_argument, NULL, 'i' },
		{ "cgroup", optional_argument, NULL, 'c' },
		{ "flows", required_argument, NULL, OPT_FLOWS },
		{ "attach", required_argument, NULL, OPT_ATTACH },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "xdp-generic", no_argument, NULL, OPT_XDP_GENERIC },
		COMMON_LONG_OPTS,
		{},
	};
	enum iface_mode mode = IFACE_TC;
	bool xdp_generic = false;
	unsigned long flows;
	int opt, ret, i;

	while ((opt = getopt_long(argc, argv, ":i:c::" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (req->n_ifaces == MAX_IFACES)
				return usage_error("at most %d --iface options", MAX_IFACES);
			for (i = 0; i < req->n_ifaces; i++)
				if (!strcmp(req->ifnames[i], optarg))
					return usage_error("interface '%s' given twice", optarg);
			req->ifnames[req->n_ifaces++] = optarg;
			break;
		case 'c':
			if (req->n_cgroups)
				return usage_error(
					"--cgroup given twice; 'bpfredir attach' adds more "
					"cgroups");
			req->cgroups[req->n_cgroups++] = optional_path_arg(argc, argv);
			break;
		case OPT_ATTACH:
			if (!strcmp(optarg, "tcx"))
				req->attach = ATTACH_TCX;
			else if (!strcmp(optarg, "tc"))
				req->attach = ATTACH_TC;
			else
				return usage_error("invalid --attach '%s' (expected tcx or tc)",
						   optarg);
			break;
		case OPT_MODE:
			if (!strcmp(optarg, "tc"))
				mode = IFACE_TC;
			else if (!strcmp(optarg, "xdp"))
				mode = IFACE_XDP;
			else
				return usage_error("invalid --mode '%s' (expected tc or xdp)",
						   optarg);
			break;
		case OPT_XDP_GENERIC:
			xdp_generic = true;
			break;
		case OPT_FLOWS:
			if (!scan_uint(optarg, BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS, &flows))
				return usage_error("invalid --flows '%s' (expected %u-%u%s)",
						   optarg, BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS,
						   number_hint(optarg));
			req->flows = flows;
			break;
		default:
			ret = common_opt(opt, argv);
			if (ret >= 0)
				return ret;
		}
	}
	if (extra_args(argc, argv) >= 0)
		return EXIT_USAGE;
	if (!req->n_ifaces && !req->n_cgroups)
		return usage_error("--iface or --cgroup is required (see 'bpfredir load --help')");
	if (xdp_generic && mode != IFACE_XDP)
		return usage_error("--xdp-generic needs --mode xdp");
	if (mode == IFACE_XDP && !req->n_ifaces)
		return usage_error("--mode xdp needs --iface");
	for (i = 0; i < req->n_ifaces; i++)
		req->if_modes[i] = xdp_generic ? IFACE_XDP_GENERIC : mode;
	return -1;
}

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

static int check_targets(struct load_ctx *ctx)
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
static int load_objects(struct load_ctx *ctx)
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

static void load_ctx_free(struct load_ctx *ctx)
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
			       bpf_map__fd(ctx->obj.tc->maps.addr_holders));
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
static int check_kernel(void)
{
	const struct probe_need *unmet = probe_unmet_need();
	struct utsname uts;

	if (!unmet)
		return 0;
	if (uname(&uts))
		snprintf(uts.release, sizeof(uts.release), "?");
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
	ret = check_kernel();
	if (!ret)
		ret = check_targets(&ctx);
	if (!ret)
		ret = pins_make_subdirs() ? EXIT_FAIL : 0;
	if (!ret)
		ret = load_objects(&ctx);
	if (!ret)
		ret = install_first_set(&ctx);
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

/* The size the loaded instance's flow table was made with: a reload keeps every map. */
static int loaded_flows(__u32 *flows)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, err = 0;

	if (pin_path(path, sizeof(path), "maps", "flows"))
		return fail("pin dir not open: %s", pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0 || bpf_map_get_info_by_fd(fd, &info, &len))
		err = fail("cannot read the loaded flow table %s: %s", pin_display("maps", "flows"),
			   strerror(errno));
	if (fd >= 0)
		close(fd);
	*flows = info.max_entries;
	return err;
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
	struct pinned_maps maps;
	int updated, guard, xdp_fd, i, err;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	if (open_pinned_maps(&maps))
		return -1;
	err = sync_derived(&maps);
	close_pinned_maps(&maps);
	if (err)
		return fail_err(-1, "cannot bring the maps in line with the rules: %s",
				local_addrs_error(err));
	/* The same build: only a guard that went (or is not the kind wanted) is attached. */
	if (objects_loaded_build() == objects_build_id())
		return guard_intact() ? 0 : guard_upgrade_or_fail();
	if (loaded_flows(&req.flows) || load_objects(&ctx)) {
		load_ctx_free(&ctx);
		return -1;
	}
	updated = objects_update_links(&ctx.obj);
	if (updated < 0) {
		load_ctx_free(&ctx);
		return fail_err(-1, "cannot switch the attachments to this build: %s",
				strerror(-updated));
	}
	/* Netfilter links cannot be updated in place: guard.c swaps the guard's links. */
	guard = guard_upgrade_or_fail();
	if (guard < 0) {
		load_ctx_free(&ctx);
		return -1;
	}
	updated += guard;
	/* The pinned programs are what attach and apply use next: make them this build's. */
	err = updated > 0 ? objects_repin_progs(&ctx.obj) : 0;
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
	if (!err && objects_record_build())
		return fail_err(-1, "cannot record this build in %s", pin_display("maps", "build"));
	return err ? -1 : updated;
}

/* load on a loaded pin dir: the programs upgraded (or kept, for the same build), and the
 * interfaces and cgroups asked for and not yet attached are attached. */
static int reload_locked(const struct load_request *req)
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

int do_load(int argc, char **argv)
{
	struct load_request req = { .flows = BPFREDIR_DEFAULT_FLOWS };
	int ret;

	ret = parse_load_args(argc, argv, &req);
	if (ret >= 0)
		return ret;
	if (require_root() || pins_create())
		return EXIT_FAIL;
	ret = is_loaded() ? reload_locked(&req) : load_locked(&req);
	pins_close();
	return ret;
}

int do_unload(int argc, char **argv)
{
	int ret, err;

	ret = parse_common_only(argc, argv);
	if (ret >= 0)
		return ret;
	if (require_root())
		return EXIT_FAIL;
	err = pins_open(PINS_WRITE);
	if (err)
		return err == -ENOENT ? fail("not loaded at %s", pin_dir) : EXIT_FAIL;
	if (!is_loaded()) {
		/* What a killed load or unload left is removed, with the pin dir it made;
		 * nothing else was loaded. */
		ret = finish_interrupted(false) ? EXIT_FAIL : fail("not loaded at %s", pin_dir);
		pins_close();
		return ret;
	}
	err = remove_pins(false);
	pins_close();
	if (err)
		return fail("cannot remove everything under %s: %s", pin_dir, strerror(-err));
	return EXIT_OK;
}
