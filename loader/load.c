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
#include <sys/utsname.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "iface.h"
#include "probe.h"
#include "tc.skel.h"
#include "sock.skel.h"
#include "xdp.skel.h"
#include "addrwatch.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

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
				return usage_error("invalid --flows '%s' (expected %u-%u%s)",
						   optarg, BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS,
						   number_hint(optarg));
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

	if (ctx->req->attach == ATTACH_TCX && ctx->req->n_ifaces && !probe_tcx())
		return fail("--attach tcx: this kernel has no tcx (Linux 6.6 has it); leave --attach "
			    "out, or --attach tc, for a clsact qdisc");
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
	err = bpf_map__set_max_entries(flows, n_flows);
	return err ? err : bpf_map__set_max_entries(pending, pending_entries(n_flows));
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
	__u32 fib_flags;
	int err;

	ctx->tc = tc_bpf__open();
	ctx->sock = sock_bpf__open();
	ctx->addrwatch = addrwatch_bpf__open();
	if (!ctx->tc || !ctx->sock)
		return fail("cannot open the BPF programs: %s", strerror(errno));
	/* A probe that cannot run leaves the flag out: the lookup works without it. */
	fib_flags = probe_fib_skip_neigh() > 0 ? BPF_FIB_LOOKUP_SKIP_NEIGH : 0;
	ctx->tc->rodata->fib_lookup_flags = fib_flags;
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
	if (ctx->xdp)
		ctx->xdp->rodata->fib_lookup_flags = fib_flags;
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

/* Attached and still so: pins alone may outlive their attachment. */
bool iface_attached(int ifindex)
{
	int map_fd = open_tc_legacy_map();
	bool legacy = tc_legacy_attached(map_fd, ifindex);

	if (map_fd >= 0)
		close(map_fd);
	return legacy || pin_link_alive(pin_link_name(LINK_TCX_INGRESS, ifindex, NULL)) ||
	       pin_link_alive(pin_link_name(LINK_TCX_EGRESS, ifindex, NULL));
}

static void detach_tcx(int ifindex)
{
	/* Removing a link's pin, its last reference, detaches the program. */
	pin_unlink("links", pin_link_name(LINK_TCX_INGRESS, ifindex, NULL));
	pin_unlink("links", pin_link_name(LINK_TCX_EGRESS, ifindex, NULL));
}

void detach_iface(int ifindex)
{
	int map_fd = open_tc_legacy_map();

	if (map_fd >= 0) {
		tc_legacy_detach(map_fd, ifindex);
		close(map_fd);
	}
	detach_xdp(ifindex);
	detach_tcx(ifindex);
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

/* Ingress and egress, or neither, each at the head of its tcx chain. Ingress first, so no
 * program before it can let a packet reach a hidden port or see the public port of one it
 * would have translated. Egress first too: a program ahead of it that returned TCX_PASS
 * would end the chain before us and the reply would leave from the hidden port. Our
 * programs return TCX_NEXT for what they pass, so every later program still sees every
 * packet, the replies as they leave (with the public port, as after the recipe's NAT). */
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
		enum pin_link_kind link;
		enum bpf_attach_type type;
		__u32 where;
	} hooks[] = { { LINK_TCX_INGRESS, BPF_TCX_INGRESS, BPF_F_BEFORE },
		      { LINK_TCX_EGRESS, BPF_TCX_EGRESS, BPF_F_BEFORE } };
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
		err = pin_path(path, sizeof(path), "links",
			       pin_link_name(hooks[i].link, ifindex, NULL));
		if (err)
			close(link_fd);
		else
			err = pin_link_fd(link_fd, path);
	}
	if (err) {
		/* Only what this call attached: in XDP mode the XDP link stays. */
		detach_tcx(ifindex);
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
	const enum pin_link_kind links[] = { LINK_ADDRWATCH_V4, LINK_ADDRWATCH_V6 };
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
		err = pin_path(path, sizeof(path), "links", pin_link_name(links[i], 0, NULL));
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
	/* What is left of an attachment that is gone goes first: it holds the names. */
	detach_iface(ifindex);
	if (mode == IFACE_TC)
		return attach_iface(ifindex, ifname, tc_prog_fds, attach);
	return attach_iface_xdp(ifindex, ifname, tc_prog_fds, xdp_fd, mode, attach);
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
	int set_fd = ruleset_create(), err = 0, i;

	if (set_fd < 0)
		return fail("cannot create the rule set: %s", strerror(-set_fd));
	for (i = 0; i < ctx->req->n_ifaces && !err; i++)
		err = ruleset_enable(set_fd, POLICY_IFACE, ctx->ifindexes[i], true);
	for (i = 0; i < ctx->req->n_cgroups && !err; i++)
		err = ruleset_enable(set_fd, POLICY_CGROUP, ctx->cgroup_ids[i], true);
	if (!err)
		err = ruleset_install(bpf_map__fd(ctx->tc->maps.policy), set_fd);
	close(set_fd);
	if (err)
		return fail("cannot install the rule set: %s", strerror(-err));
	return 0;
}

/* What identifies a build's BPF side: a hash of its objects, as the skeletons embed them.
 * Kept in maps/build, so a load or apply of the build already loaded skips loading every
 * program (and through the verifier) only to find the same code. */
static __u64 this_build(void)
{
	const void *(*objects[])(size_t *) = { tc_bpf__elf_bytes, xdp_bpf__elf_bytes,
					       sock_bpf__elf_bytes, addrwatch_bpf__elf_bytes,
					       guard_elf_bytes };
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
static __u64 loaded_build(void)
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

static int record_build(void)
{
	char path[PATH_MAX];
	__u64 build = this_build();
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

/* The last step: link pins, then the policy map's pin, which makes the instance loaded.
 * Killed before this, the load leaves no marker and the next command cleans up. */
static int commit(struct load_ctx *ctx)
{
	char path[PATH_MAX];
	int err;

	err = sync_local_addrs(bpf_map__fd(ctx->tc->maps.local_addrs),
			       bpf_map__fd(ctx->tc->maps.addr_holders));
	if (err)
		return fail("cannot record local addresses: %s", local_addrs_error(err));
	err = record_build();
	if (err)
		return fail("cannot record this build in %s: %s", pin_display("maps", "build"),
			    strerror(-err));
	err = commit_deferred_pins();
	if (!err)
		err = pin_path(path, sizeof(path), "maps", "policy");
	if (!err && bpf_obj_pin(bpf_map__fd(ctx->tc->maps.policy), path))
		err = -errno;
	if (err)
		return fail("cannot pin under %s: %s", pin_dir, strerror(-err));
	return 0;
}

/* Before anything is made: a kernel without what bpfredir cannot do without is refused. */
static int check_kernel(void)
{
	const struct probe_need *unmet = probe_unmet_need();
	struct utsname uts;

	if (!unmet)
		return 0;
	if (uname(&uts))
		snprintf(uts.release, sizeof(uts.release), "?");
	return fail("this kernel (%s) has no %s, which bpfredir needs: Linux %s brought it "
		    "(bpfredir is tested on Linux 6.1 and later)",
		    uts.release, unmet->what, unmet->since);
}

int load_locked(const struct load_request *req)
{
	struct load_ctx ctx = { .req = req };
	int ret, i;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	if (flows_entries(req->flows) != req->flows)
		fprintf(stderr,
			"bpfredir %s: flows %u raised to %u (%u per possible CPU: a smaller LRU "
			"table evicts early on kernels before 6.16)\n",
			cur_cmd ? cur_cmd->name : "load", req->flows, flows_entries(req->flows),
			BPFREDIR_LRU_PER_CPU);
	defer_pins(true);
	ret = check_kernel();
	if (!ret)
		ret = check_targets(&ctx);
	if (!ret)
		ret = pins_make_subdirs() ? EXIT_FAIL : 0;
	if (!ret)
		ret = load_objects(&ctx);
	if (!ret)
		ret = install_first_set(&ctx);
	if (!ret)
		ret = attach_all(&ctx);
	if (!ret)
		ret = guard_start(bpf_map__fd(ctx.tc->maps.policy)) ? EXIT_FAIL : 0;
	if (!ret)
		ret = commit(&ctx);

	/* A load that failed midway leaves nothing pinned, so nothing stays attached. */
	if (ret)
		remove_pins(false);
	defer_pins(false);
	load_ctx_free(&ctx);
	if (!ret)
		guard_announce_running();
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
	struct dirent *de;
	DIR *dir = pin_opendir("progs");

	if (!dir)
		return fail("cannot read %s: %s", pin_display("progs", NULL), strerror(errno));
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			pin_unlink("progs", de->d_name);
	closedir(dir);
	return pin_tc_progs(ctx, tc_fds, &xdp_fd) || pin_sock_progs(ctx, sock_fds) ? EXIT_FAIL : 0;
}

/* Point every link running an old program at its new build. Returns how many changed. */
static int update_links(struct load_ctx *ctx)
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

/* The size the loaded instance's flow table was made with: a reload keeps every map. */
static int loaded_flows(__u32 *flows)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, err = 0;

	if (pin_path(path, sizeof(path), "maps", "flows"))
		return fail("pin dir not open: %s", pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0 || bpf_map_get_info_by_fd(fd, &info, &len))
		err = fail("cannot read the loaded flow table %s: %s", pin_display("maps", "flows"),
			   strerror(errno));
	if (fd >= 0)
		close(fd);
	*flows = info.max_entries;
	return err;
}

/* On a loaded pin dir: this build's programs take over in place (link updates, legacy
 * filters replaced) with every map kept, so rules and connections survive; the same build
 * changes nothing. What the new programs read first is brought in line with the rules
 * before they run. Returns how many attachments now run this build's programs, or -1 after
 * a message. load and apply both come through here, so a restart or reload of the service
 * with a new package never unloads. */
int upgrade_programs(void)
{
	struct load_request req = {};
	struct load_ctx ctx = { .req = &req, .reload = true };
	struct pinned_maps maps;
	int updated, legacy, guard, xdp_fd, i, err;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	if (open_pinned_maps(&maps))
		return -1;
	err = sync_derived(&maps);
	close_pinned_maps(&maps);
	if (err)
		return fail_err(-1, "cannot bring the maps in line with the rules: %s",
				local_addrs_error(err));
	/* The same build: only a guard that went (or is not the kind wanted) is attached. */
	if (loaded_build() == this_build())
		return guard_intact() ? 0 : guard_upgrade_or_fail();
	if (loaded_flows(&req.flows) || load_objects(&ctx)) {
		load_ctx_free(&ctx);
		return -1;
	}
	legacy = replace_legacy(&ctx);
	updated = update_links(&ctx);
	if (updated >= 0 && legacy < 0)
		updated = legacy;
	else if (updated >= 0)
		updated += legacy;
	if (updated < 0) {
		load_ctx_free(&ctx);
		return fail_err(-1, "cannot switch the attachments to this build: %s",
				strerror(-updated));
	}
	/* Netfilter links cannot be updated in place: guard.c swaps the guard's links. */
	guard = guard_upgrade_or_fail();
	if (guard < 0) {
		load_ctx_free(&ctx);
		return -1;
	}
	updated += guard;
	/* The pinned programs are what attach and apply use next: make them this build's. */
	err = updated > 0 ? repin_progs(&ctx) : 0;
	/* Loaded by a build from before XDP mode, with the same TC code: pin the XDP program. */
	xdp_fd = err ? -1 : open_pinned_prog(XDP_PROG_NAME);
	if (!err && xdp_fd == -ENOENT)
		err = pin_prog(ctx.xdp->progs.bpfredir_xdp, &xdp_fd);
	else if (xdp_fd >= 0)
		close(xdp_fd);
	/* Loaded by a build from before L3 devices, with the same TC code: pin their programs. */
	if (!err) {
		int l3_fd = open_pinned_prog(L3_IN_PROG_NAME);

		if (l3_fd == -ENOENT)
			err = pin_l3_progs(&ctx);
		close_fds(&l3_fd, 1);
	}
	load_ctx_free(&ctx);
	if (!err && record_build())
		return fail_err(-1, "cannot record this build in %s", pin_display("maps", "build"));
	return err ? -1 : updated;
}

/* load on a loaded pin dir: the programs upgraded (or kept, for the same build), and the
 * interfaces and cgroups asked for and not yet attached are attached. */
static int reload_locked(const struct load_request *req)
{
	struct load_ctx ctx = { .req = req };
	int tc_fds[2] = { -1, -1 }, sock_fds[N_SOCK_HOOKS], xdp_fd = -1, ret, i, err = 0;
	int updated = 0, attached = 0;
	struct pinned_maps maps;
	bool maps_open = false;
	__u32 flows;

	for (i = 0; i < MAX_CGROUPS; i++)
		ctx.cgroup_fds[i] = -1;
	for (i = 0; i < N_SOCK_HOOKS; i++)
		sock_fds[i] = -1;
	ret = loaded_flows(&flows);
	if (!ret && req->flows != BPFREDIR_DEFAULT_FLOWS && flows_entries(req->flows) != flows)
		ret = fail("loaded with --flows %u; 'bpfredir unload' first to change it", flows);
	if (!ret)
		ret = check_targets(&ctx);
	if (!ret) {
		updated = upgrade_programs();
		ret = updated < 0 ? EXIT_FAIL : 0;
	}
	if (!ret && open_pinned_maps(&maps))
		ret = EXIT_FAIL;
	else if (!ret)
		maps_open = true;
	if (!ret)
		xdp_fd = open_pinned_prog(XDP_PROG_NAME);
	if (!ret && (open_pinned_tc_progs(tc_fds) || open_pinned_progs(sock_fds) || xdp_fd < 0))
		ret = fail("cannot open the pinned programs: %s", strerror(errno));
	/* Attach, then act (an interrupted apply may have left one attached but inert). */
	for (i = 0; !ret && i < req->n_ifaces; i++) {
		bool intact = iface_attached(ctx.ifindexes[i]);

		if (intact && ruleset_enabled(maps.rules, POLICY_IFACE, ctx.ifindexes[i]))
			continue;
		if (!intact)
			ret = attach_iface_as(ctx.ifindexes[i], req->ifnames[i], tc_fds, xdp_fd,
					      req->if_modes[i], req->attach);
		err = ret ? 0 : ruleset_enable(maps.rules, POLICY_IFACE, ctx.ifindexes[i], true);
		if (err)
			ret = fail("cannot enable interface %s: %s", req->ifnames[i],
				   strerror(-err));
		attached++;
	}
	for (i = 0; !ret && i < req->n_cgroups; i++) {
		bool intact = cgroup_attached(ctx.cgroup_ids[i]);

		if (intact && ruleset_enabled(maps.rules, POLICY_CGROUP, ctx.cgroup_ids[i]))
			continue;
		if (!intact)
			err = attach_cgroup(ctx.cgroup_fds[i], ctx.cgroup_ids[i], sock_fds);
		if (!err)
			err = ruleset_enable(maps.rules, POLICY_CGROUP, ctx.cgroup_ids[i], true);
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
	int ret;

	ret = parse_load_args(argc, argv, &req);
	if (ret >= 0)
		return ret;
	if (require_root() || pins_open(PINS_CREATE))
		return EXIT_FAIL;
	ret = is_loaded() ? reload_locked(&req) : load_locked(&req);
	pins_close();
	return ret;
}

int do_unload(int argc, char **argv)
{
	int ret, err;

	ret = parse_common_only(argc, argv);
	if (ret >= 0)
		return ret;
	if (require_root())
		return EXIT_FAIL;
	err = pins_open(PINS_WRITE);
	if (err)
		return err == -ENOENT ? fail("not loaded at %s", pin_dir) : EXIT_FAIL;
	if (!is_loaded()) {
		/* What a killed load or unload left is removed, with the pin dir it made;
		 * nothing else was loaded. */
		ret = finish_interrupted(false) ? EXIT_FAIL : fail("not loaded at %s", pin_dir);
		pins_close();
		return ret;
	}
	err = remove_pins(false);
	pins_close();
	if (err)
		return fail("cannot remove everything under %s: %s", pin_dir, strerror(-err));
	return EXIT_OK;
}
