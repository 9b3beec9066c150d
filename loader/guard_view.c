// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The netns guard as users see it (the guard itself is core/guard.c): where a hidden port is
 * still reachable because the guard cannot see it there, for status, add and apply. */
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "loader.h"
#include "jsonout.h"

int guard_upgrade_or_fail(void)
{
	int n = guard_upgrade();

	return n < 0 ? fail_err(-1, "cannot switch the guard to this build: %s", strerror(-n)) : n;
}

/* --- where hidden ports are still reachable ----------------------------------------- */

#define MAX_HIDDEN 64

struct hidden_port {
	__u16 port;
	__u8 proto;
};

/* The live set's hidden ports (hidden from outside), in the order the set holds them. */
static int hidden_ports(int set_fd, struct hidden_port *out, int max)
{
	struct redir_policy_key key, *prev = NULL;
	struct redir_rule rule;
	int n = 0;

	while (n < max && !bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind == POLICY_HIDDEN && !bpf_map_lookup_elem(set_fd, &key, &rule) &&
		    (rule.flags & REDIR_F_HIDE))
			out[n++] = (struct hidden_port){ ntohs(key.port), key.proto };
	}
	return n;
}

struct open_iface {
	int ifindex;
	char name[IF_NAMESIZE];
};

/* Interfaces that are up and have an address (a link-local one counts) but on which no
 * attachment acts: packets reach local sockets through them without TC or XDP. */
static int unattached_ifaces(int set_fd, struct open_iface *out, int max)
{
	struct ifaddrs *list, *ifa;
	int n = 0, i, ifindex;

	if (getifaddrs(&list))
		return -errno;
	for (ifa = list; ifa && n < max; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr ||
		    (ifa->ifa_addr->sa_family != AF_INET && ifa->ifa_addr->sa_family != AF_INET6) ||
		    !(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK))
			continue;
		ifindex = if_nametoindex(ifa->ifa_name);
		if (!ifindex || ruleset_enabled(set_fd, POLICY_IFACE, ifindex))
			continue;
		for (i = 0; i < n && out[i].ifindex != ifindex; i++)
			;
		if (i < n)
			continue;
		out[n].ifindex = ifindex;
		snprintf(out[n].name, sizeof(out[n].name), "%s", ifa->ifa_name);
		n++;
	}
	freeifaddrs(list);
	return n;
}

/* Which hidden ports the running guard leaves reachable through an unattached interface:
 * all of them without a guard, the UDP ones (by broadcast or multicast) with sk_lookup. */
static bool exposed(enum guard_kind kind, const struct hidden_port *h)
{
	return kind == GUARD_NONE || (kind == GUARD_SK_LOOKUP && h->proto == IPPROTO_UDP);
}

/* What follows "hidden PORTS reachable through IFACE". */
static const char *exposure_how(enum guard_kind kind)
{
	return kind == GUARD_NONE
		       ? ": not attached, and no guard runs"
		       : " by UDP broadcast or multicast: not attached, and the sk_lookup "
			 "guard cannot see those";
}

/* "8443/tcp, 5354/udp": the hidden ports the guard leaves open; empty when none. */
static void exposed_list(enum guard_kind kind, const struct hidden_port *h, int n, char *buf,
			 size_t size)
{
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n && len < size; i++)
		if (exposed(kind, &h[i]))
			len += snprintf(buf + len, size - len, "%s%u/%s", len ? ", " : "",
					h[i].port, proto_name(h[i].proto));
}

struct guard_view {
	enum guard_kind kind;
	struct hidden_port hidden[MAX_HIDDEN];
	int n_hidden;
	struct open_iface ifaces[MAX_IFACES];
	int n_ifaces;
};

static void guard_view_read(int set_fd, struct guard_view *v)
{
	v->kind = guard_running();
	v->n_hidden = hidden_ports(set_fd, v->hidden, MAX_HIDDEN);
	v->n_ifaces = unattached_ifaces(set_fd, v->ifaces, MAX_IFACES);
	if (v->n_ifaces < 0)
		v->n_ifaces = 0;
}

void guard_warn(int policy_fd)
{
	static struct guard_view v;
	__u32 slot = 0, set_id;
	char ports[512];
	int i, set_fd;

	/* The set live now: apply has just swapped in a new one. */
	if (bpf_map_lookup_elem(policy_fd, &slot, &set_id) ||
	    (set_fd = bpf_map_get_fd_by_id(set_id)) < 0)
		return;
	guard_view_read(set_fd, &v);
	close(set_fd);
	exposed_list(v.kind, v.hidden, v.n_hidden, ports, sizeof(ports));
	for (i = 0; ports[0] && i < v.n_ifaces; i++)
		fprintf(stderr,
			"bpfredir: warning: hidden %s reachable through %s%s (see "
			"'bpfredir status')\n",
			ports, v.ifaces[i].name, exposure_how(v.kind));
}

static const char *const guard_summary[] = {
	[GUARD_NETFILTER] = "netfilter (LOCAL_IN, IPv4 and IPv6): packets aimed at a hidden port "
			    "are dropped whatever interface they come in on",
	[GUARD_SK_LOOKUP] = "sk_lookup: connections and datagrams aimed at a hidden port are "
			    "refused as by a closed port whatever interface they come in on, "
			    "except UDP broadcast and multicast, which it cannot see",
	[GUARD_NONE] = "none: hidden ports are hidden only on attached interfaces",
};

static const char *const guard_off_iface[] = {
	[GUARD_NETFILTER] = "hidden ports guarded",
	[GUARD_SK_LOOKUP] = "hidden ports guarded except for UDP broadcast and multicast",
	[GUARD_NONE] = "hidden ports not hidden",
};

/* The ids of the guard's links, from their pins. */
static struct json_object *link_ids_json(enum guard_kind kind)
{
	struct json_object *ids = json_object_new_array();
	struct bpf_link_info info;
	const char *names[2];
	char path[PATH_MAX];
	__u32 len;
	int i, fd;

	guard_pin_names(kind, names);
	for (i = 0; i < 2 && names[i]; i++) {
		if (pin_path(path, sizeof(path), "links", names[i]) || (fd = bpf_obj_get(path)) < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (!bpf_link_get_info_by_fd(fd, &info, &len))
			json_object_array_add(ids, json_object_new_int64(info.id));
		close(fd);
	}
	return ids;
}

void guard_status_plain(int set_fd)
{
	static struct guard_view v;
	char ports[512];
	int i;

	guard_view_read(set_fd, &v);
	exposed_list(v.kind, v.hidden, v.n_hidden, ports, sizeof(ports));
	printf("guard:      %s\n", guard_summary[v.kind]);
	for (i = 0; i < v.n_ifaces; i++) {
		printf("  %s (ifindex %d): not attached: public ports not translated here, %s\n",
		       v.ifaces[i].name, v.ifaces[i].ifindex, guard_off_iface[v.kind]);
		if (ports[0])
			printf("  WARNING: hidden %s reachable through %s%s\n", ports,
			       v.ifaces[i].name, exposure_how(v.kind));
	}
}

/* [{"port":8443,"proto":"tcp","by":"any"}, ...]: the hidden ports the guard leaves open. */
static struct json_object *exposed_json(const struct guard_view *v)
{
	struct json_object *list = json_object_new_array(), *port;
	int j;

	for (j = 0; j < v->n_hidden; j++) {
		if (!exposed(v->kind, &v->hidden[j]))
			continue;
		port = json_object_new_object();
		json_add(port, "port", json_object_new_int(v->hidden[j].port));
		json_add(port, "proto", json_object_new_string(proto_name(v->hidden[j].proto)));
		json_add(port, "by",
			 json_object_new_string(v->kind == GUARD_NONE ? "any"
								      : "broadcast/multicast"));
		json_object_array_add(list, port);
	}
	return list;
}

struct json_object *guard_status_json(int set_fd)
{
	static struct guard_view v;
	struct json_object *guard = json_object_new_object(), *ifaces, *iface;
	int i;

	guard_view_read(set_fd, &v);
	json_add(guard, "kind", json_object_new_string(guard_kind_name(v.kind)));
	json_add(guard, "link_ids", link_ids_json(v.kind));
	ifaces = json_object_new_array();
	json_add(guard, "not_attached", ifaces);
	for (i = 0; i < v.n_ifaces; i++) {
		iface = json_object_new_object();
		json_add(iface, "ifindex", json_object_new_int(v.ifaces[i].ifindex));
		json_add(iface, "name", json_object_new_string(v.ifaces[i].name));
		json_add(iface, "exposed", exposed_json(&v));
		json_object_array_add(ifaces, iface);
	}
	return guard;
}
