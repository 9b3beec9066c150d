// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * apply -f FILE: bring the host to exactly the file's interfaces, cgroups and rules. The
 * rule set is built aside and swapped in with one map update, so no packet sees half of
 * the old set and half of the new; interfaces and cgroups are attached before the swap and
 * detached after it. A second apply of the same file changes nothing.
 *
 * The format, one directive a line, '#' starts a comment:
 *   interface NAME [mode tc|xdp|xdp-generic]
 *   cgroup [PATH]             (no PATH: the cgroup2 root)
 *   flows N                   (connection-table size, used when apply loads)
 *   rule PUBLIC TARGET [proto tcp|udp] [no-hide] [hide-local] [reject] [addr IP]
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include "loader.h"
#include "iface.h"

#define MAX_TOKENS 16

struct config_rule {
	struct redir_policy_key key;
	struct redir_rule rule;
	int line;
};

struct config {
	const char *path;
	char ifnames[MAX_IFACES][IF_NAMESIZE];
	int if_lines[MAX_IFACES], if_cols[MAX_IFACES];
	enum iface_mode if_modes[MAX_IFACES];
	int n_ifaces;
	char cgroups[MAX_CGROUPS][PATH_MAX];
	bool cgroup_root[MAX_CGROUPS];
	int cgroup_lines[MAX_CGROUPS];
	int n_cgroups;
	unsigned long flows;
	int flows_line;
	struct config_rule rules[BPFREDIR_MAX_RULES];
	size_t n_rules;
};

struct token {
	const char *text;
	int col;
};

static int config_error(const struct config *cfg, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int config_error(const struct config *cfg, int line, int col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail("%s:%d:%d: %s", cfg->path, line, col, msg);
}

/* Split a line in place; a '#' outside a token starts a comment. */
static int tokenize(char *line, struct token *tokens, int max)
{
	int n = 0;
	char *p = line;

	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (n == max)
			return -1;
		tokens[n].text = p;
		tokens[n].col = p - line + 1;
		n++;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static int parse_interface(struct config *cfg, int line, const struct token *t, int n)
{
	int i;

	if ((n != 2 && n != 4) || (n == 4 && strcmp(t[2].text, "mode")))
		return config_error(cfg, line, t[n > 2 ? 2 : 0].col,
				    "expected 'interface NAME [mode tc|xdp|xdp-generic]'");
	if (strlen(t[1].text) >= IF_NAMESIZE)
		return config_error(cfg, line, t[1].col, "interface name '%s' too long", t[1].text);
	for (i = 0; i < cfg->n_ifaces; i++)
		if (!strcmp(cfg->ifnames[i], t[1].text))
			return config_error(cfg, line, t[1].col,
					    "interface '%s' already at line %d", t[1].text,
					    cfg->if_lines[i]);
	if (cfg->n_ifaces == MAX_IFACES)
		return config_error(cfg, line, t[0].col, "more than %d interfaces", MAX_IFACES);
	for (i = IFACE_TC; n == 4 && i <= IFACE_XDP_GENERIC; i++)
		if (!strcmp(t[3].text, iface_mode_name(i)))
			break;
	if (n == 4 && i > IFACE_XDP_GENERIC)
		return config_error(cfg, line, t[3].col,
				    "invalid mode '%s' (expected tc, xdp or xdp-generic)",
				    t[3].text);
	cfg->if_modes[cfg->n_ifaces] = n == 4 ? i : IFACE_TC;
	snprintf(cfg->ifnames[cfg->n_ifaces], IF_NAMESIZE, "%s", t[1].text);
	cfg->if_cols[cfg->n_ifaces] = t[1].col;
	cfg->if_lines[cfg->n_ifaces++] = line;
	return 0;
}

static int parse_cgroup(struct config *cfg, int line, const struct token *t, int n)
{
	int i = cfg->n_cgroups;

	if (n > 2)
		return config_error(cfg, line, t[2].col, "expected 'cgroup [PATH]'");
	if (i == MAX_CGROUPS)
		return config_error(cfg, line, t[0].col, "more than %d cgroups", MAX_CGROUPS);
	if (n == 2 && t[1].text[0] != '/')
		return config_error(cfg, line, t[1].col, "cgroup path '%s' is not absolute",
				    t[1].text);
	cfg->cgroup_root[i] = n == 1;
	snprintf(cfg->cgroups[i], PATH_MAX, "%s", n == 2 ? t[1].text : "");
	cfg->cgroup_lines[i] = line;
	cfg->n_cgroups++;
	return 0;
}

static int parse_flows(struct config *cfg, int line, const struct token *t, int n)
{
	if (n != 2)
		return config_error(cfg, line, t[0].col, "expected 'flows N'");
	if (cfg->flows_line)
		return config_error(cfg, line, t[0].col, "flows already set at line %d",
				    cfg->flows_line);
	if (!scan_uint(t[1].text, BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS, &cfg->flows))
		return config_error(cfg, line, t[1].col, "invalid flows '%s' (expected %u-%u)",
				    t[1].text, BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS);
	cfg->flows_line = line;
	return 0;
}

/* Options after the ports: proto tcp|udp, no-hide, hide-local, reject, addr IP; each at
 * most once. */
static int parse_rule_options(struct config *cfg, int line, const struct token *t, int n,
			      struct config_rule *r)
{
	bool seen_proto = false, no_hide = false, hide_local = false, reject = false;
	int i;

	for (i = 3; i < n; i++) {
		const char *opt = t[i].text;
		bool takes_value = !strcmp(opt, "proto") || !strcmp(opt, "addr");

		if (takes_value && i + 1 == n)
			return config_error(cfg, line, t[i].col, "'%s' needs a value", opt);
		if (!strcmp(opt, "proto") && !seen_proto) {
			if (!scan_proto(t[++i].text, &r->key.proto))
				return config_error(cfg, line, t[i].col,
						    "invalid protocol '%s' (expected %s)",
						    t[i].text, PROTO_FORM);
			seen_proto = true;
		} else if (!strcmp(opt, "addr") && !(r->rule.flags & REDIR_F_ADDR)) {
			if (!scan_addr(t[++i].text, r->rule.addr))
				return config_error(cfg, line, t[i].col,
						    "invalid address '%s' (expected %s)", t[i].text,
						    ADDR_FORM);
			r->rule.flags |= REDIR_F_ADDR;
		} else if (!strcmp(opt, "no-hide") && !no_hide) {
			no_hide = true;
		} else if (!strcmp(opt, "hide-local") && !hide_local) {
			hide_local = true;
		} else if (!strcmp(opt, "reject") && !reject) {
			reject = true;
		} else if (takes_value || !strcmp(opt, "no-hide") || !strcmp(opt, "hide-local") ||
			   !strcmp(opt, "reject")) {
			return config_error(cfg, line, t[i].col, "'%s' given twice", opt);
		} else {
			return config_error(cfg, line, t[i].col,
					    "unknown rule option '%s' (expected proto, no-hide, "
					    "hide-local, reject or addr)",
					    opt);
		}
	}
	if (no_hide && hide_local)
		return config_error(cfg, line, t[0].col, "'hide-local' cannot go with 'no-hide'");
	if (no_hide && reject)
		return config_error(cfg, line, t[0].col, "'reject' cannot go with 'no-hide'");
	if (reject)
		r->rule.flags |= REDIR_F_REJECT;
	if (!no_hide)
		r->rule.flags |= REDIR_F_HIDE;
	if (hide_local)
		r->rule.flags |= REDIR_F_HIDE_LOCAL;
	return 0;
}

static int parse_rule(struct config *cfg, int line, const struct token *t, int n)
{
	struct config_rule *r = &cfg->rules[cfg->n_rules];
	__u16 public_port, target_port;
	size_t i;

	if (n < 3)
		return config_error(cfg, line, t[0].col, "expected 'rule PUBLIC TARGET [options]'");
	if (cfg->n_rules == BPFREDIR_MAX_RULES)
		return config_error(cfg, line, t[0].col, "more than %d rules", BPFREDIR_MAX_RULES);
	for (i = 1; i < 3; i++)
		if (!scan_port(t[i].text, i == 1 ? &public_port : &target_port))
			return config_error(cfg, line, t[i].col, "invalid port '%s' (expected %s)",
					    t[i].text, PORT_FORM);
	if (public_port == target_port)
		return config_error(cfg, line, t[2].col, "public and target port are both %u",
				    public_port);
	memset(r, 0, sizeof(*r));
	r->key = public_key(public_port, IPPROTO_TCP);
	r->rule.target_port = htons(target_port);
	r->line = line;
	if (parse_rule_options(cfg, line, t, n, r))
		return EXIT_FAIL;
	for (i = 0; i < cfg->n_rules; i++) {
		const struct config_rule *o = &cfg->rules[i];

		if (o->key.proto != r->key.proto)
			continue;
		if (o->key.port == r->key.port)
			return config_error(cfg, line, t[1].col,
					    "port %u/%s already has a rule at "
					    "line %d",
					    public_port, proto_name(r->key.proto), o->line);
		if (o->rule.target_port == r->key.port || o->key.port == r->rule.target_port)
			return config_error(cfg, line, t[1].col,
					    "a port cannot be public in one rule "
					    "and the target of another (line %d)",
					    o->line);
	}
	cfg->n_rules++;
	return 0;
}

static int parse_config(struct config *cfg)
{
	static const struct {
		const char *name;
		int (*parse)(struct config *cfg, int line, const struct token *t, int n);
	} directives[] = {
		{ "interface", parse_interface },
		{ "cgroup", parse_cgroup },
		{ "flows", parse_flows },
		{ "rule", parse_rule },
	};
	struct token tokens[MAX_TOKENS];
	size_t cap = 0, i;
	char *text = NULL;
	int n, line = 0, ret = 0;
	FILE *file;

	file = fopen(cfg->path, "r");
	if (!file)
		return fail("cannot read %s: %s", cfg->path, strerror(errno));
	while (!ret && getline(&text, &cap, file) >= 0) {
		line++;
		n = tokenize(text, tokens, MAX_TOKENS);
		if (n < 0) {
			ret = config_error(cfg, line, 1, "more than %d words", MAX_TOKENS);
			break;
		}
		if (!n)
			continue;
		for (i = 0; i < sizeof(directives) / sizeof(directives[0]); i++)
			if (!strcmp(tokens[0].text, directives[i].name))
				break;
		if (i == sizeof(directives) / sizeof(directives[0]))
			ret = config_error(cfg, line, tokens[0].col,
					   "unknown directive '%s' (expected interface, cgroup, "
					   "flows or rule)",
					   tokens[0].text);
		else
			ret = directives[i].parse(cfg, line, tokens, n);
	}
	if (!ret && ferror(file))
		ret = fail("cannot read %s: %s", cfg->path, strerror(errno));
	free(text);
	fclose(file);
	return ret;
}

/* The file's interfaces and cgroups as the kernel knows them. */
struct resolved {
	int ifindexes[MAX_IFACES];
	__u64 cgroup_ids[MAX_CGROUPS];
	int cgroup_fds[MAX_CGROUPS];
	char cgroup_paths[MAX_CGROUPS][PATH_MAX];
};

static int resolve(const struct config *cfg, struct resolved *res)
{
	char why[160];
	int i, j;

	for (i = 0; i < cfg->n_ifaces; i++) {
		res->ifindexes[i] = if_nametoindex(cfg->ifnames[i]);
		if (!res->ifindexes[i])
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "unknown interface '%s'", cfg->ifnames[i]);
		if (iface_check(res->ifindexes[i], cfg->if_modes[i] != IFACE_TC, why, sizeof(why)))
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "interface %s %s", cfg->ifnames[i], why);
	}
	for (i = 0; i < cfg->n_cgroups; i++) {
		if (open_cgroup(cfg->cgroup_root[i] ? NULL : cfg->cgroups[i], res->cgroup_paths[i],
				PATH_MAX, &res->cgroup_fds[i], &res->cgroup_ids[i]))
			return EXIT_FAIL;
		for (j = 0; j < i; j++)
			if (res->cgroup_ids[j] == res->cgroup_ids[i])
				return config_error(cfg, cfg->cgroup_lines[i], 1,
						    "cgroup %s already at line %d",
						    res->cgroup_paths[i], cfg->cgroup_lines[j]);
	}
	return 0;
}

/* What is attached now, read back from links/ and tc_legacy, and what the live set lets act;
 * the two differ only after an interrupted apply, attach or detach. */
struct current {
	int ifindexes[MAX_IFACES];
	int n_ifaces;
	__u64 cgroup_ids[MAX_CGROUPS];
	int n_cgroups;
	int active_ifindexes[BPFREDIR_MAX_IFACES];
	int n_active_ifaces;
	__u64 active_cgroup_ids[BPFREDIR_MAX_CGROUPS];
	int n_active_cgroups;
};

static void add_current_iface(int map_fd, int ifindex, void *arg)
{
	struct current *cur = arg;

	if (cur->n_ifaces < MAX_IFACES)
		cur->ifindexes[cur->n_ifaces++] = ifindex;
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

static int read_current(struct current *cur, int set_fd)
{
	char links[PATH_MAX];
	unsigned long long id;
	struct dirent *de;
	DIR *dir;
	int ifindex, fd;

	memset(cur, 0, sizeof(*cur));
	if (pin_path(links, sizeof(links), "links", NULL))
		return -ENAMETOOLONG;
	dir = opendir(links);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if ((sscanf(de->d_name, "tcx_ingress_%d", &ifindex) == 1 ||
		     sscanf(de->d_name, "xdp_native_%d", &ifindex) == 1 ||
		     sscanf(de->d_name, "xdp_generic_%d", &ifindex) == 1) &&
		    cur->n_ifaces < MAX_IFACES)
			cur->ifindexes[cur->n_ifaces++] = ifindex;
		else if (sscanf(de->d_name, "cgroup_%llu_conn4", &id) == 1 &&
			 cur->n_cgroups < MAX_CGROUPS)
			cur->cgroup_ids[cur->n_cgroups++] = id;
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

static bool has_int(const int *list, int n, int value)
{
	while (n--)
		if (list[n] == value)
			return true;
	return false;
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
static int plan_rules(const struct config *cfg, int set_fd, bool print)
{
	struct redir_policy_key key, *prev = NULL;
	struct redir_rule rule;
	int changes = 0;
	size_t i;

	for (i = 0; i < cfg->n_rules; i++) {
		const struct config_rule *r = &cfg->rules[i];

		if (set_fd >= 0 && !bpf_map_lookup_elem(set_fd, &r->key, &rule)) {
			if (!memcmp(&rule, &r->rule, sizeof(rule)))
				continue;
			if (print)
				print_rule_change('-', &r->key, &rule);
			changes++;
		}
		if (print)
			print_rule_change('+', &r->key, &r->rule);
		changes++;
	}
	while (set_fd >= 0 && !bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || bpf_map_lookup_elem(set_fd, &key, &rule))
			continue;
		for (i = 0; i < cfg->n_rules; i++)
			if (!memcmp(&cfg->rules[i].key, &key, sizeof(key)))
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
static int plan(const struct config *cfg, const struct resolved *res, const struct current *cur,
		int set_fd)
{
	static const char *const leftover = " (left inert by an interrupted run)";
	int i, changes = 0;
	bool wanted;

	for (i = 0; i < cfg->n_ifaces; i++)
		if (!has_int(cur->active_ifindexes, cur->n_active_ifaces, res->ifindexes[i])) {
			printf("+ interface %s", cfg->ifnames[i]);
			if (cfg->if_modes[i] != IFACE_TC)
				printf(" mode %s", iface_mode_name(cfg->if_modes[i]));
			printf("\n");
			changes++;
		}
	for (i = 0; i < cur->n_active_ifaces; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->active_ifindexes[i])) {
			print_iface_change('-', cur->active_ifindexes[i], "");
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
static int attach_new(const struct config *cfg, const struct resolved *res,
		      const struct current *cur)
{
	int tc_fds[2], sock_fds[N_SOCK_HOOKS], xdp_fd, i, j, err = 0;

	/* Both set every fd to -1 first, so close_fds() below is safe on failure. */
	if (open_pinned_tc_progs(tc_fds) || open_pinned_progs(sock_fds))
		err = fail("cannot open the pinned programs: %s", strerror(errno));
	xdp_fd = open_pinned_prog(XDP_PROG_NAME);
	for (i = 0; i < cfg->n_ifaces && !err; i++) {
		if (has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
			continue;
		if (cfg->if_modes[i] == IFACE_TC)
			err = attach_iface(res->ifindexes[i], cfg->ifnames[i], tc_fds, ATTACH_AUTO);
		else if (xdp_fd < 0)
			err = fail("cannot open the pinned XDP program: %s (loaded by a build "
				   "without XDP mode; 'bpfredir load' with this build first)",
				   strerror(-xdp_fd));
		else
			err = attach_iface_xdp(res->ifindexes[i], cfg->ifnames[i], tc_fds, xdp_fd,
					       cfg->if_modes[i]);
	}
	for (j = 0; j < cfg->n_cgroups && !err; j++)
		if (!has_u64(cur->cgroup_ids, cur->n_cgroups, res->cgroup_ids[j]) &&
		    attach_cgroup(res->cgroup_fds[j], res->cgroup_ids[j], sock_fds))
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

static void detach_gone(const struct config *cfg, const struct resolved *res,
			const struct current *cur)
{
	int i;

	for (i = 0; i < cur->n_ifaces; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->ifindexes[i]))
			detach_iface(cur->ifindexes[i]);
	for (i = 0; i < cur->n_cgroups; i++)
		if (!has_u64(res->cgroup_ids, cfg->n_cgroups, cur->cgroup_ids[i]))
			detach_cgroup(cur->cgroup_ids[i]);
}

/* Build the file's rule set aside, with its interfaces and cgroups, and put it live in one
 * update. */
static int swap_rules(const struct config *cfg, const struct resolved *res,
		      const struct pinned_maps *maps)
{
	int set_fd = policy_set_create(), err = 0, i;
	size_t r;

	if (set_fd < 0)
		return fail("cannot create a rule set: %s", strerror(-set_fd));
	for (r = 0; r < cfg->n_rules && !err; r++)
		if (bpf_map_update_elem(set_fd, &cfg->rules[r].key, &cfg->rules[r].rule,
					BPF_NOEXIST))
			err = -errno;
	for (i = 0; i < cfg->n_ifaces && !err; i++)
		err = set_attachment(set_fd, POLICY_IFACE, res->ifindexes[i], true);
	for (i = 0; i < cfg->n_cgroups && !err; i++)
		err = set_attachment(set_fd, POLICY_CGROUP, res->cgroup_ids[i], true);
	if (!err)
		err = sync_rule_derived(set_fd, maps->port_stats, maps->port_interest);
	if (!err)
		err = policy_set_install(maps->policy, set_fd);
	close(set_fd);
	if (err)
		return fail("cannot switch to the new rule set: %s", strerror(-err));
	return 0;
}

/* An attached interface keeps its mode: changing it means detaching one ingress before
 * attaching the other, so it takes two applies (without the interface, then with it). */
static int check_modes(const struct config *cfg, const struct resolved *res,
		       const struct current *cur)
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

static int apply_loaded(const struct config *cfg, const struct resolved *res, bool dry_run)
{
	struct pinned_maps maps;
	struct current cur;
	int changes, ret, err;

	if (open_pinned_maps(&maps))
		return EXIT_FAIL;
	err = read_current(&cur, maps.rules);
	if (err) {
		close_pinned_maps(&maps);
		return fail("cannot read %s/links: %s", pin_dir, strerror(-err));
	}
	if (check_modes(cfg, res, &cur)) {
		close_pinned_maps(&maps);
		return EXIT_FAIL;
	}
	changes = plan(cfg, res, &cur, maps.rules);
	if (!changes)
		printf("nothing to change\n");
	ret = 0;
	/* Attached is not acting: the new attachments do nothing until the switch, the dropped
	 * ones nothing after it, so the switch is the one moment the host changes. */
	if (changes && !dry_run) {
		ret = attach_new(cfg, res, &cur);
		failpoint("apply-attached");
		if (!ret)
			ret = swap_rules(cfg, res, &maps);
		failpoint("apply-switched");
		if (!ret)
			detach_gone(cfg, res, &cur);
	}
	if (!ret && !dry_run) {
		err = sync_local_addrs(maps.local_addrs);
		if (err)
			ret = fail("cannot record local addresses: %s", strerror(-err));
	}
	close_pinned_maps(&maps);
	return ret;
}

static int apply_fresh(const struct config *cfg, const struct resolved *res, bool dry_run)
{
	struct load_request req = { .flows =
					    cfg->flows_line ? cfg->flows : BPFREDIR_DEFAULT_FLOWS };
	struct pinned_maps maps;
	int i, ret;

	printf("+ load %s\n", pin_dir);
	for (i = 0; i < cfg->n_ifaces; i++)
		printf("+ interface %s%s%s\n", cfg->ifnames[i],
		       cfg->if_modes[i] != IFACE_TC ? " mode " : "",
		       cfg->if_modes[i] != IFACE_TC ? iface_mode_name(cfg->if_modes[i]) : "");
	for (i = 0; i < cfg->n_cgroups; i++)
		printf("+ cgroup %s\n", cfg->cgroup_root[i] ? "(cgroup2 root)" : cfg->cgroups[i]);
	plan_rules(cfg, -1, true);
	if (dry_run)
		return 0;
	for (i = 0; i < cfg->n_ifaces; i++) {
		req.if_modes[req.n_ifaces] = cfg->if_modes[i];
		req.ifnames[req.n_ifaces++] = cfg->ifnames[i];
	}
	for (i = 0; i < cfg->n_cgroups; i++)
		req.cgroups[req.n_cgroups++] = cfg->cgroup_root[i] ? NULL : cfg->cgroups[i];
	ret = load_locked(&req);
	if (ret)
		return ret;
	ret = open_pinned_maps(&maps) ? EXIT_FAIL : swap_rules(cfg, res, &maps);
	if (!ret)
		close_pinned_maps(&maps);
	if (ret)
		remove_pins(false); /* nothing half-applied: the load goes too */
	return ret;
}

int do_apply(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		COMMON_LONG_OPTS,
		{},
	};
	static struct config cfg;
	static struct resolved res;
	bool dry_run = false;
	int opt, ret, lock_fd = -1, i;

	while ((opt = getopt_long(argc, argv, ":f:" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		if (opt == 'f') {
			cfg.path = optarg;
		} else if (opt == OPT_DRY_RUN) {
			dry_run = true;
		} else {
			ret = common_opt(opt, argv);
			if (ret >= 0)
				return ret;
		}
	}
	if (extra_args(argc, argv) >= 0)
		return EXIT_USAGE;
	if (!cfg.path)
		return usage_error("-f FILE is required (see 'bpfredir apply --help')");
	for (i = 0; i < MAX_CGROUPS; i++)
		res.cgroup_fds[i] = -1;
	ret = parse_config(&cfg);
	if (!ret)
		ret = require_root();
	if (!ret)
		ret = resolve(&cfg, &res);
	if (ret)
		goto out;
	/* A dry run on a host where nothing is loaded must not even create the pin dir. */
	if (dry_run && !is_loaded()) {
		ret = apply_fresh(&cfg, &res, true);
		goto out;
	}
	lock_fd = prepare_pin_dir();
	if (lock_fd < 0) {
		ret = EXIT_FAIL;
		goto out;
	}
	ret = is_loaded() ? apply_loaded(&cfg, &res, dry_run) : apply_fresh(&cfg, &res, dry_run);
out:
	for (i = 0; i < cfg.n_cgroups; i++)
		if (res.cgroup_fds[i] >= 0)
			close(res.cgroup_fds[i]);
	if (lock_fd >= 0)
		close(lock_fd);
	return ret;
}
