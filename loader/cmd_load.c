// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* load and unload: everything bpfredir attaches lives as a pin under the pin dir, so the
 * loader can exit and a later invocation (or unload) finds it all again. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "load.h"
#include "cli.h"

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
