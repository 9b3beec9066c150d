/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Everything bpfredir puts under the pin dir, how it is named, and the directory itself: the
 * one owner of the layout. The names of links are made and read back by one pair of functions
 * (pin_link_name, pin_link_parse), the socket programs' names and hooks are in one table. */
#ifndef BPFREDIR_CORE_PINS_H
#define BPFREDIR_CORE_PINS_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define BPFREDIR_DEFAULT_PIN_DIR "/sys/fs/bpf/bpfredir"
#define BPFFS_DEFAULT_MOUNT "/sys/fs/bpf"

/* The pin dir pins_open() opens (default BPFREDIR_DEFAULT_PIN_DIR); set it before. */
extern const char *pin_dir;

/* The pin dir: DIR/maps/<map name>, DIR/progs/<program name>,
 * DIR/links/<hook>_<ifindex or cgroup id>. pins_open() opens and checks it (bpffs, a real
 * directory, root's alone, not a mount's root) and, unless PINS_READ, locks it; every path
 * below is then made through the open directory, never looked up by name again. */
enum pin_sub { PIN_LINKS, PIN_PROGS, PIN_MAPS, PIN_SUB__MAX };
enum pins_mode {
	PINS_READ,   /* look only: no lock, nothing made or cleaned */
	PINS_WRITE,  /* an existing pin dir, locked */
	PINS_CREATE, /* made if missing (and bpffs mounted), locked */
};
/* NULL when path can name a pin dir, else what is wrong with it. */
const char *pin_dir_problem(const char *path);
/* 0, -ENOENT when there is no pin dir (nothing said), or -errno after a pr_warn. PINS_CREATE
 * leaves finishing an interrupted run to the caller (cleanup.c). */
int pins_open(enum pins_mode mode);
void pins_close(void);
int pins_make_subdirs(void);
/* A path for the bpf() calls: /proc/self/fd/N/NAME, N the checked directory. */
int pin_path(char *buf, size_t size, const char *sub, const char *name);
/* DIR/SUB/NAME as the user knows it, for messages (a static buffer). */
const char *pin_display(const char *sub, const char *name);
int pin_dir_fd(const char *sub);
bool pin_exists(const char *sub, const char *name);
int pin_unlink(const char *sub, const char *name);
DIR *pin_opendir(const char *sub);
bool is_loaded(void);
/* Unlink every pin (the marker first) and, unless keep_dir, the pin dir. */
int pins_remove_all(bool keep_dir);
/* Any of links/, progs/, maps/ there (load makes them). */
bool pins_any_subdir(void);

enum pin_link_kind {
	LINK_TCX_INGRESS,
	LINK_TCX_EGRESS,
	LINK_XDP_NATIVE,
	LINK_XDP_GENERIC,
	LINK_CGROUP, /* one per socket hook */
	LINK_ADDRWATCH_V4,
	LINK_ADDRWATCH_V6,
	LINK_GUARD_NF4, /* the netns guard (core/guard.c): netfilter, IPv4 and IPv6 */
	LINK_GUARD_NF6,
	LINK_GUARD_SK_LOOKUP, /* or sk_lookup */
	LINK_STEER_SK_LOOKUP, /* socket steering (core/steer.c) */
	LINK__MAX,
};

struct pin_link {
	enum pin_link_kind kind;
	__u64 where;	  /* ifindex or cgroup id; 0 for the rest */
	const char *hook; /* LINK_CGROUP: sock_hooks[].suffix */
};

/* A link's name under links/ (a static buffer), and back. */
const char *pin_link_name(enum pin_link_kind kind, __u64 where, const char *hook);
bool pin_link_parse(const char *name, struct pin_link *link);
/* The pinned link is attached somewhere still (false for a missing pin too). */
bool pin_link_alive(const char *name);

/* The socket hooks, attached as one set per cgroup. */
#define N_SOCK_HOOKS 8
struct sock_hook {
	const char *prog;   /* BPF program name, also its pin name in DIR/progs */
	const char *suffix; /* in the link's pin name: links/cgroup_<id>_<suffix> */
	int type;	    /* enum bpf_attach_type */
};
extern const struct sock_hook sock_hooks[N_SOCK_HOOKS];

/* The pinned programs, DIR/progs/NAME: an fd, or -errno. The socket hooks' and TC's open
 * all or none (every fd -1 first, so close_fds is safe after a failure). */
#define TC_IN_PROG_NAME "bpfredir_tc_in"
#define TC_EG_PROG_NAME "bpfredir_tc_eg"
#define XDP_PROG_NAME "bpfredir_xdp"
int open_pinned_prog(const char *name);
int open_pinned_progs(int prog_fds[N_SOCK_HOOKS]);
int open_pinned_tc_progs(int fds[2]);
/* Close the fds that are open (>= 0) of n. */
void close_fds(int *fds, int n);

/* What one load or apply attaches at most. */
#define MAX_IFACES 64
#define MAX_CGROUPS 64

/* Link pins made while a load runs: held open and pinned only once everything else worked, so
 * if the loader dies before, the kernel closes their fds and so detaches them. */
/* + steering's sock_ops per cgroup, + watch, guard, steering */
#define PIN_TXN_MAX (2 * MAX_IFACES + (N_SOCK_HOOKS + 1) * MAX_CGROUPS + 5)
struct pin_txn {
	int fds[PIN_TXN_MAX];
	char *paths[PIN_TXN_MAX];
	int n;
};

void pin_txn_init(struct pin_txn *txn);
/* Pin link fd at path, now (txn NULL) or at pin_txn_commit(txn). Takes the fd either way. */
int pin_link_fd(struct pin_txn *txn, int fd, const char *path);
int pin_txn_commit(struct pin_txn *txn);
/* Closes what is held, so whatever was not committed detaches. */
void pin_txn_end(struct pin_txn *txn);

#endif /* BPFREDIR_CORE_PINS_H */
