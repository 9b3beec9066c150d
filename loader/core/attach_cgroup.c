// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The socket hooks per cgroup, so a container host can redirect the clients of each container
 * independently. Links are multi-attach: programs others have attached to the same cgroup keep
 * running beside ours. */
#define _GNU_SOURCE /* open_by_handle_at */
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
#include "attach.h"
#include "log.h"
#include "pins.h"
#include "ruleset.h"
#include "steer.h"

int cgroup2_root(char *buf, size_t size)
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

int cgroup_fd_id(int fd, __u64 *id)
{
	struct statfs sfs;
	struct stat st;

	if (fstatfs(fd, &sfs) || fstat(fd, &st))
		return -errno;
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return -EMEDIUMTYPE;
	/* On cgroup2 the directory's inode number is the cgroup id: stable and unique. */
	*id = st.st_ino;
	return 0;
}

int cgroup_open(const char *path, char *resolved, size_t size, int *fd, __u64 *id)
{
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
	err = cgroup_fd_id(*fd, id);
	if (err) {
		close(*fd);
		*fd = -1;
	}
	return err;
}

/* The kernel's file handle type for kernfs (include/linux/exportfs.h), which cgroup2 hands
 * out: its eight bytes are the cgroup id. */
#define FILEID_KERNFS 0xfe

/* cgroup_exists, given the cgroup2 mount's fd. */
static int cgroup_resolves(int root_fd, __u64 cgroup_id)
{
	union {
		struct file_handle fh;
		char bytes[sizeof(struct file_handle) + sizeof(__u64)];
	} h = { .fh = { .handle_bytes = sizeof(__u64), .handle_type = FILEID_KERNFS } };
	int fd;

	memcpy(h.fh.f_handle, &cgroup_id, sizeof(cgroup_id));
	fd = open_by_handle_at(root_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	/* ENOTDIR: the id is a file's now, so no cgroup's. */
	return errno == ESTALE || errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

int cgroup2_root_open(void)
{
	char root[PATH_MAX];
	int err = cgroup2_root(root, sizeof(root)), fd;

	if (err)
		return err;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int cgroup_exists(__u64 cgroup_id)
{
	int root_fd = cgroup2_root_open(), ret;

	if (root_fd < 0)
		return root_fd;
	ret = cgroup_resolves(root_fd, cgroup_id);
	close(root_fd);
	return ret;
}

static const char *hook_link_name(__u64 cgroup_id, const struct sock_hook *hook)
{
	return pin_link_name(LINK_CGROUP, cgroup_id, hook->suffix);
}

/* Socket steering's sock_ops program (core/steer.c), attached beside the socket hooks where
 * the instance steers: it registers the listeners of the cgroup's services as they start. */
static const struct sock_hook listen_hook = { STEER_LISTEN_PROG_NAME, STEER_LISTEN_SUFFIX,
					      BPF_CGROUP_SOCK_OPS };

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
	ret = pin_unlink("links", hook_link_name(cgroup_id, &listen_hook));
	return err ? err : ret;
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

static int attach_listen_hook(struct pin_txn *txn, int cgroup_fd, __u64 cgroup_id)
{
	int prog_fd = open_pinned_prog(listen_hook.prog), link_fd, err;
	char path[PATH_MAX];

	if (prog_fd == -ENOENT) /* the instance rewrites packets */
		return 0;
	if (prog_fd < 0)
		return prog_fd;
	link_fd = bpf_link_create(prog_fd, cgroup_fd, listen_hook.type, NULL);
	err = link_fd < 0 ? -errno : 0;
	close(prog_fd);
	if (!err)
		err = pin_path(path, sizeof(path), "links",
			       hook_link_name(cgroup_id, &listen_hook));
	if (!err)
		return pin_link_fd(txn, link_fd, path);
	if (link_fd >= 0)
		close(link_fd);
	return err;
}

/* All hooks or none: a cgroup with connect4 but no getpeername4 would show clients the
 * target port. They act only once the live rule set names the cgroup (POLICY_CGROUP). */
int attach_cgroup(struct pin_txn *txn, int cgroup_fd, __u64 cgroup_id,
		  const int prog_fds[N_SOCK_HOOKS])
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
			err = pin_link_fd(txn, link_fd, path);
	}
	if (!err)
		err = attach_listen_hook(txn, cgroup_fd, cgroup_id);
	if (!err)
		err = stamp_attach_point(cgroup_id);
	if (err)
		detach_cgroup(cgroup_id);
	return err;
}

/* Stop acting, then detach: a kill between the two leaves an inert attachment, never one
 * that acts with nothing to undo it. set_fd: the live set, or -1 for none. */
int cgroup_release(int set_fd, __u64 cgroup_id)
{
	int err = set_fd >= 0 ? ruleset_enable(set_fd, POLICY_CGROUP, cgroup_id, false) : 0;

	return err ? err : detach_cgroup(cgroup_id);
}

static int add_id(__u64 **ids, size_t *n, size_t *cap, __u64 id)
{
	size_t i;
	__u64 *grown;

	for (i = 0; i < *n; i++)
		if ((*ids)[i] == id)
			return 0;
	if (*n == *cap) {
		grown = realloc(*ids, (*cap ? *cap * 2 : 64) * sizeof(**ids));
		if (!grown)
			return -ENOMEM;
		*ids = grown;
		*cap = *cap ? *cap * 2 : 64;
	}
	(*ids)[(*n)++] = id;
	return 0;
}

/* A container's cgroup goes with the container, and the kernel detaches the programs there;
 * but the pins and the live set's entry would stay, and a host starting containers all day
 * would fill both. Its id stops resolving at once (rmdir), before the kernel lets go of the
 * links (not while a socket made there lives on). */
int cgroups_forget_removed(int set_fd)
{
	struct redir_policy_key key, *prev = NULL;
	size_t n = 0, cap = 0, i;
	struct pin_link link;
	struct dirent *de;
	__u64 *ids = NULL;
	int err = 0, first_err = 0, forgotten = 0, ret, root_fd;
	DIR *dir;

	dir = pin_opendir("links");
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while (!err && (de = readdir(dir)))
		if (pin_link_parse(de->d_name, &link) && link.kind == LINK_CGROUP)
			err = add_id(&ids, &n, &cap, link.where);
	closedir(dir);
	while (!err && set_fd >= 0 && !bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind == POLICY_CGROUP)
			err = add_id(&ids, &n, &cap, key.id);
	}
	root_fd = n && !err ? cgroup2_root_open() : -1;
	if (n && !err && root_fd < 0)
		err = root_fd;
	/* One that cannot be looked at or forgotten does not keep the others: the first error
	 * is what is returned. */
	for (i = 0; i < n && !err; i++) {
		ret = cgroup_resolves(root_fd, ids[i]);
		if (!ret) {
			ret = cgroup_release(set_fd, ids[i]);
			forgotten += !ret;
		}
		if (ret < 0 && !first_err)
			first_err = ret;
	}
	if (root_fd >= 0)
		close(root_fd);
	free(ids);
	return err ?: first_err ?: forgotten;
}
