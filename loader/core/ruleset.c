// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The rule set: the one place that knows what a set holds and which rules can share one, so
 * 'add' (against the live set), 'apply' (among a file's rules) and the tests cannot drift
 * apart. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "mapsync.h"
#include "port_counters.h"
#include "public_targets.h"
#include "ruleset.h"
#include "scan.h"
#include "steer.h"

#define HIDING_FLAGS (REDIR_F_HIDE | REDIR_F_HIDE_LOCAL | REDIR_F_REJECT)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A rule's address is one this host is sent packets at. An address no packet is sent to
 * makes a rule that never acts, or one that acts where the kernel reads the address as
 * another: connect() to 0.0.0.0 or :: reaches loopback. */
const char *addr_not_unicast(const __u8 addr[BPFREDIR_ADDR_LEN])
{
	static const __u8 unspecified[BPFREDIR_ADDR_LEN];
	const __u8 *v4 = addr + 12;

	if (!memcmp(addr, unspecified, sizeof(unspecified)))
		return "the unspecified address";
	if (addr[0] == 0xff)
		return "a multicast address";
	if (!addr_is_v4(addr))
		return NULL;
	if (!v4[0] && !v4[1] && !v4[2] && !v4[3])
		return "the unspecified address";
	if (v4[0] == 0)
		return "in 0.0.0.0/8 (this network)";
	if (v4[0] >= 224 && v4[0] < 240)
		return "a multicast address";
	if (v4[0] == 255 && v4[1] == 255 && v4[2] == 255 && v4[3] == 255)
		return "the broadcast address";
	if (v4[0] >= 240)
		return "in 240.0.0.0/4 (reserved)";
	return NULL;
}

/* The constraints between a rule's options, held once: each verb words them its own way. */
int rule_spec_check(const struct rule_spec *r, unsigned int *problems)
{
	unsigned int p = 0;

	if (!r->public_port || !r->target_port)
		p |= RULE_BAD_PORT;
	if (r->proto != IPPROTO_TCP && r->proto != IPPROTO_UDP)
		p |= RULE_BAD_PROTO;
	if (r->public_port == r->target_port)
		p |= RULE_SAME_PORTS;
	if (r->no_hide && r->hide_local)
		p |= RULE_HIDE_LOCAL_OPEN;
	if (r->no_hide && r->reject)
		p |= RULE_REJECT_OPEN;
	if (r->has_addr && addr_not_unicast(r->addr))
		p |= RULE_ADDR_NOT_UNICAST;
	if (problems)
		*problems = p;
	return p ? -EINVAL : 0;
}

struct redir_policy_key public_key(__u16 port, __u8 proto)
{
	struct redir_policy_key key = { .port = htons(port),
					.proto = proto,
					.kind = POLICY_PUBLIC };

	return key;
}

void rule_spec_entry(const struct rule_spec *r, struct redir_policy_key *key,
		     struct redir_rule *rule)
{
	*key = public_key(r->public_port, r->proto);
	memset(rule, 0, sizeof(*rule));
	rule->target_port = htons(r->target_port);
	rule->flags = r->no_hide ? 0 : REDIR_F_HIDE;
	if (r->hide_local)
		rule->flags |= REDIR_F_HIDE_LOCAL;
	if (r->reject)
		rule->flags |= REDIR_F_REJECT;
	if (r->has_addr) {
		rule->flags |= REDIR_F_ADDR;
		memcpy(rule->addr, r->addr, sizeof(rule->addr));
	}
}

void rule_spec_from_entry(struct rule_spec *r, const struct redir_policy_key *key,
			  const struct redir_rule *rule)
{
	memset(r, 0, sizeof(*r));
	r->public_port = ntohs(key->port);
	r->target_port = ntohs(rule->target_port);
	r->proto = key->proto;
	r->no_hide = !(rule->flags & REDIR_F_HIDE);
	r->hide_local = rule->flags & REDIR_F_HIDE_LOCAL;
	r->reject = rule->flags & REDIR_F_REJECT;
	r->has_addr = rule->flags & REDIR_F_ADDR;
	if (r->has_addr)
		memcpy(r->addr, rule->addr, sizeof(r->addr));
}

/* Equal as the set stores them (an address counts only with has_addr). */
bool rule_spec_equal(const struct rule_spec *a, const struct rule_spec *b)
{
	struct redir_policy_key ka, kb;
	struct redir_rule ra, rb;

	rule_spec_entry(a, &ka, &ra);
	rule_spec_entry(b, &kb, &rb);
	return !memcmp(&ka, &kb, sizeof(ka)) && !memcmp(&ra, &rb, sizeof(ra));
}

static __u16 hiding_flags(const struct rule_spec *r)
{
	struct redir_policy_key key;
	struct redir_rule rule;

	rule_spec_entry(r, &key, &rule);
	return rule.flags & HIDING_FLAGS;
}

/* A set holds one hidden entry per target, and its flags are what every packet to that
 * target gets: rules that share a target and ask for different hiding would leave one of
 * them silently overruled (ruleset_derive ORs them), so they are refused instead. */
enum rule_clash rule_conflict(const struct rule_spec *a, const struct rule_spec *b)
{
	if (a->proto != b->proto)
		return RULES_FIT;
	/* A packet to such a port could not be both translated and hidden. */
	if (a->target_port == b->public_port || a->public_port == b->target_port)
		return RULES_PORT_CROSSED;
	if (a->target_port == b->target_port && hiding_flags(a) != hiding_flags(b))
		return RULES_HIDING_DIFFERS;
	return RULES_FIT;
}

const char *rule_hiding_name(const struct rule_spec *r)
{
	static const char *const names[] = {
		[0] = "left open (no-hide)",
		[REDIR_F_HIDE] = "hidden",
		[REDIR_F_HIDE | REDIR_F_HIDE_LOCAL] = "hidden with hide-local",
		[REDIR_F_HIDE | REDIR_F_REJECT] = "hidden with reject",
		[REDIR_F_HIDE | REDIR_F_HIDE_LOCAL | REDIR_F_REJECT] =
			"hidden with hide-local and reject",
	};
	__u32 i = hiding_flags(r);

	return i < ARRAY_SIZE(names) && names[i] ? names[i] : "?";
}

/* Reading the public entries, not the derived hidden ones, also finds the targets of no-hide
 * rules. */
int ruleset_conflict(int set_fd, const struct rule_spec *r, struct rule_spec *other)
{
	struct redir_policy_key key, *prev = NULL;
	struct redir_rule rule;
	enum rule_clash clash;

	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || bpf_map_lookup_elem(set_fd, &key, &rule))
			continue;
		rule_spec_from_entry(other, &key, &rule);
		if (other->public_port == r->public_port && other->proto == r->proto)
			continue;
		clash = rule_conflict(other, r);
		if (clash != RULES_FIT)
			return clash;
	}
	return errno == ENOENT ? RULES_FIT : -errno;
}

int ruleset_create(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "policy_set", sizeof(struct redir_policy_key),
				sizeof(struct redir_rule), BPFREDIR_POLICY_ENTRIES, &opts);

	return fd < 0 ? -errno : fd;
}

int ruleset_get(int set_fd, __u16 public_port, __u8 proto, struct rule_spec *r)
{
	struct redir_policy_key key = public_key(public_port, proto);
	struct redir_rule rule;

	if (bpf_map_lookup_elem(set_fd, &key, &rule))
		return -errno;
	rule_spec_from_entry(r, &key, &rule);
	return 0;
}

int ruleset_put(int set_fd, const struct rule_spec *r)
{
	struct redir_policy_key key;
	struct redir_rule rule;

	rule_spec_entry(r, &key, &rule);
	return bpf_map_update_elem(set_fd, &key, &rule, BPF_ANY) ? -errno : 0;
}

int ruleset_del(int set_fd, __u16 public_port, __u8 proto)
{
	struct redir_policy_key key = public_key(public_port, proto);

	return bpf_map_delete_elem(set_fd, &key) ? -errno : 0;
}

/* An attachment's entry in a rule set: while the live set has it, the interface or cgroup
 * acts (see POLICY_IFACE in bpfredir.h). */
int ruleset_enable(int set_fd, __u8 kind, __u64 id, bool on)
{
	struct redir_policy_key key = { .kind = kind, .id = id };
	struct redir_rule unused = {};

	if (on)
		return bpf_map_update_elem(set_fd, &key, &unused, BPF_ANY) ? -errno : 0;
	return bpf_map_delete_elem(set_fd, &key) && errno != ENOENT ? -errno : 0;
}

bool ruleset_enabled(int set_fd, __u8 kind, __u64 id)
{
	struct redir_policy_key key = { .kind = kind, .id = id };
	struct redir_rule unused;

	return !bpf_map_lookup_elem(set_fd, &key, &unused);
}

int ruleset_count(int set_fd, __u8 kind)
{
	struct redir_policy_key key, *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		n += key.kind == kind;
	}
	return n;
}

/* One update of one slot: readers see the old set or the new one, never a mix. */
int ruleset_install(int policy_fd, int set_fd)
{
	__u32 slot = 0;

	if (set_fd < 0)
		return bpf_map_delete_elem(policy_fd, &slot) && errno != ENOENT ? -errno : 0;
	return bpf_map_update_elem(policy_fd, &slot, &set_fd, BPF_ANY) ? -errno : 0;
}

static int port_key_index(const struct redir_port_key *keys, size_t n, __be16 port, __u8 proto)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (keys[i].port == port && keys[i].proto == proto)
			return i;
	return -1;
}

static bool is_hidden_entry(const void *key)
{
	return ((const struct redir_policy_key *)key)->kind == POLICY_HIDDEN;
}

/* The target first: a rule acts once its public port is marked, and its replies leave from
 * the target. */
static int mark_rule_ports(int interest_fd, const struct redir_policy_key *key,
			   const struct redir_rule *rule)
{
	bool tcp = key->proto == IPPROTO_TCP;
	__u8 bit = tcp ? PORT_INTEREST_TCP : PORT_INTEREST_UDP, bits;
	__u8 want[2] = { bit, bit | (tcp ? PORT_INTEREST_PUBLIC_TCP : PORT_INTEREST_PUBLIC_UDP) };

	/* Steered at socket lookup, the public port's packets are never TC's or XDP's (they
	 * pass it at once), and the target's listeners are registered as they start. */
	if (rule->flags & REDIR_F_SOCKET) {
		want[0] |= PORT_INTEREST_LISTENER_TCP;
		want[1] = PORT_INTEREST_PUBLIC_TCP;
	}
	__u32 ports[2] = { ntohs(rule->target_port), ntohs(key->port) };
	size_t i;

	for (i = 0; i < 2; i++) {
		if (bpf_map_lookup_elem(interest_fd, &ports[i], &bits))
			return -errno;
		if ((bits & want[i]) == want[i])
			continue;
		bits |= want[i];
		if (bpf_map_update_elem(interest_fd, &ports[i], &bits, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* What ruleset_derive() gathers from a set's rules. */
struct derived {
	struct redir_policy_key hidden[BPFREDIR_MAX_RULES];
	struct redir_rule hiding[BPFREDIR_MAX_RULES];
	struct redir_port_key counted[2 * BPFREDIR_MAX_RULES];
	size_t n_hidden, n_counted;
};

static void count_port(struct derived *d, __be16 port, __u8 proto)
{
	if (port_key_index(d->counted, d->n_counted, port, proto) < 0)
		d->counted[d->n_counted++] =
			(struct redir_port_key){ .port = port, .proto = proto };
}

/* Rule (key, rule)'s share of d: its ports counted and, when it hides, its target hidden with
 * the hiding options of every rule to it. */
static int derive_rule(struct derived *d, const struct redir_policy_key *key,
		       const struct redir_rule *rule)
{
	size_t i;

	if (d->n_counted + 2 > 2 * BPFREDIR_MAX_RULES)
		return -E2BIG;
	count_port(d, key->port, key->proto);
	if (!(rule->flags & REDIR_F_HIDE))
		return 0;
	count_port(d, rule->target_port, key->proto);
	for (i = 0; i < d->n_hidden; i++)
		if (d->hidden[i].port == rule->target_port && d->hidden[i].proto == key->proto)
			break;
	if (i == d->n_hidden) {
		d->hidden[i] = (struct redir_policy_key){ .port = rule->target_port,
							  .proto = key->proto,
							  .kind = POLICY_HIDDEN };
		memset(&d->hiding[i], 0, sizeof(d->hiding[i]));
		d->n_hidden++;
	}
	d->hiding[i].flags |= rule->flags & HIDING_FLAGS;
	return 0;
}

/* An instance that steers TCP at socket lookup: every TCP rule of the set marked so, the
 * listeners of their targets that already run registered, and each public port's target
 * noted for the steering program (steer_fast), before any rule acts. A target with no listener yet is no
 * error: its service registers when it starts (or the next command finds it), and until then
 * the kernel refuses its connections as a closed port. */
static int steer_rules(int set_fd, const struct steer_maps *maps)
{
	static __be16 targets[BPFREDIR_MAX_RULES], fast[BPFREDIR_PORTS];
	struct redir_policy_key key, *prev = NULL;
	size_t n = 0, i;
	struct redir_rule rule;
	int registered;

	memset(fast, 0, sizeof(fast));
	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || key.proto != IPPROTO_TCP ||
		    bpf_map_lookup_elem(set_fd, &key, &rule))
			continue;
		if (!(rule.flags & REDIR_F_SOCKET)) {
			rule.flags |= REDIR_F_SOCKET;
			if (bpf_map_update_elem(set_fd, &key, &rule, BPF_EXIST))
				return -errno;
		}
		if (!(rule.flags & REDIR_F_ADDR))
			fast[ntohs(key.port)] = rule.target_port;
		for (i = 0; i < n && targets[i] != rule.target_port; i++)
			;
		if (i == n && n < BPFREDIR_MAX_RULES)
			targets[n++] = rule.target_port;
	}
	registered = steer_register(maps, targets, n);
	return registered < 0 ? registered : steer_fast_set(maps, fast);
}

/* iface_slots exactly as the set's interfaces fill them. A slot two interfaces share holds
 * the first; the other is looked up in the set. */
static int iface_slots_set(int slots_fd, int set_fd)
{
	__u32 want[BPFREDIR_IFACE_SLOTS] = {}, slot, have;
	struct redir_policy_key key, *prev = NULL;

	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		slot = key.id % BPFREDIR_IFACE_SLOTS;
		if (key.kind == POLICY_IFACE && !want[slot])
			want[slot] = key.id;
	}
	for (slot = 0; slot < BPFREDIR_IFACE_SLOTS; slot++) {
		if (bpf_map_lookup_elem(slots_fd, &slot, &have))
			return -errno;
		if (have != want[slot] &&
		    bpf_map_update_elem(slots_fd, &slot, &want[slot], BPF_ANY))
			return -errno;
	}
	return 0;
}

/* port_hidden from the set's hidden entries: exactly, or (aside) added to what it holds. */
static int port_hidden_set(int fd, const struct derived *d, bool aside)
{
	static __u8 bits[BPFREDIR_PORTS];
	static __u32 ports[BPFREDIR_PORTS];
	__u32 count = BPFREDIR_PORTS, i, port;
	bool tcp;

	for (i = 0; i < BPFREDIR_PORTS; i++)
		ports[i] = i;
	memset(bits, 0, sizeof(bits));
	if (aside && bpf_map_lookup_batch(fd, NULL, &i, ports, bits, &count, NULL) &&
	    (errno != ENOENT || count != BPFREDIR_PORTS))
		return -errno;
	for (i = 0; i < d->n_hidden; i++) {
		port = ntohs(d->hidden[i].port);
		tcp = d->hidden[i].proto == IPPROTO_TCP;
		bits[port] |= tcp ? PORT_HIDDEN_TCP : PORT_HIDDEN_UDP;
		if (d->hiding[i].flags & REDIR_F_REJECT)
			bits[port] |= tcp ? PORT_REJECT_TCP : PORT_REJECT_UDP;
	}
	count = BPFREDIR_PORTS;
	return bpf_map_update_batch(fd, ports, bits, &count, NULL) ? -errno : 0;
}

/* In a rule set, the hidden entries: each hiding rule's target, hidden from local clients
 * too when any of its rules asks. In the port counters: a slot for every public and every
 * hidden port. Both are recomputed from the set's rules rather than counted up and down, so they
 * cannot drift whatever failed before. In port_interest: both ports of every rule, marked
 * before the rule can act (a rule acts only on marked ports), never unmarked. In
 * public_targets: each rule's target, before the rule can act (public_targets_note). */
int ruleset_derive(int set_fd, const struct derive_maps *maps)
{
	const struct public_targets_maps targets = { maps->public_targets, maps->flows,
						     maps->flows_gen };
	static struct derived d;
	struct redir_policy_key key, *prev = NULL;
	struct redir_rule rule;
	int err;

	d.n_hidden = d.n_counted = 0;
	if (maps->steer_socket) {
		err = steer_rules(set_fd, &maps->steer);
		if (err)
			return err;
	}
	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || bpf_map_lookup_elem(set_fd, &key, &rule))
			continue;
		err = mark_rule_ports(maps->port_interest, &key, &rule);
		if (!err)
			err = public_targets_note(&targets, key.port, key.proto, rule.target_port);
		if (!err)
			err = derive_rule(&d, &key, &rule);
		if (err)
			return err;
	}
	err = map_set_exactly(set_fd, d.hidden, sizeof(d.hidden[0]), d.hiding, sizeof(d.hiding[0]),
			      d.n_hidden, false, is_hidden_entry);
	if (!err)
		err = port_counters_set(&maps->counters, d.counted, d.n_counted);
	if (!err)
		err = port_hidden_set(maps->port_hidden, &d, maps->set_aside);
	return err ? err : iface_slots_set(maps->iface_slots, set_fd);
}
