// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* In the manner of xdp-tools' lib/util/logging.c: one print hook for the whole library. */
#include <stdio.h>
#include "log.h"

static void default_print(enum log_level level, const char *fmt, va_list ap)
{
	if (level == BPFREDIR_LOG_DEBUG)
		return;
	fputs("bpfredir: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static log_print_fn print = default_print;

void log_set_print(log_print_fn fn)
{
	print = fn ? fn : default_print;
}

void pr_log(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print(level, fmt, ap);
	va_end(ap);
}
