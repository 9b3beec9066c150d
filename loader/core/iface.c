// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The device-type probe of iface.h. Read over rtnetlink by ifindex: sysfs shows the network
 * namespace of whoever mounted it, which `nsenter --net` does not change. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include "iface.h"

#define LINK_REPLY_MAX 16384

/* RTM_GETLINK for ifindex: its type and link-layer broadcast address. */
static int link_query(int ifindex, __u16 *type, __u8 *brd, size_t *brd_len)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		.nh.nlmsg_type = RTM_GETLINK,
		.nh.nlmsg_flags = NLM_F_REQUEST,
		.ifi.ifi_family = AF_UNSPEC,
		.ifi.ifi_index = ifindex,
	};
	static char buf[LINK_REPLY_MAX];
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct ifinfomsg *ifi;
	struct rtattr *rta;
	int fd, len, err = 0, rta_len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0)
		err = -errno;
	len = err ? -1 : recv(fd, buf, sizeof(buf), 0);
	if (!err && len < 0)
		err = -errno;
	close(fd);
	if (err)
		return err;
	if (!NLMSG_OK(nh, (unsigned int)len))
		return -EBADMSG;
	if (nh->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(nh);

		return e->error ? e->error : -EBADMSG;
	}
	if (nh->nlmsg_type != RTM_NEWLINK || nh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return -EBADMSG;
	ifi = NLMSG_DATA(nh);
	*type = ifi->ifi_type;
	*brd_len = 0;
	rta_len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi));
	for (rta = IFLA_RTA(ifi); RTA_OK(rta, rta_len); rta = RTA_NEXT(rta, rta_len)) {
		if (rta->rta_type != IFLA_BROADCAST || RTA_PAYLOAD(rta) > 16)
			continue;
		*brd_len = RTA_PAYLOAD(rta);
		memcpy(brd, RTA_DATA(rta), *brd_len);
	}
	return 0;
}

int iface_kind(int ifindex, __u16 *type)
{
	__u8 brd[16];
	size_t brd_len = 0;
	__u16 t = ARPHRD_VOID;
	int err = link_query(ifindex, &t, brd, &brd_len);

	if (err)
		return err;
	if (type)
		*type = t;
	return iface_kind_of(t, brd, brd_len);
}

/* The names of the types iface_kind_of() knows, and a few common ones it refuses. */
static const char *type_name(__u16 type)
{
	switch (type) {
	case ARPHRD_ETHER:
		return "ether";
	case ARPHRD_LOOPBACK:
		return "loopback";
	case ARPHRD_NONE:
		return "none";
	case ARPHRD_RAWIP:
		return "rawip";
	case ARPHRD_PPP:
		return "ppp";
	case ARPHRD_TUNNEL:
		return "ipip";
	case ARPHRD_TUNNEL6:
		return "tunnel6";
	case ARPHRD_SIT:
		return "sit";
	case ARPHRD_IPGRE:
		return "gre";
	case ARPHRD_IP6GRE:
		return "ip6gre";
	case ARPHRD_INFINIBAND:
		return "infiniband";
	case ARPHRD_IEEE80211_RADIOTAP:
		return "ieee802.11/radiotap";
	case ARPHRD_CAN:
		return "can";
	case ARPHRD_VOID:
		return "void";
	default:
		return "unknown";
	}
}

int iface_check(int ifindex, bool xdp, char *why, size_t n)
{
	__u16 type = ARPHRD_VOID;
	int kind = iface_kind(ifindex, &type);

	if (kind == -EPROTONOSUPPORT)
		snprintf(why, n,
			 "has device type %u (%s), which is neither Ethernet nor plain IP: "
			 "bpfredir cannot find the IP header in its packets",
			 type, type_name(type));
	else if (kind == -EADDRNOTAVAIL)
		snprintf(
			why, n,
			"is a GRE device (type %u, %s) without a fixed unicast remote: its packets "
			"reach TC behind the outer headers",
			type, type_name(type));
	else if (kind < 0)
		snprintf(why, n, "cannot be read: %s", strerror(-kind));
	else if (xdp && kind != IFACE_KIND_ETHER)
		snprintf(why, n,
			 "has device type %u (%s), no Ethernet header: XDP mode needs one (load "
			 "without --mode xdp)",
			 type, type_name(type));
	else
		return 0;
	return kind < 0 ? kind : -EPROTONOSUPPORT;
}
