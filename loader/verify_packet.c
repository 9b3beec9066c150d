// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* verify's packets (verify.h): read, built, and said back. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include "core/scan.h"
#include "verify.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define MAX_WORDS 24
#define SHOWN_WORD 32
#define ETH_LEN 14
#define IP4_LEN 20
#define IP6_LEN 40
#define TCP_LEN 20
#define UDP_LEN 8
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A UDP datagram says something, so that its length and checksum are a real one's. */
static const char udp_payload[8] = "bpfredir";

/* A line's first word, when it says what the line is (in: the default, unsaid). */
static const char *const kind_words[] = {
	[VERIFY_IN] = "in",
	[VERIFY_OUT] = "out",
	[VERIFY_CONNECT] = "connect",
	[VERIFY_SENDMSG] = "sendmsg",
};

static const struct {
	const char *name;
	__u8 bit;
} tcp_flag_names[] = {
	{ "fin", TCP_FIN }, { "syn", TCP_SYN }, { "rst", TCP_RST },
	{ "psh", TCP_PSH }, { "ack", TCP_ACK },
};

const char *verdict_name(enum verify_verdict v)
{
	switch (v) {
	case VERDICT_PASS:
		return "pass";
	case VERDICT_REWRITE:
		return "rewrite";
	case VERDICT_DROP:
		return "drop";
	case VERDICT_REJECT:
		return "reject";
	case VERDICT_ERROR:
		return "error";
	default:
		return "none";
	}
}

static int why_plain(char *why, size_t n, const char *msg)
{
	snprintf(why, n, "%s", msg);
	return -1;
}

/* A message naming word, as apply's messages quote a config's words (quote_word). */
static int why_is(char *why, size_t n, const char *fmt, const char *word)
{
	char quoted[4 * SHOWN_WORD + 8];

	if (quote_word(word, SHOWN_WORD, false, quoted))
		strcat(quoted, "...");
	snprintf(why, n, fmt, quoted);
	return -1;
}

static int parse_expect(char **w, int n, struct verify_packet *p, char *why, size_t wn)
{
	int words = 1;

	if (n == 0)
		return why_plain(why, wn, "'=>' needs pass, drop, reject or rewrite PORT");
	if (!strcmp(w[0], "pass")) {
		p->expect = VERDICT_PASS;
	} else if (!strcmp(w[0], "drop")) {
		p->expect = VERDICT_DROP;
	} else if (!strcmp(w[0], "reject")) {
		p->expect = VERDICT_REJECT;
	} else if (!strcmp(w[0], "rewrite")) {
		p->expect = VERDICT_REWRITE;
		words = 2;
		if (n < 2 || !scan_port(w[1], &p->expect_port))
			return why_is(why, wn, "rewrite needs a port (%s)", PORT_FORM);
	} else {
		return why_is(why, wn, "unknown result '%s' (pass, drop, reject or rewrite PORT)",
			      w[0]);
	}
	if (n > words)
		return why_is(why, wn, "'%s' after the expected result", w[words]);
	return 0;
}

static int parse_host(char **w, int n, struct verify_packet *p, char *why, size_t wn)
{
	int i;

	if (n == 0)
		return why_plain(why, wn, "'host' needs an address");
	if (n > VERIFY_MAX_HOST_ADDRS) {
		snprintf(why, wn, "more than %d addresses on one host line", VERIFY_MAX_HOST_ADDRS);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!scan_addr(w[i], p->addrs[i]))
			return why_is(why, wn, "'%s' is not an IPv4 or IPv6 address", w[i]);
	p->n_addrs = n;
	p->kind = VERIFY_HOST;
	return 0;
}

int verify_packet_parse(char *line, struct verify_packet *p, char *why, size_t wn)
{
	char *w[MAX_WORDS], *save = NULL, *tok, *hash = strchr(line, '#');
	int n = 0, i = 0, expect_at = -1, end;
	bool sv6 = false, dv6 = false;
	size_t f;

	memset(p, 0, sizeof(*p));
	if (hash)
		*hash = '\0';
	for (tok = strtok_r(line, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == MAX_WORDS)
			return why_plain(why, wn, "more words than a packet has");
		if (!strcmp(tok, "=>") && expect_at < 0)
			expect_at = n;
		w[n++] = tok;
	}
	if (n == 0)
		return 1;
	if (!strcmp(w[0], "host"))
		return parse_host(w + 1, n - 1, p, why, wn);
	end = expect_at < 0 ? n : expect_at;
	if (expect_at >= 0 && parse_expect(w + expect_at + 1, n - expect_at - 1, p, why, wn))
		return -1;

	p->kind = VERIFY_IN;
	for (f = 0; f < ARRAY_SIZE(kind_words); f++) {
		if (!strcmp(w[0], kind_words[f])) {
			p->kind = f;
			i++;
			break;
		}
	}
	if (i >= end || !scan_proto(w[i], &p->proto))
		return why_is(why, wn, "'%s' where tcp or udp should be", i < end ? w[i] : "");
	i++;
	if (p->kind == VERIFY_CONNECT || p->kind == VERIFY_SENDMSG) {
		if (p->kind == VERIFY_SENDMSG && p->proto != IPPROTO_UDP)
			return why_plain(why, wn, "sendmsg is for udp (a tcp client connects)");
		if (i >= end || !scan_endpoint(w[i], p->daddr, &p->dport, &p->v6))
			return why_is(why, wn, "'%s' where ADDR:PORT or [ADDR]:PORT should be",
				      i < end ? w[i] : "");
		if (++i < end)
			return why_is(why, wn, "'%s' after the destination", w[i]);
		return 0;
	}
	if (i >= end || !scan_endpoint(w[i], p->saddr, &p->sport, &sv6))
		return why_is(why, wn, "'%s' where the source, ADDR:PORT or [ADDR]:PORT, should be",
			      i < end ? w[i] : "");
	if (++i >= end || strcmp(w[i], ">"))
		return why_is(why, wn, "'%s' where '>' should be", i < end ? w[i] : "");
	if (++i >= end || !scan_endpoint(w[i], p->daddr, &p->dport, &dv6))
		return why_is(why, wn,
			      "'%s' where the destination, ADDR:PORT or [ADDR]:PORT, should be",
			      i < end ? w[i] : "");
	if (sv6 != dv6)
		return why_plain(why, wn, "the source and destination are not of one IP version");
	p->v6 = sv6;
	for (i++; i < end; i++) {
		for (f = 0; f < ARRAY_SIZE(tcp_flag_names); f++)
			if (!strcmp(w[i], tcp_flag_names[f].name))
				break;
		if (f == ARRAY_SIZE(tcp_flag_names))
			return why_is(why, wn, "'%s' is not a TCP flag (syn, ack, fin, rst, psh)",
				      w[i]);
		if (p->proto != IPPROTO_TCP)
			return why_is(why, wn, "'%s': a udp packet has no flags", w[i]);
		p->tcp_flags |= tcp_flag_names[f].bit;
	}
	/* A bare tcp packet is one of an established connection. */
	if (p->proto == IPPROTO_TCP && !p->tcp_flags)
		p->tcp_flags = TCP_ACK;
	return 0;
}

static void endpoint_text(const __u8 *addr, __u16 port, bool v6, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	format_addr(addr, a, sizeof(a));
	snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", a, port);
}

static void flags_text(__u8 flags, char *buf, size_t size)
{
	/* In the order people say them. */
	static const __u8 order[] = { TCP_SYN, TCP_ACK, TCP_FIN, TCP_RST, TCP_PSH };
	size_t i, f, len = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(order); i++) {
		if (!(flags & order[i]))
			continue;
		for (f = 0; tcp_flag_names[f].bit != order[i]; f++)
			;
		len += snprintf(buf + len, len < size ? size - len : 0, " %s",
				tcp_flag_names[f].name);
	}
}

void verify_packet_text(const struct verify_packet *p, char *buf, size_t size)
{
	char kind[16] = "", src[64], dst[64], flags[32] = "";

	if (p->kind != VERIFY_IN)
		snprintf(kind, sizeof(kind), "%s ", kind_words[p->kind]);
	endpoint_text(p->daddr, p->dport, p->v6, dst, sizeof(dst));
	if (p->kind == VERIFY_CONNECT || p->kind == VERIFY_SENDMSG) {
		snprintf(buf, size, "%s%s %s", kind, proto_name(p->proto), dst);
		return;
	}
	endpoint_text(p->saddr, p->sport, p->v6, src, sizeof(src));
	if (p->proto == IPPROTO_TCP)
		flags_text(p->tcp_flags, flags, sizeof(flags));
	snprintf(buf, size, "%s%s %s > %s%s", kind, proto_name(p->proto), src, dst, flags);
}

static __u32 csum_add(__u32 sum, const void *data, size_t len)
{
	const __u8 *b = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (b[i] << 8) | b[i + 1];
	if (len & 1)
		sum += b[len - 1] << 8;
	return sum;
}

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static void put16(__u8 *at, __u16 v)
{
	at[0] = v >> 8;
	at[1] = v & 0xff;
}

static __u16 get16(const __u8 *at)
{
	return (at[0] << 8) | at[1];
}

__u32 verify_frame(const struct verify_packet *p, __u8 *buf)
{
	__u32 l3 = ETH_LEN, l4 = l3 + (p->v6 ? IP6_LEN : IP4_LEN);
	__u32 l4_len = p->proto == IPPROTO_TCP ? TCP_LEN : UDP_LEN + sizeof(udp_payload);
	__u8 *ip = buf + l3, *th = buf + l4;
	__u32 sum;

	memset(buf, 0, VERIFY_FRAME_MAX);
	/* To this host's MAC address: a test run's device is a namespace's lo, all zeros. */
	memcpy(buf + 6, "\x02\x00\x00\x00\x00\x02", 6);
	put16(buf + 12, p->v6 ? ETH_P_IPV6 : ETH_P_IP);
	if (p->v6) {
		ip[0] = 0x60;
		put16(ip + 4, l4_len);
		ip[6] = p->proto;
		ip[7] = 64;
		memcpy(ip + 8, p->saddr, 16);
		memcpy(ip + 24, p->daddr, 16);
		sum = csum_add(0, ip + 8, 32);
	} else {
		ip[0] = 0x45;
		put16(ip + 2, IP4_LEN + l4_len);
		put16(ip + 4, 1);
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = p->proto;
		memcpy(ip + 12, p->saddr + 12, 4);
		memcpy(ip + 16, p->daddr + 12, 4);
		put16(ip + 10, csum_fold(csum_add(0, ip, IP4_LEN)));
		sum = csum_add(0, ip + 12, 8);
	}
	sum += p->proto + l4_len;
	put16(th, p->sport);
	put16(th + 2, p->dport);
	if (p->proto == IPPROTO_TCP) {
		put16(th + 4, 1); /* seq 1, and ack 1 when it acknowledges */
		if (p->tcp_flags & TCP_ACK)
			put16(th + 8, 1);
		th[12] = (TCP_LEN / 4) << 4;
		th[13] = p->tcp_flags;
		put16(th + 14, 64240);
		put16(th + 16, csum_fold(csum_add(sum, th, l4_len)));
	} else {
		put16(th + 4, l4_len);
		memcpy(th + UDP_LEN, udp_payload, sizeof(udp_payload));
		put16(th + 6, csum_fold(csum_add(sum, th, l4_len)) ?: 0xffff);
	}
	return l4 + l4_len;
}

/* Where a frame's IP header and L4 header are, and its protocol; false for anything else. */
static bool frame_layout(const __u8 *f, __u32 len, __u32 *l4, __u8 *proto, bool *v6)
{
	__u16 type = len >= ETH_LEN ? get16(f + 12) : 0;

	if (type == ETH_P_IP && len >= ETH_LEN + IP4_LEN && (f[ETH_LEN] >> 4) == 4) {
		*v6 = false;
		*proto = f[ETH_LEN + 9];
		*l4 = ETH_LEN + (f[ETH_LEN] & 0xf) * 4;
	} else if (type == ETH_P_IPV6 && len >= ETH_LEN + IP6_LEN) {
		*v6 = true;
		*proto = f[ETH_LEN + 6];
		*l4 = ETH_LEN + IP6_LEN;
	} else {
		return false;
	}
	return *l4 + 4 <= len;
}

/* An address field of a frame (4 or 16 bytes) in the maps' form. */
static void addr_of_field(const __u8 *field, __u32 len, __u8 addr[BPFREDIR_ADDR_LEN])
{
	struct in_addr v4;

	if (len == BPFREDIR_ADDR_LEN) {
		memcpy(addr, field, BPFREDIR_ADDR_LEN);
		return;
	}
	memcpy(&v4, field, sizeof(v4));
	addr_map_v4(addr, &v4);
}

static void frame_addrs(const __u8 *f, bool v6, __u8 *saddr, __u8 *daddr)
{
	__u32 at = ETH_LEN + (v6 ? 8 : 12), len = v6 ? 16 : 4;

	addr_of_field(f + at, len, saddr);
	addr_of_field(f + at + len, len, daddr);
}

__u16 frame_port(const __u8 *f, __u32 len, bool dest)
{
	__u32 l4;
	__u8 proto;
	bool v6;

	if (!frame_layout(f, len, &l4, &proto, &v6) ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return 0;
	return get16(f + l4 + (dest ? 2 : 0));
}

void frame_text(const __u8 *f, __u32 len, char *buf, size_t size)
{
	struct verify_packet p = {};
	char quoted[160], src[64], dst[64];
	__u32 l4;
	bool icmp_unreach;

	if (!frame_layout(f, len, &l4, &p.proto, &p.v6)) {
		snprintf(buf, size, "a frame of %u bytes bpfredir does not read", len);
		return;
	}
	frame_addrs(f, p.v6, p.saddr, p.daddr);
	if (p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP) {
		p.kind = VERIFY_IN;
		p.sport = get16(f + l4);
		p.dport = get16(f + l4 + 2);
		if (p.proto == IPPROTO_TCP && l4 + TCP_LEN <= len)
			p.tcp_flags = f[l4 + 13];
		verify_packet_text(&p, buf, size);
		return;
	}
	format_addr(p.saddr, src, sizeof(src));
	format_addr(p.daddr, dst, sizeof(dst));
	icmp_unreach = (p.proto == IPPROTO_ICMP && f[l4] == 3 && f[l4 + 1] == 3) ||
		       (p.proto == IPPROTO_ICMPV6 && f[l4] == 1 && f[l4 + 1] == 4);
	if (p.proto != IPPROTO_ICMP && p.proto != IPPROTO_ICMPV6) {
		snprintf(buf, size, "IP protocol %u %s > %s", p.proto, src, dst);
		return;
	}
	/* The packet an ICMP error quotes starts 8 bytes into it: give it an Ethernet header
	 * of its own kind to read it as a frame. */
	quoted[0] = '\0';
	if (l4 + 8 < len && len - (l4 + 8) <= VERIFY_FRAME_MAX - ETH_LEN) {
		__u8 inner[VERIFY_FRAME_MAX] = {};

		put16(inner + 12, p.v6 ? ETH_P_IPV6 : ETH_P_IP);
		memcpy(inner + ETH_LEN, f + l4 + 8, len - (l4 + 8));
		frame_text(inner, ETH_LEN + len - (l4 + 8), quoted, sizeof(quoted));
	}
	if (!icmp_unreach) {
		snprintf(buf, size, "%s %s > %s type %u code %u",
			 p.proto == IPPROTO_ICMP ? "icmp" : "icmpv6", src, dst, f[l4], f[l4 + 1]);
		return;
	}
	snprintf(buf, size, "%s %s > %s port unreachable%s%s%s",
		 p.proto == IPPROTO_ICMP ? "icmp" : "icmpv6", src, dst,
		 quoted[0] ? " (about: " : "", quoted, quoted[0] ? ")" : "");
}

struct field {
	const char *name;
	__u32 off, len;
	bool decimal, addr;
};

static int add_change(const struct field *fl, const __u8 *in, const __u8 *out,
		      struct frame_change *c)
{
	__u8 a[BPFREDIR_ADDR_LEN];
	char *bufs[2] = { c->from, c->to };
	const __u8 *src[2] = { in + fl->off, out + fl->off };
	__u32 i, b;

	if (!memcmp(src[0], src[1], fl->len))
		return 0;
	snprintf(c->field, sizeof(c->field), "%s", fl->name);
	for (i = 0; i < 2; i++) {
		if (fl->addr) {
			addr_of_field(src[i], fl->len, a);
			format_addr(a, bufs[i], sizeof(c->from));
		} else if (fl->decimal) {
			snprintf(bufs[i], sizeof(c->from), "%u", get16(src[i]));
		} else {
			strcpy(bufs[i], "0x");
			for (b = 0; b < fl->len && b < 20; b++)
				snprintf(bufs[i] + 2 + 2 * b, 3, "%02x", src[i][b]);
		}
	}
	return 1;
}

int frame_changes(const __u8 *in, const __u8 *out, __u32 len, struct frame_change *changes, int max)
{
	struct field fields[24];
	int nf = 0, n = 0, i;
	__u32 l4, ip = ETH_LEN;
	__u8 proto;
	bool v6;

#define FIELD(nm, o, l, dec, ad)                                                                   \
	fields[nf++] = (struct field){ .name = nm, .off = o, .len = l, .decimal = dec, .addr = ad }
	FIELD("eth dst", 0, 6, false, false);
	FIELD("eth src", 6, 6, false, false);
	FIELD("eth type", 12, 2, false, false);
	if (!frame_layout(in, len, &l4, &proto, &v6)) {
		l4 = ETH_LEN;
		proto = 0;
	} else if (v6) {
		FIELD("ip6 flow", ip, 4, false, false);
		FIELD("ip6 plen", ip + 4, 2, true, false);
		FIELD("ip6 next", ip + 6, 1, false, false);
		FIELD("ip6 hlim", ip + 7, 1, false, false);
		FIELD("ip6 src", ip + 8, 16, false, true);
		FIELD("ip6 dst", ip + 24, 16, false, true);
	} else {
		FIELD("ip tos", ip + 1, 1, false, false);
		FIELD("ip len", ip + 2, 2, true, false);
		FIELD("ip id", ip + 4, 2, false, false);
		FIELD("ip frag", ip + 6, 2, false, false);
		FIELD("ip ttl", ip + 8, 1, false, false);
		FIELD("ip proto", ip + 9, 1, false, false);
		FIELD("ip csum", ip + 10, 2, false, false);
		FIELD("ip src", ip + 12, 4, false, true);
		FIELD("ip dst", ip + 16, 4, false, true);
	}
	if (proto == IPPROTO_TCP && l4 + TCP_LEN <= len) {
		FIELD("tcp sport", l4, 2, true, false);
		FIELD("tcp dport", l4 + 2, 2, true, false);
		FIELD("tcp seq", l4 + 4, 4, false, false);
		FIELD("tcp ack", l4 + 8, 4, false, false);
		FIELD("tcp flags", l4 + 12, 2, false, false);
		FIELD("tcp window", l4 + 14, 2, true, false);
		FIELD("tcp csum", l4 + 16, 2, false, false);
		FIELD("tcp urg", l4 + 18, 2, false, false);
		l4 += TCP_LEN;
	} else if (proto == IPPROTO_UDP && l4 + UDP_LEN <= len) {
		FIELD("udp sport", l4, 2, true, false);
		FIELD("udp dport", l4 + 2, 2, true, false);
		FIELD("udp len", l4 + 4, 2, true, false);
		FIELD("udp csum", l4 + 6, 2, false, false);
		l4 += UDP_LEN;
	}
	if (l4 < len)
		FIELD("payload", l4, len - l4, false, false);
#undef FIELD
	for (i = 0; i < nf && n < max; i++)
		n += add_change(&fields[i], in, out, &changes[n]);
	return n;
}
