/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Network namespaces for the unit tests. Under BPF_PROG_TEST_RUN the skb's device is the
 * loopback of the calling task's network namespace, so the FIB that dest_is_local() asks is
 * that namespace's. Each test binary therefore runs in namespaces of its own:
 *
 * - netns_enter_fresh(): a new, empty namespace with lo up. It does not forward, so the FIB
 *   lookup answers FWD_DISABLED and the local-address map (which each test fills) decides
 *   what is this host's;
 * - netns_setup_scope(), after it: forwarding on, the server addresses of pktbuild.h
 *   (198.51.100.1, 2001:db8:1::1) on lo, and the prefixes of the stranger
 *   (203.0.113.0/24, 2001:db8:2::/64) routed out of a veth pair, so they are forwarded;
 *   so are the tunneled host's (203.0.113.192/26, 2001:db8:3::/64), through routes with
 *   lightweight-tunnel encapsulation (IP tunnel metadata, SRv6), for which the FIB lookup
 *   answers UNSUPP_LWT; a kernel without one of those gets a plain route instead (struct
 *   netns_scope says which). Any other destination has no route and still counts as local;
 * - netns_setup_default_route(), after netns_enter_fresh(): forwarding on, the server
 *   addresses on lo and a default route, so every other unicast destination is forwarded.
 *
 * Nothing here outlives the process: the namespaces are anonymous (never named under
 * /run/netns) and the veth pair lives inside one, so both vanish with the last task in it.
 * netns_teardown_scope() deletes the veth pair early anyway.
 *
 * Needs _GNU_SOURCE (unshare) defined before the first include of the test.
 */
#ifndef NETNS_H
#define NETNS_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdarg.h>

#define NETNS_LOCAL_V4 "198.51.100.1"	   /* HOST_SERVER of pktbuild.h */
#define NETNS_LOCAL_V6 "2001:db8:1::1"	   /* HOST_SERVER of pktbuild.h */
#define NETNS_FWD_V4 "203.0.113.0/24"	   /* holds HOST_STRANGER of pktbuild.h */
#define NETNS_FWD_V6 "2001:db8:2::/64"	   /* holds HOST_STRANGER of pktbuild.h */
#define NETNS_TUNNEL_V4 "203.0.113.192/26" /* holds HOST_TUNNELED of pktbuild.h */
#define NETNS_TUNNEL_V6 "2001:db8:3::/64"  /* holds HOST_TUNNELED of pktbuild.h */
#define NETNS_VETH "bpfredir-fw0"
#define NETNS_VETH_PEER "bpfredir-fw1"

/* Say in why[n] what went wrong; -1 for the caller to pass up. These helpers serve the unit
 * tests and the benchmarks alike, so they leave the reporting to their caller. */
static inline int netns_why(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline int netns_why(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

static inline int netns_write(const char *path, const char *val, char *why, size_t n)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t len = strlen(val);

	if (fd < 0)
		return netns_why(why, n, "open %s: %s", path, strerror(errno));
	if (write(fd, val, len) != len) {
		int err = errno;

		close(fd);
		return netns_why(why, n, "write %s to %s: %s", val, path, strerror(err));
	}
	return close(fd) ? netns_why(why, n, "close %s: %s", path, strerror(errno)) : 0;
}

/* Run CMD (iproute2) in the current namespace, quietly; its stderr goes into WHY on error. */
static inline int netns_run(const char *cmd, char *why, size_t n)
{
	char line[512], err[160] = "";
	FILE *f;
	int rc;

	snprintf(line, sizeof(line), "%s 2>&1 >/dev/null", cmd);
	f = popen(line, "r");
	if (!f)
		return netns_why(why, n, "popen %s: %s", cmd, strerror(errno));
	if (!fgets(err, sizeof(err), f))
		err[0] = '\0';
	while (fgets(line, sizeof(line), f))
		;
	rc = pclose(f);
	if (rc) {
		err[strcspn(err, "\n")] = '\0';
		return netns_why(why, n, "'%s' failed (status %d): %s", cmd, rc, err);
	}
	return 0;
}

static inline int netns_link_up(const char *ifname, char *why, size_t n)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (fd < 0)
		return netns_why(why, n, "socket: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		ret = netns_why(why, n, "SIOCGIFFLAGS %s: %s", ifname, strerror(errno));
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr))
			ret = netns_why(why, n, "SIOCSIFFLAGS %s: %s", ifname, strerror(errno));
	}
	close(fd);
	return ret;
}

/* Leave the current network namespace for a new, empty one with lo up; forwarding is off
 * there. The namespace left behind goes away with its last user. */
static inline int netns_enter_fresh(char *why, size_t n)
{
	if (unshare(CLONE_NEWNET))
		return netns_why(why, n, "unshare(CLONE_NEWNET): %s", strerror(errno));
	/* A new namespace takes IPv4 forwarding from the host's (devconf_inherit_init_net 0):
	 * a host that forwards (a container runtime's bridge turns it on) would forward here. */
	if (netns_write("/proc/sys/net/ipv4/ip_forward", "0", why, n) ||
	    netns_write("/proc/sys/net/ipv6/conf/all/forwarding", "0", why, n))
		return -1;
	return netns_link_up("lo", why, n);
}

/* The encapsulating routes of netns_setup_scope(), one per family; each needs its own LWT
 * type in the kernel (CONFIG_NET_IP_TUNNEL, CONFIG_IPV6_SEG6_LWTUNNEL). */
static const struct netns_encap {
	const char *feature; /* what a kernel without it lacks, for SKIP lines */
	const char *encap_route;
	const char *plain_route;
} netns_encaps[] = {
	{ "ip lwt encap (ip route ... encap ip)",
	  "ip route add " NETNS_TUNNEL_V4 " encap ip id 100 dst 192.0.2.1 dev " NETNS_VETH,
	  "ip route add " NETNS_TUNNEL_V4 " dev " NETNS_VETH },
	{ "seg6 lwt encap (ip -6 route ... encap seg6)",
	  "ip -6 route add " NETNS_TUNNEL_V6
	  " encap seg6 mode encap segs 2001:db8:2::1 dev " NETNS_VETH,
	  "ip -6 route add " NETNS_TUNNEL_V6 " dev " NETNS_VETH },
};

/* Which encapsulating routes netns_setup_scope() made: [0] IPv4 (encap ip), [1] IPv6 (seg6).
 * For one the kernel lacks, the tunneled host's prefix is routed plainly out of the veth
 * instead, so it is still forwarded; the cases about encapsulation are then not run. */
struct netns_scope {
	bool encap[2];
};

/* The feature a tunneled destination of family AF_INET or AF_INET6 needs, or NULL when the
 * scope has it. */
static inline const char *netns_encap_missing(const struct netns_scope *scope, int family)
{
	int i = family == AF_INET6;

	return scope->encap[i] ? NULL : netns_encaps[i].feature;
}

/* Forwarding on (v4 and v6) and cmds run, in the namespace entered. */
static inline int netns_forward(const char *const *cmds, size_t n_cmds, char *why, size_t n)
{
	size_t i;

	if (netns_write("/proc/sys/net/ipv4/ip_forward", "1", why, n) ||
	    netns_write("/proc/sys/net/ipv6/conf/all/forwarding", "1", why, n))
		return -1;
	for (i = 0; i < n_cmds; i++)
		if (netns_run(cmds[i], why, n))
			return -1;
	return 0;
}

/* In a namespace from netns_enter_fresh(): see the top of this file. Each encapsulation is
 * probed by adding its route: refused as not supported, it is missing (see struct
 * netns_scope); refused otherwise, the setup fails. */
static inline int netns_setup_scope(struct netns_scope *scope, char *why, size_t n)
{
	static const char *const cmds[] = {
		"ip addr add " NETNS_LOCAL_V4 "/32 dev lo",
		"ip -6 addr add " NETNS_LOCAL_V6 "/128 dev lo nodad",
		"ip link add " NETNS_VETH " type veth peer name " NETNS_VETH_PEER,
		"ip link set " NETNS_VETH " up",
		"ip link set " NETNS_VETH_PEER " up",
		"ip route add " NETNS_FWD_V4 " dev " NETNS_VETH,
		"ip -6 route add " NETNS_FWD_V6 " dev " NETNS_VETH,
	};
	size_t i;

	if (netns_forward(cmds, sizeof(cmds) / sizeof(cmds[0]), why, n))
		return -1;
	for (i = 0; i < sizeof(netns_encaps) / sizeof(netns_encaps[0]); i++) {
		scope->encap[i] = !netns_run(netns_encaps[i].encap_route, why, n);
		/* iproute2 passes the kernel's "lwt encapsulation type not supported". */
		if (!scope->encap[i] && !strstr(why, "not supported"))
			return -1;
		if (!scope->encap[i] && netns_run(netns_encaps[i].plain_route, why, n))
			return -1;
	}
	return 0;
}

/* In a namespace from netns_enter_fresh(): forwarding on, the server addresses on lo and a
 * default route (v4 and v6) out of a veth pair, as on a router or a container host. Plain
 * routes only: this needs no lightweight-tunnel support. */
static inline int netns_setup_default_route(char *why, size_t n)
{
	static const char *const cmds[] = {
		"ip addr add " NETNS_LOCAL_V4 "/32 dev lo",
		"ip -6 addr add " NETNS_LOCAL_V6 "/128 dev lo nodad",
		"ip link add " NETNS_VETH " type veth peer name " NETNS_VETH_PEER,
		"ip link set " NETNS_VETH " up",
		"ip link set " NETNS_VETH_PEER " up",
		"ip route add default dev " NETNS_VETH,
		"ip -6 route add default dev " NETNS_VETH,
	};

	return netns_forward(cmds, sizeof(cmds) / sizeof(cmds[0]), why, n);
}

/* Best effort: the pair would vanish with the namespace anyway. */
static inline void netns_teardown_scope(void)
{
	char why[256];

	netns_run("ip link del " NETNS_VETH, why, sizeof(why));
}

#endif /* NETNS_H */
