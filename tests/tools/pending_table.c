// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A loaded instance's pending table for the integration tests, read and cleared through the
 * core's own code (loader/core/pending.c): bpftool's formatted dump of every bucket is slow
 * enough under emulation (tests/kernels) to miss a test's window.
 *
 *   pending_table used DIR    the ways in use, one number
 *   pending_table ways DIR    the ways there are, one number
 *   pending_table clear DIR   every way emptied, as evicting every entry would
 *
 * DIR is the instance's pin dir. Errors: one line on stderr; exit 1, or 2 for a usage error.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "core/pending.h"

static int open_pinned(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/maps/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fprintf(stderr, "pending_table: %s: %s\n", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	struct pending_table table;
	int buckets_fd, seed_fd, err;

	if (argc != 3 ||
	    (strcmp(argv[1], "used") && strcmp(argv[1], "ways") && strcmp(argv[1], "clear"))) {
		fprintf(stderr, "usage: pending_table used|ways|clear PIN_DIR\n");
		return 2;
	}
	buckets_fd = open_pinned(argv[2], "pending_buckets");
	if (buckets_fd < 0)
		return 1;
	seed_fd = open_pinned(argv[2], "pending_seed");
	if (seed_fd < 0)
		return 1;
	err = pending_table_open(&table, buckets_fd, seed_fd);
	if (!err && !strcmp(argv[1], "used")) {
		err = pending_table_count(&table);
		if (err >= 0)
			printf("%d\n", err);
	} else if (!err && !strcmp(argv[1], "ways")) {
		printf("%u\n", table.n_buckets * BPFREDIR_PENDING_WAYS);
	} else if (!err) {
		err = pending_table_clear(&table);
	}
	if (err < 0)
		fprintf(stderr, "pending_table: %s %s: %s\n", argv[1], argv[2], strerror(-err));
	close(buckets_fd);
	close(seed_fd);
	return err < 0;
}
