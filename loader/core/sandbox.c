// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The sandbox (sandbox.h): the objects of objects.c without a pin, a namespace and a cgroup
 * of their own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "cache_gen.h"
#include "log.h"
#include "objects.h"
#include "probe.h"
#include "sandbox.h"
#include "scan.h"
#include "tc.skel.h"
#include "xdp.skel.h"
#include "sock.skel.h"
#include "steer.h"
#include "steer.skel.h"

static int write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;
	ssize_t len = strlen(val);

	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != len)
		err = -errno;
	close(fd);
	return err;
}

static int link_up(const char *ifname)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr))
		err = -errno;
	close(fd);
	return err;
}

int sandbox_enter_netns(void)
{
	int err;

	if (unshare(CLONE_NEWNET))
		return pr_warn_err(-errno, "a network namespace of its own: %s", strerror(errno));
	/* A new namespace takes IPv4 forwarding from the host's (devconf_inherit_init_net 0). */
	err = write_sysctl("/proc/sys/net/ipv4/ip_forward", "0");
	if (!err)
		err = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "0");
	if (!err)
		err = link_up("lo");
	if (err)
		pr_warn("setting up its network namespace: %s", strerror(-err));
	return err;
}

int sandbox_addr_add(const __u8 addr[BPFREDIR_ADDR_LEN])
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
		struct rtattr attr;
		__u8 data[BPFREDIR_ADDR_LEN];
	} req = {};
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	bool v4 = addr_is_v4(addr);
	size_t len = v4 ? 4 : BPFREDIR_ADDR_LEN;
	int fd, err;

	req.nh.nlmsg_type = RTM_NEWADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	req.ifa.ifa_family = v4 ? AF_INET : AF_INET6;
	req.ifa.ifa_prefixlen = v4 ? 32 : 128;
	/* No duplicate detection: a tentative address refuses connections for a second. */
	req.ifa.ifa_flags = IFA_F_NODAD;
	req.ifa.ifa_index = if_nametoindex("lo");
	req.attr.rta_type = IFA_LOCAL;
	req.attr.rta_len = RTA_LENGTH(len);
	memcpy(req.data, v4 ? addr + 12 : addr, len);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa)) + RTA_ALIGN(req.attr.rta_len);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0 || recv(fd, &ack, sizeof(ack), 0) < 0)
		err = -errno;
	else
		err = ack.nh.nlmsg_type == NLMSG_ERROR ? ack.err.error : -EPROTO;
	close(fd);
	return err;
}

static int load_tc(struct sandbox *sb, __u32 fib_flags)
{
	sb->tc = tc_bpf__open();
	if (!sb->tc)
		return -errno;
	sb->tc->rodata->fib_lookup_flags = fib_flags;
	/* A third of the TC object's verification. */
	bpf_program__set_autoload(sb->tc->progs.bpfredir_l3_in, false);
	bpf_program__set_autoload(sb->tc->progs.bpfredir_l3_eg, false);
	return tc_bpf__load(sb->tc);
}

static int load_xdp(struct sandbox *sb, __u32 fib_flags)
{
	int err;

	sb->xdp = xdp_bpf__open();
	if (!sb->xdp)
		return -errno;
	sb->xdp->rodata->fib_lookup_flags = fib_flags;
	err = objects_share_maps(sb->xdp->obj, sb->tc->obj);
	return err ? err : xdp_bpf__load(sb->xdp);
}

static int load_sock(struct sandbox *sb)
{
	int err;

	sb->sock = sock_bpf__open();
	if (!sb->sock)
		return -errno;
	err = objects_netns_cookie((__u64 *)&sb->sock->rodata->netns_cookie);
	if (!err)
		err = objects_share_maps(sb->sock->obj, sb->tc->obj);
	return err ? err : sock_bpf__load(sb->sock);
}

static int load_steer(struct sandbox *sb)
{
	int err;

	if (steer_unsupported())
		return pr_warn_err(-EOPNOTSUPP, "socket steering: this kernel has %s",
				   steer_unsupported());
	sb->steer = steer_bpf__open();
	if (!sb->steer)
		return -errno;
	err = objects_netns_cookie((__u64 *)&sb->steer->rodata->netns_cookie);
	if (!err)
		err = objects_share_maps(sb->steer->obj, sb->tc->obj);
	return err ? err : steer_bpf__load(sb->steer);
}

int sandbox_load(struct sandbox *sb, bool xdp, bool steer)
{
	__u32 fib_flags;
	int err, i;

	memset(sb, 0, sizeof(*sb));
	sb->set_fd = sb->cgroup_root_fd = sb->cgroup_fd = -1;
	for (i = 0; i < N_SOCK_HOOKS; i++)
		sb->links[i] = -1;
	sb->lo_ifindex = if_nametoindex("lo");
	if (!sb->lo_ifindex)
		return -errno;
	fib_flags = probe_fib_skip_neigh() > 0 ? BPF_FIB_LOOKUP_SKIP_NEIGH : 0;
	err = load_tc(sb, fib_flags);
	if (!err && xdp)
		err = load_xdp(sb, fib_flags);
	if (!err)
		err = load_sock(sb);
	if (!err && steer)
		err = load_steer(sb);
	return err;
}

int sandbox_rules(struct sandbox *sb, const struct rule_spec *rules, size_t n)
{
	struct derive_maps derive = {
		.counters = { .slots = bpf_map__fd(sb->tc->maps.port_slots),
			      .counters = bpf_map__fd(sb->tc->maps.port_counters) },
		.port_interest = bpf_map__fd(sb->tc->maps.port_interest),
		.public_targets = bpf_map__fd(sb->tc->maps.public_targets),
		.flows = bpf_map__fd(sb->tc->maps.flows),
		.flows_gen = bpf_map__fd(sb->tc->maps.flows_gen),
		.iface_slots = bpf_map__fd(sb->tc->maps.iface_slots),
		.port_hidden = bpf_map__fd(sb->tc->maps.port_hidden),
		.steer_socket = sb->steer != NULL,
		.steer = STEER_MAPS_NONE,
	};
	int set = ruleset_create(), err = 0;
	size_t i;

	if (set < 0)
		return set;
	if (sb->steer)
		derive.steer = (struct steer_maps){
			.wildcard = bpf_map__fd(sb->steer->maps.steer_wildcard),
			.listeners = bpf_map__fd(sb->steer->maps.steer_listeners),
			.bound = bpf_map__fd(sb->steer->maps.steer_bound),
			.fast = bpf_map__fd(sb->steer->maps.steer_fast),
		};
	for (i = 0; i < n && !err; i++)
		err = ruleset_put(set, &rules[i]);
	if (!err)
		err = ruleset_enable(set, POLICY_IFACE, sb->lo_ifindex, true);
	/* A test run's socket lookup has no interface (0). */
	if (!err && sb->steer)
		err = ruleset_enable(set, POLICY_IFACE, 0, true);
	if (!err)
		err = ruleset_derive(set, &derive);
	if (!err)
		err = ruleset_install(bpf_map__fd(sb->tc->maps.policy), set);
	if (err) {
		close(set);
		return err;
	}
	sb->set_fd = set;
	return 0;
}

int sandbox_host_addr(struct sandbox *sb, const __u8 addr[BPFREDIR_ADDR_LEN])
{
	struct redir_local_addr key;
	__u32 holders = 1;

	memcpy(key.addr, addr, sizeof(key.addr));
	if (bpf_map_update_elem(bpf_map__fd(sb->tc->maps.local_addrs), &key, &holders, BPF_ANY))
		return -errno;
	return cache_gen_bump(bpf_map__fd(sb->tc->maps.addrs_gen));
}

int sandbox_run(struct sandbox *sb, enum sandbox_hook h, const void *in, __u32 len, void *out,
		__u32 *out_len, __u32 *retval)
{
	struct xdp_md xdp_ctx = { .data_end = len, .ingress_ifindex = sb->lo_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = len, .data_out = out,
		    .data_size_out = *out_len, .repeat = 1);
	struct bpf_program *prog;

	switch (h) {
	case SANDBOX_XDP:
		if (!sb->xdp)
			return -ENOENT; /* not loaded: see sandbox_load */
		prog = sb->xdp->progs.bpfredir_xdp;
		opts.ctx_in = &xdp_ctx;
		opts.ctx_size_in = sizeof(xdp_ctx);
		break;
	case SANDBOX_TC_EGRESS:
		/* No context: the skb has no input device, as a packet this host made. */
		prog = sb->tc->progs.bpfredir_tc_eg;
		break;
	default:
		prog = sb->tc->progs.bpfredir_tc_in;
		break;
	}
	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts))
		return -errno;
	*out_len = opts.data_size_out;
	*retval = opts.retval;
	return 0;
}

int sandbox_sk_lookup(struct sandbox *sb, bool v6, const __u8 *remote, __u16 remote_port,
		      const __u8 *local, __u16 local_port, __u32 *retval, __u64 *cookie)
{
	struct bpf_sk_lookup ctx = { .family = v6 ? AF_INET6 : AF_INET,
				     .protocol = IPPROTO_TCP,
				     .remote_port = htons(remote_port),
				     .local_port = local_port };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .ctx_out = &ctx, .ctx_size_out = sizeof(ctx), .repeat = 1);

	if (!sb->steer)
		return -ENOENT;
	memcpy(v6 ? (void *)ctx.remote_ip6 : (void *)&ctx.remote_ip4, v6 ? remote : remote + 12,
	       v6 ? 16 : 4);
	memcpy(v6 ? (void *)ctx.local_ip6 : (void *)&ctx.local_ip4, v6 ? local : local + 12,
	       v6 ? 16 : 4);
	if (bpf_prog_test_run_opts(bpf_program__fd(sb->steer->progs.bpfredir_steer), &opts))
		return -errno;
	*retval = opts.retval;
	*cookie = ctx.cookie;
	return 0;
}

int sandbox_stat(struct sandbox *sb, __u32 idx, __u64 *sum)
{
	int ncpus = libbpf_num_possible_cpus(), cpu;

	if (ncpus < 0)
		return ncpus;
	__u64 percpu[ncpus];

	if (bpf_map_lookup_elem(bpf_map__fd(sb->tc->maps.stats), &idx, percpu))
		return -errno;
	for (*sum = 0, cpu = 0; cpu < ncpus; cpu++)
		*sum += percpu[cpu];
	return 0;
}

/* The cgroup is made under the cgroup2 root, not under the caller's own: an instance's
 * programs attached to a cgroup above the caller would run for the sandbox's calls too, and
 * count them. bpfredir never attaches at the root. */
int sandbox_cgroup(struct sandbox *sb)
{
	struct redir_attach_point here = {};
	struct bpf_program *progs[N_SOCK_HOOKS];
	__u64 root_id;
	int err, i;

	sb->cgroup_root_fd = cgroup2_root_open();
	if (sb->cgroup_root_fd < 0)
		return pr_warn_err(sb->cgroup_root_fd, "the cgroup2 mount: %s",
				   strerror(-sb->cgroup_root_fd));
	err = cgroup_fd_id(sb->cgroup_root_fd, &root_id);
	if (err)
		return pr_warn_err(err, "the cgroup2 mount: %s", strerror(-err));
	/* Made and opened relative to the mount checked, never through its path again. */
	snprintf(sb->cgroup_name, sizeof(sb->cgroup_name), "bpfredir-verify.%d", getpid());
	if (mkdirat(sb->cgroup_root_fd, sb->cgroup_name, 0700)) {
		err = -errno;
		pr_warn("cgroup %s: %s", sb->cgroup_name, strerror(-err));
		sb->cgroup_name[0] = '\0';
		return err;
	}
	sb->cgroup_fd = openat(sb->cgroup_root_fd, sb->cgroup_name,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	err = sb->cgroup_fd < 0 ? -errno : cgroup_fd_id(sb->cgroup_fd, &sb->cgroup_id);
	if (err)
		return pr_warn_err(err, "cgroup %s: %s", sb->cgroup_name, strerror(-err));

	for (i = 0; i < N_SOCK_HOOKS; i++) {
		progs[i] = bpf_object__find_program_by_name(sb->sock->obj, sock_hooks[i].prog);
		if (!progs[i])
			return -ENOENT;
		sb->links[i] = bpf_link_create(bpf_program__fd(progs[i]), sb->cgroup_fd,
					       sock_hooks[i].type, NULL);
		if (sb->links[i] < 0) {
			err = -errno;
			return pr_warn_err(err, "attaching %s: %s", sock_hooks[i].prog,
					   strerror(-err));
		}
	}
	here.cgroup_id = sb->cgroup_id;
	if (bpf_map_update_elem(bpf_map__fd(sb->sock->maps.attach_point), &sb->cgroup_id, &here,
				BPF_EXIST))
		return -errno;
	return ruleset_enable(sb->set_fd, POLICY_CGROUP, sb->cgroup_id, true);
}

int sandbox_cgroup_join(struct sandbox *sb)
{
	int fd = openat(sb->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "0", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

void sandbox_free(struct sandbox *sb)
{
	int i;

	for (i = 0; i < N_SOCK_HOOKS; i++)
		if (sb->links[i] >= 0)
			close(sb->links[i]);
	if (sb->cgroup_fd >= 0)
		close(sb->cgroup_fd);
	/* Its processes have exited (the caller waited for them): the cgroup is empty. */
	if (sb->cgroup_root_fd >= 0 && sb->cgroup_name[0] &&
	    unlinkat(sb->cgroup_root_fd, sb->cgroup_name, AT_REMOVEDIR))
		pr_warn("removing cgroup %s: %s", sb->cgroup_name, strerror(errno));
	if (sb->cgroup_root_fd >= 0)
		close(sb->cgroup_root_fd);
	if (sb->set_fd >= 0)
		close(sb->set_fd);
	steer_bpf__destroy(sb->steer);
	sock_bpf__destroy(sb->sock);
	xdp_bpf__destroy(sb->xdp);
	tc_bpf__destroy(sb->tc);
	memset(sb, 0, sizeof(*sb));
	sb->set_fd = sb->cgroup_root_fd = sb->cgroup_fd = -1;
}
