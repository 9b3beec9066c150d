// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Randomized differential test of the TC programs. Random frames, and mutations of them, go
 * through ingress and egress with BPF_PROG_TEST_RUN; every result is compared with a
 * reference model written here, from the documented policy rather than from the BPF code:
 * the packet-shape policy at the top of bpf/lib/parse.h (and docs/design.md, "Packet shapes"),
 * and the rules of bpf/lib/policy.h as the header comments and include/bpfredir.h state them.
 *
 * Compared for every packet: the verdict, the whole output frame (the model rewrites the
 * port and updates the checksum per RFC 1624), the output checksum by full recomputation
 * when the input's was valid, the global counters and the port counter the model names,
 * and, in both connection tables (flows and pending), every key the packet looked up, wrote
 * or removed (with its port and flags), and the keys a SYN dropped at a hidden port must not
 * remove. Every
 * CHECK_EVERY packets and at the end the whole flows and pending maps and every per-port counter
 * entry are compared with the model's.
 *
 * Two phases, each in a network namespace of its own (netns.h): one that does not forward
 * (the FIB tells nothing, so this host's addresses as local_addrs records them, L2 group
 * frames and the addresses every host takes decide what is ours) and one that forwards
 * 203.0.113.0/24, 2001:db8:2::/64 and, through encapsulating routes where the kernel has
 * them, 203.0.113.192/26 and 2001:db8:3::/64. In both, a frame for another host's MAC address
 * is never ours. The rule set changes now and then during a
 * phase: edited in place, as `bpfredir add/del` change the live set; replaced whole by a new
 * set swapped into the policy slot, as `apply` does; or taken out, leaving the slot empty.
 *
 * BPF_PROG_TEST_RUN is the only way in, so every frame is linear: the pull of a frame whose
 * headers are not all in the linear area is beyond this test.
 *
 * The seed is fixed unless BPFREDIR_SEED is set (decimal or 0x hex); BPFREDIR_PACKETS sets
 * the packets per phase. A mismatch prints the seed, phase, packet index and hex dumps as
 * `#` lines; the run stops after MAX_MISMATCHES of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpfredir.h"
#include "core/cache_gen.h"
#include "core/ruleset.h"
#include "pktbuild.h"
#include "netns.h"
#include "harness.h"
#include "fixture.h"

#define DEFAULT_SEED 20261124ULL
#define DEFAULT_PACKETS 100000 /* per phase; two phases */
#define MAX_MISMATCHES 5
#define CHECK_EVERY 1000 /* full flows and port counter comparison */
#define CHURN_EVERY 200	 /* maybe change the rule set */
/* Then empty both tables: far below their sizes (flows 65536; pending PENDING_WAYS ways,
 * where a fifth key in one bucket of 4 would evict, about one chance in 5000 per run), so
 * that neither evicts anything, and below the model's slots. */
#define MODEL_FLOWS_MAX 16000
#define MODEL_PENDING_MAX 2000
#define PENDING_WAYS 262144
#define BUF_MAX 1024
#define RING 64

/* What the documented policy names; none of it is taken from bpf/. */
#define ETH_HDR 14
#define TPID_8021Q 0x8100
#define TPID_8021AD 0x88a8
#define ETYPE_IPV4 0x0800
#define ETYPE_IPV6 0x86dd
#define MAX_TAGS 2
#define PEEK_TAGS 8 /* looked through for the ports alone */
#define MAX_EXT 8
#define EXT_HOPOPTS 0
#define EXT_ROUTING 43
#define EXT_FRAGMENT 44
#define EXT_AH 51
#define EXT_DSTOPTS 60
#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

enum m_parse { M_PORTS, M_NO_PORTS, M_MALFORMED, M_PORTS_ONLY, M_FRAG_TAIL };

/* Whom a frame is for at L2: lo's MAC address (all zeros) is this host's. */
enum m_l2 { M_L2_HOST, M_L2_GROUP, M_L2_OTHER };

/* --- random numbers (splitmix64) --------------------------------------------------------- */

static __u64 rng;

static __u64 rnd64(void)
{
	__u64 z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __u32 below(__u32 n)
{
	return n ? rnd64() % n : 0;
}

static bool chance(__u32 pct)
{
	return below(100) < pct;
}

static __u16 get16(const __u8 *p)
{
	return p[0] << 8 | p[1];
}

/* --- addresses, ports, rules -------------------------------------------------------------- */

struct host {
	const char *v4, *v6;
	__u8 a4[BPFREDIR_ADDR_LEN], a6[BPFREDIR_ADDR_LEN]; /* as the maps store them */
};

static struct host clients[] = {
	{ .v4 = "192.0.2.10", .v6 = "2001:db8::10" },
	{ .v4 = "192.0.2.11", .v6 = "2001:db8::11" },
	{ .v4 = "192.0.2.12", .v6 = "2001:db8::12" },
	/* v4-mapped IPv6: shares the v4 client's flow keys (the maps store v4 mapped) */
	{ .v4 = "192.0.2.10", .v6 = "::ffff:192.0.2.10" },
};

/* Destinations: on lo (in the forwarding phase), loopback, two in the forwarded prefixes,
 * one behind the encapsulating routes, one without any route, and those every host takes
 * as its own. */
static struct host servers[] = {
	{ .v4 = NETNS_LOCAL_V4, .v6 = NETNS_LOCAL_V6 },
	{ .v4 = "127.0.0.1", .v6 = "::1" },
	{ .v4 = "203.0.113.99", .v6 = "2001:db8:2::99" },
	{ .v4 = "203.0.113.7", .v6 = "2001:db8:2::7" },
	{ .v4 = "203.0.113.200", .v6 = "2001:db8:3::200" },
	{ .v4 = "10.1.2.3", .v6 = "2001:db8:99::3" },
	/* v4-mapped IPv6 into the forwarded v4 prefix: an IPv6 lookup, without a route */
	{ .v4 = "203.0.113.98", .v6 = "::ffff:203.0.113.98" },
	{ .v4 = "224.0.0.1", .v6 = "ff02::1" },
	{ .v4 = "255.255.255.255", .v6 = "fe80::1" },
	{ .v4 = "0.1.2.3", .v6 = "2001:db8:99::4" },
	{ .v4 = "198.51.100.255", .v6 = "2001:db8:99::5" },
};

/* What the phase records in local_addrs, as the loader records a host's own addresses and
 * its subnets' broadcast addresses (the last one). */
static const char *const local_addrs[] = { NETNS_LOCAL_V4, NETNS_LOCAL_V6, "127.0.0.1", "::1",
					   "198.51.100.255" };

struct cand {
	__u16 pub, tgt;
	__u8 proto;
	__u16 flags;
	const char *addr;
	__u8 a[BPFREDIR_ADDR_LEN];
};

/* The rules a phase switches between. Entries with the same public port and protocol are
 * alternatives (one rule key); no port is public in one rule and target of another. */
/* clang-format off */
#define CAND(pub_, tgt_, proto_, flags_, addr_) \
	{.pub = (pub_), .tgt = (tgt_), .proto = (proto_), .flags = (flags_), .addr = (addr_)}
#define HIDE REDIR_F_HIDE
#define ADDR REDIR_F_ADDR
#define HIDE_LOCAL REDIR_F_HIDE_LOCAL

static struct cand cands[] = {
	CAND(8445, 8443, IPPROTO_TCP, HIDE, NULL),
	CAND(8446, 8443, IPPROTO_TCP, HIDE | HIDE_LOCAL, NULL),
	CAND(8445, 8444, IPPROTO_TCP, HIDE, NULL),
	CAND(5353, 5354, IPPROTO_UDP, HIDE, NULL),
	CAND(5355, 5356, IPPROTO_UDP, 0, NULL),
	CAND(9000, 9001, IPPROTO_TCP, 0, NULL),
	CAND(7000, 7001, IPPROTO_TCP, HIDE | ADDR, NETNS_LOCAL_V4),
	CAND(7002, 7003, IPPROTO_TCP, HIDE | ADDR, "2001:db8:2::99"),
	CAND(7100, 7101, IPPROTO_UDP, ADDR, "203.0.113.99"),
	CAND(7100, 7102, IPPROTO_UDP, HIDE | ADDR | HIDE_LOCAL, NETNS_LOCAL_V6),
	/* Third targets: a port moved twice forgets its first target (public_targets). */
	CAND(8445, 8447, IPPROTO_TCP, HIDE, NULL),
	CAND(5353, 5357, IPPROTO_UDP, HIDE, NULL),
};
#define N_CANDS (int)(sizeof(cands) / sizeof(cands[0]))
static const bool initially_active[N_CANDS] = {1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0};
/* clang-format on */

static const __u16 client_ports[] = { 40000, 40001, 40002, 40003 };
static const __u16 misc_ports[] = { 0, 22, 80, 443, 65535 };

/* The ports given a counter slot at the start of a phase, as the loader gives them. */
#define MAX_PORT_KEYS 64
static struct redir_port_key port_keys[MAX_PORT_KEYS];
static int n_port_keys;

static int to_mapped(__u8 *dst, const char *text)
{
	memset(dst, 0, BPFREDIR_ADDR_LEN);
	if (inet_pton(AF_INET6, text, dst) == 1)
		return 0;
	dst[10] = 0xff;
	dst[11] = 0xff;
	return inet_pton(AF_INET, text, dst + 12) == 1 ? 0 : -1;
}

static int port_key_find(__u16 port, __u8 proto)
{
	int i;

	for (i = 0; i < n_port_keys; i++)
		if (ntohs(port_keys[i].port) == port && port_keys[i].proto == proto)
			return i;
	return -1;
}

static void port_key_add(__u16 port, __u8 proto)
{
	if (port_key_find(port, proto) < 0 && n_port_keys < MAX_PORT_KEYS) {
		port_keys[n_port_keys].port = htons(port);
		port_keys[n_port_keys].proto = proto;
		n_port_keys++;
	}
}

static int tables_init(void)
{
	size_t i;

	for (i = 0; i < sizeof(clients) / sizeof(clients[0]); i++)
		if (to_mapped(clients[i].a4, clients[i].v4) ||
		    to_mapped(clients[i].a6, clients[i].v6))
			return -1;
	for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
		if (to_mapped(servers[i].a4, servers[i].v4) ||
		    to_mapped(servers[i].a6, servers[i].v6))
			return -1;
	for (i = 0; i < (size_t)N_CANDS; i++) {
		if (cands[i].addr && to_mapped(cands[i].a, cands[i].addr))
			return -1;
		/* Both protocols: a count under the wrong protocol's entry must show. */
		port_key_add(cands[i].pub, IPPROTO_TCP);
		port_key_add(cands[i].pub, IPPROTO_UDP);
		port_key_add(cands[i].tgt, IPPROTO_TCP);
		port_key_add(cands[i].tgt, IPPROTO_UDP);
	}
	port_key_add(client_ports[0], IPPROTO_TCP);
	port_key_add(22, IPPROTO_TCP);
	return 0;
}

/* --- the reference model ------------------------------------------------------------------- */

struct m_pkt {
	bool v6;
	__u8 l2; /* enum m_l2 */
	__u8 proto, flags;
	__u16 sport, dport;
	__u32 l3_off, l4_off;
	__u8 saddr[BPFREDIR_ADDR_LEN], daddr[BPFREDIR_ADDR_LEN]; /* v4 as ::ffff:a.b.c.d */
	__u32 len;						 /* of the frame */
	bool frag;	/* the first fragment of a fragmented datagram */
	__u16 frag_off; /* M_FRAG_TAIL: where its payload lies in the segment */
};

/* A translated IPv4 TCP first fragment whose checksum is left to a later fragment. */
#define FRAG_FIXES 64

struct m_frag_fix {
	bool live;
	__u8 key[10]; /* saddr, daddr, IP ID as on the wire */
	__u16 diff;
};

struct m_flow {
	struct redir_flow_key key;
	__u16 port;  /* host order */
	__u16 flags; /* FLOW_F_CLOSING */
	bool used;   /* the slot holds key (probing goes on past it) */
	bool live;   /* false: deleted, a tombstone */
};

#define FLOW_SLOTS (1 << 16)

/* A connection table of the model: open addressing with tombstones, emptied as a whole. */
struct m_table {
	const char *name;
	struct m_flow *slots;
	int n;			 /* live entries */
	int used;		 /* slots holding a key, live or not */
	unsigned long forgotten; /* coverage: live entries removed (not moved) */
};

struct model {
	bool forwarding;
	bool active[N_CANDS];
	/* Candidates that have been active since load: the loader marks a rule's ports in
	 * port_interest before it acts and never clears a mark. */
	bool marked[N_CANDS];
	/* public_targets: the targets each public port has had, the latest first, and whether
	 * flows may hold IN entries for it. */
	struct m_targets {
		__u16 port;
		__u8 proto;
		bool in_entries;
		__u16 target[BPFREDIR_PUBLIC_TARGETS];
	} targets[N_CANDS];
	bool slot_empty; /* no rule set in the policy slot: no rules, nothing hidden */
	struct m_table flows, pending;
	__u64 port_counts[MAX_PORT_KEYS][PORT_STAT__MAX];
	struct m_frag_fix frag_fixes[FRAG_FIXES];
};

#define MAX_TOUCHED 6

/* What the model says a packet does. */
struct m_expect {
	__u32 retval;
	int stat;      /* global counter that goes up by one, or -1 */
	int port_key;  /* port_keys entry whose counter goes up, or -1 */
	int port_stat; /* and which of its counters */
	bool rewrite, dest;
	__u16 new_port;
	bool port_only; /* the rewrite leaves the checksum to a later fragment */
	bool csum_fix;	/* a later fragment: its checksum takes what its first one left */
	__u32 csum_off;
	__u16 csum_diff;
	/* Keys to compare in both tables after the packet. */
	struct redir_flow_key touched[MAX_TOUCHED];
	int n_touched;
	int why; /* for coverage: enum below */
};

enum m_why {
	W_MALFORMED,
	W_NO_PORTS,
	W_SHAPE_PASSED, /* a shape not translated, on a port no rule names */
	W_BY_FLOW,	/* an established connection's (flows) */
	W_BY_PENDING,	/* a new connection's (pending) */
	W_BY_RULE,
	W_BY_ADDR_RULE,
	W_HIDDEN,
	W_OTHER_ADDR, /* a rule for another destination address */
	W_FORWARDED,  /* a rule or hidden port, but the packet is forwarded */
	W_PASSED,
	W_EG_REWRITTEN, /* by flows */
	W_EG_PENDING,	/* by pending, a SYN(-ACK) or closing: not promoted */
	W_EG_PROMOTED,	/* by pending, anything else: promoted to flows */
	W_EG_CLOSING,	/* a FIN: the connection goes (back) to pending, closing */
	W_EG_RESET,	/* a RST: the connection is forgotten */
	W_EG_PASSED,
	W_EG_UNTRACKED, /* from a hidden port, no entry: dropped */
	W__MAX,
};

static const char *const why_names[W__MAX] = {
	[W_MALFORMED] = "malformed",
	[W_NO_PORTS] = "no-ports",
	[W_SHAPE_PASSED] = "shape-passed",
	[W_BY_FLOW] = "by-flow",
	[W_BY_PENDING] = "by-pending",
	[W_BY_RULE] = "by-rule",
	[W_BY_ADDR_RULE] = "by-addr-rule",
	[W_HIDDEN] = "hidden",
	[W_OTHER_ADDR] = "other-addr",
	[W_FORWARDED] = "forwarded",
	[W_PASSED] = "passed",
	[W_EG_REWRITTEN] = "egress-rewritten",
	[W_EG_PENDING] = "egress-pending",
	[W_EG_PROMOTED] = "egress-promoted",
	[W_EG_CLOSING] = "egress-closing",
	[W_EG_RESET] = "egress-reset",
	[W_EG_PASSED] = "egress-passed",
	[W_EG_UNTRACKED] = "egress-untracked",
};

static bool m_is_ext(__u8 nh)
{
	return nh == EXT_HOPOPTS || nh == EXT_ROUTING || nh == EXT_DSTOPTS || nh == EXT_AH ||
	       nh == EXT_FRAGMENT;
}

static int m_l4(const __u8 *b, __u32 len, __u32 off, __u8 proto, struct m_pkt *p)
{
	/* A TCP/UDP header that is not all there: its ports alone, or nothing to read (a
	 * first fragment that short the kernel never reassembles). */
	if (off + 4 > len)
		return p->frag ? M_NO_PORTS : M_MALFORMED;
	p->proto = proto;
	p->l4_off = off;
	p->sport = get16(b + off);
	p->dport = get16(b + off + 2);
	if (off + (proto == IPPROTO_TCP ? 20 : 8) > len) {
		if (proto == IPPROTO_TCP && off + 14 <= len)
			p->flags = b[off + 13];
		return M_PORTS_ONLY;
	}
	p->flags = proto == IPPROTO_TCP ? b[off + 13] : 0;
	return M_PORTS;
}

/* Past MAX_TAGS tags (at off, ethertype type): the ports alone, through up to PEEK_TAGS tags
 * in all, of a TCP/UDP header right after the IP header. */
static int m_peek_deep(const __u8 *b, __u32 len, __u32 off, __u16 type, struct m_pkt *p)
{
	int tags = MAX_TAGS;
	__u32 ports;
	__u8 proto;

	while (type == TPID_8021Q || type == TPID_8021AD) {
		if (tags == PEEK_TAGS || off + 4 > len)
			return M_MALFORMED;
		type = get16(b + off + 2);
		off += 4;
		tags++;
	}
	if (type == ETYPE_IPV4) {
		if (off + 20 > len || b[off] >> 4 != 4 || (b[off] & 0xf) < 5)
			return M_MALFORMED;
		proto = b[off + 9];
		if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || (get16(b + off + 6) & 0x1fff))
			return M_NO_PORTS;
		ports = off + (b[off] & 0xf) * 4;
	} else if (type == ETYPE_IPV6) {
		if (off + 40 > len || b[off] >> 4 != 6)
			return M_MALFORMED;
		proto = b[off + 6];
		if (m_is_ext(proto))
			return M_MALFORMED;
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return M_NO_PORTS;
		ports = off + 40;
	} else {
		return M_NO_PORTS;
	}
	if (ports + 4 > len)
		return M_MALFORMED;
	p->proto = proto;
	p->sport = get16(b + ports);
	p->dport = get16(b + ports + 2);
	return M_PORTS_ONLY;
}

static void m_mapped(__u8 *dst, const __u8 *v4)
{
	memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	memcpy(dst + 12, v4, 4);
}

/* The shape policy: parse.h's header comment and docs/design.md's "Packet shapes" table. */
static int m_parse(const __u8 *b, __u32 len, struct m_pkt *p)
{
	__u32 off = ETH_HDR, cur;
	__u16 type;
	int tags = 0, n;
	__u8 nh;

	static const __u8 zeros[6];

	memset(p, 0, sizeof(*p));
	p->len = len;
	if (len < ETH_HDR)
		return M_NO_PORTS;
	p->l2 = !memcmp(b, zeros, 6) ? M_L2_HOST : b[0] & 1 ? M_L2_GROUP : M_L2_OTHER;
	type = get16(b + 12);
	while (type == TPID_8021Q || type == TPID_8021AD) {
		if (tags == MAX_TAGS)
			return m_peek_deep(b, len, off, type, p);
		if (off + 4 > len)
			return M_MALFORMED;
		type = get16(b + off + 2);
		off += 4;
		tags++;
	}
	p->l3_off = off;
	if (type == ETYPE_IPV4) {
		__u32 hlen;

		if (off + 20 > len || b[off] >> 4 != 4)
			return M_MALFORMED;
		hlen = (b[off] & 0xf) * 4;
		if (hlen < 20 || off + hlen > len)
			return M_MALFORMED;
		if (b[off + 9] != IPPROTO_TCP && b[off + 9] != IPPROTO_UDP)
			return M_NO_PORTS;
		m_mapped(p->saddr, b + off + 12);
		m_mapped(p->daddr, b + off + 16);
		if (get16(b + off + 6) & 0x1fff) {
			/* A non-first fragment: a TCP one at byte 8 or 16 may hold a translated
			 * datagram's checksum. */
			p->frag_off = (get16(b + off + 6) & 0x1fff) * 8;
			p->l4_off = off + hlen;
			return b[off + 9] == IPPROTO_TCP && p->frag_off <= 16 ? M_FRAG_TAIL
									      : M_NO_PORTS;
		}
		p->frag = get16(b + off + 6) & 0x2000;
		return m_l4(b, len, off + hlen, b[off + 9], p);
	}
	if (type != ETYPE_IPV6)
		return M_NO_PORTS;
	if (off + 40 > len || b[off] >> 4 != 6)
		return M_MALFORMED;
	p->v6 = true;
	memcpy(p->saddr, b + off + 8, 16);
	memcpy(p->daddr, b + off + 24, 16);
	nh = b[off + 6];
	cur = off + 40;
	for (n = 0;; n++) {
		__u32 hlen;

		if (nh == IPPROTO_TCP || nh == IPPROTO_UDP)
			return m_l4(b, len, cur, nh, p);
		if (!m_is_ext(nh))
			return M_NO_PORTS;
		if (n == MAX_EXT)
			return M_MALFORMED; /* a longer chain may still hide a port */
		if (nh == EXT_FRAGMENT) {
			if (cur + 8 > len)
				return M_MALFORMED;
			if (get16(b + cur + 2) & 0xfff8)
				return M_NO_PORTS; /* non-first fragment */
			p->frag = get16(b + cur + 2) & 1;
			hlen = 8;
		} else {
			if (cur + 2 > len)
				return M_MALFORMED;
			hlen = nh == EXT_AH ? (b[cur + 1] + 2) * 4 : (b[cur + 1] + 1) * 8;
		}
		nh = b[cur];
		cur += hlen;
	}
}

static __u32 flow_hash(const struct redir_flow_key *k)
{
	const __u8 *p = (const void *)k;
	__u32 h = 2166136261u;
	size_t i;

	for (i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static struct m_flow *m_slot(struct m_table *t, const struct redir_flow_key *k)
{
	__u32 i = flow_hash(k) & (FLOW_SLOTS - 1);

	while (t->slots[i].used && memcmp(&t->slots[i].key, k, sizeof(*k)))
		i = (i + 1) & (FLOW_SLOTS - 1);
	return &t->slots[i];
}

static void m_flow_key(struct redir_flow_key *k, const __u8 *remote, const __u8 *local, __u16 rport,
		       __u16 lport, __u8 proto, __u8 dir)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->remote_addr, remote, BPFREDIR_ADDR_LEN);
	memcpy(k->local_addr, local, BPFREDIR_ADDR_LEN);
	k->remote_port = htons(rport);
	k->local_port = htons(lport);
	k->proto = proto;
	k->dir = dir;
}

static const struct m_flow *m_get(struct m_table *t, const struct redir_flow_key *k)
{
	struct m_flow *f = m_slot(t, k);

	return f->live ? f : NULL;
}

static void m_put(struct m_table *t, const struct redir_flow_key *k, __u16 port, __u16 flags)
{
	struct m_flow *f = m_slot(t, k);

	t->n += !f->live;
	t->used += !f->used;
	f->used = true;
	f->live = true;
	f->key = *k;
	f->port = port;
	f->flags = flags;
}

/* Whether there was a live entry to remove. */
static bool m_del(struct m_table *t, const struct redir_flow_key *k)
{
	struct m_flow *f = m_slot(t, k);

	if (!f->live)
		return false;
	f->live = false;
	t->n--;
	return true;
}

static void m_table_clear(struct m_table *t)
{
	memset(t->slots, 0, FLOW_SLOTS * sizeof(*t->slots));
	t->n = 0;
	t->used = 0;
}

/* The IPv6 addresses the FIB lookup never forwards, whatever the forwarding setting (its
 * first check, rt6_need_strict): multicast, link-local, loopback. */
static bool m_v6_strict(const __u8 *a)
{
	static const __u8 loopback[16] = { [15] = 1 };

	return a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || !memcmp(a, loopback, 16);
}

static bool m_in_local_addrs(const struct m_pkt *p)
{
	__u8 a[BPFREDIR_ADDR_LEN];
	size_t i;

	for (i = 0; i < sizeof(local_addrs) / sizeof(local_addrs[0]); i++)
		if (!to_mapped(a, local_addrs[i]) && !memcmp(a, p->daddr, sizeof(a)))
			return true;
	return false;
}

/* Is the packet this host's? A frame for another host's MAC address never is; IPv4
 * multicast, limited broadcast and 0/8 always are. Without forwarding the FIB tells nothing
 * more: local_addrs and L2 group frames decide. With it, only the stranger's prefixes
 * (203.0.113.0/24, 2001:db8:2::/64) and the tunneled host's (203.0.113.192/26,
 * 2001:db8:3::/64, routes that encapsulate) are forwarded; every other destination has a
 * local route or no route, which both count as ours. A v4-mapped IPv6 destination is an
 * IPv6 lookup. */
static bool m_is_local(const struct model *m, const struct m_pkt *p)
{
	static const __u8 fwd6[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0 };
	static const __u8 tun6[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 3, 0, 0 };
	static const __u8 fwd4[3] = { 203, 0, 113 };
	const __u8 *d4 = p->daddr + 12;

	if (!p->v6 && ((d4[0] & 0xf0) == 0xe0 || d4[0] == 0 ||
		       (d4[0] == 255 && d4[1] == 255 && d4[2] == 255 && d4[3] == 255)))
		return true;
	if (p->v6 && (m_v6_strict(p->daddr) || m_v6_strict(p->saddr)))
		return true;
	if (!m->forwarding)
		return m_in_local_addrs(p) || p->l2 == M_L2_GROUP;
	if (p->v6)
		return memcmp(p->daddr, fwd6, sizeof(fwd6)) && memcmp(p->daddr, tun6, sizeof(tun6));
	return memcmp(p->daddr + 12, fwd4, sizeof(fwd4)) != 0;
}

/* This host's own addresses, as egress tells a local destination: loopback, or what
 * local_addrs holds (the server's address on lo, which each phase records as the loader
 * records the host's). */
static bool m_is_host(const __u8 *a)
{
	static const __u8 mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const __u8 lo6[16] = { [15] = 1 };

	if ((!memcmp(a, mapped, 12) && a[12] == 127) || !memcmp(a, lo6, 16))
		return true;
	return !memcmp(a, servers[0].a4, BPFREDIR_ADDR_LEN) ||
	       !memcmp(a, servers[0].a6, BPFREDIR_ADDR_LEN);
}

/* One of the host's own addresses, as local_addrs holds them (its broadcast address is
 * not one). */
static bool m_is_own(const __u8 *a)
{
	__u8 own[BPFREDIR_ADDR_LEN];
	size_t i;

	for (i = 0; i + 1 < sizeof(local_addrs) / sizeof(local_addrs[0]); i++)
		if (!to_mapped(own, local_addrs[i]) && !memcmp(a, own, BPFREDIR_ADDR_LEN))
			return true;
	return false;
}

/* Could a rule name the port (port_interest)? */
static bool m_interest(const struct model *m, __u16 port, __u8 proto)
{
	int i;

	for (i = 0; i < N_CANDS; i++)
		if (m->marked[i] && cands[i].proto == proto &&
		    (cands[i].pub == port || cands[i].tgt == port))
			return true;
	return false;
}

static const struct cand *m_rule(const struct model *m, __u16 port, __u8 proto)
{
	int i;

	for (i = 0; i < N_CANDS; i++)
		if (m->active[i] && cands[i].pub == port && cands[i].proto == proto)
			return &cands[i];
	return NULL;
}

/* A target port stays hidden while any rule hiding it exists. */
static bool m_hidden(const struct model *m, __u16 port, __u8 proto)
{
	int i;

	for (i = 0; i < N_CANDS; i++)
		if (m->active[i] && (cands[i].flags & REDIR_F_HIDE) && cands[i].tgt == port &&
		    cands[i].proto == proto)
			return true;
	return false;
}

static unsigned long m_kept; /* coverage: IN entries given connections a port forgot */

/* The entry of port/proto in m->targets; with add, a new one where it has none. */
static struct m_targets *m_targets(struct model *m, __u16 port, __u8 proto, bool add)
{
	int i;

	for (i = 0; i < N_CANDS && m->targets[i].port; i++)
		if (m->targets[i].port == port && m->targets[i].proto == proto)
			return &m->targets[i];
	if (!add || i == N_CANDS)
		return NULL;
	m->targets[i].port = port;
	m->targets[i].proto = proto;
	return &m->targets[i];
}

/* What ruleset_derive writes in public_targets for an active rule (public_targets_note): a
 * target that drops out first gives each connection in flows through the port to it an IN
 * entry. */
static void m_note_target(struct model *m, const struct cand *c)
{
	struct m_targets *t = m_targets(m, c->pub, c->proto, true);
	__u16 dropped;
	int i;

	if (!t || t->target[0] == c->tgt)
		return;
	dropped = t->target[1];
	if (dropped && dropped != c->tgt) {
		for (i = 0; i < FLOW_SLOTS; i++) {
			const struct m_flow *f = &m->flows.slots[i];
			struct redir_flow_key in;

			if (!f->live || f->key.dir != FLOW_DIR_OUT || f->key.proto != c->proto ||
			    ntohs(f->key.local_port) != dropped || f->port != c->pub)
				continue;
			in = f->key;
			in.dir = FLOW_DIR_IN;
			in.local_port = htons(c->pub);
			m_put(&m->flows, &in, dropped, f->flags);
			m_kept++;
		}
		t->in_entries = true;
	}
	t->target[1] = t->target[0];
	t->target[0] = c->tgt;
}

static void m_count(struct model *m, struct m_expect *e, __u16 port, __u8 proto, int idx)
{
	e->port_key = port_key_find(port, proto);
	e->port_stat = idx;
	if (e->port_key >= 0)
		m->port_counts[e->port_key][idx]++;
}

static unsigned long m_promoted;      /* coverage: connections moved from pending to flows */
static unsigned long m_hidden_spared; /* coverage: dropped SYNs whose tuple had entries */
static unsigned long m_stale;	      /* coverage: the service's SYNs that ended flows entries */

static void m_touch(struct m_expect *e, const struct redir_flow_key *k)
{
	if (e->n_touched < MAX_TOUCHED)
		e->touched[e->n_touched++] = *k;
}

static void m_forget(struct m_table *t, const struct redir_flow_key *k)
{
	t->forgotten += m_del(t, k);
}

/* The key of the other direction of OUT key K: IN, for public port PUB. */
static void m_in_key(struct redir_flow_key *in, const struct redir_flow_key *k, __u16 pub)
{
	*in = *k;
	in->dir = FLOW_DIR_IN;
	in->local_port = htons(pub);
}

/* The connection in table T from p's source through public port p->dport: its OUT entry,
 * under one of the port's targets, that names the port (*k: its key). */
static const struct m_flow *m_through(struct model *m, struct m_table *t, const struct m_pkt *p,
				      struct redir_flow_key *k)
{
	struct m_targets *pt = m_targets(m, p->dport, p->proto, false);
	const struct m_flow *f;
	int i;

	for (i = 0; pt && i < BPFREDIR_PUBLIC_TARGETS && pt->target[i]; i++) {
		m_flow_key(k, p->saddr, p->daddr, p->sport, pt->target[i], p->proto, FLOW_DIR_OUT);
		f = m_get(t, k);
		if (f && f->port == p->dport)
			return f;
	}
	return NULL;
}

static void m_frag_key(__u8 *key, const __u8 *b, const struct m_pkt *p)
{
	memcpy(key, b + p->l3_off + 12, 8);
	memcpy(key + 8, b + p->l3_off + 4, 2);
}

static struct m_frag_fix *m_frag_find(struct model *m, const __u8 *key)
{
	int i;

	for (i = 0; i < FRAG_FIXES; i++)
		if (m->frag_fixes[i].live && !memcmp(m->frag_fixes[i].key, key, 10))
			return &m->frag_fixes[i];
	return NULL;
}

/* frag.h: what the checksum owes for a first fragment's port going from old to new. */
static void m_frag_record(struct model *m, const __u8 *b, const struct m_pkt *p, __u16 old,
			  __u16 new)
{
	struct m_frag_fix *f;
	__u8 key[10];
	__u32 sum = (__u16)~old + new;
	int i;

	m_frag_key(key, b, p);
	f = m_frag_find(m, key);
	for (i = 0; !f && i < FRAG_FIXES; i++)
		if (!m->frag_fixes[i].live)
			f = &m->frag_fixes[i];
	if (!f)
		f = &m->frag_fixes[0];
	f->live = true;
	memcpy(f->key, key, 10);
	f->diff = (sum & 0xffff) + (sum >> 16);
}

/* A later fragment at byte 8 or 16: it takes the fix when it holds the checksum. */
static void m_frag_tail(struct model *m, const __u8 *b, const struct m_pkt *p, struct m_expect *e)
{
	__u32 csum_off = p->l4_off + 16 - p->frag_off;
	struct m_frag_fix *f;
	__u8 key[10];

	m_frag_key(key, b, p);
	f = m_frag_find(m, key);
	if (!f || csum_off + 2 > p->len)
		return;
	e->csum_fix = true;
	e->csum_off = csum_off;
	e->csum_diff = f->diff;
	f->live = false;
}

/* Ingress translates p to port. */
static void m_rewrite_to(struct model *m, const struct m_pkt *p, const __u8 *b, bool v4_head,
			 __u16 port, struct m_expect *e)
{
	if (v4_head && p->proto == IPPROTO_UDP) {
		e->retval = TC_ACT_SHOT;
		e->stat = STAT_MALFORMED_DROPPED;
		return;
	}
	e->rewrite = true;
	e->new_port = port;
	e->stat = STAT_REWRITTEN;
	m_count(m, e, p->dport, p->proto, PORT_STAT_REWRITTEN);
	if (v4_head) {
		e->port_only = true;
		m_frag_record(m, b, p, p->dport, port);
	}
}

static void m_ingress(struct model *m, int parsed, const struct m_pkt *p, const __u8 *b,
		      struct m_expect *e)
{
	bool v4_head = parsed == M_PORTS_ONLY && p->frag && !p->v6;
	struct redir_flow_key in_key, out_key, tgt_key;
	bool fresh_syn, tcp = p->proto == IPPROTO_TCP;
	const struct m_flow *f;
	const struct cand *r;

	memset(e, 0, sizeof(*e));
	e->retval = TC_PASS;
	e->stat = STAT_PASSED;
	e->port_key = -1;
	e->dest = true;
	/* A port we cannot read could be a hidden one; a shape we do not translate is dropped
	 * where a rule could name its port, and left alone elsewhere. */
	if (parsed == M_MALFORMED ||
	    (parsed == M_PORTS_ONLY && !p->frag && m_interest(m, p->dport, p->proto))) {
		e->retval = TC_ACT_SHOT;
		e->stat = STAT_MALFORMED_DROPPED;
		e->why = W_MALFORMED;
		return;
	}
	if (parsed == M_NO_PORTS || parsed == M_FRAG_TAIL) {
		if (parsed == M_FRAG_TAIL)
			m_frag_tail(m, b, p, e);
		e->why = W_NO_PORTS;
		return;
	}
	/* A first fragment too short for the whole header: IPv6 refuses it (RFC 7112); IPv4
	 * judges it by its ports, a TCP one translated in its port alone, the checksum left to
	 * a later fragment. A UDP one (4 to 7 bytes, which the kernel discards) cannot be
	 * translated at all. */
	if (parsed == M_PORTS_ONLY && (p->v6 || !m_interest(m, p->dport, p->proto))) {
		e->why = W_SHAPE_PASSED;
		return;
	}
	/* The tuple's entries for the port it asks for (IN) and for replies from that port
	 * (OUT). */
	m_flow_key(&in_key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FLOW_DIR_IN);
	m_flow_key(&out_key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FLOW_DIR_OUT);
	m_touch(e, &in_key);
	m_touch(e, &out_key);
	fresh_syn = tcp && (p->flags & (F_SYN | F_ACK)) == F_SYN;

	/* A recorded connection keeps its translation, whatever the rules say now: an
	 * established one (its OUT entry in flows under a target its public port has had, else
	 * its IN entry where the port has some), else a new one (its OUT entry in pending) or a
	 * closing one (its IN in pending); a fresh SYN opens a new connection, which only a rule
	 * may translate. A UDP flow's first datagrams go by the rule. */
	if (!fresh_syn) {
		struct m_targets *pt = m_targets(m, p->dport, p->proto, false);

		e->why = W_BY_FLOW;
		if (m_through(m, &m->flows, p, &tgt_key)) {
			m_touch(e, &tgt_key);
			m_rewrite_to(m, p, b, v4_head, ntohs(tgt_key.local_port), e);
			return;
		}
		f = pt && pt->in_entries ? m_get(&m->flows, &in_key) : NULL;
		if (f) {
			m_rewrite_to(m, p, b, v4_head, f->port, e);
			return;
		}
		e->why = W_BY_PENDING;
		if (tcp && m_through(m, &m->pending, p, &tgt_key)) {
			m_touch(e, &tgt_key);
			m_rewrite_to(m, p, b, v4_head, ntohs(tgt_key.local_port), e);
			return;
		}
		f = tcp ? m_get(&m->pending, &in_key) : NULL;
		if (f) {
			m_rewrite_to(m, p, b, v4_head, f->port, e);
			return;
		}
	}
	r = m->slot_empty ? NULL : m_rule(m, p->dport, p->proto);
	if (r && ((r->flags & REDIR_F_ADDR) ? !memcmp(p->daddr, r->a, BPFREDIR_ADDR_LEN)
					    : m_is_local(m, p))) {
		m_flow_key(&tgt_key, p->saddr, p->daddr, p->sport, r->tgt, p->proto, FLOW_DIR_OUT);
		m_touch(e, &tgt_key);
		/* A new connection: pending until the service answers it for real, its OUT
		 * entry alone. flows is not touched: a SYN may be spoofed, and what flows holds
		 * is live. */
		m_put(&m->pending, &tgt_key, p->dport, 0);
		e->why = r->flags & REDIR_F_ADDR ? W_BY_ADDR_RULE : W_BY_RULE;
		m_rewrite_to(m, p, b, v4_head, r->tgt, e);
		return;
	}
	if (!m->slot_empty && m_hidden(m, p->dport, p->proto) && m_is_local(m, p)) {
		/* Never reaches the service, so it forgets nothing: a spoofed SYN must not cut a
		 * live connection's replies. */
		e->retval = TC_ACT_SHOT;
		e->stat = STAT_HIDDEN_DROPPED;
		e->why = W_HIDDEN;
		m_count(m, e, p->dport, p->proto, PORT_STAT_HIDDEN_DROPPED);
		if (fresh_syn && (m_get(&m->flows, &in_key) || m_get(&m->flows, &out_key) ||
				  m_get(&m->pending, &in_key) || m_get(&m->pending, &out_key)))
			m_hidden_spared++;
		return;
	}
	/* Passed untranslated: a direct connection to dport, whose replies leave from dport;
	 * the new connections its tuple left in pending no longer apply. */
	if (fresh_syn) {
		m_forget(&m->pending, &in_key);
		m_forget(&m->pending, &out_key);
		if (m_through(m, &m->pending, p, &tgt_key)) {
			m_touch(e, &tgt_key);
			m_forget(&m->pending, &tgt_key);
		}
	}
	if (r && (r->flags & REDIR_F_ADDR))
		e->why = W_OTHER_ADDR;
	else if (r || (!m->slot_empty && m_hidden(m, p->dport, p->proto)))
		e->why = W_FORWARDED;
	else
		e->why = W_PASSED;
}

/* Egress gives a reply of a translated connection its public port back, and moves a new
 * connection to flows once the service sends it something only a real peer gets: neither a
 * SYN(-ACK), which it sends to any SYN, nor a RST. Its SYN(-ACK) takes the pending entry,
 * and shows that what flows held for the tuple is over; its FIN moves the connection to
 * pending, closing (never promoted again); its RST forgets it. It drops what this host sends
 * another host from a hidden port outside any connection: that would show the port. */
static void m_egress(struct model *m, int parsed, const struct m_pkt *p, struct m_expect *e)
{
	bool tcp = p->proto == IPPROTO_TCP, syn = tcp && (p->flags & F_SYN);
	struct redir_flow_key out_key, in_key;
	const struct m_flow *f, *stale = NULL;
	bool established = false, closing;
	__u16 pub;

	memset(e, 0, sizeof(*e));
	e->retval = TC_PASS;
	e->stat = -1;
	e->port_key = -1;
	e->why = W_EG_PASSED;
	if (parsed != M_PORTS)
		return;
	m_flow_key(&out_key, p->daddr, p->saddr, p->dport, p->sport, p->proto, FLOW_DIR_OUT);
	m_touch(e, &out_key);
	if (syn) {
		stale = m_get(&m->flows, &out_key);
		if (stale) {
			/* Its IN goes too when it points at this target. */
			m_in_key(&in_key, &out_key, stale->port);
			m_touch(e, &in_key);
			m_stale++;
			m_forget(&m->flows, &out_key);
			f = m_get(&m->flows, &in_key);
			if (f && f->port == p->sport)
				m_forget(&m->flows, &in_key);
		}
		f = m_get(&m->pending, &out_key);
	} else {
		f = m_get(&m->flows, &out_key);
		established = f;
		if (!f)
			f = m_get(&m->pending, &out_key);
	}
	if (!f) {
		/* Every packet here was made on the host (test runs carry no skb_iif); its own
		 * stack's are those from one of its addresses. */
		if (!m->slot_empty && m_hidden(m, p->sport, p->proto) && !m_is_host(p->daddr) &&
		    m_is_own(p->saddr)) {
			e->retval = TC_ACT_SHOT;
			e->stat = STAT_HIDDEN_UNTRACKED_DROPPED;
			e->why = W_EG_UNTRACKED;
		}
		return;
	}
	pub = f->port;
	closing = f->flags & FLOW_F_CLOSING;
	e->rewrite = true;
	e->new_port = pub;
	e->stat = STAT_REVERSE_REWRITTEN;
	m_count(m, e, pub, p->proto, PORT_STAT_REVERSE_REWRITTEN);
	m_in_key(&in_key, &out_key, pub);
	m_touch(e, &in_key);
	if (tcp && (p->flags & F_RST)) {
		m_forget(&m->flows, &out_key);
		m_forget(&m->flows, &in_key);
		m_forget(&m->pending, &out_key);
		m_forget(&m->pending, &in_key);
		e->why = W_EG_RESET;
	} else if (tcp && (p->flags & F_FIN)) {
		m_put(&m->pending, &in_key, p->sport, FLOW_F_CLOSING);
		m_put(&m->pending, &out_key, pub, FLOW_F_CLOSING);
		if (established) {
			m_del(&m->flows, &out_key);
			m_del(&m->flows, &in_key);
		}
		e->why = W_EG_CLOSING;
	} else if (established) {
		e->why = W_EG_REWRITTEN;
	} else if (syn || closing) {
		e->why = W_EG_PENDING;
	} else {
		m_put(&m->flows, &out_key, pub, 0);
		m_del(&m->pending, &out_key);
		m_del(&m->pending, &in_key);
		e->why = W_EG_PROMOTED;
		m_promoted++;
	}
}

static unsigned long m_udp_csum_zero; /* coverage: rewrites whose UDP checksum came out 0 */

/* The expected output: the port replaced, the checksum updated incrementally (RFC 1624,
 * eqn. 3), a UDP "no checksum" (0) left alone and a computed 0 sent as 0xffff (RFC 768). */
static void m_output(__u8 *b, const struct m_pkt *p, const struct m_expect *e)
{
	__u32 port_off = p->l4_off + (e->dest ? 2 : 0);
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? 16 : 6);
	__u16 old_port = get16(b + port_off), hc = get16(b + csum_off);
	__u32 sum;

	if (e->csum_fix) {
		sum = (__u16)~get16(b + e->csum_off) + e->csum_diff;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		pkt_put16(b + e->csum_off, ~sum);
	}
	if (!e->rewrite)
		return;
	pkt_put16(b + port_off, e->new_port);
	if (e->port_only || (p->proto == IPPROTO_UDP && !hc))
		return;
	sum = (__u16)~hc + (__u16)~old_port + e->new_port;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	hc = ~sum;
	if (p->proto == IPPROTO_UDP && !hc) {
		hc = 0xffff;
		m_udp_csum_zero++;
	}
	pkt_put16(b + csum_off, hc);
}

/* Full recomputation over the pseudo-header and everything after the L4 header's start. */
static bool l4_csum_ok(const __u8 *b, __u32 len, const struct m_pkt *p)
{
	__u32 l4_len = len - p->l4_off;
	__u32 sum = p->proto + l4_len;

	if (p->v6)
		sum = pkt_csum_add(sum, b + p->l3_off + 8, 32);
	else
		sum = pkt_csum_add(sum, b + p->l3_off + 12, 8);
	return pkt_csum_fold(pkt_csum_add(sum, b + p->l4_off, l4_len)) == 0xffff;
}

/* --- the generator ------------------------------------------------------------------------- */

struct tuple {
	bool v6;
	__u8 proto;
	const __u8 *src, *dst; /* mapped */
	__u16 sport, dport;
	/* UDP: the port this side may become; sometimes the payload makes the checksum come
	 * out 0 with it, to exercise the 0 -> 0xffff rule. */
	__u16 alt_port;
	bool alt_is_sport; /* egress; ingress translates dport */
};

struct frame_meta {
	__u32 etype_off, l3_off, l4_off; /* l4_off: 0 when there is none */
	bool ip, v6;
};

static struct tuple ring[RING];
static int ring_n;

static __u8 rnd_flags(void)
{
	static const __u8 common[] = {
		F_SYN, F_SYN | F_ACK, F_ACK, F_PSH | F_ACK, F_FIN | F_ACK, F_RST, F_RST | F_ACK,
	};

	return chance(85) ? common[below(sizeof(common))] : (__u8)rnd64();
}

static const __u8 *rnd_addr(const struct host *pool, size_t n, bool v6)
{
	const struct host *h = &pool[below(n)];

	return v6 ? h->a6 : h->a4;
}

static void gen_ingress_tuple(struct tuple *t)
{
	const struct cand *c;
	int i;

	if (ring_n && chance(30)) {
		bool straight = chance(30);

		*t = ring[below(ring_n < RING ? ring_n : RING)];
		/* Now and then the same client port straight to the target. */
		for (i = 0; i < N_CANDS && straight; i++)
			if (cands[i].pub == t->dport && cands[i].proto == t->proto) {
				t->dport = cands[i].tgt;
				t->alt_port = 0;
				break;
			}
		return;
	}
	t->v6 = chance(50);
	t->proto = chance(60) ? IPPROTO_TCP : IPPROTO_UDP;
	t->src = rnd_addr(clients, sizeof(clients) / sizeof(clients[0]), t->v6);
	t->dst = rnd_addr(servers, sizeof(servers) / sizeof(servers[0]), t->v6);
	t->sport = chance(85) ? client_ports[below(4)] : (__u16)rnd64();
	c = &cands[below(N_CANDS)];
	switch (below(20)) {
	case 0 ... 8:
		t->dport = c->pub;
		if (chance(75))
			t->proto = c->proto;
		if (c->addr && chance(60)) {
			t->v6 = !c->a[10]; /* not ::ffff:a.b.c.d */
			t->src = rnd_addr(clients, sizeof(clients) / sizeof(clients[0]), t->v6);
			t->dst = c->a;
		}
		break;
	case 9 ... 12:
		t->dport = c->tgt;
		if (chance(75))
			t->proto = c->proto;
		break;
	case 13 ... 14:
		t->dport = misc_ports[below(5)];
		break;
	case 15:
		t->dport = client_ports[below(4)];
		break;
	default:
		t->dport = rnd64();
	}
	t->alt_port = 0;
	t->alt_is_sport = false;
	for (i = 0; i < N_CANDS; i++)
		if (cands[i].pub == t->dport && cands[i].proto == IPPROTO_UDP)
			t->alt_port = cands[i].tgt;
	ring[ring_n++ % RING] = *t;
}

static void gen_egress_tuple(struct tuple *t)
{
	int i, n = 0, pick[N_CANDS];

	if (ring_n && chance(55)) {
		const struct tuple *in = &ring[below(ring_n < RING ? ring_n : RING)];

		/* A reply from the service: from its target port, or now and then not. */
		t->v6 = in->v6;
		t->proto = in->proto;
		t->src = in->dst;
		t->dst = in->src;
		t->dport = in->sport;
		for (i = 0; i < N_CANDS; i++)
			if (cands[i].pub == in->dport)
				pick[n++] = i;
		t->sport = n && chance(85) ? cands[pick[below(n)]].tgt : in->dport;
		t->alt_port = in->dport;
		t->alt_is_sport = true;
		return;
	}
	t->alt_port = 0;
	t->v6 = chance(50);
	t->proto = chance(60) ? IPPROTO_TCP : IPPROTO_UDP;
	t->src = rnd_addr(servers, sizeof(servers) / sizeof(servers[0]), t->v6);
	t->dst = rnd_addr(clients, sizeof(clients) / sizeof(clients[0]), t->v6);
	t->dport = chance(80) ? client_ports[below(4)] : (__u16)rnd64();
	switch (below(10)) {
	case 0 ... 5:
		t->sport = cands[below(N_CANDS)].tgt;
		break;
	case 6 ... 7:
		t->sport = cands[below(N_CANDS)].pub;
		break;
	default:
		t->sport = rnd64();
	}
}

static void rnd_fill(__u8 *p, __u32 n)
{
	while (n--)
		*p++ = rnd64();
}

/* IPv6 extension headers of random kinds and lengths; returns the new offset. */
static __u32 gen_ext_chain(__u8 *b, __u32 off, __u8 *first_nh, __u8 last_nh)
{
	static const __u8 kinds[] = { EXT_HOPOPTS, EXT_ROUTING, EXT_DSTOPTS, EXT_AH, EXT_FRAGMENT };
	__u32 r = below(100), n, i, hdrlen, hlen;
	__u8 *prev_nh = first_nh;

	n = r < 45 ? 0 : r < 80 ? 1 + below(4) : r < 94 ? 5 + below(4) : 9 + below(2);
	for (i = 0; i < n; i++) {
		__u8 kind = kinds[below(sizeof(kinds))];
		__u8 *h = b + off;

		*prev_nh = kind;
		prev_nh = h;
		if (kind == EXT_FRAGMENT) {
			__u16 fo = chance(80) ? 0 : (1 + below(0x1fff)) << 3;

			hlen = 8;
			h[1] = 0;
			pkt_put16(h + 2, fo | (chance(50) ? 1 : 0));
			rnd_fill(h + 4, 4);
		} else if (kind == EXT_AH) {
			hdrlen = 1 + below(4);
			hlen = (hdrlen + 2) * 4;
			h[1] = hdrlen;
			h[2] = h[3] = 0;
			rnd_fill(h + 4, hlen - 4);
		} else {
			hdrlen = below(3);
			hlen = (hdrlen + 1) * 8;
			h[1] = hdrlen;
			h[2] = 1; /* PadN */
			h[3] = hlen - 4;
			memset(h + 4, 0, hlen - 4);
		}
		off += hlen;
	}
	*prev_nh = last_nh;
	return off;
}

static __u32 gen_frame(__u8 *b, const struct tuple *t, struct frame_meta *fm)
{
	/* This host's (lo's), another host's, broadcast, multicast; then the source. */
	static const __u8 dst_macs[4][6] = { { 0, 0, 0, 0, 0, 0 },
					     { 2, 0, 0, 0, 0, 1 },
					     { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
					     { 1, 0, 0x5e, 0, 0, 1 } };
	static const __u8 src_mac[6] = { 2, 0, 0, 0, 0, 2 };
	__u32 mac_r = below(100);
	static const __u8 other_l4[] = {
		IPPROTO_ICMP, IPPROTO_GRE, IPPROTO_ESP, IPPROTO_ICMPV6, IPPROTO_SCTP, 59,
	};
	__u32 off = 12, r = below(100), ntags, i, l4_len, hlen;
	__u8 l4proto = t->proto, *ip;
	bool l4_ok = chance(93);

	memset(fm, 0, sizeof(*fm));
	memcpy(b, dst_macs[mac_r < 80 ? 0 : mac_r < 88 ? 1 : mac_r < 94 ? 2 : 3], 6);
	memcpy(b + 6, src_mac, 6);
	ntags = r < 65 ? 0 : r < 82 ? 1 : r < 95 ? 2 : 3 + below(PEEK_TAGS - 1);
	for (i = 0; i < ntags; i++, off += 4) {
		pkt_put16(b + off, chance(50) ? TPID_8021Q : TPID_8021AD);
		pkt_put16(b + off + 2, rnd64() & 0xfff);
	}
	fm->etype_off = off;
	if (chance(4)) {
		static const __u16 others[] = { 0x0806, 0x88cc, 0x8847, 0x86dd ^ 1 };

		pkt_put16(b + off, chance(75) ? others[below(4)] : (__u16)rnd64());
		l4_len = 28 + below(40);
		rnd_fill(b + off + 2, l4_len);
		return off + 2 + l4_len;
	}
	pkt_put16(b + off, t->v6 ? ETYPE_IPV6 : ETYPE_IPV4);
	off += 2;
	fm->ip = true;
	fm->v6 = t->v6;
	fm->l3_off = off;
	ip = b + off;
	if (!l4_ok)
		l4proto = other_l4[below(sizeof(other_l4))];
	if (t->v6) {
		ip[0] = 0x60 | (rnd64() & 0xf);
		rnd_fill(ip + 1, 3);
		ip[7] = 64;
		memcpy(ip + 8, t->src, 16);
		memcpy(ip + 24, t->dst, 16);
		off = gen_ext_chain(b, off + 40, ip + 6, l4proto);
	} else {
		__u32 fr = below(100);
		__u16 frag = 0;

		if (fr >= 92) /* non-first, maybe with MF */
			frag = (1 + below(0x1fff)) | (chance(50) ? 0x2000 : 0);
		else if (fr >= 85) /* first, MF */
			frag = 0x2000;
		else if (fr >= 75) /* DF */
			frag = 0x4000;

		hlen = chance(70) ? 20 : 24 + 4 * below(10);
		ip[0] = 0x40 | hlen / 4;
		ip[1] = rnd64();
		pkt_put16(ip + 4, rnd64());
		pkt_put16(ip + 6, frag);
		ip[8] = 64;
		ip[9] = l4proto;
		memcpy(ip + 12, t->src + 12, 4);
		memcpy(ip + 16, t->dst + 12, 4);
		if (chance(50)) {
			memset(ip + 20, 1, hlen - 20); /* NOPs, then EOL */
			if (hlen > 20)
				ip[hlen - 1] = 0;
		} else {
			rnd_fill(ip + 20, hlen - 20);
		}
		off += hlen;
	}
	fm->l4_off = off;

	if (l4proto == IPPROTO_TCP) {
		__u32 doff = chance(80) ? 5 : 6 + below(11);

		pkt_put16(b + off, t->sport);
		pkt_put16(b + off + 2, t->dport);
		rnd_fill(b + off + 4, 8);
		b[off + 12] = doff << 4;
		b[off + 13] = rnd_flags();
		pkt_put16(b + off + 14, rnd64());
		pkt_put16(b + off + 16, 0);
		pkt_put16(b + off + 18, 0);
		memset(b + off + 20, 1, doff * 4 - 20);
		l4_len = doff * 4;
	} else if (l4proto == IPPROTO_UDP) {
		pkt_put16(b + off, t->sport);
		pkt_put16(b + off + 2, t->dport);
		pkt_put16(b + off + 6, 0);
		l4_len = 8;
	} else {
		l4_len = 0;
	}
	hlen = below(48); /* payload */
	rnd_fill(b + off + l4_len, hlen);
	l4_len += hlen;
	if (l4proto == IPPROTO_UDP)
		pkt_put16(b + off + 4, l4_len);

	if (t->v6) {
		pkt_put16(ip + 4, off + l4_len - fm->l3_off - 40);
	} else {
		pkt_put16(ip + 2, off + l4_len - fm->l3_off);
		pkt_put16(ip + 10, ~pkt_csum_fold(pkt_csum_add(0, ip, (ip[0] & 0xf) * 4)));
	}
	if (l4proto == IPPROTO_TCP || l4proto == IPPROTO_UDP) {
		__u32 csum_off = off + (l4proto == IPPROTO_TCP ? 16 : 6);
		__u32 sum = l4proto + l4_len;
		__u16 csum;

		sum = t->v6 ? pkt_csum_add(sum, ip + 8, 32) : pkt_csum_add(sum, ip + 12, 8);
		if (l4proto == IPPROTO_UDP && t->alt_port && hlen >= 2 && chance(25)) {
			/* The first payload word (16-bit aligned), chosen so that the sum comes
			 * out 0 once the port is alt_port. */
			__u32 port_off = off + (t->alt_is_sport ? 0 : 2);
			__u16 port = get16(b + port_off);

			pkt_put16(b + port_off, t->alt_port);
			pkt_put16(b + off + 8, 0);
			pkt_put16(b + off + 8, ~pkt_csum_fold(pkt_csum_add(sum, b + off, l4_len)));
			pkt_put16(b + port_off, port);
		}
		csum = ~pkt_csum_fold(pkt_csum_add(sum, b + off, l4_len));
		if (l4proto == IPPROTO_UDP && !csum)
			csum = 0xffff;
		if (l4proto == IPPROTO_UDP && chance(8))
			csum = 0; /* none */
		else if (chance(3))
			csum = rnd64(); /* wrong: the update must carry the error along */
		pkt_put16(b + csum_off, csum);
	}
	return off + l4_len;
}

/* Mutations: a cut anywhere, flipped header bytes, a wrong version, a short ihl, a garbage
 * ethertype, protocol or next header, a wild IPv4 ihl or extension header length. */
static __u32 mutate(__u8 *b, __u32 len, const struct frame_meta *fm)
{
	__u32 n = 1 + below(2), hdr_end = fm->l4_off ? fm->l4_off + 24 : len, i, pos, r;

	if (hdr_end > len)
		hdr_end = len;
	while (n--) {
		switch (below(fm->ip ? 7 : 3)) {
		case 0: /* truncation: in the IP headers, near the L4 header, or anywhere */
			r = below(3);
			if (r == 0 && fm->l4_off)
				pos = fm->l3_off + below(fm->l4_off - fm->l3_off);
			else if (r == 1 && fm->l4_off)
				pos = fm->l4_off - 12 + below(36);
			else
				pos = ETH_HDR + below(len - ETH_HDR + 1);
			/* BPF_PROG_TEST_RUN refuses less than an Ethernet header */
			if (pos < ETH_HDR)
				pos = ETH_HDR;
			if (pos < len)
				len = pos;
			if (hdr_end > len)
				hdr_end = len;
			break;
		case 1: /* byte flips in the headers */
			for (i = 1 + below(3); i; i--) {
				pos = below(hdr_end);
				b[pos] = chance(50) ? (__u8)rnd64() : b[pos] ^ (1 << below(8));
			}
			break;
		case 2: /* garbage ethertype, or one more tag */
			if (fm->etype_off + 2 <= len)
				pkt_put16(b + fm->etype_off,
					  chance(30) ? TPID_8021Q : (__u16)rnd64());
			break;
		case 3: /* wrong version nibble */
			if (fm->l3_off < len)
				b[fm->l3_off] = (b[fm->l3_off] & 0xf) |
						(((b[fm->l3_off] >> 4) + 1 + below(15)) & 0xf) << 4;
			break;
		case 4: /* ihl < 5 */
			if (!fm->v6 && fm->l3_off < len)
				b[fm->l3_off] = 0x40 | below(5);
			break;
		case 5: /* garbage protocol or first next header */
			pos = fm->l3_off + (fm->v6 ? 6 : 9);
			if (pos < len)
				b[pos] = chance(50) ? (__u8)rnd64() : EXT_DSTOPTS;
			break;
		default: /* a wild IPv4 ihl, or first extension header length */
			pos = fm->l3_off + (fm->v6 ? 41 : 0);
			if (pos < len)
				b[pos] = fm->v6 ? (__u8)rnd64() : 0x40 | (5 + below(11));
		}
	}
	return len;
}

/* BPF_PROG_TEST_RUN refuses a frame shorter than an Ethernet header, and an untagged
 * IPv4/IPv6 frame without its whole fixed IP header (it looks at the IP header itself).
 * Such shapes still reach the model and the programs behind a VLAN tag, which it does not
 * look through. */
static bool test_run_accepts(const __u8 *b, __u32 len)
{
	if (len < ETH_HDR)
		return false;
	if (get16(b + 12) == ETYPE_IPV4)
		return len >= ETH_HDR + 20;
	if (get16(b + 12) == ETYPE_IPV6)
		return len >= ETH_HDR + 40;
	return true;
}

/* --- running and comparing --------------------------------------------------------------- */

struct run {
	struct fixture *f;
	/* Where ruleset_derive gives its counter slots: the test gives the real maps' slots
	 * itself (port_keys), for counts in the wrong place to show, and the model counts them
	 * across rule set changes. */
	struct port_counter_maps derived_counters;
	struct model m;
	const char *phase;
	__u64 seed;
	unsigned long idx;
	int mismatches;
	__u64 stats[STAT__MAX]; /* the kernel's, after the last packet */
	unsigned long why[W__MAX], mutated;
	unsigned long edits, swaps, empties; /* rule set changes, by kind */
	int peak_flows, peak_pending;	     /* the most entries the model's tables held */
};

static void hexdump(const char *label, const __u8 *b, __u32 len)
{
	__u32 i;

	for (i = 0; i < len; i++) {
		if (i % 16 == 0)
			printf("%s# %s %04x:", i ? "\n" : "", label, i);
		printf(" %02x", b[i]);
	}
	if (len)
		printf("\n");
}

/* Reports one disagreement as `#` lines; DUMPS is input, kernel output, model output. */
static void mismatch(struct run *r, bool egress, const __u8 *const dumps[3], __u32 len,
		     __u32 out_len, const char *fmt, ...)
{
	va_list ap;

	r->mismatches++;
	printf("# mismatch %d: seed %llu, phase %s, packet %lu (%s): ", r->mismatches,
	       (unsigned long long)r->seed, r->phase, r->idx, egress ? "egress" : "ingress");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (dumps && dumps[0])
		hexdump("in   ", dumps[0], len);
	if (dumps && dumps[1])
		hexdump("out  ", dumps[1], out_len);
	if (dumps && dumps[2])
		hexdump("model", dumps[2], len);
}

static int map_fd(struct bpf_map *map)
{
	return bpf_map__fd(map);
}

static int port_stat_read(struct run *r, int key, __u64 sum[PORT_STAT__MAX])
{
	return fixture_port_stat(r->f, ntohs(port_keys[key].port), port_keys[key].proto, sum) ? 0
											      : -1;
}

/* The rule of candidate C, as the CLI would fill it. */
static struct rule_spec cand_rule(const struct cand *c)
{
	struct rule_spec rule = { .public_port = c->pub,
				  .target_port = c->tgt,
				  .proto = c->proto,
				  .no_hide = !(c->flags & REDIR_F_HIDE),
				  .hide_local = c->flags & REDIR_F_HIDE_LOCAL,
				  .has_addr = c->flags & REDIR_F_ADDR };

	memcpy(rule.addr, c->a, sizeof(rule.addr));
	return rule;
}

/* Make rule set FD hold the model's active candidates, through the core as add, del and
 * apply do: the active rules put, the rules of keys with none active taken out, then what
 * follows from them derived (hidden entries, port_interest) and lo named. -errno. */
static int set_write(struct run *r, int fd)
{
	struct rule_spec rule;
	int i, err = 0;

	for (i = 0; i < N_CANDS && !err; i++) {
		const struct cand *c = &cands[i];

		rule = cand_rule(c);
		if (r->m.active[i])
			err = ruleset_put(fd, &rule);
		else if (!m_rule(&r->m, c->pub, c->proto))
			err = ruleset_del(fd, c->pub, c->proto);
		if (err == -ENOENT)
			err = 0;
		/* ruleset_derive marks the ports before the rule acts and never clears them. */
		r->m.marked[i] |= r->m.active[i];
	}
	if (!err)
		err = ruleset_enable(fd, POLICY_IFACE, LO_IFINDEX, true);
	if (!err) {
		struct derive_maps derive = fixture_derive_maps(r->f, r->derived_counters);

		err = ruleset_derive(fd, &derive);
	}
	for (i = 0; i < N_CANDS && !err; i++)
		if (r->m.active[i])
			m_note_target(&r->m, &cands[i]);
	return err;
}

/* `apply`: a whole new set, built aside and swapped in; or (swap false) none, an empty
 * slot. */
static int set_swap(struct run *r, bool swap)
{
	int fd = swap ? ruleset_create() : -1, err;

	if (swap && fd < 0)
		return fd;
	err = swap ? set_write(r, fd) : 0;
	/* No set, nothing derived from one: the interfaces and hidden ports go with it. */
	if (!swap && !(fixture_zero_array(r->f->tc->maps.iface_slots) &&
		       fixture_zero_array(r->f->tc->maps.port_hidden)))
		err = -EIO;
	if (!err)
		err = ruleset_install(map_fd(r->f->tc->maps.policy), fd);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (r->f->live_set >= 0)
		close(r->f->live_set);
	r->f->live_set = fd;
	r->m.slot_empty = !swap;
	return 0;
}

/* A rule deleted or added (replacing the rule of the same key), then the set changed: in
 * place, as `bpfredir del/add` do; whole, as `apply` does; or taken out of the slot. */
static int churn(struct run *r)
{
	int i, c = below(N_CANDS);

	if (r->m.active[c]) {
		r->m.active[c] = false;
	} else {
		for (i = 0; i < N_CANDS; i++)
			if (cands[i].pub == cands[c].pub && cands[i].proto == cands[c].proto)
				r->m.active[i] = false;
		r->m.active[c] = true;
	}
	if (!r->m.slot_empty && chance(8)) {
		r->empties++;
		return set_swap(r, false);
	}
	if (r->m.slot_empty || chance(35)) {
		r->swaps++;
		return set_swap(r, true);
	}
	r->edits++;
	return set_write(r, r->f->live_set);
}

static void flows_clear(struct run *r)
{
	fixture_conns_clear(r->f);
	m_table_clear(&r->m.flows);
	m_table_clear(&r->m.pending);
}

static bool is_pending(struct run *r, const struct m_table *t)
{
	return t == &r->m.pending;
}

/* After a packet: each key it touched, in both tables, as the model has it; else what
 * differs, in WHY, for the mismatch report. */
static bool touched_check(struct run *r, const struct m_expect *e, char *why, size_t n)
{
	struct m_table *tables[2] = { &r->m.flows, &r->m.pending };
	int i, j;

	for (i = 0; i < e->n_touched; i++) {
		const struct redir_flow_key *k = &e->touched[i];

		for (j = 0; j < 2; j++) {
			const struct m_flow *f = m_get(tables[j], k);
			struct redir_flow v;
			bool there = !fixture_conn_get(r->f, is_pending(r, tables[j]), k, &v);

			if (there == !!f &&
			    (!f || (f->port == ntohs(v.port) && f->flags == v.flags)))
				continue;
			snprintf(why, n,
				 "%s %s %u (remote port %u): kernel %s%u flags %x, model %s%u "
				 "flags %x",
				 tables[j]->name, k->dir == FLOW_DIR_IN ? "IN" : "OUT",
				 ntohs(k->local_port), ntohs(k->remote_port),
				 there ? "-> " : "none ", there ? ntohs(v.port) : 0,
				 there ? v.flags : 0, f ? "-> " : "none ", f ? f->port : 0,
				 f ? f->flags : 0);
			return false;
		}
	}
	return true;
}

struct full_check {
	struct run *r;
	struct m_table *t;
	int n;
};

static int full_check_one(const struct redir_flow_key *key, const struct redir_flow *v, void *ctx)
{
	struct full_check *c = ctx;
	const struct m_flow *f = m_get(c->t, key);

	c->n++;
	if (f && f->port == ntohs(v->port) && f->flags == v->flags)
		return 0;
	mismatch(c->r, false, NULL, 0, 0,
		 "full check: %s map entry %s local port %u -> %u flags %x: model %s", c->t->name,
		 key->dir == FLOW_DIR_IN ? "IN" : "OUT", ntohs(key->local_port), ntohs(v->port),
		 v->flags, f ? "has another port or flags" : "has no such entry");
	return 1;
}

/* A whole table against the model's; false on a mismatch. */
static bool table_full_check(struct run *r, struct m_table *t)
{
	struct full_check c = { .r = r, .t = t };
	int err = fixture_conn_walk(r->f, is_pending(r, t), full_check_one, &c);

	if (err == 1)
		return false;
	if (err < 0) {
		mismatch(r, false, NULL, 0, 0, "full check: %s map: %s", t->name, strerror(-err));
		return false;
	}
	if (c.n != t->n) {
		mismatch(r, false, NULL, 0, 0, "full check: %s map has %d entries, model %d",
			 t->name, c.n, t->n);
		return false;
	}
	return true;
}

/* Both connection maps and every port counter against the model. */
static void full_check(struct run *r)
{
	__u64 got[PORT_STAT__MAX];
	int i, j;

	if (!table_full_check(r, &r->m.flows) || !table_full_check(r, &r->m.pending))
		flows_clear(r);
	for (i = 0; i < n_port_keys; i++) {
		if (port_stat_read(r, i, got)) {
			mismatch(r, false, NULL, 0, 0, "full check: port counter %u/%u: %s",
				 ntohs(port_keys[i].port), port_keys[i].proto, strerror(errno));
			continue;
		}
		for (j = 0; j < PORT_STAT__MAX; j++) {
			if (got[j] == r->m.port_counts[i][j])
				continue;
			mismatch(r, false, NULL, 0, 0,
				 "full check: port counter %u/%u counter %d is %llu, model %llu "
				 "(counted within the last %d packets)",
				 ntohs(port_keys[i].port), port_keys[i].proto, j,
				 (unsigned long long)got[j],
				 (unsigned long long)r->m.port_counts[i][j], CHECK_EVERY);
			r->m.port_counts[i][j] = got[j];
		}
	}
}

static void one_packet(struct run *r, bool egress)
{
	__u8 in[BUF_MAX], want[BUF_MAX], out[BUF_MAX];
	const __u8 *const dumps[3] = { in, out, want };
	__u64 after[STAT__MAX], pc[PORT_STAT__MAX];
	struct frame_meta fm;
	struct m_expect e;
	struct m_pkt p;
	struct tuple t;
	bool csum_valid, mutated;
	int parsed, i, err;
	char why[160];
	__u32 len, out_len = sizeof(out), retval;

	do {
		if (egress)
			gen_egress_tuple(&t);
		else
			gen_ingress_tuple(&t);
		len = gen_frame(in, &t, &fm);
		mutated = chance(30);
		if (mutated)
			len = mutate(in, len, &fm);
	} while (!test_run_accepts(in, len));
	r->mutated += mutated;

	parsed = m_parse(in, len, &p);
	if (egress)
		m_egress(&r->m, parsed, &p, &e);
	else
		m_ingress(&r->m, parsed, &p, in, &e);
	r->why[e.why]++;
	memcpy(want, in, len);
	m_output(want, &p, &e);
	csum_valid = parsed == M_PORTS && l4_csum_ok(in, len, &p) &&
		     (p.proto == IPPROTO_TCP || get16(in + p.l4_off + 6));

	err = fixture_run(r->f, egress ? HOOK_TC_EG : HOOK_TC_IN, in, len, out, &out_len, &retval);
	if (err) {
		mismatch(r, egress, dumps, len, 0, "BPF_PROG_TEST_RUN: %s", strerror(-err));
		return;
	}
	if (retval != e.retval) {
		mismatch(r, egress, dumps, len, out_len, "verdict %u, model %u (%s)", retval,
			 e.retval, why_names[e.why]);
		goto resync;
	}
	if (out_len != len || memcmp(out, want, len)) {
		for (i = 0; i < (int)len && out[i] == want[i]; i++)
			;
		mismatch(r, egress, dumps, len, out_len,
			 "output differs from the model's (%s): length %u, model %u, first byte %d",
			 why_names[e.why], out_len, len, i);
		goto resync;
	}
	if (e.rewrite && csum_valid && !l4_csum_ok(out, len, &p))
		mismatch(r, egress, dumps, len, len, "output L4 checksum invalid (%s)",
			 why_names[e.why]);

	if (!fixture_stats(r->f, after)) {
		mismatch(r, egress, NULL, 0, 0, "reading stats");
		return;
	}
	for (i = 0; i < STAT__MAX; i++) {
		__u64 d = after[i] - r->stats[i], w = i == e.stat;

		if (d != w) {
			mismatch(r, egress, dumps, len, 0,
				 "stat %d went up by %llu, model %llu (%s)", i,
				 (unsigned long long)d, (unsigned long long)w, why_names[e.why]);
			break;
		}
	}
	memcpy(r->stats, after, sizeof(after));
	if (e.port_key >= 0) {
		__u64 *mc = &r->m.port_counts[e.port_key][e.port_stat];

		if (port_stat_read(r, e.port_key, pc))
			pc[e.port_stat] = ~0ULL;
		if (pc[e.port_stat] != *mc) {
			mismatch(r, egress, dumps, len, 0,
				 "port counter %u/%u, %d: %llu, model %llu",
				 ntohs(port_keys[e.port_key].port), port_keys[e.port_key].proto,
				 e.port_stat, (unsigned long long)pc[e.port_stat],
				 (unsigned long long)*mc);
			*mc = pc[e.port_stat];
		}
	}
	if (!touched_check(r, &e, why, sizeof(why))) {
		mismatch(r, egress, dumps, len, 0, "%s (%s)", why, why_names[e.why]);
		goto resync;
	}
	return;
resync:
	/* One disagreement would cascade through the connection table and the counters: start
	 * the table afresh, take the kernel's counters. */
	flows_clear(r);
	fixture_stats(r->f, r->stats);
	for (i = 0; i < n_port_keys; i++)
		if (port_stat_read(r, i, pc) == 0)
			memcpy(r->m.port_counts[i], pc, sizeof(pc));
}

/* A phase: fresh maps, the initial rule set, PACKETS packets, then the final comparison. */
static bool phase_run(struct run *r, unsigned long packets)
{
	int i;

	if (!fixture_port_counters_set(r->f, NULL, 0))
		return false;
	flows_clear(r);
	memset(r->m.port_counts, 0, sizeof(r->m.port_counts));
	memset(r->why, 0, sizeof(r->why));
	r->mutated = 0;
	r->edits = r->swaps = r->empties = 0;
	r->peak_flows = r->peak_pending = 0;
	m_udp_csum_zero = 0;
	m_promoted = 0;
	m_kept = 0;
	m_hidden_spared = 0;
	m_stale = 0;
	r->m.flows.forgotten = r->m.pending.forgotten = 0;
	memcpy(r->m.active, initially_active, sizeof(r->m.active));
	ring_n = 0;
	/* The host's addresses as the loader records them (m_is_host, m_is_local). */
	for (i = 0; i < (int)(sizeof(local_addrs) / sizeof(local_addrs[0])); i++) {
		int last = sizeof(local_addrs) / sizeof(local_addrs[0]) - 1;
		/* An address of the host's has one holder here; the broadcast address none. */
		const __u32 kind = i == last ? LOCAL_ADDR_BROADCAST : 1;
		__u8 a[BPFREDIR_ADDR_LEN];

		if (!ASSERT_OK(to_mapped(a, local_addrs[i]), local_addrs[i]) ||
		    !ASSERT_OK(bpf_map_update_elem(map_fd(r->f->tc->maps.local_addrs), a, &kind,
						   BPF_ANY),
			       "record an address in local_addrs"))
			return false;
	}
	if (!ASSERT_OK(cache_gen_bump(map_fd(r->f->tc->maps.addrs_gen)), "move addrs_gen on"))
		return false;
	if (!ASSERT_OK(set_swap(r, true), "install the rules"))
		return false;
	if (!fixture_port_counters_set(r->f, port_keys, n_port_keys))
		return false;
	if (!fixture_stats(r->f, r->stats))
		return false;

	for (r->idx = 0; r->idx < packets && r->mismatches < MAX_MISMATCHES; r->idx++) {
		if (r->idx && r->idx % CHURN_EVERY == 0 && chance(40) &&
		    !ASSERT_OK(churn(r), "change the rules"))
			return false;
		if (r->m.flows.n > MODEL_FLOWS_MAX || r->m.pending.n > MODEL_PENDING_MAX ||
		    r->m.flows.used > FLOW_SLOTS / 2 || r->m.pending.used > FLOW_SLOTS / 2)
			flows_clear(r);
		one_packet(r, chance(45));
		if (r->m.flows.n > r->peak_flows)
			r->peak_flows = r->m.flows.n;
		if (r->m.pending.n > r->peak_pending)
			r->peak_pending = r->m.pending.n;
		if ((r->idx + 1) % CHECK_EVERY == 0)
			full_check(r);
	}
	if (r->mismatches < MAX_MISMATCHES)
		full_check(r);
	return true;
}

/* Each outcome must have come up often enough for the comparison to mean something. */
static bool coverage_check(const struct run *r, bool forwarding)
{
	int i;

	printf("# phase %s: %lu mutated, %lu udp checksums updated to 0, %lu promoted, "
	       "%lu kept by an IN entry, "
	       "forgotten %lu from flows and %lu from pending, %lu dropped SYNs spared entries, "
	       "%lu SYNs of the service ended flows entries; "
	       "rule set edited %lu, swapped %lu, emptied %lu times; at most %d in flows and %d "
	       "in pending;",
	       r->phase, r->mutated, m_udp_csum_zero, m_promoted, m_kept, r->m.flows.forgotten,
	       r->m.pending.forgotten, m_hidden_spared, m_stale, r->edits, r->swaps, r->empties,
	       r->peak_flows, r->peak_pending);
	for (i = 0; i < W__MAX; i++)
		printf(" %s %lu", why_names[i], r->why[i]);
	printf("\n");
	if (m_udp_csum_zero < r->idx / 10000)
		return test__fail("coverage: only %lu udp checksums updated to 0", m_udp_csum_zero);
	if (r->m.flows.forgotten < r->idx / 10000 || r->m.pending.forgotten < r->idx / 10000)
		return test__fail("coverage: only %lu entries forgotten from flows and %lu from "
				  "pending",
				  r->m.flows.forgotten, r->m.pending.forgotten);
	if (!m_kept)
		return test__fail("coverage: no connection was kept by an IN entry");
	if (m_hidden_spared < r->idx / 10000)
		return test__fail("coverage: only %lu dropped SYNs to hidden ports spared entries",
				  m_hidden_spared);
	if (m_stale < r->idx / 10000)
		return test__fail("coverage: only %lu SYNs of the service ended flows entries",
				  m_stale);
	if (r->idx >= 10000 && (!r->edits || !r->swaps || !r->empties))
		return test__fail("coverage: rule set edited %lu, swapped %lu, emptied %lu times",
				  r->edits, r->swaps, r->empties);
	for (i = 0; i < W__MAX; i++) {
		unsigned long min = r->idx / 1000;

		if (i == W_FORWARDED && !forwarding)
			continue;
		if (r->why[i] < min)
			return test__fail("coverage: only %lu packets %s (want %lu)", r->why[i],
					  why_names[i], min);
	}
	return true;
}

static unsigned long env_ulong(const char *name, unsigned long dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return dflt;
	errno = 0;
	v = strtoull(s, &end, 0);
	return errno || *end ? dflt : v;
}

/* The forwarding namespace. Where the kernel lacks an encapsulation, the tunneled host's
 * prefix is routed plainly (netns.h): still forwarded, as the model says, but the FIB's
 * UNSUPP_LWT answer for that family goes untested, which is said as a skip. */
static bool scope_setup(const char *phase)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct netns_scope scope;
	const char *missing;
	char why[256];
	size_t i;

	if (netns_setup_scope(&scope, why, sizeof(why)))
		return test__fail("%s: forwarding network namespace: %s", phase, why);
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		missing = netns_encap_missing(&scope, families[i]);
		if (missing && test__start_subtest("random ingress/egress, %s: IPv%d destinations "
						   "behind an encapsulating route",
						   phase, families[i] == AF_INET ? 4 : 6))
			test__skip(missing);
	}
	return true;
}

/* One phase as a subtest: its packets, then whether they all matched the model and covered
 * what they must. */
static void phase_check(struct run *r, unsigned long packets)
{
	struct timespec t0, t1;
	int mismatches_before = r->mismatches, n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!phase_run(r, packets)) {
		test__fail("setup (seed %llu)", (unsigned long long)r->seed);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# phase %s: %lu packets in %.1f s\n", r->phase, r->idx,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	n = r->mismatches - mismatches_before;
	if (n)
		test__fail("%d mismatch%s with the model%s (seed %llu; rerun with "
			   "BPFREDIR_SEED=%llu)",
			   n, n > 1 ? "es" : "", r->mismatches >= MAX_MISMATCHES ? ", stopped" : "",
			   (unsigned long long)r->seed, (unsigned long long)r->seed);
	else if (!coverage_check(r, r->m.forwarding))
		test__fail("(seed %llu)", (unsigned long long)r->seed);
}

void test_random(void)
{
	static const struct {
		const char *name;
		bool forwarding;
	} phases[] = { { "not forwarding", false }, { "forwarding", true } };
	unsigned long packets = env_ulong("BPFREDIR_PACKETS", DEFAULT_PACKETS);
	struct run r = { .derived_counters = { -1, -1 } };
	char why[256];
	size_t i;

	r.seed = env_ulong("BPFREDIR_SEED", DEFAULT_SEED);
	rng = r.seed;
	r.m.flows.name = "flows";
	r.m.pending.name = "pending";
	r.m.flows.slots = calloc(FLOW_SLOTS, sizeof(*r.m.flows.slots));
	r.m.pending.slots = calloc(FLOW_SLOTS, sizeof(*r.m.pending.slots));
	if (!ASSERT_OK_PTR(r.m.flows.slots, "the model's flows") ||
	    !ASSERT_OK_PTR(r.m.pending.slots, "the model's pending") ||
	    !ASSERT_OK(tables_init(), "the test's addresses"))
		goto out;
	r.f = fixture_open(0, PENDING_WAYS);
	if (!r.f)
		goto out;
	if (!fixture_port_counters_scratch(r.f, &r.derived_counters))
		goto out;

	for (i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		const char *name = phases[i].name;

		r.phase = name;
		r.m.forwarding = phases[i].forwarding;
		if (r.mismatches >= MAX_MISMATCHES) {
			printf("# phase %s not run: stopped after %d mismatches\n", name,
			       MAX_MISMATCHES);
			continue;
		}
		if (i && netns_enter_fresh(why, sizeof(why))) {
			test__fail("%s: network namespace: %s", name, why);
			continue;
		}
		if (r.m.forwarding && !scope_setup(name))
			continue;
		if (test__start_subtest("random ingress/egress, %s: %lu packets match the model "
					"(seed %llu)",
					name, packets, (unsigned long long)r.seed))
			phase_check(&r, packets);
		if (r.m.forwarding)
			netns_teardown_scope();
	}
out:
	if (r.derived_counters.slots >= 0)
		close(r.derived_counters.slots);
	if (r.derived_counters.counters >= 0)
		close(r.derived_counters.counters);
	fixture_close(r.f);
	free(r.m.pending.slots);
	free(r.m.flows.slots);
}
