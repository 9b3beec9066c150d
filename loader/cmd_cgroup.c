// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* attach and detach: the socket hooks per cgroup, so a container host can redirect the
 * clients of each container independently. Links are multi-attach: programs others have
 * attached to the same cgroup keep running beside ours. */
#include <errno.h>
#include <fcntl.h>
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

struct cgroup_args {
	const char *cgroup; /* NULL: the cgroup2 root */
};

/* Shared by attach and detach: --cgroup [PATH] and nothing else. */
static const struct opt cgroup_opts[] = {
	{ .name = "cgroup",
	  .short_name = 'c',
	  .type = OPT_T_OPT_PATH,
	  .offset = offsetof(struct cgroup_args, cgroup),
	  .arg = "PATH",
	  .required = true },
	OPT_END,
};

/* attach and detach share everything but the middle. */
static int cgroup_verb(struct instance *in, const struct cgroup_args *args, bool attach)
{
	int prog_fds[N_SOCK_HOOKS], cgroup_fd = -1, ret, err;
	struct pinned_maps maps = in->maps;
	char resolved[PATH_MAX];
	bool attached, active;
	__u64 cgroup_id;

	ret = open_cgroup(args->cgroup, resolved, sizeof(resolved), &cgroup_fd, &cgroup_id);
	if (ret)
		return ret;
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
	close(cgroup_fd);
	return ret;
}

static int do_attach(struct instance *in, const void *cfg)
{
	return cgroup_verb(in, cfg, true);
}

static int do_detach(struct instance *in, const void *cfg)
{
	return cgroup_verb(in, cfg, false);
}

#define CGROUP_NEEDS (NEED_ROOT | NEED_LOCK | NEED_LOADED | NEED_MAPS)

const struct cmd cmd_attach = {
	.name = "attach",
	.func = do_attach,
	.opts = cgroup_opts,
	.cfg_size = sizeof(struct cgroup_args),
	.needs = CGROUP_NEEDS,
	.not_loaded_hint = " (run 'bpfredir load' first)",
	.doc = "Redirect local clients in the cgroup2 directory PATH (default: the cgroup2 root)\n"
	       "and its descendants: connect, sendmsg, recvmsg and getpeername hooks.\n",
};

const struct cmd cmd_detach = {
	.name = "detach",
	.func = do_detach,
	.opts = cgroup_opts,
	.cfg_size = sizeof(struct cgroup_args),
	.needs = CGROUP_NEEDS,
	.not_loaded_hint = " (run 'bpfredir load' first)",
	.doc = "Stop redirecting local clients in PATH; other cgroups are untouched.\n",
};
