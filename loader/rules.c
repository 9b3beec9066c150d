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
	bool reject;
	bool has_addr;
	__u8 addr[BPFREDIR_ADDR_LEN];
};

/* add (2 ports) and del (1 port): options and positional ports. Returns -1 to go on. */
static int parse_rule_args(int argc, char **argv, int n_ports, struct rule_args *args)
{
	static const struct option opts[] = {
		{ "proto", required_argument, NULL, OPT_PROTO },
		{ "no-hide", no_argument, NULL, OPT_NO_HIDE },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "hide-local", no_argument, NULL, OPT_HIDE_LOCAL },
		{ "reject", no_argument, NULL, OPT_REJECT },
		COMMON_LONG_OPTS,
		{},
	};
	__u16 *ports[] = { &args->public_port, &args->target_port };
	int opt, ret, i;

	args->proto = IPPROTO_TCP;
	while ((opt = getopt_long(argc, argv, ":" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		if (opt == OPT_PROTO) {
			if (parse_proto(optarg, &args->proto))
				return EXIT_USAGE;
		} else if (opt == OPT_NO_HIDE && n_ports == 2) {
			args->no_hide = true;
		} else if (opt == OPT_HIDE_LOCAL && n_ports == 2) {
			args->hide_local = true;
		} else if (opt == OPT_REJECT && n_ports == 2) {
			args->reject = true;
		} else if (opt == OPT_ADDR && n_ports == 2) {
			if (parse_addr(optarg, args->addr))
				return EXIT_USAGE;
			args->has_addr = true;
		} else if (opt == OPT_NO_HIDE || opt == OPT_ADDR || opt == OPT_HIDE_LOCAL ||
			   opt == OPT_REJECT) {
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
	if (args->reject && args->no_hide)
		return usage_error("--reject answers packets to the hidden target; it cannot go "
				   "with --no-hide");
	if (n_ports == 2 && args->public_port == args->target_port)
		return usage_error("public and target port are both %u", args->public_port);
	return -1;
}

/* Root check, lock and pinned maps for a verb that touches the rules. */
static int open_locked(struct pinned_maps *maps)
{
	int err;

	if (require_root())
		return EXIT_FAIL;
	err = pins_open(PINS_WRITE);
	if (err)
		return err == -ENOENT
			       ? fail("not loaded at %s (run 'bpfredir load' first)", pin_dir)
			       : EXIT_FAIL;
	if (open_pinned_maps(maps)) {
		pins_close();
		return EXIT_FAIL;
	}
	return 0;
}

static void close_locked(struct pinned_maps *maps)
{
	close_pinned_maps(maps);
	pins_close();
}

/* The new rule against every rule of the live set (rule_conflict). Reading the public entries,
 * not the derived hidden ones, also finds the targets of no-hide rules. */
static int check_conflicts(const struct pinned_maps *maps, const struct redir_policy_key *new_key,
			   const struct redir_rule *new_rule)
{
	struct redir_policy_key key, *prev = NULL;
	__u16 port = ntohs(new_key->port), target = ntohs(new_rule->target_port);
	const char *proto = proto_name(new_key->proto);
	struct redir_rule rule;

	while (!bpf_map_get_next_key(maps->rules, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || bpf_map_lookup_elem(maps->rules, &key, &rule))
			continue;
		switch (rule_conflict(&key, &rule, new_key, new_rule)) {
		case RULES_FIT:
			break;
		case RULES_PORT_CROSSED:
			if (key.port == new_rule->target_port)
				return fail(
					"target %u/%s is itself the public port of a rule (to %u)",
					target, proto, ntohs(rule.target_port));
			return fail("public port %u/%s is already the target of a rule (from %u)",
				    port, proto, ntohs(key.port));
		case RULES_HIDING_DIFFERS:
			return fail("target %u/%s would be %s by this rule but is %s by the rule "
				    "for %u; rules sharing a target must agree on --no-hide, "
				    "--hide-local and --reject",
				    target, proto, hiding_name(new_rule->flags),
				    hiding_name(rule.flags), ntohs(key.port));
		}
	}
	return 0;
}

int do_add(int argc, char **argv)
{
	struct rule_args args = {};
	struct redir_rule rule = {}, existing;
	struct redir_policy_key key;
	struct pinned_maps maps;
	int ret, err;

	ret = parse_rule_args(argc, argv, 2, &args);
	if (ret >= 0)
		return ret;
	ret = open_locked(&maps);
	if (ret)
		return ret;

	key = public_key(args.public_port, args.proto);
	rule.target_port = htons(args.target_port);
	rule.flags = args.no_hide ? 0 : REDIR_F_HIDE;
	if (args.hide_local)
		rule.flags |= REDIR_F_HIDE_LOCAL;
	if (args.reject)
		rule.flags |= REDIR_F_REJECT;
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
		else if ((err = sync_local_addrs(maps.local_addrs, maps.addr_holders)))
			ret = fail("cannot record local addresses: %s", local_addrs_error(err));
		goto out; /* the same rule again: only the host's addresses may be news */
	}
	ret = check_conflicts(&maps, &key, &rule);
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
			   local_addrs_error(err));
	}
out:
	if (!ret)
		guard_warn(maps.policy);
	close_locked(&maps);
	return ret;
}

int do_del(int argc, char **argv)
{
	struct rule_args args = {};
	struct redir_policy_key key;
	struct pinned_maps maps;
	int ret, err;

	ret = parse_rule_args(argc, argv, 1, &args);
	if (ret >= 0)
		return ret;
	ret = open_locked(&maps);
	if (ret)
		return ret;

	key = public_key(args.public_port, args.proto);
	if (bpf_map_delete_elem(maps.rules, &key)) {
		ret = errno == ENOENT ? fail("no rule for port %u/%s", args.public_port,
					     proto_name(args.proto))
				      : fail("cannot delete rule %u/%s: %s", args.public_port,
					     proto_name(args.proto), strerror(errno));
		goto out;
	}
	err = sync_derived(&maps);
	if (err)
		ret = fail("rule %u/%s deleted, but %s: %s", args.public_port,
			   proto_name(args.proto),
			   err == -EOVERFLOW ? "not all local addresses were recorded"
					     : "updating the hidden ports failed",
			   local_addrs_error(err));
out:
	close_locked(&maps);
	return ret;
}
