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
	bool cgroup_given;
	const char *cgroup_id; /* detach: by id rather than path */
};

static const struct opt attach_opts[] = {
	{ .name = "cgroup",
	  .short_name = 'c',
	  .type = OPT_T_OPT_PATH,
	  .offset = offsetof(struct cgroup_args, cgroup),
	  .arg = "PATH",
	  .required = true },
	OPT_END,
};

/* The id is what status shows of a cgroup, also of one that is gone. */
static const struct opt detach_opts[] = {
	{ .name = "cgroup",
	  .short_name = 'c',
	  .type = OPT_T_OPT_PATH,
	  .offset = offsetof(struct cgroup_args, cgroup),
	  .seen = offsetof(struct cgroup_args, cgroup_given) + 1,
	  .arg = "PATH" },
	{ .name = "cgroup-id",
	  .type = OPT_T_STRING,
	  .offset = offsetof(struct cgroup_args, cgroup_id),
	  .arg = "ID" },
	OPT_END,
};

/* A PATH that is not there, whose nearest existing ancestor is on cgroup2: a removed cgroup
 * (a container that ended). */
static bool removed_cgroup_path(const char *path)
{
	char dir[PATH_MAX], *slash;
	struct statfs sfs;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return false;
	for (;;) {
		if (!statfs(dir, &sfs))
			return sfs.f_type == CGROUP2_SUPER_MAGIC && strcmp(dir, path);
		if (errno != ENOENT)
			return false;
		slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return false;
		*slash = '\0';
	}
}

static int parse_cgroup_id(const char *text, __u64 *id)
{
	unsigned long long value;
	char *end;

	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || end == text || *end || !value || text[0] == '-')
		return usage_error("--cgroup-id: not a cgroup id: '%s'", text);
	*id = value;
	return 0;
}

/* detach of a cgroup that is gone: what was left of it went when this command opened the pin
 * dir (pins_open forgets removed cgroups), so there is nothing more to do. */
static int detach_removed(const char *what)
{
	printf("%s does not exist: nothing is attached there\n", what);
	return 0;
}

static int detach_by_id(struct instance *in, const char *text)
{
	char what[64];
	__u64 id = 0;
	int ret, err;

	ret = parse_cgroup_id(text, &id);
	if (ret)
		return ret;
	snprintf(what, sizeof(what), "cgroup id %llu", (unsigned long long)id);
	ret = cgroup_exists(id);
	if (ret < 0)
		return fail("cannot look up %s: %s", what, strerror(-ret));
	if (!ret)
		return detach_removed(what);
	if (!cgroup_attached(id))
		return fail("not attached to %s", what);
	err = cgroup_release(in->maps.rules, id);
	return err ? fail("cannot detach from %s: %s", what, strerror(-err)) : 0;
}

/* attach and detach share everything but the middle; the OCI hook (settled) takes a cgroup
 * already as asked, attached or not, as done. */
int cgroup_change(struct pinned_maps *maps, const char *path, bool attach, bool settled)
{
	int prog_fds[N_SOCK_HOOKS], cgroup_fd = -1, ret, err;
	char resolved[PATH_MAX];
	bool attached, active;
	__u64 cgroup_id;

	if (!attach && path && removed_cgroup_path(path)) {
		snprintf(resolved, sizeof(resolved), "cgroup %s", path);
		return detach_removed(resolved);
	}
	ret = open_cgroup(path, resolved, sizeof(resolved), &cgroup_fd, &cgroup_id);
	if (ret)
		return ret;
	attached = cgroup_attached(cgroup_id);
	/* Attached but not acting: what an interrupted apply or attach left. */
	active = attached && ruleset_enabled(maps->rules, POLICY_CGROUP, cgroup_id);
	if (attach ? active : !attached) {
		if (settled)
			printf("%s attached to cgroup %s\n", attach ? "already" : "not", resolved);
		else
			ret = fail("%s attached to cgroup %s", attach ? "already" : "not",
				   resolved);
		goto out;
	}
	/* The live set's room for cgroups, which would otherwise show as E2BIG from the map. */
	if (attach && !attached &&
	    ruleset_count(maps->rules, POLICY_CGROUP) >= BPFREDIR_MAX_CGROUPS) {
		ret = fail("cannot attach to cgroup %s: %d cgroups are attached, the most one "
			   "instance holds (cgroups that are removed are forgotten by themselves)",
			   resolved, BPFREDIR_MAX_CGROUPS);
		goto out;
	}
	/* Attach, then act; stop acting, then detach: a kill between leaves an inert one. */
	if (attach) {
		err = open_pinned_progs(prog_fds);
		if (!err && !attached)
			err = attach_cgroup(NULL, cgroup_fd, cgroup_id, prog_fds);
		close_fds(prog_fds, N_SOCK_HOOKS);
		if (!err)
			err = ruleset_enable(maps->rules, POLICY_CGROUP, cgroup_id, true);
		if (err && !attached)
			detach_cgroup(cgroup_id);
	} else {
		err = cgroup_release(maps->rules, cgroup_id);
	}
	if (err)
		ret = fail("cannot %s cgroup %s: %s", attach ? "attach to" : "detach from",
			   resolved, strerror(-err));
out:
	close(cgroup_fd);
	return ret;
}

static int cgroup_verb(struct instance *in, const struct cgroup_args *args, bool attach)
{
	if (!attach && args->cgroup_id) {
		if (args->cgroup_given)
			return usage_error("--cgroup and --cgroup-id: name the cgroup once");
		return detach_by_id(in, args->cgroup_id);
	}
	if (!attach && !args->cgroup_given)
		return usage_error("--cgroup or --cgroup-id is required (see 'bpfredir detach "
				   "--help')");
	return cgroup_change(&in->maps, args->cgroup, attach, false);
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
	.opts = attach_opts,
	.cfg_size = sizeof(struct cgroup_args),
	.needs = CGROUP_NEEDS,
	.not_loaded_hint = " (run 'bpfredir load' first)",
	.doc = "Redirect local clients in the cgroup2 directory PATH (default: the cgroup2 root)\n"
	       "and its descendants: connect, sendmsg, recvmsg and getpeername hooks.\n",
};

const struct cmd cmd_detach = {
	.name = "detach",
	.func = do_detach,
	.opts = detach_opts,
	.cfg_size = sizeof(struct cgroup_args),
	.needs = CGROUP_NEEDS,
	.not_loaded_hint = " (run 'bpfredir load' first)",
	.doc = "Stop redirecting local clients in PATH (default: the cgroup2 root); other\n"
	       "cgroups are untouched. A removed cgroup (a container that ended) is forgotten\n"
	       "by itself, by the next command that changes anything: detaching its PATH, or\n"
	       "the ID status shows, then succeeds with nothing left to do.\n",
};
