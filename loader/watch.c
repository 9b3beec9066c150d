// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* watch: keep the local-address map current from rtnetlink address events, for kernels that
 * refuse the fentry programs load tries first (lockdown, sandboxes). It is the one bpfredir
 * process that stays running, and only for this. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
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
	err = sync_local_addrs(maps.local_addrs, maps.addr_holders);
	close_pinned_maps(&maps);
	pins_close();
	if (err)
		fail("cannot record local addresses: %s", local_addrs_error(err));
	return err ? -1 : 0;
}

int do_watch(int argc, char **argv)
{
	struct sockaddr_nl local = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	char buf[16384];
	struct pollfd pfd;
	int ret, fd, n;

	ret = parse_common_only(argc, argv);
	if (ret >= 0)
		return ret;
	if (require_root())
		return EXIT_FAIL;
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
		/* Drain the burst; ENOBUFS means we missed some, which a resync covers too. */
		while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0 || errno == ENOBUFS)
			;
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
