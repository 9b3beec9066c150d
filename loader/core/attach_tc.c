// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Legacy TC attach: a clsact qdisc and direct-action cls_bpf filters, for kernels without
 * tcx (before 6.6) or when --attach tc asks. The filters hold the programs without any pin,
 * so each interface is written down in the pinned tc_legacy map before anything is
 * attached: unload, and the cleanup after a killed load, detach from that record. In XDP
 * mode only the egress filter is made; the record's ingress priority is then 0. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "pins.h"

#define MAX_PRIORITY 64

static const enum bpf_tc_attach_point tc_points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };

int open_tc_legacy_map(void)
{
	char path[PATH_MAX];
	int fd;

	if (pin_path(path, sizeof(path), "maps", "tc_legacy"))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

/* The lowest priority free for our handle: ours then run first among legacy filters. */
static int free_priority(int ifindex, enum bpf_tc_attach_point point, __u32 *priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	__u32 prio;

	for (prio = 1; prio <= MAX_PRIORITY; prio++) {
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPFREDIR_TC_HANDLE, .priority = prio);

		int err = bpf_tc_query(&hook, &opts);

		/* No such filter, or not even a chain at that priority: free. */
		if (err == -ENOENT || err == -EINVAL) {
			*priority = prio;
			return 0;
		}
		if (err)
			return err;
	}
	return -EBUSY;
}

static void detach_recorded(int ifindex, const struct redir_tc_attach *rec)
{
	int i;

	for (i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = tc_points[i]);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPFREDIR_TC_HANDLE,
			    .priority = rec->priority[i]);

		if (rec->priority[i])
			bpf_tc_detach(&hook, &opts);
	}
	if (rec->made_qdisc) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);

		bpf_tc_hook_destroy(&hook);
	}
}

/* prog_fds[0] < 0: egress only (XDP does ingress). */
int tc_legacy_attach(int map_fd, int ifindex, const int prog_fds[2], __u32 flags)
{
	LIBBPF_OPTS(bpf_tc_hook, qdisc, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	struct redir_tc_attach rec = {};
	__u32 key = ifindex;
	int i, err;

	if (flags & BPF_TC_F_REPLACE) {
		if (bpf_map_lookup_elem(map_fd, &key, &rec))
			return -ENOENT;
	} else {
		/* A record whose filters are gone (the qdisc deleted under us) goes first. */
		tc_legacy_detach(map_fd, ifindex);
		err = bpf_tc_hook_create(&qdisc);
		if (err && err != -EEXIST)
			return err;
		rec.made_qdisc = !err;
		err = 0;
		for (i = 0; i < 2 && !err; i++)
			if (prog_fds[i] >= 0)
				err = free_priority(ifindex, tc_points[i], &rec.priority[i]);
		/* Written down first: a loader killed after attaching leaves a record. */
		if (!err && bpf_map_update_elem(map_fd, &key, &rec, BPF_NOEXIST))
			err = -errno;
		if (err) {
			if (rec.made_qdisc)
				bpf_tc_hook_destroy(&qdisc);
			return err;
		}
	}
	for (i = 0; i < 2 && !err; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = tc_points[i]);
		LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fds[i], .flags = flags,
			    .handle = BPFREDIR_TC_HANDLE, .priority = rec.priority[i]);

		if (rec.priority[i])
			err = bpf_tc_attach(&hook, &opts);
	}
	if (err && !(flags & BPF_TC_F_REPLACE)) {
		detach_recorded(ifindex, &rec);
		bpf_map_delete_elem(map_fd, &key);
	}
	return err;
}

/* The programs our recorded filters run now (0 where a filter is gone, or was never made):
 * filters are no links, and deleting the clsact qdisc takes them with it, silently. */
void tc_legacy_query(int ifindex, const struct redir_tc_attach *rec, __u32 prog_ids[2])
{
	int i;

	for (i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = tc_points[i]);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPFREDIR_TC_HANDLE,
			    .priority = rec->priority[i]);

		prog_ids[i] = !rec->priority[i] || bpf_tc_query(&hook, &opts) ? 0 : opts.prog_id;
	}
}

/* The record of IFINDEX, read from a map opened for this one look. */
static bool tc_legacy_lookup(int ifindex, struct redir_tc_attach *rec)
{
	int map_fd = open_tc_legacy_map();
	__u32 key = ifindex;
	bool found = map_fd >= 0 && !bpf_map_lookup_elem(map_fd, &key, rec);

	if (map_fd >= 0)
		close(map_fd);
	return found;
}

bool tc_legacy_recorded(int ifindex)
{
	struct redir_tc_attach rec;

	return tc_legacy_lookup(ifindex, &rec);
}

/* Recorded, and every filter recorded still there. */
bool tc_legacy_attached(int map_fd, int ifindex)
{
	struct redir_tc_attach rec;
	__u32 key = ifindex, prog_ids[2];

	if (map_fd < 0 || bpf_map_lookup_elem(map_fd, &key, &rec))
		return false;
	tc_legacy_query(ifindex, &rec, prog_ids);
	return (prog_ids[0] || !rec.priority[0]) && (prog_ids[1] || !rec.priority[1]);
}

/* Recorded with its egress filter alone: the TC half of an interface in XDP mode. */
bool tc_legacy_egress_only(int ifindex)
{
	struct redir_tc_attach rec;

	return tc_legacy_lookup(ifindex, &rec) && !rec.priority[0];
}

void tc_legacy_detach(int map_fd, int ifindex)
{
	struct redir_tc_attach rec;
	__u32 key = ifindex;

	if (bpf_map_lookup_elem(map_fd, &key, &rec))
		return;
	detach_recorded(ifindex, &rec);
	bpf_map_delete_elem(map_fd, &key);
}

/* Calls fn for every recorded interface; returns how many there were. */
int tc_legacy_each(int map_fd, void (*fn)(int map_fd, int ifindex, void *arg), void *arg)
{
	__u32 keys[BPFREDIR_MAX_IFACES], key, *prev = NULL;
	int n = 0, i;

	while (n < BPFREDIR_MAX_IFACES && !bpf_map_get_next_key(map_fd, prev, &key)) {
		keys[n++] = key;
		prev = &keys[n - 1];
	}
	for (i = 0; i < n && fn; i++)
		fn(map_fd, keys[i], arg);
	return n;
}
