// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An interface's attachment: tcx links (pinned), or legacy tc filters where the kernel has no
 * tcx (attach_tc.c), and in XDP mode an XDP link for ingress (attach_xdp.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "iface.h"
#include "log.h"
#include "pins.h"

int iface_mode_of(int ifindex)
{
	if (xdp_attached(IFACE_XDP, ifindex))
		return IFACE_XDP;
	if (xdp_attached(IFACE_XDP_GENERIC, ifindex))
		return IFACE_XDP_GENERIC;
	return iface_attached(ifindex) ? IFACE_TC : -1;
}

/* XDP for ingress, then TC egress as attach says; both or neither. */
int attach_iface_xdp(struct pin_txn *txn, int ifindex, const char *ifname, const int tc_prog_fds[2],
		     int xdp_fd, enum iface_mode mode, enum attach_mode attach)
{
	const int egress_only[2] = { -1, tc_prog_fds[1] };
	int err = xdp_attach(txn, ifindex, ifname, xdp_fd, mode);

	if (err)
		return err;
	err = attach_iface(txn, ifindex, ifname, egress_only, attach);
	if (err)
		detach_xdp(ifindex);
	return err;
}

/* Attached and still so: pins alone may outlive their attachment. */
bool iface_attached(int ifindex)
{
	int map_fd = open_tc_legacy_map();
	bool legacy = tc_legacy_attached(map_fd, ifindex);

	if (map_fd >= 0)
		close(map_fd);
	return legacy || pin_link_alive(pin_link_name(LINK_TCX_INGRESS, ifindex, NULL)) ||
	       pin_link_alive(pin_link_name(LINK_TCX_EGRESS, ifindex, NULL));
}

static void detach_tcx(int ifindex)
{
	/* Removing a link's pin, its last reference, detaches the program. */
	pin_unlink("links", pin_link_name(LINK_TCX_INGRESS, ifindex, NULL));
	pin_unlink("links", pin_link_name(LINK_TCX_EGRESS, ifindex, NULL));
}

void detach_iface(int ifindex)
{
	int map_fd = open_tc_legacy_map();

	if (map_fd >= 0) {
		tc_legacy_detach(map_fd, ifindex);
		close(map_fd);
	}
	detach_xdp(ifindex);
	detach_tcx(ifindex);
}

static int attach_legacy(int ifindex, const char *ifname, const int tc_prog_fds[2])
{
	int map_fd = open_tc_legacy_map(), err;

	if (map_fd < 0)
		return pr_warn_err(map_fd, "cannot open the tc_legacy map: %s", strerror(-map_fd));
	err = tc_legacy_attach(map_fd, ifindex, tc_prog_fds, 0);
	close(map_fd);
	if (err)
		return pr_warn_err(err, "cannot attach to interface %s with tc: %s", ifname,
				   strerror(-err));
	return 0;
}

/* The TC programs for interface ifindex: given[] (bpfredir_tc_in/eg, or -1 for a hook left
 * out), or on an L3 device the pinned variants that parse from the IP header, opened into
 * l3_fds[] for the caller to close. */
static int tc_progs_for(int ifindex, const int given[2], int l3_fds[2], const int **fds)
{
	static const char *const l3_names[2] = { L3_IN_PROG_NAME, L3_EG_PROG_NAME };
	int kind = iface_kind(ifindex, NULL), i;

	*fds = given;
	if (kind != IFACE_KIND_L3)
		return kind < 0 ? kind : 0;
	for (i = 0; i < 2; i++) {
		if (given[i] < 0)
			continue;
		l3_fds[i] = open_pinned_prog(l3_names[i]);
		if (l3_fds[i] < 0)
			return l3_fds[i];
	}
	*fds = l3_fds;
	return 0;
}

/* Ingress and egress, or neither, each at the head of its tcx chain. Ingress first, so no
 * program before it can let a packet reach a hidden port or see the public port of one it
 * would have translated. Egress first too: a program ahead of it that returned TCX_PASS
 * would end the chain before us and the reply would leave from the hidden port. Our
 * programs return TCX_NEXT for what they pass, so every later program still sees every
 * packet, the replies as they leave (with the public port, as after the recipe's NAT). */
static int attach_iface_progs(struct pin_txn *txn, int ifindex, const char *ifname,
			      const int tc_prog_fds[2], enum attach_mode mode);

int attach_iface(struct pin_txn *txn, int ifindex, const char *ifname, const int tc_prog_fds[2],
		 enum attach_mode mode)
{
	int l3_fds[2] = { -1, -1 }, ret;
	const int *fds;

	ret = tc_progs_for(ifindex, tc_prog_fds, l3_fds, &fds);
	if (ret)
		ret = pr_warn_err(ret, "cannot attach to interface %s: %s", ifname, strerror(-ret));
	else
		ret = attach_iface_progs(txn, ifindex, ifname, fds, mode);
	close_fds(l3_fds, 2);
	return ret;
}

static int attach_iface_progs(struct pin_txn *txn, int ifindex, const char *ifname,
			      const int tc_prog_fds[2], enum attach_mode mode)
{
	static const struct {
		enum pin_link_kind link;
		enum bpf_attach_type type;
		__u32 where;
	} hooks[] = { { LINK_TCX_INGRESS, BPF_TCX_INGRESS, BPF_F_BEFORE },
		      { LINK_TCX_EGRESS, BPF_TCX_EGRESS, BPF_F_BEFORE } };
	char path[PATH_MAX];
	int i, link_fd, err = 0;

	if (mode == ATTACH_TC)
		return attach_legacy(ifindex, ifname, tc_prog_fds);
	for (i = 0; i < 2 && !err; i++) {
		LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = hooks[i].where);

		/* No ingress program: XDP does ingress (attach_iface_xdp). */
		if (tc_prog_fds[i] < 0)
			continue;
		link_fd = bpf_link_create(tc_prog_fds[i], ifindex, hooks[i].type, &opts);
		if (link_fd < 0) {
			err = -errno;
			break;
		}
		err = pin_path(path, sizeof(path), "links",
			       pin_link_name(hooks[i].link, ifindex, NULL));
		if (err)
			close(link_fd);
		else
			err = pin_link_fd(txn, link_fd, path);
	}
	if (err) {
		/* Only what this call attached: in XDP mode the XDP link stays. */
		detach_tcx(ifindex);
		/* A kernel before 6.6 has no tcx: fall back to a clsact qdisc. */
		if (mode == ATTACH_AUTO &&
		    (err == -EINVAL || err == -EOPNOTSUPP || err == -ENOTSUPP_KERNEL))
			return attach_legacy(ifindex, ifname, tc_prog_fds);
		return pr_warn_err(err, "cannot attach to interface %s: %s", ifname,
				   strerror(-err));
	}
	return 0;
}

int iface_attach(struct pin_txn *txn, int ifindex, const char *ifname, const int tc_prog_fds[2],
		 int xdp_fd, enum iface_mode mode, enum attach_mode attach)
{
	/* What is left of an attachment that is gone goes first: it holds the names. */
	detach_iface(ifindex);
	if (mode == IFACE_TC)
		return attach_iface(txn, ifindex, ifname, tc_prog_fds, attach);
	return attach_iface_xdp(txn, ifindex, ifname, tc_prog_fds, xdp_fd, mode, attach);
}

/* sk_lookup programs attach to the network namespace the loader runs in. */
int attach_netns_sk_lookup(int prog_fd, int *fd)
{
	int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), err = 0;

	if (netns < 0)
		return -errno;
	*fd = bpf_link_create(prog_fd, netns, BPF_SK_LOOKUP, NULL);
	if (*fd < 0)
		err = -errno;
	close(netns);
	return err;
}
