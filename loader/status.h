/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* status (cmd_status.c) and the program chains at the hooks it shows (status_hooks.c). */
#ifndef BPFREDIR_STATUS_H
#define BPFREDIR_STATUS_H

#include <stdbool.h>
#include <linux/types.h>
#include "loader.h"

#define MAX_QUERY_PROGS 64
#define MAX_OURS 64
#define MAX_WARNINGS 4

struct status_out {
	bool json;
	bool tcx;   /* the kernel has tcx chains, to list */
	bool first; /* first element of the JSON array being printed */
	int set_fd; /* the live rule set, which says which attachments act */
	__u32 ours[MAX_OURS];
	int n_ours;
};

/* What may be wrong with one interface or cgroup, printed with it. */
struct warnings {
	char text[MAX_WARNINGS][256];
	int n;
};
void warn(struct warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct xdp_seen {
	__u32 id;
	const char *mode;
	char name[BPF_OBJ_NAME_LEN];
	bool ours;
};

void print_tcx_chains(struct status_out *out, int ifindex, bool ours_there, struct warnings *w);
void xdp_seen_query(const struct status_out *out, int ifindex, struct xdp_seen *x);
void xdp_seen_print(const struct status_out *out, const struct xdp_seen *x);
void collect_ours(struct status_out *out);
bool is_ours(const struct status_out *out, __u32 id);
int print_hook_progs(struct status_out *out, int target, enum bpf_attach_type type,
		     __u32 query_flags);
int link_info(const char *name, struct bpf_link_info *info);

#endif /* BPFREDIR_STATUS_H */
