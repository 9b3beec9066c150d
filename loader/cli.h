/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Declared verbs: each verb is a table of typed options and a handler; one parser reads the
 * command line into the verb's config struct, one dispatcher does what the verb needs (root,
 * the pin dir, its lock, the maps) before the handler, and --help is written from the table. */
#ifndef BPFREDIR_CLI_H
#define BPFREDIR_CLI_H

#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include "core/maps.h"

enum opt_type {
	OPT_T_FLAG,	/* bool */
	OPT_T_PORT,	/* __u16, 1-65535 */
	OPT_T_PROTO,	/* __u8, tcp or udp */
	OPT_T_ADDR,	/* __u8[BPFREDIR_ADDR_LEN], a unicast address */
	OPT_T_OPT_PATH, /* const char *: --opt=PATH, --opt PATH, or --opt alone (NULL) */
	OPT_T_UINT,	/* __u32, min-max */
	OPT_T_STRING,	/* const char * */
	OPT_T_STRINGS,	/* const char *[max], their number in the int at count_at */
	OPT_T_ENUM,	/* unsigned int: the value of the choice named */
	OPT_T_ONE_OF, /* unsigned int: one flag of a group sets it to value; a second is refused */
};

struct opt_choice {
	const char *name;
	unsigned int value;
};

struct opt {
	const char *name; /* --name; NULL: a positional argument */
	char short_name;  /* -c, or 0 */
	enum opt_type type;
	size_t offset;			  /* of the value in the verb's config */
	size_t seen;			  /* 1 + offset of a bool set when given; 0: none */
	const char *arg;		  /* the value's name in the synopsis and messages */
	const char *synopsis;		  /* the synopsis text when not "[--name ARG]"; "": none */
	unsigned long min, max;		  /* OPT_T_UINT; max: OPT_T_STRINGS */
	size_t count_at;		  /* OPT_T_STRINGS */
	const struct opt_choice *choices; /* OPT_T_ENUM, ended by a NULL name */
	unsigned int value;		  /* OPT_T_ONE_OF */
	/* The message when given again (OPT_T_STRINGS: the same value again, a format for it;
	 * OPT_T_ONE_OF: another of its group). */
	const char *clash;
	bool required;
};

#define OPT_POS(cfg_t, field, kind, argname)                                                       \
	{                                                                                          \
		.type = kind, .offset = offsetof(cfg_t, field), .arg = argname                     \
	}
#define OPT_FLAG(cfg_t, field, optname, ...)                                                       \
	{                                                                                          \
		.name = optname, .type = OPT_T_FLAG, .offset = offsetof(cfg_t, field), __VA_ARGS__ \
	}
#define OPT_VAL(cfg_t, field, kind, optname, argname)                                              \
	{                                                                                          \
		.name = optname, .type = kind, .offset = offsetof(cfg_t, field), .arg = argname    \
	}
/* An option whose value comes with a bool saying it was given. */
#define OPT_VAL_SEEN(cfg_t, field, seen_field, kind, optname, argname)                             \
	{                                                                                          \
		.name = optname, .type = kind, .offset = offsetof(cfg_t, field),                   \
		.seen = offsetof(cfg_t, seen_field) + 1, .arg = argname                            \
	}
/* One flag of a group writing value to one field; extra designators may follow. */
#define OPT_ONE_OF(cfg_t, field, optname, val, clash_msg, ...)                                     \
	{                                                                                          \
		.name = optname, .type = OPT_T_ONE_OF, .offset = offsetof(cfg_t, field),           \
		.value = val, .clash = clash_msg, __VA_ARGS__                                      \
	}
#define OPT_UINT(cfg_t, field, optname, argname, lo, hi, ...)                                      \
	{                                                                                          \
		.name = optname, .type = OPT_T_UINT, .offset = offsetof(cfg_t, field),             \
		.arg = argname, .min = lo, .max = hi, __VA_ARGS__                                  \
	}
#define OPT_END                                                                                    \
	{                                                                                          \
	}
#define opt_is_end(o) (!(o)->name && !(o)->arg)

/* What a verb needs done before its handler runs. */
enum cmd_need {
	NEED_ROOT = 1 << 0,   /* the capabilities bpfredir uses */
	NEED_PINS = 1 << 1,   /* the pin dir open for reading, not locked */
	NEED_LOCK = 1 << 2,   /* the pin dir open and locked */
	NEED_LOADED = 1 << 3, /* and an instance loaded there */
	NEED_MAPS = 1 << 4,   /* and its maps open */
	NEED_CREATE = 1 << 5, /* the pin dir made if missing, locked, and what an interrupted
			       * load left cleaned up (pins_create) */
};

/* What the dispatcher set up for the handler. */
struct instance {
	struct pinned_maps maps; /* NEED_MAPS */
};

struct cmd {
	const char *name;
	/* Its handler, options (ended by OPT_END), config and needs. */
	int (*func)(struct instance *in, const void *cfg);
	const struct opt *opts;
	const void *defaults; /* cfg_size bytes, or NULL for zeros */
	size_t cfg_size;
	unsigned int needs;
	/* Constraints between options, checked before the needs: -1 to go on, or an exit code
	 * after a usage error. */
	int (*check)(const void *cfg);
	/* Options of a sibling verb, refused as "does not apply" rather than unknown. */
	const struct opt *sibling_opts;
	const char *not_loaded_hint; /* after "not loaded at DIR" */
	const char *doc;	     /* the description, after the synopsis made from opts */
};

extern const struct cmd cmd_load, cmd_add, cmd_del, cmd_list, cmd_stats, cmd_status, cmd_attach,
	cmd_detach, cmd_apply, cmd_watch, cmd_unload, cmd_oci_hook, cmd_import, cmd_verify;

/* The verb's synopsis ("add PUBLIC_PORT ... [--pin-dir DIR]", wrapped) then its description. */
void cmd_print_usage(FILE *out, const struct cmd *cmd);
/* The option getopt last stopped at, as the user wrote it. */
const char *bad_option(char **argv);
/* Parse argv into cfg: -1 to go on, or the exit code (after --help or a usage error). */
int cmd_parse(const struct cmd *cmd, int argc, char **argv, void *cfg);
/* What a verb's needs ask for, set up (-1 to go on, or the exit code after the error is
 * said) and torn down: cmd_dispatch does it before and after each handler; a handler that
 * learns its pin dir from its input (oci-hook) does it itself. */
int instance_open(unsigned int needs, const char *not_loaded_hint, struct instance *in);
void instance_close(unsigned int needs, struct instance *in);
/* Parse, set up the needs, run the handler, tear down. */
int cmd_dispatch(const struct cmd *cmd, int argc, char **argv);

#endif /* BPFREDIR_CLI_H */
