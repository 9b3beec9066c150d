// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bpfredir: move the port a service is reached on, and hide the old one, with eBPF. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "cli.h"

bool verbose;
const struct cmd *cur_cmd;

/* In the order --help lists them. */
static const struct cmd *const cmds[] = {
	&cmd_load,   &cmd_add,	  &cmd_del,   &cmd_list,   &cmd_apply,	  &cmd_status, &cmd_stats,
	&cmd_attach, &cmd_detach, &cmd_watch, &cmd_unload, &cmd_oci_hook, &cmd_import, &cmd_verify,
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* "load, add, ..." from the verb table, so messages never miss a verb. */
static const char *verb_list(void)
{
	static char list[256];
	size_t i, len = 0;

	for (i = 0; i < ARRAY_SIZE(cmds) && len < sizeof(list); i++)
		len += snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
				cmds[i]->name);
	return list;
}

static void print_usage(FILE *out)
{
	size_t i;

	fprintf(out, "Usage: bpfredir [-v] VERB [OPTIONS]\n\n");
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		fprintf(out, "bpfredir ");
		cmd_print_usage(out, cmds[i]);
		fputc('\n', out);
	}
	fprintf(out,
		"Common options: --pin-dir DIR (default %s), -v/--verbose (libbpf messages),\n"
		"-h/--help. Exit status: 0 ok, 1 failure, 2 usage error.\n",
		BPFREDIR_DEFAULT_PIN_DIR);
}

static int vmsg(const char *fmt, va_list ap)
{
	fprintf(stderr, "bpfredir%s%s: ", cur_cmd ? " " : "", cur_cmd ? cur_cmd->name : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	return 0;
}

int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	return EXIT_FAIL;
}

int fail_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	return err;
}

int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

/* The core's detail, in the verb's voice; its notes as bpfredir's own (what it did besides
 * the verb, warnings that outlive it); debug lines only with -v. */
static void core_print(enum log_level level, const char *fmt, va_list ap)
{
	if (level == BPFREDIR_LOG_DEBUG && !verbose)
		return;
	if (level != BPFREDIR_LOG_INFO) {
		vmsg(fmt, ap);
		return;
	}
	fputs("bpfredir: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *verb;
	int opt, verb_idx;
	size_t i;

	libbpf_set_print(libbpf_print);
	log_set_print(core_print);
	opterr = 0; /* every message is ours, one line each */
	while ((opt = getopt_long(argc, argv, "+vhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			verbose = true;
			log_set_verbose(true);
			break;
		case 'h':
			print_usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("bpfredir (libbpf %s)\n", libbpf_version_string());
			return EXIT_OK;
		default:
			return usage_error("unknown option '%s' (see 'bpfredir --help')",
					   bad_option(argv));
		}
	}
	if (optind >= argc)
		return usage_error("missing verb; one of %s", verb_list());
	verb_idx = optind;
	verb = argv[verb_idx];
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (strcmp(cmds[i]->name, verb))
			continue;
		cur_cmd = cmds[i];
		optind = 0; /* restart getopt for the verb's own options */
		return cmd_dispatch(cmds[i], argc - verb_idx, argv + verb_idx);
	}
	return usage_error("unknown verb '%s'; one of %s", verb, verb_list());
}
