// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The unit tests' fixture (fixture.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include "core/cache_gen.h"
#include "harness.h"
#include "netns.h"
#include "fixture.h"

/* The XDP program on F's TC maps, as the loader shares them by pin. */
static int xdp_load_shared(struct fixture *f)
{
	struct bpf_map *map, *tc_map;
	int err = 0;

	f->xdp = xdp_bpf__open();
	if (!f->xdp)
		return -errno;
	bpf_object__for_each_map(map, f->xdp->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		tc_map = bpf_object__find_map_by_name(f->tc->obj, bpf_map__name(map));
		err = tc_map ? bpf_map__reuse_fd(map, bpf_map__fd(tc_map)) : -ENOENT;
		if (err)
			return err;
	}
	return xdp_bpf__load(f->xdp);
}

/* Any seed but 0 serves; a fixed one makes every run put each key in the same bucket. */
static int fixture_pending_open(struct fixture *f)
{
	int seed_fd = bpf_map__fd(f->tc->maps.pending_seed);
	struct redir_pending_seed seed;
	__u32 zero = 0, i;

	for (i = 0; i < BPFREDIR_PENDING_SEED_WORDS; i++)
		seed.word[i] = 0x9e3779b9U * (i + 1);
	if (bpf_map_update_elem(seed_fd, &zero, &seed, BPF_ANY))
		return -errno;
	return pending_table_open(&f->pending, bpf_map__fd(f->tc->maps.pending_buckets), seed_fd);
}

struct fixture *fixture_open(unsigned int flags, __u32 pending_max)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char why[256];
	int err;

	if (!ASSERT_OK_PTR(f, "fixture"))
		return NULL;
	if (netns_enter_fresh(why, sizeof(why))) {
		test__fail("network namespace: %s", why);
		goto fail;
	}
	f->ncpus = libbpf_num_possible_cpus();
	if (!ASSERT_TRUE(f->ncpus > 0, "libbpf_num_possible_cpus"))
		goto fail;
	f->tc = tc_bpf__open();
	if (!ASSERT_OK_PTR(f->tc, "open the TC skeleton"))
		goto fail;
	err = pending_max ? bpf_map__set_max_entries(f->tc->maps.pending_buckets,
						     pending_max / BPFREDIR_PENDING_WAYS)
			  : 0;
	if (!err)
		err = tc_bpf__load(f->tc);
	if (!ASSERT_OK(err, "load the TC skeleton"))
		goto fail;
	if (!ASSERT_OK(fixture_pending_open(f), "seed pending and open it"))
		goto fail;
	if ((flags & FIX_XDP) && !ASSERT_OK(xdp_load_shared(f), "load XDP on the TC maps"))
		goto fail;
	f->xdp_ifindex = if_nametoindex("lo");
	f->live_set = -1;
	return f;
fail:
	fixture_close(f);
	return NULL;
}

void fixture_close(struct fixture *f)
{
	if (!f)
		return;
	if (f->live_set >= 0)
		close(f->live_set);
	xdp_bpf__destroy(f->xdp);
	tc_bpf__destroy(f->tc);
	free(f);
}

int fixture_run(struct fixture *f, enum hook h, const void *in, __u32 len, void *out,
		__u32 *out_len, __u32 *retval)
{
	struct __sk_buff skb_ctx = { .ingress_ifindex = LO_IFINDEX };
	struct xdp_md xdp_ctx = { .data_end = len, .ingress_ifindex = f->xdp_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = len, .data_out = out,
		    .data_size_out = *out_len, .repeat = 1);
	struct bpf_program *prog;
	int err;

	if (h == HOOK_XDP) {
		/* The skb checksum flags mean nothing to XDP, which has no skb. */
		prog = f->xdp->progs.bpfredir_xdp;
		opts.ctx_in = &xdp_ctx;
		opts.ctx_size_in = sizeof(xdp_ctx);
	} else {
		prog = h == HOOK_TC_IN ? f->tc->progs.bpfredir_tc_in : f->tc->progs.bpfredir_tc_eg;
		opts.flags = f->tc_run_flags;
		if (f->received) {
			opts.ctx_in = &skb_ctx;
			opts.ctx_size_in = sizeof(skb_ctx);
		}
	}
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
	*out_len = opts.data_size_out;
	*retval = opts.retval;
	if (h == HOOK_XDP)
		*retval = opts.retval == XDP_TX	    ? TC_ACT_REDIRECT
			  : opts.retval == XDP_DROP ? TC_ACT_SHOT
			  : opts.retval == XDP_PASS ? TC_PASS
						    : 1000 + opts.retval;
	return err;
}

static bool rules_install(struct fixture *f, int set)
{
	if (!ASSERT_OK(ruleset_install(bpf_map__fd(f->tc->maps.policy), set), "install the set")) {
		if (set >= 0)
			close(set);
		return false;
	}
	if (f->live_set >= 0)
		close(f->live_set);
	f->live_set = set;
	return true;
}

bool fixture_rules(struct fixture *f, const struct rule_spec *rules, int n)
{
	struct derive_maps derive = fixture_derive_maps(f, fixture_port_counters(f));
	int set = ruleset_create(), i, err = 0;

	if (!ASSERT_TRUE(set >= 0, "create a rule set"))
		return false;
	for (i = 0; i < n && !err; i++)
		err = ruleset_put(set, &rules[i]);
	if (!err)
		err = ruleset_enable(set, POLICY_IFACE, LO_IFINDEX, true);
	if (!err)
		err = ruleset_derive(set, &derive);
	if (!ASSERT_OK(err, "fill the rule set")) {
		close(set);
		return false;
	}
	return rules_install(f, set);
}

/* The set's rules and the maps derived from them in line again, as the loader's del and
 * apply leave them. */
bool fixture_rederive(struct fixture *f)
{
	struct derive_maps derive = fixture_derive_maps(f, fixture_port_counters(f));

	return ASSERT_TRUE(f->live_set >= 0, "a live set") &&
	       ASSERT_OK(ruleset_derive(f->live_set, &derive), "derive the live set");
}

/* No set in the slot, and neither the interfaces nor the hidden ports of one: what the
 * programs see before load installs the first. */
bool fixture_rules_none(struct fixture *f)
{
	return fixture_zero_array(f->tc->maps.iface_slots) &&
	       fixture_zero_array(f->tc->maps.port_hidden) && rules_install(f, -1);
}

bool fixture_stat(struct fixture *f, __u32 idx, __u64 *sum)
{
	__u64 percpu[f->ncpus];
	int cpu;

	if (!ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(f->tc->maps.stats), &idx, percpu),
		       "read stats"))
		return false;
	for (*sum = 0, cpu = 0; cpu < f->ncpus; cpu++)
		*sum += percpu[cpu];
	return true;
}

bool fixture_stats(struct fixture *f, __u64 sum[STAT__MAX])
{
	__u32 i;

	for (i = 0; i < STAT__MAX; i++)
		if (!fixture_stat(f, i, &sum[i]))
			return false;
	return true;
}

struct port_counter_maps fixture_port_counters(struct fixture *f)
{
	return (struct port_counter_maps){ .slots = bpf_map__fd(f->tc->maps.port_slots),
					   .counters = bpf_map__fd(f->tc->maps.port_counters) };
}

struct derive_maps fixture_derive_maps(struct fixture *f, struct port_counter_maps counters)
{
	return (struct derive_maps){ .counters = counters,
				     .port_interest = bpf_map__fd(f->tc->maps.port_interest),
				     .public_targets = bpf_map__fd(f->tc->maps.public_targets),
				     .flows = bpf_map__fd(f->tc->maps.flows),
				     .flows_gen = bpf_map__fd(f->tc->maps.flows_gen),
				     .iface_slots = bpf_map__fd(f->tc->maps.iface_slots),
				     .port_hidden = bpf_map__fd(f->tc->maps.port_hidden) };
}

bool fixture_port_stat(struct fixture *f, __u16 port, __u8 proto, __u64 sum[PORT_STAT__MAX])
{
	struct port_counter_maps maps = fixture_port_counters(f);

	return ASSERT_OK(port_counters_read(&maps, htons(port), proto, sum), "read a port counter");
}

bool fixture_port_counters_set(struct fixture *f, const struct redir_port_key *ports, size_t n)
{
	struct port_counter_maps maps = fixture_port_counters(f);

	return ASSERT_OK(port_counters_set(&maps, ports, n), "give the ports counter slots");
}

int fixture_port_counters_assigned(struct fixture *f)
{
	struct port_counter_maps maps = fixture_port_counters(f);

	return port_counters_assigned(&maps);
}

bool fixture_port_counters_scratch(struct fixture *f, struct port_counter_maps *scratch)
{
	struct bpf_map *slots = f->tc->maps.port_slots, *counters = f->tc->maps.port_counters;
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = bpf_map__map_flags(slots));

	scratch->slots =
		bpf_map_create(bpf_map__type(slots), "scratch_slots", bpf_map__key_size(slots),
			       bpf_map__value_size(slots), bpf_map__max_entries(slots), &opts);
	scratch->counters = bpf_map_create(
		bpf_map__type(counters), "scratch_counts", bpf_map__key_size(counters),
		bpf_map__value_size(counters), bpf_map__max_entries(counters), NULL);
	return ASSERT_TRUE(scratch->slots >= 0 && scratch->counters >= 0,
			   "port counter maps of the test's own");
}

void fixture_clear_fd(int fd)
{
	__u8 key[64];

	while (!bpf_map_get_next_key(fd, NULL, key))
		if (bpf_map_delete_elem(fd, key))
			break;
}

bool fixture_zero_array(struct bpf_map *map)
{
	__u32 i, n = bpf_map__max_entries(map), count = n;
	__u32 *keys = calloc(n, sizeof(*keys));
	void *zero = calloc(n, bpf_map__value_size(map));
	bool ok = keys && zero;

	for (i = 0; ok && i < n; i++)
		keys[i] = i;
	ok = ok && ASSERT_OK(bpf_map_update_batch(bpf_map__fd(map), keys, zero, &count, NULL),
			     "zero an array");
	free(keys);
	free(zero);
	return ok;
}

void fixture_clear(struct bpf_map *map)
{
	fixture_clear_fd(bpf_map__fd(map));
}

void fixture_conns_clear(struct fixture *f)
{
	fixture_clear(f->tc->maps.flows);
	ASSERT_OK(pending_table_clear(&f->pending), "empty pending");
	ASSERT_OK(cache_gen_bump(bpf_map__fd(f->tc->maps.flows_gen)), "move flows_gen on");
}

int fixture_count(struct bpf_map *map)
{
	__u8 key[64], next[64];
	int n = 0;

	for (; !bpf_map_get_next_key(bpf_map__fd(map), n ? key : NULL, next); n++)
		memcpy(key, next, sizeof(key));
	return n;
}

int fixture_conn_get(struct fixture *f, bool in_pending, const struct redir_flow_key *k,
		     struct redir_flow *v)
{
	if (in_pending)
		return pending_table_get(&f->pending, k, v);
	return bpf_map_lookup_elem(bpf_map__fd(f->tc->maps.flows), k, v) ? -errno : 0;
}

int fixture_conn_walk(struct fixture *f, bool in_pending,
		      int (*fn)(const struct redir_flow_key *k, const struct redir_flow *v,
				void *ctx),
		      void *ctx)
{
	int fd = bpf_map__fd(f->tc->maps.flows), n, err;
	struct redir_flow_key key, next;
	struct redir_flow v;

	if (in_pending)
		return pending_table_walk(&f->pending, fn, ctx);
	for (n = 0; !bpf_map_get_next_key(fd, n ? &key : NULL, &next); n++) {
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue; /* gone meanwhile */
		err = fn(&key, &v, ctx);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

int fixture_conn_count(struct fixture *f, bool in_pending)
{
	return in_pending ? pending_table_count(&f->pending) : fixture_count(f->tc->maps.flows);
}

bool fixture_local_addrs(struct fixture *f, enum pkt_host h, bool bcast)
{
	/* An address of the host's has one holder here; its subnet's broadcast address none. */
	const __u32 own = 1, brd = LOCAL_ADDR_BROADCAST;
	int fd = bpf_map__fd(f->tc->maps.local_addrs), v6, err = 0;
	__u8 addr[BPFREDIR_ADDR_LEN];

	for (v6 = 0; v6 < 2 && !err; v6++) {
		pkt_host_mapped(h, v6, addr);
		err = bpf_map_update_elem(fd, addr, &own, BPF_ANY);
	}
	if (!err && bcast) {
		pkt_host_mapped(HOST_SERVER_BCAST, false, addr);
		err = bpf_map_update_elem(fd, addr, &brd, BPF_ANY);
	}
	if (!err)
		err = cache_gen_bump(bpf_map__fd(f->tc->maps.addrs_gen));
	return ASSERT_OK(err, "record this host's addresses");
}

int fixture_probe_csum_complete(void)
{
	const struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	/* An Ethernet header and an IPv4 one, all zero: only the flag is on trial. */
	unsigned char pkt[14 + 20] = { [12] = 0x08, [14] = 0x45 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);
	int fd, err;

	/* A program that only returns runs once without the flag and once with it. */
	fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "probe_csum", "GPL", ret0, 2, NULL);
	if (!ASSERT_TRUE(fd >= 0, "probe: load a program"))
		return -errno;
	err = bpf_prog_test_run_opts(fd, &opts) ? -errno : 0;
	if (!ASSERT_OK(err, "probe: BPF_PROG_TEST_RUN without flags")) {
		close(fd);
		return err;
	}
	opts.flags = BPF_F_TEST_SKB_CHECKSUM_COMPLETE;
	err = bpf_prog_test_run_opts(fd, &opts) ? -errno : 0;
	close(fd);
	if (err == -EINVAL)
		return 0;
	return ASSERT_OK(err, "probe: BPF_F_TEST_SKB_CHECKSUM_COMPLETE") ? 1 : err;
}
