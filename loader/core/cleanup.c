// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Removing what bpfredir pinned: at unload, after a failed load, and what a killed run left. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "attach.h"
#include "log.h"
#include "pins.h"

static void detach_legacy_one(int map_fd, int ifindex, void *arg)
{
	tc_legacy_detach(map_fd, ifindex);
}

int remove_pins(bool keep_dir)
{
	int map_fd = open_tc_legacy_map();

	/* Filters are no pins: detach the ones on record before the record goes. */
	if (map_fd >= 0) {
		tc_legacy_each(map_fd, detach_legacy_one, NULL);
		close(map_fd);
	}
	return pins_remove_all(keep_dir);
}

/* Pins without the marker are what a load or unload that was killed left: finish it, and
 * remove the pin dir too unless keep_dir (a load goes on in it). */
int finish_interrupted(bool keep_dir)
{
	int err;

	if (is_loaded() || !pins_any_subdir())
		return 0;
	err = remove_pins(keep_dir);
	if (err)
		return pr_warn_err(err, "cannot clean up after an interrupted run in %s: %s",
				   pin_dir, strerror(-err));
	pr_info("removed what an interrupted run left in %s", pin_dir);
	return 0;
}

/* Load and apply: the pin dir made if missing, locked, and clean of an interrupted run. */
int pins_create(void)
{
	int err = pins_open(PINS_CREATE);

	if (!err && (err = finish_interrupted(true)))
		pins_close();
	return err;
}
