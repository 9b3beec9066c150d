// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The per-port counter slots (loader/core/port_counters.c) on the objects' own maps: a port
 * that stays counted keeps its counts through any change of the others, a port that comes
 * back starts from zero even in a slot that held another port's counts, protocols never
 * share, and an older build's port_stats counts are carried over. The datapath's counting
 * into the slots is test_datapath's (every case checks it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "harness.h"
#include "fixture.h"

#define A 8445
#define B 9445
#define C 10445

static struct redir_port_key port(__u16 p, __u8 proto)
{
	return (struct redir_port_key){ .port = htons(p), .proto = proto };
}

/* What the datapath does for N packets: add N to counter IDX of p's slot, on CPU 0. */
static bool count(struct fixture *f, __u16 p, __u8 proto, int idx, __u64 n)
{
	struct redir_port_stats percpu[f->ncpus];
	struct redir_port_slots slots;
	__u32 key = p, slot;

	if (!ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(f->tc->maps.port_slots), &key, &slots),
		       "read the port's slots"))
		return false;
	slot = slots.slot[port_slot_of(proto)];
	if (!ASSERT_NEQ(slot, 0, "the port has a slot") ||
	    !ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(f->tc->maps.port_counters), &slot, percpu),
		       "read the slot"))
		return false;
	percpu[0].count[idx] += n;
	return ASSERT_OK(
		bpf_map_update_elem(bpf_map__fd(f->tc->maps.port_counters), &slot, percpu, BPF_ANY),
		"count in the slot");
}

static bool expect(struct fixture *f, __u16 p, __u8 proto, __u64 rewritten, __u64 dropped)
{
	__u64 sum[PORT_STAT__MAX];

	return fixture_port_stat(f, p, proto, sum) &&
	       ASSERT_EQ(sum[PORT_STAT_REWRITTEN], rewritten, "translations counted") &&
	       ASSERT_EQ(sum[PORT_STAT_HIDDEN_DROPPED], dropped, "drops counted");
}

static bool uncounted(struct fixture *f, __u16 p, __u8 proto)
{
	struct port_counter_maps maps = fixture_port_counters(f);
	__u64 sum[PORT_STAT__MAX];

	return ASSERT_EQ(port_counters_read(&maps, htons(p), proto, sum), -ENOENT,
			 "the port has no slot");
}

static void slots_kept_and_reused(struct fixture *f)
{
	struct redir_port_key three[] = { port(A, IPPROTO_TCP), port(B, IPPROTO_TCP),
					  port(A, IPPROTO_UDP) };
	struct redir_port_key a_c[] = { port(A, IPPROTO_TCP), port(C, IPPROTO_TCP) };
	struct redir_port_key a_b[] = { port(A, IPPROTO_TCP), port(B, IPPROTO_TCP) };

	if (!fixture_port_counters_set(f, three, 3) ||
	    !ASSERT_EQ(fixture_port_counters_assigned(f), 3, "three ports counted") ||
	    !expect(f, A, IPPROTO_TCP, 0, 0) || !count(f, A, IPPROTO_TCP, PORT_STAT_REWRITTEN, 5) ||
	    !count(f, B, IPPROTO_TCP, PORT_STAT_HIDDEN_DROPPED, 7) ||
	    !count(f, A, IPPROTO_UDP, PORT_STAT_REWRITTEN, 11))
		return;
	if (!ASSERT_TRUE(expect(f, A, IPPROTO_UDP, 11, 0), "udp and tcp of a port do not share"))
		return;
	/* B goes, C comes: A keeps its counts, C starts from zero. */
	if (!fixture_port_counters_set(f, a_c, 2) ||
	    !ASSERT_EQ(fixture_port_counters_assigned(f), 2, "two ports counted") ||
	    !expect(f, A, IPPROTO_TCP, 5, 0) || !uncounted(f, B, IPPROTO_TCP) ||
	    !uncounted(f, A, IPPROTO_UDP) || !expect(f, C, IPPROTO_TCP, 0, 0) ||
	    !count(f, C, IPPROTO_TCP, PORT_STAT_REWRITTEN, 9))
		return;
	/* C goes and B comes back, in the slot C (or B) had: from zero all the same. */
	if (!fixture_port_counters_set(f, a_b, 2) || !expect(f, A, IPPROTO_TCP, 5, 0) ||
	    !expect(f, B, IPPROTO_TCP, 0, 0) || !uncounted(f, C, IPPROTO_TCP))
		return;
	if (!fixture_port_counters_set(f, NULL, 0))
		return;
	ASSERT_EQ(fixture_port_counters_assigned(f), 0, "nothing counted");
}

static void too_many_ports(struct fixture *f)
{
	size_t n = BPFREDIR_PORT_COUNTERS, i;
	struct redir_port_key *ports = calloc(n, sizeof(*ports));
	struct port_counter_maps maps = fixture_port_counters(f);

	if (!ASSERT_OK_PTR(ports, "ports"))
		return;
	/* One more than the slots: 1..4097 for both protocols. */
	for (i = 0; i < n; i++)
		ports[i] = port(i / 2 + 1, i % 2 ? IPPROTO_UDP : IPPROTO_TCP);
	ASSERT_EQ(port_counters_set(&maps, ports, n), -E2BIG, "one port more than the slots");
	ASSERT_OK(port_counters_set(&maps, ports, n - 1), "as many ports as slots");
	ASSERT_EQ(fixture_port_counters_assigned(f), (int)n - 1, "every slot given");
	ASSERT_OK(port_counters_set(&maps, NULL, 0), "none");
	free(ports);
}

static void legacy_counts_carried_over(struct fixture *f)
{
	struct redir_port_key ports[] = { port(A, IPPROTO_TCP), port(B, IPPROTO_UDP) };
	struct redir_port_key gone = port(C, IPPROTO_TCP);
	struct port_counter_maps maps = fixture_port_counters(f);
	struct redir_port_stats old[f->ncpus];
	int legacy;

	legacy = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "port_stats", sizeof(ports[0]),
				sizeof(old[0]), 16, NULL);
	if (!ASSERT_TRUE(legacy >= 0, "a port_stats map as older builds made it"))
		return;
	memset(old, 0, sizeof(old));
	old[0].count[PORT_STAT_REWRITTEN] = 3;
	old[f->ncpus - 1].count[PORT_STAT_HIDDEN_DROPPED] += 4;
	if (!ASSERT_OK(bpf_map_update_elem(legacy, &ports[0], old, BPF_ANY), "old counts of A") ||
	    !ASSERT_OK(bpf_map_update_elem(legacy, &ports[1], old, BPF_ANY), "old counts of B") ||
	    !ASSERT_OK(bpf_map_update_elem(legacy, &gone, old, BPF_ANY), "old counts of C") ||
	    !fixture_port_counters_set(f, ports, 2) ||
	    !count(f, A, IPPROTO_TCP, PORT_STAT_REWRITTEN, 1))
		goto out;
	if (ASSERT_OK(port_counters_take_legacy(&maps, legacy), "take the old counts")) {
		expect(f, A, IPPROTO_TCP, 4, 4);
		expect(f, B, IPPROTO_UDP, 3, 4);
		uncounted(f, C, IPPROTO_TCP);
	}
	fixture_port_counters_set(f, NULL, 0);
out:
	close(legacy);
}

/* Through ruleset_derive, as add and del run it: a rule's ports keep their counts while
 * another rule comes and goes. */
static void derive_keeps_counts(struct fixture *f)
{
	struct rule_spec rules[] = {
		{ .public_port = A, .target_port = 8443, .proto = IPPROTO_TCP },
		{ .public_port = B, .target_port = 9443, .proto = IPPROTO_TCP },
	};

	if (!fixture_rules(f, rules, 1) || !count(f, A, IPPROTO_TCP, PORT_STAT_REWRITTEN, 2) ||
	    !count(f, 8443, IPPROTO_TCP, PORT_STAT_HIDDEN_DROPPED, 6) ||
	    !fixture_rules(f, rules, 2) || !expect(f, A, IPPROTO_TCP, 2, 0) ||
	    !expect(f, 8443, IPPROTO_TCP, 0, 6) || !expect(f, B, IPPROTO_TCP, 0, 0) ||
	    !expect(f, 9443, IPPROTO_TCP, 0, 0) || !fixture_rules(f, &rules[1], 1))
		return;
	uncounted(f, A, IPPROTO_TCP);
	uncounted(f, 8443, IPPROTO_TCP);
	fixture_rules_none(f);
}

void test_port_counters(void)
{
	struct fixture *f = fixture_open(0, 0);

	if (!f)
		return;
	if (test__start_subtest("port counters: kept while counted, from zero when back"))
		slots_kept_and_reused(f);
	if (test__start_subtest("port counters: one more port than slots is refused"))
		too_many_ports(f);
	if (test__start_subtest("port counters: an older build's port_stats carried over"))
		legacy_counts_carried_over(f);
	if (test__start_subtest("port counters: a rule's ports keep their counts across derives"))
		derive_keeps_counts(f);
	fixture_close(f);
}
