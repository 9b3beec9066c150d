// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* What bpfredir pins is named here and nowhere else: the socket programs and their hooks, the
 * links (made and parsed by one pair), and the pinned programs opened by name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include "pins.h"
#include "steer.h"

const struct sock_hook sock_hooks[N_SOCK_HOOKS] = {
	{ "bpfredir_conn4", "conn4", BPF_CGROUP_INET4_CONNECT },
	{ "bpfredir_conn6", "conn6", BPF_CGROUP_INET6_CONNECT },
	{ "bpfredir_send4", "send4", BPF_CGROUP_UDP4_SENDMSG },
	{ "bpfredir_send6", "send6", BPF_CGROUP_UDP6_SENDMSG },
	{ "bpfredir_recv4", "recv4", BPF_CGROUP_UDP4_RECVMSG },
	{ "bpfredir_recv6", "recv6", BPF_CGROUP_UDP6_RECVMSG },
	{ "bpfredir_peer4", "peer4", BPF_CGROUP_INET4_GETPEERNAME },
	{ "bpfredir_peer6", "peer6", BPF_CGROUP_INET6_GETPEERNAME },
};

/* Every link bpfredir pins, and its name under links/: the one place names are made and read
 * back. bpffs reserves '.' in names, so an ifindex stands in for names like eth0.100. */
static const struct {
	const char *prefix;
	bool numbered; /* PREFIX_<where>, and for cgroups PREFIX_<where>_<hook> */
} link_kinds[LINK__MAX] = {
	[LINK_TCX_INGRESS] = { "tcx_ingress", true },
	[LINK_TCX_EGRESS] = { "tcx_egress", true },
	[LINK_XDP_NATIVE] = { "xdp_native", true },
	[LINK_XDP_GENERIC] = { "xdp_generic", true },
	[LINK_CGROUP] = { "cgroup", true },
	[LINK_ADDRWATCH_V4] = { "addrwatch_v4", false },
	[LINK_ADDRWATCH_V6] = { "addrwatch_v6", false },
	[LINK_GUARD_NF4] = { "guard_nf4", false },
	[LINK_GUARD_NF6] = { "guard_nf6", false },
	[LINK_GUARD_SK_LOOKUP] = { "guard_sk_lookup", false },
	[LINK_STEER_SK_LOOKUP] = { "steer_sk_lookup", false },
};

const char *pin_link_name(enum pin_link_kind kind, __u64 where, const char *hook)
{
	static char name[NAME_MAX + 1];

	if (!link_kinds[kind].numbered)
		snprintf(name, sizeof(name), "%s", link_kinds[kind].prefix);
	else if (kind == LINK_CGROUP)
		snprintf(name, sizeof(name), "%s_%llu_%s", link_kinds[kind].prefix,
			 (unsigned long long)where, hook);
	else
		snprintf(name, sizeof(name), "%s_%llu", link_kinds[kind].prefix,
			 (unsigned long long)where);
	return name;
}

/* Strictly the inverse: decimal without sign or leading zeros, and for a cgroup a hook of
 * sock_hooks; false for any name pin_link_name() never makes. */
bool pin_link_parse(const char *name, struct pin_link *link)
{
	enum pin_link_kind kind;
	const char *p;
	char *end;
	size_t len;
	int i;

	for (kind = 0; kind < LINK__MAX; kind++) {
		len = strlen(link_kinds[kind].prefix);
		if (strncmp(name, link_kinds[kind].prefix, len))
			continue;
		link->kind = kind;
		link->where = 0;
		link->hook = NULL;
		if (!link_kinds[kind].numbered) {
			if (!name[len])
				return true;
			continue;
		}
		p = name + len;
		if (*p++ != '_' || *p < '1' || *p > '9')
			continue;
		errno = 0;
		link->where = strtoull(p, &end, 10);
		if (errno)
			continue;
		if (kind != LINK_CGROUP) {
			if (!*end)
				return true;
			continue;
		}
		if (*end != '_')
			continue;
		for (i = 0; i < N_SOCK_HOOKS; i++)
			if (!strcmp(end + 1, sock_hooks[i].suffix)) {
				link->hook = sock_hooks[i].suffix;
				return true;
			}
		if (!strcmp(end + 1, STEER_LISTEN_SUFFIX)) {
			link->hook = STEER_LISTEN_SUFFIX;
			return true;
		}
	}
	return false;
}

/* A link pin whose link is still attached: the kernel keeps a link whose interface or
 * cgroup went away, attached nowhere (index or id 0). */
bool pin_link_alive(const char *name)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	bool alive = false;
	int fd;

	if (pin_path(path, sizeof(path), "links", name))
		return false;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return false;
	if (!bpf_link_get_info_by_fd(fd, &info, &len))
		switch (info.type) {
		case BPF_LINK_TYPE_TCX:
			alive = info.tcx.ifindex;
			break;
		case BPF_LINK_TYPE_XDP:
			alive = info.xdp.ifindex;
			break;
		case BPF_LINK_TYPE_CGROUP:
			alive = info.cgroup.cgroup_id;
			break;
		default:
			alive = true;
		}
	close(fd);
	return alive;
}

/* Programs live in DIR/progs under their own names, for attach, apply and reload. */
int open_pinned_prog(const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (pin_path(path, sizeof(path), "progs", name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int open_pinned_tc_progs(int fds[2])
{
	const char *names[] = { TC_IN_PROG_NAME, TC_EG_PROG_NAME };
	int i;

	fds[0] = fds[1] = -1;
	for (i = 0; i < 2; i++) {
		fds[i] = open_pinned_prog(names[i]);
		if (fds[i] < 0)
			return fds[i];
	}
	return 0;
}

int open_pinned_progs(int prog_fds[N_SOCK_HOOKS])
{
	int i;

	for (i = 0; i < N_SOCK_HOOKS; i++)
		prog_fds[i] = -1;
	for (i = 0; i < N_SOCK_HOOKS; i++) {
		prog_fds[i] = open_pinned_prog(sock_hooks[i].prog);
		if (prog_fds[i] < 0)
			return prog_fds[i];
	}
	return 0;
}

void close_fds(int *fds, int n)
{
	while (n--)
		if (fds[n] >= 0)
			close(fds[n]);
}
