/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel features bpfredir uses where they exist and does without where they do not,
 * probed by asking the kernel, never by its version (distributions backport): load picks
 * what to load and attach by them, status reports them. Header-only and silent, so the unit
 * tests probe the same way.
 */
#ifndef BPFREDIR_PROBE_H
#define BPFREDIR_PROBE_H

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* tcx (Linux 6.6): a query of loopback's tcx ingress chain answers where it exists. */
static inline bool probe_tcx(void)
{
	LIBBPF_OPTS(bpf_prog_query_opts, opts);
	int lo = if_nametoindex("lo");

	return lo && !bpf_prog_query_opts(lo, BPF_TCX_INGRESS, &opts);
}

/*
 * BPF_FIB_LOOKUP_SKIP_NEIGH (Linux 6.3): bpf_fib_lookup refuses a flag it does not know with
 * -EINVAL before it looks at anything else; knowing it, a lookup of address family 0 ends in
 * -EAFNOSUPPORT. A TC program makes that call on a zeroed struct bpf_fib_lookup, run once.
 * 1 when the kernel has the flag, 0 when not, -errno when the probe cannot run.
 */
static inline int probe_fib_skip_neigh(void)
{
	/* clang-format off */
	const struct bpf_insn prog[] = {
#define ZERO_STACK(at) { .code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = (at) }
		ZERO_STACK(-8), ZERO_STACK(-16), ZERO_STACK(-24), ZERO_STACK(-32),
		ZERO_STACK(-40), ZERO_STACK(-48), ZERO_STACK(-56), ZERO_STACK(-64),
#undef ZERO_STACK
		/* r1 is still the context */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_2, .imm = -64 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = 64 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_4,
		  .imm = BPF_FIB_LOOKUP_SKIP_NEIGH },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_fib_lookup },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	/* clang-format on */
	unsigned char pkt[14 + 20] = { [12] = 0x08, [14] = 0x45 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);
	int fd, err;

	_Static_assert(sizeof(struct bpf_fib_lookup) == 64, "the probe zeroes 64 bytes");
	fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "probe_fib", "GPL", prog,
			   sizeof(prog) / sizeof(prog[0]), NULL);
	if (fd < 0)
		return -errno;
	err = bpf_prog_test_run_opts(fd, &opts) ? -errno : 0;
	close(fd);
	if (err)
		return err;
	return (int)opts.retval != -EINVAL;
}

/*
 * What bpfredir cannot do without and some kernels still in use lack, each with the first
 * kernel that has it. Without them the verifier refuses the programs with little more than
 * "Invalid argument"; load asks first and names what is missing. (Debian 11's 5.10 lacks
 * both; it has no netns guard either: no netfilter links, and sk_lookup without the 16-bit
 * remote_port and ingress_ifindex the sk_lookup guard reads, 5.19 and 5.17.)
 */
struct probe_need {
	enum bpf_prog_type type;
	enum bpf_func_id helper;
	const char *what;
	const char *since; /* the first Linux release that has it */
};

static const struct probe_need probe_needs[] = {
	{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval,
	  "bpf_set_retval in socket hooks (--hide-local's ECONNREFUSED)", "5.18" },
	{ BPF_PROG_TYPE_XDP, BPF_FUNC_xdp_load_bytes, "bpf_xdp_load_bytes (XDP mode's --reject)",
	  "5.18" },
};

/* The first need this kernel does not meet, or NULL. A probe that cannot run counts as met:
 * the load that follows then says what is wrong. */
static inline const struct probe_need *probe_unmet_need(void)
{
	size_t i;

	for (i = 0; i < sizeof(probe_needs) / sizeof(probe_needs[0]); i++)
		if (!libbpf_probe_bpf_helper(probe_needs[i].type, probe_needs[i].helper, NULL))
			return &probe_needs[i];
	return NULL;
}

#endif /* BPFREDIR_PROBE_H */
