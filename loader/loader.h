/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Loader-internal declarations: shared by the verbs in loader/. */
#ifndef BPFREDIR_LOADER_H
#define BPFREDIR_LOADER_H

#include <stdbool.h>
#include <dirent.h>
#include <stdio.h>
#include <linux/types.h>
#include "bpfredir.h"
#include "core/log.h"
#include "core/mapsync.h"
#include "core/ruleset.h"

#define BPFREDIR_DEFAULT_PIN_DIR "/sys/fs/bpf/bpfredir"
#define BPFFS_DEFAULT_MOUNT "/sys/fs/bpf"

/* Exit codes. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

struct cmd {
	const char *name;
	int (*func)(int argc, char **argv);
	const char *usage;
};

extern bool verbose;
extern const char *pin_dir;
extern const struct cmd *cur_cmd; /* the verb being run, for its messages and --help */

/* One-line diagnostics; both return the exit code to pass up. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same message as fail(), returning err (a -errno) for functions that pass errors up. */
int fail_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Options every verb takes; put COMMON_LONG_OPTS in each verb's option table and pass
 * the options a verb does not know itself to common_opt(). Option strings start with
 * ':' so a missing argument is told apart from an unknown option. */
enum {
	OPT_PIN_DIR = 0x100,
	OPT_JSON,
	OPT_PROTO,
	OPT_NO_HIDE,
	OPT_FLOWS,
	OPT_ADDR,
	OPT_HIDE_LOCAL,
	OPT_PROMETHEUS,
	OPT_INTERVAL,
	OPT_COUNT,
	OPT_DRY_RUN,
	OPT_ATTACH,
	OPT_MODE,
	OPT_XDP_GENERIC,
	OPT_REJECT,
	OPT_ALLOW_EMPTY,
};
#define COMMON_SHORT_OPTS "vh"
#define COMMON_LONG_OPTS                                                                           \
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },                                       \
		{ "verbose", no_argument, NULL, 'v' },                                             \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}
/* Returns -1 when the verb should go on, or the exit code it should return now. */
int common_opt(int opt, char **argv);

/* scan_*: is text a valid value (and what)? parse_*: the same for a command-line argument,
 * with the usage error printed. The *_FORM strings say what is expected. */
#define PORT_FORM "1-65535"
#define PROTO_FORM "tcp or udp"
#define ADDR_FORM "an IPv4 or IPv6 address"
bool scan_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out);
const char *number_hint(const char *text);
bool scan_port(const char *text, __u16 *port);
bool scan_proto(const char *text, __u8 *proto);
bool scan_addr(const char *text, __u8 addr[BPFREDIR_ADDR_LEN]);
int parse_port(const char *text, __u16 *port);
int parse_proto(const char *text, __u8 *proto);
const char *proto_name(__u8 proto);
int require_root(void);

/* The pin dir (pins.c): DIR/maps/<map name>, DIR/progs/<program name>,
 * DIR/links/<hook>_<ifindex or cgroup id>. pins_open() opens and checks it (bpffs, a real
 * directory, root's alone, not a mount's root) and, unless PINS_READ, locks it; every path
 * below is then made through the open directory, never looked up by name again. */
enum pin_sub { PIN_LINKS, PIN_PROGS, PIN_MAPS, PIN_SUB__MAX };
enum pins_mode {
	PINS_READ,   /* look only: no lock, nothing made or cleaned */
	PINS_WRITE,  /* an existing pin dir, locked */
	PINS_CREATE, /* made if missing (and bpffs mounted), locked, an interrupted run cleaned */
};
/* NULL when path can name a pin dir, else what is wrong with it. */
const char *pin_dir_problem(const char *path);
/* 0, -ENOENT when there is no pin dir (nothing printed), or -errno after a message. */
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

enum pin_link_kind {
	LINK_TCX_INGRESS,
	LINK_TCX_EGRESS,
	LINK_XDP_NATIVE,
	LINK_XDP_GENERIC,
	LINK_CGROUP, /* one per socket hook */
	LINK_ADDRWATCH_V4,
	LINK_ADDRWATCH_V6,
	LINK_GUARD_NF4, /* the netns guard (guard.c): netfilter, IPv4 and IPv6 */
	LINK_GUARD_NF6,
	LINK_GUARD_SK_LOOKUP, /* or sk_lookup */
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

struct pinned_maps {
	int policy; /* the outer map */
	int rules;  /* the live rule set in its slot: public and hidden entries */
	int flows;
	int local_addrs;
	int addr_holders;
	int stats;
	int port_stats;
	int pending;
	int port_interest;
};

int open_pinned_maps(struct pinned_maps *maps);
void close_pinned_maps(struct pinned_maps *maps);
/* Bring what is derived from the rules and the host (the set's hidden entries, per-port
 * counters, local addresses) in line with them. */
int sync_derived(const struct pinned_maps *maps);
/* Make local_addrs and addr_holders hold the host's addresses (hostaddr.c); -EOVERFLOW,
 * with what fits written, when there are more than they hold: local_addrs_error() (which
 * gives strerror() of any other error) says so. */
int sync_local_addrs(int addrs_fd, int holders_fd);
const char *local_addrs_error(int err);
struct in_addr;
void addr_map_v4(__u8 addr[BPFREDIR_ADDR_LEN], const struct in_addr *v4);
/* The sizes of flows (asked for: want) and pending, per possible CPU at least
 * BPFREDIR_LRU_PER_CPU. */
__u32 lru_min_entries(void);
__u32 flows_entries(__u32 want);
__u32 pending_entries(__u32 flows);
/* Test builds only (make tests-build: build/tests/bpfredir-failpoints); nothing otherwise. */
#ifdef BPFREDIR_FAILPOINTS
void failpoint(const char *name);
#else
static inline void failpoint(const char *name)
{
}
#endif
int parse_addr(const char *text, __u8 addr[BPFREDIR_ADDR_LEN]);
void format_addr(const __u8 addr[BPFREDIR_ADDR_LEN], char *buf, size_t size);

/* A rule with its counters, and all rules with the global counters, as read at one time. */
struct listed_rule {
	struct redir_policy_key key; /* kind POLICY_PUBLIC */
	struct redir_rule rule;
	__u64 counts[PORT_STAT__MAX];
};

struct snapshot {
	struct listed_rule rules[BPFREDIR_MAX_RULES];
	size_t n;
	__u64 stats[STAT__MAX];
};

int take_snapshot(const struct pinned_maps *maps, struct snapshot *snap);

/* What load attaches; apply builds one from its file. */
#define MAX_IFACES 64
/* The kernel's ENOTSUPP, which user space headers lack. */
#define ENOTSUPP_KERNEL 524
#define MAX_CGROUPS 64
#define N_SOCK_HOOKS_MAX 8
#define BPFREDIR_MIN_FLOWS 1024
#define BPFREDIR_MAX_FLOWS (1U << 24)
enum attach_mode {
	ATTACH_AUTO, /* tcx, or legacy tc where the kernel has no tcx */
	ATTACH_TCX,
	ATTACH_TC,
};

/* What runs ingress on an interface; egress is always TC (tcx, or legacy tc as attach_mode
 * says). */
enum iface_mode {
	IFACE_TC,	   /* TC ingress */
	IFACE_XDP,	   /* XDP in the driver (native) */
	IFACE_XDP_GENERIC, /* XDP on the skb, for any interface */
};

struct load_request {
	enum attach_mode attach;
	const char *ifnames[MAX_IFACES];
	enum iface_mode if_modes[MAX_IFACES];
	int n_ifaces;
	const char *cgroups[MAX_CGROUPS]; /* NULL: the cgroup2 root */
	int n_cgroups;
	__u32 flows;
};

/* Link pins made through pin_link_fd() wait for commit_deferred_pins() while deferring;
 * defer_pins(false) drops (and so detaches) whatever was not committed. */
/* + 2 for the address watch, + 2 for the guard */
#define MAX_DEFERRED_PINS (2 * MAX_IFACES + N_SOCK_HOOKS_MAX * MAX_CGROUPS + 4)
void defer_pins(bool on);
int pin_link_fd(int fd, const char *path);
int commit_deferred_pins(void);

/* The pin dir locked and not loaded: load everything, or nothing. */
int load_locked(const struct load_request *req);
/* The pin dir locked and loaded: this build's programs in place of the loaded ones, maps
 * kept. How many attachments changed, or -1 after a message. */
int upgrade_programs(void);
int attach_iface(int ifindex, const char *ifname, const int tc_prog_fds[2], enum attach_mode mode);
void detach_iface(int ifindex);
bool iface_attached(int ifindex);

/* XDP mode; see xdp.c. iface_mode_of: how the interface is attached, or -1 if it is not. */
#define XDP_PROG_NAME "bpfredir_xdp"
const char *iface_mode_name(enum iface_mode mode);
int iface_mode_of(int ifindex);
int xdp_check_foreign(int ifindex, const char *ifname);
int attach_iface_xdp(int ifindex, const char *ifname, const int tc_prog_fds[2], int xdp_fd,
		     enum iface_mode mode, enum attach_mode attach);
void detach_xdp(int ifindex);

/* Legacy tc (clsact + cls_bpf), recorded in the pinned tc_legacy map; see tclegacy.c. */
int open_tc_legacy_map(void);
int tc_legacy_attach(int map_fd, int ifindex, const int prog_fds[2], __u32 flags);
bool tc_legacy_attached(int map_fd, int ifindex);
/* A record, whether or not its filters are still there. */
bool tc_legacy_recorded(int ifindex);
/* A record of an egress filter alone (XDP mode's egress, where tcx is missing). */
bool tc_legacy_egress_only(int ifindex);
void tc_legacy_query(int ifindex, const struct redir_tc_attach *rec, __u32 prog_ids[2]);
void tc_legacy_detach(int map_fd, int ifindex);
int tc_legacy_each(int map_fd, void (*fn)(int map_fd, int ifindex, void *arg), void *arg);

/* The socket hooks, attached as one set per cgroup. */
#define N_SOCK_HOOKS N_SOCK_HOOKS_MAX
struct sock_hook {
	const char *prog;   /* BPF program name, also its pin name in DIR/progs */
	const char *suffix; /* in the link's pin name: links/cgroup_<id>_<suffix> */
	int type;	    /* enum bpf_attach_type */
};
extern const struct sock_hook sock_hooks[N_SOCK_HOOKS];

/* NULL path: the cgroup2 root. open_cgroup prints the error itself; cgroup_open returns
 * -errno (-EMEDIUMTYPE: not on cgroup2) for a caller that says where the path came from. */
int open_cgroup(const char *path, char *resolved, size_t size, int *fd, __u64 *id);
int cgroup_open(const char *path, char *resolved, size_t size, int *fd, __u64 *id);
int attach_cgroup(int cgroup_fd, __u64 cgroup_id, const int prog_fds[N_SOCK_HOOKS]);
int detach_cgroup(__u64 cgroup_id);
bool cgroup_attached(__u64 cgroup_id);
int open_pinned_progs(int prog_fds[N_SOCK_HOOKS]);
int open_pinned_tc_progs(int fds[2]);
/* DIR/progs/NAME opened: an fd, or -errno. */
int open_pinned_prog(const char *name);
/* Close the fds that are open (>= 0) of n. */
void close_fds(int *fds, int n);
/* For a verb with only the common options and no arguments: -1 to go on, or the exit code. */
int parse_common_only(int argc, char **argv);
/* After a verb's options: a usage error for anything left over, else -1. */
int extra_args(int argc, char **argv);
/* For an option with an optional path: --opt=PATH, --opt PATH, or --opt alone (NULL). */
const char *optional_path_arg(int argc, char **argv);
/* Remove every pin bpfredir makes under the pin dir, and the dir itself unless keep_dir. */
int remove_pins(bool keep_dir);
int finish_interrupted(bool keep_dir);

/* The netns guard (guard.c): hidden ports dropped on every path into the network namespace,
 * not only on attached interfaces. */
enum guard_kind {
	GUARD_NONE,
	GUARD_SK_LOOKUP, /* cannot see UDP broadcast and multicast */
	GUARD_NETFILTER,
};
const char *guard_kind_name(enum guard_kind kind);
enum guard_kind guard_running(void);
/* load: attach the best guard the kernel has, its pins deferred like every link's. A kernel
 * without one is no error (load says so); 0 or -errno (printed). */
int guard_start(int policy_fd);
void guard_announce_running(void);
/* load over a loaded pin dir: this build's guard replaces the running one with no gap.
 * How many guard links changed, or -errno; guard_upgrade_or_fail prints the error and
 * returns -1. guard_intact: the guard runs, as the best kind there is (so a load of the
 * same build need not look). */
int guard_upgrade(void);
int guard_upgrade_or_fail(void);
bool guard_intact(void);
const void *guard_elf_bytes(size_t *size);
/* add and apply: a warning on stderr for each interface where a hidden port of the set live
 * in policy is reachable. */
void guard_warn(int policy_fd);
/* status: the guard line and the interfaces it has to cover (text), or the "guard" object. */
void guard_status(int set_fd, bool json);

/* Minimal JSON writer for --json output. */
void json_string(FILE *out, const char *s);

int do_load(int argc, char **argv);
int do_unload(int argc, char **argv);
int do_add(int argc, char **argv);
int do_del(int argc, char **argv);
int do_list(int argc, char **argv);
int do_stats(int argc, char **argv);
int do_status(int argc, char **argv);
int do_attach(int argc, char **argv);
int do_apply(int argc, char **argv);
int do_watch(int argc, char **argv);
int do_detach(int argc, char **argv);

#endif /* BPFREDIR_LOADER_H */
