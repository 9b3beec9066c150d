// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* load and unload: everything bpfredir attaches lives as a pin under the pin dir, so the
 * loader can exit and a later invocation (or unload) finds it all again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "iface.h"
#include "tc.skel.h"
#include "sock.skel.h"
#include "xdp.skel.h"
#include "addrwatch.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static const char *const pin_subdirs[] = { "links", "progs", "maps" };

struct load_ctx {
	const struct load_request *req;
	bool reload; /* into a loaded pin dir: every map, policy too, is reused */
	int ifindexes[MAX_IFACES];
	int cgroup_fds[MAX_CGROUPS];
	__u64 cgroup_ids[MAX_CGROUPS];
	char cgroup_paths[MAX_CGROUPS][PATH_MAX];
	struct tc_bpf *tc;
	struct xdp_bpf *xdp;
	struct sock_bpf *sock;
	struct addrwatch_bpf *addrwatch;
};

static int parse_load_args(int argc, char **argv, struct load_request *req)
{
	static const struct option opts[] = {
		{ "iface", required_argument, NULL, 'i' },
		{ "cgroup", optional_argument, NULL, 'c' },
		{ "flows", required_argument, NULL, OPT_FLOWS },
		{ "attach", required_argument, NULL, OPT_ATTACH },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "xdp-generic", no_argument, NULL, OPT_XDP_GENERIC },
		COMMON_LONG_OPTS,
		{},
	};
	enum iface_mode mode = IFACE_TC;
	bool xdp_generic = false;
	unsigned long flows;
	int opt, ret, i;

	while ((opt = getopt_long(argc, argv, ":i:c::" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (req->n_ifaces == MAX_IFACES)
				return usage_error("at most %d --iface options", MAX_IFACES);
			for (i = 0; i < req->n_ifaces; i++)
				if (!strcmp(req->ifnames[i], optarg))
					return usage_error("interface '%s' given twice", optarg);
			req->ifnames[req->n_ifaces++] = optarg;
			break;
		case 'c':
			if (req->n_cgroups)
				return usage_error(
					"--cgroup given twice; 'bpfredir attach' adds more "
					"cgroups");
			req->cgroups[req->n_cgroups++] = optional_path_arg(argc, argv);
			break;
		case OPT_ATTACH:
			if (!strcmp(optarg, "tcx"))
				req->attach = ATTACH_TCX;
			else if (!strcmp(optarg, "tc"))
				req->attach = ATTACH_TC;
			else
				return usage_error("invalid --attach '%s' (expected tcx or tc)",
						   optarg);
			break;
		case OPT_MODE:
			if (!strcmp(optarg, "tc"))
				mode = IFACE_TC;
			else if (!strcmp(optarg, "xdp"))
				mode = IFACE_XDP;
			else
				return usage_error("invalid --mode '%s' (expected tc or xdp)",
						   optarg);
			break;
		case OPT_XDP_GENERIC:
			xdp_generic = true;
			break;
		case OPT_FLOWS:
			if (!scan_uint(optarg, BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS, &flows))
				return usage_error("invalid --flows '%s' (expected %u-%u)", optarg,
						   BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS);
			req->flows = flows;
			break;
		default:
			ret = common_opt(opt, argv);
			if (ret >= 0)
				return ret;
		}
	}
	if (extra_args(argc, argv) >= 0)
		return EXIT_USAGE;
	if (!req->n_ifaces && !req->n_cgroups)
		return usage_error("--iface or --cgroup is required (see 'bpfredir load --help')");
	if (xdp_generic && mode != IFACE_XDP)
		return usage_error("--xdp-generic needs --mode xdp");
	if (mode == IFACE_XDP && !req->n_ifaces)
		return usage_error("--mode xdp needs --iface");
	/* Egress-only legacy filters are not made; XDP needs a 5.9 kernel, tcx 6.6. */
	if (mode == IFACE_XDP && req->attach == ATTACH_TC)
		return usage_error("--mode xdp attaches egress with tcx; it cannot go with "
				   "--attach tc");
	for (i = 0; i < req->n_ifaces; i++)
		req->if_modes[i] = xdp_generic ? IFACE_XDP_GENERIC : mode;
	return -1;
}

/* Before anything is loaded: an interface keeps the mode it has, and XDP mode needs a free
 * XDP hook. */
static int check_iface_mode(int ifindex, const char *ifname, enum iface_mode want)
{
	int cur = iface_mode_of(ifindex);

	if (cur >= 0 && cur != (int)want)
		return fail("interface %s is attached in %s mode; 'bpfredir unload' first to "
			    "change it",
			    ifname, iface_mode_name(cur));
	if (cur < 0 && want != IFACE_TC)
		return xdp_check_foreign(ifindex, ifname);
	return 0;
}

static int check_targets(struct load_ctx *ctx)
{
	char why[160];
	int i;

	for (i = 0; i < ctx->req->n_ifaces; i++) {
		ctx->ifindexes[i] = if_nametoindex(ctx->req->ifnames[i]);
		if (!ctx->ifindexes[i])
			return fail("unknown interface '%s'", ctx->req->ifnames[i]);
		if (iface_check(ctx->ifindexes[i], ctx->req->if_modes[i] != IFACE_TC, why,
				sizeof(why)))
			return fail("interface %s %s", ctx->req->ifnames[i], why);
		if (check_iface_mode(ctx->ifindexes[i], ctx->req->ifnames[i],
				     ctx->req->if_modes[i]))
			return EXIT_FAIL;
	}
	for (i = 0; i < ctx->req->n_cgroups; i++)
		if (open_cgroup(ctx->req->cgroups[i], ctx->cgroup_paths[i], PATH_MAX,
				&ctx->cgroup_fds[i], &ctx->cgroup_ids[i]))
			return EXIT_FAIL;
	return 0;
}

static void load_ctx_free(struct load_ctx *ctx)
{
	int i;

	addrwatch_bpf__destroy(ctx->addrwatch);
	sock_bpf__destroy(ctx->sock);
	xdp_bpf__destroy(ctx->xdp);
	tc_bpf__destroy(ctx->tc);
	for (i = 0; i < ctx->req->n_cgroups; i++)
		if (ctx->cgroup_fds[i] >= 0)
			close(ctx->cgroup_fds[i]);
}

/* Every object's maps are pinned by name in DIR/maps: the first load creates and pins them,
 * later objects reuse the same maps. */
static int set_map_pins(struct bpf_object *obj, struct bpf_map *flows, struct bpf_map *pending,
			__u32 n_flows)
{
	__u32 n_pending = n_flows / 4 > BPFREDIR_MIN_PENDING ? n_flows / 4 : BPFREDIR_MIN_PENDING;
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
	err = bpf_map__set_max_entries(flows, n_flows);
	return err ? err : bpf_map__set_max_entries(pending, n_pending);
}

static int netns_cookie(__u64 *cookie)
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

static int load_objects(struct load_ctx *ctx)
{
	int err;

	ctx->tc = tc_bpf__open();
	ctx->sock = sock_bpf__open();
	ctx->addrwatch = addrwatch_bpf__open();
	if (!ctx->tc || !ctx->sock)
		return fail("cannot open the BPF programs: %s", strerror(errno));
	err = set_map_pins(ctx->tc->obj, ctx->tc->maps.flows, ctx->tc->maps.pending,
			   ctx->req->flows);
	if (!err && ctx->reload) {
		char path[PATH_MAX];

		err = pin_path(path, sizeof(path), "maps", "policy");
		if (!err)
			err = bpf_map__set_pin_path(ctx->tc->maps.policy, path);
	}
	if (!err)
		err = tc_bpf__load(ctx->tc);
	if (err && ctx->reload)
		return fail("cannot load this build over the loaded one, keeping its maps: %s "
			    "(-v says more; 'bpfredir unload' first to start afresh)",
			    strerror(-err));
	if (err)
		return fail("cannot load the TC programs: %s%s", strerror(-err),
			    verbose ? "" : " (-v shows the verifier log)");

	ctx->xdp = xdp_bpf__open();
	err = ctx->xdp ? set_map_pins(ctx->xdp->obj, ctx->xdp->maps.flows, ctx->xdp->maps.pending,
				      ctx->req->flows)
		       : -errno;
	if (!err)
		err = bpf_map__reuse_fd(ctx->xdp->maps.policy, bpf_map__fd(ctx->tc->maps.policy));
	if (!err)
		err = xdp_bpf__load(ctx->xdp);
	if (err)
		return fail("cannot load the XDP program: %s%s", strerror(-err),
			    verbose ? "" : " (-v shows the verifier log)");

	err = netns_cookie((__u64 *)&ctx->sock->rodata->netns_cookie);
	if (err)
		return fail("cannot read this network namespace's cookie: %s", strerror(-err));
	err = set_map_pins(ctx->sock->obj, ctx->sock->maps.flows, ctx->sock->maps.pending,
			   ctx->req->flows);
	if (!err)
		err = bpf_map__reuse_fd(ctx->sock->maps.policy, bpf_map__fd(ctx->tc->maps.policy));
	if (!err)
		err = sock_bpf__load(ctx->sock);
	if (err)
		return fail("cannot load the socket programs: %s%s", strerror(-err),
			    verbose ? "" : " (-v shows the verifier log)");
	return 0;
}

static int pin_prog(struct bpf_program *prog, int *fd)
{
	char path[PATH_MAX];

	if (!prog || pin_path(path, sizeof(path), "progs", bpf_program__name(prog)) ||
	    bpf_program__pin(prog, path))
		return fail("cannot pin program %s: %s", prog ? bpf_program__name(prog) : "?",
			    strerror(errno));
	*fd = bpf_program__fd(prog);
	return 0;
}

/* The socket programs stay pinned so 'attach' can link them to more cgroups later. */
static int pin_sock_progs(struct load_ctx *ctx, int prog_fds[N_SOCK_HOOKS])
{
	int i;

	for (i = 0; i < N_SOCK_HOOKS; i++)
		if (pin_prog(bpf_object__find_program_by_name(ctx->sock->obj, sock_hooks[i].prog),
			     &prog_fds[i]))
			return EXIT_FAIL;
	return 0;
}

static int tc_link_path(char *buf, size_t size, const char *hook, int ifindex)
{
	char name[NAME_MAX];

	/* bpffs reserves '.' in names, so the ifindex stands in for names like eth0.100. */
	snprintf(name, sizeof(name), "%s_%d", hook, ifindex);
	return pin_path(buf, size, "links", name);
}

bool iface_attached(int ifindex)
{
	char path[PATH_MAX];
	int map_fd = open_tc_legacy_map();
	bool legacy = tc_legacy_attached(map_fd, ifindex);

	if (map_fd >= 0)
		close(map_fd);
	return legacy ||
	       (!tc_link_path(path, sizeof(path), "tcx_ingress", ifindex) && !access(path, F_OK)) ||
	       (!tc_link_path(path, sizeof(path), "tcx_egress", ifindex) && !access(path, F_OK));
}

void detach_iface(int ifindex)
{
	char path[PATH_MAX];
	int map_fd = open_tc_legacy_map();

	if (map_fd >= 0) {
		tc_legacy_detach(map_fd, ifindex);
		close(map_fd);
	}
	detach_xdp(ifindex);
	/* Removing a link's pin, its last reference, detaches the program. */
	if (!tc_link_path(path, sizeof(path), "tcx_ingress", ifindex))
		unlink(path);
	if (!tc_link_path(path, sizeof(path), "tcx_egress", ifindex))
		unlink(path);
}

static int attach_legacy(int ifindex, const char *ifname, const int tc_prog_fds[2])
{
	int map_fd = open_tc_legacy_map(), err;

	if (map_fd < 0)
		return fail("cannot open the tc_legacy map: %s", strerror(-map_fd));
	err = tc_legacy_attach(map_fd, ifindex, tc_prog_fds, 0);
	close(map_fd);
	if (err)
		return fail("cannot attach to interface %s with tc: %s", ifname, strerror(-err));
	return 0;
}

/* The TC programs for interface ifindex: given[] (bpfredir_tc_in/eg, or -1 for a hook left
 * out), or on an L3 device the pinned variants that parse from the IP header, opened into
 * l3_fds[] for the caller to close. */
static int tc_progs_for(int ifindex, const int given[2], int l3_fds[2], const int **fds)
{
	static const char *const l3_names[2] = { L3_IN_PROG_NAME, L3_EG_PROG_NAME };
	int kind = iface_kind(ifindex, NULL), i;

	*fds = given;
	if (kind != IFACE_KIND_L3)
		return kind < 0 ? kind : 0;
	for (i = 0; i < 2; i++) {
		if (given[i] < 0)
			continue;
		l3_fds[i] = open_pinned_prog(l3_names[i]);
		if (l3_fds[i] < 0)
			return l3_fds[i];
	}
	*fds = l3_fds;
	return 0;
}

/* Ingress and egress, or neither. The order among tcx programs is ours to state: ingress
 * goes first, so no program before it can let a packet reach a hidden port or see the public
 * port of one it would have translated; egress goes last, so the reply's port is put back
 * after everything else has seen the packet as the service sent it. */
static int attach_iface_progs(int ifindex, const char *ifname, const int tc_prog_fds[2],
			      enum attach_mode mode);

int attach_iface(int ifindex, const char *ifname, const int tc_prog_fds[2], enum attach_mode mode)
{
	int l3_fds[2] = { -1, -1 }, ret;
	const int *fds;

	ret = tc_progs_for(ifindex, tc_prog_fds, l3_fds, &fds);
	if (ret)
		ret = fail("cannot attach to interface %s: %s", ifname, strerror(-ret));
	else
		ret = attach_iface_progs(ifindex, ifname, fds, mode);
	close_fds(l3_fds, 2);
	return ret;
}

static int attach_iface_progs(int ifindex, const char *ifname, const int tc_prog_fds[2],
			      enum attach_mode mode)
{
	static const struct {
		const char *hook;
		enum bpf_attach_type type;
		__u32 where;
	} hooks[] = { { "tcx_ingress", BPF_TCX_INGRESS, BPF_F_BEFORE },
		      { "tcx_egress", BPF_TCX_EGRESS, BPF_F_AFTER } };
	char path[PATH_MAX];
	int i, link_fd, err = 0;

	if (mode == ATTACH_TC)
		return attach_legacy(ifindex, ifname, tc_prog_fds);
	for (i = 0; i < 2 && !err; i++) {
		LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = hooks[i].where);

		/* No ingress program: XDP does ingress (attach_iface_xdp). */
		if (tc_prog_fds[i] < 0)
			continue;
		link_fd = bpf_link_create(tc_prog_fds[i], ifindex, hooks[i].type, &opts);
		if (link_fd < 0) {
			err = -errno;
			break;
		}
		err = tc_link_path(path, sizeof(path), hooks[i].hook, ifindex);
		if (err)
			close(link_fd);
		else
			err = pin_link_fd(link_fd, path);
	}
	if (err) {
		detach_iface(ifindex);
		/* A kernel before 6.6 has no tcx: fall back to a clsact qdisc. */
		if (mode == ATTACH_AUTO &&
		    (err == -EINVAL || err == -EOPNOTSUPP || err == -ENOTSUPP_KERNEL))
			return attach_legacy(ifindex, ifname, tc_prog_fds);
		return fail("cannot attach to interface %s: %s", ifname, strerror(-err));
	}
	return 0;
}

/* Optional: without it local addresses are still refreshed by every bpfredir command, so a
 * kernel whose notification functions cannot be traced only loses liveness. */
static void watch_addresses(struct load_ctx *ctx)
{
	struct bpf_program *progs[] = {
		ctx->addrwatch ? ctx->addrwatch->progs.bpfredir_addr4 : NULL,
		ctx->addrwatch ? ctx->addrwatch->progs.bpfredir_addr6 : NULL
	};
	const char *names[] = { "addrwatch_v4", "addrwatch_v6" };
	char path[PATH_MAX];
	struct bpf_link *link;
	int err = 0;
	size_t i;

	if (!ctx->addrwatch)
		err = -errno;
	else
		err = netns_cookie((__u64 *)&ctx->addrwatch->rodata->netns_cookie);
	if (!err)
		err = set_map_pins(ctx->addrwatch->obj, ctx->addrwatch->maps.flows,
				   ctx->addrwatch->maps.pending, ctx->req->flows);
	if (!err)
		err = bpf_map__reuse_fd(ctx->addrwatch->maps.policy,
					bpf_map__fd(ctx->tc->maps.policy));
	if (!err)
		err = addrwatch_bpf__load(ctx->addrwatch);
	for (i = 0; i < 2 && !err; i++) {
		link = bpf_program__attach_trace(progs[i]);
		if (!link) {
			err = -errno;
			break;
		}
		err = pin_path(path, sizeof(path), "links", names[i]);
		if (!err)
			err = pin_link_fd(dup(bpf_link__fd(link)), path);
		bpf_link__destroy(link);
	}
	if (err && verbose)
		fprintf(stderr,
			"bpfredir load: cannot follow address changes (%s); local "
			"addresses are refreshed by each bpfredir command instead\n",
			strerror(-err));
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
	const char *names[] = { "bpfredir_tc_in", "bpfredir_tc_eg" };
	int i;

	fds[0] = fds[1] = -1;
	for (i = 0; i < 2; i++) {
		fds[i] = open_pinned_prog(names[i]);
		if (fds[i] < 0)
			return fds[i];
	}
	return 0;
}

/* The TC programs for L3 devices, which attach_iface() picks by the device's type. */
static int pin_l3_progs(struct load_ctx *ctx)
{
	int fd;

	return pin_prog(ctx->tc->progs.bpfredir_l3_in, &fd) ||
	       pin_prog(ctx->tc->progs.bpfredir_l3_eg, &fd);
}

/* The TC and XDP programs stay pinned too, so 'apply' can attach them to more interfaces
 * later. */
static int pin_tc_progs(struct load_ctx *ctx, int tc_prog_fds[2], int *xdp_fd)
{
	return pin_prog(ctx->tc->progs.bpfredir_tc_in, &tc_prog_fds[0]) ||
	       pin_prog(ctx->tc->progs.bpfredir_tc_eg, &tc_prog_fds[1]) || pin_l3_progs(ctx) ||
	       pin_prog(ctx->xdp->progs.bpfredir_xdp, xdp_fd);
}

/* One interface in the mode asked for. */
static int attach_iface_as(int ifindex, const char *ifname, const int tc_prog_fds[2], int xdp_fd,
			   enum iface_mode mode, enum attach_mode attach)
{
	if (mode == IFACE_TC)
		return attach_iface(ifindex, ifname, tc_prog_fds, attach);
	return attach_iface_xdp(ifindex, ifname, tc_prog_fds, xdp_fd, mode);
}

static int attach_all(struct load_ctx *ctx)
{
	int prog_fds[N_SOCK_HOOKS], tc_prog_fds[2], xdp_fd, i, err;

	if (pin_tc_progs(ctx, tc_prog_fds, &xdp_fd) || pin_sock_progs(ctx, prog_fds))
		return EXIT_FAIL;
	for (i = 0; i < ctx->req->n_ifaces; i++)
		if (attach_iface_as(ctx->ifindexes[i], ctx->req->ifnames[i], tc_prog_fds, xdp_fd,
				    ctx->req->if_modes[i], ctx->req->attach))
			return EXIT_FAIL;
	watch_addresses(ctx);
	for (i = 0; i < ctx->req->n_cgroups; i++) {
		err = attach_cgroup(ctx->cgroup_fds[i], ctx->cgroup_ids[i], prog_fds);
		if (err)
			return fail("cannot attach to cgroup %s: %s", ctx->cgroup_paths[i],
				    strerror(-err));
	}
	return 0;
}

/* The policy map starts with an empty slot: give it a rule set with no rules that lets this
 * load's interfaces and cgroups act. */
static int install_first_set(struct load_ctx *ctx)
{
	int set_fd = policy_set_create(), err = 0, i;

	if (set_fd < 0)
		return fail("cannot create the rule set: %s", strerror(-set_fd));
	for (i = 0; i < ctx->req->n_ifaces && !err; i++)
		err = set_attachment(set_fd, POLICY_IFACE, ctx->ifindexes[i], true);
	for (i = 0; i < ctx->req->n_cgroups && !err; i++)
		err = set_attachment(set_fd, POLICY_CGROUP, ctx->cgroup_ids[i], true);
	if (!err)
		err = policy_set_install(bpf_map__fd(ctx->tc->maps.policy), set_fd);
	close(set_fd);
	if (err)
		return fail("cannot install the rule set: %s", strerror(-err));
	return 0;
}

/* The last step: link pins, then the policy map's pin, which makes the instance loaded.
 * Killed before this, the load leaves no marker and the next command cleans up. */
static int commit(struct load_ctx *ctx)
{
	char path[PATH_MAX];
	int err;

	err = sync_local_addrs(bpf_map__fd(ctx->tc->maps.local_addrs));
	if (err)
		return fail("cannot record local addresses: %s", strerror(-err));
	err = commit_deferred_pins();
	if (!err)
		err = pin_path(path, sizeof(path), "maps", "policy");
	if (!err && bpf_obj_pin(bpf_map__fd(ctx->tc->maps.policy), path))
		err = -errno;
	if (err)
		return fail("cannot pin under %s: %s", pin_dir, strerror(-err));
	return 0;
}

static int make_pin_dirs(void)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(pin_subdirs) / sizeof(pin_subdirs[0]); i++)
		if (pin_path(path, sizeof(path), pin_subdirs[i], NULL) ||
		    (mkdir(path, 0700) && errno != EEXIST))
			return fail("cannot create %s: %s", path, strerror(errno));
	return 0;
}

static int unlink_pins_in(const char *sub)
{
	char dir_path[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	int err = 0;
	DIR *dir;

	if (pin_path(dir_path, sizeof(dir_path), sub, NULL))
		return -ENAMETOOLONG;
	dir = opendir(dir_path);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (pin_path(path, sizeof(path), sub, de->d_name))
			err = -ENAMETOOLONG;
		else if (unlink(path))
			err = -errno;
	}
	closedir(dir);
	if (!err && rmdir(dir_path))
		err = -errno;
	return err;
}

/* The marker first, so an unload cut short reads as not loaded and is finished by the next
 * command; then links, whose pins are their last references, so they detach at once. */
static void detach_legacy_one(int map_fd, int ifindex, void *arg)
{
	tc_legacy_detach(map_fd, ifindex);
}

int remove_pins(bool keep_dir)
{
	char path[PATH_MAX];
	int map_fd = open_tc_legacy_map();
	size_t i;
	int err;

	/* Filters are no pins: detach the ones on record before the record goes. */
	if (map_fd >= 0) {
		tc_legacy_each(map_fd, detach_legacy_one, NULL);
		close(map_fd);
	}
	if (!pin_path(path, sizeof(path), "maps", "policy") && unlink(path) && errno != ENOENT)
		return -errno;
	for (i = 0; i < sizeof(pin_subdirs) / sizeof(pin_subdirs[0]); i++) {
		err = unlink_pins_in(pin_subdirs[i]);
		if (err)
			return err;
	}
	return keep_dir || !rmdir(pin_dir) ? 0 : -errno;
}

/* Anything in the pin dir that bpfredir did not make: refuse to touch or share it. */
static int check_foreign(void)
{
	struct dirent *de;
	size_t i;
	DIR *dir = opendir(pin_dir);

	if (!dir)
		return fail("cannot read %s: %s", pin_dir, strerror(errno));
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		for (i = 0; i < sizeof(pin_subdirs) / sizeof(pin_subdirs[0]); i++)
			if (!strcmp(de->d_name, pin_subdirs[i]))
				break;
		if (i == sizeof(pin_subdirs) / sizeof(pin_subdirs[0])) {
			closedir(dir);
			return fail(
				"%s holds '%s', which bpfredir did not make; refusing to use it",
				pin_dir, de->d_name);
		}
	}
	closedir(dir);
	return 0;
}

/* Pins without the marker are what a load or unload that was killed left: finish it. */
int finish_interrupted(void)
{
	char path[PATH_MAX];
	size_t i;
	int err;

	if (is_loaded())
		return 0;
	for (i = 0; i < sizeof(pin_subdirs) / sizeof(pin_subdirs[0]); i++)
		if (!pin_path(path, sizeof(path), pin_subdirs[i], NULL) && !access(path, F_OK))
			break;
	if (i == sizeof(pin_subdirs) / sizeof(pin_subdirs[0]))
		return 0;
	err = remove_pins(true);
	if (err)
		return fail("cannot clean up after an interrupted run in %s: %s", pin_dir,
			    strerror(-err));
	fprintf(stderr, "bpfredir: removed what an interrupted run left in %s\n", pin_dir);
	return 0;
}

/* Bpffs mounted, the pin dir made and locked. Returns the lock's fd or -1 (error printed). */
int prepare_pin_dir(void)
{
	int lock_fd;

	if (ensure_bpffs(pin_dir))
		return -1;
	if (mkdir(pin_dir, 0700) && errno != EEXIST)
		return fail("cannot create pin dir %s: %s", pin_dir, strerror(errno)), -1;
	/* mkdir honours the umask; the pin dir must be root's alone whatever it is. */
	if (chmod(pin_dir, 0700))
		return fail("cannot set mode 0700 on %s: %s", pin_dir, strerror(errno)), -1;
	lock_fd = lock_pin_dir();
	if (lock_fd < 0)
		return fail("cannot lock %s: %s", pin_dir, strerror(-lock_fd)), -1;
	if (check_foreign() || finish_interrupted()) {
		close(lock_fd);
		return -1;
	}
	return lock_fd;
}

int load_locked(const struct load_request *req)
{
	struct load_ctx ctx = { .req = req };
	int ret, i;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	defer_pins(true);
	ret = check_targets(&ctx);
	if (!ret)
		ret = make_pin_dirs();
	if (!ret)
		ret = load_objects(&ctx);
	if (!ret)
		ret = install_first_set(&ctx);
	if (!ret)
		ret = attach_all(&ctx);
	if (!ret)
		ret = commit(&ctx);

	/* A load that failed midway leaves nothing pinned, so nothing stays attached. */
	if (ret)
		remove_pins(false);
	defer_pins(false);
	load_ctx_free(&ctx);
	return ret ? EXIT_FAIL : EXIT_OK;
}

static bool same_code(int old_fd, int new_fd)
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

static struct bpf_program *new_prog_named(struct load_ctx *ctx, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(ctx->tc->obj, name);

	if (!prog)
		prog = bpf_object__find_program_by_name(ctx->xdp->obj, name);
	return prog ? prog : bpf_object__find_program_by_name(ctx->sock->obj, name);
}

static int repin_progs(struct load_ctx *ctx)
{
	int tc_fds[2], sock_fds[N_SOCK_HOOKS], xdp_fd;
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;

	if (pin_path(path, sizeof(path), "progs", NULL) || !(dir = opendir(path)))
		return fail("cannot read %s/progs: %s", pin_dir, strerror(errno));
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' && !pin_path(path, sizeof(path), "progs", de->d_name))
			unlink(path);
	closedir(dir);
	return pin_tc_progs(ctx, tc_fds, &xdp_fd) || pin_sock_progs(ctx, sock_fds) ? EXIT_FAIL : 0;
}

/* Point every link running an old program at its new build. Returns how many changed. */
static int update_links(struct load_ctx *ctx)
{
	char dir_path[PATH_MAX], path[PATH_MAX], name[BPF_OBJ_NAME_LEN];
	struct bpf_link_info info;
	struct bpf_prog_info pinfo;
	struct bpf_program *prog;
	int n = 0, link_fd, prog_fd, err = 0;
	struct dirent *de;
	__u32 len;
	DIR *dir;

	if (pin_path(dir_path, sizeof(dir_path), "links", NULL) || !(dir = opendir(dir_path)))
		return -ENOENT;
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
			prog = new_prog_named(ctx, name);
			if (prog && !same_code(prog_fd, bpf_program__fd(prog))) {
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
static int replace_legacy(struct load_ctx *ctx)
{
	struct replace_arg r = {
		.prog_fds = { bpf_program__fd(ctx->tc->progs.bpfredir_tc_in),
			      bpf_program__fd(ctx->tc->progs.bpfredir_tc_eg) },
		.l3_fds = { bpf_program__fd(ctx->tc->progs.bpfredir_l3_in),
			    bpf_program__fd(ctx->tc->progs.bpfredir_l3_eg) },
	};
	int old_fds[2], map_fd, i;
	bool changed = false;

	if (open_pinned_tc_progs(old_fds)) {
		close_fds(old_fds, 2);
		return -ENOENT;
	}
	for (i = 0; i < 2; i++)
		changed |= !same_code(old_fds[i], r.prog_fds[i]);
	close_fds(old_fds, 2);
	/* L3 devices' programs, when the loaded build had them. */
	old_fds[0] = open_pinned_prog(L3_IN_PROG_NAME);
	old_fds[1] = open_pinned_prog(L3_EG_PROG_NAME);
	for (i = 0; i < 2; i++)
		changed |= old_fds[i] >= 0 && !same_code(old_fds[i], r.l3_fds[i]);
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

/* load on a loaded pin dir: the same build is a no-op; a new one replaces the programs in
 * place (link update), keeping every map, so rules and connections survive. Interfaces and
 * cgroups asked for and not yet attached are attached. */
static int reload_locked(const struct load_request *req)
{
	struct load_request with_size = *req;
	struct load_ctx ctx = { .req = &with_size, .reload = true };
	int tc_fds[2] = { -1, -1 }, sock_fds[N_SOCK_HOOKS], xdp_fd = -1, ret, i, err = 0;
	int updated = 0, attached = 0;
	struct bpf_map_info info = {};
	char path[PATH_MAX];
	struct pinned_maps maps;
	bool maps_open = false;
	__u32 len = sizeof(info);
	int flows_fd;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	for (i = 0; i < N_SOCK_HOOKS; i++)
		sock_fds[i] = -1;
	if (pin_path(path, sizeof(path), "maps", "flows"))
		return fail("pin dir path too long: %s", pin_dir);
	flows_fd = bpf_obj_get(path);
	ret = flows_fd < 0 ? -1 : bpf_map_get_info_by_fd(flows_fd, &info, &len);
	if (ret)
		ret = fail("cannot read the loaded flow table %s: %s", path, strerror(errno));
	if (flows_fd >= 0)
		close(flows_fd);
	if (ret)
		return ret;
	if (req->flows != BPFREDIR_DEFAULT_FLOWS && req->flows != info.max_entries)
		return fail("loaded with --flows %u; 'bpfredir unload' first to change it",
			    info.max_entries);
	with_size.flows = info.max_entries;

	ret = check_targets(&ctx);
	if (!ret)
		ret = load_objects(&ctx);
	/* Before the new programs run: what they read first must be in line with the rules. The
	 * maps stay open for the attachments below. */
	if (!ret && open_pinned_maps(&maps))
		ret = EXIT_FAIL;
	else if (!ret)
		maps_open = true;
	if (!ret) {
		err = sync_derived(&maps);
		if (err)
			ret = fail("cannot bring the maps in line with the rules: %s",
				   strerror(-err));
	}
	if (!ret) {
		int legacy = replace_legacy(&ctx);

		updated = update_links(&ctx);
		if (updated >= 0 && legacy < 0)
			updated = legacy;
		else if (updated >= 0)
			updated += legacy;
		if (updated < 0)
			ret = fail("cannot switch the attachments to this build: %s",
				   strerror(-updated));
	}
	/* The pinned programs are what attach and apply use next: make them this build's. */
	if (!ret && updated > 0)
		ret = repin_progs(&ctx);
	if (!ret)
		xdp_fd = open_pinned_prog(XDP_PROG_NAME);
	/* Loaded by a build from before XDP mode, with the same TC code: pin the XDP program. */
	if (!ret && xdp_fd == -ENOENT) {
		if (pin_prog(ctx.xdp->progs.bpfredir_xdp, &xdp_fd))
			ret = EXIT_FAIL;
		else
			xdp_fd = dup(xdp_fd);
	}
	/* Loaded by a build from before L3 devices, with the same TC code: pin their programs. */
	if (!ret) {
		int l3_fd = open_pinned_prog(L3_IN_PROG_NAME);

		if (l3_fd == -ENOENT && pin_l3_progs(&ctx))
			ret = EXIT_FAIL;
		close_fds(&l3_fd, 1);
	}
	if (!ret && (open_pinned_tc_progs(tc_fds) || open_pinned_progs(sock_fds) || xdp_fd < 0))
		ret = fail("cannot open the pinned programs: %s", strerror(errno));
	/* Attach, then act (an interrupted apply may have left one attached but inert). */
	for (i = 0; !ret && i < req->n_ifaces; i++) {
		if (set_has_attachment(maps.rules, POLICY_IFACE, ctx.ifindexes[i]))
			continue;
		if (!iface_attached(ctx.ifindexes[i]))
			ret = attach_iface_as(ctx.ifindexes[i], req->ifnames[i], tc_fds, xdp_fd,
					      req->if_modes[i], req->attach);
		err = ret ? 0 : set_attachment(maps.rules, POLICY_IFACE, ctx.ifindexes[i], true);
		if (err)
			ret = fail("cannot enable interface %s: %s", req->ifnames[i],
				   strerror(-err));
		attached++;
	}
	for (i = 0; !ret && i < req->n_cgroups; i++) {
		if (set_has_attachment(maps.rules, POLICY_CGROUP, ctx.cgroup_ids[i]))
			continue;
		if (!cgroup_attached(ctx.cgroup_ids[i]))
			err = attach_cgroup(ctx.cgroup_fds[i], ctx.cgroup_ids[i], sock_fds);
		if (!err)
			err = set_attachment(maps.rules, POLICY_CGROUP, ctx.cgroup_ids[i], true);
		if (err)
			ret = fail("cannot attach to cgroup %s: %s", ctx.cgroup_paths[i],
				   strerror(-err));
		attached++;
	}
	close_fds(tc_fds, 2);
	close_fds(&xdp_fd, 1);
	close_fds(sock_fds, N_SOCK_HOOKS);
	if (maps_open)
		close_pinned_maps(&maps);
	if (!ret)
		printf("already loaded at %s: %s%s\n", pin_dir,
		       updated > 0 ? "programs replaced by this build, maps kept" : "same build",
		       attached ? "; new attachments made" : "");
	load_ctx_free(&ctx);
	return ret ? EXIT_FAIL : EXIT_OK;
}

int do_load(int argc, char **argv)
{
	struct load_request req = { .flows = BPFREDIR_DEFAULT_FLOWS };
	int ret, lock_fd;

	ret = parse_load_args(argc, argv, &req);
	if (ret >= 0)
		return ret;
	if (require_root())
		return EXIT_FAIL;
	lock_fd = prepare_pin_dir();
	if (lock_fd < 0)
		return EXIT_FAIL;
	ret = is_loaded() ? reload_locked(&req) : load_locked(&req);
	close(lock_fd);
	return ret;
}

int do_unload(int argc, char **argv)
{
	int ret, lock_fd, err;

	ret = parse_common_only(argc, argv);
	if (ret >= 0)
		return ret;
	if (require_root())
		return EXIT_FAIL;
	lock_fd = lock_pin_dir();
	if (lock_fd < 0)
		return fail("not loaded at %s", pin_dir);
	if (check_foreign()) {
		close(lock_fd);
		return EXIT_FAIL;
	}
	if (!is_loaded()) {
		/* What a killed load or unload left is removed; nothing else was loaded. */
		ret = finish_interrupted() ? EXIT_FAIL : fail("not loaded at %s", pin_dir);
		close(lock_fd);
		return ret;
	}
	err = remove_pins(false);
	close(lock_fd);
	if (err)
		return fail("cannot remove everything under %s: %s", pin_dir, strerror(-err));
	return EXIT_OK;
}
