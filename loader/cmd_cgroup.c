// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* attach and detach: the socket hooks per cgroup, so a container host can redirect the
 * clients of each container independently. Links are multi-attach: programs others have
 * attached to the same cgroup keep running beside ours. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include "loader.h"

int open_cgroup(const char *path, char *resolved, size_t size, int *fd, __u64 *id)
{
	int err = cgroup_open(path, resolved, size, fd, id);

	if (!err)
		return 0;
	if (!path)
		return fail("no cgroup2 mount found in /proc/self/mounts");
	if (err == -ENAMETOOLONG)
		return fail("cgroup path too long: %s", path);
	return fail("no cgroup2 at %s", path);
}

/* Shared by attach and detach: --cgroup [PATH] and nothing else. */
static int parse_cgroup_args(int argc, char **argv, const char **cgroup)
{
	static const struct option opts[] = {
		{ "cgroup", optional_argument, NULL, 'c' },
		COMMON_LONG_OPTS,
		{},
	};
	bool given = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, ":c::" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		if (opt == 'c') {
			given = true;
			*cgroup = optional_path_arg(argc, argv);
			continue;
		}
		ret = common_opt(opt, argv);
		if (ret >= 0)
			return ret;
	}
	if (extra_args(argc, argv) >= 0)
		return EXIT_USAGE;
	if (!given)
		return usage_error("--cgroup is required (see 'bpfredir %s --help')",
				   cur_cmd->name);
	return -1;
}

/* attach and detach share everything but the middle. */
static int cgroup_verb(int argc, char **argv, bool attach)
{
	int prog_fds[N_SOCK_HOOKS], cgroup_fd = -1, ret, err;
	struct pinned_maps maps = { .rules = -1 };
	const char *cgroup = NULL;
	char resolved[PATH_MAX];
	bool attached, active;
	__u64 cgroup_id;

	ret = parse_cgroup_args(argc, argv, &cgroup);
	if (ret >= 0)
		return ret;
	if (require_root())
		return EXIT_FAIL;
	err = pins_open(PINS_WRITE);
	if (err || !is_loaded()) {
		ret = err && err != -ENOENT
			      ? EXIT_FAIL
			      : fail("not loaded at %s (run 'bpfredir load' first)", pin_dir);
		goto out;
	}
	ret = open_cgroup(cgroup, resolved, sizeof(resolved), &cgroup_fd, &cgroup_id);
	if (!ret && open_pinned_maps(&maps))
		ret = EXIT_FAIL;
	if (ret)
		goto out;
	attached = cgroup_attached(cgroup_id);
	/* Attached but not acting: what an interrupted apply or attach left. */
	active = attached && ruleset_enabled(maps.rules, POLICY_CGROUP, cgroup_id);
	if (attach ? active : !attached) {
		ret = fail("%s attached to cgroup %s", attach ? "already" : "not", resolved);
		goto out;
	}
	/* Attach, then act; stop acting, then detach: a kill between leaves an inert one. */
	if (attach) {
		err = open_pinned_progs(prog_fds);
		if (!err && !attached)
			err = attach_cgroup(NULL, cgroup_fd, cgroup_id, prog_fds);
		close_fds(prog_fds, N_SOCK_HOOKS);
		if (!err)
			err = ruleset_enable(maps.rules, POLICY_CGROUP, cgroup_id, true);
		if (err && !attached)
			detach_cgroup(cgroup_id);
	} else {
		err = ruleset_enable(maps.rules, POLICY_CGROUP, cgroup_id, false);
		if (!err)
			err = detach_cgroup(cgroup_id);
	}
	if (err)
		ret = fail("cannot %s cgroup %s: %s", attach ? "attach to" : "detach from",
			   resolved, strerror(-err));
out:
	if (maps.rules >= 0)
		close_pinned_maps(&maps);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	pins_close();
	return ret;
}

int do_attach(int argc, char **argv)
{
	return cgroup_verb(argc, argv, true);
}

int do_detach(int argc, char **argv)
{
	return cgroup_verb(argc, argv, false);
}
