// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Pieces every verb shares: argument parsing, the pin dir, and keeping the derived maps
 * (hidden ports, local addresses) in step with the rules and the host. */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include "loader.h"

int parse_port(const char *text, __u16 *port)
{
	unsigned long val;
	char *end;

	errno = 0;
	val = strtoul(text, &end, 10);
	if (!*text || *end || errno || val < 1 || val > 65535 || text[0] == '-' || text[0] == '+')
		return usage_error("invalid port '%s' (expected 1-65535)", text);
	*port = val;
	return 0;
}

int parse_proto(const char *text, __u8 *proto)
{
	if (!strcmp(text, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(text, "udp"))
		*proto = IPPROTO_UDP;
	else
		return usage_error("invalid protocol '%s' (expected tcp or udp)", text);
	return 0;
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

	return !pin_path(path, sizeof(path), "maps", "rules") && !access(path, F_OK);
}

/* Serialises bpfredir invocations on one pin dir: the hidden and local-address maps are
 * recomputed from the rules, and two writers must not interleave. The lock dies with us. */
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
		{ "rules", &maps->rules },	       { "hidden", &maps->hidden },
		{ "flows", &maps->flows },	       { "local_addrs", &maps->local_addrs },
		{ "stats", &maps->stats },
	};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		*want[i].fd = -1;
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
	return 0;
}

void close_pinned_maps(struct pinned_maps *maps)
{
	int *fds[] = { &maps->rules, &maps->hidden, &maps->flows, &maps->local_addrs,
		       &maps->stats };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Make a derived map hold exactly n keys, with values[i * value_stride] for keys[i]. New
 * entries go in before stale ones come out, so a key that stays never blinks out. */
static int map_set_exactly(int fd, const void *keys, size_t key_size, const void *values,
			   size_t value_stride, size_t n)
{
	static __u8 stale[BPFREDIR_MAX_RULES * sizeof(struct redir_local_addr)];
	__u8 key[sizeof(struct redir_local_addr)], prev[sizeof(key)];
	size_t n_stale = 0, i;
	bool first = true;

	if (key_size > sizeof(key))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, (const __u8 *)keys + i * key_size,
					(const __u8 *)values + i * value_stride, BPF_ANY))
			return -errno;
	while (!bpf_map_get_next_key(fd, first ? NULL : prev, key)) {
		first = false;
		memcpy(prev, key, key_size);
		for (i = 0; i < n; i++)
			if (!memcmp((const __u8 *)keys + i * key_size, key, key_size))
				break;
		if (i == n && (n_stale + 1) * key_size <= sizeof(stale))
			memcpy(&stale[n_stale++ * key_size], key, key_size);
	}
	for (i = 0; i < n_stale; i++)
		if (bpf_map_delete_elem(fd, &stale[i * key_size]) && errno != ENOENT)
			return -errno;
	return 0;
}

/* The hidden map is derived: each hiding rule's target, with the number of rules hiding it.
 * Recomputing it from the rules, rather than counting up and down, cannot drift whatever
 * failed before. */
int sync_hidden(const struct pinned_maps *maps)
{
	static struct redir_hidden_key keys[BPFREDIR_MAX_RULES];
	static __u32 counts[BPFREDIR_MAX_RULES];
	struct redir_rule_key rk, *prev = NULL;
	struct redir_rule rule;
	size_t n = 0, i;

	while (!bpf_map_get_next_key(maps->rules, prev, &rk)) {
		prev = &rk;
		if (bpf_map_lookup_elem(maps->rules, &rk, &rule) || !(rule.flags & REDIR_F_HIDE))
			continue;
		for (i = 0; i < n; i++)
			if (keys[i].port == rule.target_port && keys[i].proto == rk.proto)
				break;
		if (i == n) {
			if (n == BPFREDIR_MAX_RULES)
				return -E2BIG;
			memset(&keys[n], 0, sizeof(keys[n]));
			keys[n].port = rule.target_port;
			keys[n].proto = rk.proto;
			counts[n++] = 0;
		}
		counts[i]++;
	}
	return map_set_exactly(maps->hidden, keys, sizeof(keys[0]), counts, sizeof(counts[0]), n);
}

static int addr_from_sockaddr(const struct sockaddr *sa, struct redir_local_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		out->addr[10] = 0xff;
		out->addr[11] = 0xff;
		memcpy(&out->addr[12], &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		memcpy(out->addr, &sin6->sin6_addr, sizeof(out->addr));
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* The socket hooks cannot ask the FIB whether an address is ours, so they read this copy of
 * the host's addresses (in the loader's netns), refreshed by every bpfredir invocation. */
int sync_local_addrs(int map_fd)
{
	static struct redir_local_addr addrs[BPFREDIR_MAX_LOCAL_ADDRS];
	struct ifaddrs *ifa_list, *ifa;
	const __u8 present = 1;
	size_t n = 0, i;

	if (getifaddrs(&ifa_list))
		return -errno;
	for (ifa = ifa_list; ifa && n < BPFREDIR_MAX_LOCAL_ADDRS; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || addr_from_sockaddr(ifa->ifa_addr, &addrs[n]))
			continue;
		for (i = 0; i < n; i++)
			if (!memcmp(&addrs[i], &addrs[n], sizeof(addrs[n])))
				break;
		if (i == n)
			n++;
	}
	freeifaddrs(ifa_list);
	return map_set_exactly(map_fd, addrs, sizeof(addrs[0]), &present, 0, n);
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
