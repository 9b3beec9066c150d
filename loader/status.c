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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"

#define MAX_QUERY_PROGS 64

struct status_out {
	bool json;
	bool first; /* first element of the JSON array being printed */
	int set_fd; /* the live rule set, which says which attachments act */
};

#define INACTIVE_NOTE                                                                              \
	"inactive: attached, but the live rule set does not name it (an interrupted run "          \
	"left it; apply, load or detach settles it)"

/* Attached but not acting: the JSON field, or the text line's note. */
static void print_active(const struct status_out *out, __u8 kind, __u64 id)
{
	bool active = set_has_attachment(out->set_fd, kind, id);

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

static bool is_ours(const char *name)
{
	return !strncmp(name, "bpfredir_", strlen("bpfredir_"));
}

/* Every program at the hook, in run order, so a foreign one ahead of ours stands out. */
static void print_hook_progs(struct status_out *out, int target, enum bpf_attach_type type,
			     __u32 query_flags)
{
	__u32 ids[MAX_QUERY_PROGS];
	LIBBPF_OPTS(bpf_prog_query_opts, opts, .prog_ids = ids, .count = MAX_QUERY_PROGS,
		    .query_flags = query_flags);
	char name[BPF_OBJ_NAME_LEN];
	__u32 i;

	if (bpf_prog_query_opts(target, type, &opts))
		opts.count = 0;
	for (i = 0; i < opts.count; i++) {
		prog_name(ids[i], name, sizeof(name));
		if (out->json)
			printf("%s{\"id\":%u,\"name\":\"%s\",\"ours\":%s}", i ? "," : "", ids[i],
			       name, is_ours(name) ? "true" : "false");
		else
			printf("%s%u:%s%s", i ? ", " : "", ids[i], name,
			       is_ours(name) ? "" : " (foreign)");
	}
}

static int link_info(const char *sub, const char *name, struct bpf_link_info *info)
{
	char path[PATH_MAX];
	__u32 len = sizeof(*info);
	int fd, err = 0;

	memset(info, 0, sizeof(*info));
	if (pin_path(path, sizeof(path), sub, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_link_get_info_by_fd(fd, info, &len))
		err = -errno;
	close(fd);
	return err;
}

static void print_interface(struct status_out *out, int ifindex)
{
	static const struct {
		const char *hook;
		enum bpf_attach_type type;
	} hooks[] = { { "ingress", BPF_TCX_INGRESS }, { "egress", BPF_TCX_EGRESS } };
	LIBBPF_OPTS(bpf_xdp_query_opts, xdp);
	char ifname[IF_NAMESIZE] = "?";
	int mode = iface_mode_of(ifindex);
	char xdp_name[BPF_OBJ_NAME_LEN];
	const char *xdp_mode;
	__u32 xdp_id;
	size_t i;

	if_indextoname(ifindex, ifname);
	if (bpf_xdp_query(ifindex, 0, &xdp))
		memset(&xdp, 0, sizeof(xdp));
	/* What the kernel runs, not what the pin's name says. */
	xdp_id = xdp.drv_prog_id ?: xdp.skb_prog_id ?: xdp.hw_prog_id;
	xdp_mode = xdp.drv_prog_id ? "native" : xdp.skb_prog_id ? "generic" : "offloaded";
	prog_name(xdp_id, xdp_name, sizeof(xdp_name));
	if (out->json) {
		printf("%s{\"ifindex\":%d,\"name\":", out->first ? "" : ",", ifindex);
		json_string(stdout, ifname);
		printf(",\"mode\":\"%s\",\"xdp_prog_id\":%u", mode == IFACE_TC ? "tcx" : "xdp",
		       xdp_id);
		if (xdp_id) {
			printf(",\"xdp_mode\":\"%s\",\"xdp_prog_name\":", xdp_mode);
			json_string(stdout, xdp_name);
			printf(",\"xdp_prog_ours\":%s", is_ours(xdp_name) ? "true" : "false");
		}
	} else if (mode == IFACE_TC) {
		printf("  %s (ifindex %d): tcx", ifname, ifindex);
		if (xdp_id)
			printf("; XDP program %u:%s%s (%s) runs before TC", xdp_id, xdp_name,
			       is_ours(xdp_name) ? "" : " (foreign)", xdp_mode);
		printf("\n");
	} else {
		printf("  %s (ifindex %d): xdp (%s), XDP program %u; egress by tcx\n", ifname,
		       ifindex, xdp_id ? xdp_mode : "not attached", xdp_id);
	}
	print_active(out, POLICY_IFACE, ifindex);
	for (i = 0; i < 2; i++) {
		printf(out->json ? ",\"%s\":[" : "    %s, in run order: ", hooks[i].hook);
		print_hook_progs(out, ifindex, hooks[i].type, 0);
		printf(out->json ? "]" : "\n");
	}
	if (out->json)
		printf("}");
	out->first = false;
}

/* An interface attached by legacy tc: its clsact qdisc and our filters' priorities. */
static void print_legacy_one(int map_fd, int ifindex, void *arg)
{
	struct status_out *out = arg;
	char ifname[IF_NAMESIZE] = "?";
	struct redir_tc_attach rec;
	__u32 key = ifindex;

	if (bpf_map_lookup_elem(map_fd, &key, &rec))
		return;
	if_indextoname(ifindex, ifname);
	if (out->json) {
		printf("%s{\"ifindex\":%d,\"name\":", out->first ? "" : ",", ifindex);
		json_string(stdout, ifname);
		printf(",\"mode\":\"tc\",\"handle\":%u,\"priority\":[%u,%u],\"qdisc_ours\":%s",
		       BPFREDIR_TC_HANDLE, rec.priority[0], rec.priority[1],
		       rec.made_qdisc ? "true" : "false");
		print_active(out, POLICY_IFACE, ifindex);
		printf("}");
	} else {
		printf("  %s (ifindex %d): tc, clsact qdisc %s, filters handle 0x%x at priority %u "
		       "(ingress) and %u (egress); tcx programs run before them\n",
		       ifname, ifindex, rec.made_qdisc ? "made by bpfredir" : "found in place",
		       BPFREDIR_TC_HANDLE, rec.priority[0], rec.priority[1]);
		print_active(out, POLICY_IFACE, ifindex);
	}
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

static void print_cgroup(struct status_out *out, __u64 id)
{
	const char *path = cgroup_path_of(id);
	int fd = path ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

	if (out->json) {
		printf("%s{\"id\":%llu,\"path\":", out->first ? "" : ",", (unsigned long long)id);
		if (path)
			json_string(stdout, path);
		else
			printf("null");
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
	printf(out->json ? "]}" : "\n");
	if (!out->json)
		print_active(out, POLICY_CGROUP, id);
	out->first = false;
}

/* Walk links/ for one kind of link and print each distinct interface or cgroup once; a list
 * starts with out->first set. */
static int print_links(struct status_out *out, const char *prefix)
{
	struct bpf_link_info info;
	__u64 seen[256];
	int n_seen = 0, i;
	struct dirent *de;
	DIR *dir = pin_opendir("links");

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		__u64 where;

		if (strncmp(de->d_name, prefix, strlen(prefix)) ||
		    link_info("links", de->d_name, &info))
			continue;
		where = info.type == BPF_LINK_TYPE_TCX	 ? info.tcx.ifindex
			: info.type == BPF_LINK_TYPE_XDP ? info.xdp.ifindex
							 : info.cgroup.cgroup_id;
		for (i = 0; i < n_seen && seen[i] != where; i++)
			;
		if (i < n_seen || n_seen == 256)
			continue;
		seen[n_seen++] = where;
		if (info.type == BPF_LINK_TYPE_TCX || info.type == BPF_LINK_TYPE_XDP)
			print_interface(out, where);
		else
			print_cgroup(out, where);
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

/* Does this kernel have tcx? A tcx query on loopback answers where it does. */
static bool kernel_has_tcx(void)
{
	LIBBPF_OPTS(bpf_prog_query_opts, opts);
	int lo = if_nametoindex("lo");

	return lo && !bpf_prog_query_opts(lo, BPF_TCX_INGRESS, &opts);
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

	flow_usage(&used, &max);
	addr_watch = pin_exists("links", "addrwatch_v4") && pin_exists("links", "addrwatch_v6");
	if (out.json) {
		printf("{\"pin_dir\":");
		json_string(stdout, pin_dir);
		printf(",\"flows\":{\"used\":%u,\"max\":%u},\"features\":{\"tcx\":%s,"
		       "\"btf\":%s,\"address_watch\":%s,\"guard\":\"%s\"},\"interfaces\":[",
		       used, max, kernel_has_tcx() ? "true" : "false",
		       access("/sys/kernel/btf/vmlinux", R_OK) ? "false" : "true",
		       addr_watch ? "true" : "false", guard_kind_name(guard_running()));
		out.first = true;
		print_links(&out, "tcx_ingress_");
		print_links(&out, "xdp_");
		print_legacy(&out);
		printf("],\"cgroups\":[");
		out.first = true;
		print_links(&out, "cgroup_");
		printf("],\"guard\":");
		guard_status(maps.rules, true);
		printf("}\n");
		close_pinned_maps(&maps);
		return EXIT_OK;
	}
	printf("pin dir:    %s\n", pin_dir);
	printf("flows:      %u of %u entries in use\n", used, max);
	printf("kernel:     tcx %s, BTF %s\n", kernel_has_tcx() ? "yes" : "no (legacy tc is used)",
	       access("/sys/kernel/btf/vmlinux", R_OK) ? "no" : "yes");
	printf("addresses:  %s\n",
	       addr_watch ? "followed by the kernel (fentry)"
			  : "refreshed by bpfredir commands, or by 'bpfredir watch'");
	guard_status(maps.rules, false);
	printf("interfaces:\n");
	print_links(&out, "tcx_ingress_");
	print_links(&out, "xdp_");
	print_legacy(&out);
	printf("cgroups:\n");
	print_links(&out, "cgroup_");
	close_pinned_maps(&maps);
	return EXIT_OK;
}
