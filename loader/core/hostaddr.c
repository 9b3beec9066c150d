// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The host's own addresses, for the datapath: local_addrs (each address, with how many
 * entries of addr_holders name it) and addr_holders (each address the kernel holds, named as
 * its address notifications name it). bpf/addrwatch.bpf.c follows those notifications from
 * where a sync left off: an address goes from local_addrs only with its last holder, even when
 * several interfaces have it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include "cache_gen.h"
#include "hostaddr.h"
#include "mapsync.h"
#include "scan.h"

struct holders {
	struct redir_addr_holder *h;
	size_t n, cap;
	/* The IPv4 broadcast addresses the kernel makes routes for with these addresses. */
	struct redir_local_addr brd[BPFREDIR_MAX_LOCAL_ADDRS];
	size_t n_brd;
};

/* The addresses of the last sync, for local_addrs_error(). */
static size_t seen_addrs, seen_holders;

/* One address of an RTM_GETADDR dump, named as the kernel's notification for it names it
 * (bpf/addrwatch.bpf.c): IPv4 by ifa_local, ifa_prefixlen and ifa_address (IFA_LOCAL and
 * IFA_ADDRESS, each sent only when not 0); IPv6 by its address (IFA_LOCAL when it has a
 * peer, then in IFA_ADDRESS; else IFA_ADDRESS). */
static void broadcast_add(struct holders *hs, __be32 v4)
{
	struct redir_local_addr brd = {};
	size_t i;

	addr_map_v4(brd.addr, &(struct in_addr){ .s_addr = v4 });
	for (i = 0; i < hs->n_brd; i++)
		if (!memcmp(&hs->brd[i], &brd, sizeof(brd)))
			return;
	if (hs->n_brd < BPFREDIR_MAX_LOCAL_ADDRS)
		hs->brd[hs->n_brd++] = brd;
}

/* What the kernel's broadcast routes for an IPv4 address cover (fib_add_ifaddr): its brd,
 * and its prefix's all-ones address when the prefix is shorter than /31. */
static void broadcasts_of(struct holders *hs, const struct ifaddrmsg *ifa, const void *local,
			  const void *brd)
{
	__be32 addr, mask;

	if (brd)
		broadcast_add(hs, *(const __be32 *)brd);
	if (!local || ifa->ifa_prefixlen >= 31)
		return;
	memcpy(&addr, local, sizeof(addr));
	mask = htonl(ifa->ifa_prefixlen ? ~0U << (32 - ifa->ifa_prefixlen) : 0);
	broadcast_add(hs, addr | ~mask);
}

static bool holder_of(struct holders *hs, const struct nlmsghdr *nh, struct redir_addr_holder *h)
{
	const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
	const void *local = NULL, *address = NULL, *brd = NULL;
	int len = IFA_PAYLOAD(nh);
	const struct rtattr *rta;

	for (rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type == IFA_LOCAL)
			local = RTA_DATA(rta);
		else if (rta->rta_type == IFA_ADDRESS)
			address = RTA_DATA(rta);
		else if (rta->rta_type == IFA_BROADCAST)
			brd = RTA_DATA(rta);
	}
	if (ifa->ifa_family == AF_INET)
		broadcasts_of(hs, ifa, local, brd);
	memset(h, 0, sizeof(*h));
	h->ifindex = ifa->ifa_index;
	if (ifa->ifa_family == AF_INET && local) {
		addr_map_v4(h->addr, local);
		if (address)
			memcpy(&h->peer4, address, sizeof(h->peer4));
		h->prefixlen = ifa->ifa_prefixlen;
		return true;
	}
	if (ifa->ifa_family == AF_INET6 && (local || address)) {
		memcpy(h->addr, local ? local : address, sizeof(h->addr));
		return true;
	}
	return false;
}

static int holders_add(struct holders *hs, const struct redir_addr_holder *h)
{
	if (hs->n == hs->cap) {
		size_t cap = hs->cap ? 2 * hs->cap : 256;
		struct redir_addr_holder *more = realloc(hs->h, cap * sizeof(*more));

		if (!more)
			return -ENOMEM;
		hs->h = more;
		hs->cap = cap;
	}
	hs->h[hs->n++] = *h;
	return 0;
}

/* Every address of every interface in this network namespace, from an RTM_GETADDR dump. */
static int dump_addrs(struct holders *hs)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
	} req = {
		.nh = { .nlmsg_len = sizeof(req),
			.nlmsg_type = RTM_GETADDR,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nlmsg_seq = 1 },
		.ifa = { .ifa_family = AF_UNSPEC },
	};
	static char buf[32768];
	struct redir_addr_holder h;
	int fd, err = 0, done = 0;
	struct nlmsghdr *nh;
	ssize_t got;
	int len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, sizeof(req), 0) < 0)
		err = -errno;
	while (!err && !done) {
		got = recv(fd, buf, sizeof(buf), 0);
		if (got <= 0) {
			err = got == 0 ? -EIO : errno == EINTR ? 0 : -errno;
			continue;
		}
		len = got;
		for (nh = (struct nlmsghdr *)buf; !err && NLMSG_OK(nh, len);
		     nh = NLMSG_NEXT(nh, len)) {
			if (nh->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);

				err = e->error ? e->error : -EIO;
			} else if (nh->nlmsg_type == RTM_NEWADDR && holder_of(hs, nh, &h)) {
				err = holders_add(hs, &h);
			}
		}
	}
	close(fd);
	return err;
}

static int holder_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct redir_addr_holder));
}

int sync_local_addrs(int addrs_fd, int holders_fd, int gen_fd)
{
	static struct redir_local_addr addrs[BPFREDIR_MAX_LOCAL_ADDRS];
	static __u32 counts[BPFREDIR_MAX_LOCAL_ADDRS];
	const __u8 unused = 0;
	static struct holders hs;
	size_t n_addrs = 0, n_holders = 0, i, j;
	int err;

	hs.n = hs.n_brd = 0;
	err = dump_addrs(&hs);
	if (err)
		goto out;
	/* Sorted, so each address's holders are together, and what fits when not all do is the
	 * same every time. */
	qsort(hs.h, hs.n, sizeof(*hs.h), holder_cmp);
	seen_addrs = 0;
	seen_holders = hs.n;
	for (i = 0; i < hs.n; i = j) {
		for (j = i + 1; j < hs.n && !memcmp(hs.h[j].addr, hs.h[i].addr, BPFREDIR_ADDR_LEN);
		     j++)
			;
		seen_addrs++;
		if (n_addrs == BPFREDIR_MAX_LOCAL_ADDRS ||
		    n_holders + (j - i) > BPFREDIR_MAX_ADDR_HOLDERS)
			continue;
		memcpy(addrs[n_addrs].addr, hs.h[i].addr, BPFREDIR_ADDR_LEN);
		counts[n_addrs++] = j - i;
		memmove(&hs.h[n_holders], &hs.h[i], (j - i) * sizeof(*hs.h));
		n_holders += j - i;
	}
	/* The broadcast addresses that are no address of the host's own: for the datapath. */
	for (i = 0; i < hs.n_brd && n_addrs < BPFREDIR_MAX_LOCAL_ADDRS; i++) {
		for (j = 0; j < n_addrs && memcmp(&addrs[j], &hs.brd[i], sizeof(addrs[j])); j++)
			;
		if (j < n_addrs)
			continue;
		addrs[n_addrs] = hs.brd[i];
		counts[n_addrs++] = LOCAL_ADDR_BROADCAST;
	}
	/* Holders first: an address never counts holders its table lacks. */
	err = map_set_exactly(holders_fd, hs.h, sizeof(*hs.h), &unused, 0, n_holders, false, NULL);
	if (!err)
		err = map_set_exactly(addrs_fd, addrs, sizeof(addrs[0]), counts, sizeof(counts[0]),
				      n_addrs, false, NULL);
	/* Whatever the writes changed, the datapath's cached answers go (addr_cache). */
	if (!err)
		err = cache_gen_bump(gen_fd);
	if (!err && n_addrs < seen_addrs)
		err = -EOVERFLOW;
out:
	free(hs.h);
	hs.h = NULL;
	hs.cap = 0;
	return err;
}

const char *local_addrs_error(int err)
{
	static char msg[256];

	if (err != -EOVERFLOW)
		return strerror(-err);
	snprintf(msg, sizeof(msg),
		 "this host has %zu local addresses (%zu with their interfaces), more than the "
		 "local-address maps hold (%d, %d): the socket hooks would not count the others "
		 "as local, neither redirecting nor refusing (--hide-local) connections to them",
		 seen_addrs, seen_holders, BPFREDIR_MAX_LOCAL_ADDRS, BPFREDIR_MAX_ADDR_HOLDERS);
	return msg;
}
