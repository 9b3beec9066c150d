/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Moved to core/iface.h; kept for tests/unit/test_iface.c, which includes "iface.h", until it
 * includes the core's header. */
#include "core/iface.h"
