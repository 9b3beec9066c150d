/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the BPF_PROG_TEST_RUN tests share: the TC skeleton loaded in a fresh network
 * namespace, the XDP program on the TC skeleton's maps (as the loader shares them by pin),
 * rule sets made by the loader's own core (ruleset_*), running a frame through a hook with
 * XDP's verdict read as TC's, the counters summed over the CPUs, and emptying a map between
 * cases.
 *
 * Each function that can fail says why in a FAIL: line (harness.h) and returns false.
 */
#ifndef BPFREDIR_FIXTURE_H
#define BPFREDIR_FIXTURE_H

#include <stdbool.h>
#include <linux/types.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "tc.skel.h"
#include "xdp.skel.h"
#include "pktbuild.h"
#include "core/pending.h"
#include "core/ruleset.h"

/* The TC programs' verdict for a packet they let go on, rewritten or not: TC_ACT_UNSPEC
 * (-1), TCX_NEXT, as BPF_PROG_TEST_RUN's u32 retval. */
#define TC_PASS 0xffffffffU
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
/* BPF_PROG_TEST_RUN without an ifindex runs the skb on loopback, which is 1 in a netns. */
#define LO_IFINDEX 1

enum hook { HOOK_TC_IN, HOOK_TC_EG, HOOK_XDP };

enum fixture_flags {
	FIX_XDP = 1 << 0, /* the XDP program too, on the TC skeleton's maps */
};

struct fixture {
	struct tc_bpf *tc;
	struct xdp_bpf *xdp; /* FIX_XDP, else NULL */
	int ncpus;
	/* BPF_PROG_TEST_RUN flags for TC runs (BPF_F_TEST_SKB_CHECKSUM_COMPLETE). */
	__u32 tc_run_flags;
	/* TC runs of a packet received on lo (skb_iif set): forwarded, or one of --reject's
	 * answers, not made by this host. */
	bool received;
	/* ingress_ifindex of XDP runs: lo, so the FIB asked is TC's. */
	__u32 xdp_ifindex;
	/* The set fixture_rules() put in the policy slot, or -1: a test may edit it in place,
	 * as add and del do. */
	int live_set;
	/* pending as the datapath keeps it, with the fixture's fixed seed (fixture_pending_open):
	 * a run's buckets are the same every time. */
	struct pending_table pending;
};

/* A fresh namespace, the TC skeleton loaded in it (pending with room for PENDING_MAX entries,
 * or the default for 0), and with FIX_XDP the XDP program on its maps; NULL after the FAIL
 * line. */
struct fixture *fixture_open(unsigned int flags, __u32 pending_max);
void fixture_close(struct fixture *f);

/* Frame IN through hook H: the verdict (XDP's as TC's: XDP_PASS is TC_PASS, XDP_DROP
 * TC_ACT_SHOT, XDP_TX TC_ACT_REDIRECT, anything else 1000 + it) and the output, OUT_LEN
 * bytes of at most the *OUT_LEN given; -errno when the run itself fails. */
int fixture_run(struct fixture *f, enum hook h, const void *in, __u32 len, void *out,
		__u32 *out_len, __u32 *retval);

/* A new set of the N rules, made by the core as `apply` makes one (ruleset_put, then
 * ruleset_derive: the hidden entries, the port counters, port_interest) and naming lo, where test
 * runs happen; then put in the policy slot with one update. N = 0: an empty set. */
bool fixture_rules(struct fixture *f, const struct rule_spec *rules, int n);
/* Leave the policy slot empty, as right after load. */
bool fixture_rules_none(struct fixture *f);
/* Derive the live set again, as del does after taking a rule out of it and apply after the
 * switch. */
bool fixture_rederive(struct fixture *f);

/* Counter IDX of stats, summed over the CPUs. */
bool fixture_stat(struct fixture *f, __u32 idx, __u64 *sum);
/* Every counter of stats. */
bool fixture_stats(struct fixture *f, __u64 sum[STAT__MAX]);
/* The per-port counter maps of the fixture's objects. */
struct port_counter_maps fixture_port_counters(struct fixture *f);
/* The maps ruleset_derive() writes, the fixture's, with COUNTERS for the port counters. */
struct derive_maps fixture_derive_maps(struct fixture *f, struct port_counter_maps counters);
/* The counters of PORT (host order) and PROTO, summed over CPUs; false without a slot. */
bool fixture_port_stat(struct fixture *f, __u16 port, __u8 proto, __u64 sum[PORT_STAT__MAX]);
/* Exactly PORTS counted, each from zero unless it was counted already (port_counters_set). */
bool fixture_port_counters_set(struct fixture *f, const struct redir_port_key *ports, size_t n);
/* How many ports have a counter slot, or -errno. */
int fixture_port_counters_assigned(struct fixture *f);
/* A pair of empty maps shaped like the per-port counters, for a ruleset_derive whose slots
 * the test does not want in the datapath's; the caller closes both fds. */
bool fixture_port_counters_scratch(struct fixture *f, struct port_counter_maps *scratch);
/* Delete every entry of MAP (keys up to 64 bytes), or of the map FD. */
void fixture_clear(struct bpf_map *map);
/* Empty flows and pending, as LRU eviction would: flows_gen moved on too, as by the datapath's
 * insert into flows that evicts (redir_flow_cached). */
void fixture_conns_clear(struct fixture *f);
/* Every entry of an array zero. */
bool fixture_zero_array(struct bpf_map *map);
void fixture_clear_fd(int fd);
/* How many entries MAP holds. */
int fixture_count(struct bpf_map *map);

/* The connection tables, flows (in_pending false) or pending, alike for the tests, which
 * look at what the datapath left there. k's entry into *v: 0, -ENOENT, or -errno. */
int fixture_conn_get(struct fixture *f, bool in_pending, const struct redir_flow_key *k,
		     struct redir_flow *v);
/* fn on every entry until it returns non-zero, which is returned; else 0 or -errno. */
int fixture_conn_walk(struct fixture *f, bool in_pending,
		      int (*fn)(const struct redir_flow_key *k, const struct redir_flow *v,
				void *ctx),
		      void *ctx);
/* How many entries the table holds, or -errno. */
int fixture_conn_count(struct fixture *f, bool in_pending);
/* Host h's addresses (v4 and v6) in local_addrs, as the loader records this host's own; and
 * with BCAST the server's subnet's broadcast address, as it records broadcast routes. */
bool fixture_local_addrs(struct fixture *f, enum pkt_host h, bool bcast);

#define SKB_CHECKSUM_COMPLETE_FEATURE "BPF_F_TEST_SKB_CHECKSUM_COMPLETE (kernel 6.11)"

/* Does BPF_PROG_TEST_RUN take BPF_F_TEST_SKB_CHECKSUM_COMPLETE (1) or not (0)? Older kernels
 * refuse the flag with EINVAL; anything else that goes wrong is an error (-errno, after the
 * FAIL line), not a missing feature. */
int fixture_probe_csum_complete(void);

#endif /* BPFREDIR_FIXTURE_H */
