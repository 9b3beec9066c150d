/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The host's own addresses in local_addrs and addr_holders, read from rtnetlink. */
#ifndef BPFREDIR_CORE_HOSTADDR_H
#define BPFREDIR_CORE_HOSTADDR_H

/* Make local_addrs and addr_holders hold the host's addresses, and move addrs_gen (gen_fd) on;
 * -EOVERFLOW, with what fits written, when there are more than they hold: local_addrs_error()
 * (which gives strerror() of any other error) says so. */
int sync_local_addrs(int addrs_fd, int holders_fd, int gen_fd);
const char *local_addrs_error(int err);

#endif /* BPFREDIR_CORE_HOSTADDR_H */
