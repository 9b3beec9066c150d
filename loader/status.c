// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* status: what is loaded where, read back from the pins and the kernel, and what else is
 * attached at the same hooks and could see packets before ours. */
#define _XOPEN_SOURCE 700 /* nftw */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "probe.h"

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

static void warn(struct warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(struct warnings *w, const char *fmt, ...)
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

static int link_info(const char *name, struct bpf_link_info *info)
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
static void collect_ours(struct status_out *out)
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

static bool is_ours(const struct status_out *out, __u32 id)
{
	int i;

	for (i = 0; i < out->n_ours; i++)
		if (out->ours[i] == id)
			return true;
	return false;
}

/* Every program at the hook, in run order. Returns how many foreign ones run before ours
 * (or before where ours would be: all of them, when ours is not there). */
static int print_hook_progs(struct status_out *out, int target, enum bpf_attach_type type,
			    __u32 query_flags)
{
	__u32 ids[MAX_QUERY_PROGS];
	LIBBPF_OPTS(bpf_prog_query_opts, opts, .prog_ids = ids, .count = MAX_QUERY_PROGS,
		    .query_flags = query_flags);
	char name[BPF_OBJ_NAME_LEN];
	int ahead = -1;
	__u32 i;

	if (bpf_prog_query_opts(target, type, &opts))
		opts.count = 0;
	for (i = 0; i < opts.count; i++) {
		bool ours = is_ours(out, ids[i]);

		prog_name(ids[i], name, sizeof(name));
		if (ours && ahead < 0)
			ahead = i;
		if (out->json) {
			printf("%s{\"id\":%u,\"name\":", i ? "," : "", ids[i]);
			json_string(stdout, name);
			printf(",\"ours\":%s}", ours ? "true" : "false");
		} else {
			printf("%s%u:%s%s", i ? ", " : "", ids[i], name, ours ? "" : " (foreign)");
		}
	}
	return ahead < 0 ? (int)opts.count : ahead;
}

/* The tcx chains of an interface, in run order, with a warning where a foreign program runs
 * ahead of ours: one that returns TCX_PASS, redirects or drops decides before bpfredir sees
 * the packet (attached later with BPF_F_BEFORE, for instance). */
static void print_tcx_chains(struct status_out *out, int ifindex, bool ours_there,
			     struct warnings *w)
{
	static const struct {
		const char *hook;
		enum bpf_attach_type type;
	} hooks[] = { { "ingress", BPF_TCX_INGRESS }, { "egress", BPF_TCX_EGRESS } };
	size_t i;
	int ahead;

	/* No tcx, no chains: legacy filters are all there is. */
	if (!out->tcx)
		return;
	for (i = 0; i < 2; i++) {
		printf(out->json ? ",\"%s\":[" : "    %s, in run order: ", hooks[i].hook);
		ahead = print_hook_progs(out, ifindex, hooks[i].type, 0);
		printf(out->json ? "]" : "\n");
		if (ahead && ours_there)
			warn(w,
			     "%d foreign tcx program%s at %s run%s before bpfredir: a packet one "
			     "of them passes (TCX_PASS), redirects or drops never reaches bpfredir",
			     ahead, ahead > 1 ? "s" : "", hooks[i].hook, ahead > 1 ? "" : "s");
		else if (ahead && !ours_there && i == 0)
			warn(w,
			     "%d tcx program%s at ingress run%s before bpfredir's clsact filters: "
			     "a packet one of them passes (TCX_PASS) never reaches bpfredir",
			     ahead, ahead > 1 ? "s" : "", ahead > 1 ? "" : "s");
	}
}

/* The XDP program on an interface, whoever's: it runs before any TC program. */
struct xdp_seen {
	__u32 id;
	const char *mode;
	char name[BPF_OBJ_NAME_LEN];
	bool ours;
};

static void xdp_seen_query(const struct status_out *out, int ifindex, struct xdp_seen *x)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &q))
		memset(&q, 0, sizeof(q));
	/* What the kernel runs, not what a pin's name says. */
	x->id = q.drv_prog_id ?: q.skb_prog_id ?: q.hw_prog_id;
	x->mode = q.drv_prog_id ? "native" : q.skb_prog_id ? "generic" : "offloaded";
	x->ours = is_ours(out, x->id);
	prog_name(x->id, x->name, sizeof(x->name));
}

static void xdp_seen_print(const struct status_out *out, const struct xdp_seen *x)
{
	if (!x->id)
		return;
	if (out->json) {
		printf(",\"xdp_mode\":\"%s\",\"xdp_prog_name\":", x->mode);
		json_string(stdout, x->name);
		printf(",\"xdp_prog_ours\":%s", x->ours ? "true" : "false");
	} else {
		printf("; XDP program %u:%s%s (%s) runs before TC", x->id, x->name,
		       x->ours ? "" : " (foreign)", x->mode);
	}
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

int do_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		COMMON_LONG_OPTS,
		{},
	};
	struct status_out out = {};
	struct pinned_maps maps;
	bool addr_watch;
	__u32 used, max;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, ":" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		if (opt == OPT_JSON) {
			out.json = true;
			continue;
		}
		ret = common_opt(opt, argv);
		if (ret >= 0)
			return ret;
	}
	if (extra_args(argc, argv) >= 0)
		return EXIT_USAGE;
	if (require_root())
		return EXIT_FAIL;
	ret = pins_open(PINS_READ);
	if (ret || !is_loaded()) {
		pins_close();
		return ret && ret != -ENOENT ? EXIT_FAIL : fail("not loaded at %s", pin_dir);
	}
	if (open_pinned_maps(&maps)) {
		pins_close();
		return EXIT_FAIL;
	}
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
		close_pinned_maps(&maps);
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
	close_pinned_maps(&maps);
	return EXIT_OK;
}
