// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* add, del and list: rule changes are map updates on the pinned maps, so they take effect
 * at the next packet or connect(), with no program reloaded and no loader left running. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "cli.h"

/* rule_spec_check's findings in the CLI's words and order. Returns -1 to go on. */
static int rule_args_check(const void *cfg)
{
	const struct rule_spec *args = cfg;
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

static const struct opt add_opts[] = {
	OPT_POS(struct rule_spec, public_port, OPT_T_PORT, "PUBLIC_PORT"),
	OPT_POS(struct rule_spec, target_port, OPT_T_PORT, "TARGET_PORT"),
	OPT_VAL(struct rule_spec, proto, OPT_T_PROTO, "proto", "tcp|udp"),
	OPT_FLAG(struct rule_spec, no_hide, "no-hide"),
	OPT_FLAG(struct rule_spec, hide_local, "hide-local"),
	OPT_FLAG(struct rule_spec, reject, "reject"),
	OPT_VAL_SEEN(struct rule_spec, addr, has_addr, OPT_T_ADDR, "addr", "IP"),
	OPT_END,
};

static const struct opt del_opts[] = {
	OPT_POS(struct rule_spec, public_port, OPT_T_PORT, "PUBLIC_PORT"),
	OPT_VAL(struct rule_spec, proto, OPT_T_PROTO, "proto", "tcp|udp"),
	OPT_END,
};

static const struct rule_spec rule_defaults = { .proto = IPPROTO_TCP };

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

static int do_add(struct instance *in, const void *cfg)
{
	const struct rule_spec args = *(const struct rule_spec *)cfg;
	struct pinned_maps maps = in->maps;
	struct rule_spec existing;
	int ret = 0, err;

	if (!ruleset_get(maps.rules, args.public_port, args.proto, &existing)) {
		if (!rule_spec_equal(&existing, &args))
			ret = fail("port %u/%s already redirects to %u (with other options); "
				   "'bpfredir del %u' first",
				   args.public_port, proto_name(args.proto), existing.target_port,
				   args.public_port);
		else if ((err = sync_local_addrs(maps.local_addrs, maps.addr_holders,
						 maps.addrs_gen)))
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
	return ret;
}

static int do_del(struct instance *in, const void *cfg)
{
	const struct rule_spec args = *(const struct rule_spec *)cfg;
	int ret = 0, err;

	err = ruleset_del(in->maps.rules, args.public_port, args.proto);
	if (err) {
		ret = err == -ENOENT ? fail("no rule for port %u/%s", args.public_port,
					    proto_name(args.proto))
				     : fail("cannot delete rule %u/%s: %s", args.public_port,
					    proto_name(args.proto), strerror(-err));
		return ret;
	}
	err = sync_derived(&in->maps);
	if (err)
		ret = fail("rule %u/%s deleted, but %s: %s", args.public_port,
			   proto_name(args.proto),
			   err == -EOVERFLOW ? "not all local addresses were recorded"
					     : "updating the hidden ports failed",
			   local_addrs_error(err));
	return ret;
}

#define RULE_VERB (NEED_ROOT | NEED_LOCK | NEED_MAPS)

const struct cmd cmd_add = {
	.name = "add",
	.func = do_add,
	.opts = add_opts,
	.sibling_opts = del_opts,
	.defaults = &rule_defaults,
	.cfg_size = sizeof(struct rule_spec),
	.needs = RULE_VERB,
	.check = rule_args_check,
	.not_loaded_hint = " (run 'bpfredir load' first)",
	.doc = "Make the service on TARGET_PORT reachable on PUBLIC_PORT and, unless --no-hide,\n"
	       "drop external packets sent straight to TARGET_PORT; --reject answers them instead\n"
	       "as a closed port would (TCP RST, ICMP port unreachable); "
	       "--hide-local also refuses\n"
	       "local clients' connections to it. The rule applies to packets for this host's own\n"
	       "addresses, or with --addr only to packets for IP.\n",
};

const struct cmd cmd_del = {
	.name = "del",
	.func = do_del,
	.opts = del_opts,
	.sibling_opts = add_opts,
	.defaults = &rule_defaults,
	.cfg_size = sizeof(struct rule_spec),
	.needs = RULE_VERB,
	.not_loaded_hint = " (run 'bpfredir load' first)",
	.doc = "Remove the rule for PUBLIC_PORT. Established connections keep working.\n",
};
