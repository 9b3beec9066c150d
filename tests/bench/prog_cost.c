// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark 1, the cost of bpfredir's ingress programs per packet, TC (bpfredir_tc_in) and
 * XDP (bpfredir_xdp), through BPF_PROG_TEST_RUN with repeat, above the floor of an empty
 * program.
 *
 * Every run goes through a stamp program (bench.bpf.c: bench_stamp for TC, bench_stamp_xdp
 * for XDP), which puts the frame's original destination port and checksum back and
 * tail-calls slot 0 of its program array: either the empty program of its hook (the floor)
 * or bpfredir's. The stamp and the tail call are on both sides, so "cost" = (time with
 * bpfredir's program) - (time with the empty one) is bpfredir's own. The XDP program shares
 * every map with the TC one, as the loader makes it.
 *
 * Which path each repeat takes (the rule is 8445 -> 8443, hidden, TCP):
 * - public, established: an ACK to 8445 of a connection whose handshake went through the
 *   programs first, so it sits in `flows`: its answer from flow_cache (flows' the first
 *   time), the port and checksum rewrite, the counters. The stamp restores 8445 before every
 *   repeat.
 * - public, new SYN: a SYN from the next of 20,000 client ports every repeat (the stamp's
 *   walk), so each repeat is a new connection and pending is full: the rule lookup, whether
 *   the destination is ours (addr_cache), its pending entry written in place of its
 *   bucket's oldest, the rewrite, the counters.
 * - hidden: a SYN to 8443: port_hidden, whether the destination is ours (addr_cache), the
 *   drop.
 * - unrelated: an ACK to port 22: port_interest has no mark for it: pass.
 * After each timed run the output frame, the verdict and the counters are checked: every
 * repeat must have taken the intended path (the counter grew by exactly `repeat`).
 *
 * Then socket steering (load --steering socket): the sk_lookup program (bpfredir_steer) for a
 * new connection to 8445, handed to this process's own listener on 8443 (the rule's lookup,
 * the interface's, the listener's in the wildcard slot of its family), against an
 * empty sk_lookup program. An established packet runs no program in that mode. Checked the
 * same way: every repeat selected the listener and counted it.
 *
 * Runs in a fresh network namespace of its own (not forwarding, as a server: the server's
 * addresses in local_addrs are ours). Prints one tab-separated line per case:
 *   case  tc_floor_ns tc_prog_ns tc_cost_ns  xdp_floor_ns xdp_prog_ns xdp_cost_ns
 * and for socket steering:
 *   case  floor_ns prog_ns cost_ns
 * and last, the price of one call the verifier cannot inline, which the steering program's
 * mechanism makes three of (the floor, the program making n calls, the cost per call):
 *   case  floor_ns prog_ns call_ns n
 * (medians over the rounds; a cost is the median of the per-round differences)
 * Usage: prog_cost [--repeat N] [--rounds R]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "core/cache_gen.h"
#include "core/objects.h"
#include "core/pending.h"
#include "core/ruleset.h"
#include "tc.skel.h"
#include "xdp.skel.h"
#include "steer.skel.h"
#include "bench.skel.h"
#include "pktbuild.h"
#include "netns.h"
#include "benchutil.h"

/* The TC programs' verdict for a packet they let go on: TC_ACT_UNSPEC (-1), TCX_NEXT. */
#define TC_PASS 0xffffffffU
#define TC_ACT_SHOT 2
#define XDP_DROP_RET 1
#define XDP_PASS_RET 2
#define PUB 8445
#define TGT 8443
#define OTHER 22
#define CPORT 40000
#define MAX_ROUNDS 99
/* A fresh namespace's loopback, where BPF_PROG_TEST_RUN puts the skb. */
#define LO_IFINDEX 1

static struct tc_bpf *tc;
/* TC's per-port counter maps, which XDP shares. */
static struct port_counter_maps counters;
static struct xdp_bpf *xdp;
static struct bench_bpf *bench;
static int ncpus;

struct bcase {
	const char *name;
	struct pkt_spec pkt;
	bool establish;	 /* run the handshake through the programs first */
	__u32 retval;	 /* the TC verdict; XDP's follows from it */
	__u16 out_dport; /* the destination port the output frame must carry */
	int stat;	 /* grows by exactly `repeat` */
	bool new_clients; /* each repeat from the next client port (bench.bpf.c's walk) */
};

#define SYN PKT_TCP_FLAG_SYN
#define ACK PKT_TCP_FLAG_ACK
#define TO_SERVER(l3_, dport_, flags_)                                                             \
	{                                                                                          \
		.l3 = (l3_), .proto = IPPROTO_TCP, .src = HOST_CLIENT, .dst = HOST_SERVER,         \
		.sport = CPORT, .dport = (dport_), .tcp_flags = (flags_)                           \
	}
#define FROM_SERVER(l3_, flags_)                                                                   \
	{                                                                                          \
		.l3 = (l3_), .proto = IPPROTO_TCP, .src = HOST_SERVER, .dst = HOST_CLIENT,         \
		.sport = TGT, .dport = CPORT, .tcp_flags = (flags_)                                \
	}

static const struct bcase cases[] = {
	{ "v4 public (established ACK)", TO_SERVER(ETH_P_IP, PUB, ACK), true, TC_PASS, TGT,
	  STAT_REWRITTEN, false },
	{ "v4 public (new SYN)", TO_SERVER(ETH_P_IP, PUB, SYN), false, TC_PASS, TGT, STAT_REWRITTEN,
	  true },
	{ "v4 hidden (SYN to 8443)", TO_SERVER(ETH_P_IP, TGT, SYN), false, TC_ACT_SHOT, TGT,
	  STAT_HIDDEN_DROPPED, false },
	{ "v4 unrelated (ACK to 22)", TO_SERVER(ETH_P_IP, OTHER, ACK), false, TC_PASS, OTHER,
	  STAT_PASSED, false },
	{ "v6 public (established ACK)", TO_SERVER(ETH_P_IPV6, PUB, ACK), true, TC_PASS, TGT,
	  STAT_REWRITTEN, false },
	{ "v6 public (new SYN)", TO_SERVER(ETH_P_IPV6, PUB, SYN), false, TC_PASS, TGT,
	  STAT_REWRITTEN, true },
	{ "v6 hidden (SYN to 8443)", TO_SERVER(ETH_P_IPV6, TGT, SYN), false, TC_ACT_SHOT, TGT,
	  STAT_HIDDEN_DROPPED, false },
	{ "v6 unrelated (ACK to 22)", TO_SERVER(ETH_P_IPV6, OTHER, ACK), false, TC_PASS, OTHER,
	  STAT_PASSED, false },
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static __u64 stat_read(int idx)
{
	__u64 vals[ncpus], sum = 0;
	__u32 key = idx;
	int i;

	if (bpf_map_lookup_elem(bpf_map__fd(tc->maps.stats), &key, vals))
		die("reading stats: %s", strerror(errno));
	for (i = 0; i < ncpus; i++)
		sum += vals[i];
	return sum;
}

/* The rule set `bpfredir add 8445 8443` makes, made by the loader's own ruleset_*: the rule,
 * what follows from it (its hidden entry, the per-port counters, the port_interest marks) and
 * the entry that lets the interface act (under BPF_PROG_TEST_RUN the skb is on the
 * namespace's loopback). */
static void rules_install(void)
{
	const struct rule_spec rule = { .public_port = PUB,
					.target_port = TGT,
					.proto = IPPROTO_TCP };
	const __u32 own = 1; /* one holder: an address of the host's */
	__u8 addr[BPFREDIR_ADDR_LEN];
	int set, err, i;

	set = ruleset_create();
	if (set < 0)
		die("creating the rule set: %s", strerror(-set));
	err = ruleset_put(set, &rule);
	if (!err)
		err = ruleset_enable(set, POLICY_IFACE, LO_IFINDEX, true);
	if (!err)
		err = ruleset_derive(set,
				     &(struct derive_maps){
					     .counters = counters,
					     .port_interest = bpf_map__fd(tc->maps.port_interest),
					     .public_targets = bpf_map__fd(tc->maps.public_targets),
					     .flows = bpf_map__fd(tc->maps.flows),
					     .flows_gen = bpf_map__fd(tc->maps.flows_gen),
					     .iface_slots = bpf_map__fd(tc->maps.iface_slots),
					     .port_hidden = bpf_map__fd(tc->maps.port_hidden) });
	if (!err)
		err = ruleset_install(bpf_map__fd(tc->maps.policy), set);
	if (err)
		die("making the rule set: %s", strerror(-err));
	close(set); /* the policy map holds it */
	/* The namespace does not forward, so the FIB says nothing: this host's addresses, as
	 * the loader records them, decide what is ours. */
	for (i = 0; i < 2; i++) {
		pkt_host_mapped(HOST_SERVER, i, addr);
		if (bpf_map_update_elem(bpf_map__fd(tc->maps.local_addrs), addr, &own, BPF_ANY))
			die("recording the server's addresses: %s", strerror(errno));
	}
	err = cache_gen_bump(bpf_map__fd(tc->maps.addrs_gen));
	if (err)
		die("moving addrs_gen on: %s", strerror(-err));
}

static __u32 run(int prog_fd, const struct frame *f, __u32 repeat, __u8 *out, __u32 *out_len,
		 __u32 *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f->buf, .data_size_in = f->len,
		    .data_out = out, .data_size_out = PKT_MAX, .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		die("BPF_PROG_TEST_RUN: %s", strerror(errno));
	*out_len = opts.data_size_out;
	*retval = opts.retval;
	return opts.duration;
}

/* One packet straight through a bpfredir program, as the handshake's step. */
static void step(int prog_fd, const struct pkt_spec *s, __u32 want)
{
	struct frame f;
	__u8 out[PKT_MAX];
	__u32 len, ret;

	pkt_build(&f, s);
	run(prog_fd, &f, 1, out, &len, &ret);
	if (ret != want)
		die("handshake step: verdict %u, expected %u", ret, want);
}

/* SYN in, SYN-ACK out, ACK in, the service's ACK out: the connection lands in flows. */
static void establish(__u16 l3)
{
	const struct pkt_spec syn = TO_SERVER(l3, PUB, SYN), ack = TO_SERVER(l3, PUB, ACK);
	const struct pkt_spec synack = FROM_SERVER(l3, SYN | ACK), ackout = FROM_SERVER(l3, ACK);
	int in = bpf_program__fd(tc->progs.bpfredir_tc_in);
	int eg = bpf_program__fd(tc->progs.bpfredir_tc_eg);

	step(in, &syn, TC_PASS);
	step(eg, &synack, TC_PASS);
	step(in, &ack, TC_PASS);
	step(eg, &ackout, TC_PASS);
}

/* The hooks measured: the stamp, its program array, the floor and bpfredir's program. */
enum hook { HOOK_TC, HOOK_XDP, HOOK__MAX };

static const char *const hook_names[HOOK__MAX] = { "tc", "xdp" };

static void hook_progs(enum hook h, int *stamp, int *array, int *empty, int *real)
{
	if (h == HOOK_TC) {
		*stamp = bpf_program__fd(bench->progs.bench_stamp);
		*array = bpf_map__fd(bench->maps.target);
		*empty = bpf_program__fd(bench->progs.bench_empty);
		*real = bpf_program__fd(tc->progs.bpfredir_tc_in);
	} else {
		*stamp = bpf_program__fd(bench->progs.bench_stamp_xdp);
		*array = bpf_map__fd(bench->maps.target_xdp);
		*empty = bpf_program__fd(bench->progs.bench_empty_xdp);
		*real = bpf_program__fd(xdp->progs.bpfredir_xdp);
	}
}

/* The case's per-port counter (the public port's translations, the hidden port's drops), so
 * the run proves it paid for that count too. */
static bool counts_port(const struct bcase *c)
{
	return c->stat == STAT_REWRITTEN || c->stat == STAT_HIDDEN_DROPPED;
}

static __u64 port_count(const struct bcase *c)
{
	__u64 sum[PORT_STAT__MAX];
	int err;

	if (!counts_port(c))
		return 0;
	err = port_counters_read(&counters, htons(c->pkt.dport), IPPROTO_TCP, sum);
	if (err)
		die("reading the counters of port %u: %s", c->pkt.dport, strerror(-err));
	return sum[c->stat == STAT_REWRITTEN ? PORT_STAT_REWRITTEN : PORT_STAT_HIDDEN_DROPPED];
}

/* A timed run of the case through hook H's stamp into its empty program or (REAL)
 * bpfredir's; with bpfredir's, check that every repeat took the case's path. */
static __u32 timed(const struct bcase *c, const struct frame *f, enum hook h, bool real,
		   __u32 repeat)
{
	__u8 out[PKT_MAX];
	__u32 len, ret, ns, want, key = 0;
	__u64 before, after, port_before, port_after;
	__u16 dport;
	int stamp, array, empty, prog;

	hook_progs(h, &stamp, &array, &empty, &prog);
	if (!real)
		prog = empty;
	if (bpf_map_update_elem(array, &key, &prog, BPF_ANY))
		die("setting the tail call target: %s", strerror(errno));
	before = stat_read(c->stat);
	port_before = port_count(c);
	ns = run(stamp, f, repeat, out, &len, &ret);
	after = stat_read(c->stat);
	port_after = port_count(c);
	if (!real)
		return ns;
	want = c->retval;
	if (h == HOOK_XDP)
		want = c->retval == TC_ACT_SHOT ? XDP_DROP_RET : XDP_PASS_RET;
	dport = (__u16)out[f->l4_off + 2] << 8 | out[f->l4_off + 3];
	if (ret != want || len != f->len || dport != c->out_dport)
		die("%s %s: verdict %u, %u bytes, dport %u; expected %u, %u bytes, dport %u",
		    hook_names[h], c->name, ret, len, dport, want, f->len, c->out_dport);
	if (after - before != repeat)
		die("%s %s: the counter grew by %llu in %u repeats: not every repeat took the "
		    "intended path",
		    hook_names[h], c->name, (unsigned long long)(after - before), repeat);
	if (counts_port(c) && port_after - port_before != repeat)
		die("%s %s: the port's counter grew by %llu in %u repeats", hook_names[h], c->name,
		    (unsigned long long)(port_after - port_before), repeat);
	return ns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A listener on TGT bound to the wildcard address of family, as a service's: its cookie. */
static __u64 listen_on_target(int family)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(TGT) };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TGT) };
	int fd = socket(family, SOCK_STREAM, 0), one = 1;
	socklen_t len = sizeof(__u64);
	__u64 cookie;

	if (fd < 0 ||
	    (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, family == AF_INET ? (struct sockaddr *)&sin : (struct sockaddr *)&sin6,
		 family == AF_INET ? sizeof(sin) : sizeof(sin6)) ||
	    listen(fd, 16) || getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		die("a listener on %u: %s", TGT, strerror(errno));
	return cookie; /* the fd stays open: the listener lives until exit */
}

/* The steering object on TC's maps, and the rule set `load --steering socket` with `add
 * 8445 8443` makes: the rule marked for socket lookup, its target's listeners registered by
 * the loader's own scan (this process holds them). Under BPF_PROG_TEST_RUN an sk_lookup
 * context has no ingress interface (0), so that is the one the set enables. */
static struct steer_bpf *steer_install(void)
{
	const struct rule_spec rule = { .public_port = PUB,
					.target_port = TGT,
					.proto = IPPROTO_TCP };
	struct steer_bpf *steer = steer_bpf__open();
	int set, err;

	if (!steer)
		die("cannot open the steering skeleton: %s", strerror(errno));
	err = objects_share_maps(steer->obj, tc->obj);
	if (err)
		die("sharing the maps with steering: %s", strerror(-err));
	if (steer_bpf__load(steer))
		die("cannot load the steering skeleton: %s", strerror(errno));
	set = ruleset_create();
	if (set < 0)
		die("creating the rule set: %s", strerror(-set));
	err = ruleset_put(set, &rule);
	if (!err)
		err = ruleset_enable(set, POLICY_IFACE, 0, true);
	if (!err)
		err = ruleset_derive(
			set, &(struct derive_maps){
				     .counters = counters,
				     .port_interest = bpf_map__fd(tc->maps.port_interest),
				     .public_targets = bpf_map__fd(tc->maps.public_targets),
				     .flows = bpf_map__fd(tc->maps.flows),
				     .flows_gen = bpf_map__fd(tc->maps.flows_gen),
				     .iface_slots = bpf_map__fd(tc->maps.iface_slots),
				     .port_hidden = bpf_map__fd(tc->maps.port_hidden),
				     .steer_socket = true,
				     .steer = {
					     .wildcard = bpf_map__fd(steer->maps.steer_wildcard),
					     .listeners = bpf_map__fd(steer->maps.steer_listeners),
					     .bound = bpf_map__fd(steer->maps.steer_bound),
					     .fast = bpf_map__fd(steer->maps.steer_fast),
				     } });
	if (!err)
		err = ruleset_install(bpf_map__fd(tc->maps.policy), set);
	if (err)
		die("making the steering rule set: %s", strerror(-err));
	close(set);
	return steer;
}

struct steer_case {
	const char *name;
	int family;
};

static const struct steer_case steer_cases[] = {
	{ "v4 new connection (socket steering, sk_lookup)", AF_INET },
	{ "v6 new connection (socket steering, sk_lookup)", AF_INET6 },
};

#define N_STEER (sizeof(steer_cases) / sizeof(steer_cases[0]))

/* One timed run of c through prog_fd; want: the socket every repeat must select (0: none,
 * the floor). */
static __u32 steer_timed(int prog_fd, const struct steer_case *c, __u32 repeat, __u64 want)
{
	struct bpf_sk_lookup ctx = { .family = c->family,
				     .protocol = IPPROTO_TCP,
				     .remote_port = htons(CPORT),
				     .local_port = PUB };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .ctx_out = &ctx, .ctx_size_out = sizeof(ctx), .repeat = repeat);
	bool v6 = c->family == AF_INET6;
	__u64 before = stat_read(STAT_STEERED);
	__u8 addr[BPFREDIR_ADDR_LEN];

	pkt_host_mapped(HOST_CLIENT, v6, addr);
	memcpy(v6 ? (void *)ctx.remote_ip6 : (void *)&ctx.remote_ip4, v6 ? addr : addr + 12,
	       v6 ? 16 : 4);
	pkt_host_mapped(HOST_SERVER, v6, addr);
	memcpy(v6 ? (void *)ctx.local_ip6 : (void *)&ctx.local_ip4, v6 ? addr : addr + 12,
	       v6 ? 16 : 4);
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		die("BPF_PROG_TEST_RUN (sk_lookup): %s", strerror(errno));
	if (opts.retval != SK_PASS || ctx.cookie != want)
		die("%s: verdict %u, socket %llu; expected %u, socket %llu", c->name, opts.retval,
		    (unsigned long long)ctx.cookie, SK_PASS, (unsigned long long)want);
	if (want && stat_read(STAT_STEERED) - before != repeat)
		die("%s: steered grew by %llu in %u repeats", c->name,
		    (unsigned long long)(stat_read(STAT_STEERED) - before), repeat);
	return opts.duration;
}

static void steer_cost(__u32 repeat, int rounds)
{
	static double floor_ns[N_STEER][MAX_ROUNDS], prog_ns[N_STEER][MAX_ROUNDS],
		diff[N_STEER][MAX_ROUNDS];
	__u64 cookies[2] = { listen_on_target(AF_INET), listen_on_target(AF_INET6) };
	struct steer_bpf *steer = steer_install();
	int empty = bpf_program__fd(bench->progs.bench_empty_sk_lookup);
	int real = bpf_program__fd(steer->progs.bpfredir_steer);
	size_t i;
	int r;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < N_STEER; i++) {
			__u64 want = cookies[steer_cases[i].family == AF_INET6];

			floor_ns[i][r] = steer_timed(empty, &steer_cases[i], repeat, 0);
			prog_ns[i][r] = steer_timed(real, &steer_cases[i], repeat, want);
			diff[i][r] = prog_ns[i][r] - floor_ns[i][r];
		}
	}
	for (i = 0; i < N_STEER; i++)
		printf("%s\t%.1f\t%.1f\t%.1f\n", steer_cases[i].name, median(floor_ns[i], rounds),
		       median(prog_ns[i], rounds), median(diff[i], rounds));
	steer_bpf__destroy(steer);
}

/* What a call the verifier cannot inline costs here: bench_calls_sk_lookup's calls above the
 * empty sk_lookup program, per call. */
static void call_cost(__u32 repeat, int rounds)
{
	static double floor_ns[MAX_ROUNDS], calls_ns[MAX_ROUNDS], per_call[MAX_ROUNDS];
	int empty = bpf_program__fd(bench->progs.bench_empty_sk_lookup);
	int calls = bpf_program__fd(bench->progs.bench_calls_sk_lookup);
	__u32 n = bench->rodata->bench_calls;
	int r;

	for (r = 0; r < rounds; r++) {
		floor_ns[r] = steer_timed(empty, &steer_cases[0], repeat, 0);
		calls_ns[r] = steer_timed(calls, &steer_cases[0], repeat, 0);
		per_call[r] = (calls_ns[r] - floor_ns[r]) / n;
	}
	printf("one call the verifier cannot inline (bpf_get_numa_node_id)\t%.1f\t%.1f\t%.1f\t%u\n",
	       median(floor_ns, rounds), median(calls_ns, rounds), median(per_call, rounds), n);
}

int main(int argc, char **argv)
{
	static double floor_ns[HOOK__MAX][N_CASES][MAX_ROUNDS],
		prog_ns[HOOK__MAX][N_CASES][MAX_ROUNDS];
	static double diff[HOOK__MAX][N_CASES][MAX_ROUNDS];
	enum hook h;
	struct frame frames[N_CASES];
	unsigned long repeat = 1000000, rounds = 3;
	char why[256];
	size_t i;
	int r, opt_i, err;

	for (opt_i = 1; opt_i < argc; opt_i++) {
		unsigned long *dst = !strcmp(argv[opt_i], "--repeat")	? &repeat
				     : !strcmp(argv[opt_i], "--rounds") ? &rounds
									: NULL;

		if (!dst || opt_i + 1 >= argc)
			die("usage: prog_cost [--repeat N] [--rounds R]");
		*dst = positive_arg(argv[opt_i], argv[opt_i + 1]);
		opt_i++;
	}
	if (rounds > MAX_ROUNDS || repeat > 100000000)
		die("--rounds is at most %d, --repeat at most 100000000", MAX_ROUNDS);

	if (netns_enter_fresh(why, sizeof(why)))
		die("network namespace: %s", why);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		die("libbpf_num_possible_cpus: %d", ncpus);
	tc = tc_bpf__open_and_load();
	if (tc && pending_seed_init(bpf_map__fd(tc->maps.pending_seed)))
		die("cannot seed pending: %s", strerror(errno));
	if (!tc)
		die("cannot open and load the TC skeleton: %s", strerror(errno));
	counters.slots = bpf_map__fd(tc->maps.port_slots);
	counters.counters = bpf_map__fd(tc->maps.port_counters);
	/* XDP uses TC's maps, as the loader's pins make every object do. */
	xdp = xdp_bpf__open();
	if (!xdp)
		die("cannot open the XDP skeleton: %s", strerror(errno));
	err = objects_share_maps(xdp->obj, tc->obj);
	if (err)
		die("sharing the maps with XDP: %s", strerror(-err));
	if (xdp_bpf__load(xdp))
		die("cannot load the XDP skeleton: %s", strerror(errno));
	bench = bench_bpf__open_and_load();
	if (!bench)
		die("cannot open and load the bench programs: %s", strerror(errno));
	rules_install();

	for (i = 0; i < N_CASES; i++) {
		pkt_build(&frames[i], &cases[i].pkt);
		if (cases[i].establish)
			establish(cases[i].pkt.l3);
	}

	/* Rounds outermost and floor/program alternating, so a disturbance on the machine
	 * hits both sides of a difference alike. */
	for (r = 0; r < (int)rounds; r++) {
		for (i = 0; i < N_CASES; i++) {
			const struct frame *f = &frames[i];
			__u32 csum_off = f->l4_off + 16;

			bench->bss->stamp_port_off = f->l4_off + 2;
			bench->bss->stamp_csum_off = csum_off;
			memcpy(&bench->bss->stamp_port, f->buf + f->l4_off + 2, 2);
			memcpy(&bench->bss->stamp_sport, f->buf + f->l4_off, 2);
			memcpy(&bench->bss->stamp_csum, f->buf + csum_off, 2);
			bench->bss->stamp_sport_walk = cases[i].new_clients;
			for (h = 0; h < HOOK__MAX; h++) {
				floor_ns[h][i][r] = timed(&cases[i], f, h, false, repeat);
				prog_ns[h][i][r] = timed(&cases[i], f, h, true, repeat);
				diff[h][i][r] = prog_ns[h][i][r] - floor_ns[h][i][r];
			}
		}
	}
	for (i = 0; i < N_CASES; i++) {
		printf("%s", cases[i].name);
		for (h = 0; h < HOOK__MAX; h++)
			printf("\t%.1f\t%.1f\t%.1f", median(floor_ns[h][i], rounds),
			       median(prog_ns[h][i], rounds), median(diff[h][i], rounds));
		printf("\n");
	}
	steer_cost(repeat, rounds);
	call_cost(repeat, rounds);
	bench_bpf__destroy(bench);
	xdp_bpf__destroy(xdp);
	tc_bpf__destroy(tc);
	return 0;
}
