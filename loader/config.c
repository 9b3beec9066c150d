// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * apply -f FILE: bring the host to exactly the file's interfaces, cgroups and rules. The
 * rule set is built aside and swapped in with one map update, so no packet sees half of
 * the old set and half of the new; interfaces and cgroups are attached before the swap and
 * detached after it. A second apply of the same file changes nothing.
 *
 * The format, one directive a line, '#' starts a comment:
 *   interface NAME [mode tc|xdp|xdp-generic]
 *   cgroup [PATH]             (no PATH: the cgroup2 root)
 *   flows N                   (connection-table size, used when apply loads)
 *   rule PUBLIC TARGET [proto tcp|udp] [no-hide] [hide-local] [reject] [addr IP]
 */
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
#include "loader.h"
#include "iface.h"

#define MAX_TOKENS 16
/* What apply reads at most. A file of BPFREDIR_MAX_RULES long rules with comments fits in
 * the size; a line holds any path the kernel takes (PATH_MAX - 1 bytes) with its directive
 * and a comment. Both are checked as the file is read, not only against its size. */
#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_LINE (2 * PATH_MAX)
/* How much of a word a message repeats (see shown()). */
#define SHOWN_MAX 32

struct config_rule {
	struct rule_spec spec;
	int line;
};

struct config {
	const char *path;
	bool allow_empty; /* --allow-empty */
	bool hide_words;  /* not every user could read the file: messages never repeat its words */
	char ifnames[MAX_IFACES][IF_NAMESIZE];
	int if_lines[MAX_IFACES], if_cols[MAX_IFACES];
	enum iface_mode if_modes[MAX_IFACES];
	int n_ifaces;
	char cgroups[MAX_CGROUPS][PATH_MAX];
	bool cgroup_root[MAX_CGROUPS];
	int cgroup_lines[MAX_CGROUPS], cgroup_cols[MAX_CGROUPS];
	int n_cgroups;
	unsigned long flows;
	int flows_line, flows_col;
	struct config_rule rules[BPFREDIR_MAX_RULES];
	size_t n_rules;
};

struct token {
	const char *text;
	int col;
};

static int config_error(const struct config *cfg, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int config_error(const struct config *cfg, int line, int col, const char *fmt, ...)
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
	char *buf = bufs[next++ % 3], *out = buf;
	size_t len = strlen(word), from = 0, i;

	if (cfg->hide_words)
		return "";
	if (path && len > SHOWN_MAX)
		from = len - SHOWN_MAX;
	out += sprintf(out, " '%s", from ? "..." : "");
	for (i = from; i < len && i - from < SHOWN_MAX; i++) {
		unsigned char c = word[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			*out++ = c;
		else
			out += sprintf(out, "\\x%02x", c);
	}
	sprintf(out, "'%s", i < len ? "..." : "");
	return buf;
}

static const char *shown(const struct config *cfg, const char *word)
{
	return shown_part(cfg, word, false);
}

static const char *shown_path(const struct config *cfg, const char *path)
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

static const char *file_kind(mode_t mode)
{
	return S_ISDIR(mode)	? "a directory"
	       : S_ISFIFO(mode) ? "a FIFO"
	       : S_ISCHR(mode)	? "a character device"
	       : S_ISBLK(mode)	? "a block device"
	       : S_ISSOCK(mode) ? "a socket"
				: "not a regular file";
}

/* apply runs as root and the file decides what is hidden, so only a regular file root owns
 * and only root can write is read. The checks are on the file opened, which is what is
 * read: a symlink is followed, and can only lead to such a file (say /etc/bpfredir.conf
 * into a configuration-management tree); whoever can repoint it could as well have named
 * another such file. The directories on the way are not checked. */
static int check_file(const struct config *cfg, const struct stat *st)
{
	mode_t writable = st->st_mode & (S_IWGRP | S_IWOTH);
	char why[128];
	int n = 0;

	if (!S_ISREG(st->st_mode))
		return fail("%s is %s; apply reads only a regular file", cfg->path,
			    file_kind(st->st_mode));
	if (st->st_uid != 0)
		n = snprintf(why, sizeof(why), "owned by uid %u, not root", (unsigned)st->st_uid);
	if (writable)
		snprintf(why + n, sizeof(why) - n, "%smode %04o lets %s write it",
			 n ? ", and " : "", (unsigned)(st->st_mode & 07777),
			 writable == (S_IWGRP | S_IWOTH) ? "group and others"
			 : writable == S_IWGRP		 ? "its group"
							 : "others");
	if (st->st_uid != 0 || writable)
		return fail("%s: %s; apply reads only a file that root owns and only root can "
			    "write",
			    cfg->path, why);
	if (st->st_size > CONFIG_MAX_BYTES)
		return fail("%s is %lld bytes; a config file may have at most %d", cfg->path,
			    (long long)st->st_size, CONFIG_MAX_BYTES);
	return 0;
}

/* Could every user read the file opened as fd? Its mode must let others read it, and every
 * directory on its real path (as the kernel resolved it, symlinks and all) let them through:
 * a 0644 file in /root is no more readable than a 0600 one. When in doubt, no. */
static bool readable_by_all(int fd, const struct stat *st)
{
	char link[32], path[PATH_MAX], *slash;
	struct stat dir;
	ssize_t n;

	if (!(st->st_mode & S_IROTH))
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/')
		return false;
	path[n] = '\0';
	do {
		slash = strrchr(path, '/');
		slash[slash == path] = '\0'; /* "/a/b" to "/a", "/a" to "/" */
		if (stat(path, &dir) || !(dir.st_mode & S_IXOTH))
			return false;
	} while (slash != path);
	return true;
}

/* The whole file, checked (check_file) and NUL-terminated, in *text. Every read error is
 * one: a file cut short by an error must not pass for a shorter file. */
static int read_config(struct config *cfg, char **text, size_t *len)
{
	size_t got = 0;
	struct stat st;
	char *buf = NULL;
	int fd, flags, ret;
	ssize_t n;

	/* O_NONBLOCK: opening a FIFO waits for a writer otherwise, forever; O_NOCTTY: a
	 * terminal never becomes our controlling one. Then fstat, before a single read, so
	 * nothing but a regular file is read (/dev/zero would be read until memory runs out). */
	fd = open(cfg->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fail("cannot read %s: %s", cfg->path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = fail("cannot read %s: %s", cfg->path, strerror(errno));
		goto out;
	}
	ret = check_file(cfg, &st);
	if (ret)
		goto out;
	cfg->hide_words = !readable_by_all(fd, &st);
	/* Back to blocking reads, the normal way for a regular file: a filesystem that honours
	 * O_NONBLOCK (FUSE, say) could otherwise answer EAGAIN in the middle of the file. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)) {
		ret = fail("cannot read %s: %s", cfg->path, strerror(errno));
		goto out;
	}
	/* One byte over the cap tells a file that grew past it since fstat. */
	buf = malloc(CONFIG_MAX_BYTES + 2);
	if (!buf) {
		ret = fail("cannot read %s: %s", cfg->path, strerror(ENOMEM));
		goto out;
	}
	while (got <= CONFIG_MAX_BYTES) {
		n = read(fd, buf + got, CONFIG_MAX_BYTES + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = fail("cannot read %s: %s", cfg->path, strerror(errno));
			goto out;
		}
		if (!n)
			break;
		got += n;
	}
	if (got > CONFIG_MAX_BYTES) {
		ret = fail("%s grew past %d bytes while being read; a config file may have at most "
			   "%d",
			   cfg->path, CONFIG_MAX_BYTES, CONFIG_MAX_BYTES);
		goto out;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

static int parse_line(struct config *cfg, int line, char *text)
{
	static const struct {
		const char *name;
		int (*parse)(struct config *cfg, int line, const struct token *t, int n);
	} directives[] = {
		{ "interface", parse_interface },
		{ "cgroup", parse_cgroup },
		{ "flows", parse_flows },
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
			    "unknown directive%s (expected interface, cgroup, flows or rule)",
			    shown(cfg, tokens[0].text));
}

static int parse_config(struct config *cfg)
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

/* The file's interfaces and cgroups as the kernel knows them. */
struct resolved {
	int ifindexes[MAX_IFACES];
	__u64 cgroup_ids[MAX_CGROUPS];
	int cgroup_fds[MAX_CGROUPS];
	char cgroup_paths[MAX_CGROUPS][PATH_MAX];
};

static int resolve(const struct config *cfg, struct resolved *res)
{
	const char *path;
	char why[160];
	int i, j, err;

	for (i = 0; i < cfg->n_ifaces; i++) {
		res->ifindexes[i] = if_nametoindex(cfg->ifnames[i]);
		if (!res->ifindexes[i])
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "unknown interface%s", shown(cfg, cfg->ifnames[i]));
		/* Another name of one interface (an altname, 'ip link property add'), which
		 * would be attached twice. */
		for (j = 0; j < i; j++)
			if (res->ifindexes[j] == res->ifindexes[i])
				return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
						    "interface%s is the interface%s of line %d "
						    "(ifindex %d)",
						    shown(cfg, cfg->ifnames[i]),
						    shown(cfg, cfg->ifnames[j]), cfg->if_lines[j],
						    res->ifindexes[i]);
		if (iface_check(res->ifindexes[i], cfg->if_modes[i] != IFACE_TC, why, sizeof(why)))
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "interface%s %s", shown(cfg, cfg->ifnames[i]), why);
	}
	for (i = 0; i < cfg->n_cgroups; i++) {
		path = cfg->cgroup_root[i] ? NULL : cfg->cgroups[i];
		err = cgroup_open(path, res->cgroup_paths[i], PATH_MAX, &res->cgroup_fds[i],
				  &res->cgroup_ids[i]);
		if (err && !path)
			return config_error(cfg, cfg->cgroup_lines[i], cfg->cgroup_cols[i],
					    "no cgroup2 mount found in /proc/self/mounts");
		if (err)
			return config_error(cfg, cfg->cgroup_lines[i], cfg->cgroup_cols[i],
					    "cgroup%s: %s", shown_path(cfg, path),
					    err == -EMEDIUMTYPE ? "not a cgroup2 directory"
								: strerror(-err));
		for (j = 0; j < i; j++)
			if (res->cgroup_ids[j] == res->cgroup_ids[i])
				return config_error(cfg, cfg->cgroup_lines[i], cfg->cgroup_cols[i],
						    "cgroup%s already at line %d",
						    shown_path(cfg, res->cgroup_paths[i]),
						    cfg->cgroup_lines[j]);
	}
	return 0;
}

/* What is attached now, read back from links/ and tc_legacy, and what the live set lets act;
 * the two differ only after an interrupted apply, attach or detach. */
struct current {
	int ifindexes[MAX_IFACES];
	int n_ifaces;
	/* Pinned, but the attachment is gone: its interface was deleted, or (legacy tc)
	 * someone deleted the clsact qdisc and our filters with it. */
	int stale_ifindexes[MAX_IFACES];
	int n_stale;
	__u64 cgroup_ids[MAX_CGROUPS];
	int n_cgroups;
	int active_ifindexes[BPFREDIR_MAX_IFACES];
	int n_active_ifaces;
	__u64 active_cgroup_ids[BPFREDIR_MAX_CGROUPS];
	int n_active_cgroups;
};

static bool has_int(const int *list, int n, int value)
{
	while (n--)
		if (list[n] == value)
			return true;
	return false;
}

static void add_current_iface(int map_fd, int ifindex, void *arg)
{
	struct current *cur = arg;

	if (has_int(cur->ifindexes, cur->n_ifaces, ifindex) ||
	    has_int(cur->stale_ifindexes, cur->n_stale, ifindex))
		return;
	if (!iface_attached(ifindex)) {
		if (cur->n_stale < MAX_IFACES)
			cur->stale_ifindexes[cur->n_stale++] = ifindex;
	} else if (cur->n_ifaces < MAX_IFACES) {
		cur->ifindexes[cur->n_ifaces++] = ifindex;
	}
}

static void read_active(struct current *cur, int set_fd)
{
	struct redir_policy_key key, *prev = NULL;

	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind == POLICY_IFACE && cur->n_active_ifaces < BPFREDIR_MAX_IFACES)
			cur->active_ifindexes[cur->n_active_ifaces++] = key.id;
		else if (key.kind == POLICY_CGROUP && cur->n_active_cgroups < BPFREDIR_MAX_CGROUPS)
			cur->active_cgroup_ids[cur->n_active_cgroups++] = key.id;
	}
}

static int read_current(struct current *cur, int set_fd)
{
	struct pin_link link;
	struct dirent *de;
	DIR *dir;
	int fd;

	memset(cur, 0, sizeof(*cur));
	dir = pin_opendir("links");
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (!pin_link_parse(de->d_name, &link))
			continue;
		if (link.kind == LINK_TCX_INGRESS || link.kind == LINK_XDP_NATIVE ||
		    link.kind == LINK_XDP_GENERIC)
			add_current_iface(-1, link.where, cur);
		else if (link.kind == LINK_CGROUP && link.hook == sock_hooks[0].suffix &&
			 cur->n_cgroups < MAX_CGROUPS)
			cur->cgroup_ids[cur->n_cgroups++] = link.where;
	}
	closedir(dir);
	fd = open_tc_legacy_map();
	if (fd >= 0) {
		tc_legacy_each(fd, add_current_iface, cur);
		close(fd);
	}
	read_active(cur, set_fd);
	return 0;
}

static bool has_u64(const __u64 *list, int n, __u64 value)
{
	while (n--)
		if (list[n] == value)
			return true;
	return false;
}

static void print_rule_change(char sign, const struct redir_policy_key *key,
			      const struct redir_rule *rule)
{
	char addr[INET6_ADDRSTRLEN];

	printf("%c rule %u %u proto %s%s%s%s", sign, ntohs(key->port), ntohs(rule->target_port),
	       proto_name(key->proto), rule->flags & REDIR_F_HIDE ? "" : " no-hide",
	       rule->flags & REDIR_F_HIDE_LOCAL ? " hide-local" : "",
	       rule->flags & REDIR_F_REJECT ? " reject" : "");
	if (rule->flags & REDIR_F_ADDR) {
		format_addr(rule->addr, addr, sizeof(addr));
		printf(" addr %s", addr);
	}
	printf("\n");
}

/* Count (and with print, show) the rule changes from the live set to the file's. */
static int plan_rules(const struct config *cfg, int set_fd, bool print)
{
	struct redir_policy_key key, *prev = NULL;
	struct redir_rule rule;
	int changes = 0;
	size_t i;

	for (i = 0; i < cfg->n_rules; i++) {
		struct redir_policy_key want_key;
		struct redir_rule want;

		rule_spec_entry(&cfg->rules[i].spec, &want_key, &want);
		if (set_fd >= 0 && !bpf_map_lookup_elem(set_fd, &want_key, &rule)) {
			if (!memcmp(&rule, &want, sizeof(rule)))
				continue;
			if (print)
				print_rule_change('-', &want_key, &rule);
			changes++;
		}
		if (print)
			print_rule_change('+', &want_key, &want);
		changes++;
	}
	while (set_fd >= 0 && !bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || bpf_map_lookup_elem(set_fd, &key, &rule))
			continue;
		for (i = 0; i < cfg->n_rules; i++)
			if (cfg->rules[i].spec.proto == key.proto &&
			    cfg->rules[i].spec.public_port == ntohs(key.port))
				break;
		if (i == cfg->n_rules) {
			if (print)
				print_rule_change('-', &key, &rule);
			changes++;
		}
	}
	return changes;
}

static void print_iface_change(char sign, int ifindex, const char *why)
{
	char ifname[IF_NAMESIZE];

	if (!if_indextoname(ifindex, ifname))
		snprintf(ifname, sizeof(ifname), "ifindex %d", ifindex);
	printf("%c interface %s%s\n", sign, ifname, why);
}

/* Print the changes and count them. What is attached but not acting is left over from an
 * interrupted run: acting (if the file wants it) or detaching it is a change too. */
static int plan(const struct config *cfg, const struct resolved *res, const struct current *cur,
		int set_fd)
{
	static const char *const leftover = " (left inert by an interrupted run)";
	int i, changes = 0;
	bool wanted;

	for (i = 0; i < cfg->n_ifaces; i++) {
		bool active =
			has_int(cur->active_ifindexes, cur->n_active_ifaces, res->ifindexes[i]);

		if (active && has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
			continue;
		printf("+ interface %s", cfg->ifnames[i]);
		if (cfg->if_modes[i] != IFACE_TC)
			printf(" mode %s", iface_mode_name(cfg->if_modes[i]));
		printf("%s\n", active ? " (again: its attachment is gone)" : "");
		changes++;
	}
	for (i = 0; i < cur->n_active_ifaces; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->active_ifindexes[i])) {
			print_iface_change('-', cur->active_ifindexes[i], "");
			changes++;
		}
	for (i = 0; i < cur->n_stale; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->stale_ifindexes[i]) &&
		    !has_int(cur->active_ifindexes, cur->n_active_ifaces,
			     cur->stale_ifindexes[i])) {
			print_iface_change('-', cur->stale_ifindexes[i],
					   " (pins of an attachment that is gone)");
			changes++;
		}
	for (i = 0; i < cur->n_ifaces; i++) {
		wanted = has_int(res->ifindexes, cfg->n_ifaces, cur->ifindexes[i]);
		if (!wanted &&
		    !has_int(cur->active_ifindexes, cur->n_active_ifaces, cur->ifindexes[i])) {
			print_iface_change('-', cur->ifindexes[i], leftover);
			changes++;
		}
	}
	for (i = 0; i < cfg->n_cgroups; i++)
		if (!has_u64(cur->active_cgroup_ids, cur->n_active_cgroups, res->cgroup_ids[i])) {
			printf("+ cgroup %s\n", res->cgroup_paths[i]);
			changes++;
		}
	for (i = 0; i < cur->n_active_cgroups; i++)
		if (!has_u64(res->cgroup_ids, cfg->n_cgroups, cur->active_cgroup_ids[i])) {
			printf("- cgroup id %llu\n", (unsigned long long)cur->active_cgroup_ids[i]);
			changes++;
		}
	for (i = 0; i < cur->n_cgroups; i++) {
		wanted = has_u64(res->cgroup_ids, cfg->n_cgroups, cur->cgroup_ids[i]);
		if (!wanted &&
		    !has_u64(cur->active_cgroup_ids, cur->n_active_cgroups, cur->cgroup_ids[i])) {
			printf("- cgroup id %llu%s\n", (unsigned long long)cur->cgroup_ids[i],
			       leftover);
			changes++;
		}
	}
	return changes + plan_rules(cfg, set_fd, true);
}

/* Attach what the file adds; on failure take back what this call attached. */
static int attach_new(const struct config *cfg, const struct resolved *res,
		      const struct current *cur)
{
	int tc_fds[2], sock_fds[N_SOCK_HOOKS], xdp_fd, i, j, err = 0;
	enum attach_mode attach;

	/* Both set every fd to -1 first, so close_fds() below is safe on failure. */
	if (open_pinned_tc_progs(tc_fds) || open_pinned_progs(sock_fds))
		err = fail("cannot open the pinned programs: %s", strerror(errno));
	xdp_fd = open_pinned_prog(XDP_PROG_NAME);
	for (i = 0; i < cfg->n_ifaces && !err; i++) {
		if (has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
			continue;
		/* What is left of an attachment that is gone goes first: it holds the names. An
		 * interface that had legacy tc filters gets them again, not tcx. */
		attach = ATTACH_AUTO;
		if (has_int(cur->stale_ifindexes, cur->n_stale, res->ifindexes[i])) {
			if (tc_legacy_recorded(res->ifindexes[i]))
				attach = ATTACH_TC;
			detach_iface(res->ifindexes[i]);
		}
		if (cfg->if_modes[i] == IFACE_TC)
			err = attach_iface(res->ifindexes[i], cfg->ifnames[i], tc_fds, attach);
		else if (xdp_fd < 0)
			err = fail("cannot open the pinned XDP program: %s (loaded by a build "
				   "without XDP mode; 'bpfredir load' with this build first)",
				   strerror(-xdp_fd));
		else
			err = attach_iface_xdp(res->ifindexes[i], cfg->ifnames[i], tc_fds, xdp_fd,
					       cfg->if_modes[i], attach);
	}
	for (j = 0; j < cfg->n_cgroups && !err; j++)
		if (!has_u64(cur->cgroup_ids, cur->n_cgroups, res->cgroup_ids[j]) &&
		    attach_cgroup(res->cgroup_fds[j], res->cgroup_ids[j], sock_fds))
			err = fail("cannot attach to cgroup %s: %s", res->cgroup_paths[j],
				   strerror(errno));
	if (err) {
		while (i-- > 0)
			if (!has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
				detach_iface(res->ifindexes[i]);
		while (j-- > 0)
			if (!has_u64(cur->cgroup_ids, cur->n_cgroups, res->cgroup_ids[j]))
				detach_cgroup(res->cgroup_ids[j]);
	}
	close_fds(tc_fds, 2);
	close_fds(&xdp_fd, 1);
	close_fds(sock_fds, N_SOCK_HOOKS);
	return err;
}

static void detach_gone(const struct config *cfg, const struct resolved *res,
			const struct current *cur)
{
	int i;

	for (i = 0; i < cur->n_ifaces; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->ifindexes[i]))
			detach_iface(cur->ifindexes[i]);
	for (i = 0; i < cur->n_stale; i++)
		if (!has_int(res->ifindexes, cfg->n_ifaces, cur->stale_ifindexes[i]))
			detach_iface(cur->stale_ifindexes[i]);
	for (i = 0; i < cur->n_cgroups; i++)
		if (!has_u64(res->cgroup_ids, cfg->n_cgroups, cur->cgroup_ids[i]))
			detach_cgroup(cur->cgroup_ids[i]);
}

/* Build the file's rule set aside, with its interfaces and cgroups, and put it live in one
 * update. */
static int swap_rules(const struct config *cfg, const struct resolved *res,
		      const struct pinned_maps *maps)
{
	int set_fd = ruleset_create(), err = 0, i;
	size_t r;

	if (set_fd < 0)
		return fail("cannot create a rule set: %s", strerror(-set_fd));
	for (r = 0; r < cfg->n_rules && !err; r++)
		err = ruleset_put(set_fd, &cfg->rules[r].spec);
	for (i = 0; i < cfg->n_ifaces && !err; i++)
		err = ruleset_enable(set_fd, POLICY_IFACE, res->ifindexes[i], true);
	for (i = 0; i < cfg->n_cgroups && !err; i++)
		err = ruleset_enable(set_fd, POLICY_CGROUP, res->cgroup_ids[i], true);
	if (!err)
		err = ruleset_derive(set_fd, maps->port_stats, maps->port_interest);
	if (!err)
		err = ruleset_install(maps->policy, set_fd);
	close(set_fd);
	if (err)
		return fail("cannot switch to the new rule set: %s", strerror(-err));
	return 0;
}

/* An attached interface keeps its mode: changing it means detaching one ingress before
 * attaching the other, so it takes two applies (without the interface, then with it). */
static int check_modes(const struct config *cfg, const struct resolved *res,
		       const struct current *cur)
{
	int i, mode;

	for (i = 0; i < cfg->n_ifaces; i++) {
		if (!has_int(cur->ifindexes, cur->n_ifaces, res->ifindexes[i]))
			continue;
		mode = iface_mode_of(res->ifindexes[i]);
		if (mode >= 0 && mode != (int)cfg->if_modes[i])
			return config_error(cfg, cfg->if_lines[i], cfg->if_cols[i],
					    "interface %s is attached in %s mode; apply without it "
					    "first to change the mode",
					    cfg->ifnames[i], iface_mode_name(mode));
	}
	return 0;
}

/* What the file cannot do to a loaded host. Resize its connection table: that would drop
 * every connection, and 'load --flows' refuses it the same way; a warning instead would let
 * 'systemctl reload' succeed with the file not applied. And, unless --allow-empty, take away
 * every rule: an empty or truncated file, one reload away, would unhide every port. */
static int check_live(const struct config *cfg, const struct pinned_maps *maps)
{
	struct redir_policy_key key, *prev = NULL;
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int live_rules = 0;

	if (cfg->flows_line) {
		if (bpf_map_get_info_by_fd(maps->flows, &info, &len))
			return fail("cannot read the loaded connection table: %s", strerror(errno));
		if (info.max_entries != cfg->flows)
			return config_error(cfg, cfg->flows_line, cfg->flows_col,
					    "flows %lu, but the loaded connection table has %u "
					    "entries; 'bpfredir unload' first to change it",
					    cfg->flows, info.max_entries);
	}
	if (cfg->n_rules || cfg->allow_empty)
		return 0;
	while (!bpf_map_get_next_key(maps->rules, prev, &key)) {
		prev = &key;
		live_rules += key.kind == POLICY_PUBLIC;
	}
	if (live_rules)
		return fail("%s has no rule: applying it would remove the %d rule%s in force; "
			    "--allow-empty applies it anyway",
			    cfg->path, live_rules, live_rules == 1 ? "" : "s");
	return 0;
}

static int apply_loaded(const struct config *cfg, const struct resolved *res, bool dry_run)
{
	struct pinned_maps maps;
	struct current cur;
	int changes, ret, err, upgraded = 0;

	if (open_pinned_maps(&maps))
		return EXIT_FAIL;
	err = read_current(&cur, maps.rules);
	if (err) {
		close_pinned_maps(&maps);
		return fail("cannot read %s: %s", pin_display("links", NULL), strerror(-err));
	}
	if (check_modes(cfg, res, &cur) || check_live(cfg, &maps)) {
		close_pinned_maps(&maps);
		return EXIT_FAIL;
	}
	/* Then, before the file's changes: a newer build (a package upgrade, then the service's
	 * reload or restart) takes over in place, so applying never needs an unload. */
	if (!dry_run) {
		upgraded = upgrade_programs();
		if (upgraded < 0) {
			close_pinned_maps(&maps);
			return EXIT_FAIL;
		}
		if (upgraded > 0)
			printf("programs replaced by this build, maps kept\n");
	}
	changes = plan(cfg, res, &cur, maps.rules);
	if (!changes && !upgraded)
		printf("nothing to change\n");
	ret = 0;
	/* Attached is not acting: the new attachments do nothing until the switch, the dropped
	 * ones nothing after it, so the switch is the one moment the host changes. */
	if (changes && !dry_run) {
		ret = attach_new(cfg, res, &cur);
		failpoint("apply-attached");
		if (!ret)
			ret = swap_rules(cfg, res, &maps);
		failpoint("apply-switched");
		if (!ret)
			detach_gone(cfg, res, &cur);
	}
	if (!ret && !dry_run) {
		err = sync_local_addrs(maps.local_addrs, maps.addr_holders);
		if (err)
			ret = fail("cannot record local addresses: %s", local_addrs_error(err));
	}
	if (!ret && !dry_run)
		guard_warn(maps.policy);
	close_pinned_maps(&maps);
	return ret;
}

static int apply_fresh(const struct config *cfg, const struct resolved *res, bool dry_run)
{
	struct load_request req = { .flows =
					    cfg->flows_line ? cfg->flows : BPFREDIR_DEFAULT_FLOWS };
	struct pinned_maps maps;
	int i, ret;

	printf("+ load %s\n", pin_dir);
	for (i = 0; i < cfg->n_ifaces; i++)
		printf("+ interface %s%s%s\n", cfg->ifnames[i],
		       cfg->if_modes[i] != IFACE_TC ? " mode " : "",
		       cfg->if_modes[i] != IFACE_TC ? iface_mode_name(cfg->if_modes[i]) : "");
	for (i = 0; i < cfg->n_cgroups; i++)
		printf("+ cgroup %s\n", cfg->cgroup_root[i] ? "(cgroup2 root)" : cfg->cgroups[i]);
	plan_rules(cfg, -1, true);
	if (dry_run)
		return 0;
	for (i = 0; i < cfg->n_ifaces; i++) {
		req.if_modes[req.n_ifaces] = cfg->if_modes[i];
		req.ifnames[req.n_ifaces++] = cfg->ifnames[i];
	}
	for (i = 0; i < cfg->n_cgroups; i++)
		req.cgroups[req.n_cgroups++] = cfg->cgroup_root[i] ? NULL : cfg->cgroups[i];
	ret = load_locked(&req);
	if (ret)
		return ret;
	ret = open_pinned_maps(&maps) ? EXIT_FAIL : swap_rules(cfg, res, &maps);
	if (!ret) {
		guard_warn(maps.policy);
		close_pinned_maps(&maps);
	}
	if (ret)
		remove_pins(false); /* nothing half-applied: the load goes too */
	return ret;
}

int do_apply(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "allow-empty", no_argument, NULL, OPT_ALLOW_EMPTY },
		COMMON_LONG_OPTS,
		{},
	};
	static struct config cfg;
	static struct resolved res;
	bool dry_run = false;
	int opt, ret, i, err;

	while ((opt = getopt_long(argc, argv, ":f:" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		if (opt == 'f') {
			cfg.path = optarg;
		} else if (opt == OPT_DRY_RUN) {
			dry_run = true;
		} else if (opt == OPT_ALLOW_EMPTY) {
			cfg.allow_empty = true;
		} else {
			ret = common_opt(opt, argv);
			if (ret >= 0)
				return ret;
		}
	}
	if (extra_args(argc, argv) >= 0)
		return EXIT_USAGE;
	if (!cfg.path)
		return usage_error("-f FILE is required (see 'bpfredir apply --help')");
	for (i = 0; i < MAX_CGROUPS; i++)
		res.cgroup_fds[i] = -1;
	ret = parse_config(&cfg);
	if (!ret)
		ret = require_root();
	if (!ret)
		ret = resolve(&cfg, &res);
	if (ret)
		goto out;
	/* A dry run only reads: it neither makes the pin dir nor cleans up after an interrupted
	 * run (it takes no lock, so it may see another command's work half done). */
	err = pins_open(dry_run ? PINS_READ : PINS_CREATE);
	if (err && !(dry_run && err == -ENOENT)) {
		ret = EXIT_FAIL;
		goto out;
	}
	ret = is_loaded() ? apply_loaded(&cfg, &res, dry_run) : apply_fresh(&cfg, &res, dry_run);
out:
	for (i = 0; i < cfg.n_cgroups; i++)
		if (res.cgroup_fds[i] >= 0)
			close(res.cgroup_fds[i]);
	pins_close();
	return ret;
}
