// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Opening the pin dir: the path checked, bpffs found (or mounted at its usual place), the
 * directory opened without following symlinks and checked to be ours alone, locked, and
 * refused when it holds what bpfredir did not make. See pins.c for why. */
#define _GNU_SOURCE /* strchrnul */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include "attach.h"
#include "log.h"
#include "maps.h"
#include "pins_int.h"
#include "scan.h"

/* How long a command waits for another one working on the same pin dir, unless
 * BPFREDIR_LOCK_TIMEOUT (seconds) says otherwise. */
#define LOCK_TIMEOUT_S 30
#define LOCK_POLL_MS 50

/* --pin-dir names one directory below a bpffs mount: an absolute path without '.', '..' or
 * empty components, and not the mount itself. NULL when path is such a name, else why not. */
const char *pin_dir_problem(const char *path)
{
	size_t len = strlen(path);
	const char *p;

	if (path[0] != '/')
		return "must be an absolute path";
	if (len >= PATH_MAX)
		return "is too long";
	for (p = path; *p;) {
		const char *end = strchrnul(p + 1, '/');
		size_t n = end - (p + 1);

		if ((n == 1 && p[1] == '.') || (n == 2 && p[1] == '.' && p[2] == '.'))
			return "must not contain '.' or '..' components";
		if (n == 0)
			return *end ? "has an empty path component"
				    : "must name a directory below a bpffs mount (no trailing '/')";
		if (n > NAME_MAX)
			return "has a component longer than NAME_MAX";
		p = end;
	}
	return NULL;
}

/* Splits pin_dir into the parent's path and the last name. */
static int split_pin_dir(char *parent, size_t size)
{
	const char *why = pin_dir_problem(pin_dir), *last;

	if (why)
		return pr_warn_err(-EINVAL, "pin dir '%s' %s", pin_dir, why);
	last = strrchr(pin_dir, '/');
	snprintf(pins.base, sizeof(pins.base), "%s", last + 1);
	snprintf(parent, size, "%.*s", last == pin_dir ? 1 : (int)(last - pin_dir), pin_dir);
	return 0;
}

static bool fd_on_bpffs(int fd)
{
	struct statfs sfs;

	return !fstatfs(fd, &sfs) && sfs.f_type == BPF_FS_MAGIC;
}

/* Like bpftool: mount bpffs at its usual place when the system has not. Anywhere else the
 * caller chose the place and must have mounted it. */
static int open_parent(const char *parent, bool create)
{
	struct statfs sfs;
	int missing;

	pins.parent = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pins.parent >= 0 && fd_on_bpffs(pins.parent))
		return 0;
	missing = pins.parent < 0 && errno == ENOENT;
	close_fd(&pins.parent);
	/* Nothing can be loaded where no bpffs is yet; a load would mount it there. */
	if (!create && (missing || !strcmp(parent, BPFFS_DEFAULT_MOUNT)))
		return -ENOENT;
	if (!statfs(pin_dir, &sfs) && sfs.f_type == BPF_FS_MAGIC)
		return pr_warn_err(
			-EINVAL,
			"pin dir %s is the root of a bpffs mount; name a directory below "
			"it, such as %s",
			pin_dir, BPFREDIR_DEFAULT_PIN_DIR);
	if (!create || strcmp(parent, BPFFS_DEFAULT_MOUNT))
		return pr_warn_err(-EINVAL, "%s is not on a bpffs mount", parent);
	if (mount("bpf", BPFFS_DEFAULT_MOUNT, "bpf", 0, "mode=0700"))
		return pr_warn_err(-errno, "cannot mount bpffs at %s: %s", BPFFS_DEFAULT_MOUNT,
				   strerror(errno));
	pins.parent = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pins.parent < 0 || !fd_on_bpffs(pins.parent))
		return pr_warn_err(-EINVAL, "%s is not on a bpffs mount", parent);
	return 0;
}

/* Ours alone: a directory on the same bpffs as its parent (so not a mount's root), owned by
 * root (or the user we run as, when that is not root but holds the capabilities), and
 * neither group nor others may do anything in it. */
static int check_dir(int fd, const struct stat *parent_st, const char *what)
{
	struct stat st;
	uid_t euid = geteuid();

	if (fstat(fd, &st))
		return pr_warn_err(-errno, "cannot stat %s: %s", what, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return pr_warn_err(-ENOTDIR, "%s is not a directory", what);
	if (!fd_on_bpffs(fd) || st.st_dev != parent_st->st_dev)
		return pr_warn_err(
			-EINVAL, "%s must be a directory inside a bpffs mount, not a mount's root",
			what);
	if (st.st_uid != 0 && st.st_uid != euid)
		return pr_warn_err(-EPERM, "%s is owned by uid %u, not root; refusing to use it",
				   what, (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return pr_warn_err(-EPERM, "%s has mode %04o; it must be 0700 (root's alone)", what,
				   (unsigned)(st.st_mode & 07777));
	return 0;
}

/* Open NAME in dir_fd as a directory, never through a symlink; with create, make it (0700,
 * whatever the umask) when missing. */
static int open_subdir(int dir_fd, const char *name, bool create, const char *what)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dir_fd, name, 0700) && errno != EEXIST)
			return pr_warn_err(-errno, "cannot create %s: %s", what, strerror(errno));
		fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* Just made, so ours: only the umask may have taken bits away. */
		if (fd >= 0 && fchmod(fd, 0700)) {
			close(fd);
			return pr_warn_err(-errno, "cannot set mode 0700 on %s: %s", what,
					   strerror(errno));
		}
	}
	if (fd >= 0)
		return fd;
	if (errno == ENOENT)
		return -ENOENT;
	if (errno == ELOOP || errno == ENOTDIR)
		return pr_warn_err(-ENOTDIR,
				   "%s is a symlink or not a directory; refusing to use it", what);
	return pr_warn_err(-errno, "cannot open %s: %s", what, strerror(errno));
}

/* Anything in the pin dir that bpfredir does not make: refuse to touch or share it. */
static int check_foreign(void)
{
	struct dirent *de;
	int fd = openat(pins.dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return pr_warn_err(-errno, "cannot read %s: %s", pin_dir, strerror(errno));
	}
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (sub_index(de->d_name) < 0) {
			closedir(dir);
			return pr_warn_err(
				-EEXIST,
				"%s holds '%s', which bpfredir did not make; refusing to "
				"use it",
				pin_dir, de->d_name);
		}
	}
	closedir(dir);
	return 0;
}

/* Is the directory we hold still the one the path names? unload removes the pin dir while
 * others wait for its lock; they must not then work in a directory nobody can find. */
static bool still_named(void)
{
	struct stat held, named;

	return !fstat(pins.dir, &held) &&
	       !fstatat(pins.parent, pins.base, &named, AT_SYMLINK_NOFOLLOW) &&
	       held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Serialises bpfredir invocations on one pin dir: hidden entries and local addresses are
 * recomputed from the rules and the host, and two writers must not interleave. The lock
 * dies with the fd. 1 when the directory went away while we waited. */
static int lock_dir(void)
{
	const char *env = getenv("BPFREDIR_LOCK_TIMEOUT");
	unsigned long timeout_s = LOCK_TIMEOUT_S;
	long long deadline;

	if (env && !scan_uint(env, 0, 3600, &timeout_s))
		return pr_warn_err(-EINVAL,
				   "BPFREDIR_LOCK_TIMEOUT='%s' is not a number of seconds "
				   "(0-3600)",
				   env);
	deadline = now_ms() + timeout_s * 1000;

	while (flock(pins.dir, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK)
			return pr_warn_err(-errno, "cannot lock %s: %s", pin_dir, strerror(errno));
		if (now_ms() > deadline)
			return pr_warn_err(
				-EBUSY, "another bpfredir command has held %s for %lu s; try again",
				pin_dir, timeout_s);
		usleep(LOCK_POLL_MS * 1000);
	}
	return still_named() ? 0 : 1;
}

static int open_subdirs(bool create)
{
	struct stat dir_st;
	char what[PATH_MAX + 16];
	int i, fd, err;

	if (fstat(pins.dir, &dir_st))
		return -errno;
	for (i = 0; i < PIN_SUB__MAX; i++) {
		if (pins.sub[i] >= 0)
			continue;
		snprintf(what, sizeof(what), "%s/%s", pin_dir, pin_subdirs[i]);
		fd = open_subdir(pins.dir, pin_subdirs[i], create, what);
		if (fd == -ENOENT)
			continue; /* made by load; a pin dir can be without them */
		if (fd < 0)
			return fd;
		pins.sub[i] = fd;
		err = check_dir(fd, &dir_st, what);
		if (err)
			return err;
	}
	return 0;
}

/* Every command that may change the instance first forgets the cgroups removed since the
 * last one (containers that ended): nobody has to name them. A failure here is said and
 * the command goes on; the next one tries again. */
static void forget_removed_cgroups(void)
{
	int set_fd = live_set_open(), n;

	n = cgroups_forget_removed(set_fd);
	if (set_fd >= 0)
		close(set_fd);
	if (n < 0)
		pr_info("warning: cannot forget the removed cgroups in %s: %s", pin_dir,
			strerror(-n));
	else if (n > 0)
		pr_info("forgot %d removed cgroup%s", n, n == 1 ? "" : "s");
}

int pins_open(enum pins_mode mode)
{
	bool create = mode == PINS_CREATE;
	char parent[PATH_MAX];
	struct stat parent_st;
	int err, tries;

	pins_close();
	err = split_pin_dir(parent, sizeof(parent));
	if (err)
		return err;
	for (tries = 0; tries < 10; tries++) {
		err = open_parent(parent, create);
		if (err)
			return err;
		if (fstat(pins.parent, &parent_st)) {
			err = -errno;
			break;
		}
		err = open_subdir(pins.parent, pins.base, create, pin_dir);
		if (err < 0)
			break;
		pins.dir = err;
		err = check_dir(pins.dir, &parent_st, pin_dir);
		if (err)
			break;
		if (mode != PINS_READ) {
			err = lock_dir();
			if (err == 1) { /* removed while we waited: look again */
				pins_close();
				continue;
			}
			if (err)
				break;
			pins.locked = true;
		}
		/* load makes the subdirs (pins_make_subdirs): without the marker, subdirs
		 * found here are what an interrupted run left. */
		err = open_subdirs(false);
		if (!err && mode != PINS_READ)
			err = check_foreign();
		if (!err && mode != PINS_READ && is_loaded())
			forget_removed_cgroups();
		break;
	}
	if (tries == 10)
		err = pr_warn_err(-EAGAIN, "%s keeps being removed and made again; try again",
				  pin_dir);
	if (err)
		pins_close();
	return err;
}

int pins_make_subdirs(void)
{
	return open_subdirs(true);
}
