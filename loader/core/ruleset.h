/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A rule set (see `policy` in bpfredir.h): what a rule is in user space, which rules can share a
 * set, and everything a set holds besides its rules, worked out here once. It works on plain
 * map fds, so the CLI (on pinned maps) and the tests (on a skeleton's maps) run the same code:
 *
 *	int set = ruleset_create();
 *	ruleset_put(set, &(struct rule_spec){ .public_port = 8445, .target_port = 8443,
 *					      .proto = IPPROTO_TCP });
 *	ruleset_enable(set, POLICY_IFACE, ifindex, true);
 *	ruleset_derive(set, &derive_maps);
 *	ruleset_install(policy_fd, set);
 *	close(set);	(the policy map holds it)
 *
 * Every function returns 0 or -errno and prints nothing but pr_debug.
 */
#ifndef BPFREDIR_CORE_RULESET_H
#define BPFREDIR_CORE_RULESET_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "bpfredir.h"
#include "port_counters.h"
#include "steer.h"

/* One rule, as the CLI and the config file say it: ports in host order. The zero value of
 * every flag is the default (hidden, dropped, any local address). */
struct rule_spec {
	__u16 public_port;
	__u16 target_port;
	__u8 proto;	 /* IPPROTO_TCP or IPPROTO_UDP */
	bool no_hide;	 /* leave target_port reachable */
	bool hide_local; /* refuse local clients' connections to target_port too */
	bool reject;	 /* answer packets to target_port as a closed port would */
	bool has_addr;	 /* only packets to addr (IPv4 as ::ffff:a.b.c.d) */
	__u8 addr[BPFREDIR_ADDR_LEN];
};

/* What rule_spec_check() finds wrong, as bits: a verb reports the first in its own order. */
enum rule_problem {
	RULE_BAD_PORT = 1 << 0,		/* a port is 0 */
	RULE_BAD_PROTO = 1 << 1,	/* neither TCP nor UDP */
	RULE_SAME_PORTS = 1 << 2,	/* public and target port are one */
	RULE_HIDE_LOCAL_OPEN = 1 << 3,	/* hide_local with no_hide */
	RULE_REJECT_OPEN = 1 << 4,	/* reject with no_hide */
	RULE_ADDR_NOT_UNICAST = 1 << 5, /* see addr_not_unicast() */
};

/* 0, or -EINVAL with *problems (when not NULL) the enum rule_problem bits. */
int rule_spec_check(const struct rule_spec *r, unsigned int *problems);
/* NULL for a unicast address, else what it is (for a message). */
const char *addr_not_unicast(const __u8 addr[BPFREDIR_ADDR_LEN]);

/* A rule's entry in a set (kind POLICY_PUBLIC), and back. */
struct redir_policy_key public_key(__u16 port, __u8 proto);
void rule_spec_entry(const struct rule_spec *r, struct redir_policy_key *key,
		     struct redir_rule *rule);
void rule_spec_from_entry(struct rule_spec *r, const struct redir_policy_key *key,
			  const struct redir_rule *rule);
bool rule_spec_equal(const struct rule_spec *a, const struct rule_spec *b);

/* Can two rules be in one set? A same public port is the caller's to report. */
enum rule_clash {
	RULES_FIT,
	RULES_PORT_CROSSED,   /* a port public in one and the target of the other */
	RULES_HIDING_DIFFERS, /* one target, other no-hide, hide-local or reject */
};
enum rule_clash rule_conflict(const struct rule_spec *a, const struct rule_spec *b);
/* The hiding options of r in words, for messages. */
const char *rule_hiding_name(const struct rule_spec *r);
/* r against every rule of set_fd but one for its own public port: RULES_FIT, or the clash
 * with *other set to the first rule it clashes with; -errno if the set cannot be read. */
int ruleset_conflict(int set_fd, const struct rule_spec *r, struct rule_spec *other);

/* A new, empty set: an fd, or -errno. */
int ruleset_create(void);
/* The rule for public port/proto: 0, -ENOENT, or -errno. */
int ruleset_get(int set_fd, __u16 public_port, __u8 proto, struct rule_spec *r);
/* Add r, or replace the rule for its public port (no check: see rule_spec_check and
 * ruleset_conflict). -E2BIG: the set is full. Call ruleset_derive() after. */
int ruleset_put(int set_fd, const struct rule_spec *r);
/* -ENOENT when there is no such rule. Call ruleset_derive() after. */
int ruleset_del(int set_fd, __u16 public_port, __u8 proto);
/* Attachments act only while the set names them: kind POLICY_IFACE (id an ifindex) or
 * POLICY_CGROUP (a cgroup id). */
int ruleset_enable(int set_fd, __u8 kind, __u64 id, bool on);
bool ruleset_enabled(int set_fd, __u8 kind, __u64 id);
/* How many entries of one kind the set holds (POLICY_CGROUP: cgroups attached). */
int ruleset_count(int set_fd, __u8 kind);
/* The maps ruleset_derive() keeps in line with a set, besides the set. */
struct derive_maps {
	struct port_counter_maps counters;
	int port_interest;
	int public_targets;
	int flows; /* an IN entry for each connection whose target its port forgets */
	int flows_gen;
	int iface_slots;
	int port_hidden;
	/* The set is not live yet (apply builds it aside): port_hidden only gains its hidden
	 * ports, which the live set's derive after the switch makes exact. */
	bool set_aside;
	/* The instance steers TCP at socket lookup (core/steer.c): its TCP rules are marked
	 * REDIR_F_SOCKET and their targets' running listeners registered in steer_listeners. */
	bool steer_socket;
	struct steer_maps steer;
};
/* Bring what follows from the set's rules in line with them: the set's hidden entries,
 * the port counters (a slot for every public and hidden port; counters kept), port_interest
 * (both ports of every rule marked, never unmarked) and public_targets (each rule's target,
 * and its port's target before: see public_targets_note) and iface_slots (the interfaces it
 * enables). When the instance steers TCP at
 * socket lookup, its TCP rules are marked so and their targets' listeners registered, before
 * the rules act. */
int ruleset_derive(int set_fd, const struct derive_maps *maps);
/* Put set_fd live in policy's slot with one update; set_fd < 0 empties the slot. */
int ruleset_install(int policy_fd, int set_fd);

#endif /* BPFREDIR_CORE_RULESET_H */
