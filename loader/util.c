// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Pieces every verb shares: argument parsing, the pin dir, and keeping the derived maps
 * (hidden ports, local addresses) in step with the rules and the host. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"

/* Decimal digits only: strtoul alone would skip leading space and take a sign, so that
 * " -18446744073709551615" came out as 1. A leading zero is refused too: iptables reads
 * ports with strtoul's base 0 (xtables_parse_port), where "010" is 8, and shells do the same
 * in arithmetic, so "08445" has no reading everyone agrees on. "0" alone is a number. */
bool scan_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)text[0]) || (text[0] == '0' && text[1]))
		return false;
	errno = 0;
	*out = strtoul(text, &end, 10);
	return !*end && !errno && *out >= min && *out <= max;
}

/* Why scan_uint refused a number strtoul alone would have read, for the message. */
const char *number_hint(const char *text)
{
	if ((text[0] && strchr(" \t+-", text[0])) || (text[0] == '0' && text[1]))
		return ", in decimal digits only: no sign, space or leading zero";
	return "";
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
	return scan_port(text, port) ? 0
				     : usage_error("invalid port '%s' (expected %s%s)", text,
						   PORT_FORM, number_hint(text));
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

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool cap_effective(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].effective & (1U << (cap % 32));
}

/* Not uid 0 but what bpfredir uses, so a service may run with only these (and root with a
 * bounding set): CAP_BPF for maps and programs (CAP_SYS_ADMIN stands in on kernels that
 * predate CAP_BPF), CAP_NET_ADMIN for TC, XDP and cgroup attachments, CAP_SYS_ADMIN for
 * objects looked up by id (the live rule set, every status view). CAP_PERFMON only serves
 * the optional address-following programs. */
int require_root(void)
{
	static const struct {
		int cap;
		const char *name;
	} needed[] = { { CAP_BPF, "CAP_BPF" },
		       { CAP_NET_ADMIN, "CAP_NET_ADMIN" },
		       { CAP_SYS_ADMIN, "CAP_SYS_ADMIN" } };
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	char missing[128] = "";
	size_t i, len = 0;
	FILE *f;
	int last_cap = CAP_BPF;

	if (syscall(SYS_capget, &hdr, data))
		return fail("cannot read this process's capabilities: %s", strerror(errno));
	f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f && fscanf(f, "%d", &last_cap) != 1)
		last_cap = CAP_BPF;
	if (f)
		fclose(f);
	for (i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (needed[i].cap > last_cap || cap_effective(data, needed[i].cap))
			continue;
		len += snprintf(missing + len, sizeof(missing) - len, "%s%s", len ? ", " : "",
				needed[i].name);
	}
	if (len)
		return fail("missing capabilities %s (run as root)", missing);
	return 0;
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
		{ "addr_holders", &maps->addr_holders },
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
			return fail("pin dir not open: %s", pin_dir);
		*want[i].fd = bpf_obj_get(path);
		if (*want[i].fd < 0) {
			int err = errno;

			close_pinned_maps(maps);
			return fail("cannot open pinned map %s: %s",
				    pin_display("maps", want[i].name), strerror(err));
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
	int *fds[] = { &maps->policy,  &maps->rules,	   &maps->flows,
		       &maps->pending, &maps->local_addrs, &maps->addr_holders,
		       &maps->stats,   &maps->port_stats,  &maps->port_interest };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

#ifdef BPFREDIR_FAILPOINTS
/* For tests: BPFREDIR_FAILPOINT=NAME kills the loader at the point NAME as kill -9 would, so
 * a test can check what a crash at each such point leaves. */
void failpoint(const char *name)
{
	const char *want = getenv("BPFREDIR_FAILPOINT");

	if (want && !strcmp(want, name))
		raise(SIGKILL);
}
#endif

/* IPv4 is kept as ::ffff:a.b.c.d, the form a v4-mapped AF_INET6 socket uses too. */
void addr_map_v4(__u8 addr[BPFREDIR_ADDR_LEN], const struct in_addr *v4)
{
	memset(addr, 0, BPFREDIR_ADDR_LEN);
	addr[10] = 0xff;
	addr[11] = 0xff;
	memcpy(&addr[12], v4, sizeof(*v4));
}

__u32 lru_min_entries(void)
{
	int n_cpus = libbpf_num_possible_cpus();

	return (n_cpus > 0 ? n_cpus : 1) * BPFREDIR_LRU_PER_CPU;
}

__u32 flows_entries(__u32 want)
{
	__u32 min = lru_min_entries();

	return want > min ? want : min;
}

__u32 pending_entries(__u32 flows)
{
	__u32 n = flows / 4, min = lru_min_entries();

	if (n < BPFREDIR_MIN_PENDING)
		n = BPFREDIR_MIN_PENDING;
	return n > min ? n : min;
}

int sync_derived(const struct pinned_maps *maps)
{
	int err = ruleset_derive(maps->rules, maps->port_stats, maps->port_interest);

	return err ? err : sync_local_addrs(maps->local_addrs, maps->addr_holders);
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
	const char *why;

	if (!scan_addr(text, addr))
		return usage_error("invalid address '%s' (expected %s)", text, ADDR_FORM);
	why = addr_not_unicast(addr);
	if (why)
		return usage_error("--addr %s is %s; a rule's address must be unicast", text, why);
	return 0;
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
