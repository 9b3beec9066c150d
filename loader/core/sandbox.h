/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A private copy of the datapath, for verify: this build's TC, XDP and socket programs over
 * maps of their own (no pin, nothing shared with a loaded instance), in a network namespace
 * of their own, so that what they do to a packet depends on the rules and addresses given
 * here alone, and nothing they count or remember is anyone else's:
 *
 *	sandbox_enter_netns();		(the calling process's namespace is a new one)
 *	sandbox_load(&sb, xdp);
 *	sandbox_rules(&sb, rules, n);
 *	sandbox_host_addr(&sb, addr);	(for each of the host's addresses)
 *	sandbox_run(&sb, SANDBOX_TC_INGRESS, frame, ...);
 *	sandbox_cgroup(&sb);		(only for local clients' calls)
 *	sandbox_free(&sb);
 *
 * Every function returns 0 or -errno, with the detail in a pr_warn where the caller cannot
 * tell it.
 */
#ifndef BPFREDIR_CORE_SANDBOX_H
#define BPFREDIR_CORE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "bpfredir.h"
#include "pins.h"
#include "ruleset.h"

struct sandbox {
	struct tc_bpf *tc;
	struct xdp_bpf *xdp;
	struct sock_bpf *sock;
	struct steer_bpf *steer; /* socket steering's sk_lookup program, when asked for */
	int set_fd;
	int lo_ifindex;
	/* sandbox_cgroup: a cgroup of its own, made under the cgroup2 root, whose processes
	 * the socket programs act for; removed by sandbox_free. */
	int cgroup_root_fd;
	int cgroup_fd;
	__u64 cgroup_id;
	char cgroup_name[64];
	int links[N_SOCK_HOOKS];
};

enum sandbox_hook {
	SANDBOX_TC_INGRESS,
	SANDBOX_TC_EGRESS, /* a packet this host sends */
	SANDBOX_XDP,
};

/* The calling process leaves its network namespace for a new one, with lo up and forwarding
 * off (so a destination that is not the host's is another host's, and nothing leaves). */
int sandbox_enter_netns(void);
/* addr (v4 as ::ffff:a.b.c.d) on the namespace's lo, for local clients to reach. */
int sandbox_addr_add(const __u8 addr[BPFREDIR_ADDR_LEN]);
/* The programs loaded over private maps (XDP's only when asked for; the TC programs for L3
 * devices never: frames here are Ethernet ones), the socket programs for this namespace;
 * with steer, socket steering's too (TCP rules applied at socket lookup). */
int sandbox_load(struct sandbox *sb, bool xdp, bool steer);
/* A set of these rules, enabled on lo, live. Steering: TCP rules marked for socket lookup,
 * and the listeners on their targets that this namespace runs now registered. */
int sandbox_rules(struct sandbox *sb, const struct rule_spec *rules, size_t n);
/* A TCP connection's socket lookup (sk_lookup) run through the steering program: *retval
 * its verdict, *cookie the socket it handed the connection to (0: none, the kernel's own
 * lookup goes on). */
int sandbox_sk_lookup(struct sandbox *sb, bool v6, const __u8 *remote, __u16 remote_port,
		      const __u8 *local, __u16 local_port, __u32 *retval, __u64 *cookie);
/* addr is one of the host's own addresses. */
int sandbox_host_addr(struct sandbox *sb, const __u8 addr[BPFREDIR_ADDR_LEN]);
/* The frame in through hook h: *retval the program's, *out_len the bytes in out. */
int sandbox_run(struct sandbox *sb, enum sandbox_hook h, const void *in, __u32 len, void *out,
		__u32 *out_len, __u32 *retval);
/* A global counter (enum redir_stat), summed over the CPUs. */
int sandbox_stat(struct sandbox *sb, __u32 idx, __u64 *sum);
/* The socket programs attached to a new cgroup of the sandbox's own (sb->cgroup_fd), and
 * the set enabling them there: a process that joins it is a local client. */
int sandbox_cgroup(struct sandbox *sb);
/* The calling process joins the sandbox's cgroup. */
int sandbox_cgroup_join(struct sandbox *sb);
/* After sandbox_load, whatever it returned. */
void sandbox_free(struct sandbox *sb);

#endif /* BPFREDIR_CORE_SANDBOX_H */
