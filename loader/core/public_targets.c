// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The targets of public ports, and the IN entries that outlive them. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "cache_gen.h"
#include "public_targets.h"

/* Entries read per batch: a hash map's batch ends at a bucket's end, and no bucket of an LRU
 * map holds anywhere near this many. */
#define FLOWS_BATCH 1024

typedef int (*flow_visit)(const struct public_targets_maps *maps, const struct redir_flow_key *key,
			  const struct redir_flow *flow, void *arg);

/* Call visit on every entry of flows, read in batches: the datapath changes flows all the
 * while, and a batch's cursor is a bucket, which stays where a deleted key would not. */
static int flows_walk(const struct public_targets_maps *maps, flow_visit visit, void *arg)
{
	struct redir_flow_key *keys = calloc(FLOWS_BATCH, sizeof(*keys));
	struct redir_flow *values = calloc(FLOWS_BATCH, sizeof(*values));
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 cursor = 0, next, count, i;
	bool first = true, last = false;
	int err = keys && values ? 0 : -ENOMEM;

	while (!err && !last) {
		count = FLOWS_BATCH;
		if (bpf_map_lookup_batch(maps->flows, first ? NULL : &cursor, &next, keys, values,
					 &count, &opts)) {
			if (errno != ENOENT) {
				err = -errno;
				break;
			}
			last = true;
		}
		for (i = 0; i < count && !err; i++)
			err = visit(maps, &keys[i], &values[i], arg);
		cursor = next;
		first = false;
	}
	free(keys);
	free(values);
	return err;
}

struct kept_conns {
	__be16 port, dropped;
	__u8 proto;
};

/* A connection through kept->port to kept->dropped (its OUT entry) gets its IN entry. */
static int keep_conn(const struct public_targets_maps *maps, const struct redir_flow_key *key,
		     const struct redir_flow *flow, void *arg)
{
	const struct kept_conns *kept = arg;
	struct redir_flow_key in = *key;
	struct redir_flow target = *flow;

	if (key->dir != FLOW_DIR_OUT || key->proto != kept->proto ||
	    key->local_port != kept->dropped || flow->port != kept->port)
		return 0;
	in.dir = FLOW_DIR_IN;
	in.local_port = kept->port;
	target.port = kept->dropped;
	return bpf_map_update_elem(maps->flows, &in, &target, BPF_ANY) ? -errno : 0;
}

int public_targets_note(const struct public_targets_maps *maps, __be16 port, __u8 proto,
			__be16 target)
{
	struct redir_public_targets targets;
	struct redir_public_port *entry = &targets.proto[port_slot_of(proto)];
	struct kept_conns kept = { .port = port, .proto = proto };
	__u32 idx = ntohs(port), pos;
	int err;

	if (bpf_map_lookup_elem(maps->targets, &idx, &targets))
		return -errno;
	if (entry->target[0] == target)
		return 0;
	/* target moves to the front from where it is; where it is not, the last one drops out. */
	for (pos = 1; pos < BPFREDIR_PUBLIC_TARGETS - 1 && entry->target[pos] != target; pos++)
		;
	kept.dropped = entry->target[pos] != target ? entry->target[pos] : 0;
	if (kept.dropped) {
		/* The IN entries first: until the port forgets the target, the datapath still
		 * finds these connections by it. */
		err = flows_walk(maps, keep_conn, &kept);
		if (err)
			return err;
		entry->in_entries = 1;
	}
	memmove(&entry->target[1], &entry->target[0], pos * sizeof(entry->target[0]));
	entry->target[0] = target;
	if (bpf_map_update_elem(maps->targets, &idx, &targets, BPF_ANY))
		return -errno;
	return cache_gen_bump(maps->flows_gen);
}

/* Note that key's port and protocol have an IN entry, in the bitmap arg. */
static int note_in_entry(const struct public_targets_maps *maps, const struct redir_flow_key *key,
			 const struct redir_flow *flow, void *arg)
{
	bool(*has_in)[PORT_SLOT__MAX] = arg;

	(void)maps;
	(void)flow;
	if (key->dir == FLOW_DIR_IN)
		has_in[ntohs(key->local_port)][port_slot_of(key->proto)] = true;
	return 0;
}

int public_targets_mark_in_entries(const struct public_targets_maps *maps)
{
	bool(*has_in)[PORT_SLOT__MAX] = calloc(BPFREDIR_PORTS, sizeof(*has_in));
	struct redir_public_targets targets;
	__u32 port, slot;
	int err = has_in ? flows_walk(maps, note_in_entry, has_in) : -ENOMEM;
	bool marked = false;

	for (port = 0; !err && port < BPFREDIR_PORTS; port++) {
		bool changed = false;

		for (slot = 0; slot < PORT_SLOT__MAX; slot++)
			changed |= has_in[port][slot];
		if (!changed)
			continue;
		if (bpf_map_lookup_elem(maps->targets, &port, &targets)) {
			err = -errno;
			break;
		}
		for (slot = 0; slot < PORT_SLOT__MAX; slot++)
			targets.proto[slot].in_entries |= has_in[port][slot];
		if (bpf_map_update_elem(maps->targets, &port, &targets, BPF_ANY))
			err = -errno;
		marked = true;
	}
	free(has_in);
	return err || !marked ? err : cache_gen_bump(maps->flows_gen);
}
