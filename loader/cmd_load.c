// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* load and unload: everything bpfredir attaches lives as a pin under the pin dir, so the
 * loader can exit and a later invocation (or unload) finds it all again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "load.h"
#include "cli.h"

struct load_args {
	struct load_request req; /* ifnames, n_ifaces, flows, attach */
	const char *cgroup;	 /* NULL: the cgroup2 root */
	bool cgroup_given;
	unsigned int attach; /* enum attach_mode */
	unsigned int mode;   /* enum iface_mode */
	unsigned int steering; /* steering_choices */
	bool xdp_generic;
};

static const struct opt_choice attach_choices[] = {
	{ "tcx", ATTACH_TCX },
	{ "tc", ATTACH_TC },
	{},
};

static const struct opt_choice steering_choices[] = {
	{ "packet", false },
	{ "socket", true },
	{},
};

static const struct opt_choice mode_choices[] = {
	{ "tc", IFACE_TC },
	{ "xdp", IFACE_XDP },
	{},
};

static const struct opt load_opts[] = {
	{ .name = "iface",
	  .short_name = 'i',
	  .type = OPT_T_STRINGS,
	  .offset = offsetof(struct load_args, req.ifnames),
	  .arg = "IFACE",
	  .count_at = offsetof(struct load_args, req.n_ifaces),
	  .max = MAX_IFACES,
	  .clash = "interface '%s' given twice" },
	{ .name = "cgroup",
	  .short_name = 'c',
	  .type = OPT_T_OPT_PATH,
	  .offset = offsetof(struct load_args, cgroup),
	  .arg = "PATH",
	  .seen = offsetof(struct load_args, cgroup_given) + 1,
	  .clash = "--cgroup given twice; 'bpfredir attach' adds more cgroups" },
	OPT_UINT(struct load_args, req.flows, "flows", "N", BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS),
	{ .name = "attach",
	  .type = OPT_T_ENUM,
	  .offset = offsetof(struct load_args, attach),
	  .arg = "tcx|tc",
	  .choices = attach_choices },
	{ .name = "mode",
	  .type = OPT_T_ENUM,
	  .offset = offsetof(struct load_args, mode),
	  .arg = "tc|xdp",
	  .choices = mode_choices,
	  .synopsis = "[--mode tc|xdp [--xdp-generic]]" },
	OPT_FLAG(struct load_args, xdp_generic, "xdp-generic", .synopsis = ""),
	{ .name = "steering",
	  .type = OPT_T_ENUM,
	  .offset = offsetof(struct load_args, steering),
	  .arg = "packet|socket",
	  .choices = steering_choices },
	OPT_END,
};

static const struct load_args load_defaults = {
	.req.flows = BPFREDIR_DEFAULT_FLOWS,
	.attach = ATTACH_AUTO,
	.mode = IFACE_TC,
};

static int load_check(const void *cfg)
{
	const struct load_args *args = cfg;

	if (!args->req.n_ifaces && !args->cgroup_given)
		return usage_error("--iface or --cgroup is required (see 'bpfredir load --help')");
	if (args->xdp_generic && args->mode != IFACE_XDP)
		return usage_error("--xdp-generic needs --mode xdp");
	if (args->mode == IFACE_XDP && !args->req.n_ifaces)
		return usage_error("--mode xdp needs --iface");
	return -1;
}

static int do_load(struct instance *in, const void *cfg)
{
	const struct load_args *args = cfg;
	struct load_request req = args->req;
	int i;

	req.attach = args->attach;
	req.steer_socket = args->steering;
	for (i = 0; i < req.n_ifaces; i++)
		req.if_modes[i] = args->xdp_generic ? IFACE_XDP_GENERIC : args->mode;
	if (args->cgroup_given)
		req.cgroups[req.n_cgroups++] = args->cgroup;
	return is_loaded() ? reload_locked(&req) : load_locked(&req);
}

const struct cmd cmd_load = {
	.name = "load",
	.func = do_load,
	.opts = load_opts,
	.defaults = &load_defaults,
	.cfg_size = sizeof(struct load_args),
	.needs = NEED_ROOT | NEED_CREATE,
	.check = load_check,
	.doc = "Load the programs, pin them under DIR and attach TC ingress/egress to each IFACE\n"
	       "and, with --cgroup, the socket hooks to the cgroup2 directory PATH (default: the\n"
	       "cgroup2 root), as 'attach' does; the netns guard keeps hidden ports hidden on "
	       "every\n"
	       "interface, attached or not ('status' says which guard this kernel runs).\n"
	       "--attach tc uses a clsact qdisc instead of tcx (the fallback where tcx is\n"
	       "missing). --mode xdp does ingress with XDP in the driver\n"
	       "(--xdp-generic: on the skb, for any interface) and egress with TC as --attach "
	       "says;\n"
	       "it refuses an interface where another XDP program runs. Loaded already: the same\n"
	       "build changes nothing, a newer one replaces the programs in place, keeping rules "
	       "and\n"
	       "connections. At least one --iface or --cgroup is required.\n"
	       "--flows N sizes the connection table, one entry per established connection:\n"
	       "1024-16777216 (default 65536), raised to 256 per possible CPU when smaller.\n"
	       "--steering socket hands TCP rules' new connections to the target's listener at\n"
	       "the kernel's socket lookup (sk_lookup) instead of rewriting their packets: no\n"
	       "connection table, nothing per established packet; UDP rules and the hidden port\n"
	       "stay with TC or XDP. The default, packet, rewrites. Changing it needs an unload.\n",
};

static int do_unload(struct instance *in, const void *cfg)
{
	int err;

	if (!is_loaded())
		/* What a killed load or unload left is removed, with the pin dir it made;
		 * nothing else was loaded. */
		return finish_interrupted(false) ? EXIT_FAIL : fail("not loaded at %s", pin_dir);
	err = remove_pins(false);
	if (err)
		return fail("cannot remove everything under %s: %s", pin_dir, strerror(-err));
	return EXIT_OK;
}

static const struct opt unload_opts[] = { OPT_END };

const struct cmd cmd_unload = {
	.name = "unload",
	.func = do_unload,
	.opts = unload_opts,
	.needs = NEED_ROOT | NEED_LOCK,
	.doc = "Detach everything and remove every pin under DIR.\n",
};
