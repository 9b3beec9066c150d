// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Reading apply's file: only a regular file that root owns and only root can write, read
 * whole and checked as it is read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "config.h"

static const char *file_kind(mode_t mode)
{
	return S_ISDIR(mode)	? "a directory"
	       : S_ISFIFO(mode) ? "a FIFO"
	       : S_ISCHR(mode)	? "a character device"
	       : S_ISBLK(mode)	? "a block device"
	       : S_ISSOCK(mode) ? "a socket"
				: "not a regular file";
}

/* apply runs as root and the file decides what is hidden, so only a regular file root owns
 * and only root can write is read. The checks are on the file opened, which is what is
 * read: a symlink is followed, and can only lead to such a file (say /etc/bpfredir.conf
 * into a configuration-management tree); whoever can repoint it could as well have named
 * another such file. The directories on the way are not checked. */
static int check_file(const struct config *cfg, const struct stat *st)
{
	mode_t writable = st->st_mode & (S_IWGRP | S_IWOTH);
	char why[128];
	int n = 0;

	if (!S_ISREG(st->st_mode))
		return fail("%s is %s; apply reads only a regular file", cfg->path,
			    file_kind(st->st_mode));
	if (st->st_uid != 0)
		n = snprintf(why, sizeof(why), "owned by uid %u, not root", (unsigned)st->st_uid);
	if (writable)
		snprintf(why + n, sizeof(why) - n, "%smode %04o lets %s write it",
			 n ? ", and " : "", (unsigned)(st->st_mode & 07777),
			 writable == (S_IWGRP | S_IWOTH) ? "group and others"
			 : writable == S_IWGRP		 ? "its group"
							 : "others");
	if (st->st_uid != 0 || writable)
		return fail("%s: %s; apply reads only a file that root owns and only root can "
			    "write",
			    cfg->path, why);
	if (st->st_size > CONFIG_MAX_BYTES)
		return fail("%s is %lld bytes; a config file may have at most %d", cfg->path,
			    (long long)st->st_size, CONFIG_MAX_BYTES);
	return 0;
}

/* Could every user read the file opened as fd? Its mode must let others read it, and every
 * directory on its real path (as the kernel resolved it, symlinks and all) let them through:
 * a 0644 file in /root is no more readable than a 0600 one. When in doubt, no. */
bool readable_by_all(int fd, const struct stat *st)
{
	char link[32], path[PATH_MAX], *slash;
	struct stat dir;
	ssize_t n;

	if (!(st->st_mode & S_IROTH))
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/')
		return false;
	path[n] = '\0';
	do {
		slash = strrchr(path, '/');
		slash[slash == path] = '\0'; /* "/a/b" to "/a", "/a" to "/" */
		if (stat(path, &dir) || !(dir.st_mode & S_IXOTH))
			return false;
	} while (slash != path);
	return true;
}

/* The whole file, checked (check_file) and NUL-terminated, in *text. Every read error is
 * one: a file cut short by an error must not pass for a shorter file. */
int read_config(struct config *cfg, char **text, size_t *len)
{
	size_t got = 0;
	struct stat st;
	char *buf = NULL;
	int fd, flags, ret;
	ssize_t n;

	/* O_NONBLOCK: opening a FIFO waits for a writer otherwise, forever; O_NOCTTY: a
	 * terminal never becomes our controlling one. Then fstat, before a single read, so
	 * nothing but a regular file is read (/dev/zero would be read until memory runs out). */
	fd = open(cfg->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fail("cannot read %s: %s", cfg->path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = fail("cannot read %s: %s", cfg->path, strerror(errno));
		goto out;
	}
	ret = check_file(cfg, &st);
	if (ret)
		goto out;
	cfg->hide_words = !readable_by_all(fd, &st);
	/* Back to blocking reads, the normal way for a regular file: a filesystem that honours
	 * O_NONBLOCK (FUSE, say) could otherwise answer EAGAIN in the middle of the file. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)) {
		ret = fail("cannot read %s: %s", cfg->path, strerror(errno));
		goto out;
	}
	/* One byte over the cap tells a file that grew past it since fstat. */
	buf = malloc(CONFIG_MAX_BYTES + 2);
	if (!buf) {
		ret = fail("cannot read %s: %s", cfg->path, strerror(ENOMEM));
		goto out;
	}
	while (got <= CONFIG_MAX_BYTES) {
		n = read(fd, buf + got, CONFIG_MAX_BYTES + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = fail("cannot read %s: %s", cfg->path, strerror(errno));
			goto out;
		}
		if (!n)
			break;
		got += n;
	}
	if (got > CONFIG_MAX_BYTES) {
		ret = fail("%s grew past %d bytes while being read; a config file may have at most "
			   "%d",
			   cfg->path, CONFIG_MAX_BYTES, CONFIG_MAX_BYTES);
		goto out;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}
