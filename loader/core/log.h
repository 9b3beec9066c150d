/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The core's one way to say something: pr_warn for what went wrong in detail (the caller still
 * gets -errno and picks the words the user sees), pr_debug for what only -v shows. Whoever links
 * the core chooses where it goes with log_set_print(); by default warnings go to stderr. */
#ifndef BPFREDIR_CORE_LOG_H
#define BPFREDIR_CORE_LOG_H

#include <stdarg.h>

enum log_level {
	BPFREDIR_LOG_WARN,
	BPFREDIR_LOG_INFO,
	BPFREDIR_LOG_DEBUG,
};

typedef void (*log_print_fn)(enum log_level level, const char *fmt, va_list ap);

/* NULL: back to the default (warnings and info on stderr, no debug). */
void log_set_print(log_print_fn fn);
void pr_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_warn(...) pr_log(BPFREDIR_LOG_WARN, __VA_ARGS__)
#define pr_info(...) pr_log(BPFREDIR_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) pr_log(BPFREDIR_LOG_DEBUG, __VA_ARGS__)

#endif /* BPFREDIR_CORE_LOG_H */
