// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* status's view of socket steering: the mode, the listeners registered for the rules'
 * targets, and a warning for each TCP rule whose target has none (its connections are
 * refused until its service listens). */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "status.h"
#include "core/scan.h"

#define MAX_LISTENER_VIEWS 256

struct listener_view {
	char addr[INET6_ADDRSTRLEN];
	__u16 port;
	bool any;      /* bound to any address */
	bool ipv4_too; /* a dual-stack :: one, which takes IPv4 too */
};

struct steering_view {
	struct listener_view l[MAX_LISTENER_VIEWS];
	size_t n;
	struct warnings w;
};

static void add_view(struct steering_view *v, const char *addr, __u16 port, bool any, bool ipv4_too)
{
	if (v->n == MAX_LISTENER_VIEWS)
		return;
	snprintf(v->l[v->n].addr, sizeof(v->l[0].addr), "%s", addr);
	v->l[v->n].port = port;
	v->l[v->n].any = any;
	v->l[v->n++].ipv4_too = ipv4_too;
}

static bool listed(const struct steering_view *v, const char *addr, __u16 port)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (v->l[i].port == port && !strcmp(v->l[i].addr, addr))
			return true;
	return false;
}

static bool has_port(const struct steering_view *v, __u16 port)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (v->l[i].port == port)
			return true;
	return false;
}

/* Target port's listeners bound to any address: the wildcard slots' sockets, by cookie (one
 * in both slots is a dual-stack :: one). */
static void wildcard_views(const struct steer_maps *m, struct steering_view *v, __u16 port)
{
	__u32 slot4 = steer_wildcard_slot(port, false), slot6 = steer_wildcard_slot(port, true);
	__u64 c4 = 0, c6 = 0;
	bool has4 = !bpf_map_lookup_elem(m->wildcard, &slot4, &c4);
	bool has6 = !bpf_map_lookup_elem(m->wildcard, &slot6, &c6);

	if (has6)
		add_view(v, "::", port, true, has4 && c4 == c6);
	if (has4 && !(has6 && c4 == c6))
		add_view(v, "0.0.0.0", port, true, false);
}

static void collect(const struct status_out *out, struct steering_view *v)
{
	struct redir_policy_key key, *prev = NULL;
	struct redir_listener_key lkey, *lprev = NULL;
	static __u16 targets[BPFREDIR_MAX_RULES];
	char addr[INET6_ADDRSTRLEN];
	struct redir_rule rule;
	size_t n = 0, i;

	memset(v, 0, sizeof(*v));
	while (!bpf_map_get_next_key(out->set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || key.proto != IPPROTO_TCP ||
		    bpf_map_lookup_elem(out->set_fd, &key, &rule))
			continue;
		for (i = 0; i < n && targets[i] != ntohs(rule.target_port); i++)
			;
		if (i == n)
			targets[n++] = ntohs(rule.target_port);
	}
	for (i = 0; i < n; i++)
		wildcard_views(out->steer, v, targets[i]);
	/* Every member, once per address and port: the slots' are listed already. */
	while (!bpf_map_get_next_key(out->steer->listeners, lprev, &lkey)) {
		lprev = &lkey;
		format_addr(lkey.addr, addr, sizeof(addr));
		if (!listed(v, addr, ntohs(lkey.port)))
			add_view(v, addr, ntohs(lkey.port),
				 !strcmp(addr, "0.0.0.0") || !strcmp(addr, "::"), false);
	}
	prev = NULL;
	while (!bpf_map_get_next_key(out->set_fd, prev, &key)) {
		prev = &key;
		if (key.kind == POLICY_PUBLIC && key.proto == IPPROTO_TCP &&
		    !bpf_map_lookup_elem(out->set_fd, &key, &rule) &&
		    !has_port(v, ntohs(rule.target_port)))
			warn(&v->w,
			     "tcp %u -> %u: no listener on %u is registered, so its connections "
			     "are refused (a service registers as it starts listening in an "
			     "attached cgroup; load, apply, add and del register running ones)",
			     ntohs(key.port), ntohs(rule.target_port), ntohs(rule.target_port));
	}
}

void steering_status_plain(const struct status_out *out)
{
	static struct steering_view v;
	size_t i;

	if (!out->steer_socket) {
		printf("steering:   packet: TC and XDP rewrite the ports of every rule\n");
		return;
	}
	collect(out, &v);
	printf("steering:   socket: TCP rules' connections are handed to their target's listener "
	       "at socket lookup (sk_lookup); UDP rules by TC and XDP\n");
	printf("listeners: ");
	for (i = 0; i < v.n; i++)
		printf("%s %s%s%s:%u%s", i ? "," : "", strchr(v.l[i].addr, ':') ? "[" : "",
		       v.l[i].addr, strchr(v.l[i].addr, ':') ? "]" : "", v.l[i].port,
		       v.l[i].ipv4_too ? " (IPv4 too)" : "");
	printf("%s\n", v.n ? "" : " none");
	warnings_plain(&v.w);
}

struct json_object *steering_status_json(const struct status_out *out)
{
	struct json_object *obj = json_object_new_object(), *list = json_object_new_array();
	static struct steering_view v;
	size_t i;

	json_add(obj, "mode", json_object_new_string(out->steer_socket ? "socket" : "packet"));
	if (out->steer_socket)
		collect(out, &v);
	else
		memset(&v, 0, sizeof(v));
	for (i = 0; i < v.n; i++) {
		struct json_object *l = json_object_new_object();

		json_add(l, "addr", json_object_new_string(v.l[i].addr));
		json_add(l, "port", json_object_new_int(v.l[i].port));
		json_add(l, "any_address", json_object_new_boolean(v.l[i].any));
		json_add(l, "ipv4_too", json_object_new_boolean(v.l[i].ipv4_too));
		json_object_array_add(list, l);
	}
	json_add(obj, "listeners", list);
	json_add(obj, "warnings", warnings_json(&v.w));
	return obj;
}
