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
