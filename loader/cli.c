// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The parser, the help and the dispatcher of the declared verbs (cli.h). Options go through
 * getopt_long, built from the verb's table, so the command line reads as it always has. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "loader.h"
#include "cli.h"

#define MAX_OPTS 32
/* getopt values: an option of the verb, of its sibling, or common to all. */
#define VAL_OWN 0x100
#define VAL_SIBLING 0x200
#define VAL_PIN_DIR 0x300
/* Synopsis lines stay under 100 columns with "bpfredir " before them. */
#define SYNOPSIS_WIDTH 99

const char *bad_option(char **argv)
{
	static char short_opt[3] = "-?";
	const char *arg = optind > 0 ? argv[optind - 1] : "";

	if (!strncmp(arg, "--", 2))
		return arg;
	if (optopt && optopt < 0x100) {
		short_opt[1] = optopt;
		return short_opt;
	}
	return arg;
}

/* --opt=PATH, --opt PATH, or --opt alone (NULL). */
static const char *optional_path_arg(int argc, char **argv)
{
	if (optarg)
		return optarg;
	if (optind < argc && argv[optind][0] != '-')
		return argv[optind++];
	return NULL;
}

static int has_arg(const struct opt *o)
{
	if (o->type == OPT_T_FLAG || o->type == OPT_T_ONE_OF)
		return no_argument;
	return o->type == OPT_T_OPT_PATH ? optional_argument : required_argument;
}

static bool declares(const struct opt *opts, const char *name)
{
	for (; opts && !opt_is_end(opts); opts++)
		if (opts->name && !strcmp(opts->name, name))
			return true;
	return false;
}

/* getopt_long's tables for a verb: its own options, its sibling's, then the common ones. */
static void build_getopt(const struct cmd *cmd, struct option *lo, char *so)
{
	const struct opt *o;
	int n = 0, i;

	*so++ = ':';
	for (i = 0, o = cmd->opts; !opt_is_end(o); i++, o++) {
		if (!o->name)
			continue;
		lo[n++] = (struct option){ o->name, has_arg(o), NULL, VAL_OWN + i };
		if (!o->short_name)
			continue;
		*so++ = o->short_name;
		if (has_arg(o) != no_argument)
			*so++ = ':';
		if (has_arg(o) == optional_argument)
			*so++ = ':';
	}
	for (i = 0, o = cmd->sibling_opts; o && !opt_is_end(o); i++, o++)
		if (o->name && !declares(cmd->opts, o->name))
			lo[n++] = (struct option){ o->name, has_arg(o), NULL, VAL_SIBLING + i };
	lo[n++] = (struct option){ "pin-dir", required_argument, NULL, VAL_PIN_DIR };
	lo[n++] = (struct option){ "verbose", no_argument, NULL, 'v' };
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){};
	strcpy(so, "vh");
}

static int store_uint(const struct opt *o, const char *text, __u32 *field)
{
	unsigned long val;

	if (!scan_uint(text, o->min, o->max, &val))
		return usage_error("invalid --%s '%s' (expected %lu-%lu%s)", o->name, text, o->min,
				   o->max, number_hint(text));
	*field = val;
	return 0;
}

static int store_enum(const struct opt *o, const char *text, unsigned int *field)
{
	const struct opt_choice *c;
	char expected[128] = "";
	size_t len = 0;

	for (c = o->choices; c->name; c++) {
		if (!strcmp(c->name, text)) {
			*field = c->value;
			return 0;
		}
		len += snprintf(expected + len, sizeof(expected) - len, "%s%s",
				c == o->choices ? ""
				: c[1].name	? ", "
						: " or ",
				c->name);
	}
	return usage_error("invalid --%s '%s' (expected %s)", o->name, text, expected);
}

static int store_strings(const struct opt *o, const char *text, void *cfg)
{
	const char **list = (const char **)((char *)cfg + o->offset);
	int *count = (int *)((char *)cfg + o->count_at), i;

	if (*count == (int)o->max)
		return usage_error("at most %lu --%s options", o->max, o->name);
	for (i = 0; i < *count; i++)
		if (!strcmp(list[i], text))
			return usage_error(o->clash, text);
	list[(*count)++] = text;
	return 0;
}

/* One value into the config: -1 to go on, or EXIT_USAGE after the message. */
static int store(const struct opt *o, const char *text, void *cfg)
{
	char *field = (char *)cfg + o->offset;
	int err = 0;

	switch (o->type) {
	case OPT_T_FLAG:
		*(bool *)field = true;
		break;
	case OPT_T_PORT:
		err = parse_port(text, (__u16 *)field);
		break;
	case OPT_T_PROTO:
		err = parse_proto(text, (__u8 *)field);
		break;
	case OPT_T_ADDR:
		err = parse_addr(text, (__u8 *)field);
		break;
	case OPT_T_OPT_PATH:
		*(const char **)field = text;
		break;
	case OPT_T_UINT:
		err = store_uint(o, text, (__u32 *)field);
		break;
	case OPT_T_STRING:
		*(const char **)field = text;
		break;
	case OPT_T_STRINGS:
		err = store_strings(o, text, cfg);
		break;
	case OPT_T_ENUM:
		err = store_enum(o, text, (unsigned int *)field);
		break;
	case OPT_T_ONE_OF:
		if (*(unsigned int *)field)
			err = usage_error("%s", o->clash);
		else
			*(unsigned int *)field = o->value;
		break;
	}
	if (err)
		return EXIT_USAGE;
	if (o->seen)
		*(bool *)((char *)cfg + o->seen - 1) = true;
	return -1;
}

/* The common options, and getopt's complaints: -1 to go on, or the exit code. */
static int common(const struct cmd *cmd, int val, char **argv)
{
	switch (val) {
	case 'v':
		verbose = true;
		log_set_verbose(true);
		return -1;
	case VAL_PIN_DIR:
		if (pin_dir_problem(optarg))
			return usage_error("--pin-dir '%s' %s", optarg, pin_dir_problem(optarg));
		pin_dir = optarg;
		return -1;
	case 'h':
		printf("Usage: bpfredir ");
		cmd_print_usage(stdout, cmd);
		return EXIT_OK;
	case ':':
		return usage_error("option '%s' needs an argument", bad_option(argv));
	default:
		return usage_error("unknown option '%s' (see 'bpfredir %s --help')",
				   bad_option(argv), cmd->name);
	}
}

static int parse_options(const struct cmd *cmd, int argc, char **argv, void *cfg, bool *given)
{
	struct option lo[MAX_OPTS];
	char so[2 * MAX_OPTS];
	const struct opt *o;
	const char *text;
	int val, ret;

	build_getopt(cmd, lo, so);
	while ((val = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		if (val >= VAL_SIBLING && val < VAL_PIN_DIR)
			return usage_error("option '%s' does not apply to '%s'", argv[optind - 1],
					   cmd->name);
		if (val < VAL_OWN || val >= VAL_SIBLING) {
			for (o = cmd->opts; !opt_is_end(o) && o->short_name != val; o++)
				;
			if (opt_is_end(o) || !val) {
				ret = common(cmd, val, argv);
				if (ret >= 0)
					return ret;
				continue;
			}
			val = VAL_OWN + (o - cmd->opts);
		}
		o = &cmd->opts[val - VAL_OWN];
		if (given[val - VAL_OWN] && o->clash && o->type != OPT_T_STRINGS &&
		    o->type != OPT_T_ONE_OF)
			return usage_error("%s", o->clash);
		given[val - VAL_OWN] = true;
		text = optarg;
		if (o->type == OPT_T_OPT_PATH)
			text = optional_path_arg(argc, argv);
		ret = store(o, text, cfg);
		if (ret >= 0)
			return ret;
	}
	return -1;
}

/* Positional arguments, after the options as getopt moved them. */
static int parse_positionals(const struct cmd *cmd, int argc, char **argv, void *cfg)
{
	const struct opt *pos[MAX_OPTS], *o;
	int n = 0, i, ret;

	for (o = cmd->opts; !opt_is_end(o); o++)
		if (!o->name)
			pos[n++] = o;
	if (!n && optind < argc)
		return usage_error("unexpected argument '%s' (see 'bpfredir %s --help')",
				   argv[optind], cmd->name);
	if (argc - optind < n)
		return usage_error("missing %s (see 'bpfredir %s --help')", pos[argc - optind]->arg,
				   cmd->name);
	if (argc - optind > n)
		return usage_error("unexpected argument '%s'", argv[optind + n]);
	for (i = 0; i < n; i++) {
		ret = store(pos[i], argv[optind + i], cfg);
		if (ret >= 0)
			return ret;
	}
	return -1;
}

int cmd_parse(const struct cmd *cmd, int argc, char **argv, void *cfg)
{
	bool given[MAX_OPTS] = {};
	const struct opt *o;
	int ret, i;

	ret = parse_options(cmd, argc, argv, cfg, given);
	if (ret >= 0)
		return ret;
	ret = parse_positionals(cmd, argc, argv, cfg);
	if (ret >= 0)
		return ret;
	for (i = 0, o = cmd->opts; !opt_is_end(o); i++, o++)
		if (o->required && !given[i])
			return usage_error("--%s is required (see 'bpfredir %s --help')", o->name,
					   cmd->name);
	return cmd->check ? cmd->check(cfg) : -1;
}

/* One item of the synopsis: "PORT", "[--proto tcp|udp]", "--cgroup [PATH]". */
static void synopsis_item(const struct opt *o, char *buf, size_t size)
{
	const char *open = o->required ? "" : "[", *close = o->required ? "" : "]";

	if (o->synopsis)
		snprintf(buf, size, "%s", o->synopsis);
	else if (!o->name)
		snprintf(buf, size, "%s", o->arg);
	else if (o->type == OPT_T_STRINGS)
		snprintf(buf, size, "[--%s %s ...]", o->name, o->arg);
	else if (has_arg(o) == no_argument)
		snprintf(buf, size, "%s--%s%s", open, o->name, close);
	else if (has_arg(o) == optional_argument)
		snprintf(buf, size, "%s--%s [%s]%s", open, o->name, o->arg, close);
	else
		snprintf(buf, size, "%s--%s %s%s", open, o->name, o->arg, close);
}

/* The description, each line indented by two spaces under the synopsis. */
static void print_doc(FILE *out, const char *doc)
{
	const char *nl;

	for (; *doc; doc = nl + 1) {
		nl = strchr(doc, '\n');
		if (!nl) {
			fprintf(out, "  %s\n", doc);
			return;
		}
		fprintf(out, "  %.*s\n", (int)(nl - doc), doc);
	}
}

void cmd_print_usage(FILE *out, const struct cmd *cmd)
{
	size_t col = strlen("bpfredir ") + strlen(cmd->name);
	const struct opt *o = cmd->opts;
	char item[128];
	bool done = false;

	fputs(cmd->name, out);
	while (!done) {
		if (opt_is_end(o)) {
			snprintf(item, sizeof(item), "[--pin-dir DIR]");
			done = true;
		} else {
			synopsis_item(o++, item, sizeof(item));
			if (!*item)
				continue;
		}
		if (col + 1 + strlen(item) > SYNOPSIS_WIDTH) {
			fputs("\n   ", out);
			col = 3;
		}
		col += fprintf(out, " %s", item);
	}
	fputc('\n', out);
	print_doc(out, cmd->doc);
}

int instance_open(unsigned int needs, const char *not_loaded_hint, struct instance *in)
{
	int err;

	if ((needs & NEED_ROOT) && require_root())
		return EXIT_FAIL;
	if (needs & NEED_CREATE)
		return pins_create() ? EXIT_FAIL : -1;
	if (!(needs & (NEED_PINS | NEED_LOCK)))
		return -1;
	err = pins_open(needs & NEED_LOCK ? PINS_WRITE : PINS_READ);
	if (err && err != -ENOENT) {
		pins_close();
		return EXIT_FAIL;
	}
	if (err || ((needs & NEED_LOADED) && !is_loaded())) {
		pins_close();
		return fail("not loaded at %s%s", pin_dir, not_loaded_hint ?: "");
	}
	if ((needs & NEED_MAPS) &&
	    (needs & NEED_LOCK ? open_pinned_maps(&in->maps) : open_pinned_maps_read(&in->maps))) {
		pins_close();
		return EXIT_FAIL;
	}
	return -1;
}

void instance_close(unsigned int needs, struct instance *in)
{
	if (needs & NEED_MAPS)
		close_pinned_maps(&in->maps);
	if (needs & (NEED_PINS | NEED_LOCK | NEED_CREATE))
		pins_close();
}

int cmd_dispatch(const struct cmd *cmd, int argc, char **argv)
{
	struct instance in = {};
	void *cfg;
	int ret;

	cfg = calloc(1, cmd->cfg_size ?: 1);
	if (!cfg)
		return fail("out of memory");
	if (cmd->defaults)
		memcpy(cfg, cmd->defaults, cmd->cfg_size);
	ret = cmd_parse(cmd, argc, argv, cfg);
	if (ret < 0)
		ret = instance_open(cmd->needs, cmd->not_loaded_hint, &in);
	if (ret < 0) {
		ret = cmd->func(&in, cfg);
		instance_close(cmd->needs, &in);
	}
	free(cfg);
	return ret;
}
