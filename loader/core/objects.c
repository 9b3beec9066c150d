// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The skeleton set, in the libbpf-bootstrap order: open, set rodata and map pins, load, and
 * one cleanup; the first object's maps are every later object's. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "iface.h"
#include "log.h"
#include "objects.h"
#include "pending.h"
#include "pins.h"
#include "probe.h"
#include "tc.skel.h"
#include "sock.skel.h"
#include "xdp.skel.h"
#include "addrwatch.skel.h"
#include "guard.skel.h"
#include "steer.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

__u32 lru_min_entries(void)
{
	int n_cpus = libbpf_num_possible_cpus();

	return (n_cpus > 0 ? n_cpus : 1) * BPFREDIR_LRU_PER_CPU;
}

__u32 flows_entries(__u32 want)
{
	__u32 min = lru_min_entries();

	return want > min ? want : min;
}

__u32 pending_buckets_for(__u32 flows)
{
	/* One way per new connection (two for a closing one): an eighth of flows holds the
	 * handshakes of an eighth of its connections. */
	__u32 ways = flows / 8;

	if (ways < BPFREDIR_MIN_PENDING)
		ways = BPFREDIR_MIN_PENDING;
	return (ways + BPFREDIR_PENDING_WAYS - 1) / BPFREDIR_PENDING_WAYS;
}

int pinned_map_entries(const char *name, __u32 *entries)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, err = pin_path(path, sizeof(path), "maps", name);

	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0 || bpf_map_get_info_by_fd(fd, &info, &len))
		err = -errno;
	if (fd >= 0)
		close(fd);
	*entries = info.max_entries;
	return err;
}

/* A table already pinned keeps its size, whatever this build would make it: a load over a
 * loaded instance reuses every map, and libbpf refuses one whose size differs. */
static int set_table_size(struct bpf_map *map, __u32 want)
{
	__u32 pinned;

	if (!pinned_map_entries(bpf_map__name(map), &pinned))
		want = pinned;
	return bpf_map__set_max_entries(map, want);
}

/* Every object's maps are pinned by name in DIR/maps: the first load creates and pins them,
 * later objects reuse the same maps. */
static int set_map_pins(struct bpf_object *obj, struct bpf_map *flows,
			struct bpf_map *pending_buckets, __u32 n_flows)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj)
	{
		/* policy is pinned last, by hand: its pin marks the instance as loaded. */
		if (bpf_map__is_internal(map) || !strcmp(bpf_map__name(map), "policy"))
			continue;
		if (pin_path(path, sizeof(path), "maps", bpf_map__name(map)))
			return -ENAMETOOLONG;
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
	}
	n_flows = flows_entries(n_flows);
	err = set_table_size(flows, n_flows);
	return err ? err : set_table_size(pending_buckets, pending_buckets_for(n_flows));
}

int objects_share_maps(struct bpf_object *obj, const struct bpf_object *from)
{
	struct bpf_map *map, *same;
	int err;

	bpf_object__for_each_map(map, obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		same = bpf_object__find_map_by_name(from, bpf_map__name(map));
		if (!same)
			continue;
		err = bpf_map__reuse_fd(map, bpf_map__fd(same));
		if (err)
			return pr_warn_err(err, "sharing map %s: %s", bpf_map__name(map),
					   strerror(-err));
	}
	return 0;
}

int objects_netns_cookie(__u64 *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	close(fd);
	return err;
}

/* Every object runs on one set of maps: the TC object's, pinned in DIR/maps (policy too on a
 * reload), the others reusing them. */
int objects_load(struct objects *o, __u32 flows, bool reload, enum objects_stage *stage)
{
	__u32 fib_flags;
	int err;

	*stage = OBJECTS_OPEN;
	o->tc = tc_bpf__open();
	o->sock = sock_bpf__open();
	o->addrwatch = addrwatch_bpf__open();
	if (!o->tc || !o->sock)
		return -errno;
	/* A probe that cannot run leaves the flag out: the lookup works without it. */
	fib_flags = probe_fib_skip_neigh() > 0 ? BPF_FIB_LOOKUP_SKIP_NEIGH : 0;
	o->tc->rodata->fib_lookup_flags = fib_flags;
	*stage = OBJECTS_TC;
	err = set_map_pins(o->tc->obj, o->tc->maps.flows, o->tc->maps.pending_buckets, flows);
	if (!err && reload) {
		char path[PATH_MAX];

		err = pin_path(path, sizeof(path), "maps", "policy");
		if (!err)
			err = bpf_map__set_pin_path(o->tc->maps.policy, path);
	}
	if (!err)
		err = tc_bpf__load(o->tc);
	if (!err)
		err = pending_seed_init(bpf_map__fd(o->tc->maps.pending_seed));
	if (err)
		return err;

	*stage = OBJECTS_XDP;
	o->xdp = xdp_bpf__open();
	if (o->xdp)
		o->xdp->rodata->fib_lookup_flags = fib_flags;
	err = o->xdp ? set_map_pins(o->xdp->obj, o->xdp->maps.flows, o->xdp->maps.pending_buckets,
				    flows)
		     : -errno;
	if (!err)
		err = bpf_map__reuse_fd(o->xdp->maps.policy, bpf_map__fd(o->tc->maps.policy));
	if (!err)
		err = xdp_bpf__load(o->xdp);
	if (err)
		return err;

	*stage = OBJECTS_NETNS;
	err = objects_netns_cookie((__u64 *)&o->sock->rodata->netns_cookie);
	if (err)
		return err;
	*stage = OBJECTS_SOCK;
	err = set_map_pins(o->sock->obj, o->sock->maps.flows, o->sock->maps.pending_buckets, flows);
	if (!err)
		err = bpf_map__reuse_fd(o->sock->maps.policy, bpf_map__fd(o->tc->maps.policy));
	return err ? err : sock_bpf__load(o->sock);
}

void objects_free(struct objects *o)
{
	addrwatch_bpf__destroy(o->addrwatch);
	sock_bpf__destroy(o->sock);
	xdp_bpf__destroy(o->xdp);
	tc_bpf__destroy(o->tc);
	memset(o, 0, sizeof(*o));
}

static int pin_prog(struct bpf_program *prog, int *fd)
{
	char path[PATH_MAX];

	if (!prog || pin_path(path, sizeof(path), "progs", bpf_program__name(prog)) ||
	    bpf_program__pin(prog, path))
		return pr_warn_err(-errno, "cannot pin program %s: %s",
				   prog ? bpf_program__name(prog) : "?", strerror(errno));
	*fd = bpf_program__fd(prog);
	return 0;
}

/* The socket programs stay pinned so 'attach' can link them to more cgroups later, the TC and
 * XDP programs so 'apply' can attach them to more interfaces. */
int objects_pin_progs(struct objects *o, int tc_fds[2], int *xdp_fd, int sock_fds[N_SOCK_HOOKS])
{
	int i, err;

	err = pin_prog(o->tc->progs.bpfredir_tc_in, &tc_fds[0]);
	if (!err)
		err = pin_prog(o->tc->progs.bpfredir_tc_eg, &tc_fds[1]);
	if (!err)
		err = objects_pin_l3_progs(o);
	if (!err)
		err = objects_pin_xdp_prog(o, xdp_fd);
	for (i = 0; i < N_SOCK_HOOKS && !err; i++)
		err = pin_prog(bpf_object__find_program_by_name(o->sock->obj, sock_hooks[i].prog),
			       &sock_fds[i]);
	return err;
}

/* The TC programs for L3 devices, which attach_iface() picks by the device's type. */
int objects_pin_l3_progs(struct objects *o)
{
	int fd;

	return pin_prog(o->tc->progs.bpfredir_l3_in, &fd)
		       ?: pin_prog(o->tc->progs.bpfredir_l3_eg, &fd);
}

int objects_pin_xdp_prog(struct objects *o, int *xdp_fd)
{
	return pin_prog(o->xdp->progs.bpfredir_xdp, xdp_fd);
}

int objects_watch_addresses(struct objects *o, __u32 flows, struct pin_txn *txn)
{
	struct bpf_program *progs[] = { o->addrwatch ? o->addrwatch->progs.bpfredir_addr4 : NULL,
					o->addrwatch ? o->addrwatch->progs.bpfredir_addr6 : NULL };
	const enum pin_link_kind links[] = { LINK_ADDRWATCH_V4, LINK_ADDRWATCH_V6 };
	char path[PATH_MAX];
	struct bpf_link *link;
	int err = 0;
	size_t i;

	if (!o->addrwatch)
		err = -errno;
	else
		err = objects_netns_cookie((__u64 *)&o->addrwatch->rodata->netns_cookie);
	if (!err)
		err = set_map_pins(o->addrwatch->obj, o->addrwatch->maps.flows,
				   o->addrwatch->maps.pending_buckets, flows);
	if (!err)
		err = bpf_map__reuse_fd(o->addrwatch->maps.policy, bpf_map__fd(o->tc->maps.policy));
	if (!err)
		err = addrwatch_bpf__load(o->addrwatch);
	for (i = 0; i < 2 && !err; i++) {
		link = bpf_program__attach_trace(progs[i]);
		if (!link) {
			err = -errno;
			break;
		}
		err = pin_path(path, sizeof(path), "links", pin_link_name(links[i], 0, NULL));
		if (!err)
			err = pin_link_fd(txn, dup(bpf_link__fd(link)), path);
		bpf_link__destroy(link);
	}
	return err;
}

/* What identifies a build's BPF side: a hash of its objects, as the skeletons embed them.
 * Kept in maps/build, so a load or apply of the build already loaded skips loading every
 * program (and through the verifier) only to find the same code. */
static __u64 objects_build_id(void)
{
	const void *(*objects[])(size_t *) = { tc_bpf__elf_bytes,    xdp_bpf__elf_bytes,
					       sock_bpf__elf_bytes,  addrwatch_bpf__elf_bytes,
					       guard_bpf__elf_bytes, steer_bpf__elf_bytes };
	__u64 hash = 0xcbf29ce484222325ULL; /* FNV-1a */
	const unsigned char *bytes;
	size_t i, n, j;

	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		bytes = objects[i](&n);
		for (j = 0; j < n; j++)
			hash = (hash ^ bytes[j]) * 0x100000001b3ULL;
	}
	return hash;
}

/* maps/build holds the build that last loaded or upgraded the instance; 0 if none says. */
static __u64 objects_loaded_build(void)
{
	char path[PATH_MAX];
	__u32 key = 0;
	__u64 build = 0;
	int fd;

	if (pin_path(path, sizeof(path), "maps", "build"))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &key, &build))
		build = 0;
	close(fd);
	return build;
}

bool objects_this_build_loaded(void)
{
	return objects_loaded_build() == objects_build_id();
}

int objects_record_build(void)
{
	char path[PATH_MAX];
	__u64 build = objects_build_id();
	__u32 key = 0;
	int fd, err = 0;

	if (pin_path(path, sizeof(path), "maps", "build"))
		return -EBADF;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "build", sizeof(key), sizeof(build), 1,
				    NULL);
		if (fd < 0)
			return -errno;
		if (bpf_obj_pin(fd, path))
			err = -errno;
	}
	if (!err && bpf_map_update_elem(fd, &key, &build, BPF_ANY))
		err = -errno;
	close(fd);
	return err;
}

bool progs_same_code(int old_fd, int new_fd)
{
	struct bpf_prog_info a = {}, b = {};
	__u32 len = sizeof(a);

	if (bpf_prog_get_info_by_fd(old_fd, &a, &len))
		return false;
	len = sizeof(b);
	if (bpf_prog_get_info_by_fd(new_fd, &b, &len))
		return false;
	return !memcmp(a.tag, b.tag, sizeof(a.tag));
}

static struct bpf_program *new_prog_named(struct objects *o, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(o->tc->obj, name);

	if (!prog)
		prog = bpf_object__find_program_by_name(o->xdp->obj, name);
	return prog ? prog : bpf_object__find_program_by_name(o->sock->obj, name);
}

int objects_repin_progs(struct objects *o)
{
	int tc_fds[2], sock_fds[N_SOCK_HOOKS], xdp_fd;
	struct dirent *de;
	DIR *dir = pin_opendir("progs");

	if (!dir)
		return pr_warn_err(-errno, "cannot read %s: %s", pin_display("progs", NULL),
				   strerror(errno));
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			pin_unlink("progs", de->d_name);
	closedir(dir);
	return objects_pin_progs(o, tc_fds, &xdp_fd, sock_fds);
}

/* Point every link running an old program at its new build. Returns how many changed. */
static int update_links(struct objects *o)
{
	char path[PATH_MAX], name[BPF_OBJ_NAME_LEN];
	struct bpf_link_info info;
	struct bpf_prog_info pinfo;
	struct bpf_program *prog;
	int n = 0, link_fd, prog_fd, err = 0;
	struct dirent *de;
	__u32 len;
	DIR *dir;

	dir = pin_opendir("links");
	if (!dir)
		return -errno;
	while (!err && (de = readdir(dir))) {
		if (de->d_name[0] == '.' || pin_path(path, sizeof(path), "links", de->d_name))
			continue;
		link_fd = bpf_obj_get(path);
		if (link_fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		prog_fd = bpf_link_get_info_by_fd(link_fd, &info, &len)
				  ? -1
				  : bpf_prog_get_fd_by_id(info.prog_id);
		memset(&pinfo, 0, sizeof(pinfo));
		len = sizeof(pinfo);
		if (prog_fd >= 0 && !bpf_prog_get_info_by_fd(prog_fd, &pinfo, &len)) {
			snprintf(name, sizeof(name), "%s", pinfo.name);
			prog = new_prog_named(o, name);
			if (prog && !progs_same_code(prog_fd, bpf_program__fd(prog))) {
				if (bpf_link_update(link_fd, bpf_program__fd(prog), NULL))
					err = -errno;
				else
					n++;
			}
		}
		if (prog_fd >= 0)
			close(prog_fd);
		close(link_fd);
	}
	closedir(dir);
	return err ? err : n;
}

struct replace_arg {
	int prog_fds[2];
	int l3_fds[2]; /* for L3 devices */
	int replaced, err;
};

static void replace_legacy_one(int map_fd, int ifindex, void *arg)
{
	struct replace_arg *r = arg;
	int kind = iface_kind(ifindex, NULL);
	int err = kind < 0 ? kind
			   : tc_legacy_attach(map_fd, ifindex,
					      kind == IFACE_KIND_L3 ? r->l3_fds : r->prog_fds,
					      BPF_TC_F_REPLACE);

	if (err)
		r->err = err;
	else
		r->replaced++;
}

/* Legacy tc filters have no link to update: replace each in place, same handle and
 * priority, when the TC programs of this build differ. Returns how many, or -errno. */
static int replace_legacy(struct objects *o)
{
	struct replace_arg r = {
		.prog_fds = { bpf_program__fd(o->tc->progs.bpfredir_tc_in),
			      bpf_program__fd(o->tc->progs.bpfredir_tc_eg) },
		.l3_fds = { bpf_program__fd(o->tc->progs.bpfredir_l3_in),
			    bpf_program__fd(o->tc->progs.bpfredir_l3_eg) },
	};
	int old_fds[2], map_fd, i;
	bool changed = false;

	if (open_pinned_tc_progs(old_fds)) {
		close_fds(old_fds, 2);
		return -ENOENT;
	}
	for (i = 0; i < 2; i++)
		changed |= !progs_same_code(old_fds[i], r.prog_fds[i]);
	close_fds(old_fds, 2);
	/* L3 devices' programs, when the loaded build had them. */
	old_fds[0] = open_pinned_prog(L3_IN_PROG_NAME);
	old_fds[1] = open_pinned_prog(L3_EG_PROG_NAME);
	for (i = 0; i < 2; i++)
		changed |= old_fds[i] >= 0 && !progs_same_code(old_fds[i], r.l3_fds[i]);
	close_fds(old_fds, 2);
	map_fd = open_tc_legacy_map();
	if (!changed || map_fd < 0) {
		if (map_fd >= 0)
			close(map_fd);
		return 0;
	}
	tc_legacy_each(map_fd, replace_legacy_one, &r);
	close(map_fd);
	return r.err ? r.err : r.replaced;
}

int objects_update_links(struct objects *o)
{
	int legacy = replace_legacy(o), updated = update_links(o);

	if (updated >= 0 && legacy < 0)
		return legacy;
	return updated < 0 ? updated : updated + legacy;
}
