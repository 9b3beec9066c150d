// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* apply's file format (see config.h): its words, each directive, and the checks between its
 * rules; the file itself is read in config_file.c. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include "config.h"
#include "iface.h"

#define MAX_TOKENS 16

struct token {
	const char *text;
	int col;
};

int config_error(const struct config *cfg, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int config_error(const struct config *cfg, int line, int col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail("%s:%d:%d: %s", cfg->path, line, col, msg);
}

/* A word of the file for a message: " 'word'" (with the space), at most SHOWN_MAX bytes of
 * it with "..." where cut (of a path, its end is shown: the part that tells paths apart),
 * bytes other than printable ASCII as \xNN so nothing reaches the terminal as a control
 * sequence; or "" when not every user could read the file (readable_by_all). Whoever may
 * run 'apply -f FILE' as root (sudo) could otherwise read the first words of any file root
 * can, such as the first line of /etc/shadow, which is root's and not group-writable like a
 * config. Line and column still say where the error is, for whoever may read the file.
 * Returns one of a few static buffers in turn, so that a message can show two words. */
static const char *shown_part(const struct config *cfg, const char *word, bool path)
{
	static char bufs[3][sizeof(" '...'...") + 4 * SHOWN_MAX];
	static int next;
	char *buf = bufs[next++ % 3], quoted[4 * SHOWN_MAX + 4];
	bool cut;

	if (cfg->hide_words)
		return "";
	cut = quote_word(word, SHOWN_MAX, path, quoted);
	sprintf(buf, " '%s'%s", quoted, cut ? "..." : "");
	return buf;
}

const char *shown(const struct config *cfg, const char *word)
{
	return shown_part(cfg, word, false);
}

const char *shown_path(const struct config *cfg, const char *path)
{
	return shown_part(cfg, path, true);
}

/* Split a line in place; a '#' outside a token starts a comment. */
static int tokenize(char *line, struct token *tokens, int max)
{
	int n = 0;
	char *p = line;

	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (n == max)
			return -1;
		tokens[n].text = p;
		tokens[n].col = p - line + 1;
		n++;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static int parse_interface(struct config *cfg, int line, const struct token *t, int n)
{
	int i;

	if ((n != 2 && n != 4) || (n == 4 && strcmp(t[2].text, "mode")))
		return config_error(cfg, line, t[n > 2 ? 2 : 0].col,
				    "expected 'interface NAME [mode tc|xdp|xdp-generic]'");
	if (strlen(t[1].text) >= IF_NAMESIZE)
		return config_error(cfg, line, t[1].col, "interface name%s too long (at most %d)",
				    shown(cfg, t[1].text), IF_NAMESIZE - 1);
	for (i = 0; i < cfg->n_ifaces; i++)
		if (!strcmp(cfg->ifnames[i], t[1].text))
			return config_error(cfg, line, t[1].col, "interface%s already at line %d",
					    shown(cfg, t[1].text), cfg->if_lines[i]);
	if (cfg->n_ifaces == MAX_IFACES)
		return config_error(cfg, line, t[0].col, "more than %d interfaces", MAX_IFACES);
	for (i = IFACE_TC; n == 4 && i <= IFACE_XDP_GENERIC; i++)
		if (!strcmp(t[3].text, iface_mode_name(i)))
			break;
	if (n == 4 && i > IFACE_XDP_GENERIC)
		return config_error(cfg, line, t[3].col,
				    "invalid mode%s (expected tc, xdp or xdp-generic)",
				    shown(cfg, t[3].text));
	cfg->if_modes[cfg->n_ifaces] = n == 4 ? i : IFACE_TC;
	snprintf(cfg->ifnames[cfg->n_ifaces], IF_NAMESIZE, "%s", t[1].text);
	cfg->if_cols[cfg->n_ifaces] = t[1].col;
	cfg->if_lines[cfg->n_ifaces++] = line;
	return 0;
}

static int parse_cgroup(struct config *cfg, int line, const struct token *t, int n)
{
	int i = cfg->n_cgroups;

	if (n > 2)
		return config_error(cfg, line, t[2].col, "expected 'cgroup [PATH]'");
	if (i == MAX_CGROUPS)
		return config_error(cfg, line, t[0].col, "more than %d cgroups", MAX_CGROUPS);
	if (n == 2 && t[1].text[0] != '/')
		return config_error(cfg, line, t[1].col, "cgroup path%s is not absolute",
				    shown_path(cfg, t[1].text));
	cfg->cgroup_root[i] = n == 1;
	/* Fits: parse_config refused longer words. */
	snprintf(cfg->cgroups[i], PATH_MAX, "%s", n == 2 ? t[1].text : "");
	cfg->cgroup_lines[i] = line;
	cfg->cgroup_cols[i] = t[n - 1].col;
	cfg->n_cgroups++;
	return 0;
}

static int parse_flows(struct config *cfg, int line, const struct token *t, int n)
{
	if (n != 2)
		return config_error(cfg, line, t[0].col, "expected 'flows N'");
	if (cfg->flows_line)
		return config_error(cfg, line, t[0].col, "flows already set at line %d",
				    cfg->flows_line);
	if (!scan_uint(t[1].text, BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS, &cfg->flows))
		return config_error(cfg, line, t[1].col, "invalid flows%s (expected %u-%u%s)",
				    shown(cfg, t[1].text), BPFREDIR_MIN_FLOWS, BPFREDIR_MAX_FLOWS,
				    number_hint(t[1].text));
	cfg->flows_line = line;
	cfg->flows_col = t[1].col;
	return 0;
}

static int parse_steering(struct config *cfg, int line, const struct token *t, int n)
{
	if (n != 2 || (strcmp(t[1].text, "socket") && strcmp(t[1].text, "packet")))
		return config_error(cfg, line, t[n > 1].col, "expected 'steering packet|socket'");
	if (cfg->steering_line)
		return config_error(cfg, line, t[0].col, "steering already set at line %d",
				    cfg->steering_line);
	cfg->steer_socket = !strcmp(t[1].text, "socket");
	cfg->steering_line = line;
	cfg->steering_col = t[1].col;
	return 0;
}

/* Options after the ports: proto tcp|udp, no-hide, hide-local, reject, addr IP; each at
 * most once. */
static int parse_rule_options(struct config *cfg, int line, const struct token *t, int n,
			      struct config_rule *r)
{
	struct rule_spec *spec = &r->spec;
	bool seen_proto = false;
	unsigned int problems;
	const char *why;
	int i;

	for (i = 3; i < n; i++) {
		const char *opt = t[i].text;
		bool takes_value = !strcmp(opt, "proto") || !strcmp(opt, "addr");

		if (takes_value && i + 1 == n)
			return config_error(cfg, line, t[i].col, "'%s' needs a value", opt);
		if (!strcmp(opt, "proto") && !seen_proto) {
			if (!scan_proto(t[++i].text, &spec->proto))
				return config_error(cfg, line, t[i].col,
						    "invalid protocol%s (expected %s)",
						    shown(cfg, t[i].text), PROTO_FORM);
			seen_proto = true;
		} else if (!strcmp(opt, "addr") && !spec->has_addr) {
			if (!scan_addr(t[++i].text, spec->addr))
				return config_error(cfg, line, t[i].col,
						    "invalid address%s (expected %s)",
						    shown(cfg, t[i].text), ADDR_FORM);
			why = addr_not_unicast(spec->addr);
			if (why)
				return config_error(cfg, line, t[i].col,
						    "address%s is %s; a rule's address must be "
						    "unicast",
						    shown(cfg, t[i].text), why);
			spec->has_addr = true;
		} else if (!strcmp(opt, "no-hide") && !spec->no_hide) {
			spec->no_hide = true;
		} else if (!strcmp(opt, "hide-local") && !spec->hide_local) {
			spec->hide_local = true;
		} else if (!strcmp(opt, "reject") && !spec->reject) {
			spec->reject = true;
		} else if (takes_value || !strcmp(opt, "no-hide") || !strcmp(opt, "hide-local") ||
			   !strcmp(opt, "reject")) {
			return config_error(cfg, line, t[i].col, "'%s' given twice", opt);
		} else {
			return config_error(cfg, line, t[i].col,
					    "unknown rule option%s (expected proto, no-hide, "
					    "hide-local, reject or addr)",
					    shown(cfg, opt));
		}
	}
	rule_spec_check(spec, &problems);
	if (problems & RULE_HIDE_LOCAL_OPEN)
		return config_error(cfg, line, t[0].col, "'hide-local' cannot go with 'no-hide'");
	if (problems & RULE_REJECT_OPEN)
		return config_error(cfg, line, t[0].col, "'reject' cannot go with 'no-hide'");
	return 0;
}

/* The rule being parsed (spec, at line) against an earlier one of the file. */
static int check_rule_pair(struct config *cfg, int line, const struct token *t,
			   const struct config_rule *o, const struct rule_spec *spec)
{
	if (o->spec.proto == spec->proto && o->spec.public_port == spec->public_port)
		return config_error(cfg, line, t[1].col, "port %u/%s already has a rule at line %d",
				    spec->public_port, proto_name(spec->proto), o->line);
	switch (rule_conflict(&o->spec, spec)) {
	case RULES_FIT:
		break;
	case RULES_PORT_CROSSED:
		return config_error(cfg, line, t[1].col,
				    "a port cannot be public in one rule and the target of another "
				    "(line %d)",
				    o->line);
	case RULES_HIDING_DIFFERS:
		return config_error(cfg, line, t[2].col,
				    "target %u/%s is %s by this rule but %s by the rule at line "
				    "%d; rules sharing a target must agree on no-hide, hide-local "
				    "and reject",
				    spec->target_port, proto_name(spec->proto),
				    rule_hiding_name(spec), rule_hiding_name(&o->spec), o->line);
	}
	return 0;
}

static int parse_rule(struct config *cfg, int line, const struct token *t, int n)
{
	struct config_rule *r = &cfg->rules[cfg->n_rules];
	unsigned int problems;
	size_t i;

	if (n < 3)
		return config_error(cfg, line, t[0].col, "expected 'rule PUBLIC TARGET [options]'");
	if (cfg->n_rules == BPFREDIR_MAX_RULES)
		return config_error(cfg, line, t[0].col, "more than %d rules", BPFREDIR_MAX_RULES);
	memset(r, 0, sizeof(*r));
	for (i = 1; i < 3; i++)
		if (!scan_port(t[i].text, i == 1 ? &r->spec.public_port : &r->spec.target_port))
			return config_error(cfg, line, t[i].col, "invalid port%s (expected %s%s)",
					    shown(cfg, t[i].text), PORT_FORM,
					    number_hint(t[i].text));
	r->spec.proto = IPPROTO_TCP;
	rule_spec_check(&r->spec, &problems);
	if (problems & RULE_SAME_PORTS)
		return config_error(cfg, line, t[2].col, "public and target port are both %u",
				    r->spec.public_port);
	r->line = line;
	if (parse_rule_options(cfg, line, t, n, r))
		return EXIT_FAIL;
	for (i = 0; i < cfg->n_rules; i++)
		if (check_rule_pair(cfg, line, t, &cfg->rules[i], &r->spec))
			return EXIT_FAIL;
	cfg->n_rules++;
	return 0;
}

static int parse_line(struct config *cfg, int line, char *text)
{
	static const struct {
		const char *name;
		int (*parse)(struct config *cfg, int line, const struct token *t, int n);
	} directives[] = {
		{ "interface", parse_interface }, { "cgroup", parse_cgroup },
		{ "flows", parse_flows },	  { "steering", parse_steering },
		{ "rule", parse_rule },
	};
	struct token tokens[MAX_TOKENS];
	size_t i;
	int n;

	n = tokenize(text, tokens, MAX_TOKENS);
	if (n < 0)
		return config_error(cfg, line, 1, "more than %d words", MAX_TOKENS);
	/* No word may be cut short anywhere later: a cgroup path cut at PATH_MAX was the
	 * cgroup2 root once, every process on the host. */
	for (i = 0; i < (size_t)n; i++)
		if (strlen(tokens[i].text) >= PATH_MAX)
			return config_error(cfg, line, tokens[i].col,
					    "word of %zu bytes; at most %d", strlen(tokens[i].text),
					    PATH_MAX - 1);
	if (!n)
		return 0;
	for (i = 0; i < sizeof(directives) / sizeof(directives[0]); i++)
		if (!strcmp(tokens[0].text, directives[i].name))
			return directives[i].parse(cfg, line, tokens, n);
	return config_error(cfg, line, tokens[0].col,
			    "unknown directive%s (expected interface, cgroup, flows, steering or "
			    "rule)",
			    shown(cfg, tokens[0].text));
}

int parse_config(struct config *cfg)
{
	char *text, *p, *end, *eol, *nul;
	int line = 0, ret;
	size_t size, len;

	ret = read_config(cfg, &text, &size);
	if (ret)
		return ret;
	end = text + size;
	for (p = text; !ret && p < end; p = eol + 1) {
		line++;
		eol = memchr(p, '\n', end - p);
		if (!eol)
			eol = end;
		len = eol - p;
		nul = memchr(p, '\0', len);
		if (len > CONFIG_MAX_LINE) {
			ret = config_error(cfg, line, CONFIG_MAX_LINE + 1,
					   "line longer than %d bytes", CONFIG_MAX_LINE);
		} else if (nul) { /* it would end the line there, unseen */
			ret = config_error(cfg, line, nul - p + 1, "NUL byte in the line");
		} else {
			*eol = '\0';
			ret = parse_line(cfg, line, p);
		}
	}
	free(text);
	if (!ret && !cfg->n_ifaces && !cfg->n_cgroups && !cfg->allow_empty)
		ret = fail("%s names no interface and no cgroup, so no rule would act; "
			   "--allow-empty applies it anyway",
			   cfg->path);
	return ret;
}
