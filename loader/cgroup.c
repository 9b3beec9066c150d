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

const struct sock_hook sock_hooks[N_SOCK_HOOKS] = {
	{ "bpfredir_conn4", "conn4", BPF_CGROUP_INET4_CONNECT },
	{ "bpfredir_conn6", "conn6", BPF_CGROUP_INET6_CONNECT },
	{ "bpfredir_send4", "send4", BPF_CGROUP_UDP4_SENDMSG },
	{ "bpfredir_send6", "send6", BPF_CGROUP_UDP6_SENDMSG },
	{ "bpfredir_recv4", "recv4", BPF_CGROUP_UDP4_RECVMSG },
	{ "bpfredir_recv6", "recv6", BPF_CGROUP_UDP6_RECVMSG },
	{ "bpfredir_peer4", "peer4", BPF_CGROUP_INET4_GETPEERNAME },
	{ "bpfredir_peer6", "peer6", BPF_CGROUP_INET6_GETPEERNAME },
};

/* The cgroup2 mount, wherever this system has it (unified or hybrid layout). */
static int cgroup2_root(char *buf, size_t size)
{
	struct mntent *ent;
	FILE *mounts = setmntent("/proc/self/mounts", "r");
	int err = -ENOENT;

	if (!mounts)
		return -errno;
	while ((ent = getmntent(mounts))) {
		if (strcmp(ent->mnt_type, "cgroup2"))
			continue;
		err = snprintf(buf, size, "%s", ent->mnt_dir) >= (int)size ? -ENAMETOOLONG : 0;
		break;
	}
	endmntent(mounts);
	return err;
}

int cgroup_open(const char *path, char *resolved, size_t size, int *fd, __u64 *id)
{
	struct statfs sfs;
	struct stat st;
	int err;

	*fd = -1;
	if (!path) {
		err = cgroup2_root(resolved, size);
		if (err)
			return err;
		path = resolved;
	} else if (snprintf(resolved, size, "%s", path) >= (int)size) {
		return -ENAMETOOLONG;
	}
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (fstatfs(*fd, &sfs) || fstat(*fd, &st))
		err = -errno;
	else
		err = sfs.f_type == CGROUP2_SUPER_MAGIC ? 0 : -EMEDIUMTYPE;
	if (err) {
		close(*fd);
		*fd = -1;
		return err;
	}
	/* On cgroup2 the directory's inode number is the cgroup id: stable and unique. */
	*id = st.st_ino;
	return 0;
}

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

static const char *hook_link_name(__u64 cgroup_id, const struct sock_hook *hook)
{
	return pin_link_name(LINK_CGROUP, cgroup_id, hook->suffix);
}

bool cgroup_attached(__u64 cgroup_id)
{
	return pin_link_alive(hook_link_name(cgroup_id, &sock_hooks[0]));
}

int detach_cgroup(__u64 cgroup_id)
{
	int i, err = 0, ret;

	/* The pin is the link's last reference: removing it detaches the program. */
	for (i = 0; i < N_SOCK_HOOKS; i++) {
		ret = pin_unlink("links", hook_link_name(cgroup_id, &sock_hooks[i]));
		if (ret)
			err = ret;
	}
	return err;
}

/* Tell the programs at this cgroup which attachment they run from (redir_attach_point).
 * The storage exists once the first of them is attached. */
static int stamp_attach_point(__u64 cgroup_id)
{
	struct redir_attach_point here = { .cgroup_id = cgroup_id };
	char path[PATH_MAX];
	int fd, err = 0;

	if (pin_path(path, sizeof(path), "maps", "attach_point"))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_map_update_elem(fd, &cgroup_id, &here, BPF_EXIST))
		err = -errno;
	close(fd);
	return err;
}

/* All hooks or none: a cgroup with connect4 but no getpeername4 would show clients the
 * target port. They act only once the live rule set names the cgroup (POLICY_CGROUP). */
int attach_cgroup(int cgroup_fd, __u64 cgroup_id, const int prog_fds[N_SOCK_HOOKS])
{
	char path[PATH_MAX];
	int i, link_fd, err = 0;

	/* Pins left by a cgroup that was removed and whose id came back hold the names. */
	detach_cgroup(cgroup_id);
	for (i = 0; i < N_SOCK_HOOKS && !err; i++) {
		link_fd = bpf_link_create(prog_fds[i], cgroup_fd, sock_hooks[i].type, NULL);
		if (link_fd < 0) {
			err = -errno;
			break;
		}
		err = pin_path(path, sizeof(path), "links",
			       hook_link_name(cgroup_id, &sock_hooks[i]));
		if (err)
			close(link_fd);
		else
			err = pin_link_fd(link_fd, path);
	}
	if (!err)
		err = stamp_attach_point(cgroup_id);
	if (err)
		detach_cgroup(cgroup_id);
	return err;
}

int open_pinned_progs(int prog_fds[N_SOCK_HOOKS])
{
	int i;

	for (i = 0; i < N_SOCK_HOOKS; i++)
		prog_fds[i] = -1;
	for (i = 0; i < N_SOCK_HOOKS; i++) {
		prog_fds[i] = open_pinned_prog(sock_hooks[i].prog);
		if (prog_fds[i] < 0)
			return prog_fds[i];
	}
	return 0;
}

void close_fds(int *fds, int n)
{
	while (n--)
		if (fds[n] >= 0)
			close(fds[n]);
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
			err = attach_cgroup(cgroup_fd, cgroup_id, prog_fds);
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
