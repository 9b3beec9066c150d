// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Slots of the per-port counters: assigned, kept and taken back by the loader alone. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "port_counters.h"

/* Every port's slots, read through a mapping of the array (BPF_F_MMAPABLE): a copy of 512
 * KiB rather than 65536 lookups. */
static int read_all_slots(int fd, struct redir_port_slots *slots)
{
	size_t size = BPFREDIR_PORTS * sizeof(*slots);
	void *mem = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);

	if (mem == MAP_FAILED)
		return -errno;
	memcpy(slots, mem, size);
	munmap(mem, size);
	return 0;
}

static int n_cpus_or_err(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : (n < 0 ? n : -EINVAL);
}

/* zero: every CPU's counters, all 0. */
static int zero_slot(const struct port_counter_maps *maps, __u32 slot,
		     const struct redir_port_stats *zero)
{
	return bpf_map_update_elem(maps->counters, &slot, zero, BPF_ANY) ? -errno : 0;
}

static int write_slots(int fd, __u32 port, const struct redir_port_slots *slots)
{
	return bpf_map_update_elem(fd, &port, slots, BPF_ANY) ? -errno : 0;
}

int port_counters_set(const struct port_counter_maps *maps, const struct redir_port_key *ports,
		      size_t n)
{
	struct redir_port_slots *was = calloc(BPFREDIR_PORTS, sizeof(*was));
	struct redir_port_slots *now = calloc(BPFREDIR_PORTS, sizeof(*now));
	bool(*want)[PORT_SLOT__MAX] = calloc(BPFREDIR_PORTS, sizeof(*want));
	bool *used = calloc(BPFREDIR_PORT_COUNTERS, sizeof(*used));
	int n_cpus = n_cpus_or_err(), err;
	struct redir_port_stats *zero = n_cpus > 0 ? calloc(n_cpus, sizeof(*zero)) : NULL;
	__u32 port, next = 1;
	size_t i, p;

	err = n_cpus < 0 ? n_cpus : (!was || !now || !want || !used || !zero ? -ENOMEM : 0);
	if (!err)
		err = read_all_slots(maps->slots, was);
	if (err)
		goto cleanup;
	for (i = 0; i < n; i++)
		want[ntohs(ports[i].port)][port_slot_of(ports[i].proto)] = true;
	/* The slots kept: a wanted port's own, unless another port claims it too. */
	for (port = 0; port < BPFREDIR_PORTS; port++)
		for (p = 0; p < PORT_SLOT__MAX; p++) {
			__u16 s = was[port].slot[p];

			if (s && s < BPFREDIR_PORT_COUNTERS && !used[s] && want[port][p]) {
				used[s] = true;
				now[port].slot[p] = s;
			}
		}
	/* Take back the rest first: the datapath stops counting in a slot before it is zeroed
	 * for its next port. */
	for (port = 0; port < BPFREDIR_PORTS; port++) {
		if (!memcmp(&was[port], &now[port], sizeof(was[port])))
			continue;
		err = write_slots(maps->slots, port, &now[port]);
		for (p = 0; !err && p < PORT_SLOT__MAX; p++) {
			__u16 s = was[port].slot[p];

			if (s && s < BPFREDIR_PORT_COUNTERS && !used[s])
				err = zero_slot(maps, s, zero);
		}
		if (err)
			goto cleanup;
	}
	/* Then give the new ports theirs, zeroed before the datapath can count there. */
	for (port = 0; port < BPFREDIR_PORTS; port++)
		for (p = 0; p < PORT_SLOT__MAX; p++) {
			if (!want[port][p] || now[port].slot[p])
				continue;
			while (next < BPFREDIR_PORT_COUNTERS && used[next])
				next++;
			if (next == BPFREDIR_PORT_COUNTERS) {
				err = -E2BIG;
				goto cleanup;
			}
			err = zero_slot(maps, next, zero);
			if (err)
				goto cleanup;
			used[next] = true;
			now[port].slot[p] = next;
			err = write_slots(maps->slots, port, &now[port]);
			if (err)
				goto cleanup;
		}
cleanup:
	free(was);
	free(now);
	free(want);
	free(used);
	free(zero);
	return err;
}

/* The slot of port/proto; 0 for none. */
static int slot_of(const struct port_counter_maps *maps, __be16 port, __u8 proto, __u32 *slot)
{
	struct redir_port_slots slots;
	__u32 key = ntohs(port);

	if (bpf_map_lookup_elem(maps->slots, &key, &slots))
		return -errno;
	*slot = slots.slot[port_slot_of(proto)];
	return 0;
}

static void sum_cpus(const struct redir_port_stats *percpu, int n_cpus, __u64 sum[PORT_STAT__MAX])
{
	int cpu, i;

	for (i = 0; i < PORT_STAT__MAX; i++)
		for (sum[i] = 0, cpu = 0; cpu < n_cpus; cpu++)
			sum[i] += percpu[cpu].count[i];
}

int port_counters_read(const struct port_counter_maps *maps, __be16 port, __u8 proto,
		       __u64 sum[PORT_STAT__MAX])
{
	int n_cpus = n_cpus_or_err(), err;
	struct redir_port_stats *percpu;
	__u32 slot;

	memset(sum, 0, PORT_STAT__MAX * sizeof(*sum));
	if (n_cpus < 0)
		return n_cpus;
	err = slot_of(maps, port, proto, &slot);
	if (err)
		return err;
	if (!slot)
		return -ENOENT;
	percpu = calloc(n_cpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	err = bpf_map_lookup_elem(maps->counters, &slot, percpu) ? -errno : 0;
	if (!err)
		sum_cpus(percpu, n_cpus, sum);
	free(percpu);
	return err;
}

int port_counters_assigned(const struct port_counter_maps *maps)
{
	struct redir_port_slots *slots = calloc(BPFREDIR_PORTS, sizeof(*slots));
	int err, n = 0;
	size_t port, p;

	if (!slots)
		return -ENOMEM;
	err = read_all_slots(maps->slots, slots);
	for (port = 0; !err && port < BPFREDIR_PORTS; port++)
		for (p = 0; p < PORT_SLOT__MAX; p++)
			n += slots[port].slot[p] != 0;
	free(slots);
	return err ? err : n;
}

int port_counters_take_legacy(const struct port_counter_maps *maps, int legacy_fd)
{
	int n_cpus = n_cpus_or_err(), cpu, i, err = 0;
	struct redir_port_stats *old = NULL, *now = NULL;
	struct redir_port_key key, *prev = NULL;
	__u32 slot;

	if (n_cpus < 0)
		return n_cpus;
	old = calloc(n_cpus, sizeof(*old));
	now = calloc(n_cpus, sizeof(*now));
	if (!old || !now)
		err = -ENOMEM;
	while (!err && !bpf_map_get_next_key(legacy_fd, prev, &key)) {
		prev = &key;
		err = slot_of(maps, key.port, key.proto, &slot);
		if (err || !slot)
			continue;
		if (bpf_map_lookup_elem(legacy_fd, &key, old) ||
		    bpf_map_lookup_elem(maps->counters, &slot, now)) {
			err = -errno;
			break;
		}
		for (cpu = 0; cpu < n_cpus; cpu++)
			for (i = 0; i < BPFREDIR_PORT_STAT_SLOTS; i++)
				now[cpu].count[i] += old[cpu].count[i];
		if (bpf_map_update_elem(maps->counters, &slot, now, BPF_ANY))
			err = -errno;
	}
	free(old);
	free(now);
	return err;
}
