// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Someone else's TC programs for the integration tests (tests/bpf/foreign.bpf.c): each
 * `attach` loads one instance, with its own watched ports and verdict, attaches it to a tcx
 * hook at the head or the tail of the chain, or as a direct-action cls_bpf filter under
 * clsact, and pins what keeps it and its counters under a bpffs directory of the test's.
 *
 *   foreign attach DIR --dev IF --hook tcx-ingress|tcx-egress|tc-ingress|tc-egress
 *                  [--first | --last] [--prio N] [--verdict next|pass|drop] [--ports P,...]
 *   foreign counts DIR     the counters as JSON: {"packets":N,"dport":{"P":N},"sport":{..}}
 *   foreign detach DIR --dev IF --hook HOOK [--prio N]
 *   foreign probe tcx      exit 0 when this kernel has tcx, 1 when it has not
 *
 * IF is looked up in the calling network namespace. A tcx instance lives as long as DIR/link
 * (removing the pin detaches it); a cls_bpf filter until detach or its namespace goes.
 * Errors: one line on stderr; exit 1, or 2 for a usage error.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "foreign.skel.h"

#define FOREIGN_PORTS 4 /* as in foreign.bpf.c */
#define TC_HANDLE 1

enum hook { HOOK_TCX_INGRESS, HOOK_TCX_EGRESS, HOOK_TC_INGRESS, HOOK_TC_EGRESS };

static const char *const hook_names[] = { "tcx-ingress", "tcx-egress", "tc-ingress", "tc-egress" };

struct args {
	const char *dir;
	int ifindex;
	int hook; /* enum hook, or -1 */
	bool first;
	__u32 prio;
	int verdict;
	__u16 ports[FOREIGN_PORTS];
};

static int usage(const char *why)
{
	fprintf(stderr, "foreign: %s (see tests/tools/foreign.c)\n", why);
	return 2;
}

static int error(const char *what, const char *detail)
{
	fprintf(stderr, "foreign: %s: %s\n", what, detail);
	return 1;
}

static int parse_ports(const char *text, __u16 ports[FOREIGN_PORTS])
{
	char *end;
	int n = 0;

	memset(ports, 0, FOREIGN_PORTS * sizeof(ports[0]));
	for (;;) {
		unsigned long port = strtoul(text, &end, 10);

		if (end == text || !port || port > 65535 || n == FOREIGN_PORTS)
			return -1;
		ports[n++] = port;
		if (!*end)
			return 0;
		if (*end != ',')
			return -1;
		text = end + 1;
	}
}

/* Options after DIR; returns 0, or the exit status of a usage error. */
static int parse_args(int argc, char **argv, struct args *a)
{
	int i, h;

	*a = (struct args){
		.hook = -1, .first = true, .prio = 1, .verdict = TCX_NEXT, .ports = { 8445, 8443 }
	};
	for (i = 0; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(opt, "--first") || !strcmp(opt, "--last")) {
			a->first = !strcmp(opt, "--first");
			continue;
		}
		if (!val)
			return usage("an option without its value");
		i++;
		if (!strcmp(opt, "--dev")) {
			a->ifindex = if_nametoindex(val);
			if (!a->ifindex)
				return error(val, "no such interface in this namespace"), 1;
		} else if (!strcmp(opt, "--hook")) {
			for (h = 0; h < 4 && strcmp(val, hook_names[h]); h++)
				;
			if (h == 4)
				return usage("--hook takes tcx-ingress, tcx-egress, tc-ingress or "
					     "tc-egress");
			a->hook = h;
		} else if (!strcmp(opt, "--prio")) {
			a->prio = strtoul(val, NULL, 10);
			if (!a->prio || a->prio > 0xffff)
				return usage("--prio takes 1 to 65535");
		} else if (!strcmp(opt, "--verdict")) {
			if (!strcmp(val, "next"))
				a->verdict = TCX_NEXT;
			else if (!strcmp(val, "pass"))
				a->verdict = TCX_PASS;
			else if (!strcmp(val, "drop"))
				a->verdict = TCX_DROP;
			else
				return usage("--verdict takes next, pass or drop");
		} else if (!strcmp(opt, "--ports")) {
			if (parse_ports(val, a->ports))
				return usage("--ports takes up to 4 ports, comma-separated");
		} else {
			return usage("unknown option");
		}
	}
	if (!a->ifindex || a->hook < 0)
		return usage("--dev and --hook are required");
	return 0;
}

static void pin_path(char *buf, const char *dir, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
}

static void tc_hook(const struct args *a, struct bpf_tc_hook *hook)
{
	memset(hook, 0, sizeof(*hook));
	hook->sz = sizeof(*hook);
	hook->ifindex = a->ifindex;
	hook->attach_point = a->hook == HOOK_TC_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

static int do_attach(const struct args *a)
{
	bool ingress = a->hook == HOOK_TCX_INGRESS || a->hook == HOOK_TC_INGRESS;
	bool tcx = a->hook == HOOK_TCX_INGRESS || a->hook == HOOK_TCX_EGRESS;
	struct foreign_bpf *skel;
	struct bpf_program *prog;
	char path[PATH_MAX];
	int err, ret = 1;

	if (mkdir(a->dir, 0700))
		return error(a->dir, strerror(errno));
	skel = foreign_bpf__open();
	if (!skel)
		return error("open", strerror(errno));
	memcpy((void *)skel->rodata->watched, a->ports, sizeof(a->ports));
	skel->rodata->verdict = a->verdict;
	prog = ingress ? skel->progs.foreign_in : skel->progs.foreign_eg;
	bpf_program__set_autoload(ingress ? skel->progs.foreign_eg : skel->progs.foreign_in, false);
	err = foreign_bpf__load(skel);
	if (err) {
		error("load", strerror(-err));
		goto out;
	}
	pin_path(path, a->dir, "counts");
	err = bpf_map__pin(skel->maps.counts, path);
	pin_path(path, a->dir, "config");
	if (!err)
		err = bpf_map__pin(skel->maps.rodata, path);
	if (err) {
		error("pin the maps", strerror(-err));
		goto out;
	}
	if (tcx) {
		LIBBPF_OPTS(bpf_tcx_opts, opts, .flags = a->first ? BPF_F_BEFORE : BPF_F_AFTER);
		struct bpf_link *link = bpf_program__attach_tcx(prog, a->ifindex, &opts);

		if (!link) {
			error("tcx attach", strerror(errno));
			goto out;
		}
		pin_path(path, a->dir, "link");
		err = bpf_link__pin(link, path);
		bpf_link__destroy(link); /* the pin holds it */
		if (err) {
			error("pin the link", strerror(-err));
			goto out;
		}
	} else {
		LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog),
			    .handle = TC_HANDLE, .priority = a->prio);
		struct bpf_tc_hook hook;

		tc_hook(a, &hook);
		err = bpf_tc_hook_create(&hook);
		if (err && err != -EEXIST) {
			error("create the clsact qdisc", strerror(-err));
			goto out;
		}
		err = bpf_tc_attach(&hook, &opts);
		if (err) {
			error("cls_bpf attach", strerror(-err));
			goto out;
		}
	}
	ret = 0;
out:
	foreign_bpf__destroy(skel);
	return ret;
}

static int do_detach(const struct args *a)
{
	char path[PATH_MAX];
	int err;

	if (a->hook == HOOK_TCX_INGRESS || a->hook == HOOK_TCX_EGRESS) {
		pin_path(path, a->dir, "link");
		if (unlink(path))
			return error(path, strerror(errno));
		return 0;
	} else {
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = a->prio);
		struct bpf_tc_hook hook;

		tc_hook(a, &hook);
		err = bpf_tc_detach(&hook, &opts);
		return err ? error("cls_bpf detach", strerror(-err)) : 0;
	}
}

static int do_counts(const char *dir)
{
	struct foreign_bpf__rodata config;
	char path[PATH_MAX];
	int counts_fd, config_fd, i;
	__u32 key = 0;
	__u64 n[1 + 2 * FOREIGN_PORTS];

	pin_path(path, dir, "counts");
	counts_fd = bpf_obj_get(path);
	if (counts_fd < 0)
		return error(path, strerror(errno));
	pin_path(path, dir, "config");
	config_fd = bpf_obj_get(path);
	if (config_fd < 0)
		return error(path, strerror(errno));
	if (bpf_map_lookup_elem(config_fd, &key, &config))
		return error("read the config", strerror(errno));
	for (key = 0; key < 1 + 2 * FOREIGN_PORTS; key++)
		if (bpf_map_lookup_elem(counts_fd, &key, &n[key]))
			return error("read the counts", strerror(errno));
	printf("{\"packets\":%llu", (unsigned long long)n[0]);
	for (key = 1; key <= 2; key++) {
		const char *sep = "";

		printf(",\"%s\":{", key == 1 ? "dport" : "sport");
		for (i = 0; i < FOREIGN_PORTS; i++) {
			if (!config.watched[i])
				continue;
			printf("%s\"%u\":%llu", sep, config.watched[i],
			       (unsigned long long)n[key + 2 * i]);
			sep = ",";
		}
		printf("}");
	}
	printf("}\n");
	return 0;
}

/* A tcx query on loopback answers where the kernel has tcx, as the loader asks. */
static int do_probe(const char *feature)
{
	LIBBPF_OPTS(bpf_prog_query_opts, opts);

	if (strcmp(feature, "tcx"))
		return usage("probe takes tcx");
	if (!bpf_prog_query_opts(1, BPF_TCX_INGRESS, &opts))
		return 0;
	if (errno == EINVAL)
		return 1;
	fprintf(stderr, "foreign: tcx query on lo: %s\n", strerror(errno));
	return 2;
}

/* libbpf's warnings only (a failed load's verifier log among them). */
static int print_warnings(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(int argc, char **argv)
{
	struct args a;
	int err;

	libbpf_set_print(print_warnings);
	if (argc < 3)
		return usage("attach, detach, counts or probe, and its argument");
	if (!strcmp(argv[1], "probe"))
		return do_probe(argv[2]);
	if (!strcmp(argv[1], "counts"))
		return do_counts(argv[2]);
	err = parse_args(argc - 3, argv + 3, &a);
	if (err)
		return err;
	a.dir = argv[2];
	if (!strcmp(argv[1], "attach"))
		return do_attach(&a);
	if (!strcmp(argv[1], "detach"))
		return do_detach(&a);
	return usage("attach, detach, counts or probe");
}
