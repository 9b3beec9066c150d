/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The skeleton set: the TC, XDP, socket and address-watch objects, opened, configured and
 * loaded over one set of maps pinned in DIR/maps, their programs pinned in DIR/progs, and on a
 * reload the links and legacy filters pointed at a new build's programs. 0 or -errno, with
 * the detail in a pr_warn where the caller cannot tell it. */
#ifndef BPFREDIR_CORE_OBJECTS_H
#define BPFREDIR_CORE_OBJECTS_H

#include <stdbool.h>
#include <linux/types.h>
#include "pins.h"

struct objects {
	struct tc_bpf *tc;
	struct xdp_bpf *xdp;
	struct sock_bpf *sock;
	struct addrwatch_bpf *addrwatch; /* opened only: objects_watch_addresses loads it */
};

/* Where objects_load stopped. */
enum objects_stage {
	OBJECTS_OPEN,
	OBJECTS_TC,
	OBJECTS_XDP,
	OBJECTS_NETNS, /* this network namespace's cookie */
	OBJECTS_SOCK,
};

/* flows: the flow table asked for (flows_entries() of it is made). reload: over a loaded
 * instance, policy's pin reused too. -errno with *stage what failed. */
int objects_load(struct objects *o, __u32 flows, bool reload, enum objects_stage *stage);
void objects_free(struct objects *o);
/* The TC, L3, XDP and socket programs pinned under DIR/progs, for apply and attach later;
 * the fds stay the objects'. */
int objects_pin_progs(struct objects *o, int tc_fds[2], int *xdp_fd, int sock_fds[N_SOCK_HOOKS]);
int objects_pin_l3_progs(struct objects *o);
int objects_pin_xdp_prog(struct objects *o, int *xdp_fd);
/* DIR/progs emptied and pinned again with these objects' programs. */
int objects_repin_progs(struct objects *o);
/* The address watch loaded and attached, its links pinned through txn. Optional: a kernel
 * whose notification functions cannot be traced only loses liveness. */
int objects_watch_addresses(struct objects *o, __u32 flows, struct pin_txn *txn);
/* Every link and legacy filter running an old program pointed at these objects' build: how
 * many changed, or -errno. */
int objects_update_links(struct objects *o);

/* The build: a hash of the objects as the skeletons embed them; maps/build keeps the one that
 * last loaded or upgraded the instance. Does the instance run this build's programs? */
bool objects_this_build_loaded(void);
int objects_record_build(void);

/* Every map of obj that from has too (by name) is from's, before obj loads: the sharing pins
 * give the loader's objects, for objects loaded without pins (verify's sandbox, the
 * benchmarks). 0, or -errno after a pr_warn naming the map. */
struct bpf_object;
int objects_share_maps(struct bpf_object *obj, const struct bpf_object *from);

/* Do the two programs run the same instructions (their tags)? */
bool progs_same_code(int old_fd, int new_fd);

/* The cookie of the network namespace the loader runs in, which the programs compare
 * theirs with. 0 or -errno. */
int objects_netns_cookie(__u64 *cookie);

/* flows' size, per possible CPU at least BPFREDIR_LRU_PER_CPU; pending's buckets for it. */
__u32 lru_min_entries(void);
__u32 flows_entries(__u32 want);
__u32 pending_buckets_for(__u32 flows);
/* The size a pinned map was made with: 0, or -errno (-ENOENT: no such pin; -EBADF: the pin
 * dir is not open). */
int pinned_map_entries(const char *name, __u32 *entries);

#endif /* BPFREDIR_CORE_OBJECTS_H */
