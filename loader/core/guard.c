// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The netns guard (bpf/guard.bpf.c): hidden ports stay hidden on every path into this
 * network namespace, where TC and XDP see only the interfaces they are attached to. load
 * attaches the best guard the kernel has, a newer build replaces it without a gap, unload
 * removes it with the other pins, and status, add and apply say where a hidden port is still
 * reachable because the guard cannot see it there.
 *
 * Pins: links/guard_nf4 and links/guard_nf6 (netfilter, LOCAL_IN), or links/guard_sk_lookup
 * (LINK_GUARD_* in pin_names.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "guard.h"
#include "log.h"
#include "objects.h"
#include "pins.h"
#include "guard.skel.h"

/* A new build's links are pinned as NAME_new first, then renamed over the old ones. */
#define PIN_NEW_SUFFIX "_new"

/* Ahead of every iptables and nftables table at LOCAL_IN (mangle at -150, filter at 0), so
 * no later hook (a log, a queue to user space) sees a packet aimed at a hidden port. The
 * kernel allows one BPF hook per priority (-EBUSY): a second instance in this network
 * namespace, or a new build's links while the old ones still run, take the next ones down. */
#define GUARD_NF_PRIORITY (NF_IP_PRI_MANGLE - 1)
#define GUARD_NF_SLOTS 16

const char *guard_kind_name(enum guard_kind kind)
{
	return kind == GUARD_NETFILTER	 ? "netfilter"
	       : kind == GUARD_SK_LOOKUP ? "sk_lookup"
					 : "none";
}

/* For tests, like BPFREDIR_FAILPOINT (and gated with it): BPFREDIR_TEST_GUARD=sk_lookup or
 * none makes load settle for less than the kernel has, so every fallback runs here. */
static enum guard_kind guard_wanted(void)
{
#ifdef BPFREDIR_FAILPOINTS
	const char *forced = getenv("BPFREDIR_TEST_GUARD");

	if (forced && !strcmp(forced, "sk_lookup"))
		return GUARD_SK_LOOKUP;
	if (forced && !strcmp(forced, "none"))
		return GUARD_NONE;
#endif
	return GUARD_NETFILTER;
}

/* The guard's pin names, from pin_names.c's table (pin_link_name's buffer is shared: each kind
 * keeps its own copy here, so two can be held at once). */
static const char *guard_pin(enum pin_link_kind kind)
{
	static char names[3][NAME_MAX + 1];
	char *name = names[kind - LINK_GUARD_NF4];

	if (!name[0])
		snprintf(name, sizeof(names[0]), "%s", pin_link_name(kind, 0, NULL));
	return name;
}

enum guard_kind guard_running(void)
{
	if (pin_exists("links", guard_pin(LINK_GUARD_NF4)) &&
	    pin_exists("links", guard_pin(LINK_GUARD_NF6)))
		return GUARD_NETFILTER;
	if (pin_exists("links", guard_pin(LINK_GUARD_SK_LOOKUP)))
		return GUARD_SK_LOOKUP;
	return GUARD_NONE;
}

/* struct nf_conn's BTF id, for the netfilter program's conntrack reads; 0 where the kernel's
 * BTF has no conntrack (then the guard judges the port as it finds it at LOCAL_IN). */
static __u32 nf_conn_btf_id(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int id = btf ? btf__find_by_name_kind(btf, "nf_conn", BTF_KIND_STRUCT) : -1;

	btf__free(btf);
	return id > 0 ? id : 0;
}

/* The guard object on the instance's maps: policy through policy_fd (not pinned yet during
 * a first load), every other map through its pin. with_nf: also the netfilter program,
 * which needs a 6.4 kernel; the sk_lookup one loads on any the guard supports. */
static struct guard_bpf *guard_open_load(int policy_fd, bool with_nf)
{
	struct guard_bpf *skel = guard_bpf__open();
	char path[PATH_MAX];
	struct bpf_map *map;
	int err = 0, fd;

	if (!skel)
		return NULL;
	bpf_program__set_autoload(skel->progs.bpfredir_nf_in, with_nf);
	skel->rodata->nf_conn_btf_id = nf_conn_btf_id();
	bpf_object__for_each_map(map, skel->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		if (!strcmp(bpf_map__name(map), "policy")) {
			err = bpf_map__reuse_fd(map, policy_fd);
		} else {
			err = pin_path(path, sizeof(path), "maps", bpf_map__name(map));
			fd = err ? -1 : bpf_obj_get(path);
			err = err ?: fd < 0 ? -errno : bpf_map__reuse_fd(map, fd);
			if (fd >= 0)
				close(fd);
		}
		if (err)
			break;
	}
	if (!err)
		err = guard_bpf__load(skel);
	if (err) {
		guard_bpf__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

/* Why the guard is weaker than netfilter, for the warning load prints. */
static char fallback_why[160];

static void fell_back(const char *what, int err)
{
	if (fallback_why[0])
		return; /* the first reason is the one that matters */
	snprintf(fallback_why, sizeof(fallback_why), "%s%s%s", what, err ? ": " : "",
		 err ? strerror(err) : "");
}

/* This build's guard programs, the netfilter one if the kernel has netfilter BPF links. */
static struct guard_bpf *guard_load(int policy_fd, enum guard_kind want)
{
	struct guard_bpf *skel = NULL;

	fallback_why[0] = '\0';
	if (want != GUARD_NETFILTER)
		fell_back("as BPFREDIR_TEST_GUARD asks", 0);
	if (want == GUARD_NONE)
		return NULL;
	if (want == GUARD_NETFILTER &&
	    libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_NETFILTER, NULL) <= 0)
		fell_back("no netfilter BPF programs here (Linux 6.4+, CONFIG_NETFILTER_BPF_LINK)",
			  0);
	else if (want == GUARD_NETFILTER && !(skel = guard_open_load(policy_fd, true)))
		fell_back(log_verbose() ? "the netfilter program did not load"
					: "the netfilter program did not load (-v shows why)",
			  errno);
	if (!skel && !(skel = guard_open_load(policy_fd, false)))
		fell_back(log_verbose() ? "the sk_lookup program did not load"
					: "the sk_lookup program did not load (-v shows why)",
			  errno);
	return skel;
}

struct guard_links {
	enum guard_kind kind;
	int fds[2]; /* netfilter: IPv4, IPv6; sk_lookup: one */
};

static void guard_links_close(struct guard_links *links)
{
	close_fds(links->fds, 2);
	links->kind = GUARD_NONE;
}

static int attach_netfilter(int prog_fd, int fds[2])
{
	static const __u32 pfs[2] = { NFPROTO_IPV4, NFPROTO_IPV6 };
	int i, prio;

	for (i = 0; i < 2; i++) {
		fds[i] = -EBUSY;
		for (prio = GUARD_NF_PRIORITY;
		     fds[i] == -EBUSY && prio > GUARD_NF_PRIORITY - GUARD_NF_SLOTS; prio--) {
			LIBBPF_OPTS(bpf_link_create_opts, opts, .netfilter.pf = pfs[i],
				    .netfilter.hooknum = NF_INET_LOCAL_IN,
				    .netfilter.priority = prio);

			fds[i] = bpf_link_create(prog_fd, 0, BPF_NETFILTER, &opts);
			if (fds[i] < 0)
				fds[i] = -errno;
		}
		if (fds[i] < 0)
			return fds[i];
	}
	return 0;
}

/* The best guard this build's programs and the kernel allow, held by the fds in links. */
static void guard_attach(struct guard_bpf *skel, enum guard_kind want, struct guard_links *links)
{
	int err;

	links->kind = GUARD_NONE;
	links->fds[0] = links->fds[1] = -1;
	if (!skel)
		return;
	if (want == GUARD_NETFILTER && bpf_program__fd(skel->progs.bpfredir_nf_in) >= 0) {
		err = attach_netfilter(bpf_program__fd(skel->progs.bpfredir_nf_in), links->fds);
		if (!err) {
			links->kind = GUARD_NETFILTER;
			return;
		}
		fell_back("no netfilter link could be made", -err);
		guard_links_close(links);
	}
	err = attach_netns_sk_lookup(bpf_program__fd(skel->progs.bpfredir_sk_lkp), &links->fds[0]);
	if (!err) {
		links->kind = GUARD_SK_LOOKUP;
		return;
	}
	fell_back("no sk_lookup link could be made", -err);
	guard_links_close(links);
}

void guard_pin_names(enum guard_kind kind, const char *names[2])
{
	names[0] = kind == GUARD_NETFILTER   ? guard_pin(LINK_GUARD_NF4)
		   : kind == GUARD_SK_LOOKUP ? guard_pin(LINK_GUARD_SK_LOOKUP)
					     : NULL;
	names[1] = kind == GUARD_NETFILTER ? guard_pin(LINK_GUARD_NF6) : NULL;
}

/* Said when a guard is attached: a weaker one leaves gaps, which status, add and apply name. */
static void guard_announce(enum guard_kind kind)
{
	if (kind == GUARD_SK_LOOKUP)
		pr_info("warning: the guard runs as sk_lookup (%s), which cannot see UDP "
			"broadcast or multicast; 'bpfredir status' shows where that matters",
			fallback_why);
	else if (kind == GUARD_NONE)
		pr_info("warning: no guard runs (%s): hidden ports are hidden only on "
			"attached interfaces; 'bpfredir status' shows where that matters",
			fallback_why);
}

int guard_start(struct pin_txn *txn, int policy_fd)
{
	enum guard_kind want = guard_wanted();
	struct guard_bpf *skel = guard_load(policy_fd, want);
	struct guard_links links;
	enum guard_kind kind;
	const char *names[2];
	char path[PATH_MAX];
	int i, err = 0;

	guard_attach(skel, want, &links);
	guard_bpf__destroy(skel); /* the links hold what they run */
	kind = links.kind;
	guard_pin_names(kind, names);
	for (i = 0; i < 2 && names[i] && !err; i++) {
		err = pin_path(path, sizeof(path), "links", names[i]);
		if (!err)
			err = pin_link_fd(txn, links.fds[i], path); /* takes the fd */
		links.fds[i] = -1;
	}
	guard_links_close(&links);
	if (err)
		return pr_warn_err(err, "cannot pin the guard: %s", strerror(-err));
	return 0;
}

/* After a load that worked: a load that fails says why in one line, and nothing else. */
void guard_announce_running(void)
{
	guard_announce(guard_running());
}

/* Does the pinned link run the same code as prog_fd? */
static bool runs_same_code(const char *pin, int prog_fd)
{
	struct bpf_link_info info = {};
	char path[PATH_MAX];
	__u32 len = sizeof(info);
	int link_fd, old_fd = -1;
	bool same;

	if (prog_fd < 0 || pin_path(path, sizeof(path), "links", pin))
		return false;
	link_fd = bpf_obj_get(path);
	if (link_fd >= 0 && !bpf_link_get_info_by_fd(link_fd, &info, &len))
		old_fd = bpf_prog_get_fd_by_id(info.prog_id);
	same = old_fd >= 0 && progs_same_code(old_fd, prog_fd);
	close_fds(&old_fd, 1);
	close_fds(&link_fd, 1);
	return same;
}

/* Pin a new link beside the old one, then rename it over it: the old link loses its last
 * reference in the same step, so one of the two runs at every moment. Takes the fd. */
static int pin_over(int fd, const char *name)
{
	char tmp[NAME_MAX], path[PATH_MAX];
	int links = pin_dir_fd("links"), err;

	snprintf(tmp, sizeof(tmp), "%s" PIN_NEW_SUFFIX, name);
	err = pin_unlink("links", tmp); /* left by a run killed here */
	if (!err)
		err = pin_path(path, sizeof(path), "links", tmp);
	if (!err && bpf_obj_pin(fd, path))
		err = -errno;
	close(fd);
	if (!err && renameat(links, tmp, links, name))
		err = -errno;
	if (err)
		pin_unlink("links", tmp);
	return err;
}

/* Point the pinned links at this build's program where the kernel can update a link in
 * place (sk_lookup can; netfilter cannot: bpf_nf_link_update is -EOPNOTSUPP). */
static bool update_in_place(const char *const names[2], int prog_fd)
{
	char path[PATH_MAX];
	int i, fd;
	bool ok = true;

	for (i = 0; i < 2 && names[i] && ok; i++) {
		fd = pin_path(path, sizeof(path), "links", names[i]) ? -1 : bpf_obj_get(path);
		ok = fd >= 0 && !bpf_link_update(fd, prog_fd, NULL);
		close_fds(&fd, 1);
	}
	return ok;
}

static int kind_prog_fd(struct guard_bpf *skel, enum guard_kind kind)
{
	if (!skel || kind == GUARD_NONE)
		return -1;
	return bpf_program__fd(kind == GUARD_NETFILTER ? skel->progs.bpfredir_nf_in
						       : skel->progs.bpfredir_sk_lkp);
}

int guard_upgrade(void)
{
	enum guard_kind have = guard_running(), want = guard_wanted(), best, kind;
	const char *names[2], *old_names[2];
	struct guard_bpf *skel = NULL;
	struct guard_links links;
	char path[PATH_MAX];
	int policy_fd = -1, i, n = 0, err = 0, prog_fd;

	if (!pin_path(path, sizeof(path), "maps", "policy"))
		policy_fd = bpf_obj_get(path);
	if (policy_fd < 0)
		return -errno;
	skel = guard_load(policy_fd, want);
	close(policy_fd);
	/* What a fresh load of this build would run. */
	best = !skel ? GUARD_NONE
	       : want == GUARD_NETFILTER && kind_prog_fd(skel, GUARD_NETFILTER) >= 0
		       ? GUARD_NETFILTER
		       : GUARD_SK_LOOKUP;
	guard_pin_names(have, old_names);
	if (have == best) {
		bool same = true;

		prog_fd = kind_prog_fd(skel, have);
		for (i = 0; i < 2 && old_names[i]; i++)
			same = same && runs_same_code(old_names[i], prog_fd);
		if (have == GUARD_NONE || same) {
			guard_bpf__destroy(skel);
			return 0;
		}
		if (update_in_place(old_names, prog_fd)) {
			guard_bpf__destroy(skel);
			return old_names[1] ? 2 : 1;
		}
	}
	/* New links beside the old ones, then renamed over them (or the other kind's pins
	 * removed): one guard or the other runs at every moment. */
	guard_attach(skel, want, &links);
	guard_bpf__destroy(skel);
	kind = links.kind;
	/* Never trade the running guard for a weaker one (this build's failed where the loaded
	 * build's did not, no free priority, say): keep it. */
	if (kind < have && want >= have) {
		guard_links_close(&links);
		pr_info("warning: the guard keeps running the %s programs of the loaded build "
			"(this build's: %s)",
			guard_kind_name(have), fallback_why);
		return 0;
	}
	guard_pin_names(kind, names);
	for (i = 0; i < 2 && names[i] && !err; i++) {
		err = pin_over(links.fds[i], names[i]);
		links.fds[i] = -1;
		n++;
	}
	guard_links_close(&links);
	if (err)
		return err;
	if (kind != have) {
		for (i = 0; i < 2 && old_names[i]; i++)
			pin_unlink("links", old_names[i]);
		n++;
	}
	if (n)
		guard_announce(guard_running());
	return n;
}

bool guard_intact(void)
{
	enum guard_kind have = guard_running();

	return have != GUARD_NONE &&
	       (have == guard_wanted() ||
		(have == GUARD_SK_LOOKUP &&
		 libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_NETFILTER, NULL) <= 0));
}
