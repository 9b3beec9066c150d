// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* status: the programs at the hooks bpfredir uses, ours and others', in the order they run. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "status.h"

static void prog_name(__u32 id, char *buf, size_t size)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	snprintf(buf, size, "?");
	if (fd < 0)
		return;
	if (!bpf_prog_get_info_by_fd(fd, &info, &len))
		snprintf(buf, size, "%s", info.name);
	close(fd);
}

int link_info(const char *name, struct bpf_link_info *info)
{
	char path[PATH_MAX];
	__u32 len = sizeof(*info);
	int fd, err = 0;

	memset(info, 0, sizeof(*info));
	if (pin_path(path, sizeof(path), "links", name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_link_get_info_by_fd(fd, info, &len))
		err = -errno;
	close(fd);
	return err;
}

static void add_ours(struct status_out *out, __u32 id)
{
	int i;

	for (i = 0; i < out->n_ours; i++)
		if (out->ours[i] == id)
			return;
	if (id && out->n_ours < MAX_OURS)
		out->ours[out->n_ours++] = id;
}

/* This instance's programs: the ones pinned in progs/ and the ones its links run. A name
 * proves nothing: every instance's programs have the same names, and anyone may call a
 * program bpfredir_something. */
void collect_ours(struct status_out *out)
{
	struct bpf_link_info link;
	struct bpf_prog_info info;
	char path[PATH_MAX];
	struct dirent *de;
	__u32 len;
	DIR *dir;
	int fd;

	dir = pin_opendir("progs");
	while (dir && (de = readdir(dir))) {
		if (de->d_name[0] == '.' || pin_path(path, sizeof(path), "progs", de->d_name))
			continue;
		fd = bpf_obj_get(path);
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (fd >= 0 && !bpf_prog_get_info_by_fd(fd, &info, &len))
			add_ours(out, info.id);
		if (fd >= 0)
			close(fd);
	}
	if (dir)
		closedir(dir);
	dir = pin_opendir("links");
	while (dir && (de = readdir(dir)))
		if (de->d_name[0] != '.' && !link_info(de->d_name, &link))
			add_ours(out, link.prog_id);
	if (dir)
		closedir(dir);
}

bool is_ours(const struct status_out *out, __u32 id)
{
	int i;

	for (i = 0; i < out->n_ours; i++)
		if (out->ours[i] == id)
			return true;
	return false;
}

/* Every program at the hook, in run order. Returns how many foreign ones run before ours
 * (or before where ours would be: all of them, when ours is not there). */
int hook_chain_read(const struct status_out *out, int target, enum bpf_attach_type type,
		    struct hook_chain *chain)
{
	__u32 ids[MAX_QUERY_PROGS];
	LIBBPF_OPTS(bpf_prog_query_opts, opts, .prog_ids = ids, .count = MAX_QUERY_PROGS);
	int ahead = -1;
	__u32 i;

	if (bpf_prog_query_opts(target, type, &opts))
		opts.count = 0;
	for (i = 0; i < opts.count; i++) {
		chain->progs[i].id = ids[i];
		chain->progs[i].ours = is_ours(out, ids[i]);
		prog_name(ids[i], chain->progs[i].name, sizeof(chain->progs[i].name));
		if (chain->progs[i].ours && ahead < 0)
			ahead = i;
	}
	chain->n = opts.count;
	return ahead < 0 ? (int)opts.count : ahead;
}

const char *const tcx_hook_names[2] = { "ingress", "egress" };

/* The tcx chains of an interface, in run order, with a warning where a foreign program runs
 * ahead of ours: one that returns TCX_PASS, redirects or drops decides before bpfredir sees
 * the packet (attached later with BPF_F_BEFORE, for instance). */
void tcx_chains_read(const struct status_out *out, struct iface_view *v, bool ours_there)
{
	static const enum bpf_attach_type types[2] = { BPF_TCX_INGRESS, BPF_TCX_EGRESS };
	const char *hook;
	int i, ahead;

	/* No tcx, no chains: legacy filters are all there is. */
	v->has_chains = out->tcx;
	for (i = 0; i < 2 && out->tcx; i++) {
		hook = tcx_hook_names[i];
		ahead = hook_chain_read(out, v->ifindex, types[i], &v->chains[i]);
		if (ahead && ours_there)
			warn(&v->w,
			     "%d foreign tcx program%s at %s run%s before bpfredir: a packet one "
			     "of them passes (TCX_PASS), redirects or drops never reaches bpfredir",
			     ahead, ahead > 1 ? "s" : "", hook, ahead > 1 ? "" : "s");
		else if (ahead && !ours_there && i == 0)
			warn(&v->w,
			     "%d tcx program%s at ingress run%s before bpfredir's clsact filters: "
			     "a packet one of them passes (TCX_PASS) never reaches bpfredir",
			     ahead, ahead > 1 ? "s" : "", ahead > 1 ? "" : "s");
	}
}

/* What the kernel runs, not what a pin's name says. */
void xdp_seen_query(const struct status_out *out, int ifindex, struct xdp_seen *x)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &q))
		memset(&q, 0, sizeof(q));
	x->id = q.drv_prog_id ?: q.skb_prog_id ?: q.hw_prog_id;
	x->mode = q.drv_prog_id ? "native" : q.skb_prog_id ? "generic" : "offloaded";
	x->ours = is_ours(out, x->id);
	prog_name(x->id, x->name, sizeof(x->name));
}
