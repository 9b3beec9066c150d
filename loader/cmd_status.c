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

static void print_warnings(const struct status_out *out, const struct warnings *w)
{
	int i;

	if (out->json)
		printf(",\"warnings\":[");
	for (i = 0; i < w->n; i++) {
		if (out->json) {
			printf("%s", i ? "," : "");
			json_string(stdout, w->text[i]);
		} else {
			printf("    warning: %s\n", w->text[i]);
		}
	}
	if (out->json)
		printf("]");
}

#define INACTIVE_NOTE                                                                              \
	"inactive: attached, but the live rule set does not name it (an interrupted run "          \
	"left it; apply, load or detach settles it)"

/* Attached but not acting: the JSON field, or the text line's note. */
static void print_active(const struct status_out *out, __u8 kind, __u64 id)
{
	bool active = ruleset_enabled(out->set_fd, kind, id);

	if (out->json)
		printf(",\"active\":%s", active ? "true" : "false");
	else if (!active)
		printf("    " INACTIVE_NOTE "\n");
}

/* mode: from the link's pin, which a defunct link still has. */
static void print_interface(struct status_out *out, int ifindex, enum iface_mode mode, bool defunct)
{
	char ifname[IF_NAMESIZE] = "?";
	struct warnings w = {};
	struct xdp_seen xdp;
	bool egress_tc;

	if (defunct)
		warn(&w, "defunct: the interface with this index is gone, and with it the "
			 "attachment; 'bpfredir apply' or 'unload' removes what is left");
	else
		if_indextoname(ifindex, ifname);
	xdp_seen_query(out, defunct ? 0 : ifindex, &xdp);
	if (mode != IFACE_TC && !defunct && !xdp.ours)
		warn(&w, "bpfredir's XDP program is not attached here: ingress is not translated");
	/* XDP mode's egress: tcx, or a clsact filter where the kernel has no tcx. */
	egress_tc = mode != IFACE_TC && tc_legacy_egress_only(ifindex);
	if (egress_tc && !defunct && !iface_attached(ifindex))
		warn(&w, "missing: bpfredir's egress filter is gone (its clsact qdisc deleted?): "
			 "replies leave with the target port; 'bpfredir apply' attaches again");
	if (out->json) {
		printf("%s{\"ifindex\":%d,\"name\":", out->first ? "" : ",", ifindex);
		if (defunct)
			printf("null");
		else
			json_string(stdout, ifname);
		printf(",\"mode\":\"%s\",\"defunct\":%s,\"xdp_prog_id\":%u",
		       mode == IFACE_TC ? "tcx" : "xdp", defunct ? "true" : "false", xdp.id);
		if (mode != IFACE_TC)
			printf(",\"egress_by\":\"%s\"", egress_tc ? "tc" : "tcx");
		xdp_seen_print(out, &xdp);
	} else if (mode == IFACE_TC) {
		printf("  %s (ifindex %d): tcx", ifname, ifindex);
		xdp_seen_print(out, &xdp);
		printf("\n");
	} else {
		printf("  %s (ifindex %d): xdp (%s), XDP program %u; egress by %s\n", ifname,
		       ifindex, xdp.id ? xdp.mode : "not attached", xdp.id,
		       egress_tc ? "tc (a clsact filter)" : "tcx");
	}
	print_active(out, POLICY_IFACE, ifindex);
	if (!defunct)
		print_tcx_chains(out, ifindex, true, &w);
	print_warnings(out, &w);
	if (out->json)
		printf("}");
	out->first = false;
}

/* An interface attached by legacy tc: its clsact qdisc and our filters' priorities. Filters
 * are no links, so they vanish without a trace when someone deletes the qdisc: ask the
 * kernel whether they are still there. */
static void print_legacy_one(int map_fd, int ifindex, void *arg)
{
	struct status_out *out = arg;
	char ifname[IF_NAMESIZE] = "?";
	struct redir_tc_attach rec;
	struct warnings w = {};
	__u32 key = ifindex, prog_ids[2];
	struct xdp_seen xdp;
	bool in, eg, defunct;

	if (bpf_map_lookup_elem(map_fd, &key, &rec))
		return;
	/* An egress filter alone is XDP mode's, shown with its XDP link (print_interface). */
	if (!rec.priority[0] &&
	    (pin_exists("links", pin_link_name(LINK_XDP_NATIVE, ifindex, NULL)) ||
	     pin_exists("links", pin_link_name(LINK_XDP_GENERIC, ifindex, NULL))))
		return;
	defunct = !if_indextoname(ifindex, ifname);
	xdp_seen_query(out, defunct ? 0 : ifindex, &xdp);
	tc_legacy_query(ifindex, &rec, prog_ids);
	in = is_ours(out, prog_ids[0]);
	eg = is_ours(out, prog_ids[1]);
	if (defunct)
		warn(&w, "defunct: the interface with this index is gone, and our filters with "
			 "it; 'bpfredir apply' or 'unload' removes the record");
	else if (!in || !eg)
		warn(&w,
		     "missing: bpfredir's %s gone (its clsact qdisc deleted?); 'bpfredir load' "
		     "or 'apply' attaches again",
		     !in && !eg ? "ingress and egress filters are"
		     : !in	? "ingress filter is"
				: "egress filter is");
	if (out->json) {
		printf("%s{\"ifindex\":%d,\"name\":", out->first ? "" : ",", ifindex);
		if (defunct)
			printf("null");
		else
			json_string(stdout, ifname);
		printf(",\"mode\":\"tc\",\"defunct\":%s,\"handle\":%u,\"priority\":[%u,%u],"
		       "\"qdisc_ours\":%s,\"filters_present\":[%s,%s]",
		       defunct ? "true" : "false", BPFREDIR_TC_HANDLE, rec.priority[0],
		       rec.priority[1], rec.made_qdisc ? "true" : "false", in ? "true" : "false",
		       eg ? "true" : "false");
		xdp_seen_print(out, &xdp);
		print_active(out, POLICY_IFACE, ifindex);
	} else {
		printf("  %s (ifindex %d): tc, clsact qdisc %s, filters handle 0x%x at priority %u "
		       "(ingress) and %u (egress)%s",
		       ifname, ifindex, rec.made_qdisc ? "made by bpfredir" : "found in place",
		       BPFREDIR_TC_HANDLE, rec.priority[0], rec.priority[1],
		       out->tcx ? "; tcx programs run before them" : "");
		xdp_seen_print(out, &xdp);
		printf("\n");
		print_active(out, POLICY_IFACE, ifindex);
	}
	if (!defunct)
		print_tcx_chains(out, ifindex, false, &w);
	print_warnings(out, &w);
	if (out->json)
		printf("}");
	out->first = false;
}

static void print_legacy(struct status_out *out)
{
	int map_fd = open_tc_legacy_map();

	if (map_fd < 0)
		return;
	tc_legacy_each(map_fd, print_legacy_one, out);
	close(map_fd);
}

static __u64 wanted_cgroup_id;
static char found_cgroup[PATH_MAX];

static int match_cgroup(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag != FTW_D || st->st_ino != wanted_cgroup_id)
		return 0;
	snprintf(found_cgroup, sizeof(found_cgroup), "%s", path);
	return 1;
}

/* Links know the cgroup by id only; on cgroup2 that is the directory's inode number. */
static const char *cgroup_path_of(__u64 id)
{
	char root[PATH_MAX];
	int fd;
	__u64 root_id;

	found_cgroup[0] = '\0';
	if (open_cgroup(NULL, root, sizeof(root), &fd, &root_id))
		return NULL;
	close(fd);
	wanted_cgroup_id = id;
	if (nftw(root, match_cgroup, 32, FTW_PHYS | FTW_MOUNT) != 1)
		return NULL;
	return found_cgroup;
}

static void print_cgroup(struct status_out *out, __u64 id, bool defunct)
{
	const char *path = defunct ? NULL : cgroup_path_of(id);
	int fd = path ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	struct warnings w = {};

	if (defunct)
		warn(&w, "defunct: the cgroup was removed, and the kernel detached the hooks; "
			 "a cgroup made again under the same path is another cgroup "
			 "('bpfredir apply' or 'attach' attaches to it)");
	if (out->json) {
		printf("%s{\"id\":%llu,\"path\":", out->first ? "" : ",", (unsigned long long)id);
		if (path)
			json_string(stdout, path);
		else
			printf("null");
		printf(",\"defunct\":%s", defunct ? "true" : "false");
		print_active(out, POLICY_CGROUP, id);
		printf(",\"connect4\":[");
	} else {
		printf("  %s (id %llu)\n    connect4, this cgroup's own: ", path ? path : "?",
		       (unsigned long long)id);
	}
	if (fd >= 0) {
		print_hook_progs(out, fd, BPF_CGROUP_INET4_CONNECT, 0);
		close(fd);
	}
	printf(out->json ? "]" : "\n");
	if (!out->json)
		print_active(out, POLICY_CGROUP, id);
	print_warnings(out, &w);
	if (out->json)
		printf("}");
	out->first = false;
}

/* Each interface (cgroups: each cgroup) with a link of ours, once, from the pins' names; a
 * link whose interface or cgroup is gone still has its pin, and the kernel then reports it
 * attached nowhere (index or id 0). A list starts with out->first set. */
static int print_links(struct status_out *out, bool cgroups)
{
	struct bpf_link_info info;
	struct pin_link link;
	__u64 seen[256];
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
		if (i < n_seen || n_seen == 256 || link_info(de->d_name, &info))
			continue;
		seen[n_seen++] = link.where;
		defunct = !(info.type == BPF_LINK_TYPE_TCX   ? info.tcx.ifindex
			    : info.type == BPF_LINK_TYPE_XDP ? info.xdp.ifindex
							     : info.cgroup.cgroup_id);
		if (cgroups)
			print_cgroup(out, link.where, defunct);
		else
			print_interface(out, link.where,
					link.kind == LINK_XDP_NATIVE	? IFACE_XDP
					: link.kind == LINK_XDP_GENERIC ? IFACE_XDP_GENERIC
									: IFACE_TC,
					defunct);
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
	if (open_pinned_maps(&maps))
		return;
	if (!bpf_map_get_info_by_fd(maps.flows, &info, &len))
		*max = info.max_entries;
	while (!bpf_map_get_next_key(maps.flows, prev, &key)) {
		prev = &key;
		(*used)++;
	}
	close_pinned_maps(&maps);
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
	struct status_out out = { .json = args->json };
	struct pinned_maps maps = in->maps;
	bool addr_watch;
	__u32 used, max;

	out.set_fd = maps.rules;
	out.tcx = probe_tcx();
	collect_ours(&out);

	flow_usage(&used, &max);
	addr_watch = pin_exists("links", "addrwatch_v4") && pin_exists("links", "addrwatch_v6");
	if (out.json) {
		printf("{\"pin_dir\":");
		json_string(stdout, pin_dir);
		printf(",\"flows\":{\"used\":%u,\"max\":%u},\"features\":{\"tcx\":%s,"
		       "\"btf\":%s,\"address_watch\":%s,\"guard\":\"%s\"},\"interfaces\":[",
		       used, max, out.tcx ? "true" : "false",
		       access("/sys/kernel/btf/vmlinux", R_OK) ? "false" : "true",
		       addr_watch ? "true" : "false", guard_kind_name(guard_running()));
		out.first = true;
		print_links(&out, false);
		print_legacy(&out);
		printf("],\"cgroups\":[");
		out.first = true;
		print_links(&out, true);
		printf("],\"guard\":");
		guard_status(maps.rules, true);
		printf("}\n");
		return EXIT_OK;
	}
	printf("pin dir:    %s\n", pin_dir);
	printf("flows:      %u of %u entries in use\n", used, max);
	printf("kernel:     tcx %s, BTF %s\n", out.tcx ? "yes" : "no (legacy tc is used)",
	       access("/sys/kernel/btf/vmlinux", R_OK) ? "no" : "yes");
	printf("addresses:  %s\n",
	       addr_watch ? "followed by the kernel (fentry)"
			  : "refreshed by bpfredir commands, or by 'bpfredir watch'");
	guard_status(maps.rules, false);
	printf("interfaces:\n");
	print_links(&out, false);
	print_legacy(&out);
	printf("cgroups:\n");
	print_links(&out, true);
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
