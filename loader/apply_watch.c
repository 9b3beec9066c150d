// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* apply --watch: apply the file, then again whenever it changes, for as long as it runs. The
 * file's directory is watched, not the file: an editor writes a new file and renames it over
 * the old, and a Kubernetes ConfigMap volume swaps a symlink (..data) under a name that
 * itself never changes. Each apply runs in a child, as an operator's apply would, so a bad
 * file costs one line and the rules of the last good one stay in force. Stopping the watcher
 * is not unloading: the rules stay. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "loader.h"

/* Events of one change come in a burst (write, close, rename): wait this long for the rest. */
#define SETTLE_MS 200
/* Config files are small; one larger than this is read as unreadable, and so not applied. */
#define MAX_CONFIG (4 << 20)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

/* What decides whether the file changed: its bytes, and the owner and mode apply checks. */
struct file_seen {
	char *bytes; /* NULL: could not be read */
	size_t len;
	uid_t uid;
	mode_t mode;
	int err;
};

static void file_read(const char *path, struct file_seen *seen)
{
	struct stat st;
	ssize_t n;
	int fd;

	memset(seen, 0, sizeof(*seen));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		seen->err = errno;
		goto out;
	}
	seen->uid = st.st_uid;
	seen->mode = st.st_mode;
	seen->bytes = malloc(MAX_CONFIG);
	if (!seen->bytes) {
		seen->err = ENOMEM;
		goto out;
	}
	while (seen->len < MAX_CONFIG &&
	       (n = read(fd, seen->bytes + seen->len, MAX_CONFIG - seen->len)) > 0)
		seen->len += n;
	if (seen->len == MAX_CONFIG) {
		seen->err = EFBIG;
		free(seen->bytes);
		seen->bytes = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
}

static bool file_same(const struct file_seen *a, const struct file_seen *b)
{
	if (!a->bytes || !b->bytes)
		return !a->bytes && !b->bytes && a->err == b->err;
	return a->len == b->len && a->uid == b->uid && a->mode == b->mode &&
	       !memcmp(a->bytes, b->bytes, a->len);
}

/* systemd's notify protocol (sd_notify(3)), where a Type=notify unit runs the watcher. */
static void notify_systemd(const char *state)
{
	const char *socket_path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!socket_path || (socket_path[0] != '/' && socket_path[0] != '@') ||
	    strlen(socket_path) >= sizeof(addr.sun_path))
		return;
	strcpy(addr.sun_path, socket_path);
	if (addr.sun_path[0] == '@')
		addr.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + strlen(socket_path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
	close(fd);
}

/* One apply in a child process, its plan read back for the log line; its errors go to
 * stderr as they are (one line naming FILE:LINE:COLUMN for a bad file). */
static void apply_child(const char *path, int (*apply)(const void *arg), const void *arg)
{
	int pipe_fds[2], status, changes = 0;
	pid_t waited = -1;
	char line[512];
	pid_t pid;
	FILE *plan;

	fflush(stdout);
	if (pipe2(pipe_fds, O_CLOEXEC)) {
		fail("cannot apply %s: %s", path, strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		dup2(pipe_fds[1], STDOUT_FILENO);
		exit(apply(arg));
	}
	close(pipe_fds[1]);
	plan = fdopen(pipe_fds[0], "r");
	/* Read to the end, a signal or not: closing early would kill the apply (SIGPIPE). */
	while (plan) {
		if (fgets(line, sizeof(line), plan)) {
			changes += (line[0] == '+' || line[0] == '-') && line[1] == ' ';
			continue;
		}
		if (!ferror(plan) || errno != EINTR)
			break;
		clearerr(plan);
	}
	if (plan)
		fclose(plan);
	else
		close(pipe_fds[0]);
	/* A SIGTERM meanwhile stops the watching after this apply, not in its middle. */
	if (pid > 0)
		do
			waited = waitpid(pid, &status, 0);
		while (waited < 0 && errno == EINTR);
	if (waited < 0) {
		fail("cannot apply %s: %s", path, strerror(errno));
		return;
	}
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		printf("bpfredir apply: %s applied: %d change%s\n", path, changes,
		       changes == 1 ? "" : "s");
	else
		printf("bpfredir apply: %s not applied; the rules in force stay\n", path);
	fflush(stdout);
}

int apply_watch(const char *path, int (*apply)(const void *arg), const void *arg)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char dir_buf[PATH_MAX], events[4096];
	struct file_seen last, now;
	struct pollfd pfd;
	int n;

	if (snprintf(dir_buf, sizeof(dir_buf), "%s", path) >= (int)sizeof(dir_buf))
		return fail("path too long: %s", path);
	pfd.events = POLLIN;
	pfd.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (pfd.fd < 0 || inotify_add_watch(pfd.fd, dirname(dir_buf),
					    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
						    IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
		n = fail("cannot watch the directory of %s: %s", path, strerror(errno));
		if (pfd.fd >= 0)
			close(pfd.fd);
		return n;
	}
	/* No SA_RESTART: poll returns at once. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	file_read(path, &last);
	apply_child(path, apply, arg);
	notify_systemd("READY=1");
	while (!stop) {
		n = poll(&pfd, 1, -1);
		if (n < 0 && errno != EINTR) {
			fail("poll: %s", strerror(errno));
			break;
		}
		if (n <= 0)
			continue;
		do {
			while (read(pfd.fd, events, sizeof(events)) > 0)
				;
		} while (!stop && poll(&pfd, 1, SETTLE_MS) > 0);
		if (stop)
			break;
		file_read(path, &now);
		if (file_same(&now, &last)) {
			free(now.bytes);
			continue;
		}
		free(last.bytes);
		last = now;
		if (!now.bytes) {
			printf("bpfredir apply: cannot read %s: %s; the rules in force stay\n",
			       path, strerror(now.err));
			fflush(stdout);
			continue;
		}
		apply_child(path, apply, arg);
	}
	notify_systemd("STOPPING=1");
	printf("bpfredir apply: stopped watching %s; the rules in force stay\n", path);
	free(last.bytes);
	close(pfd.fd);
	return EXIT_OK;
}
