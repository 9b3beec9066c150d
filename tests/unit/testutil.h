/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Small pieces the unit tests share. */
#ifndef BPFREDIR_TESTUTIL_H
#define BPFREDIR_TESTUTIL_H

#include <stdarg.h>
#include <stdio.h>

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

#endif /* BPFREDIR_TESTUTIL_H */
