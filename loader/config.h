/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * apply's file (config.c, config_file.c) and its plan (plan.c): what the file asks for, what
 * is attached now, and the steps between them.
 *
 * The format, one directive a line, '#' starts a comment:
 *   interface NAME [mode tc|xdp|xdp-generic]
 *   cgroup [PATH]             (no PATH: the cgroup2 root)
 *   flows N                   (connection-table size, used when apply loads)
 *   rule PUBLIC TARGET [proto tcp|udp] [no-hide] [hide-local] [reject] [addr IP]
 */
#ifndef BPFREDIR_CONFIG_H
#define BPFREDIR_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>
#include "loader.h"

/* What apply reads at most. A file of BPFREDIR_MAX_RULES long rules with comments fits in
 * the size; a line holds any path the kernel takes (PATH_MAX - 1 bytes) with its directive
 * and a comment. Both are checked as the file is read, not only against its size. */
#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_LINE (2 * PATH_MAX)
/* How much of a word a message repeats (see shown()). */
#define SHOWN_MAX 32

struct config_rule {
	struct rule_spec spec;
	int line;
};

struct config {
	const char *path;
	bool allow_empty; /* --allow-empty */
	bool hide_words;  /* not every user could read the file: messages never repeat its words */
	char ifnames[MAX_IFACES][IF_NAMESIZE];
	int if_lines[MAX_IFACES], if_cols[MAX_IFACES];
	enum iface_mode if_modes[MAX_IFACES];
	int n_ifaces;
	char cgroups[MAX_CGROUPS][PATH_MAX];
	bool cgroup_root[MAX_CGROUPS];
	int cgroup_lines[MAX_CGROUPS], cgroup_cols[MAX_CGROUPS];
	int n_cgroups;
	unsigned long flows;
	int flows_line, flows_col;
	bool steer_socket; /* steering socket */
	int steering_line, steering_col;
	struct config_rule rules[BPFREDIR_MAX_RULES];
	size_t n_rules;
};

/* Read and parse cfg->path: 0, or the exit code after a message naming the line. */
int parse_config(struct config *cfg);
/* The whole file, checked and NUL-terminated, in *text (config_file.c). */
int read_config(struct config *cfg, char **text, size_t *len);
int config_error(const struct config *cfg, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
struct stat;
/* Could every user read the file open at fd (its mode, and every directory above it)? */
bool readable_by_all(int fd, const struct stat *st);
/* A word of the file for a message, or nothing when the file is not for every user's eyes. */
const char *shown(const struct config *cfg, const char *word);
const char *shown_path(const struct config *cfg, const char *path);

/* The file's interfaces and cgroups as the kernel knows them. */
struct resolved {
	int ifindexes[MAX_IFACES];
	__u64 cgroup_ids[MAX_CGROUPS];
	int cgroup_fds[MAX_CGROUPS];
	char cgroup_paths[MAX_CGROUPS][PATH_MAX];
};
int resolve(const struct config *cfg, struct resolved *res);
/* apply --watch (apply_watch.c): apply(arg) at once and at each change of path, each in a
 * child process, until SIGTERM or SIGINT. */
int apply_watch(const char *path, int (*apply)(const void *arg), const void *arg);

/* What is attached now, read back from links/ and tc_legacy, and what the live set lets act;
 * the two differ only after an interrupted apply, attach or detach. */
struct current {
	int ifindexes[MAX_IFACES];
	int n_ifaces;
	/* Pinned, but the attachment is gone: its interface was deleted, or (legacy tc)
	 * someone deleted the clsact qdisc and our filters with it. */
	int stale_ifindexes[MAX_IFACES];
	int n_stale;
	__u64 cgroup_ids[BPFREDIR_MAX_CGROUPS]; /* attach can attach more than a file lists */
	int n_cgroups;
	int active_ifindexes[BPFREDIR_MAX_IFACES];
	int n_active_ifaces;
	__u64 active_cgroup_ids[BPFREDIR_MAX_CGROUPS];
	int n_active_cgroups;
};
int read_current(struct current *cur, int set_fd);
/* Count (and with print, show) the changes from what is to what the file asks. */
int plan_rules(const struct config *cfg, int set_fd, bool print);
int plan(const struct config *cfg, const struct resolved *res, const struct current *cur,
	 int set_fd);
/* The steps, in apply's order: check_modes, attach_new, swap_rules, detach_gone. */
int check_modes(const struct config *cfg, const struct resolved *res, const struct current *cur);
int attach_new(const struct config *cfg, const struct resolved *res, const struct current *cur);
int swap_rules(const struct config *cfg, const struct resolved *res,
	       const struct pinned_maps *maps);
void detach_gone(const struct config *cfg, const struct resolved *res, const struct current *cur);

#endif /* BPFREDIR_CONFIG_H */
