/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header shared by the BPF programs and the loader: map layouts, flags and counter
 * indices. Every struct here crosses the user/kernel boundary, so each has explicit padding
 * and a size assertion; user space never re-declares any of them.
 */
#ifndef BPFREDIR_H
#define BPFREDIR_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#define BPFREDIR_MAX_RULES 4096
#define BPFREDIR_MAX_LOCAL_ADDRS 1024
#define BPFREDIR_DEFAULT_FLOWS 65536
/* pending is a quarter of flows, but never smaller than this. */
#define BPFREDIR_MIN_PENDING 1024

/* IPv4 addresses are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d) so v4, v6 and v4-mapped
 * sockets share one key layout. */
#define BPFREDIR_ADDR_LEN 16

/*
 * policy: an ARRAY_OF_MAPS whose one slot holds the live rule set, a hash map of
 * redir_policy_key -> redir_rule. `apply` builds a whole new set aside and swaps it in with
 * one update, so a packet sees either the old set or the new, never half of each; add and
 * del change the live set one entry at a time.
 *
 * The set also says which attachments act (POLICY_IFACE, POLICY_CGROUP): a program attached
 * to an interface or cgroup the live set does not name does nothing. So `apply` attaches
 * what its file adds (inert), switches the set, then detaches what the file dropped (already
 * inert), and a loader killed at any point leaves the old behaviour or the new, never a mix.
 */
#define BPFREDIR_MAX_CGROUPS 1024
#define BPFREDIR_POLICY_ENTRIES                                                                    \
	(2 * BPFREDIR_MAX_RULES + BPFREDIR_MAX_IFACES + BPFREDIR_MAX_CGROUPS)

enum redir_policy_kind {
	/* A rule: packets to port become packets to rule.target_port. */
	POLICY_PUBLIC = 1,
	/* A hidden target: rule.flags says hidden from outside (HIDE) and maybe from local
	 * clients too (HIDE_LOCAL); target_port and addr are unused. */
	POLICY_HIDDEN = 2,
	/* The interface whose ifindex is id acts; port, proto and the rule are unused. */
	POLICY_IFACE = 3,
	/* The cgroup whose id is id acts; port, proto and the rule are unused. */
	POLICY_CGROUP = 4,
};

struct redir_policy_key {
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 kind;  /* enum redir_policy_kind */
	__u32 pad;
	__u64 id; /* POLICY_IFACE: ifindex; POLICY_CGROUP: cgroup id; else 0 */
};

enum redir_rule_flags {
	/* The target port is unreachable from outside while this rule exists. */
	REDIR_F_HIDE = 1 << 0,
	/* Only packets to addr are translated (like iptables -d); else any local address. */
	REDIR_F_ADDR = 1 << 1,
	/* Local clients connecting straight to the hidden target are refused too. */
	REDIR_F_HIDE_LOCAL = 1 << 2,
	/* External packets to the hidden target are answered as by a closed port (TCP RST,
	 * ICMP port unreachable) instead of dropped. */
	REDIR_F_REJECT = 1 << 3,
};

struct redir_rule {
	__be16 target_port;
	__u16 flags; /* enum redir_rule_flags */
	__u8 addr[BPFREDIR_ADDR_LEN];
};

/*
 * port_interest: an array indexed by port (host order) of PORT_INTEREST_* bits, one per
 * protocol that has had a rule naming the port (public or target) since load. Only such a
 * port can match a rule or a connection entry, so a packet on any other port is passed after
 * one array lookup instead of the flow-table and rule-set lookups. The loader marks a rule's
 * ports before the rule can act and never clears a mark (a stale one only costs the shortcut).
 */
#define BPFREDIR_PORTS 65536

enum redir_port_interest {
	PORT_INTEREST_TCP = 1 << 0,
	PORT_INTEREST_UDP = 1 << 1,
};

/* A port of one protocol: the key of port_stats. */
struct redir_port_key {
	__be16 port;
	__u8 proto;
	__u8 pad;
};

enum redir_flow_dir {
	/* Keyed by the client's packet as it arrives (local port = public port). */
	FLOW_DIR_IN = 1,
	/* Keyed by the service's reply as it leaves (local port = target port). */
	FLOW_DIR_OUT = 2,
};

/*
 * flows and pending: one IN and one OUT entry per translated connection, so replies are
 * rewritten exactly and connections outlive the rule that created them. A new connection
 * starts in `pending` and moves to `flows` once the local service sends it something other
 * than a SYN-ACK or RST, which it only does for a real peer: a flood of spoofed SYNs churns
 * `pending` but cannot evict established connections from `flows`.
 */
struct redir_flow_key {
	__u8 remote_addr[BPFREDIR_ADDR_LEN];
	__u8 local_addr[BPFREDIR_ADDR_LEN];
	__be16 remote_port;
	__be16 local_port;
	__u8 proto;
	__u8 dir; /* enum redir_flow_dir */
	__u8 pad[2];
};

struct redir_flow {
	__be16 port; /* IN: the target port; OUT: the public port */
	__u16 pad;
};

/* sock_rev: for a socket whose connect() or sendmsg() was redirected, the public port to show
 * it in place of the target port (getpeername, recvfrom). */
struct redir_sock_key {
	__u64 cookie; /* socket cookie */
	__u8 addr[BPFREDIR_ADDR_LEN];
	__be16 port; /* the target port the socket really talks to */
	__u8 proto;
	__u8 pad[5];
};

/* local_addrs: this host's own addresses, for the socket hooks, which cannot ask the FIB
 * whether a destination is local, and for the datapath on a host that does not forward,
 * where the FIB tells nothing. The value says what the address is. */
struct redir_local_addr {
	__u8 addr[BPFREDIR_ADDR_LEN];
};

enum redir_local_addr_kind {
	LOCAL_ADDR_OWN = 1, /* an address of one of the host's interfaces */
	/* An IPv4 subnet's broadcast address (the kernel's broadcast routes: each address's
	 * brd, and its prefix's all-ones address below /31), which the kernel delivers to a
	 * socket on 0.0.0.0; the datapath only. */
	LOCAL_ADDR_BROADCAST = 2,
};

/* tc_legacy (ifindex -> redir_tc_attach): interfaces attached through a clsact qdisc and
 * cls_bpf filters, where tcx is missing or --attach tc asked for it. Filters are no pinned
 * objects, so this is how unload (or the cleanup after a killed load) finds them. Written by
 * the loader before it attaches, never by BPF. */
#define BPFREDIR_MAX_IFACES 256

struct redir_tc_attach {
	__u32 priority[2]; /* ingress, egress; our filters use handle BPFREDIR_TC_HANDLE */
	__u8 made_qdisc;   /* the clsact qdisc is ours to delete; one we found never is */
	__u8 pad[3];
};

#define BPFREDIR_TC_HANDLE 0xb9f

/* port_stats: per-CPU counters per port, created by the loader for every public port (the
 * translations it saw) and every hidden port (the drops aimed at it). */
enum redir_port_stat {
	PORT_STAT_REWRITTEN,	     /* on a public port: connections' packets translated */
	PORT_STAT_REVERSE_REWRITTEN, /* on a public port: replies given it back */
	PORT_STAT_HIDDEN_DROPPED,    /* on a hidden port: external packets dropped or rejected */
	PORT_STAT__MAX,
};

/* Room for counters a later build adds, so it can still reuse a loaded instance's maps. */
#define BPFREDIR_PORT_STAT_SLOTS 8

struct redir_port_stats {
	__u64 count[BPFREDIR_PORT_STAT_SLOTS];
};

/* attach_point: cgroup storage of the socket programs, one per cgroup they are attached to
 * (keyed by cgroup id alone, so all hooks share it). A program cannot otherwise tell which
 * attachment it runs from: the task's and the socket's cgroup may be a descendant. The loader
 * writes the id after attaching; zero means not yet, and the programs there do nothing. */
struct redir_attach_point {
	__u64 cgroup_id;
};

/* stats: per-CPU array, one slot per verdict, with room for a later build's counters. */
#define BPFREDIR_STAT_SLOTS 32

enum redir_stat {
	STAT_REWRITTEN,		/* ingress: public port rewritten to the target */
	STAT_REVERSE_REWRITTEN, /* egress: reply's source port rewritten back */
	STAT_HIDDEN_DROPPED,	/* ingress: dropped, aimed at a hidden port */
	STAT_MALFORMED_DROPPED, /* ingress: dropped, headers could not be trusted */
	STAT_PASSED,		/* ingress: not ours, passed untouched */
	STAT_SOCK_REDIRECTED,	/* local connect()/sendmsg() redirected */
	STAT_SOCK_REFUSED,	/* local connect()/sendmsg() to a hidden port refused */
	STAT_REJECTED,		/* ingress: aimed at a hidden port, answered as a closed port */
	STAT_ICMP_TRANSLATED,	/* ICMP error quoting a translated connection: port put right */
	STAT__MAX,
};

_Static_assert(sizeof(struct redir_policy_key) == 16, "redir_policy_key layout");
_Static_assert(sizeof(struct redir_rule) == 20, "redir_rule layout");
_Static_assert(sizeof(struct redir_port_key) == 4, "redir_port_key layout");
_Static_assert(sizeof(struct redir_port_stats) == 64, "redir_port_stats layout");
_Static_assert(PORT_STAT__MAX <= BPFREDIR_PORT_STAT_SLOTS, "port counters fit their slots");
_Static_assert(STAT__MAX <= BPFREDIR_STAT_SLOTS, "counters fit their slots");
_Static_assert(sizeof(struct redir_flow_key) == 40, "redir_flow_key layout");
_Static_assert(sizeof(struct redir_flow) == 4, "redir_flow layout");
_Static_assert(sizeof(struct redir_local_addr) == 16, "redir_local_addr layout");
_Static_assert(sizeof(struct redir_sock_key) == 32, "redir_sock_key layout");
_Static_assert(sizeof(struct redir_tc_attach) == 12, "redir_tc_attach layout");
_Static_assert(sizeof(struct redir_attach_point) == 8, "redir_attach_point layout");

#endif /* BPFREDIR_H */
