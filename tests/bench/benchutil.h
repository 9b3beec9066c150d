/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the benchmark tools share: a one-line message on stderr and exit 1, a monotonic
 * clock, and numbers from the command line.
 *
 * Needs _GNU_SOURCE (program_invocation_short_name) defined before the first include.
 */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <linux/types.h>

/* "TOOL: message" on stderr, exit status 1; run.sh takes the TOOL: prefix off again. */
static inline void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static inline void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A whole number in decimal, or die naming WHAT (strtoul alone would take "-1" or " 1"). */
static inline unsigned long number_arg(const char *what, const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || errno || *end)
		die("%s: not a number: %s", what, s);
	return v;
}

static inline unsigned long positive_arg(const char *what, const char *s)
{
	unsigned long v = number_arg(what, s);

	if (!v)
		die("%s: not a positive number: %s", what, s);
	return v;
}

static inline __u16 port_arg(const char *what, const char *s)
{
	unsigned long v = number_arg(what, s);

	if (!v || v > 65535)
		die("%s: not a port (1 to 65535): %s", what, s);
	return v;
}

#endif /* BENCHUTIL_H */
