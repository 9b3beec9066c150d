// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Values as text, read the one way the CLI, the config file and the environment all read them:
 * numbers, ports, protocols and addresses (IPv4 kept as ::ffff:a.b.c.d). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "scan.h"

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

const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_UDP ? "udp" : proto == IPPROTO_TCP ? "tcp" : "?";
}

/* IPv4 is kept as ::ffff:a.b.c.d, the form a v4-mapped AF_INET6 socket uses too. */
void addr_map_v4(__u8 addr[BPFREDIR_ADDR_LEN], const struct in_addr *v4)
{
	memset(addr, 0, BPFREDIR_ADDR_LEN);
	addr[10] = 0xff;
	addr[11] = 0xff;
	memcpy(&addr[12], v4, sizeof(*v4));
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

bool addr_is_v4(const __u8 addr[BPFREDIR_ADDR_LEN])
{
	static const __u8 v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(addr, v4_mapped, sizeof(v4_mapped));
}

bool addr_is_loopback(const __u8 addr[BPFREDIR_ADDR_LEN])
{
	static const __u8 v6[BPFREDIR_ADDR_LEN] = { [15] = 1 };

	return (addr_is_v4(addr) && addr[12] == 127) || !memcmp(addr, v6, sizeof(v6));
}

bool scan_endpoint(const char *text, __u8 addr[BPFREDIR_ADDR_LEN], __u16 *port, bool *v6)
{
	char buf[INET6_ADDRSTRLEN + 16], *colon, *host = buf;
	size_t len = strlen(text);

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, text, len + 1);
	colon = strrchr(buf, ':');
	if (!colon)
		return false;
	*colon = '\0';
	if (*host == '[') {
		len = strlen(host);
		if (len < 2 || host[len - 1] != ']')
			return false;
		host[len - 1] = '\0';
		host++;
		if (!strchr(host, ':'))
			return false;
	} else if (strchr(host, ':')) {
		return false;
	}
	if (!scan_addr(host, addr) || !scan_port(colon + 1, port))
		return false;
	if (v6)
		*v6 = strchr(host, ':') != NULL;
	return true;
}

void format_addr(const __u8 addr[BPFREDIR_ADDR_LEN], char *buf, size_t size)
{
	if (addr_is_v4(addr))
		inet_ntop(AF_INET, addr + 12, buf, size);
	else
		inet_ntop(AF_INET6, addr, buf, size);
}

bool quote_word(const char *word, size_t max, bool tail, char *buf)
{
	size_t len = strlen(word), from = 0, i;

	if (tail && len > max)
		from = len - max;
	buf += sprintf(buf, "%s", from ? "..." : "");
	for (i = from; i < len && i - from < max; i++) {
		unsigned char c = word[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			*buf++ = c;
		else
			buf += sprintf(buf, "\\x%02x", c);
	}
	*buf = '\0';
	return i < len;
}
