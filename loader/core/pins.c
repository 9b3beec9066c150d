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
#include <bpf/bpf.h>
#include "log.h"
#include "pins.h"
#include "scan.h"

/* How long a command waits for another one working on the same pin dir, unless
 * BPFREDIR_LOCK_TIMEOUT (seconds) says otherwise. */
#define LOCK_TIMEOUT_S 30
#define LOCK_POLL_MS 50

static const char *const pin_subdirs[PIN_SUB__MAX] = { "links", "progs", "maps" };

const char *pin_dir = BPFREDIR_DEFAULT_PIN_DIR;

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

static struct {
	int parent; /* the directory the pin dir is in */
	int dir;    /* the pin dir, checked */
	int sub[PIN_SUB__MAX];
	char base[NAME_MAX + 1];
	bool locked;
} pins = { .parent = -1, .dir = -1, .sub = { -1, -1, -1 } };

static int sub_index(const char *sub)
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

static void close_fd(int *fd)
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

/* Every link bpfredir pins, and its name under links/: the one place names are made and read
 * back. bpffs reserves '.' in names, so an ifindex stands in for names like eth0.100. */
static const struct {
	const char *prefix;
	bool numbered; /* PREFIX_<where>, and for cgroups PREFIX_<where>_<hook> */
} link_kinds[LINK__MAX] = {
	[LINK_TCX_INGRESS] = { "tcx_ingress", true },
	[LINK_TCX_EGRESS] = { "tcx_egress", true },
	[LINK_XDP_NATIVE] = { "xdp_native", true },
	[LINK_XDP_GENERIC] = { "xdp_generic", true },
	[LINK_CGROUP] = { "cgroup", true },
	[LINK_ADDRWATCH_V4] = { "addrwatch_v4", false },
	[LINK_ADDRWATCH_V6] = { "addrwatch_v6", false },
	[LINK_GUARD_NF4] = { "guard_nf4", false },
	[LINK_GUARD_NF6] = { "guard_nf6", false },
	[LINK_GUARD_SK_LOOKUP] = { "guard_sk_lookup", false },
};

const char *pin_link_name(enum pin_link_kind kind, __u64 where, const char *hook)
{
	static char name[NAME_MAX + 1];

	if (!link_kinds[kind].numbered)
		snprintf(name, sizeof(name), "%s", link_kinds[kind].prefix);
	else if (kind == LINK_CGROUP)
		snprintf(name, sizeof(name), "%s_%llu_%s", link_kinds[kind].prefix,
			 (unsigned long long)where, hook);
	else
		snprintf(name, sizeof(name), "%s_%llu", link_kinds[kind].prefix,
			 (unsigned long long)where);
	return name;
}

/* Strictly the inverse: decimal without sign or leading zeros, and for a cgroup a hook of
 * sock_hooks; false for any name pin_link_name() never makes. */
bool pin_link_parse(const char *name, struct pin_link *link)
{
	enum pin_link_kind kind;
	const char *p;
	char *end;
	size_t len;
	int i;

	for (kind = 0; kind < LINK__MAX; kind++) {
		len = strlen(link_kinds[kind].prefix);
		if (strncmp(name, link_kinds[kind].prefix, len))
			continue;
		link->kind = kind;
		link->where = 0;
		link->hook = NULL;
		if (!link_kinds[kind].numbered) {
			if (!name[len])
				return true;
			continue;
		}
		p = name + len;
		if (*p++ != '_' || *p < '1' || *p > '9')
			continue;
		errno = 0;
		link->where = strtoull(p, &end, 10);
		if (errno)
			continue;
		if (kind != LINK_CGROUP) {
			if (!*end)
				return true;
			continue;
		}
		if (*end != '_')
			continue;
		for (i = 0; i < N_SOCK_HOOKS; i++)
			if (!strcmp(end + 1, sock_hooks[i].suffix)) {
				link->hook = sock_hooks[i].suffix;
				return true;
			}
	}
	return false;
}

/* A link pin whose link is still attached: the kernel keeps a link whose interface or
 * cgroup went away, attached nowhere (index or id 0). */
bool pin_link_alive(const char *name)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	bool alive = false;
	int fd;

	if (pin_path(path, sizeof(path), "links", name))
		return false;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return false;
	if (!bpf_link_get_info_by_fd(fd, &info, &len))
		switch (info.type) {
		case BPF_LINK_TYPE_TCX:
			alive = info.tcx.ifindex;
			break;
		case BPF_LINK_TYPE_XDP:
			alive = info.xdp.ifindex;
			break;
		case BPF_LINK_TYPE_CGROUP:
			alive = info.cgroup.cgroup_id;
			break;
		default:
			alive = true;
		}
	close(fd);
	return alive;
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

/* Programs live in DIR/progs under their own names, for attach, apply and reload. */
int open_pinned_prog(const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (pin_path(path, sizeof(path), "progs", name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int open_pinned_tc_progs(int fds[2])
{
	const char *names[] = { TC_IN_PROG_NAME, TC_EG_PROG_NAME };
	int i;

	fds[0] = fds[1] = -1;
	for (i = 0; i < 2; i++) {
		fds[i] = open_pinned_prog(names[i]);
		if (fds[i] < 0)
			return fds[i];
	}
	return 0;
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
