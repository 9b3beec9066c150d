// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* status: what is loaded where, read back from the pins and the kernel, and what else is
 * attached at the same hooks and could see packets before ours. */
#define _XOPEN_SOURCE 700 /* nftw */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "status.h"
#include "core/probe.h"

void warn(struct warnings *w, const char *fmt, ...)
{
	va_list ap;

	if (w->n == MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(w->text[w->n++], sizeof(w->text[0]), fmt, ap);
	va_end(ap);
}

/* mode: from the link's pin, which a defunct link still has. */
static void iface_read(struct status_out *out, int ifindex, enum iface_mode mode, bool defunct,
		       struct iface_view *v)
{
	v->ifindex = ifindex;
	v->mode = mode;
	v->defunct = defunct;
	snprintf(v->name, sizeof(v->name), "?");
	if (defunct)
		warn(&v->w, "defunct: the interface with this index is gone, and with it the "
			    "attachment; 'bpfredir apply' or 'unload' removes what is left");
	else
		if_indextoname(ifindex, v->name);
	xdp_seen_query(out, defunct ? 0 : ifindex, &v->xdp);
	if (mode != IFACE_TC && !defunct && !v->xdp.ours)
		warn(&v->w,
		     "bpfredir's XDP program is not attached here: ingress is not translated");
	/* XDP mode's egress: tcx, or a clsact filter where the kernel has no tcx. */
	v->egress_tc = mode != IFACE_TC && tc_legacy_egress_only(ifindex);
	if (v->egress_tc && !defunct && !iface_attached(ifindex))
		warn(&v->w,
		     "missing: bpfredir's egress filter is gone (its clsact qdisc deleted?): "
		     "replies leave with the target port; 'bpfredir apply' attaches again");
	v->active = ruleset_enabled(out->set_fd, POLICY_IFACE, ifindex);
	if (!defunct)
		tcx_chains_read(out, v, true);
}

/* An interface attached by legacy tc: its clsact qdisc and our filters' priorities. Filters
 * are no links, so they vanish without a trace when someone deletes the qdisc: ask the
 * kernel whether they are still there. */
static void legacy_read(struct status_out *out, int ifindex, const struct redir_tc_attach *rec,
			struct iface_view *v)
{
	__u32 prog_ids[2];
	bool in, eg;

	v->legacy = true;
	v->ifindex = ifindex;
	v->rec = *rec;
	snprintf(v->name, sizeof(v->name), "?");
	v->defunct = !if_indextoname(ifindex, v->name);
	xdp_seen_query(out, v->defunct ? 0 : ifindex, &v->xdp);
	tc_legacy_query(ifindex, rec, prog_ids);
	in = v->filters_present[0] = is_ours(out, prog_ids[0]);
	eg = v->filters_present[1] = is_ours(out, prog_ids[1]);
	if (v->defunct)
		warn(&v->w, "defunct: the interface with this index is gone, and our filters with "
			    "it; 'bpfredir apply' or 'unload' removes the record");
	else if (!in || !eg)
		warn(&v->w,
		     "missing: bpfredir's %s gone (its clsact qdisc deleted?); 'bpfredir load' "
		     "or 'apply' attaches again",
		     !in && !eg ? "ingress and egress filters are"
		     : !in	? "ingress filter is"
				: "egress filter is");
	v->active = ruleset_enabled(out->set_fd, POLICY_IFACE, ifindex);
	if (!v->defunct)
		tcx_chains_read(out, v, false);
}

static void show_legacy_one(int map_fd, int ifindex, void *arg)
{
	static struct iface_view v;
	struct status_out *out = arg;
	struct redir_tc_attach rec;
	__u32 key = ifindex;

	if (bpf_map_lookup_elem(map_fd, &key, &rec))
		return;
	/* An egress filter alone is XDP mode's, shown with its XDP link (iface_read). */
	if (!rec.priority[0] &&
	    (pin_exists("links", pin_link_name(LINK_XDP_NATIVE, ifindex, NULL)) ||
	     pin_exists("links", pin_link_name(LINK_XDP_GENERIC, ifindex, NULL))))
		return;
	memset(&v, 0, sizeof(v));
	legacy_read(out, ifindex, &rec, &v);
	out->print->iface(out, &v);
}

static void show_legacy(struct status_out *out)
{
	int map_fd = open_tc_legacy_map();

	if (map_fd < 0)
		return;
	tc_legacy_each(map_fd, show_legacy_one, out);
	close(map_fd);
}

/* Every cgroup2 directory by id, from one walk of the tree: links know the cgroup by id
 * only (on cgroup2, the directory's inode number), and a host with a thousand containers
 * must not be walked once for each. */
static struct cgroup_dir {
	__u64 id;
	char *path;
} *cgroup_dirs;
static size_t n_cgroup_dirs, cgroup_dirs_cap;

static int collect_cgroup(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct cgroup_dir *grown;

	if (flag != FTW_D)
		return 0;
	if (n_cgroup_dirs == cgroup_dirs_cap) {
		grown = realloc(cgroup_dirs, (cgroup_dirs_cap * 2 + 64) * sizeof(*grown));
		if (!grown)
			return 1;
		cgroup_dirs = grown;
		cgroup_dirs_cap = cgroup_dirs_cap * 2 + 64;
	}
	cgroup_dirs[n_cgroup_dirs].path = strdup(path);
	if (!cgroup_dirs[n_cgroup_dirs].path)
		return 1;
	cgroup_dirs[n_cgroup_dirs++].id = st->st_ino;
	return 0;
}

static const char *cgroup_path_of(__u64 id)
{
	static bool walked;
	char root[PATH_MAX];
	__u64 root_id;
	size_t i;
	int fd;

	if (!walked && !open_cgroup(NULL, root, sizeof(root), &fd, &root_id)) {
		close(fd);
		nftw(root, collect_cgroup, 32, FTW_PHYS | FTW_MOUNT);
	}
	walked = true;
	for (i = 0; i < n_cgroup_dirs; i++)
		if (cgroup_dirs[i].id == id)
			return cgroup_dirs[i].path;
	return NULL;
}

static void cgroup_dirs_free(void)
{
	while (n_cgroup_dirs)
		free(cgroup_dirs[--n_cgroup_dirs].path);
	free(cgroup_dirs);
	cgroup_dirs = NULL;
	cgroup_dirs_cap = 0;
}

static void cgroup_read(struct status_out *out, __u64 id, bool defunct, struct cgroup_view *v)
{
	int fd;

	v->id = id;
	v->defunct = defunct;
	/* Removed, though the kernel may hold on to its links a while (a socket made there
	 * outlives it): the id no longer resolves. */
	v->removed = defunct || !cgroup_exists(id);
	v->path = v->removed ? NULL : cgroup_path_of(id);
	if (v->removed)
		warn(&v->w, "removed: the cgroup is gone, and its hooks with it; the next bpfredir "
			    "command that changes anything forgets it (a cgroup made again under "
			    "the same path is another cgroup: 'bpfredir attach' attaches to it)");
	v->active = ruleset_enabled(out->set_fd, POLICY_CGROUP, id);
	fd = v->path ? open(v->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		hook_chain_read(out, fd, BPF_CGROUP_INET4_CONNECT, &v->connect4);
		close(fd);
	}
}

/* One link's interface or cgroup, read and printed. */
static void show_link(struct status_out *out, const struct pin_link *link, bool defunct)
{
	static struct iface_view iface;
	static struct cgroup_view cgroup;

	if (link->kind == LINK_CGROUP) {
		memset(&cgroup, 0, sizeof(cgroup));
		cgroup_read(out, link->where, defunct, &cgroup);
		out->print->cgroup(out, &cgroup);
		return;
	}
	memset(&iface, 0, sizeof(iface));
	iface_read(out, link->where,
		   link->kind == LINK_XDP_NATIVE    ? IFACE_XDP
		   : link->kind == LINK_XDP_GENERIC ? IFACE_XDP_GENERIC
						    : IFACE_TC,
		   defunct, &iface);
	out->print->iface(out, &iface);
}

/* Each interface (cgroups: each cgroup) with a link of ours, once, from the pins' names; a
 * link whose interface or cgroup is gone still has its pin, and the kernel then reports it
 * attached nowhere (index or id 0). */
static int show_links(struct status_out *out, bool cgroups)
{
	static __u64 seen[BPFREDIR_MAX_CGROUPS + BPFREDIR_MAX_IFACES];
	const int max_seen = sizeof(seen) / sizeof(seen[0]);
	struct bpf_link_info info;
	struct pin_link link;
	int n_seen = 0, i;
	struct dirent *de;
	DIR *dir = pin_opendir("links");
	bool defunct;

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (!pin_link_parse(de->d_name, &link))
			continue;
		if (cgroups ? link.kind != LINK_CGROUP
			    : link.kind != LINK_TCX_INGRESS && link.kind != LINK_XDP_NATIVE &&
				      link.kind != LINK_XDP_GENERIC)
			continue;
		for (i = 0; i < n_seen && seen[i] != link.where; i++)
			;
		if (i < n_seen || n_seen == max_seen || link_info(de->d_name, &info))
			continue;
		seen[n_seen++] = link.where;
		defunct = !(info.type == BPF_LINK_TYPE_TCX   ? info.tcx.ifindex
			    : info.type == BPF_LINK_TYPE_XDP ? info.xdp.ifindex
							     : info.cgroup.cgroup_id);
		show_link(out, &link, defunct);
	}
	closedir(dir);
	return 0;
}

static void flow_usage(__u32 *used, __u32 *max)
{
	struct redir_flow_key key, *prev = NULL;
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct pinned_maps maps;

	*used = *max = 0;
	if (open_pinned_maps_read(&maps))
		return;
	if (!bpf_map_get_info_by_fd(maps.flows, &info, &len))
		*max = info.max_entries;
	while (!bpf_map_get_next_key(maps.flows, prev, &key)) {
		prev = &key;
		(*used)++;
	}
	close_pinned_maps(&maps);
}

static bool btf_present(void)
{
	return !access("/sys/kernel/btf/vmlinux", R_OK);
}

static bool address_watch(void)
{
	return pin_exists("links", "addrwatch_v4") && pin_exists("links", "addrwatch_v6");
}

static void status_plain(struct status_out *out)
{
	__u32 used, max;

	flow_usage(&used, &max);
	printf("pin dir:    %s\n", pin_dir);
	printf("programs:   %s\n",
	       objects_this_build_loaded()
		       ? "this build's"
		       : "another build's ('bpfredir load' or 'apply' replaces them)");
	printf("flows:      %u of %u entries in use\n", used, max);
	printf("kernel:     tcx %s, BTF %s\n", out->tcx ? "yes" : "no (legacy tc is used)",
	       btf_present() ? "yes" : "no");
	printf("addresses:  %s\n",
	       address_watch() ? "followed by the kernel (fentry)"
			       : "refreshed by bpfredir commands, or by 'bpfredir watch'");
	guard_status_plain(out->set_fd);
	steering_status_plain(out);
	printf("interfaces:\n");
	show_links(out, false);
	show_legacy(out);
	printf("cgroups:    %d attached, of %d at once\n",
	       ruleset_count(out->set_fd, POLICY_CGROUP), BPFREDIR_MAX_CGROUPS);
	show_links(out, true);
}

static void status_json(struct status_out *out)
{
	struct json_object *doc = json_object_new_object(), *obj;
	__u32 used, max;

	flow_usage(&used, &max);
	json_add(doc, "pin_dir", json_object_new_string(pin_dir));
	json_add(doc, "this_build", json_object_new_boolean(objects_this_build_loaded()));
	obj = json_object_new_object();
	json_add(obj, "used", json_object_new_int64(used));
	json_add(obj, "max", json_object_new_int64(max));
	json_add(doc, "flows", obj);
	obj = json_object_new_object();
	json_add(obj, "tcx", json_object_new_boolean(out->tcx));
	json_add(obj, "btf", json_object_new_boolean(btf_present()));
	json_add(obj, "address_watch", json_object_new_boolean(address_watch()));
	json_add(obj, "guard", json_object_new_string(guard_kind_name(guard_running())));
	json_add(doc, "features", obj);
	out->list = json_object_new_array();
	json_add(doc, "interfaces", out->list);
	show_links(out, false);
	show_legacy(out);
	out->list = json_object_new_array();
	json_add(doc, "cgroups", out->list);
	show_links(out, true);
	obj = json_object_new_object();
	json_add(obj, "attached", json_object_new_int(ruleset_count(out->set_fd, POLICY_CGROUP)));
	json_add(obj, "max", json_object_new_int(BPFREDIR_MAX_CGROUPS));
	json_add(doc, "cgroup_use", obj);
	json_add(doc, "guard", guard_status_json(out->set_fd));
	json_add(doc, "steering", steering_status_json(out));
	json_print(doc);
}

struct status_args {
	bool json;
};

static const struct opt status_opts[] = {
	OPT_FLAG(struct status_args, json, "json"),
	OPT_END,
};

static int do_status(struct instance *in, const void *cfg)
{
	const struct status_args *args = cfg;
	struct status_out out = {
		.print = args->json ? &status_json_printer : &status_plain_printer,
		.set_fd = in->maps.rules,
		.tcx = probe_tcx(),
		.steer_socket = in->maps.steer.wildcard >= 0,
		.steer = &in->maps.steer,
	};

	collect_ours(&out);
	if (args->json)
		status_json(&out);
	else
		status_plain(&out);
	cgroup_dirs_free();
	return EXIT_OK;
}

const struct cmd cmd_status = {
	.name = "status",
	.func = do_status,
	.opts = status_opts,
	.cfg_size = sizeof(struct status_args),
	.needs = NEED_ROOT | NEED_PINS | NEED_LOADED | NEED_MAPS,
	.doc = "What is loaded where: interfaces and attach mode, cgroups, flow-table use,\n"
	       "every program at the same hooks in run order (foreign ones marked), the netns\n"
	       "guard, and a WARNING for each interface where a hidden port is still reachable.\n",
};
