/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* status: what it reads (cmd_status.c, status_hooks.c) into views, and how it prints them
 * (status_print.c: each view as a plain and a JSON twin). */
#ifndef BPFREDIR_STATUS_H
#define BPFREDIR_STATUS_H

#include <stdbool.h>
#include <net/if.h>
#include <linux/bpf.h>
#include <linux/types.h>
#include "loader.h"
#include "jsonout.h"
#include "core/steer.h"

#define MAX_QUERY_PROGS 64
#define MAX_OURS 64
#define MAX_WARNINGS 4

/* What may be wrong with one interface or cgroup, printed with it. */
struct warnings {
	char text[MAX_WARNINGS][256];
	int n;
};
void warn(struct warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Each as "    warning: TEXT" lines, or a JSON array of the texts. */
void warnings_plain(const struct warnings *w);
struct json_object *warnings_json(const struct warnings *w);

/* The XDP program on an interface, whoever's: it runs before any TC program. */
struct xdp_seen {
	__u32 id;
	const char *mode;
	char name[BPF_OBJ_NAME_LEN];
	bool ours;
};

/* The programs at one hook, in run order. */
struct hook_chain {
	struct {
		__u32 id;
		char name[BPF_OBJ_NAME_LEN];
		bool ours;
	} progs[MAX_QUERY_PROGS];
	__u32 n;
};

/* An interface bpfredir attached, by tcx or XDP (legacy: by clsact filters). */
struct iface_view {
	int ifindex;
	char name[IF_NAMESIZE]; /* "?" when defunct */
	bool defunct;
	bool active; /* the live rule set names it */
	enum iface_mode mode;
	bool egress_tc; /* XDP mode's egress by a clsact filter */
	struct xdp_seen xdp;
	bool legacy;
	struct redir_tc_attach rec;  /* legacy: the record of our filters */
	bool filters_present[2];     /* legacy: ingress, egress */
	bool has_chains;	     /* the tcx chains below were read */
	struct hook_chain chains[2]; /* tcx ingress, egress */
	struct warnings w;
};

struct cgroup_view {
	__u64 id;
	const char *path; /* NULL: not found */
	bool defunct;	  /* the kernel detached the links */
	bool removed;	  /* the cgroup is gone (defunct, or soon to be) */
	bool active;
	struct hook_chain connect4;
	struct warnings w;
};

struct status_out;

/* How status prints: the plain or the JSON twin of each view, picked once. */
struct status_printer {
	void (*iface)(struct status_out *out, const struct iface_view *v);
	void (*cgroup)(struct status_out *out, const struct cgroup_view *v);
};
extern const struct status_printer status_plain_printer, status_json_printer;

struct status_out {
	const struct status_printer *print;
	struct json_object *list; /* JSON: the array being filled */
	bool tcx;		  /* the kernel has tcx chains, to list */
	int set_fd;		  /* the live rule set, which says which attachments act */
	bool steer_socket;	  /* TCP rules steered at socket lookup (core/steer.c) */
	const struct steer_maps *steer; /* its maps (fds -1 when it rewrites packets) */
	__u32 ours[MAX_OURS];
	int n_ours;
};

extern const char *const tcx_hook_names[2];

void collect_ours(struct status_out *out);
/* steer_view.c: the steering line, the listeners and what is missing, as text or as the
 * "steering" object. */
void steering_status_plain(const struct status_out *out);
struct json_object *steering_status_json(const struct status_out *out);
bool is_ours(const struct status_out *out, __u32 id);
/* The programs at a hook; returns how many foreign ones run before ours. */
int hook_chain_read(const struct status_out *out, int target, enum bpf_attach_type type,
		    struct hook_chain *chain);
void tcx_chains_read(const struct status_out *out, struct iface_view *v, bool ours_there);
void xdp_seen_query(const struct status_out *out, int ifindex, struct xdp_seen *x);
int link_info(const char *name, struct bpf_link_info *info);

#endif /* BPFREDIR_STATUS_H */
