/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Small pieces the unit tests share: failure reasons, skips, and the probes of the kernel
 * features some cases need beyond what bpfredir itself requires. */
#ifndef BPFREDIR_TESTUTIL_H
#define BPFREDIR_TESTUTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

/* The TC programs' verdict for a packet they let go on, rewritten or not: TC_ACT_UNSPEC
 * (-1), TCX_NEXT, as BPF_PROG_TEST_RUN's u32 retval. */
#define TC_PASS 0xffffffffU

/* Write why a check failed into why[n]; returns -1 for the caller to pass up. */
static inline int fail(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* A case this kernel cannot run, said as tests/run.sh counts it: `SKIP: NAME: needs FEATURE`.
 * Only for a kernel feature the case needs and bpfredir does not; what bpfredir needs fails. */
static inline void skip(const char *feature, const char *name_fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline void skip(const char *feature, const char *name_fmt, ...)
{
	va_list ap;

	printf("SKIP: ");
	va_start(ap, name_fmt);
	vprintf(name_fmt, ap);
	va_end(ap);
	printf(": needs %s\n", feature);
}

#define SKB_CHECKSUM_COMPLETE_FEATURE "BPF_F_TEST_SKB_CHECKSUM_COMPLETE (kernel 6.11)"

/* Does BPF_PROG_TEST_RUN take BPF_F_TEST_SKB_CHECKSUM_COMPLETE? Older kernels refuse the flag
 * with EINVAL. A program that only returns runs once without the flag and once with it;
 * anything else that goes wrong is an error (-errno), not a missing feature. */
static inline int probe_skb_checksum_complete(char *why, size_t n)
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

	fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "probe_csum", "GPL", ret0, 2, NULL);
	if (fd < 0) {
		err = -errno;
		fail(why, n, "probe: cannot load a program: %s", strerror(-err));
		return err;
	}
	err = bpf_prog_test_run_opts(fd, &opts) ? -errno : 0;
	if (err) {
		fail(why, n, "probe: BPF_PROG_TEST_RUN without flags: %s", strerror(-err));
		close(fd);
		return err;
	}
	opts.flags = BPF_F_TEST_SKB_CHECKSUM_COMPLETE;
	err = bpf_prog_test_run_opts(fd, &opts) ? -errno : 0;
	close(fd);
	if (err == -EINVAL)
		return 0;
	if (err)
		fail(why, n, "probe: BPF_F_TEST_SKB_CHECKSUM_COMPLETE: %s", strerror(-err));
	return err ?: 1;
}

#endif /* BPFREDIR_TESTUTIL_H */
