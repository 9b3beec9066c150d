/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef BPFREDIR_CORE_GUARD_H
#define BPFREDIR_CORE_GUARD_H

#include <stdbool.h>
#include "pins.h"

/* The netns guard (core/guard.c): hidden ports dropped on every path into the network namespace,
 * not only on attached interfaces. */
enum guard_kind {
	GUARD_NONE,
	GUARD_SK_LOOKUP, /* cannot see UDP broadcast and multicast */
	GUARD_NETFILTER,
};
const char *guard_kind_name(enum guard_kind kind);
enum guard_kind guard_running(void);
/* load: attach the best guard the kernel has, its pins deferred like every link's. A kernel
 * without one is no error (load says so); 0 or -errno (with a pr_warn). */
int guard_start(struct pin_txn *txn, int policy_fd);
void guard_announce_running(void);
/* load over a loaded pin dir: this build's guard replaces the running one with no gap.
 * How many guard links changed, or -errno; guard_intact: the guard runs, as the best kind there is (so a load of the
 * same build need not look). */
int guard_upgrade(void);
bool guard_intact(void);
/* The link pins of a guard of this kind (names[1] NULL for one link, both for none). */
void guard_pin_names(enum guard_kind kind, const char *names[2]);

#endif /* BPFREDIR_CORE_GUARD_H */
