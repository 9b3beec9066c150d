/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inside the pin dir's owner only (pins.c, pins_open.c): the open directory's state. */
#ifndef BPFREDIR_CORE_PINS_INT_H
#define BPFREDIR_CORE_PINS_INT_H

#include <limits.h>
#include <stdbool.h>
#include "pins.h"

struct pins_state {
	int parent; /* the directory the pin dir is in */
	int dir;    /* the pin dir, checked */
	int sub[PIN_SUB__MAX];
	char base[NAME_MAX + 1];
	bool locked;
};

extern struct pins_state pins;
extern const char *const pin_subdirs[PIN_SUB__MAX];
/* The index of subdir sub in pin_subdirs, or -1. */
int sub_index(const char *sub);
void close_fd(int *fd);

#endif /* BPFREDIR_CORE_PINS_INT_H */
