// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* status's views printed: each as plain text and as JSON, twins side by side. The JSON
 * twins add their object to the array being filled (out->list). */
#include <stdio.h>
#include "status.h"

#define INACTIVE_NOTE                                                                              \
	"inactive: attached, but the live rule set does not name it (an interrupted run "          \
	"left it; apply, load or detach settles it)"

static void chain_plain(const struct hook_chain *c)
{
	__u32 i;

	for (i = 0; i < c->n; i++)
		printf("%s%u:%s%s", i ? ", " : "", c->progs[i].id, c->progs[i].name,
		       c->progs[i].ours ? "" : " (foreign)");
}

static struct json_object *chain_json(const struct hook_chain *c)
{
	struct json_object *list = json_object_new_array(), *prog;
	__u32 i;

	for (i = 0; i < c->n; i++) {
		prog = json_object_new_object();
		json_add(prog, "id", json_object_new_int64(c->progs[i].id));
		json_add(prog, "name", json_object_new_string(c->progs[i].name));
		json_add(prog, "ours", json_object_new_boolean(c->progs[i].ours));
		json_object_array_add(list, prog);
	}
	return list;
}

void warnings_plain(const struct warnings *w)
{
	int i;

	for (i = 0; i < w->n; i++)
		printf("    warning: %s\n", w->text[i]);
}

struct json_object *warnings_json(const struct warnings *w)
{
	struct json_object *list = json_object_new_array();
	int i;

	for (i = 0; i < w->n; i++)
		json_object_array_add(list, json_object_new_string(w->text[i]));
	return list;
}

static void xdp_seen_plain(const struct xdp_seen *x)
{
	if (x->id)
		printf("; XDP program %u:%s%s (%s) runs before TC", x->id, x->name,
		       x->ours ? "" : " (foreign)", x->mode);
}

static void xdp_seen_json(struct json_object *obj, const struct xdp_seen *x)
{
	if (!x->id)
		return;
	json_add(obj, "xdp_mode", json_object_new_string(x->mode));
	json_add(obj, "xdp_prog_name", json_object_new_string(x->name));
	json_add(obj, "xdp_prog_ours", json_object_new_boolean(x->ours));
}

/* What follows an interface's first line: its notes, chains and warnings. */
static void iface_tail_plain(const struct iface_view *v)
{
	int i;

	if (!v->active)
		printf("    " INACTIVE_NOTE "\n");
	for (i = 0; i < 2 && v->has_chains; i++) {
		printf("    %s, in run order: ", tcx_hook_names[i]);
		chain_plain(&v->chains[i]);
		printf("\n");
	}
	warnings_plain(&v->w);
}

static void iface_plain(struct status_out *out, const struct iface_view *v)
{
	if (v->legacy) {
		printf("  %s (ifindex %d): tc, clsact qdisc %s, filters handle 0x%x at priority %u "
		       "(ingress) and %u (egress)%s",
		       v->name, v->ifindex,
		       v->rec.made_qdisc ? "made by bpfredir" : "found in place",
		       BPFREDIR_TC_HANDLE, v->rec.priority[0], v->rec.priority[1],
		       out->tcx ? "; tcx programs run before them" : "");
		xdp_seen_plain(&v->xdp);
	} else if (v->mode == IFACE_TC) {
		printf("  %s (ifindex %d): tcx", v->name, v->ifindex);
		xdp_seen_plain(&v->xdp);
	} else {
		printf("  %s (ifindex %d): xdp (%s), XDP program %u; egress by %s", v->name,
		       v->ifindex, v->xdp.id ? v->xdp.mode : "not attached", v->xdp.id,
		       v->egress_tc ? "tc (a clsact filter)" : "tcx");
	}
	printf("; steering %s\n", out->steer_socket ? "socket (TCP), packet (UDP)" : "packet");
	iface_tail_plain(v);
}

/* A legacy interface's fields after "mode". */
static void legacy_json(struct json_object *obj, const struct iface_view *v)
{
	struct json_object *prio = json_object_new_array(), *present = json_object_new_array();
	int i;

	json_add(obj, "handle", json_object_new_int64(BPFREDIR_TC_HANDLE));
	json_add(obj, "priority", prio);
	json_add(obj, "qdisc_ours", json_object_new_boolean(v->rec.made_qdisc));
	json_add(obj, "filters_present", present);
	for (i = 0; i < 2; i++) {
		json_object_array_add(prio, json_object_new_int64(v->rec.priority[i]));
		json_object_array_add(present, json_object_new_boolean(v->filters_present[i]));
	}
}

static void iface_json(struct status_out *out, const struct iface_view *v)
{
	struct json_object *obj = json_object_new_object();
	int i;

	json_add(obj, "ifindex", json_object_new_int(v->ifindex));
	json_add(obj, "name", json_str_or_null(v->defunct ? NULL : v->name));
	json_add(obj, "mode",
		 json_object_new_string(v->legacy	      ? "tc"
					: v->mode == IFACE_TC ? "tcx"
							      : "xdp"));
	json_add(obj, "defunct", json_object_new_boolean(v->defunct));
	json_add(obj, "steering", json_object_new_string(out->steer_socket ? "socket" : "packet"));
	if (v->legacy) {
		legacy_json(obj, v);
	} else {
		json_add(obj, "xdp_prog_id", json_object_new_int64(v->xdp.id));
		if (v->mode != IFACE_TC)
			json_add(obj, "egress_by",
				 json_object_new_string(v->egress_tc ? "tc" : "tcx"));
	}
	xdp_seen_json(obj, &v->xdp);
	json_add(obj, "active", json_object_new_boolean(v->active));
	for (i = 0; i < 2 && v->has_chains; i++)
		json_add(obj, tcx_hook_names[i], chain_json(&v->chains[i]));
	json_add(obj, "warnings", warnings_json(&v->w));
	json_object_array_add(out->list, obj);
}

static void cgroup_plain(struct status_out *out, const struct cgroup_view *v)
{
	if (v->removed) {
		printf("  removed cgroup (id %llu)\n", (unsigned long long)v->id);
		warnings_plain(&v->w);
		return;
	}
	printf("  %s (id %llu)\n    connect4, this cgroup's own: ", v->path ? v->path : "?",
	       (unsigned long long)v->id);
	chain_plain(&v->connect4);
	printf("\n");
	if (!v->active)
		printf("    " INACTIVE_NOTE "\n");
	warnings_plain(&v->w);
}

static void cgroup_json(struct status_out *out, const struct cgroup_view *v)
{
	struct json_object *obj = json_object_new_object();

	json_add(obj, "id", json_object_new_uint64(v->id));
	json_add(obj, "path", json_str_or_null(v->path));
	json_add(obj, "defunct", json_object_new_boolean(v->defunct));
	json_add(obj, "removed", json_object_new_boolean(v->removed));
	json_add(obj, "active", json_object_new_boolean(v->active));
	json_add(obj, "connect4", chain_json(&v->connect4));
	json_add(obj, "warnings", warnings_json(&v->w));
	json_object_array_add(out->list, obj);
}

const struct status_printer status_plain_printer = { iface_plain, cgroup_plain };
const struct status_printer status_json_printer = { iface_json, cgroup_json };
