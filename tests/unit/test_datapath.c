// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Table-driven test of the TC programs through BPF_PROG_TEST_RUN. Each case fills the
 * rules/hidden maps, optionally runs a priming ingress packet (and then deletes the rules),
 * runs one frame through ingress or egress, and checks the verdict, the output frame byte
 * for byte against one built independently, the TCP/UDP checksum by full recomputation,
 * the stats deltas and the flows map.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "tc.skel.h"
#include "pktbuild.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define NO_STAT (-1)
#define MAX_RULES 2

#define PUB 8445
#define TGT 8443
#define UPUB 5353
#define UTGT 5354
#define CPORT 40000

struct rule_spec {
	__u16 pub, tgt; /* host order; pub == 0 ends the list */
	__u8 proto;
	bool hide;
};

struct tcase {
	const char *name;
	struct rule_spec rules[MAX_RULES];
	const struct pkt_spec *prime; /* ingress packet run first, must pass */
	bool drop_rules;	      /* then empty the rules and hidden maps */
	bool egress;
	struct pkt_spec pkt;
	__u16 exp_sport, exp_dport; /* ports in the expected output, 0 = unchanged */
	__u32 retval;
	int stat;  /* the one counter expected to go up by one, or NO_STAT */
	int flows; /* entries in the flows map afterwards */
};

/* clang-format off */
/* Client -> server on ingress; server -> DST_ on egress. */
#define TO_SERVER(l3_, proto_, dport_, flags_)                                                  \
	.l3 = (l3_), .proto = (proto_), .src = HOST_CLIENT, .dst = HOST_SERVER, .sport = CPORT, \
	.dport = (dport_), .tcp_flags = (flags_)
#define REPLY(l3_, dst_)                                                                   \
	.l3 = (l3_), .proto = IPPROTO_TCP, .src = HOST_SERVER, .dst = (dst_), .sport = TGT, \
	.dport = CPORT, .tcp_flags = PKT_TCP_FLAG_SYN | PKT_TCP_FLAG_ACK
#define SYN PKT_TCP_FLAG_SYN
#define ACK PKT_TCP_FLAG_ACK
#define TCP_RULE { .pub = PUB, .tgt = TGT, .proto = IPPROTO_TCP, .hide = true }
#define UDP_RULE { .pub = UPUB, .tgt = UTGT, .proto = IPPROTO_UDP, .hide = true }
/* The client's SYN went through, then the rule and its hidden entry were deleted. */
#define AFTER_DELETE .prime = &syn4, .drop_rules = true
#define DSTOPTS8 60, 60, 60, 60, 60, 60, 60, 60

static const struct pkt_spec syn4 = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) };
static const struct pkt_spec syn6 = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) };

static const struct tcase cases[] = {
	{ "v4 tcp syn to public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 tcp to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v4 tcp to unrelated port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, 22, SYN) }, .stat = STAT_PASSED },
	{ "arp passed untouched", { TCP_RULE },
	  .pkt = { .l3 = ETH_P_ARP, .src = HOST_CLIENT, .dst = HOST_SERVER }, .stat = STAT_PASSED },
	{ "v4 truncated tcp header dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .l4_trunc = 12 },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 truncated udp header dropped", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UTGT, 0), .l4_trunc = 6 },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 non-first fragment to hidden port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .frag_off = 185 },
	  .stat = STAT_PASSED },
	{ "v4 first fragment (MF) to public port rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .frag_off = 0x2000 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 with options rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .ip_opt_len = 12 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 802.1q tagged rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN), .vlans = 1 },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 802.1ad+802.1q tagged to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN), .vlans = 2 },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v6 tcp rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v6 tcp to hidden port dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, TGT, SYN) },
	  .retval = TC_ACT_SHOT, .stat = STAT_HIDDEN_DROPPED },
	{ "v6 hop-by-hop + dest-opts chain rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 2, .ext = { 0, 60 } },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	/* parse.h walks chains of up to IPV6_MAX_EXT_HDRS (8); only longer ones are malformed. */
	{ "v6 chain of exactly 8 ext headers rewritten", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 8, .ext = { DSTOPTS8 } },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v6 chain of 9 ext headers dropped", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_TCP, PUB, SYN), .n_ext = 9,
		   .ext = { DSTOPTS8, 60 } },
	  .retval = TC_ACT_SHOT, .stat = STAT_MALFORMED_DROPPED },
	{ "v4 udp rewritten", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v6 udp rewritten", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IPV6, IPPROTO_UDP, UPUB, 0) },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 udp zero checksum stays zero", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0), .udp_no_csum = true },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "v4 udp checksum computing to zero sent as 0xffff", { UDP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, UPUB, 0), .zero_csum_dport = UTGT },
	  .exp_dport = UTGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "udp to hidden tcp port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, TGT, 0) }, .stat = STAT_PASSED },
	{ "udp to tcp-only public port passed", { TCP_RULE },
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_UDP, PUB, 0) }, .stat = STAT_PASSED },
	{ "egress v4 reply sport rewritten to public", { TCP_RULE }, .prime = &syn4, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	{ "egress v6 reply sport rewritten to public", { TCP_RULE }, .prime = &syn6, .egress = true,
	  .pkt = { REPLY(ETH_P_IPV6, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	{ "egress reply to unknown client untouched", { TCP_RULE }, .prime = &syn4, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_STRANGER) }, .stat = NO_STAT, .flows = 2 },
	{ "egress reply rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE, .egress = true,
	  .pkt = { REPLY(ETH_P_IP, HOST_CLIENT) },
	  .exp_sport = PUB, .stat = STAT_REVERSE_REWRITTEN, .flows = 2 },
	{ "established flow rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, ACK) },
	  .exp_dport = TGT, .stat = STAT_REWRITTEN, .flows = 2 },
	{ "fresh syn not rewritten after rule deleted", { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, PUB, SYN) }, .stat = STAT_PASSED, .flows = 2 },
	{ "target reachable after rule and hidden deleted", { TCP_RULE }, AFTER_DELETE,
	  .pkt = { TO_SERVER(ETH_P_IP, IPPROTO_TCP, TGT, SYN) }, .stat = STAT_PASSED, .flows = 2 },
};
/* clang-format on */

static const char *const stat_names[STAT__MAX] = {
	[STAT_REWRITTEN] = "rewritten",
	[STAT_REVERSE_REWRITTEN] = "reverse_rewritten",
	[STAT_HIDDEN_DROPPED] = "hidden_dropped",
	[STAT_MALFORMED_DROPPED] = "malformed_dropped",
	[STAT_PASSED] = "passed",
	[STAT_SOCK_REDIRECTED] = "sock_redirected",
};

static struct tc_bpf *skel;
static int ncpus;
static __u64 *percpu;

static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

static void map_clear(struct bpf_map *map)
{
	__u8 key[64];

	while (!bpf_map_get_next_key(bpf_map__fd(map), NULL, key))
		if (bpf_map_delete_elem(bpf_map__fd(map), key))
			break;
}

static int map_count(struct bpf_map *map)
{
	__u8 key[64], next[64];
	int n = 0;

	for (; !bpf_map_get_next_key(bpf_map__fd(map), n ? key : NULL, next); n++)
		memcpy(key, next, sizeof(key));
	return n;
}

static int stats_read(__u64 sum[STAT__MAX])
{
	__u32 i;
	int cpu;

	for (i = 0; i < STAT__MAX; i++) {
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &i, percpu))
			return -errno;
		for (sum[i] = 0, cpu = 0; cpu < ncpus; cpu++)
			sum[i] += percpu[cpu];
	}
	return 0;
}

static int rules_install(const struct tcase *c)
{
	const struct rule_spec *r;
	__u32 one = 1;

	for (r = c->rules; r < c->rules + MAX_RULES && r->pub; r++) {
		struct redir_rule_key rk = {.public_port = htons(r->pub), .proto = r->proto};
		struct redir_rule rv = {.target_port = htons(r->tgt),
					.flags = r->hide ? REDIR_F_HIDE : 0};
		struct redir_port_key hk = {.port = htons(r->tgt), .proto = r->proto};

		if (bpf_map_update_elem(bpf_map__fd(skel->maps.rules), &rk, &rv, BPF_ANY))
			return -errno;
		if (r->hide && bpf_map_update_elem(bpf_map__fd(skel->maps.hidden), &hk, &one, 0))
			return -errno;
	}
	return 0;
}

static int prog_run(bool egress, const struct frame *in, __u8 *out, __u32 *out_len, __u32 *ret)
{
	struct bpf_program *prog = egress ? skel->progs.bpfredir_tc_eg : skel->progs.bpfredir_tc_in;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->buf, .data_size_in = in->len,
		    .data_out = out, .data_size_out = PKT_MAX, .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);

	*out_len = opts.data_size_out;
	*ret = opts.retval;
	return err;
}

/* The mapped (::ffff:a.b.c.d for v4) address of host H, as the flows map stores it. */
static void flow_addr(__u8 *dst, enum pkt_host h, bool v6)
{
	static const __u8 v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

	if (v6) {
		memcpy(dst, pkt_host(h)->v6, BPFREDIR_ADDR_LEN);
		return;
	}
	memcpy(dst, v4_mapped, sizeof(v4_mapped));
	memcpy(dst + 12, pkt_host(h)->v4, 4);
}

/* The IN entry (public -> target) and OUT entry (target -> public) of an ingress rewrite. */
static int flows_check(const struct tcase *c, char *why, size_t n)
{
	const struct pkt_spec *s = &c->pkt;
	__u16 local[2] = {s->dport, c->exp_dport}, want[2] = {c->exp_dport, s->dport};
	int i;

	for (i = 0; i < 2; i++) {
		struct redir_flow_key k = {.remote_port = htons(s->sport),
					   .local_port = htons(local[i]),
					   .proto = s->proto,
					   .dir = i ? FLOW_DIR_OUT : FLOW_DIR_IN};
		struct redir_flow v;

		flow_addr(k.remote_addr, s->src, s->l3 == ETH_P_IPV6);
		flow_addr(k.local_addr, s->dst, s->l3 == ETH_P_IPV6);
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.flows), &k, &v))
			return fail(why, n, "flow %s %u missing", i ? "OUT" : "IN", local[i]);
		if (ntohs(v.port) != want[i])
			return fail(why, n, "flow %s %u: expected port %u got %u", i ? "OUT" : "IN",
				    local[i], want[i], ntohs(v.port));
	}
	return 0;
}

static int frames_compare(const struct frame *exp, const __u8 *out, __u32 out_len, char *why,
			  size_t n)
{
	__u32 i;

	if (out_len != exp->len)
		return fail(why, n, "output length: expected %u got %u", exp->len, out_len);
	for (i = 0; i < out_len; i++)
		if (out[i] != exp->buf[i])
			return fail(why, n, "output byte %u: expected 0x%02x got 0x%02x", i,
				    exp->buf[i], out[i]);
	return 0;
}

/* Output checksum, recomputed in full, unless there is no whole L4 segment to sum. */
static int csum_check(const struct tcase *c, const struct frame *exp, const __u8 *out, char *why,
		      size_t n)
{
	const struct pkt_spec *s = &c->pkt;
	__u16 sum;

	if (!exp->l4_off || s->l4_trunc || (s->frag_off & 0x3fff) || s->udp_no_csum)
		return 0;
	sum = pkt_l4_sum(out, exp);
	if (sum != 0xffff)
		return fail(why, n, "output L4 checksum invalid: folded sum 0x%04x, want 0xffff",
			    sum);
	return 0;
}

static int case_run(const struct tcase *c, char *why, size_t n)
{
	__u64 before[STAT__MAX], after[STAT__MAX];
	struct pkt_spec exp_spec = c->pkt;
	struct frame in, exp;
	__u8 out[PKT_MAX];
	__u32 out_len, ret;
	int i, err, flows;

	map_clear(skel->maps.rules);
	map_clear(skel->maps.hidden);
	map_clear(skel->maps.flows);
	err = rules_install(c);
	if (err)
		return fail(why, n, "installing rules: %s", strerror(-err));
	if (c->prime) {
		pkt_build(&in, c->prime);
		err = prog_run(false, &in, out, &out_len, &ret);
		if (err || ret != TC_ACT_OK)
			return fail(why, n, "priming packet: err %d retval %u", err, ret);
	}
	if (c->drop_rules) {
		map_clear(skel->maps.rules);
		map_clear(skel->maps.hidden);
	}

	pkt_build(&in, &c->pkt);
	exp_spec.sport = c->exp_sport ?: c->pkt.sport;
	exp_spec.dport = c->exp_dport ?: c->pkt.dport;
	pkt_build(&exp, &exp_spec);

	if (stats_read(before))
		return fail(why, n, "reading stats: %s", strerror(errno));
	err = prog_run(c->egress, &in, out, &out_len, &ret);
	if (err)
		return fail(why, n, "BPF_PROG_TEST_RUN: %s", strerror(-err));
	if (stats_read(after))
		return fail(why, n, "reading stats: %s", strerror(errno));

	if (ret != c->retval)
		return fail(why, n, "retval: expected %u got %u", c->retval, ret);
	if (frames_compare(&exp, out, out_len, why, n) || csum_check(c, &exp, out, why, n))
		return -1;
	for (i = 0; i < STAT__MAX; i++) {
		__u64 want = i == c->stat ? 1 : 0;

		if (after[i] - before[i] != want)
			return fail(why, n, "stat %s delta: expected %llu got %llu", stat_names[i],
				    (unsigned long long)want,
				    (unsigned long long)(after[i] - before[i]));
	}
	flows = map_count(skel->maps.flows);
	if (flows != c->flows)
		return fail(why, n, "flows entries: expected %d got %d", c->flows, flows);
	if (!c->egress && c->exp_dport)
		return flows_check(c, why, n);
	return 0;
}

int main(void)
{
	char why[256];
	size_t i;
	int failed = 0;

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		printf("FAIL: setup: libbpf_num_possible_cpus: %d\n", ncpus);
		return 1;
	}
	percpu = calloc(ncpus, sizeof(*percpu));
	skel = tc_bpf__open_and_load();
	if (!percpu || !skel) {
		printf("FAIL: setup: cannot open and load the TC skeleton: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (case_run(&cases[i], why, sizeof(why))) {
			printf("FAIL: %s: %s\n", cases[i].name, why);
			failed = 1;
		} else {
			printf("PASS: %s\n", cases[i].name);
		}
	}
	tc_bpf__destroy(skel);
	free(percpu);
	return failed;
}
