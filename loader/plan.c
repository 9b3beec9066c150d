// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* apply's plan: the file's names resolved, what is attached now read back, the difference
 * printed (--dry-run) and carried out in the order that keeps every packet on the old
 * behaviour or the new. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include "config.h"
#include "iface.h"

int resolve(const struct config *cfg, struct resolved *res)
{
	const char *path;
	char why[160];
	int i, j, err;

	for (i = 0; i < cfg->n_ifaces; i++) {
		res->ifindexes[i] = if_nametoindex(cfg->ifnames[i]);
		if (!res->ifindexes[i])
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "unknown interface%s", shown(cfg, cfg->ifnames[i]));
		/* Another name of one interface (an altname, 'ip link property add'), which
		 * would be attached twice. */
		for (j = 0; j < i; j++)
			if (res->ifindexes[j] == res->ifindexes[i])
				return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
						    "interface%s is the interface%s of line %d "
						    "(ifindex %d)",
						    shown(cfg, cfg->ifnames[i]),
						    shown(cfg, cfg->ifnames[j]), cfg->if_lines[j],
						    res->ifindexes[i]);
		if (iface_check(res->ifindexes[i], cfg->if_modes[i] != IFACE_TC, why, sizeof(why)))
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "interface%s %s", shown(cfg, cfg->ifnames[i]), why);
	}
	for (i = 0; i < cfg->n_cgroups; i++) {
		path = cfg->cgroup_root[i] ? NULL : cfg->cgroups[i];
		err = cgroup_open(path, res->cgroup_paths[i], PATH_MAX, &res->cgroup_fds[i],
				  &res->cgroup_ids[i]);
		if (err && !path)
			return config_error(cfg, cfg->cgroup_lines[i], cfg->cgroup_cols[i],
					    "no cgroup2 mount found in /proc/self/mounts");
		if (err)
			return config_error(cfg, cfg->cgroup_lines[i], cfg->cgroup_cols[i],
					    "cgroup%s: %s", shown_path(cfg, path),
					    err == -EMEDIUMTYPE ? "not a cgroup2 directory"
								: strerror(-err));
		for (j = 0; j < i; j++)
			if (res->cgroup_ids[j] == res->cgroup_ids[i])
				return config_error(cfg, cfg->cgroup_lines[i], cfg->cgroup_cols[i],
						    "cgroup%s already at line %d",
						    shown_path(cfg, res->cgroup_paths[i]),
						    cfg->cgroup_lines[j]);
	}
	return 0;
}

static bool has_int(const int *list, int n, int value)
{
	while (n--)
		if (list[n] == value)
			return true;
	return false;
}

static void add_current_iface(int map_fd, int ifindex, void *arg)
{
	struct current *cur = arg;

	if (has_int(cur->ifindexes, cur->n_ifaces, ifindex) ||
	    has_int(cur->stale_ifindexes, cur->n_stale, ifindex))
		return;
	if (!iface_attached(ifindex)) {
		if (cur->n_stale < MAX_IFACES)
			cur->stale_ifindexes[cur->n_stale++] = ifindex;
	} else if (cur->n_ifaces < MAX_IFACES) {
		cur->ifindexes[cur->n_ifaces++] = ifindex;
	}
}

static void read_active(struct current *cur, int set_fd)
{
	struct redir_policy_key key, *prev = NULL;

	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind == POLICY_IFACE && cur->n_active_ifaces < BPFREDIR_MAX_IFACES)
			cur->active_ifindexes[cur->n_active_ifaces++] = key.id;
		else if (key.kind == POLICY_CGROUP && cur->n_active_cgroups < BPFREDIR_MAX_CGROUPS)
			cur->active_cgroup_ids[cur->n_active_cgroups++] = key.id;
	}
}

int read_current(struct current *cur, int set_fd)
{
	struct pin_link link;
	struct dirent *de;
	DIR *dir;
	int fd;

	memset(cur, 0, sizeof(*cur));
	dir = pin_opendir("links");
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (!pin_link_parse(de->d_name, &link))
			continue;
		if (link.kind == LINK_TCX_INGRESS || link.kind == LINK_XDP_NATIVE ||
		    link.kind == LINK_XDP_GENERIC)
			add_current_iface(-1, link.where, cur);
		else if (link.kind == LINK_CGROUP && link.hook == sock_hooks[0].suffix &&
			 cur->n_cgroups < BPFREDIR_MAX_CGROUPS)
			cur->cgroup_ids[cur->n_cgroups++] = link.where;
	}
	closedir(dir);
	fd = open_tc_legacy_map();
	if (fd >= 0) {
		tc_legacy_each(fd, add_current_iface, cur);
		close(fd);
	}
	read_active(cur, set_fd);
	return 0;
}

static bool has_u64(const __u64 *list, int n, __u64 value)
{
	while (n--)
		if (list[n] == value)
			return true;
	return false;
}

static void print_rule_change(char sign, const struct redir_policy_key *key,
			      const struct redir_rule *rule)
{
	char addr[INET6_ADDRSTRLEN];

	printf("%c rule %u %u proto %s%s%s%s", sign, ntohs(key->port), ntohs(rule->target_port),
	       proto_name(key->proto), rule->flags & REDIR_F_HIDE ? "" : " no-hide",
	       rule->flags & REDIR_F_HIDE_LOCAL ? " hide-local" : "",
	       rule->flags & REDIR_F_REJECT ? " reject" : "");
	if (rule->flags & REDIR_F_ADDR) {
		format_addr(rule->addr, addr, sizeof(addr));
		printf(" addr %s", addr);
	}
	printf("\n");
}

/* Count (and with print, show) the rule changes from the live set to the file's. */
int plan_rules(const struct config *cfg, int set_fd, bool print)
{
	struct redir_policy_key key, *prev = NULL;
	struct redir_rule rule;
	int changes = 0;
	size_t i;

	for (i = 0; i < cfg->n_rules; i++) {
		struct redir_policy_key want_key;
		struct redir_rule want;

		rule_spec_entry(&cfg->rules[i].spec, &want_key, &want);
		if (set_fd >= 0 && !bpf_map_lookup_elem(set_fd, &want_key, &rule)) {
			rule.flags &= ~REDIR_F_SOCKET; /* the instance's, not the rule's */
			if (!memcmp(&rule, &want, sizeof(rule)))
				continue;
			if (print)
				print_rule_change('-', &want_key, &rule);
			changes++;
		}
		if (print)
			print_rule_change('+', &want_key, &want);
		changes++;
	}
	while (set_fd >= 0 && !bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || bpf_map_lookup_elem(set_fd, &key, &rule))
			continue;
		for (i = 0; i < cfg->n_rules; i++)
			if (cfg->rules[i].spec.proto == key.proto &&
			    cfg->rules[i].spec.public_port == ntohs(key.port))
				break;
		if (i == cfg->n_rules) {
			if (print)
				print_rule_change('-', &key, &rule);
			changes++;
		}
	}
	return changes;
}

static void print_iface_change(char sign, int ifindex, const char *why)
{
	char ifname[IF_NAMESIZE];

	if (!if_indextoname(ifindex, ifname))
		snprintf(ifname, sizeof(ifname), "ifindex %d", ifindex);
	printf("%c interface %s%s\n", sign, ifname, why);
}

/* Print the changes and count them. What is attached but not acting is left over from an
 * interrupted run: acting (if the file wants it) or detaching it is a change too. */
int plan(const struct config *cfg, const struct resolved *res, const struct current *cur,
	 int set_fd)
{
	static const char *const leftover = " (left inert by an interrupted run)";
	int i, changes = 0;
	bool wanted;

	for (i = 0; i < cfg->n_ifaces; i++) {
		bool active =
			has_int(cur->active_ifindexes, cur->n_active_ifaces, res->ifindexes[i]);

		if (active && has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
			continue;
		printf("+ interface %s", cfg->ifnames[i]);
		if (cfg->if_modes[i] != IFACE_TC)
			printf(" mode %s", iface_mode_name(cfg->if_modes[i]));
		printf("%s\n", active ? " (again: its attachment is gone)" : "");
		changes++;
	}
	for (i = 0; i < cur->n_active_ifaces; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->active_ifindexes[i])) {
			print_iface_change('-', cur->active_ifindexes[i], "");
			changes++;
		}
	for (i = 0; i < cur->n_stale; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->stale_ifindexes[i]) &&
		    !has_int(cur->active_ifindexes, cur->n_active_ifaces,
			     cur->stale_ifindexes[i])) {
			print_iface_change('-', cur->stale_ifindexes[i],
					   " (pins of an attachment that is gone)");
			changes++;
		}
	for (i = 0; i < cur->n_ifaces; i++) {
		wanted = has_int(res->ifindexes, cfg->n_ifaces, cur->ifindexes[i]);
		if (!wanted &&
		    !has_int(cur->active_ifindexes, cur->n_active_ifaces, cur->ifindexes[i])) {
			print_iface_change('-', cur->ifindexes[i], leftover);
			changes++;
		}
	}
	for (i = 0; i < cfg->n_cgroups; i++)
		if (!has_u64(cur->active_cgroup_ids, cur->n_active_cgroups, res->cgroup_ids[i])) {
			printf("+ cgroup %s\n", res->cgroup_paths[i]);
			changes++;
		}
	for (i = 0; i < cur->n_active_cgroups; i++)
		if (!has_u64(res->cgroup_ids, cfg->n_cgroups, cur->active_cgroup_ids[i])) {
			printf("- cgroup id %llu\n", (unsigned long long)cur->active_cgroup_ids[i]);
			changes++;
		}
	for (i = 0; i < cur->n_cgroups; i++) {
		wanted = has_u64(res->cgroup_ids, cfg->n_cgroups, cur->cgroup_ids[i]);
		if (!wanted &&
		    !has_u64(cur->active_cgroup_ids, cur->n_active_cgroups, cur->cgroup_ids[i])) {
			printf("- cgroup id %llu%s\n", (unsigned long long)cur->cgroup_ids[i],
			       leftover);
			changes++;
		}
	}
	return changes + plan_rules(cfg, set_fd, true);
}

/* Attach what the file adds; on failure take back what this call attached. */
int attach_new(const struct config *cfg, const struct resolved *res, const struct current *cur)
{
	int tc_fds[2], sock_fds[N_SOCK_HOOKS], xdp_fd, i, j, err = 0;
	enum attach_mode attach;

	/* Both set every fd to -1 first, so close_fds() below is safe on failure. */
	if (open_pinned_tc_progs(tc_fds) || open_pinned_progs(sock_fds))
		err = fail("cannot open the pinned programs: %s", strerror(errno));
	xdp_fd = open_pinned_prog(XDP_PROG_NAME);
	for (i = 0; i < cfg->n_ifaces && !err; i++) {
		if (has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
			continue;
		/* What is left of an attachment that is gone goes first: it holds the names. An
		 * interface that had legacy tc filters gets them again, not tcx. */
		attach = ATTACH_AUTO;
		if (has_int(cur->stale_ifindexes, cur->n_stale, res->ifindexes[i])) {
			if (tc_legacy_recorded(res->ifindexes[i]))
				attach = ATTACH_TC;
			detach_iface(res->ifindexes[i]);
		}
		if (cfg->if_modes[i] == IFACE_TC)
			err = attach_iface(NULL, res->ifindexes[i], cfg->ifnames[i], tc_fds, attach)
				      ? EXIT_FAIL
				      : 0;
		else if (xdp_fd < 0)
			err = fail("cannot open the pinned XDP program: %s (loaded by a build "
				   "without XDP mode; 'bpfredir load' with this build first)",
				   strerror(-xdp_fd));
		else
			err = attach_iface_xdp(NULL, res->ifindexes[i], cfg->ifnames[i], tc_fds,
					       xdp_fd, cfg->if_modes[i], attach)
				      ? EXIT_FAIL
				      : 0;
	}
	for (j = 0; j < cfg->n_cgroups && !err; j++)
		if (!has_u64(cur->cgroup_ids, cur->n_cgroups, res->cgroup_ids[j]) &&
		    attach_cgroup(NULL, res->cgroup_fds[j], res->cgroup_ids[j], sock_fds))
			err = fail("cannot attach to cgroup %s: %s", res->cgroup_paths[j],
				   strerror(errno));
	if (err) {
		while (i-- > 0)
			if (!has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
				detach_iface(res->ifindexes[i]);
		while (j-- > 0)
			if (!has_u64(cur->cgroup_ids, cur->n_cgroups, res->cgroup_ids[j]))
				detach_cgroup(res->cgroup_ids[j]);
	}
	close_fds(tc_fds, 2);
	close_fds(&xdp_fd, 1);
	close_fds(sock_fds, N_SOCK_HOOKS);
	return err;
}

void detach_gone(const struct config *cfg, const struct resolved *res, const struct current *cur)
{
	int i;

	for (i = 0; i < cur->n_ifaces; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->ifindexes[i]))
			detach_iface(cur->ifindexes[i]);
	for (i = 0; i < cur->n_stale; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->stale_ifindexes[i]))
			detach_iface(cur->stale_ifindexes[i]);
	for (i = 0; i < cur->n_cgroups; i++)
		if (!has_u64(res->cgroup_ids, cfg->n_cgroups, cur->cgroup_ids[i]))
			detach_cgroup(cur->cgroup_ids[i]);
}

/* Build the file's rule set aside, with its interfaces and cgroups, and put it live in one
 * update. */
int swap_rules(const struct config *cfg, const struct resolved *res, const struct pinned_maps *maps)
{
	int set_fd = ruleset_create(), err = 0, live_err, i;
	size_t r;

	if (set_fd < 0)
		return fail("cannot create a rule set: %s", strerror(-set_fd));
	for (r = 0; r < cfg->n_rules && !err; r++)
		err = ruleset_put(set_fd, &cfg->rules[r].spec);
	for (i = 0; i < cfg->n_ifaces && !err; i++)
		err = ruleset_enable(set_fd, POLICY_IFACE, res->ifindexes[i], true);
	for (i = 0; i < cfg->n_cgroups && !err; i++)
		err = ruleset_enable(set_fd, POLICY_CGROUP, res->cgroup_ids[i], true);
	if (!err) {
		struct derive_maps derive = pinned_derive_maps(maps);

		derive.set_aside = true;
		err = ruleset_derive(set_fd, &derive);
	}
	if (!err)
		err = ruleset_install(maps->policy, set_fd);
	close(set_fd);
	/* What the programs read of the set besides it follows the live one exactly: the new
	 * one, or the old one still after a failure. */
	live_err = sync_live_derived(maps);
	if (err)
		return fail("cannot switch to the new rule set: %s", strerror(-err));
	if (live_err)
		return fail("cannot bring the maps in line with the new rule set: %s",
			    strerror(-live_err));
	return 0;
}

/* An attached interface keeps its mode: changing it means detaching one ingress before
 * attaching the other, so it takes two applies (without the interface, then with it). */
int check_modes(const struct config *cfg, const struct resolved *res, const struct current *cur)
{
	int i, mode;

	for (i = 0; i < cfg->n_ifaces; i++) {
		if (!has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
			continue;
		mode = iface_mode_of(res->ifindexes[i]);
		if (mode >= 0 && mode != (int)cfg->if_modes[i])
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "interface %s is attached in %s mode; apply without it "
					    "first to change the mode",
					    cfg->ifnames[i], iface_mode_name(mode));
	}
	return 0;
}
