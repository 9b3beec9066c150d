// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Which rules can share one rule set: the one check behind both 'add' (against the live set)
 * and 'apply' (among the file's rules), so the two cannot drift apart. */
#include "loader.h"

#define HIDING_FLAGS (REDIR_F_HIDE | REDIR_F_HIDE_LOCAL | REDIR_F_REJECT)

/* A set holds one hidden entry per target, and its flags are what every packet to that
 * target gets: rules that share a target and ask for different hiding would leave one of
 * them silently overruled (sync_rule_derived ORs them), so they are refused instead. */
enum rule_clash rule_conflict(const struct redir_policy_key *a_key, const struct redir_rule *a,
			      const struct redir_policy_key *b_key, const struct redir_rule *b)
{
	if (a_key->proto != b_key->proto)
		return RULES_FIT;
	/* A packet to such a port could not be both translated and hidden. */
	if (a->target_port == b_key->port || a_key->port == b->target_port)
		return RULES_PORT_CROSSED;
	if (a->target_port == b->target_port && (a->flags ^ b->flags) & HIDING_FLAGS)
		return RULES_HIDING_DIFFERS;
	return RULES_FIT;
}

const char *hiding_name(__u32 flags)
{
	static const char *const names[] = {
		[0] = "left open (no-hide)",
		[REDIR_F_HIDE] = "hidden",
		[REDIR_F_HIDE | REDIR_F_HIDE_LOCAL] = "hidden with hide-local",
		[REDIR_F_HIDE | REDIR_F_REJECT] = "hidden with reject",
		[REDIR_F_HIDE | REDIR_F_HIDE_LOCAL | REDIR_F_REJECT] =
			"hidden with hide-local and reject",
	};
	__u32 i = flags & HIDING_FLAGS;

	return i < sizeof(names) / sizeof(names[0]) && names[i] ? names[i] : "?";
}
