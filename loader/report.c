// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* list and stats: the rules with their counters, as a table, JSON, live rates or
 * Prometheus text format. Read-only: no lock, nothing changed. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "jsonout.h"

/* The first n of each CPU's stride __u64 counters under key, summed over the CPUs; a missing
 * entry reads as zeros. */
static int sum_per_cpu(int fd, const void *key, __u64 *totals, size_t n, size_t stride)
{
	int n_cpus = libbpf_num_possible_cpus();
	__u64 *values;
	size_t i;
	int cpu;

	memset(totals, 0, n * sizeof(*totals));
	if (n_cpus < 0)
		return n_cpus;
	values = calloc((size_t)n_cpus * stride, sizeof(*values));
	if (!values)
		return -ENOMEM;
	if (!bpf_map_lookup_elem(fd, key, values))
		for (cpu = 0; cpu < n_cpus; cpu++)
			for (i = 0; i < n; i++)
				totals[i] += values[cpu * stride + i];
	free(values);
	return 0;
}

static int cmp_listed(const void *a, const void *b)
{
	const struct listed_rule *x = a, *y = b;

	if (x->key.port != y->key.port)
		return ntohs(x->key.port) - ntohs(y->key.port);
	return x->key.proto - y->key.proto;
}

/* The counters of port/proto: in its slot, or in the port_stats hash of an instance a build
 * from before port_slots loaded (-ENOENT: none, as for a rule added a moment ago). */
static int read_port_counts(const struct pinned_maps *maps, __be16 port, __u8 proto,
			    __u64 counts[PORT_STAT__MAX])
{
	struct redir_port_key key = { .port = port, .proto = proto };

	if (maps->port_counters.slots >= 0)
		return port_counters_read(&maps->port_counters, port, proto, counts);
	return sum_per_cpu(maps->legacy_port_stats, &key, counts, PORT_STAT__MAX,
			   BPFREDIR_PORT_STAT_SLOTS);
}

/* Counters of one rule: translations on its public port, drops on its (hidden) target. A
 * port without counters has counted nothing. */
static int read_rule_counts(const struct pinned_maps *maps, struct listed_rule *r)
{
	__u64 counts[PORT_STAT__MAX];
	int err;

	err = read_port_counts(maps, r->key.port, r->key.proto, r->counts);
	if (err && err != -ENOENT)
		return err;
	r->counts[PORT_STAT_HIDDEN_DROPPED] = 0;
	if (!(r->rule.flags & REDIR_F_HIDE))
		return 0;
	err = read_port_counts(maps, r->rule.target_port, r->key.proto, counts);
	r->counts[PORT_STAT_HIDDEN_DROPPED] = counts[PORT_STAT_HIDDEN_DROPPED];
	return err == -ENOENT ? 0 : err;
}

int take_snapshot(const struct pinned_maps *maps, struct snapshot *snap)
{
	struct redir_policy_key key, *prev = NULL;
	size_t i;
	__u32 idx;
	int err = 0;

	snap->n = 0;
	while (snap->n < BPFREDIR_MAX_RULES && !bpf_map_get_next_key(maps->rules, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC)
			continue;
		snap->rules[snap->n].key = key;
		if (!bpf_map_lookup_elem(maps->rules, &key, &snap->rules[snap->n].rule))
			snap->n++;
	}
	for (i = 0; i < snap->n && !err; i++)
		err = read_rule_counts(maps, &snap->rules[i]);
	for (idx = 0; idx < STAT__MAX && !err; idx++)
		err = sum_per_cpu(maps->stats, &idx, &snap->stats[idx], 1, 1);
	qsort(snap->rules, snap->n, sizeof(snap->rules[0]), cmp_listed);
	return err;
}

static const char *hide_name(const struct redir_rule *rule)
{
	if (rule->flags & REDIR_F_REJECT)
		return rule->flags & REDIR_F_HIDE_LOCAL ? "all,rej" : "rej";
	if (rule->flags & REDIR_F_HIDE_LOCAL)
		return "all";
	return rule->flags & REDIR_F_HIDE ? "yes" : "no";
}

static void rule_addr(const struct redir_rule *rule, char *buf, size_t size)
{
	if (rule->flags & REDIR_F_ADDR)
		format_addr(rule->addr, buf, size);
	else
		snprintf(buf, size, "local");
}

static struct json_object *rule_json(const struct listed_rule *r)
{
	struct json_object *obj = json_object_new_object();
	char addr[INET6_ADDRSTRLEN];

	json_add(obj, "public_port", json_object_new_int(ntohs(r->key.port)));
	json_add(obj, "target_port", json_object_new_int(ntohs(r->rule.target_port)));
	json_add(obj, "proto", json_object_new_string(proto_name(r->key.proto)));
	json_add(obj, "hide", json_object_new_boolean(r->rule.flags & REDIR_F_HIDE));
	json_add(obj, "hide_local", json_object_new_boolean(r->rule.flags & REDIR_F_HIDE_LOCAL));
	json_add(obj, "reject", json_object_new_boolean(r->rule.flags & REDIR_F_REJECT));
	if (r->rule.flags & REDIR_F_ADDR)
		format_addr(r->rule.addr, addr, sizeof(addr));
	json_add(obj, "addr", json_str_or_null(r->rule.flags & REDIR_F_ADDR ? addr : NULL));
	/* socket: its "rewritten" counts connections handed to the target's listener */
	json_add(obj, "steering",
		 json_object_new_string(r->rule.flags & REDIR_F_SOCKET ? "socket" : "packet"));
	json_add(obj, "stats", json_counters(redir_port_stat_names, r->counts, PORT_STAT__MAX));
	return obj;
}

static void snapshot_json(const struct snapshot *snap)
{
	struct json_object *doc = json_object_new_object(), *rules = json_object_new_array();
	size_t i;

	json_add(doc, "pin_dir", json_object_new_string(pin_dir));
	json_add(doc, "rules", rules);
	for (i = 0; i < snap->n; i++)
		json_object_array_add(rules, rule_json(&snap->rules[i]));
	json_add(doc, "stats", json_counters(redir_stat_names, snap->stats, STAT__MAX));
	json_print(doc);
}

/* The counters' names as a column: the longest sets it. */
static int stat_name_width(void)
{
	int s, len, width = 0;

	for (s = 0; s < STAT__MAX; s++) {
		len = strlen(redir_stat_names[s]);
		if (len > width)
			width = len;
	}
	return width;
}

/* Only a rule steered at socket lookup can refuse a connection: the tables show '-' for the
 * others. */
static bool rule_can_refuse(const struct listed_rule *r)
{
	return r->rule.flags & REDIR_F_SOCKET;
}

static void snapshot_plain(const struct snapshot *snap)
{
	char addr[INET6_ADDRSTRLEN];
	char refused[24];
	int s, width = stat_name_width();
	size_t i;

	printf("%-7s %-7s %-5s %-7s %-16s %12s %12s %12s %8s\n", "PUBLIC", "TARGET", "PROTO",
	       "HIDE", "ADDR", "REWRITTEN", "REPLIES", "HIDDEN_DROP", "REFUSED");
	for (i = 0; i < snap->n; i++) {
		const struct listed_rule *r = &snap->rules[i];

		rule_addr(&r->rule, addr, sizeof(addr));
		if (rule_can_refuse(r))
			snprintf(refused, sizeof(refused), "%llu",
				 (unsigned long long)r->counts[PORT_STAT_STEER_REFUSED]);
		else
			snprintf(refused, sizeof(refused), "-");
		printf("%-7u %-7u %-5s %-7s %-16s %12llu %12llu %12llu %8s\n", ntohs(r->key.port),
		       ntohs(r->rule.target_port), proto_name(r->key.proto), hide_name(&r->rule),
		       addr, (unsigned long long)r->counts[PORT_STAT_REWRITTEN],
		       (unsigned long long)r->counts[PORT_STAT_REVERSE_REWRITTEN],
		       (unsigned long long)r->counts[PORT_STAT_HIDDEN_DROPPED], refused);
	}
	printf("\n");
	for (s = 0; s < STAT__MAX; s++)
		printf("%-*s %llu\n", width, redir_stat_names[s],
		       (unsigned long long)snap->stats[s]);
}

/* Prometheus text exposition format, for node-exporter's textfile collector. */
static void snapshot_prometheus(const struct snapshot *snap)
{
	size_t i;
	int s;

	printf("# HELP bpfredir_packets_total Packets and socket calls by datapath verdict.\n"
	       "# TYPE bpfredir_packets_total counter\n");
	for (s = 0; s < STAT__MAX; s++)
		printf("bpfredir_packets_total{verdict=\"%s\"} %llu\n", redir_stat_names[s],
		       (unsigned long long)snap->stats[s]);
	printf("# HELP bpfredir_rule_packets_total Packets per rule: translated (steered at "
	       "socket lookup: connections), replies rewritten back, dropped at the hidden "
	       "target, connections refused for want of a listener.\n"
	       "# TYPE bpfredir_rule_packets_total counter\n");
	for (i = 0; i < snap->n; i++)
		for (s = 0; s < PORT_STAT__MAX; s++)
			printf("bpfredir_rule_packets_total{public_port=\"%u\",target_port=\"%u\","
			       "proto=\"%s\",counter=\"%s\"} %llu\n",
			       ntohs(snap->rules[i].key.port),
			       ntohs(snap->rules[i].rule.target_port),
			       proto_name(snap->rules[i].key.proto), redir_port_stat_names[s],
			       (unsigned long long)snap->rules[i].counts[s]);
	printf("# HELP bpfredir_rules Rules loaded.\n# TYPE bpfredir_rules gauge\n"
	       "bpfredir_rules %zu\n",
	       snap->n);
}

enum report_format { FORMAT_TABLE, FORMAT_JSON, FORMAT_PROMETHEUS };

struct report_args {
	unsigned int format; /* enum report_format */
	__u32 interval;	     /* seconds; 0: one snapshot */
	__u32 count;	     /* reports with --interval; 0: until interrupted */
};

#define FORMAT_CLASH "--json and --prometheus exclude each other"

static const struct opt list_opts[] = {
	OPT_ONE_OF(struct report_args, format, "json", FORMAT_JSON, FORMAT_CLASH),
	OPT_END,
};

static const struct opt stats_opts[] = {
	OPT_ONE_OF(struct report_args, format, "json", FORMAT_JSON, FORMAT_CLASH,
		   .synopsis = "[--json | --prometheus]"),
	OPT_ONE_OF(struct report_args, format, "prometheus", FORMAT_PROMETHEUS, FORMAT_CLASH,
		   .synopsis = ""),
	OPT_UINT(struct report_args, interval, "interval", "S", 1, 3600,
		 .synopsis = "[--interval S [--count N]]"),
	OPT_UINT(struct report_args, count, "count", "N", 1, 1000000, .synopsis = ""),
	OPT_END,
};

static int stats_check(const void *cfg)
{
	const struct report_args *args = cfg;

	if (args->count && !args->interval)
		return usage_error("--count goes with --interval");
	if (args->interval && args->format == FORMAT_PROMETHEUS)
		return usage_error("--prometheus prints one snapshot; drop --interval");
	return -1;
}

static double rate(__u64 now, __u64 before, unsigned int interval)
{
	return now >= before ? (double)(now - before) / interval : 0;
}

/* The counters of r one interval ago; a rule new since then counts from 0. */
static const __u64 *counts_before(const struct snapshot *before, const struct listed_rule *r)
{
	static const __u64 zero[PORT_STAT__MAX];
	size_t j;

	for (j = 0; j < before->n; j++)
		if (!memcmp(&before->rules[j].key, &r->key, sizeof(r->key)))
			return before->rules[j].counts;
	return zero;
}

/* Counters per second over the last interval. */
static void rates_plain(const struct snapshot *now, const struct snapshot *before,
			unsigned int interval)
{
	int s, width = stat_name_width();
	const __u64 *prev;
	size_t i;

	printf("%-7s %-7s %-5s %14s %14s %14s %12s\n", "PUBLIC", "TARGET", "PROTO", "REWRITTEN/s",
	       "REPLIES/s", "HIDDEN_DROP/s", "REFUSED/s");
	for (i = 0; i < now->n; i++) {
		const struct listed_rule *r = &now->rules[i];
		char refused[32];

		prev = counts_before(before, r);
		if (rule_can_refuse(r))
			snprintf(refused, sizeof(refused), "%.1f",
				 rate(r->counts[PORT_STAT_STEER_REFUSED],
				      prev[PORT_STAT_STEER_REFUSED], interval));
		else
			snprintf(refused, sizeof(refused), "-");
		printf("%-7u %-7u %-5s %14.1f %14.1f %14.1f %12s\n", ntohs(r->key.port),
		       ntohs(r->rule.target_port), proto_name(r->key.proto),
		       rate(r->counts[PORT_STAT_REWRITTEN], prev[PORT_STAT_REWRITTEN], interval),
		       rate(r->counts[PORT_STAT_REVERSE_REWRITTEN],
			    prev[PORT_STAT_REVERSE_REWRITTEN], interval),
		       rate(r->counts[PORT_STAT_HIDDEN_DROPPED], prev[PORT_STAT_HIDDEN_DROPPED],
			    interval),
		       refused);
	}
	for (s = 0; s < STAT__MAX; s++)
		printf("%-*s %12.1f/s\n", width, redir_stat_names[s],
		       rate(now->stats[s], before->stats[s], interval));
	printf("\n");
}

static struct json_object *rates_json_of(const char *const *names, const __u64 *now,
					 const __u64 *before, int n, unsigned int interval)
{
	struct json_object *obj = json_object_new_object();
	int s;

	for (s = 0; s < n; s++)
		json_add(obj, names[s], json_rate(rate(now[s], before[s], interval)));
	return obj;
}

static void rates_json(const struct snapshot *now, const struct snapshot *before,
		       unsigned int interval)
{
	struct json_object *doc = json_object_new_object(), *rules = json_object_new_array();
	struct json_object *obj;
	size_t i;

	json_add(doc, "time", json_object_new_int64(time(NULL)));
	json_add(doc, "interval", json_object_new_int64(interval));
	json_add(doc, "rules", rules);
	for (i = 0; i < now->n; i++) {
		const struct listed_rule *r = &now->rules[i];

		obj = json_object_new_object();
		json_add(obj, "public_port", json_object_new_int(ntohs(r->key.port)));
		json_add(obj, "target_port", json_object_new_int(ntohs(r->rule.target_port)));
		json_add(obj, "proto", json_object_new_string(proto_name(r->key.proto)));
		json_add(obj, "rates",
			 rates_json_of(redir_port_stat_names, r->counts, counts_before(before, r),
				       PORT_STAT__MAX, interval));
		json_object_array_add(rules, obj);
	}
	json_add(doc, "rates",
		 rates_json_of(redir_stat_names, now->stats, before->stats, STAT__MAX, interval));
	json_print(doc);
}

/* What list and stats print, picked once from the format: a snapshot and, with --interval,
 * rates. */
struct report_view {
	void (*snapshot)(const struct snapshot *snap);
	void (*rates)(const struct snapshot *now, const struct snapshot *before,
		      unsigned int interval);
};

static const struct report_view report_views[] = {
	[FORMAT_TABLE] = { snapshot_plain, rates_plain },
	[FORMAT_JSON] = { snapshot_json, rates_json },
	/* --prometheus goes without --interval (stats_check) */
	[FORMAT_PROMETHEUS] = { snapshot_prometheus, NULL },
};

static int report(const struct pinned_maps *maps, const struct report_args *args)
{
	static struct snapshot snaps[2];
	const struct report_view *view = &report_views[args->format];
	unsigned long done = 0;
	int ret, cur = 0;

	ret = take_snapshot(maps, &snaps[cur]);
	if (!ret && !args->interval)
		view->snapshot(&snaps[cur]);
	while (!ret && args->interval && (!args->count || done < args->count)) {
		sleep(args->interval);
		cur ^= 1;
		ret = take_snapshot(maps, &snaps[cur]);
		if (!ret) {
			view->rates(&snaps[cur], &snaps[cur ^ 1], args->interval);
			fflush(stdout);
		}
		done++;
	}
	if (ret)
		return fail("cannot read counters: %s", strerror(-ret));
	return EXIT_OK;
}

static int do_report(struct instance *in, const void *cfg)
{
	return report(&in->maps, cfg);
}

/* Read-only: no lock. */
#define REPORT_NEEDS (NEED_ROOT | NEED_PINS | NEED_MAPS)

const struct cmd cmd_list = {
	.name = "list",
	.func = do_report,
	.opts = list_opts,
	.sibling_opts = stats_opts,
	.cfg_size = sizeof(struct report_args),
	.needs = REPORT_NEEDS,
	.doc = "Show the rules and the datapath counters.\n",
};

const struct cmd cmd_stats = {
	.name = "stats",
	.func = do_report,
	.opts = stats_opts,
	.sibling_opts = list_opts,
	.cfg_size = sizeof(struct report_args),
	.needs = REPORT_NEEDS,
	.check = stats_check,
	.doc = "Show the counters; with --interval, rates per second every S seconds (N times, or\n"
	       "until interrupted); --prometheus prints the text format for node-exporter.\n",
};
