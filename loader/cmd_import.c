// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* import: the iptables recipe bpfredir replaces, read from iptables-save, ip6tables-save or
 * `nft list ruleset` output, printed as the bpfredir.conf that does the same. What it does not
 * translate is printed as a comment saying why (--strict: an error). Reads only text: it needs
 * no root and touches nothing. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include "loader.h"

#define MAX_IMPORTED 256
#define MAX_HOSTS 64
#define MAX_WORDS 64
#define LINE_MAX_LEN 4096

struct import_args {
	const char *file; /* NULL or "-": standard input */
	bool strict;
	const char *hosts[MAX_HOSTS];
	int n_hosts;
};

static const struct opt import_opts[] = {
	{ .name = "file",
	  .short_name = 'f',
	  .type = OPT_T_STRING,
	  .offset = offsetof(struct import_args, file),
	  .synopsis = "[-f FILE]" },
	OPT_FLAG(struct import_args, strict, "strict"),
	{ .name = "host",
	  .type = OPT_T_STRINGS,
	  .offset = offsetof(struct import_args, hosts),
	  .arg = "ADDR",
	  .count_at = offsetof(struct import_args, n_hosts),
	  .max = MAX_HOSTS,
	  .clash = "host address '%s' given twice" },
	OPT_END,
};

/* A redirect found: PREROUTING (external clients) or OUTPUT (local ones). */
struct imported_rule {
	unsigned int public_port, target_port;
	char proto[4];
	char addr[INET6_ADDRSTRLEN]; /* "" when the recipe matched any address */
	char iface[IF_NAMESIZE];
	bool local;
	char cgroup[256]; /* OUTPUT's -m cgroup --path, "" for every process */
	int line;
};

/* A port hidden: a DROP or REJECT of packets to it, direct or through a mark. */
struct imported_hide {
	unsigned int port;
	char proto[4];
	bool reject;
};

struct imported_mark {
	unsigned long mark;
	unsigned int port;
	char proto[4];
};

struct import {
	const char *source;
	/* This host's addresses: a DNAT to one of them is a redirect. */
	__u8 hosts[MAX_HOSTS + 256][BPFREDIR_ADDR_LEN];
	int n_hosts;
	struct imported_rule rules[MAX_IMPORTED];
	int n_rules;
	struct imported_hide hides[MAX_IMPORTED];
	int n_hides;
	struct imported_mark marks[MAX_IMPORTED];
	int n_marks;
	/* filter's mark matches, resolved against the marks once all is read */
	struct {
		unsigned long mark;
		bool reject;
	} mark_drops[MAX_IMPORTED];
	int n_mark_drops;
	char skipped[MAX_IMPORTED][LINE_MAX_LEN + 96];
	int n_skipped;
};

static void skip(struct import *im, int line, const char *text, const char *why)
{
	if (im->n_skipped < MAX_IMPORTED)
		snprintf(im->skipped[im->n_skipped++], sizeof(im->skipped[0]),
			 "%s:%d: not translated (%s): %s", im->source, line, why, text);
}

/* A port as iptables and nft write it: 1-65535; 0 for anything else (a range). */
static unsigned int port_of(const char *text)
{
	unsigned long v;
	char *end;

	if (!text || !*text || strchr(text, ':') || strchr(text, '-') || strchr(text, ','))
		return 0;
	errno = 0;
	v = strtoul(text, &end, 10);
	return errno || *end || !v || v > 65535 ? 0 : v;
}

static int split_words(char *line, char *words[MAX_WORDS])
{
	int n = 0;
	char *p = line;

	while (*p && n < MAX_WORDS) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (*p == '"') {
			words[n++] = ++p;
			while (*p && *p != '"')
				p++;
		} else {
			words[n++] = p;
			while (*p && *p != ' ' && *p != '\t')
				p++;
		}
		if (*p)
			*p++ = '\0';
	}
	return n;
}

/* An address as written (a /32 or /128 prefix only): "" with *ok false otherwise. */
static bool host_addr(const char *text, char *out, size_t size)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	unsigned char bin[16];

	snprintf(buf, sizeof(buf), "%s", text);
	slash = strchr(buf, '/');
	if (slash) {
		if (strcmp(slash + 1, strchr(buf, ':') ? "128" : "32"))
			return false;
		*slash = '\0';
	}
	if (inet_pton(AF_INET, buf, bin) != 1 && inet_pton(AF_INET6, buf, bin) != 1)
		return false;
	return snprintf(out, size, "%.*s", INET6_ADDRSTRLEN - 1, buf) < (int)size;
}

static bool is_host(const struct import *im, const __u8 addr[BPFREDIR_ADDR_LEN])
{
	int i;

	if (addr_is_loopback(addr))
		return true;
	for (i = 0; i < im->n_hosts; i++)
		if (!memcmp(im->hosts[i], addr, BPFREDIR_ADDR_LEN))
			return true;
	return false;
}

/* DNAT's --to-destination (nft's dnat to) ADDR:PORT or [ADDR]:PORT: the port when ADDR is this
 * host's (loopback, the address the rule matched, one of --host or of this machine's
 * interfaces); a DNAT elsewhere is forwarding, not a redirect. */
static unsigned int dnat_local_port(const struct import *im, const char *to, const char *daddr)
{
	__u8 addr[BPFREDIR_ADDR_LEN], matched[BPFREDIR_ADDR_LEN];
	char match[INET6_ADDRSTRLEN];
	__u16 port;

	if (!scan_endpoint(to, addr, &port, NULL))
		return 0;
	if (is_host(im, addr) ||
	    (daddr && host_addr(daddr, match, sizeof(match)) && scan_addr(match, matched) &&
	     !memcmp(addr, matched, sizeof(addr))))
		return port;
	return 0;
}

/* This machine's addresses, and --host's: the recipe is usually imported where it ran. */
static int collect_hosts(struct import *im, const struct import_args *args)
{
	struct ifaddrs *ifas, *ifa;
	int i;

	for (i = 0; i < args->n_hosts; i++)
		if (!scan_addr(args->hosts[i], im->hosts[im->n_hosts++]))
			return usage_error("--host '%s' is not %s", args->hosts[i], ADDR_FORM);
	if (getifaddrs(&ifas))
		return 0; /* then only loopback and the matched address count */
	for (ifa = ifas; ifa && im->n_hosts < (int)(sizeof(im->hosts) / sizeof(im->hosts[0]));
	     ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET)
			addr_map_v4(im->hosts[im->n_hosts++],
				    &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr);
		else if (ifa->ifa_addr->sa_family == AF_INET6)
			memcpy(im->hosts[im->n_hosts++],
			       &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr,
			       BPFREDIR_ADDR_LEN);
	}
	freeifaddrs(ifas);
	return 0;
}

/* A redirect in either syntax, its ports known: its address must be one host's, and one for
 * local clients must go out by lo. daddr_opt and output_chain: the syntax's own words, for
 * the reason a rule is not translated. */
static void add_redirect(struct import *im, struct imported_rule *r, const char *text,
			 const char *daddr, const char *daddr_opt, const char *iif, const char *oif,
			 const char *output_chain)
{
	char why[64];

	if (daddr && !host_addr(daddr, r->addr, sizeof(r->addr))) {
		snprintf(why, sizeof(why), "%s names a network, not one address", daddr_opt);
		return skip(im, r->line, text, why);
	}
	if (!r->local && iif)
		snprintf(r->iface, sizeof(r->iface), "%s", iif);
	if (r->local && oif && strcmp(oif, "lo")) {
		snprintf(why, sizeof(why), "%s to an interface other than lo", output_chain);
		return skip(im, r->line, text, why);
	}
	if (im->n_rules < MAX_IMPORTED)
		im->rules[im->n_rules++] = *r;
}

/* A DROP or REJECT of packets to one port: false when there is no room left for it. */
static bool add_hide(struct import *im, const char *dport, const char *proto, bool reject)
{
	struct imported_hide *h = &im->hides[im->n_hides];

	if (im->n_hides == MAX_IMPORTED)
		return false;
	h->port = port_of(dport);
	h->reject = reject;
	snprintf(h->proto, sizeof(h->proto), "%s", proto);
	im->n_hides++;
	return true;
}

/* One iptables-save rule line (-A ...) of table. */
static void iptables_rule(struct import *im, const char *table, char *text, int line)
{
	char copy[LINE_MAX_LEN], *w[MAX_WORDS];
	const char *chain = NULL, *proto = NULL, *dport = NULL, *target = NULL, *to_ports = NULL;
	const char *to_dest = NULL, *set_mark = NULL, *mark = NULL, *dst = NULL, *in = NULL;
	const char *out = NULL, *cgroup_path = NULL, *why = NULL;
	struct imported_rule r = { .line = line };
	int n, i;

	snprintf(copy, sizeof(copy), "%s", text);
	n = split_words(copy, w);
	for (i = 0; i < n && !why; i++) {
		const char *arg = i + 1 < n ? w[i + 1] : NULL;

		if (!strcmp(w[i], "!"))
			why = "a negated match";
		else if (!strcmp(w[i], "-A"))
			chain = arg, i++;
		else if (!strcmp(w[i], "-p"))
			proto = arg, i++;
		else if (!strcmp(w[i], "--dport") || !strcmp(w[i], "--destination-port"))
			dport = arg, i++;
		else if (!strcmp(w[i], "-d"))
			dst = arg, i++;
		else if (!strcmp(w[i], "-i"))
			in = arg, i++;
		else if (!strcmp(w[i], "-o"))
			out = arg, i++;
		else if (!strcmp(w[i], "-j"))
			target = arg, i++;
		else if (!strcmp(w[i], "--to-ports") || !strcmp(w[i], "--to-port"))
			to_ports = arg, i++;
		else if (!strcmp(w[i], "--to-destination"))
			to_dest = arg, i++;
		else if (!strcmp(w[i], "--set-mark") || !strcmp(w[i], "--set-xmark"))
			set_mark = arg, i++;
		else if (!strcmp(w[i], "--mark"))
			mark = arg, i++;
		else if (!strcmp(w[i], "--path"))
			cgroup_path = arg, i++;
		else if (!strcmp(w[i], "-m") || !strcmp(w[i], "--comment") ||
			 !strcmp(w[i], "--reject-with"))
			i++; /* the match modules name themselves by their options */
		else if (!strcmp(w[i], "-s"))
			why = "a source match: bpfredir's rules do not look at the source";
		else if (!strcmp(w[i], "--dports"))
			why = "multiport: one port to one port only";
		else if (w[i][0] == '-')
			why = "an option bpfredir has no equivalent of";
	}
	if (!why && dport && !port_of(dport))
		why = "a port range: bpfredir redirects one port to one port";
	if (!why && proto && strcmp(proto, "tcp") && strcmp(proto, "udp"))
		why = "a protocol other than tcp and udp";
	if (why)
		return skip(im, line, text, why);
	if (!chain || !target)
		return skip(im, line, text, "no chain or no target");
	snprintf(r.proto, sizeof(r.proto), "%s", proto ? proto : "tcp");

	if (!strcmp(table, "nat") && (!strcmp(target, "REDIRECT") || !strcmp(target, "DNAT"))) {
		bool prerouting = !strcmp(chain, "PREROUTING"), output = !strcmp(chain, "OUTPUT");

		if (!prerouting && !output)
			return skip(im, line, text,
				    "a chain of its own: only PREROUTING and OUTPUT");
		if (!proto || !dport)
			return skip(im, line, text,
				    "no -p tcp|udp --dport: bpfredir moves one port");
		r.public_port = port_of(dport);
		r.target_port = !strcmp(target, "REDIRECT") ? port_of(to_ports)
				: to_dest		    ? dnat_local_port(im, to_dest, dst)
							    : 0;
		if (!r.target_port)
			return skip(im, line, text,
				    !strcmp(target, "DNAT")
					    ? "DNAT to another host or without a port: forwarding"
					    : "--to-ports is not one port");
		r.local = output;
		if (cgroup_path)
			snprintf(r.cgroup, sizeof(r.cgroup), "%s", cgroup_path);
		return add_redirect(im, &r, text, dst, "-d", in, out, "OUTPUT");
	}
	if (!strcmp(table, "mangle") && !strcmp(target, "MARK") && set_mark && dport &&
	    !strcmp(chain, "PREROUTING")) {
		if (im->n_marks < MAX_IMPORTED) {
			im->marks[im->n_marks].mark = strtoul(set_mark, NULL, 0);
			im->marks[im->n_marks].port = port_of(dport);
			snprintf(im->marks[im->n_marks++].proto, 4, "%s", r.proto);
		}
		return;
	}
	if (!strcmp(table, "filter") && !strcmp(chain, "INPUT") &&
	    (!strcmp(target, "DROP") || !strcmp(target, "REJECT"))) {
		if (mark && !dport && im->n_mark_drops < MAX_IMPORTED) {
			im->mark_drops[im->n_mark_drops].mark = strtoul(mark, NULL, 0);
			im->mark_drops[im->n_mark_drops++].reject = !strcmp(target, "REJECT");
			return;
		}
		if (dport && !mark && add_hide(im, dport, r.proto, !strcmp(target, "REJECT")))
			return;
	}
	skip(im, line, text, "not a redirect, a mark of a port, nor a drop of one");
}

/* nft list ruleset: the rules of the nat prerouting/output and filter input hooks, one
 * statement a line, as nft prints them. */
static void nft_rule(struct import *im, const char *hook, char *text, int line)
{
	char copy[LINE_MAX_LEN], *w[MAX_WORDS];
	const char *dport = NULL, *proto = NULL, *daddr = NULL, *iif = NULL, *oif = NULL;
	const char *why = NULL;
	struct imported_rule r = { .line = line };
	const char *dnat_to = NULL;
	unsigned int to = 0;
	bool drop = false, reject = false;
	int n, i;

	snprintf(copy, sizeof(copy), "%s", text);
	n = split_words(copy, w);
	for (i = 0; i < n && !why; i++) {
		const char *arg = i + 1 < n ? w[i + 1] : NULL;

		if ((!strcmp(w[i], "tcp") || !strcmp(w[i], "udp")) && arg &&
		    !strcmp(arg, "dport")) {
			proto = w[i];
			dport = i + 2 < n ? w[i + 2] : NULL;
			i += 2;
		} else if ((!strcmp(w[i], "ip") || !strcmp(w[i], "ip6")) && arg &&
			   !strcmp(arg, "daddr")) {
			daddr = i + 2 < n ? w[i + 2] : NULL;
			i += 2;
		} else if (!strcmp(w[i], "iifname") || !strcmp(w[i], "iif")) {
			iif = arg, i++;
		} else if (!strcmp(w[i], "oifname") || !strcmp(w[i], "oif")) {
			oif = arg, i++;
		} else if (!strcmp(w[i], "redirect") && arg && !strcmp(arg, "to") && i + 2 < n) {
			to = port_of(w[i + 2][0] == ':' ? w[i + 2] + 1 : w[i + 2]);
			i += 2;
		} else if (!strcmp(w[i], "dnat")) {
			/* dnat [ip|ip6] to ADDR:PORT */
			if (arg && (!strcmp(arg, "ip") || !strcmp(arg, "ip6")))
				arg = ++i + 1 < n ? w[i + 1] : NULL;
			if (!arg || strcmp(arg, "to") || i + 2 >= n)
				why = "a dnat without 'to ADDR:PORT'";
			else
				dnat_to = w[i + 2];
			i += 2;
		} else if (!strcmp(w[i], "drop")) {
			drop = true;
		} else if (!strcmp(w[i], "reject")) {
			reject = true;
			i = n; /* reject with ...: its kind does not matter here */
		} else if (!strcmp(w[i], "counter") || !strcmp(w[i], "packets") ||
			   !strcmp(w[i], "bytes") ||
			   (i > 0 &&
			    (!strcmp(w[i - 1], "packets") || !strcmp(w[i - 1], "bytes")))) {
			continue;
		} else if (!strcmp(w[i], "!=")) {
			why = "a negated match";
		} else {
			why = "a statement bpfredir has no equivalent of";
		}
	}
	if (!why && dport && !port_of(dport))
		why = "a port range or set: bpfredir redirects one port to one port";
	if (why)
		return skip(im, line, text, why);
	snprintf(r.proto, sizeof(r.proto), "%s", proto ? proto : "tcp");
	if (dnat_to) {
		to = dnat_local_port(im, dnat_to, daddr);
		if (!to)
			return skip(im, line, text,
				    "dnat to another host or without a port: forwarding");
	}
	if (to && (!strcmp(hook, "prerouting") || !strcmp(hook, "output"))) {
		if (!dport)
			return skip(im, line, text, "no tcp|udp dport: bpfredir moves one port");
		r.public_port = port_of(dport);
		r.target_port = to;
		r.local = !strcmp(hook, "output");
		return add_redirect(im, &r, text, daddr, "daddr", iif, oif, "output");
	}
	if ((drop || reject) && dport && !strcmp(hook, "input") &&
	    add_hide(im, dport, r.proto, reject))
		return;
	skip(im, line, text, "not a redirect nor a drop of a port in a nat or input hook");
}

static int read_input(struct import *im, FILE *in)
{
	char text[LINE_MAX_LEN], table[32] = "", hook[32] = "", *nl, *p;
	bool nft = false;
	int line = 0;

	while (fgets(text, sizeof(text), in)) {
		line++;
		nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		else if (!feof(in))
			return fail("%s:%d: line too long", im->source, line);
		for (p = text; *p == ' ' || *p == '\t'; p++)
			;
		if (!*p || *p == '#')
			continue;
		if (!strncmp(p, "table ", 6)) {
			nft = true;
			continue;
		}
		if (nft) {
			/* chain NAME { type nat hook prerouting priority ...; */
			if (!strncmp(p, "chain ", 6) || !strcmp(p, "}")) {
				hook[0] = '\0';
				continue;
			}
			if (!strncmp(p, "type ", 5)) {
				char *h = strstr(p, " hook ");

				if (h)
					sscanf(h + 6, "%31[a-z]", hook);
				continue;
			}
			if (*hook)
				nft_rule(im, hook, p, line);
			else
				skip(im, line, p, "outside a base chain of a hook");
			continue;
		}
		if (*p == '*') {
			snprintf(table, sizeof(table), "%s", p + 1);
			continue;
		}
		if (*p == ':' || !strcmp(p, "COMMIT"))
			continue;
		if (!strncmp(p, "-A ", 3))
			iptables_rule(im, table, p, line);
		else
			skip(im, line, p, "neither iptables-save nor nft output");
	}
	if (ferror(in))
		return fail("cannot read %s: %s", im->source, strerror(errno));
	return 0;
}

/* How the target port is hidden: a DROP (the default hide), a REJECT, or nothing (no-hide). */
static const char *hide_word(const struct import *im, const struct imported_rule *r)
{
	int i, j;

	for (i = 0; i < im->n_hides; i++)
		if (im->hides[i].port == r->target_port && !strcmp(im->hides[i].proto, r->proto))
			return im->hides[i].reject ? " reject" : "";
	for (i = 0; i < im->n_marks; i++) {
		if (im->marks[i].port != r->target_port || strcmp(im->marks[i].proto, r->proto))
			continue;
		for (j = 0; j < im->n_mark_drops; j++)
			if (im->mark_drops[j].mark == im->marks[i].mark)
				return im->mark_drops[j].reject ? " reject" : "";
	}
	return " no-hide";
}

static bool seen_before(const struct import *im, int upto, const struct imported_rule *r)
{
	int i;

	for (i = 0; i < upto; i++)
		if (im->rules[i].public_port == r->public_port &&
		    !strcmp(im->rules[i].proto, r->proto))
			return true;
	return false;
}

static void print_config(const struct import *im)
{
	char root[PATH_MAX] = "";
	bool every_iface = false;
	int i, j;

	printf("# bpfredir.conf from %s (bpfredir import)\n", im->source);
	for (i = 0; i < im->n_rules; i++) {
		const struct imported_rule *r = &im->rules[i];

		if (r->local)
			continue;
		every_iface |= !*r->iface;
		for (j = 0; j < i; j++)
			if (!im->rules[j].local && !strcmp(im->rules[j].iface, r->iface))
				break;
		if (*r->iface && j == i)
			printf("interface %s\n", r->iface);
	}
	if (every_iface)
		printf("# interface NAME   # the recipe matched every interface: name the ones "
		       "clients come in on\n");
	for (i = 0; i < im->n_rules; i++) {
		const struct imported_rule *r = &im->rules[i];

		if (!r->local)
			continue;
		for (j = 0; j < i; j++)
			if (im->rules[j].local && !strcmp(im->rules[j].cgroup, r->cgroup))
				break;
		if (j < i)
			continue;
		if (!*r->cgroup) {
			printf("cgroup   # every local process (nat OUTPUT -o lo)\n");
		} else {
			cgroup2_root(root, sizeof(root));
			printf("cgroup %s%s%s\n", root, r->cgroup[0] == '/' ? "" : "/", r->cgroup);
		}
	}
	for (i = 0; i < im->n_rules; i++) {
		const struct imported_rule *r = &im->rules[i];
		const char *addr = r->addr;

		if (seen_before(im, i, r))
			continue;
		/* One rule serves external and local clients: where the recipe's redirects of
		 * this port name different addresses (PREROUTING -d, OUTPUT to any), it takes
		 * every address of the host, or the local ones would not be redirected. */
		for (j = i + 1; j < im->n_rules; j++)
			if (im->rules[j].public_port == r->public_port &&
			    !strcmp(im->rules[j].proto, r->proto) &&
			    strcmp(im->rules[j].addr, addr)) {
				printf("# %s:%d and %d: %u redirected for %s and for %s: the rule "
				       "takes every address of this host\n",
				       im->source, r->line, im->rules[j].line, r->public_port,
				       *addr ? addr : "any address",
				       *im->rules[j].addr ? im->rules[j].addr : "any address");
				addr = "";
				break;
			}
		printf("rule %u %u%s%s%s%s\n", r->public_port, r->target_port,
		       strcmp(r->proto, "udp") ? "" : " proto udp", hide_word(im, r),
		       *addr ? " addr " : "", addr);
	}
	for (i = 0; i < im->n_skipped; i++)
		printf("# %s\n", im->skipped[i]);
}

static int do_import(struct instance *in, const void *cfg)
{
	const struct import_args *args = cfg;
	bool from_stdin = !args->file || !strcmp(args->file, "-");
	static struct import im;
	FILE *f;
	int ret, i;

	memset(&im, 0, sizeof(im));
	ret = collect_hosts(&im, args);
	if (ret)
		return ret;
	im.source = from_stdin ? "<stdin>" : args->file;
	f = from_stdin ? stdin : fopen(args->file, "re");
	if (!f)
		return fail("cannot open %s: %s", args->file, strerror(errno));
	ret = read_input(&im, f);
	if (!from_stdin)
		fclose(f);
	if (ret)
		return ret;
	if (!im.n_rules && !im.n_skipped)
		return fail("%s: no rule found (iptables-save, ip6tables-save or nft list ruleset "
			    "output)",
			    im.source);
	if (args->strict && im.n_skipped) {
		for (i = 0; i < im.n_skipped; i++)
			fail("%s", im.skipped[i]);
		return EXIT_FAIL;
	}
	print_config(&im);
	return 0;
}

const struct cmd cmd_import = {
	.name = "import",
	.func = do_import,
	.opts = import_opts,
	.cfg_size = sizeof(struct import_args),
	.doc = "Read iptables-save, ip6tables-save or 'nft list ruleset' output (FILE, or "
	       "standard\n"
	       "input) and print the bpfredir.conf that does the same: nat PREROUTING REDIRECT\n"
	       "(or DNAT to this host: loopback, the -d address, one of this machine's or of\n"
	       "--host ADDR) of one port becomes a rule (with addr from -d, proto from\n"
	       "-p, an interface line from -i), the target's DROP (direct, or mangle MARK with\n"
	       "filter DROP) the default hide, REJECT reject, neither no-hide; nat OUTPUT -o lo\n"
	       "becomes a cgroup line (-m cgroup --path: that cgroup). Each rule it does not\n"
	       "translate is a comment saying why; --strict makes those errors (exit 1).\n",
};
