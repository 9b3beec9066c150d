// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pin dir: where everything bpfredir loads lives between invocations. We act on it as
 * root, and the directory above it may be writable by others (a bpffs mounted mode=1777, a
 * delegated or container bpffs), so it is opened once without following symlinks, checked
 * (on bpffs, a directory, ours alone, not a bpffs mount's root), and from then on every
 * operation goes through that open directory: *at() calls on its fd, and for the bpf()
 * calls, which take only paths, /proc/self/fd/N/NAME, which the kernel resolves to the very
 * directory we checked. Nothing is ever looked up through the path string again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include "pins.h"
#include "pins_int.h"

const char *const pin_subdirs[PIN_SUB__MAX] = { "links", "progs", "maps" };

const char *pin_dir = BPFREDIR_DEFAULT_PIN_DIR;

struct pins_state pins = { .parent = -1, .dir = -1, .sub = { -1, -1, -1 } };

int sub_index(const char *sub)
{
	int i;

	for (i = 0; i < PIN_SUB__MAX; i++)
		if (!strcmp(sub, pin_subdirs[i]))
			return i;
	return -1;
}

int pin_path(char *buf, size_t size, const char *sub, const char *name)
{
	int fd = pins.dir, n;

	if (sub) {
		int i = sub_index(sub);

		if (i < 0)
			return -EINVAL;
		fd = pins.sub[i];
	}
	if (fd < 0)
		return -EBADF;
	if (name)
		n = snprintf(buf, size, "/proc/self/fd/%d/%s", fd, name);
	else
		n = snprintf(buf, size, "/proc/self/fd/%d", fd);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int pin_dir_fd(const char *sub)
{
	int i = sub ? sub_index(sub) : -1;

	return sub ? (i < 0 ? -1 : pins.sub[i]) : pins.dir;
}

bool pin_exists(const char *sub, const char *name)
{
	struct stat st;
	int fd = pin_dir_fd(sub);

	return fd >= 0 && !fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW);
}

int pin_unlink(const char *sub, const char *name)
{
	int fd = pin_dir_fd(sub);

	if (fd < 0)
		return -EBADF;
	return unlinkat(fd, name, 0) && errno != ENOENT ? -errno : 0;
}

DIR *pin_opendir(const char *sub)
{
	int fd = pin_dir_fd(sub), dup_fd;
	DIR *dir;

	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	/* fdopendir owns its fd and reads from its offset: a fresh open of the same directory. */
	dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dup_fd < 0)
		return NULL;
	dir = fdopendir(dup_fd);
	if (!dir)
		close(dup_fd);
	return dir;
}

void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void pins_close(void)
{
	int i;

	for (i = 0; i < PIN_SUB__MAX; i++)
		close_fd(&pins.sub[i]);
	close_fd(&pins.dir); /* drops the lock with it */
	close_fd(&pins.parent);
	pins.locked = false;
}

const char *pin_display(const char *sub, const char *name)
{
	static char buf[PATH_MAX + 2 * NAME_MAX];

	snprintf(buf, sizeof(buf), "%s%s%s%s%s", pin_dir, sub ? "/" : "", sub ?: "",
		 name ? "/" : "", name ?: "");
	return buf;
}

bool is_loaded(void)
{
	return pin_exists("maps", "policy");
}

/* Unlink every entry of one subdir, then the subdir. Only names are removed (unlinkat never
 * follows a symlink, and a directory inside is left, failing the rmdir after). */
static int remove_sub(int i)
{
	struct dirent *de;
	int err = 0, fd;
	DIR *dir;

	if (pins.sub[i] < 0)
		return 0;
	fd = openat(pins.sub[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(pins.sub[i], de->d_name, 0) && errno != ENOENT)
			err = -errno;
	}
	closedir(dir);
	if (!err && unlinkat(pins.dir, pin_subdirs[i], AT_REMOVEDIR) && errno != ENOENT)
		err = -errno;
	if (!err)
		close_fd(&pins.sub[i]);
	return err;
}

/* The marker first, so an unload cut short reads as not loaded and is finished by the next
 * command; then links, whose pins are their last references, so they detach at once. */
int pins_remove_all(bool keep_dir)
{
	int i, err;

	err = pin_unlink("maps", "policy");
	if (err && err != -EBADF)
		return err;
	for (i = 0; i < PIN_SUB__MAX; i++) {
		err = remove_sub(i);
		if (err)
			return err;
	}
	if (keep_dir)
		return 0;
	if (unlinkat(pins.parent, pins.base, AT_REMOVEDIR) && errno != ENOENT)
		return -errno;
	return 0;
}

bool pins_any_subdir(void)
{
	int i;

	for (i = 0; i < PIN_SUB__MAX; i++)
		if (pins.sub[i] >= 0)
			return true;
	return false;
}

void pin_txn_init(struct pin_txn *txn)
{
	txn->n = 0;
}

int pin_link_fd(struct pin_txn *txn, int fd, const char *path)
{
	int err = 0;

	if (!txn) {
		if (bpf_obj_pin(fd, path))
			err = -errno;
		close(fd);
		return err;
	}
	if (txn->n == PIN_TXN_MAX || !(txn->paths[txn->n] = strdup(path))) {
		close(fd);
		return -ENOMEM;
	}
	txn->fds[txn->n++] = fd;
	return 0;
}

int pin_txn_commit(struct pin_txn *txn)
{
	int i;

	for (i = 0; i < txn->n; i++)
		if (bpf_obj_pin(txn->fds[i], txn->paths[i]))
			return -errno;
	return 0;
}

void pin_txn_end(struct pin_txn *txn)
{
	int i;

	for (i = 0; i < txn->n; i++) {
		close(txn->fds[i]);
		free(txn->paths[i]);
	}
	txn->n = 0;
}
