/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Loader-internal declarations: shared by the verbs in loader/. */
#ifndef BPFREDIR_LOADER_H
#define BPFREDIR_LOADER_H

#include <stdbool.h>
#include <dirent.h>
#include <stdio.h>
#include <linux/types.h>
#include "bpfredir.h"
#include "core/log.h"
#include "core/guard.h"
#include "core/hostaddr.h"
#include "core/maps.h"
#include "core/mapsync.h"
#include "core/objects.h"
#include "core/attach.h"
#include "core/pins.h"
#include "core/ruleset.h"
#include "core/scan.h"

/* Exit codes. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#include "cli.h"

extern bool verbose;
extern const struct cmd *cur_cmd; /* the verb being run, for its messages */

/* One-line diagnostics; both return the exit code to pass up. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same message as fail(), returning err (a -errno) for functions that pass errors up. */
int fail_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* parse_*: scan_* (core/scan.h) for a command-line argument, with the usage error printed. */
int parse_port(const char *text, __u16 *port);
int parse_proto(const char *text, __u8 *proto);
int require_root(void);

/* Test builds only (make tests-build: build/tests/bpfredir-failpoints); nothing otherwise. */
#ifdef BPFREDIR_FAILPOINTS
void failpoint(const char *name);
#else
static inline void failpoint(const char *name)
{
}
#endif
int parse_addr(const char *text, __u8 addr[BPFREDIR_ADDR_LEN]);

/* A rule with its counters, and all rules with the global counters, as read at one time. */
struct listed_rule {
	struct redir_policy_key key; /* kind POLICY_PUBLIC */
	struct redir_rule rule;
	__u64 counts[PORT_STAT__MAX];
};

struct snapshot {
	struct listed_rule rules[BPFREDIR_MAX_RULES];
	size_t n;
	__u64 stats[STAT__MAX];
};

int take_snapshot(const struct pinned_maps *maps, struct snapshot *snap);
/* cgroup_open, with the error said. */
int open_cgroup(const char *path, char *resolved, size_t size, int *fd, __u64 *id);
/* attach or detach PATH (NULL: the cgroup2 root) on the open instance, with the error said;
 * settled: a cgroup already as asked (attached, or not attached) is done, not an error. */
int cgroup_change(struct pinned_maps *maps, const char *path, bool attach, bool settled);

/* What load attaches; apply builds one from its file. */
#define BPFREDIR_MIN_FLOWS 1024
#define BPFREDIR_MAX_FLOWS (1U << 24)

struct load_request {
	enum attach_mode attach;
	const char *ifnames[MAX_IFACES];
	enum iface_mode if_modes[MAX_IFACES];
	int n_ifaces;
	const char *cgroups[MAX_CGROUPS]; /* NULL: the cgroup2 root */
	int n_cgroups;
	__u32 flows;
	bool steer_socket; /* --steering socket: TCP rules at socket lookup (core/steer.c) */
};

/* The pin dir locked and not loaded: load everything, or nothing. */
int load_locked(const struct load_request *req);
/* The pin dir locked and loaded: this build's programs in place of the loaded ones, maps
 * kept. How many attachments changed, or -1 after a message. */
int upgrade_programs(void);

/* guard_upgrade, with the error said: how many guard links changed, or -1. */
int guard_upgrade_or_fail(void);
/* add and apply: a warning on stderr for each interface where a hidden port of the set live
 * in policy is reachable. */
void guard_warn(int policy_fd);
/* status: the guard line and the interfaces it has to cover, as text or as the "guard"
 * object. */
void guard_status_plain(int set_fd);
struct json_object *guard_status_json(int set_fd);

#endif /* BPFREDIR_LOADER_H */
