// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Table-driven test of the TC and XDP programs through BPF_PROG_TEST_RUN. Each case makes
 * its rule set with the core's ruleset_* (fixture_rules) and installs it in the policy map's
 * slot, runs a few steps (packets through ingress or egress, each checked byte for byte;
 * deleting the rules; swapping in a second set; emptying the slot), then runs one frame
 * through ingress or egress and checks the verdict, the output frame byte for byte against
 * one built independently, the TCP/UDP checksum by full recomputation, the stats and
 * per-port counter deltas, and the exact contents of the flows and pending maps.
 *
 * Each test runs in network namespaces of its own (netns.h): the first table in one that
 * does not forward, where this host's addresses are those the local-address map holds (the
 * server's, as the loader records them); the scope table in one that forwards the
 * stranger's prefixes (and the tunneled host's, through encapsulating routes), where only
 * the server's addresses are local; the default-route table in one that forwards everything
 * else through a default route (datapath_cases.h). test_flood.c floods a small pending map.
 *
 * Every packet that goes on must get TC_PASS (TC_ACT_UNSPEC, TCX_NEXT), so programs after
 * ours still see it: a case's retval 0 stands for that.
 *
 * The tables run twice: with TC ingress, then with the XDP program in its place (as in
 * `load --mode xdp`, where egress stays TC). XDP verdicts are read as TC's (XDP_PASS as
 * TC_PASS, XDP_DROP as TC_ACT_SHOT), so the same cases check the same bytes, checksums,
 * counters and tables; cases without any ingress packet, and those only TC can tell apart
 * (frames for another host's MAC address), run with TC only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "core/ruleset.h"
#include "pktbuild.h"
#include "netns.h"
#include "harness.h"
#include "fixture.h"
#include "datapath.h"
#include "datapath_cases.h"

#define MAX_PORT_KEYS 12

/* The counted ports a case sets up, and their summed counters. */
struct port_counts {
	int n;
	struct redir_port_key key[MAX_PORT_KEYS];
	__u64 count[MAX_PORT_KEYS][PORT_STAT__MAX];
};

/* Probed once: the kernel takes BPF_F_TEST_SKB_CHECKSUM_COMPLETE (6.11 and later). */
static int csum_complete_ok = -1;
/* The encapsulating routes the forwarding namespace has (netns.h). */
static struct netns_scope scope;

/* Zero the entries of every port the tables' rules use in the array MAP, which the loader
 * never does (an array's entries cannot go); WHAT says it for a failure. */
static bool ports_zero(struct bpf_map *map, const char *what)
{
	static const __u32 ports[] = { PUB, PUB2, TGT, TGT2, TGT3, UPUB, UTGT };
	static const __u8 zero[64];
	int fd = bpf_map__fd(map);
	size_t i;

	if (!ASSERT_TRUE(bpf_map__value_size(map) <= sizeof(zero), "a value ports_zero can write"))
		return false;
	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		if (!ASSERT_OK(bpf_map_update_elem(fd, &ports[i], zero, BPF_ANY), what))
			return false;
	return true;
}

/* Clear the ports' marks in port_interest. */
static bool ports_unmark(struct fixture *f)
{
	return ports_zero(f->tc->maps.port_interest, "unmark a port");
}

/* Forget the targets the ports have had (public_targets): each case starts from its own
 * rules' history. */
static bool targets_forget(struct fixture *f)
{
	return ports_zero(f->tc->maps.public_targets, "forget a port's targets");
}

/* --- port counters ----------------------------------------------------------------------- */

static void port_key_add(struct port_counts *pc, __u16 port, __u8 proto)
{
	struct redir_port_key k = { .port = htons(port), .proto = proto };
	int i;

	if (!port || !proto)
		return;
	for (i = 0; i < pc->n; i++)
		if (!memcmp(&pc->key[i], &k, sizeof(k)))
			return;
	if (pc->n < MAX_PORT_KEYS)
		pc->key[pc->n++] = k;
}

/* In place of the slots ruleset_derive gave: a zeroed slot for every public and hidden port
 * of the case's rules (both sets), as the loader gives them, and also for the packet's own
 * ports (before and after), so a count in the wrong place shows. */
static bool port_stats_create(struct fixture *f, const struct tcase *c, struct port_counts *pc)
{
	const struct rule_spec *r;

	memset(pc, 0, sizeof(*pc));
	if (!fixture_port_counters_set(f, NULL, 0))
		return false;
	if (c->no_port_stats)
		return true;
	for (r = c->rules; r < c->rules + MAX_RULES && r->public_port; r++) {
		port_key_add(pc, r->public_port, r->proto);
		port_key_add(pc, r->target_port, r->proto);
	}
	for (r = c->swap; r < c->swap + MAX_RULES && r->public_port; r++) {
		port_key_add(pc, r->public_port, r->proto);
		port_key_add(pc, r->target_port, r->proto);
	}
	port_key_add(pc, c->pkt.sport, c->pkt.proto);
	port_key_add(pc, c->pkt.dport, c->pkt.proto);
	port_key_add(pc, c->exp_sport, c->pkt.proto);
	port_key_add(pc, c->exp_dport, c->pkt.proto);
	return fixture_port_counters_set(f, pc->key, pc->n);
}

static bool port_stats_read(struct fixture *f, struct port_counts *pc)
{
	int i;

	for (i = 0; i < pc->n; i++)
		if (!fixture_port_stat(f, ntohs(pc->key[i].port), pc->key[i].proto, pc->count[i]))
			return false;
	return true;
}

/* Where the datapath must count the case's packet: translations and replies under the
 * public port (the one the client used), drops under the hidden target port. */
static bool port_stat_expected(const struct tcase *c, struct redir_port_key *k, int *idx)
{
	memset(k, 0, sizeof(*k));
	k->proto = c->pkt.proto;
	switch (c->stat) {
	case STAT_REWRITTEN:
		k->port = htons(c->pkt.dport);
		*idx = PORT_STAT_REWRITTEN;
		return true;
	case STAT_REVERSE_REWRITTEN:
		k->port = htons(c->exp_sport);
		*idx = PORT_STAT_REVERSE_REWRITTEN;
		return true;
	case STAT_HIDDEN_DROPPED:
	case STAT_REJECTED: /* counted as the port's drops */
		k->port = htons(c->pkt.dport);
		*idx = PORT_STAT_HIDDEN_DROPPED;
		return true;
	default:
		return false;
	}
}

static bool port_stats_check(struct fixture *f, const struct tcase *c,
			     const struct port_counts *before, const struct port_counts *after)
{
	struct redir_port_key want_key;
	int i, j, want_idx = -1;
	bool want = port_stat_expected(c, &want_key, &want_idx);
	char what[80];

	for (i = 0; i < after->n; i++) {
		bool here = want && !memcmp(&after->key[i], &want_key, sizeof(want_key));

		for (j = 0; j < PORT_STAT__MAX; j++) {
			snprintf(what, sizeof(what), "port counter %u/%u %s delta",
				 ntohs(after->key[i].port), after->key[i].proto,
				 redir_port_stat_names[j]);
			if (!ASSERT_EQ(after->count[i][j] - before->count[i][j],
				       here && j == want_idx ? 1 : 0, what))
				return false;
		}
	}
	return ASSERT_EQ(fixture_port_counters_assigned(f), after->n,
			 "counted ports (those the test gave a slot)");
}

/* --- a case ------------------------------------------------------------------------------- */

/* Output checksum, recomputed in full, unless there is no whole L4 segment to sum. */
static bool csum_check(const struct tcase *c, const struct frame *exp, const __u8 *out)
{
	const struct pkt_spec *s = &c->pkt;

	if (!exp->l4_off || s->l4_trunc || (s->frag_off & 0x3fff) || s->udp_no_csum)
		return true;
	return ASSERT_EQ(pkt_l4_sum(out, exp), 0xffff, "output L4 checksum (folded sum)");
}

static bool step_run(struct fixture *f, enum hook ingress, const struct tcase *c,
		     const struct step *st)
{
	switch (st->op) {
	case STEP_IN:
	case STEP_OUT:
		return packet_check(f, ingress, st->op == STEP_OUT, st->pkt, st->port, st->retval);
	case STEP_DEL_RULES:
		/* Every entry of the live set, as del takes them out one by one, deriving. */
		if (!ASSERT_TRUE(f->live_set >= 0, "a live set"))
			return false;
		fixture_clear_fd(f->live_set);
		return fixture_rederive(f);
	case STEP_SWAP:
		return fixture_rules(f, c->swap, rules_count(c->swap));
	case STEP_IFACE_OFF:
		/* As a set that no longer names it, once live, leaves it. */
		return ASSERT_OK(ruleset_enable(f->live_set, POLICY_IFACE, LO_IFINDEX, false),
				 "take lo out of the live set") &&
		       fixture_rederive(f);
	case STEP_EVICT:
		fixture_conns_clear(f);
		return true;
	case STEP_UNMARK:
		return ports_unmark(f);
	case STEP_SWAP2:
		return fixture_rules(f, c->swap2, rules_count(c->swap2));
	case STEP_EMPTY_SLOT:
		return fixture_rules_none(f);
	default:
		return test__fail("bad step op %d", st->op);
	}
}

static bool steps_run(struct fixture *f, enum hook ingress, const struct tcase *c)
{
	int i;

	for (i = 0; i < MAX_STEPS && c->pre[i].op != STEP_END; i++)
		if (!step_run(f, ingress, c, &c->pre[i]))
			return test__fail("at step %d", i + 1);
	return true;
}

static void case_run(struct fixture *f, enum hook ingress, const struct tcase *c)
{
	__u64 before[STAT__MAX], after[STAT__MAX];
	struct port_counts ports_before, ports_after;
	struct pkt_spec exp_spec = c->pkt;
	struct frame in, exp;
	__u8 out[PKT_MAX];
	__u32 out_len = sizeof(out), ret;
	int i, err;

	fixture_conns_clear(f);
	if (!targets_forget(f) || !fixture_rules(f, c->rules, rules_count(c->rules)) ||
	    !steps_run(f, ingress, c) || !port_stats_create(f, c, &ports_before))
		return;

	pkt_build(&in, &c->pkt);
	exp_spec.sport = c->exp_sport ?: c->pkt.sport;
	exp_spec.dport = c->to_port_zero ? 0 : c->exp_dport ?: c->pkt.dport;
	pkt_build(&exp, &exp_spec);

	if (!fixture_stats(f, before) || !port_stats_read(f, &ports_before))
		return;
	ports_after = ports_before;
	f->received = c->received;
	err = fixture_run(f, c->egress ? HOOK_TC_EG : ingress, in.buf, in.len, out, &out_len, &ret);
	f->received = false;
	if (!ASSERT_OK(err, "BPF_PROG_TEST_RUN") || !fixture_stats(f, after) ||
	    !port_stats_read(f, &ports_after))
		return;

	if (!ASSERT_EQ(ret, want_retval(c->retval), "retval") ||
	    !frames_compare(&exp, out, out_len) || !csum_check(c, &exp, out))
		return;
	for (i = 0; i < STAT__MAX; i++) {
		char what[64];

		snprintf(what, sizeof(what), "stat %s delta", redir_stat_names[i]);
		if (!ASSERT_EQ(after[i] - before[i], i == c->stat ? 1 : 0, what))
			return;
	}
	if (port_stats_check(f, c, &ports_before, &ports_after))
		tables_check(f, c);
}

/* Does the case send any packet through ingress? */
static bool case_has_ingress(const struct tcase *c)
{
	const struct step *st;

	for (st = c->pre; st < c->pre + MAX_STEPS && st->op != STEP_END; st++)
		if (st->op == STEP_IN)
			return true;
	return !c->egress;
}

/* What this kernel lacks for the case, or NULL: packets to the tunneled host need their
 * encapsulating route (netns.h), and the checksum-complete pass its BPF_PROG_TEST_RUN flag. */
static const char *case_missing(struct fixture *f, const struct tcase *c)
{
	if (!csum_complete_ok && (f->tc_run_flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE))
		return SKB_CHECKSUM_COMPLETE_FEATURE;
	if (c->pkt.dst == HOST_TUNNELED || c->pkt.src == HOST_TUNNELED)
		return netns_encap_missing(&scope, c->pkt.l3 == ETH_P_IPV6 ? AF_INET6 : AF_INET);
	return NULL;
}

/* The table through INGRESS (TC's, or XDP in its place), each case a subtest. */
static void table_run(struct fixture *f, enum hook ingress, const struct tcase *table,
		      size_t n_cases)
{
	const char *prefix =
		f->tc_run_flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE ? "checksum complete: " : "";
	const char *hook = ingress == HOOK_XDP ? "xdp: " : "";
	const char *missing;
	size_t i;

	for (i = 0; i < n_cases; i++) {
		if (ingress == HOOK_XDP && !case_has_ingress(&table[i]))
			continue;
		if (!test__start_subtest("%s%s%s", prefix, hook, table[i].name))
			continue;
		missing = case_missing(f, &table[i]);
		if (missing)
			test__skip(missing);
		else
			case_run(f, ingress, &table[i]);
	}
}

/* Both ways: TC ingress, then XDP in its place (as in `load --mode xdp`, where egress
 * stays TC). */
static void table_run_both(struct fixture *f, const struct tcase *table, size_t n_cases)
{
	table_run(f, HOOK_TC_IN, table, n_cases);
	table_run(f, HOOK_XDP, table, n_cases);
}

/* The TC skeleton and XDP on its maps in a fresh namespace, the server's addresses and its
 * subnet's broadcast address recorded as this host's. */
static struct fixture *datapath_open(void)
{
	struct fixture *f = fixture_open(FIX_XDP, 0);

	if (f && !fixture_local_addrs(f, HOST_SERVER, true)) {
		fixture_close(f);
		return NULL;
	}
	return f;
}

#define N_CASES(t) (sizeof(t) / sizeof((t)[0]))

void test_slot_empty(void)
{
	struct fixture *f = datapath_open();
	__u32 slot = 0, id;
	int err;

	if (f && test__start_subtest("policy slot empty after load")) {
		err = bpf_map_lookup_elem(bpf_map__fd(f->tc->maps.policy), &slot, &id) ? errno : 0;
		ASSERT_EQ(err, ENOENT, "lookup of the policy slot (errno)");
	}
	fixture_close(f);
}

/* The XDP program runs on the TC skeleton's maps, every one of them, as the loader shares
 * them by pin: what the tables check through one hook is what the other sees. */
void test_xdp_shares_tc_maps(void)
{
	struct fixture *f = datapath_open();
	struct bpf_map_info info;
	struct bpf_map *map, *tc_map;
	__u32 len, xdp_id;
	int shared = 0;

	if (!f || !test__start_subtest("xdp: every map is the TC skeleton's"))
		goto out;
	bpf_object__for_each_map(map, f->xdp->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		tc_map = bpf_object__find_map_by_name(f->tc->obj, bpf_map__name(map));
		if (!ASSERT_OK_PTR(tc_map, bpf_map__name(map)))
			break;
		len = sizeof(info);
		memset(&info, 0, len);
		if (!ASSERT_OK(bpf_map_get_info_by_fd(bpf_map__fd(map), &info, &len),
			       bpf_map__name(map)))
			break;
		xdp_id = info.id;
		len = sizeof(info);
		memset(&info, 0, len);
		if (!ASSERT_OK(bpf_map_get_info_by_fd(bpf_map__fd(tc_map), &info, &len),
			       bpf_map__name(tc_map)) ||
		    !ASSERT_EQ(xdp_id, info.id, bpf_map__name(map)))
			break;
		shared++;
	}
	ASSERT_TRUE(shared > 0, "the XDP program has maps");
out:
	fixture_close(f);
}

void test_cases(void)
{
	struct fixture *f = datapath_open();

	if (f)
		table_run_both(f, cases, N_CASES(cases));
	fixture_close(f);
}

/* With the skb CHECKSUM_COMPLETE, as from a NIC that sums what it receives: the run fails
 * (EBADMSG) when the program leaves skb->csum stale. XDP has no skb, so no checksum state:
 * this pass is TC's only. */
void test_checksum_complete(void)
{
	struct fixture *f = datapath_open();

	if (!f)
		return;
	csum_complete_ok = fixture_probe_csum_complete();
	if (csum_complete_ok >= 0) {
		f->tc_run_flags = BPF_F_TEST_SKB_CHECKSUM_COMPLETE;
		table_run(f, HOOK_TC_IN, cases, N_CASES(cases));
	}
	fixture_close(f);
}

void test_scope(void)
{
	struct fixture *f = datapath_open();
	char why[256];

	if (!f)
		return;
	if (netns_setup_scope(&scope, why, sizeof(why)))
		test__fail("forwarding network namespace: %s", why);
	else
		table_run_both(f, scope_cases, N_CASES(scope_cases));
	netns_teardown_scope();
	fixture_close(f);
}

void test_default_route(void)
{
	struct fixture *f = datapath_open();
	char why[256];

	if (!f)
		return;
	if (netns_setup_default_route(why, sizeof(why)))
		test__fail("namespace with a default route: %s", why);
	else
		table_run_both(f, default_route_cases, N_CASES(default_route_cases));
	netns_teardown_scope();
	fixture_close(f);
}
