// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * apply -f FILE: bring the host to exactly the file's interfaces, cgroups and rules. The
 * rule set is built aside and swapped in with one map update, so no packet sees half of
 * the old set and half of the new; interfaces and cgroups are attached before the swap and
 * detached after it. A second apply of the same file changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "config.h"

/* What the file cannot do to a loaded host. Resize its connection table: that would drop
 * every connection, and 'load --flows' refuses it the same way; a warning instead would let
 * 'systemctl reload' succeed with the file not applied. And, unless --allow-empty, take away
 * every rule: an empty or truncated file, one reload away, would unhide every port. */
static int check_live(const struct config *cfg, const struct pinned_maps *maps)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int live_rules;

	if (cfg->flows_line) {
		if (bpf_map_get_info_by_fd(maps->flows, &info, &len))
			return fail("cannot read the loaded connection table: %s", strerror(errno));
		if (info.max_entries != cfg->flows)
			return config_error(cfg, cfg->flows_line, cfg->flows_col,
					    "flows %lu, but the loaded connection table has %u "
					    "entries; 'bpfredir unload' first to change it",
					    cfg->flows, info.max_entries);
	}
	if (cfg->steering_line && cfg->steer_socket != (maps->steer.wildcard >= 0))
		return config_error(cfg, cfg->steering_line, cfg->steering_col,
				    "steering %s, but the instance is loaded with --steering %s; "
				    "'bpfredir unload' first to change it",
				    cfg->steer_socket ? "socket" : "packet",
				    cfg->steer_socket ? "packet" : "socket");
	if (cfg->n_rules || cfg->allow_empty)
		return 0;
	live_rules = ruleset_count(maps->rules, POLICY_PUBLIC);
	if (live_rules)
		return fail("%s has no rule: applying it would remove the %d rule%s in force; "
			    "--allow-empty applies it anyway",
			    cfg->path, live_rules, live_rules == 1 ? "" : "s");
	return 0;
}

static int apply_loaded(const struct config *cfg, const struct resolved *res, bool dry_run)
{
	struct pinned_maps maps;
	struct current cur;
	int changes, ret, err, upgraded = 0;

	if (open_pinned_maps(&maps))
		return EXIT_FAIL;
	err = read_current(&cur, maps.rules);
	if (err) {
		close_pinned_maps(&maps);
		return fail("cannot read %s: %s", pin_display("links", NULL), strerror(-err));
	}
	if (check_modes(cfg, res, &cur) || check_live(cfg, &maps)) {
		close_pinned_maps(&maps);
		return EXIT_FAIL;
	}
	/* Then, before the file's changes: a newer build (a package upgrade, then the service's
	 * reload or restart) takes over in place, so applying never needs an unload. */
	if (!dry_run) {
		upgraded = upgrade_programs();
		if (upgraded < 0) {
			close_pinned_maps(&maps);
			return EXIT_FAIL;
		}
		if (upgraded > 0)
			printf("programs replaced by this build, maps kept\n");
	}
	changes = plan(cfg, res, &cur, maps.rules);
	if (!changes && !upgraded)
		printf("nothing to change\n");
	ret = 0;
	/* Attached is not acting: the new attachments do nothing until the switch, the dropped
	 * ones nothing after it, so the switch is the one moment the host changes. */
	if (changes && !dry_run) {
		ret = attach_new(cfg, res, &cur);
		failpoint("apply-attached");
		if (!ret)
			ret = swap_rules(cfg, res, &maps);
		failpoint("apply-switched");
		if (!ret)
			detach_gone(cfg, res, &cur);
	}
	if (!ret && !dry_run) {
		err = sync_local_addrs(maps.local_addrs, maps.addr_holders, maps.addrs_gen);
		if (err)
			ret = fail("cannot record local addresses: %s", local_addrs_error(err));
	}
	if (!ret && !dry_run)
		guard_warn(maps.policy);
	close_pinned_maps(&maps);
	return ret;
}

static int apply_fresh(const struct config *cfg, const struct resolved *res, bool dry_run)
{
	struct load_request req = { .flows = cfg->flows_line ? cfg->flows : BPFREDIR_DEFAULT_FLOWS,
				    .steer_socket = cfg->steer_socket };
	struct pinned_maps maps;
	int i, ret;

	printf("+ load %s%s\n", pin_dir, cfg->steer_socket ? " (steering socket)" : "");
	for (i = 0; i < cfg->n_ifaces; i++)
		printf("+ interface %s%s%s\n", cfg->ifnames[i],
		       cfg->if_modes[i] != IFACE_TC ? " mode " : "",
		       cfg->if_modes[i] != IFACE_TC ? iface_mode_name(cfg->if_modes[i]) : "");
	for (i = 0; i < cfg->n_cgroups; i++)
		printf("+ cgroup %s\n", cfg->cgroup_root[i] ? "(cgroup2 root)" : cfg->cgroups[i]);
	plan_rules(cfg, -1, true);
	if (dry_run)
		return 0;
	for (i = 0; i < cfg->n_ifaces; i++) {
		req.if_modes[req.n_ifaces] = cfg->if_modes[i];
		req.ifnames[req.n_ifaces++] = cfg->ifnames[i];
	}
	for (i = 0; i < cfg->n_cgroups; i++)
		req.cgroups[req.n_cgroups++] = cfg->cgroup_root[i] ? NULL : cfg->cgroups[i];
	ret = load_locked(&req);
	if (ret)
		return ret;
	ret = open_pinned_maps(&maps) ? EXIT_FAIL : swap_rules(cfg, res, &maps);
	if (!ret) {
		guard_warn(maps.policy);
		close_pinned_maps(&maps);
	}
	if (ret)
		remove_pins(false); /* nothing half-applied: the load goes too */
	return ret;
}

struct apply_args {
	const char *path;
	bool dry_run;
	bool allow_empty;
	bool watch;
};

static const struct opt apply_opts[] = {
	{ .name = "file",
	  .short_name = 'f',
	  .type = OPT_T_STRING,
	  .offset = offsetof(struct apply_args, path),
	  .synopsis = "-f FILE" },
	OPT_FLAG(struct apply_args, dry_run, "dry-run"),
	OPT_FLAG(struct apply_args, allow_empty, "allow-empty"),
	OPT_FLAG(struct apply_args, watch, "watch"),
	OPT_END,
};

static int apply_check(const void *cfg)
{
	const struct apply_args *args = cfg;

	if (!args->path)
		return usage_error("-f FILE is required (see 'bpfredir apply --help')");
	if (args->watch && args->dry_run)
		return usage_error("--watch and --dry-run: a dry run changes nothing to watch for");
	return -1;
}

/* Its own preamble: the file is read before the root check, and a dry run only reads the
 * pin dir while an apply makes it. */
static int apply_file(const void *args_cfg)
{
	const struct apply_args *args = args_cfg;
	static struct config cfg;
	static struct resolved res;
	bool dry_run = args->dry_run;
	int ret, i, err;

	cfg.path = args->path;
	cfg.allow_empty = args->allow_empty;
	for (i = 0; i < MAX_CGROUPS; i++)
		res.cgroup_fds[i] = -1;
	ret = parse_config(&cfg);
	if (!ret)
		ret = require_root();
	if (!ret)
		ret = resolve(&cfg, &res);
	if (ret)
		goto out;
	/* A dry run only reads: it neither makes the pin dir nor cleans up after an interrupted
	 * run (it takes no lock, so it may see another command's work half done). */
	err = dry_run ? pins_open(PINS_READ) : pins_create();
	if (err && !(dry_run && err == -ENOENT)) {
		ret = EXIT_FAIL;
		goto out;
	}
	ret = is_loaded() ? apply_loaded(&cfg, &res, dry_run) : apply_fresh(&cfg, &res, dry_run);
out:
	for (i = 0; i < cfg.n_cgroups; i++)
		if (res.cgroup_fds[i] >= 0)
			close(res.cgroup_fds[i]);
	pins_close();
	return ret;
}

static int do_apply(struct instance *in, const void *args_cfg)
{
	const struct apply_args *args = args_cfg;

	if (args->watch)
		return require_root() ? EXIT_FAIL : apply_watch(args->path, apply_file, args);
	return apply_file(args);
}

const struct cmd cmd_apply = {
	.name = "apply",
	.func = do_apply,
	.opts = apply_opts,
	.cfg_size = sizeof(struct apply_args),
	.check = apply_check,
	.doc = "Bring the host to exactly FILE's interfaces, cgroups and rules (loading if "
	       "needed);\n"
	       "the rule set switches in one step; a newer build's programs take over in place,\n"
	       "as with 'load'. --dry-run prints the plan and changes nothing.\n"
	       "--watch stays running: it applies FILE, then again each time it changes (its\n"
	       "directory is watched: an editor's rename, a ConfigMap's symlink swap), one\n"
	       "line each; a bad FILE is said in one line and the rules in force stay. It\n"
	       "stops on SIGTERM or SIGINT leaving the rules in place (it does not unload).\n"
	       "FILE must be a regular file owned by root and writable by root only. A file with "
	       "no\n"
	       "interface and no cgroup, or with no rule while rules are in force, is refused\n"
	       "unless --allow-empty.\n",
};
