// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* watch: keep the local-address map current from rtnetlink address events, for kernels that
 * refuse the fentry programs load tries first (lockdown, sandboxes); with -f FILE, also apply
 * FILE again whenever an interface comes or goes, so one made again under its name (a VLAN,
 * bond or WireGuard device re-created) is attached again. It is the one bpfredir process
 * that stays running, and only for this. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include "loader.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

/* A full resync per burst of events: simpler than applying each message, and it cannot drift.
 * Returns 1 when the instance is gone. */
static bool still_loaded(void)
{
	bool loaded = !pins_open(PINS_READ) && is_loaded();

	pins_close();
	return loaded;
}

static int resync(void)
{
	struct pinned_maps maps;
	int err = pins_open(PINS_WRITE);

	if (err == -ENOENT || (!err && !is_loaded())) {
		pins_close();
		return 1;
	}
	if (err || open_pinned_maps(&maps)) {
		pins_close();
		return -1;
	}
	err = sync_local_addrs(maps.local_addrs, maps.addr_holders, maps.addrs_gen);
	close_pinned_maps(&maps);
	pins_close();
	if (err)
		fail("cannot record local addresses: %s", local_addrs_error(err));
	return err ? -1 : 0;
}

/* apply -f file, as its own process: what an operator's apply does, with its output. */
static void reapply(const char *file)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execl("/proc/self/exe", "bpfredir", "apply", "-f", file, "--pin-dir", pin_dir,
		      (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		fail("cannot apply %s again: %s", file, strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail("applying %s again after an interface change failed (status %d); still "
		     "watching",
		     file, status);
}

/* Did the burst in buf name an interface coming, going or changing? */
static bool link_event(const char *buf, int len)
{
	const struct nlmsghdr *nh;

	for (nh = (const void *)buf; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len))
		if (nh->nlmsg_type == RTM_NEWLINK || nh->nlmsg_type == RTM_DELLINK)
			return true;
	return false;
}

struct watch_args {
	const char *file; /* applied again when interfaces come or go; NULL: none */
};

static const struct opt watch_opts[] = {
	{ .name = "file",
	  .short_name = 'f',
	  .type = OPT_T_STRING,
	  .offset = offsetof(struct watch_args, file),
	  .synopsis = "[-f FILE]" },
	OPT_END,
};

static int watch_check(const void *cfg)
{
	const char *file = ((const struct watch_args *)cfg)->file;

	if (file && file[0] != '/')
		return usage_error("-f needs an absolute path ('%s'): apply runs it later", file);
	return -1;
}

/* Holds no pin dir open while it runs, so unload can go ahead: still_loaded() looks again. */
static int do_watch(struct instance *in, const void *cfg)
{
	struct sockaddr_nl local = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	const char *file = ((const struct watch_args *)cfg)->file;
	bool links = false;
	char buf[16384];
	struct pollfd pfd;
	int ret, fd, n, got;

	if (file)
		local.nl_groups |= RTMGRP_LINK;
	if (!still_loaded())
		return fail("not loaded at %s", pin_dir);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local))) {
		ret = fail("cannot listen for address changes: %s", strerror(errno));
		goto out;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Subscribe first, then sync: no change can fall between the two. */
	if (file)
		reapply(file);
	ret = resync();
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!ret && !stop) {
		/* Wake each second too, to stop soon after an unload with no address event. */
		n = poll(&pfd, 1, 1000);
		if (n < 0 && errno != EINTR) {
			ret = fail("poll: %s", strerror(errno));
			break;
		}
		if (n <= 0) {
			ret = still_loaded() ? 0 : 1;
			continue;
		}
		/* Drain the burst; ENOBUFS means we missed some, which a resync covers too (and
		 * with a file, an apply: what was missed may have been an interface). */
		links = false;
		while ((got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0 || errno == ENOBUFS)
			links |= got < 0 || link_event(buf, got);
		if (file && links)
			reapply(file);
		ret = resync();
	}
	if (ret == 1) {
		fprintf(stderr, "bpfredir watch: %s was unloaded; stopping\n", pin_dir);
		ret = 0;
	}
out:
	if (fd >= 0)
		close(fd);
	return ret ? EXIT_FAIL : EXIT_OK;
}

const struct cmd cmd_watch = {
	.name = "watch",
	.func = do_watch,
	.opts = watch_opts,
	.cfg_size = sizeof(struct watch_args),
	.needs = NEED_ROOT,
	.check = watch_check,
	.doc = "Stay running and keep the local-address map current from rtnetlink, where the\n"
	       "kernel refused load's fentry programs ('status' says which); stops at unload.\n"
	       "With -f FILE (an absolute path), also apply FILE again whenever an interface "
	       "comes\n"
	       "or goes, so one made again under its name is attached again.\n",
};
