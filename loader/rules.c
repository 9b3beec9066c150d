// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* add, del and list: rule changes are map updates on the pinned maps, so they take effect
 * at the next packet or connect(), with no program reloaded and no loader left running. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"

struct rule_args {
	__u16 public_port;
	__u16 target_port;
	__u8 proto;
	bool no_hide;
	bool hide_local;
	bool json;
	bool has_addr;
	__u8 addr[BPFREDIR_ADDR_LEN];
};

/* Parse a verb's options and exactly n_ports positional ports. Returns -1 to go on. */
static int parse_rule_args(int argc, char **argv, int n_ports, bool rule_opts, bool json_opt,
			   struct rule_args *args)
{
	static const struct option opts[] = {
		{ "proto", required_argument, NULL, OPT_PROTO },
		{ "no-hide", no_argument, NULL, OPT_NO_HIDE },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "hide-local", no_argument, NULL, OPT_HIDE_LOCAL },
		{ "json", no_argument, NULL, OPT_JSON },
		COMMON_LONG_OPTS,
		{},
	};
	__u16 *ports[] = { &args->public_port, &args->target_port };
	int opt, ret, i;

	args->proto = IPPROTO_TCP;
	while ((opt = getopt_long(argc, argv, ":" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		if (opt == OPT_PROTO && rule_opts) {
			if (parse_proto(optarg, &args->proto))
				return EXIT_USAGE;
		} else if (opt == OPT_NO_HIDE && rule_opts && n_ports == 2) {
			args->no_hide = true;
		} else if (opt == OPT_HIDE_LOCAL && rule_opts && n_ports == 2) {
			args->hide_local = true;
		} else if (opt == OPT_ADDR && rule_opts && n_ports == 2) {
			if (parse_addr(optarg, args->addr))
				return EXIT_USAGE;
			args->has_addr = true;
		} else if (opt == OPT_JSON && json_opt) {
			args->json = true;
		} else if (opt == OPT_PROTO || opt == OPT_NO_HIDE || opt == OPT_JSON ||
			   opt == OPT_ADDR || opt == OPT_HIDE_LOCAL) {
			return usage_error("option '%s' does not apply to '%s'", argv[optind - 1],
					   cur_cmd->name);
		} else {
			ret = common_opt(opt, argv);
			if (ret >= 0)
				return ret;
		}
	}
	if (argc - optind < n_ports)
		return usage_error("missing %s (see 'bpfredir %s --help')",
				   argc - optind == 0 ? "PUBLIC_PORT" : "TARGET_PORT",
				   cur_cmd->name);
	if (argc - optind > n_ports)
		return usage_error("unexpected argument '%s'", argv[optind + n_ports]);
	for (i = 0; i < n_ports; i++)
		if (parse_port(argv[optind + i], ports[i]))
			return EXIT_USAGE;
	if (args->hide_local && args->no_hide)
		return usage_error("--hide-local hides the target from local clients too; it "
				   "cannot go with --no-hide");
	if (n_ports == 2 && args->public_port == args->target_port)
		return usage_error("public and target port are both %u", args->public_port);
	return -1;
}

/* Root check, lock and pinned maps for a verb that touches the rules. */
static int open_locked(struct pinned_maps *maps, int *lock_fd)
{
	if (require_root())
		return EXIT_FAIL;
	*lock_fd = lock_pin_dir();
	if (*lock_fd < 0)
		return fail("not loaded at %s (run 'bpfredir load' first)", pin_dir);
	if (open_pinned_maps(maps)) {
		close(*lock_fd);
		return EXIT_FAIL;
	}
	return 0;
}

static void close_locked(struct pinned_maps *maps, int lock_fd)
{
	close_pinned_maps(maps);
	close(lock_fd);
}

static struct redir_rule_key rule_key(__u16 port, __u8 proto)
{
	struct redir_rule_key key = { .public_port = htons(port), .proto = proto };

	return key;
}

/* A port may be public in one rule or a target in another, never both: a packet to it could
 * not be both translated and hidden. */
static int check_conflicts(const struct pinned_maps *maps, const struct rule_args *args)
{
	struct redir_rule_key key, *prev = NULL, other;
	struct redir_rule rule;

	other = rule_key(args->target_port, args->proto);
	if (!bpf_map_lookup_elem(maps->rules, &other, &rule))
		return fail("target %u/%s is itself the public port of a rule (to %u)",
			    args->target_port, proto_name(args->proto), ntohs(rule.target_port));
	while (!bpf_map_get_next_key(maps->rules, prev, &key)) {
		prev = &key;
		if (key.proto != args->proto || bpf_map_lookup_elem(maps->rules, &key, &rule))
			continue;
		if (ntohs(rule.target_port) == args->public_port)
			return fail("public port %u/%s is already the target of rule %u",
				    args->public_port, proto_name(args->proto),
				    ntohs(key.public_port));
	}
	return 0;
}

int do_add(int argc, char **argv)
{
	struct rule_args args = {};
	struct redir_rule rule = {}, existing;
	struct redir_rule_key key;
	struct pinned_maps maps;
	int ret, lock_fd, err;

	ret = parse_rule_args(argc, argv, 2, true, false, &args);
	if (ret >= 0)
		return ret;
	ret = open_locked(&maps, &lock_fd);
	if (ret)
		return ret;

	key = rule_key(args.public_port, args.proto);
	rule.target_port = htons(args.target_port);
	rule.flags = args.no_hide ? 0 : REDIR_F_HIDE;
	if (args.hide_local)
		rule.flags |= REDIR_F_HIDE_LOCAL;
	if (args.has_addr) {
		rule.flags |= REDIR_F_ADDR;
		memcpy(rule.addr, args.addr, sizeof(rule.addr));
	}
	if (!bpf_map_lookup_elem(maps.rules, &key, &existing)) {
		if (memcmp(&existing, &rule, sizeof(rule)))
			ret = fail("port %u/%s already redirects to %u (with other options); "
				   "'bpfredir del %u' first",
				   args.public_port, proto_name(args.proto),
				   ntohs(existing.target_port), args.public_port);
		goto out; /* the same rule again: nothing to do */
	}
	ret = check_conflicts(&maps, &args);
	if (ret)
		goto out;
	if (bpf_map_update_elem(maps.rules, &key, &rule, BPF_NOEXIST)) {
		ret = fail("cannot add rule %u/%s: %s", args.public_port, proto_name(args.proto),
			   errno == E2BIG ? "rule table full" : strerror(errno));
		goto out;
	}
	err = sync_derived(&maps);
	if (err) {
		/* Leave the rule set as it was: no rule without its hidden port. */
		bpf_map_delete_elem(maps.rules, &key);
		sync_derived(&maps);
		ret = fail("cannot add rule %u/%s: %s", args.public_port, proto_name(args.proto),
			   strerror(-err));
	}
out:
	close_locked(&maps, lock_fd);
	return ret;
}

int do_del(int argc, char **argv)
{
	struct rule_args args = {};
	struct redir_rule_key key;
	struct pinned_maps maps;
	int ret, lock_fd, err;

	ret = parse_rule_args(argc, argv, 1, true, false, &args);
	if (ret >= 0)
		return ret;
	ret = open_locked(&maps, &lock_fd);
	if (ret)
		return ret;

	key = rule_key(args.public_port, args.proto);
	if (bpf_map_delete_elem(maps.rules, &key)) {
		ret = errno == ENOENT ? fail("no rule for port %u/%s", args.public_port,
					     proto_name(args.proto))
				      : fail("cannot delete rule %u/%s: %s", args.public_port,
					     proto_name(args.proto), strerror(errno));
		goto out;
	}
	err = sync_derived(&maps);
	if (err)
		ret = fail("rule %u/%s deleted, but updating the hidden ports failed: %s",
			   args.public_port, proto_name(args.proto), strerror(-err));
out:
	close_locked(&maps, lock_fd);
	return ret;
}

static const char *const stat_names[STAT__MAX] = {
	[STAT_REWRITTEN] = "rewritten",
	[STAT_REVERSE_REWRITTEN] = "reverse_rewritten",
	[STAT_HIDDEN_DROPPED] = "hidden_dropped",
	[STAT_MALFORMED_DROPPED] = "malformed_dropped",
	[STAT_PASSED] = "passed",
	[STAT_SOCK_REDIRECTED] = "sock_redirected",
	[STAT_SOCK_REFUSED] = "sock_refused",
};

static const char *const port_stat_names[PORT_STAT__MAX] = {
	[PORT_STAT_REWRITTEN] = "rewritten",
	[PORT_STAT_REVERSE_REWRITTEN] = "reverse_rewritten",
	[PORT_STAT_HIDDEN_DROPPED] = "hidden_dropped",
};

/* Sum a per-CPU value made of n __u64 counters into totals. Missing entries read as 0. */
static int sum_per_cpu(int fd, const void *key, __u64 *totals, size_t n)
{
	int n_cpus = libbpf_num_possible_cpus();
	__u64 *values;
	size_t i;
	int cpu;

	memset(totals, 0, n * sizeof(*totals));
	if (n_cpus < 0)
		return n_cpus;
	values = calloc((size_t)n_cpus * n, sizeof(*values));
	if (!values)
		return -ENOMEM;
	if (!bpf_map_lookup_elem(fd, key, values))
		for (cpu = 0; cpu < n_cpus; cpu++)
			for (i = 0; i < n; i++)
				totals[i] += values[cpu * n + i];
	free(values);
	return 0;
}

struct listed_rule {
	struct redir_rule_key key;
	struct redir_rule rule;
	__u64 counts[PORT_STAT__MAX];
};

static int cmp_listed(const void *a, const void *b)
{
	const struct listed_rule *x = a, *y = b;

	if (x->key.public_port != y->key.public_port)
		return ntohs(x->key.public_port) - ntohs(y->key.public_port);
	return x->key.proto - y->key.proto;
}

/* Counters of one rule: translations on its public port, drops on its (hidden) target. */
static int read_rule_counts(int fd, struct listed_rule *r)
{
	struct redir_port_key pub = { .port = r->key.public_port, .proto = r->key.proto };
	struct redir_port_key tgt = { .port = r->rule.target_port, .proto = r->key.proto };
	__u64 counts[PORT_STAT__MAX];
	int err;

	err = sum_per_cpu(fd, &pub, r->counts, PORT_STAT__MAX);
	if (err)
		return err;
	r->counts[PORT_STAT_HIDDEN_DROPPED] = 0;
	if (!(r->rule.flags & REDIR_F_HIDE))
		return 0;
	err = sum_per_cpu(fd, &tgt, counts, PORT_STAT__MAX);
	r->counts[PORT_STAT_HIDDEN_DROPPED] = counts[PORT_STAT_HIDDEN_DROPPED];
	return err;
}

static void print_rule_json(const struct listed_rule *r)
{
	char addr[INET6_ADDRSTRLEN];
	int s;

	printf("{\"public_port\":%u,\"target_port\":%u,\"proto\":\"%s\",\"hide\":%s,"
	       "\"hide_local\":%s,\"addr\":",
	       ntohs(r->key.public_port), ntohs(r->rule.target_port), proto_name(r->key.proto),
	       r->rule.flags & REDIR_F_HIDE ? "true" : "false",
	       r->rule.flags & REDIR_F_HIDE_LOCAL ? "true" : "false");
	if (r->rule.flags & REDIR_F_ADDR) {
		format_addr(r->rule.addr, addr, sizeof(addr));
		json_string(stdout, addr);
	} else {
		printf("null");
	}
	printf(",\"stats\":{");
	for (s = 0; s < PORT_STAT__MAX; s++)
		printf("%s\"%s\":%llu", s ? "," : "", port_stat_names[s],
		       (unsigned long long)r->counts[s]);
	printf("}}");
}

static void print_list(const struct listed_rule *rules, size_t n, const __u64 *stats, bool json)
{
	char addr[INET6_ADDRSTRLEN];
	size_t i;
	int s;

	if (json) {
		printf("{\"pin_dir\":");
		json_string(stdout, pin_dir);
		printf(",\"rules\":[");
		for (i = 0; i < n; i++) {
			printf("%s", i ? "," : "");
			print_rule_json(&rules[i]);
		}
		printf("],\"stats\":{");
		for (s = 0; s < STAT__MAX; s++)
			printf("%s\"%s\":%llu", s ? "," : "", stat_names[s],
			       (unsigned long long)stats[s]);
		printf("}}\n");
		return;
	}
	printf("%-7s %-7s %-5s %-4s %-16s %12s %12s %12s\n", "PUBLIC", "TARGET", "PROTO", "HIDE",
	       "ADDR", "REWRITTEN", "REPLIES", "HIDDEN_DROP");
	for (i = 0; i < n; i++) {
		const struct listed_rule *r = &rules[i];

		if (r->rule.flags & REDIR_F_ADDR)
			format_addr(r->rule.addr, addr, sizeof(addr));
		else
			snprintf(addr, sizeof(addr), "local");
		printf("%-7u %-7u %-5s %-4s %-16s %12llu %12llu %12llu\n", ntohs(r->key.public_port),
		       ntohs(r->rule.target_port), proto_name(r->key.proto),
		       r->rule.flags & REDIR_F_HIDE_LOCAL ? "all"
		       : r->rule.flags & REDIR_F_HIDE	  ? "yes"
							  : "no",
		       addr,
		       (unsigned long long)r->counts[PORT_STAT_REWRITTEN],
		       (unsigned long long)r->counts[PORT_STAT_REVERSE_REWRITTEN],
		       (unsigned long long)r->counts[PORT_STAT_HIDDEN_DROPPED]);
	}
	printf("\n");
	for (s = 0; s < STAT__MAX; s++)
		printf("%-18s %llu\n", stat_names[s], (unsigned long long)stats[s]);
}

int do_list(int argc, char **argv)
{
	static struct listed_rule rules[BPFREDIR_MAX_RULES];
	struct redir_rule_key key, *prev = NULL;
	struct rule_args args = {};
	__u64 stats[STAT__MAX];
	struct pinned_maps maps;
	__u32 idx;
	size_t n = 0, i;
	int ret;

	ret = parse_rule_args(argc, argv, 0, false, true, &args);
	if (ret >= 0)
		return ret;
	if (require_root())
		return EXIT_FAIL;
	if (open_pinned_maps(&maps))
		return EXIT_FAIL;
	ret = 0;
	while (n < BPFREDIR_MAX_RULES && !bpf_map_get_next_key(maps.rules, prev, &key)) {
		prev = &key;
		rules[n].key = key;
		if (!bpf_map_lookup_elem(maps.rules, &key, &rules[n].rule))
			n++;
	}
	for (i = 0; i < n && !ret; i++)
		ret = read_rule_counts(maps.port_stats, &rules[i]);
	for (idx = 0; idx < STAT__MAX && !ret; idx++)
		ret = sum_per_cpu(maps.stats, &idx, &stats[idx], 1);
	close_pinned_maps(&maps);
	if (ret)
		return fail("cannot read counters: %s", strerror(-ret));
	qsort(rules, n, sizeof(rules[0]), cmp_listed);
	print_list(rules, n, stats, args.json);
	return EXIT_OK;
}
