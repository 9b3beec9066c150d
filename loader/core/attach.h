/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Attachments of every kind: an interface (tcx, legacy tc, XDP ingress with TC egress) and a
 * cgroup (the socket hooks). Each returns 0 or -errno, with the detail in a pr_warn. */
#ifndef BPFREDIR_CORE_ATTACH_H
#define BPFREDIR_CORE_ATTACH_H

#include <stdbool.h>
#include <linux/types.h>
#include "bpfredir.h"
#include "pins.h"

/* The kernel's ENOTSUPP, which user space headers lack. */
#define ENOTSUPP_KERNEL 524

enum attach_mode {
	ATTACH_AUTO, /* tcx, or legacy tc where the kernel has no tcx */
	ATTACH_TCX,
	ATTACH_TC,
};

/* What runs ingress on an interface; egress is always TC (tcx, or legacy tc as attach_mode
 * says). */
enum iface_mode {
	IFACE_TC,	   /* TC ingress */
	IFACE_XDP,	   /* XDP in the driver (native) */
	IFACE_XDP_GENERIC, /* XDP on the skb, for any interface */
};

/* txn: the link pins wait for pin_txn_commit (load); NULL pins them at once. */
int attach_iface(struct pin_txn *txn, int ifindex, const char *ifname, const int tc_prog_fds[2],
		 enum attach_mode mode);
void detach_iface(int ifindex);
bool iface_attached(int ifindex);
/* One interface in the mode asked for, after removing what is left of a gone attachment. */
int iface_attach(struct pin_txn *txn, int ifindex, const char *ifname, const int tc_prog_fds[2],
		 int xdp_fd, enum iface_mode mode, enum attach_mode attach);

/* XDP mode; see attach_xdp.c. iface_mode_of: how the interface is attached, or -1 if it is not. */
const char *iface_mode_name(enum iface_mode mode);
int iface_mode_of(int ifindex);
int xdp_check_foreign(int ifindex, const char *ifname);
int attach_iface_xdp(struct pin_txn *txn, int ifindex, const char *ifname, const int tc_prog_fds[2],
		     int xdp_fd, enum iface_mode mode, enum attach_mode attach);
void detach_xdp(int ifindex);
/* attach_xdp.c alone: the XDP link of an interface, made or there. */
int xdp_attach(struct pin_txn *txn, int ifindex, const char *ifname, int xdp_fd,
	       enum iface_mode mode);
bool xdp_attached(enum iface_mode mode, int ifindex);

/* Legacy tc (clsact + cls_bpf), recorded in the pinned tc_legacy map; see attach_tc.c. */
int open_tc_legacy_map(void);
int tc_legacy_attach(int map_fd, int ifindex, const int prog_fds[2], __u32 flags);
bool tc_legacy_attached(int map_fd, int ifindex);
/* A record, whether or not its filters are still there. */
bool tc_legacy_recorded(int ifindex);
/* A record of an egress filter alone (XDP mode's egress, where tcx is missing). */
bool tc_legacy_egress_only(int ifindex);
void tc_legacy_query(int ifindex, const struct redir_tc_attach *rec, __u32 prog_ids[2]);
void tc_legacy_detach(int map_fd, int ifindex);
int tc_legacy_each(int map_fd, void (*fn)(int map_fd, int ifindex, void *arg), void *arg);

/* The cgroup2 mount, wherever this system has it (unified or hybrid layout): 0 or -errno. */
int cgroup2_root(char *buf, size_t size);
/* NULL path: the cgroup2 root. -errno (-EMEDIUMTYPE: not on cgroup2) for a caller that says
 * where the path came from. */
int cgroup_open(const char *path, char *resolved, size_t size, int *fd, __u64 *id);
/* The cgroup id of fd, a cgroup2 directory; -EMEDIUMTYPE when it is not one. */
int cgroup_fd_id(int fd, __u64 *id);
/* The cgroup2 mount, opened: an fd, or -errno. */
int cgroup2_root_open(void);
int attach_cgroup(struct pin_txn *txn, int cgroup_fd, __u64 cgroup_id,
		  const int prog_fds[N_SOCK_HOOKS]);
int detach_cgroup(__u64 cgroup_id);
/* The live set (set_fd, or -1) stops naming the cgroup, then its links go. */
int cgroup_release(int set_fd, __u64 cgroup_id);
bool cgroup_attached(__u64 cgroup_id);
/* 1: the cgroup is there; 0: it was removed (or never was); -errno. */
int cgroup_exists(__u64 cgroup_id);
/* Pins and live-set entries (set_fd, or -1) of removed cgroups removed: how many, or -errno. */
int cgroups_forget_removed(int set_fd);

/* Remove every pin bpfredir makes under the pin dir, and the dir itself unless keep_dir
 * (cleanup.c). finish_interrupted: what a killed load or unload left, finished; pins_create:
 * pins_open(PINS_CREATE) and that. */
int remove_pins(bool keep_dir);
int finish_interrupted(bool keep_dir);
int pins_create(void);

/* An sk_lookup link of prog_fd on the network namespace the loader runs in: 0 with *fd, or
 * -errno. */
int attach_netns_sk_lookup(int prog_fd, int *fd);

#endif /* BPFREDIR_CORE_ATTACH_H */
