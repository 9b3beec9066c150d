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

/* rule_spec_check's findings in the CLI's words and order. Returns -1 to go on. */
static int rule_args_check(const struct rule_spec *args)
{
	unsigned int problems;

	if (!rule_spec_check(args, &problems))
		return -1;
	if (problems & RULE_HIDE_LOCAL_OPEN)
		return usage_error("--hide-local hides the target from local clients too; it "
				   "cannot go with --no-hide");
	if (problems & RULE_REJECT_OPEN)
		return usage_error("--reject answers packets to the hidden target; it cannot go "
				   "with --no-hide");
	if (problems & RULE_SAME_PORTS)
		return usage_error("public and target port are both %u", args->public_port);
	/* The parser took ports, protocol and address only as they may be. */
	return usage_error("invalid rule");
}

/* add (2 ports) and del (1 port): options and positional ports. Returns -1 to go on. */
static int parse_rule_args(int argc, char **argv, int n_ports, struct rule_spec *args)
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
	if (n_ports == 2)
		return rule_args_check(args);
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

/* The new rule against every rule of the live set (ruleset_conflict), in words. */
static int check_conflicts(const struct pinned_maps *maps, const struct rule_spec *r)
{
	const char *proto = proto_name(r->proto);
	struct rule_spec other;
	int clash = ruleset_conflict(maps->rules, r, &other);

	switch (clash) {
	case RULES_FIT:
		return 0;
	case RULES_PORT_CROSSED:
		if (other.public_port == r->target_port)
			return fail("target %u/%s is itself the public port of a rule (to %u)",
				    r->target_port, proto, other.target_port);
		return fail("public port %u/%s is already the target of a rule (from %u)",
			    r->public_port, proto, other.public_port);
	case RULES_HIDING_DIFFERS:
		return fail("target %u/%s would be %s by this rule but is %s by the rule for %u; "
			    "rules sharing a target must agree on --no-hide, --hide-local and "
			    "--reject",
			    r->target_port, proto, rule_hiding_name(r), rule_hiding_name(&other),
			    other.public_port);
	default:
		return fail("cannot read the rule set: %s", strerror(-clash));
	}
}

int do_add(int argc, char **argv)
{
	struct rule_spec args = {}, existing;
	struct pinned_maps maps;
	int ret, err;

	ret = parse_rule_args(argc, argv, 2, &args);
	if (ret >= 0)
		return ret;
	ret = open_locked(&maps);
	if (ret)
		return ret;

	if (!ruleset_get(maps.rules, args.public_port, args.proto, &existing)) {
		if (!rule_spec_equal(&existing, &args))
			ret = fail("port %u/%s already redirects to %u (with other options); "
				   "'bpfredir del %u' first",
				   args.public_port, proto_name(args.proto), existing.target_port,
				   args.public_port);
		else if ((err = sync_local_addrs(maps.local_addrs, maps.addr_holders)))
			ret = fail("cannot record local addresses: %s", local_addrs_error(err));
		goto out; /* the same rule again: only the host's addresses may be news */
	}
	ret = check_conflicts(&maps, &args);
	if (ret)
		goto out;
	err = ruleset_put(maps.rules, &args);
	if (err) {
		ret = fail("cannot add rule %u/%s: %s", args.public_port, proto_name(args.proto),
			   err == -E2BIG ? "rule table full" : strerror(-err));
		goto out;
	}
	err = sync_derived(&maps);
	if (err) {
		/* Leave the rule set as it was: no rule without its hidden port. */
		ruleset_del(maps.rules, args.public_port, args.proto);
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
	struct rule_spec args = {};
	struct pinned_maps maps;
	int ret, err;

	ret = parse_rule_args(argc, argv, 1, &args);
	if (ret >= 0)
		return ret;
	ret = open_locked(&maps);
	if (ret)
		return ret;

	err = ruleset_del(maps.rules, args.public_port, args.proto);
	if (err) {
		ret = err == -ENOENT ? fail("no rule for port %u/%s", args.public_port,
					    proto_name(args.proto))
				     : fail("cannot delete rule %u/%s: %s", args.public_port,
					    proto_name(args.proto), strerror(-err));
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
