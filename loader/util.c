// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Pieces every verb shares: argument parsing, the pin dir, and keeping the derived maps
 * (hidden ports, local addresses) in step with the rules and the host. */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"

bool scan_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(text, &end, 10);
	return *text && !*end && !errno && text[0] != '-' && text[0] != '+' && *out >= min &&
	       *out <= max;
}

bool scan_port(const char *text, __u16 *port)
{
	unsigned long val;

	if (!scan_uint(text, 1, 65535, &val))
		return false;
	*port = val;
	return true;
}

bool scan_proto(const char *text, __u8 *proto)
{
	if (!strcmp(text, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(text, "udp"))
		*proto = IPPROTO_UDP;
	else
		return false;
	return true;
}

int parse_port(const char *text, __u16 *port)
{
	return scan_port(text, port)
		       ? 0
		       : usage_error("invalid port '%s' (expected %s)", text, PORT_FORM);
}

int parse_proto(const char *text, __u8 *proto)
{
	return scan_proto(text, proto)
		       ? 0
		       : usage_error("invalid protocol '%s' (expected %s)", text, PROTO_FORM);
}

const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_UDP ? "udp" : proto == IPPROTO_TCP ? "tcp" : "?";
}

int require_root(void)
{
	if (geteuid() != 0)
		return fail("must run as root (BPF maps and links need CAP_BPF and CAP_NET_ADMIN)");
	return 0;
}

int pin_path(char *buf, size_t size, const char *sub, const char *name)
{
	int n;

	if (name)
		n = snprintf(buf, size, "%s/%s/%s", pin_dir, sub, name);
	else if (sub)
		n = snprintf(buf, size, "%s/%s", pin_dir, sub);
	else
		n = snprintf(buf, size, "%s", pin_dir);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == BPF_FS_MAGIC;
}

/* Like bpftool: mount bpffs at its usual place when the system has not. Elsewhere the
 * caller chose the place and must have mounted it. */
int ensure_bpffs(const char *dir)
{
	char parent[PATH_MAX];
	char *slash;

	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return fail("pin dir path too long: %s", dir);
	slash = strrchr(parent, '/');
	if (slash == parent)
		return fail("pin dir %s must be below a bpffs mount, such as %s", dir,
			    BPFFS_DEFAULT_MOUNT);
	*slash = '\0';
	if (on_bpffs(parent))
		return 0;
	if (strcmp(parent, BPFFS_DEFAULT_MOUNT))
		return fail("%s is not on a bpffs mount", parent);
	if (mount("bpf", BPFFS_DEFAULT_MOUNT, "bpf", 0, "mode=0700"))
		return fail("cannot mount bpffs at %s: %s", BPFFS_DEFAULT_MOUNT, strerror(errno));
	return 0;
}

bool is_loaded(void)
{
	char path[PATH_MAX];

	return !pin_path(path, sizeof(path), "maps", "policy") && !access(path, F_OK);
}

/* While load runs, links are held open and pinned only once everything else worked: if the
 * loader dies before, the kernel closes their fds and so detaches them. */
struct pin_batch {
	int fds[MAX_DEFERRED_PINS];
	char *paths[MAX_DEFERRED_PINS];
	int n;
};

static struct pin_batch batch;
static bool deferring;

void defer_pins(bool on)
{
	int i;

	deferring = on;
	if (on)
		return;
	for (i = 0; i < batch.n; i++) {
		close(batch.fds[i]);
		free(batch.paths[i]);
	}
	batch.n = 0;
}

/* Takes ownership of fd. */
int pin_link_fd(int fd, const char *path)
{
	int err = 0;

	if (!deferring) {
		if (bpf_obj_pin(fd, path))
			err = -errno;
		close(fd);
		return err;
	}
	if (batch.n == MAX_DEFERRED_PINS || !(batch.paths[batch.n] = strdup(path))) {
		close(fd);
		return -ENOMEM;
	}
	batch.fds[batch.n++] = fd;
	return 0;
}

int commit_deferred_pins(void)
{
	int i;

	for (i = 0; i < batch.n; i++)
		if (bpf_obj_pin(batch.fds[i], batch.paths[i]))
			return -errno;
	return 0;
}

/* Serialises bpfredir invocations on one pin dir: hidden entries and local addresses are
 * recomputed from the rules and the host, and two writers must not interleave. The lock
 * dies with us. */
int lock_pin_dir(void)
{
	int fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int open_pinned_maps(struct pinned_maps *maps)
{
	struct {
		const char *name;
		int *fd;
	} want[] = {
		{ "policy", &maps->policy },
		{ "flows", &maps->flows },
		{ "pending", &maps->pending },
		{ "local_addrs", &maps->local_addrs },
		{ "stats", &maps->stats },
		{ "port_stats", &maps->port_stats },
		{ "port_interest", &maps->port_interest },
	};
	__u32 slot = 0, set_id;
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		*want[i].fd = -1;
	maps->rules = -1;
	if (!is_loaded())
		return fail("not loaded at %s (run 'bpfredir load' first)", pin_dir);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (pin_path(path, sizeof(path), "maps", want[i].name))
			return fail("pin dir path too long: %s", pin_dir);
		*want[i].fd = bpf_obj_get(path);
		if (*want[i].fd < 0) {
			int err = errno;

			close_pinned_maps(maps);
			return fail("cannot open pinned map %s: %s", path, strerror(err));
		}
	}
	if (bpf_map_lookup_elem(maps->policy, &slot, &set_id) ||
	    (maps->rules = bpf_map_get_fd_by_id(set_id)) < 0) {
		close_pinned_maps(maps);
		return fail("no rule set in %s/maps/policy: %s", pin_dir, strerror(errno));
	}
	return 0;
}

void close_pinned_maps(struct pinned_maps *maps)
{
	int *fds[] = { &maps->policy,	   &maps->rules, &maps->flows,	    &maps->pending,
		       &maps->local_addrs, &maps->stats, &maps->port_stats, &maps->port_interest };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Make a derived map hold exactly n keys, with values[i * value_stride] for keys[i] (only
 * for new keys when keep_values, so counters survive). Only keys that owned() accepts (all,
 * without it) may be removed. New entries go in before stale ones come out, so a key that
 * stays never blinks out. */
static int map_set_exactly(int fd, const void *keys, size_t key_size, const void *values,
			   size_t value_stride, size_t n, bool keep_values,
			   bool (*owned)(const void *key))
{
	static __u8 stale[BPFREDIR_MAX_RULES * sizeof(struct redir_local_addr)];
	__u8 key[sizeof(struct redir_local_addr)], prev[sizeof(key)];
	size_t n_stale = 0, i;
	bool first = true;

	if (key_size > sizeof(key))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, (const __u8 *)keys + i * key_size,
					(const __u8 *)values + i * value_stride,
					keep_values ? BPF_NOEXIST : BPF_ANY) &&
		    !(keep_values && errno == EEXIST))
			return -errno;
	while (!bpf_map_get_next_key(fd, first ? NULL : prev, key)) {
		first = false;
		memcpy(prev, key, key_size);
		for (i = 0; i < n; i++)
			if (!memcmp((const __u8 *)keys + i * key_size, key, key_size))
				break;
		if (i == n && (!owned || owned(key)) && (n_stale + 1) * key_size <= sizeof(stale))
			memcpy(&stale[n_stale++ * key_size], key, key_size);
	}
	for (i = 0; i < n_stale; i++)
		if (bpf_map_delete_elem(fd, &stale[i * key_size]) && errno != ENOENT)
			return -errno;
	return 0;
}

static int port_key_index(const struct redir_port_key *keys, size_t n, __be16 port, __u8 proto)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (keys[i].port == port && keys[i].proto == proto)
			return i;
	return -1;
}

struct redir_policy_key public_key(__u16 port, __u8 proto)
{
	struct redir_policy_key key = { .port = htons(port),
					.proto = proto,
					.kind = POLICY_PUBLIC };

	return key;
}

static bool is_hidden_entry(const void *key)
{
	return ((const struct redir_policy_key *)key)->kind == POLICY_HIDDEN;
}

/* The target first: a rule acts once its public port is marked, and its replies leave from
 * the target. */
static int mark_rule_ports(int interest_fd, const struct redir_policy_key *key,
			   const struct redir_rule *rule)
{
	__u8 bit = key->proto == IPPROTO_TCP ? PORT_INTEREST_TCP : PORT_INTEREST_UDP, bits;
	__u32 ports[2] = { ntohs(rule->target_port), ntohs(key->port) };
	size_t i;

	for (i = 0; i < 2; i++) {
		if (bpf_map_lookup_elem(interest_fd, &ports[i], &bits))
			return -errno;
		if (bits & bit)
			continue;
		bits |= bit;
		if (bpf_map_update_elem(interest_fd, &ports[i], &bits, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* In a rule set, the hidden entries: each hiding rule's target, hidden from local clients
 * too when any of its rules asks. In port_stats: an entry for every public and every hidden
 * port. Both are recomputed from the set's rules rather than counted up and down, so they
 * cannot drift whatever failed before. In port_interest: both ports of every rule, marked
 * before the rule can act (a rule acts only on marked ports), never unmarked. */
int sync_rule_derived(int set_fd, int port_stats_fd, int interest_fd)
{
	static struct redir_policy_key hidden[BPFREDIR_MAX_RULES];
	static struct redir_rule hiding[BPFREDIR_MAX_RULES];
	static struct redir_port_key counted[2 * BPFREDIR_MAX_RULES];
	struct redir_policy_key key, *prev = NULL;
	size_t n_hidden = 0, n_counted = 0, i;
	struct redir_rule rule;
	void *zero_stats;
	int n_cpus, err;

	while (!bpf_map_get_next_key(set_fd, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC || bpf_map_lookup_elem(set_fd, &key, &rule))
			continue;
		err = mark_rule_ports(interest_fd, &key, &rule);
		if (err)
			return err;
		if (n_counted + 2 > 2 * BPFREDIR_MAX_RULES)
			return -E2BIG;
		if (port_key_index(counted, n_counted, key.port, key.proto) < 0)
			counted[n_counted++] =
				(struct redir_port_key){ .port = key.port, .proto = key.proto };
		if (!(rule.flags & REDIR_F_HIDE))
			continue;
		if (port_key_index(counted, n_counted, rule.target_port, key.proto) < 0)
			counted[n_counted++] = (struct redir_port_key){ .port = rule.target_port,
									.proto = key.proto };
		for (i = 0; i < n_hidden; i++)
			if (hidden[i].port == rule.target_port && hidden[i].proto == key.proto)
				break;
		if (i == n_hidden) {
			hidden[i] = (struct redir_policy_key){ .port = rule.target_port,
							       .proto = key.proto,
							       .kind = POLICY_HIDDEN };
			memset(&hiding[i], 0, sizeof(hiding[i]));
			n_hidden++;
		}
		hiding[i].flags |=
			rule.flags & (REDIR_F_HIDE | REDIR_F_HIDE_LOCAL | REDIR_F_REJECT);
	}
	err = map_set_exactly(set_fd, hidden, sizeof(hidden[0]), hiding, sizeof(hiding[0]),
			      n_hidden, false, is_hidden_entry);
	if (err)
		return err;
	n_cpus = libbpf_num_possible_cpus();
	if (n_cpus < 0)
		return n_cpus;
	zero_stats = calloc(n_cpus, sizeof(struct redir_port_stats));
	if (!zero_stats)
		return -ENOMEM;
	err = map_set_exactly(port_stats_fd, counted, sizeof(counted[0]), zero_stats, 0, n_counted,
			      true, NULL);
	free(zero_stats);
	return err;
}

/* For tests: BPFREDIR_FAILPOINT=NAME kills the loader at the point NAME as kill -9 would, so
 * a test can check what a crash at each such point leaves. */
void failpoint(const char *name)
{
	const char *want = getenv("BPFREDIR_FAILPOINT");

	if (want && !strcmp(want, name))
		raise(SIGKILL);
}

/* An attachment's entry in a rule set: while the live set has it, the interface or cgroup
 * acts (see POLICY_IFACE in bpfredir.h). */
int set_attachment(int set_fd, __u8 kind, __u64 id, bool on)
{
	struct redir_policy_key key = { .kind = kind, .id = id };
	struct redir_rule unused = {};

	if (on)
		return bpf_map_update_elem(set_fd, &key, &unused, BPF_ANY) ? -errno : 0;
	return bpf_map_delete_elem(set_fd, &key) && errno != ENOENT ? -errno : 0;
}

bool set_has_attachment(int set_fd, __u8 kind, __u64 id)
{
	struct redir_policy_key key = { .kind = kind, .id = id };
	struct redir_rule unused;

	return !bpf_map_lookup_elem(set_fd, &key, &unused);
}

int policy_set_create(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "policy_set", sizeof(struct redir_policy_key),
				sizeof(struct redir_rule), BPFREDIR_POLICY_ENTRIES, &opts);

	return fd < 0 ? -errno : fd;
}

/* One update of one slot: readers see the old set or the new one, never a mix. */
int policy_set_install(int policy_fd, int set_fd)
{
	__u32 slot = 0;

	return bpf_map_update_elem(policy_fd, &slot, &set_fd, BPF_ANY) ? -errno : 0;
}

/* IPv4 is kept as ::ffff:a.b.c.d, the form a v4-mapped AF_INET6 socket uses too. */
static void addr_map_v4(__u8 addr[BPFREDIR_ADDR_LEN], const struct in_addr *v4)
{
	memset(addr, 0, BPFREDIR_ADDR_LEN);
	addr[10] = 0xff;
	addr[11] = 0xff;
	memcpy(&addr[12], v4, sizeof(*v4));
}

static int addr_from_sockaddr(const struct sockaddr *sa, struct redir_local_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		addr_map_v4(out->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		memcpy(out->addr, &sin6->sin6_addr, sizeof(out->addr));
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* addr as kind, unless the list has it already (as its own address, which wins). */
static size_t local_addr_add(struct redir_local_addr *addrs, __u8 *kinds, size_t n,
			     const struct redir_local_addr *addr, __u8 kind)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!memcmp(&addrs[i], addr, sizeof(*addr))) {
			if (kind == LOCAL_ADDR_OWN)
				kinds[i] = kind;
			return n;
		}
	if (n == BPFREDIR_MAX_LOCAL_ADDRS)
		return n;
	addrs[n] = *addr;
	kinds[n] = kind;
	return n + 1;
}

/* The broadcast addresses the kernel makes routes for with an IPv4 address: its brd, and
 * its prefix's all-ones address when the prefix is shorter than /31. */
static size_t local_broadcasts_add(struct redir_local_addr *addrs, __u8 *kinds, size_t n,
				   const struct ifaddrs *ifa)
{
	const struct sockaddr_in *sin = (const void *)ifa->ifa_addr;
	const struct sockaddr_in *mask = (const void *)ifa->ifa_netmask;
	struct redir_local_addr brd;
	struct in_addr all_ones;

	if ((ifa->ifa_flags & IFF_BROADCAST) && ifa->ifa_broadaddr &&
	    ifa->ifa_broadaddr->sa_family == AF_INET &&
	    !addr_from_sockaddr(ifa->ifa_broadaddr, &brd))
		n = local_addr_add(addrs, kinds, n, &brd, LOCAL_ADDR_BROADCAST);
	if (mask && mask->sin_family == AF_INET && ntohl(mask->sin_addr.s_addr) < 0xfffffffe) {
		all_ones.s_addr = sin->sin_addr.s_addr | ~mask->sin_addr.s_addr;
		memset(&brd, 0, sizeof(brd));
		addr_map_v4(brd.addr, &all_ones);
		n = local_addr_add(addrs, kinds, n, &brd, LOCAL_ADDR_BROADCAST);
	}
	return n;
}

/* The socket hooks cannot ask the FIB whether an address is ours, so they read this copy of
 * the host's addresses (in the loader's netns), refreshed by every bpfredir invocation. It
 * also holds the IPv4 broadcast addresses, for the datapath where the host does not forward
 * (see redir_local_addr_kind). */
int sync_local_addrs(int map_fd)
{
	static struct redir_local_addr addrs[BPFREDIR_MAX_LOCAL_ADDRS];
	static __u8 kinds[BPFREDIR_MAX_LOCAL_ADDRS];
	struct ifaddrs *ifa_list, *ifa;
	struct redir_local_addr addr;
	size_t n = 0;

	if (getifaddrs(&ifa_list))
		return -errno;
	for (ifa = ifa_list; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || addr_from_sockaddr(ifa->ifa_addr, &addr))
			continue;
		n = local_addr_add(addrs, kinds, n, &addr, LOCAL_ADDR_OWN);
		if (ifa->ifa_addr->sa_family == AF_INET)
			n = local_broadcasts_add(addrs, kinds, n, ifa);
	}
	freeifaddrs(ifa_list);
	return map_set_exactly(map_fd, addrs, sizeof(addrs[0]), kinds, sizeof(kinds[0]), n, false,
			       NULL);
}

int sync_derived(const struct pinned_maps *maps)
{
	int err = sync_rule_derived(maps->rules, maps->port_stats, maps->port_interest);

	return err ? err : sync_local_addrs(maps->local_addrs);
}

bool scan_addr(const char *text, __u8 addr[BPFREDIR_ADDR_LEN])
{
	struct in_addr v4;

	memset(addr, 0, BPFREDIR_ADDR_LEN);
	if (inet_pton(AF_INET, text, &v4) == 1) {
		addr_map_v4(addr, &v4);
		return true;
	}
	return inet_pton(AF_INET6, text, addr) == 1;
}

int parse_addr(const char *text, __u8 addr[BPFREDIR_ADDR_LEN])
{
	return scan_addr(text, addr)
		       ? 0
		       : usage_error("invalid address '%s' (expected %s)", text, ADDR_FORM);
}

void format_addr(const __u8 addr[BPFREDIR_ADDR_LEN], char *buf, size_t size)
{
	static const __u8 v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (!memcmp(addr, v4_mapped, sizeof(v4_mapped)))
		inet_ntop(AF_INET, addr + 12, buf, size);
	else
		inet_ntop(AF_INET6, addr, buf, size);
}

void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}
