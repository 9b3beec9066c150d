// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* load and unload: everything bpfredir attaches lives as a pin under the pin dir, so the
 * loader can exit and a later invocation (or unload) finds it all again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "tc.skel.h"
#include "sock.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define MAX_IFACES 64
#define MAX_LINKS (MAX_IFACES * 2 + 1)
#define MIN_FLOWS 1024
#define MAX_FLOWS (1U << 24)

struct load_ctx {
	const char *ifnames[MAX_IFACES];
	int ifindexes[MAX_IFACES];
	int n_ifaces;
	const char *cgroup;
	__u32 flows;

	int cgroup_fd;
	struct tc_bpf *tc;
	struct sock_bpf *sock;
	struct bpf_link *links[MAX_LINKS];
	char link_pins[MAX_LINKS][PATH_MAX];
	int n_links;
	bool made_pin_dir;
};

static int parse_load_args(int argc, char **argv, struct load_ctx *ctx)
{
	static const struct option opts[] = {
		{ "iface", required_argument, NULL, 'i' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "flows", required_argument, NULL, OPT_FLOWS },
		COMMON_LONG_OPTS,
		{},
	};
	unsigned long flows;
	char *end;
	int opt, ret, i;

	while ((opt = getopt_long(argc, argv, ":i:c:" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (ctx->n_ifaces == MAX_IFACES)
				return usage_error("at most %d --iface options", MAX_IFACES);
			for (i = 0; i < ctx->n_ifaces; i++)
				if (!strcmp(ctx->ifnames[i], optarg))
					return usage_error("interface '%s' given twice", optarg);
			ctx->ifnames[ctx->n_ifaces++] = optarg;
			break;
		case 'c':
			if (ctx->cgroup)
				return usage_error("--cgroup given twice; use 'bpfredir attach' for "
						   "more cgroups");
			ctx->cgroup = optarg;
			break;
		case OPT_FLOWS:
			errno = 0;
			flows = strtoul(optarg, &end, 10);
			if (!*optarg || *end || errno || optarg[0] == '-' || flows < MIN_FLOWS ||
			    flows > MAX_FLOWS)
				return usage_error("invalid --flows '%s' (expected %u-%u)", optarg,
						   MIN_FLOWS, MAX_FLOWS);
			ctx->flows = flows;
			break;
		default:
			ret = common_opt(opt, argv);
			if (ret >= 0)
				return ret;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!ctx->n_ifaces)
		return usage_error("--iface is required (see 'bpfredir load --help')");
	return -1;
}

static int check_targets(struct load_ctx *ctx)
{
	struct statfs st;
	int i;

	for (i = 0; i < ctx->n_ifaces; i++) {
		ctx->ifindexes[i] = if_nametoindex(ctx->ifnames[i]);
		if (!ctx->ifindexes[i])
			return fail("unknown interface '%s'", ctx->ifnames[i]);
	}
	if (!ctx->cgroup)
		return 0;
	ctx->cgroup_fd = open(ctx->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->cgroup_fd < 0 || fstatfs(ctx->cgroup_fd, &st) || st.f_type != CGROUP2_SUPER_MAGIC)
		return fail("no cgroup2 at %s", ctx->cgroup);
	return 0;
}

/* Every object's maps are pinned by name in DIR/maps: the first load creates and pins them,
 * later objects reuse the same maps. */
static int set_map_pins(struct bpf_object *obj)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map))
			continue;
		if (pin_path(path, sizeof(path), "maps", bpf_map__name(map)))
			return -ENAMETOOLONG;
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
	}
	return 0;
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

static int pin_link(struct load_ctx *ctx, struct bpf_link *link, const char *hook,
		    unsigned long long where)
{
	char name[NAME_MAX];
	char *path = ctx->link_pins[ctx->n_links];
	int err;

	ctx->links[ctx->n_links] = link;
	path[0] = '\0';
	ctx->n_links++;
	/* bpffs reserves '.' in names, so no interface name (eth0.100) goes in here. */
	snprintf(name, sizeof(name), "%s_%llu", hook, where);
	err = pin_path(path, PATH_MAX, "links", name);
	if (!err)
		err = bpf_link__pin(link, path);
	if (err)
		path[0] = '\0';
	return err;
}

static int attach_all(struct load_ctx *ctx)
{
	struct bpf_link *link;
	struct stat st;
	int i;

	for (i = 0; i < ctx->n_ifaces; i++) {
		link = bpf_program__attach_tcx(ctx->tc->progs.bpfredir_tc_in, ctx->ifindexes[i],
					       NULL);
		if (!link)
			return fail("cannot attach tcx ingress on %s: %s", ctx->ifnames[i],
				    strerror(errno));
		if (pin_link(ctx, link, "tcx_ingress", ctx->ifindexes[i]))
			return fail("cannot pin link for %s: %s", ctx->ifnames[i], strerror(errno));
		link = bpf_program__attach_tcx(ctx->tc->progs.bpfredir_tc_eg, ctx->ifindexes[i],
					       NULL);
		if (!link)
			return fail("cannot attach tcx egress on %s: %s", ctx->ifnames[i],
				    strerror(errno));
		if (pin_link(ctx, link, "tcx_egress", ctx->ifindexes[i]))
			return fail("cannot pin link for %s: %s", ctx->ifnames[i], strerror(errno));
	}
	if (!ctx->sock)
		return 0;
	link = bpf_program__attach_cgroup(ctx->sock->progs.bpfredir_conn4, ctx->cgroup_fd);
	if (!link)
		return fail("cannot attach connect4 to cgroup %s: %s", ctx->cgroup, strerror(errno));
	/* On cgroup2 the directory's inode number is the cgroup id: stable and unique. */
	if (fstat(ctx->cgroup_fd, &st))
		return fail("cannot stat cgroup %s: %s", ctx->cgroup, strerror(errno));
	if (pin_link(ctx, link, "cgroup_connect4", st.st_ino))
		return fail("cannot pin link for cgroup %s: %s", ctx->cgroup, strerror(errno));
	return 0;
}

static int load_objects(struct load_ctx *ctx)
{
	int err;

	ctx->tc = tc_bpf__open();
	if (!ctx->tc)
		return fail("cannot open the TC program: %s", strerror(errno));
	err = set_map_pins(ctx->tc->obj);
	if (!err)
		err = bpf_map__set_max_entries(ctx->tc->maps.flows, ctx->flows);
	if (!err)
		err = tc_bpf__load(ctx->tc);
	if (err)
		return fail("cannot load the TC program: %s%s", strerror(-err),
			    verbose ? "" : " (-v shows the verifier log)");
	if (!ctx->cgroup)
		return 0;

	ctx->sock = sock_bpf__open();
	if (!ctx->sock)
		return fail("cannot open the socket program: %s", strerror(errno));
	err = netns_cookie((__u64 *)&ctx->sock->rodata->netns_cookie);
	if (err)
		return fail("cannot read this network namespace's cookie: %s", strerror(-err));
	err = set_map_pins(ctx->sock->obj);
	if (!err)
		err = bpf_map__set_max_entries(ctx->sock->maps.flows, ctx->flows);
	if (!err)
		err = sock_bpf__load(ctx->sock);
	if (err)
		return fail("cannot load the socket program: %s%s", strerror(-err),
			    verbose ? "" : " (-v shows the verifier log)");
	return 0;
}

static int sync_new_maps(void)
{
	struct pinned_maps maps;
	int err;

	if (open_pinned_maps(&maps))
		return -1;
	err = sync_derived(&maps);
	close_pinned_maps(&maps);
	if (err)
		return fail("cannot record local addresses: %s", strerror(-err));
	return 0;
}

static void remove_pin_dir(void)
{
	char path[PATH_MAX];

	if (!pin_path(path, sizeof(path), "links", NULL))
		rmdir(path);
	if (!pin_path(path, sizeof(path), "maps", NULL))
		rmdir(path);
	rmdir(pin_dir);
}

/* Undo a load that failed midway: nothing of it may stay pinned or attached. */
static void rollback(struct load_ctx *ctx)
{
	struct bpf_map *map;
	int i;

	for (i = 0; i < ctx->n_links; i++)
		if (ctx->link_pins[i][0])
			unlink(ctx->link_pins[i]);
	if (ctx->tc)
		bpf_object__for_each_map(map, ctx->tc->obj)
			if (bpf_map__pin_path(map))
				unlink(bpf_map__pin_path(map));
	if (ctx->made_pin_dir)
		remove_pin_dir();
}

int do_load(int argc, char **argv)
{
	struct load_ctx ctx = { .cgroup_fd = -1, .flows = BPFREDIR_DEFAULT_FLOWS };
	char path[PATH_MAX];
	int ret, lock_fd = -1, i;

	ret = parse_load_args(argc, argv, &ctx);
	if (ret >= 0)
		return ret;
	ret = require_root();
	if (!ret)
		ret = check_targets(&ctx);
	if (!ret)
		ret = ensure_bpffs(pin_dir);
	if (ret)
		goto cleanup;

	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		ret = fail("cannot create pin dir %s: %s", pin_dir, strerror(errno));
		goto cleanup;
	}
	ctx.made_pin_dir = true;
	lock_fd = lock_pin_dir();
	if (lock_fd < 0) {
		ret = fail("cannot lock %s: %s", pin_dir, strerror(-lock_fd));
		goto cleanup;
	}
	if (is_loaded()) {
		ctx.made_pin_dir = false;
		ret = fail("already loaded at %s (run 'bpfredir unload' first)", pin_dir);
		goto cleanup;
	}
	if (pin_path(path, sizeof(path), "maps", NULL) || (mkdir(path, 0700) && errno != EEXIST) ||
	    pin_path(path, sizeof(path), "links", NULL) || (mkdir(path, 0700) && errno != EEXIST)) {
		ret = fail("cannot create %s: %s", path, strerror(errno));
		goto cleanup;
	}

	ret = load_objects(&ctx);
	if (!ret)
		ret = attach_all(&ctx);
	if (!ret)
		ret = sync_new_maps() ? EXIT_FAIL : 0;

cleanup:
	if (ret)
		rollback(&ctx);
	/* Closing our link fds leaves pinned links attached; unpinned ones detach here. */
	for (i = 0; i < ctx.n_links; i++)
		bpf_link__destroy(ctx.links[i]);
	sock_bpf__destroy(ctx.sock);
	tc_bpf__destroy(ctx.tc);
	if (ctx.cgroup_fd >= 0)
		close(ctx.cgroup_fd);
	if (lock_fd >= 0)
		close(lock_fd);
	return ret ? EXIT_FAIL : EXIT_OK;
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
		if (de->d_name[0] == '.')
			continue;
		if (pin_path(path, sizeof(path), sub, de->d_name) || unlink(path))
			err = -errno;
	}
	closedir(dir);
	return err ? err : rmdir(dir_path) ? -errno : 0;
}

int do_unload(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_LONG_OPTS, {} };
	int opt, ret, lock_fd, err;

	while ((opt = getopt_long(argc, argv, ":" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		ret = common_opt(opt, argv);
		if (ret >= 0)
			return ret;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (require_root())
		return EXIT_FAIL;
	lock_fd = lock_pin_dir();
	if (lock_fd < 0 || !is_loaded()) {
		if (lock_fd >= 0)
			close(lock_fd);
		return fail("not loaded at %s", pin_dir);
	}
	/* Links first: unpinning the last reference detaches the program at once. */
	err = unlink_pins_in("links");
	if (!err)
		err = unlink_pins_in("maps");
	if (!err && rmdir(pin_dir))
		err = -errno;
	close(lock_fd);
	if (err)
		return fail("cannot remove everything under %s: %s", pin_dir, strerror(-err));
	return EXIT_OK;
}
