// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP mode (load --mode xdp): the XDP program does ingress, TC egress (tcx, or a clsact
 * filter where the kernel has no tcx or --attach tc asks) still puts the public port back on
 * replies, and TC ingress is not attached (it would drop the translated packets as aimed at
 * the hidden port).
 *
 * The program is attached with a BPF XDP link, pinned like the tcx ones. A link never
 * replaces a program already at the hook, and the multi-program dispatcher of libxdp
 * cannot run where freplace programs are refused (docs/design.md, "XDP"), so a foreign XDP program
 * on the interface is an error, reported before anything is attached.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "log.h"
#include "pins.h"

const char *iface_mode_name(enum iface_mode mode)
{
	return mode == IFACE_XDP ? "xdp" : mode == IFACE_XDP_GENERIC ? "xdp-generic" : "tc";
}

/* The mode is in the link's name. */
static const char *xdp_link_name(enum iface_mode mode, int ifindex)
{
	return pin_link_name(mode == IFACE_XDP ? LINK_XDP_NATIVE : LINK_XDP_GENERIC, ifindex, NULL);
}

bool xdp_attached(enum iface_mode mode, int ifindex)
{
	return pin_link_alive(xdp_link_name(mode, ifindex));
}

void detach_xdp(int ifindex)
{
	/* The pin is the link's last reference: removing it detaches the program. */
	pin_unlink("links", xdp_link_name(IFACE_XDP, ifindex));
	pin_unlink("links", xdp_link_name(IFACE_XDP_GENERIC, ifindex));
}

/* A program at the interface's XDP hook (native, generic or offloaded) that this instance
 * did not attach: refuse, naming it. */
int xdp_check_foreign(int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), id;
	const char *where;
	int fd;

	if (bpf_xdp_query(ifindex, 0, &q))
		return pr_warn_err(-errno, "cannot query the XDP programs of interface %s: %s",
				   ifname, strerror(errno));
	id = q.drv_prog_id ?: q.skb_prog_id ?: q.hw_prog_id;
	if (!id)
		return 0;
	where = q.drv_prog_id ? "native" : q.skb_prog_id ? "generic" : "offloaded";
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0 || bpf_prog_get_info_by_fd(fd, &info, &len))
		snprintf((char *)info.name, sizeof(info.name), "?");
	if (fd >= 0)
		close(fd);
	return pr_warn_err(-EBUSY,
			   "interface %s already runs XDP program %u '%s' (%s); bpfredir does not "
			   "replace it: remove it, or load without --mode xdp",
			   ifname, id, info.name, where);
}

/* The XDP link alone; attach_iface_xdp (attach.c) adds TC egress. */
int xdp_attach(struct pin_txn *txn, int ifindex, const char *ifname, int xdp_fd,
	       enum iface_mode mode)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts,
		    .flags = mode == IFACE_XDP ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
	char path[PATH_MAX];
	int link_fd, err;

	err = xdp_check_foreign(ifindex, ifname);
	if (err)
		return err;
	link_fd = bpf_link_create(xdp_fd, ifindex, BPF_XDP, &opts);
	if (link_fd < 0) {
		err = -errno;
		/* Someone attached a program since the check above. */
		if (err == -EBUSY || err == -EEXIST)
			return xdp_check_foreign(ifindex, ifname)
				       ?: pr_warn_err(err, "cannot attach XDP to interface %s: %s",
						      ifname, strerror(-err));
		if (mode == IFACE_XDP && err == -EOPNOTSUPP)
			return pr_warn_err(
				err,
				"cannot attach native XDP to interface %s: %s (its driver "
				"may lack XDP support; --xdp-generic works on any interface)",
				ifname, strerror(-err));
		return pr_warn_err(err, "cannot attach XDP to interface %s: %s", ifname,
				   strerror(-err));
	}
	err = pin_path(path, sizeof(path), "links", xdp_link_name(mode, ifindex));
	if (err)
		close(link_fd);
	else
		err = pin_link_fd(txn, link_fd, path);
	if (err)
		return pr_warn_err(err, "cannot pin the XDP link of interface %s: %s", ifname,
				   strerror(-err));
	return 0;
}
