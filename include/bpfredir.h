/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header shared by the BPF programs and the loader: map layouts, flags and counter
 * indices. Every struct here crosses the user/kernel boundary, so each has explicit padding
 * and a size assertion; user space never re-declares any of them.
 */
#ifndef BPFREDIR_H
#define BPFREDIR_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#define BPFREDIR_MAX_RULES 4096
#define BPFREDIR_MAX_LOCAL_ADDRS 1024
#define BPFREDIR_DEFAULT_FLOWS 65536
/* pending has ways for an eighth of flows' entries, but never fewer than this. */
#define BPFREDIR_MIN_PENDING 1024
/* An LRU hash map hands free entries to each CPU in batches of up to 128. On kernels without
 * d4adf1c9ee77 (before 6.16 and 6.6.99) a table those batches can mostly tie up evicts long
 * before it is full, so flows holds at least this many per possible CPU. */
#define BPFREDIR_LRU_PER_CPU 256

/* IPv4 addresses are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d) so v4, v6 and v4-mapped
 * sockets share one key layout. */
#define BPFREDIR_ADDR_LEN 16

/*
 * policy: an ARRAY_OF_MAPS whose one slot holds the live rule set, a hash map of
 * redir_policy_key -> redir_rule. `apply` builds a whole new set aside and swaps it in with
 * one update, so a packet sees either the old set or the new, never half of each; add and
 * del change the live set one entry at a time.
 *
 * The set also says which attachments act (POLICY_IFACE, POLICY_CGROUP): a program attached
 * to an interface or cgroup the live set does not name does nothing. So `apply` attaches
 * what its file adds (inert), switches the set, then detaches what the file dropped (already
 * inert), and a loader killed at any point leaves the old behaviour or the new, never a mix.
 */
#define BPFREDIR_MAX_CGROUPS 1024
/* How deep below the cgroup2 root the socket hooks look for a nearer attached cgroup (see
 * sock.bpf.c's nearest_attachment): container hierarchies are a handful of levels deep. */
#define BPFREDIR_CGROUP_LEVELS 32
#define BPFREDIR_POLICY_ENTRIES                                                                    \
	(2 * BPFREDIR_MAX_RULES + BPFREDIR_MAX_IFACES + BPFREDIR_MAX_CGROUPS)

enum redir_policy_kind {
	/* A rule: packets to port become packets to rule.target_port. */
	POLICY_PUBLIC = 1,
	/* A hidden target: rule.flags says hidden from outside (HIDE) and maybe from local
	 * clients too (HIDE_LOCAL); target_port and addr are unused. */
	POLICY_HIDDEN = 2,
	/* The interface whose ifindex is id acts; port, proto and the rule are unused. */
	POLICY_IFACE = 3,
	/* The cgroup whose id is id acts; port, proto and the rule are unused. */
	POLICY_CGROUP = 4,
};

struct redir_policy_key {
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 kind;  /* enum redir_policy_kind */
	__u32 pad;
	__u64 id; /* POLICY_IFACE: ifindex; POLICY_CGROUP: cgroup id; else 0 */
};

enum redir_rule_flags {
	/* The target port is unreachable from outside while this rule exists. */
	REDIR_F_HIDE = 1 << 0,
	/* Only packets to addr are translated (like iptables -d); else any local address. */
	REDIR_F_ADDR = 1 << 1,
	/* Local clients connecting straight to the hidden target are refused too. */
	REDIR_F_HIDE_LOCAL = 1 << 2,
	/* External packets to the hidden target are answered as by a closed port (TCP RST,
	 * ICMP port unreachable) instead of dropped. */
	REDIR_F_REJECT = 1 << 3,
	/* Set by the loader, not asked for: the instance steers TCP at socket lookup (load
	 * --steering socket), so this TCP rule is the sk_lookup program's, never rewritten by
	 * TC or XDP. */
	REDIR_F_SOCKET = 1 << 4,
};

struct redir_rule {
	__be16 target_port;
	__u16 flags; /* enum redir_rule_flags */
	__u8 addr[BPFREDIR_ADDR_LEN];
};

/*
 * port_interest: an array indexed by port (host order) of PORT_INTEREST_* bits, one per
 * protocol that has had a rule naming the port (public or target) since load. Only such a
 * port can match a rule or a connection entry, so a packet on any other port is passed after
 * one array lookup instead of the flow-table and rule-set lookups. The loader marks a rule's
 * ports before the rule can act and never clears a mark (a stale one only costs the shortcut).
 * The PUBLIC bits say the same of public ports alone: a packet to a port that has never been
 * public skips the rule set's lookup of a public rule (a SYN to the hidden port, say).
 */
#define BPFREDIR_PORTS 65536

enum redir_port_interest {
	PORT_INTEREST_TCP = 1 << 0,
	PORT_INTEREST_UDP = 1 << 1,
	PORT_INTEREST_PUBLIC_TCP = 1 << 2,
	PORT_INTEREST_PUBLIC_UDP = 1 << 3,
	/* The target of a rule steered at socket lookup: its listeners are registered in
	 * steer_listeners as they start listening. */
	PORT_INTEREST_LISTENER_TCP = 1 << 4,
};

/*
 * iface_slots: the interfaces the live set enables (POLICY_IFACE), direct-mapped by ifindex:
 * an ARRAY of BPFREDIR_IFACE_SLOTS ifindexes, 0 for an empty slot. An interface found in its
 * slot acts without the set's lookup (a hashed one, about 30 ns); one that shares its slot
 * with another, or that no derive has noted yet (an attachment load or reload just made),
 * is looked up in the set. The loader writes it from a set in ruleset_derive, before the set
 * goes live, and derives the live set again if the new one does not go live.
 */
#define BPFREDIR_IFACE_SLOTS 256

/*
 * port_hidden: an ARRAY by port (host order) of PORT_HIDDEN_* bits, the set's hidden entries
 * (POLICY_HIDDEN) as TC, XDP and the guard read them: one array lookup where the set's is a
 * hashed one. The loader writes it from a set in ruleset_derive: a set about to go live (apply)
 * only adds bits, so a port the live set still hides stays hidden until the switch, and the
 * live set's derive, right after, makes them exact. A bit left over from a crash only keeps a
 * port hidden until the next command.
 */
enum redir_port_hidden {
	PORT_HIDDEN_TCP = 1 << 0,
	PORT_HIDDEN_UDP = 1 << 1,
	/* with --reject: answered as a closed port rather than dropped */
	PORT_REJECT_TCP = 1 << 2,
	PORT_REJECT_UDP = 1 << 3,
};

/* A port of one protocol: the loader's name for a counted port, and the key of the
 * port_stats hash that builds before port_slots kept the counters (read once, on upgrade). */
struct redir_port_key {
	__be16 port;
	__u8 proto;
	__u8 pad;
};

enum redir_flow_dir {
	/* Keyed by the client's packet as it arrives (local port = public port). */
	FLOW_DIR_IN = 1,
	/* Keyed by the service's reply as it leaves (local port = target port). */
	FLOW_DIR_OUT = 2,
};

/*
 * flows and pending: connections outlive the rule that created them, and replies are rewritten
 * exactly. A new connection starts in `pending` and moves to `flows` once the local service
 * sends it something other than a SYN-ACK or RST, which it only does for a real peer: a flood
 * of spoofed SYNs churns `pending` but cannot evict established connections from `flows`. When
 * the service closes (FIN) the connection goes back to `pending` for the rest of its close; its
 * RST ends it.
 *
 * A connection has one entry, its OUT entry (its value: the public port): the reply finds it by
 * its key, the client's packets under the targets their public port has had (public_targets),
 * the entry's public port checked against theirs. An IN entry (its value: the target) is kept
 * where that cannot find it: a closing connection's in pending, and in flows a connection whose
 * target its port no longer remembers (the loader writes it before the port forgets).
 */
struct redir_flow_key {
	__u8 remote_addr[BPFREDIR_ADDR_LEN];
	__u8 local_addr[BPFREDIR_ADDR_LEN];
	__be16 remote_port;
	__be16 local_port;
	__u8 proto;
	__u8 dir; /* enum redir_flow_dir */
	__u8 pad[2];
} __attribute__((aligned(8))); /* flow_cache compares keys a word at a time */

enum redir_flow_flags {
	/* In pending: the service has sent its FIN. The rest of the close is translated, and the
	 * connection is never promoted again (bpf/lib/policy.h). */
	FLOW_F_CLOSING = 1 << 0,
};

struct redir_flow {
	__be16 port; /* IN: the target port; OUT: the public port */
	__u16 flags; /* enum redir_flow_flags */
};

/*
 * pending: the new and closing connections, in an ARRAY of buckets the datapath manages
 * itself (bpf/lib/pending.h). A kernel LRU hash costs a new connection about 140 ns to write
 * (its locks); a bucket costs a few. A key's bucket and check come from pending_hash, keyed
 * by pending_seed (random per instance: nobody outside can aim keys at one bucket). An
 * insert into a full bucket takes its ways in turn, the oldest first, as the LRU evicts.
 *
 * A way's word holds its value and its key's check, written with one 8-byte store, and a
 * way's key is written only while its word is 0 (empty). Another CPU may still be reading
 * the way: what it reads then is a key and a word that need not belong together, and the
 * word's check, which is its own key's, does not match the key it looks for (one chance in
 * 2^31), so it finds nothing, as if the entry had been evicted. No lock is taken anywhere.
 * The words come first, together: a key that is not there (most lookups) is told by them
 * alone, one or two cache lines of a bucket's four.
 */
#define BPFREDIR_PENDING_WAYS 4
#define BPFREDIR_PENDING_SEED_WORDS 10

struct redir_pending_bucket {
	/* 0: empty; else check << 32 | flags << 16 | port (as stored: network order) */
	__u64 word[BPFREDIR_PENDING_WAYS];
	__u32 next; /* the way the next insert into the bucket, full, takes */
	__u32 pad;
	struct redir_flow_key key[BPFREDIR_PENDING_WAYS];
};

struct redir_pending_seed {
	__u32 word[BPFREDIR_PENDING_SEED_WORDS];
};

/* NH (the UMAC hash): pairs of the key's 32-bit words, each plus its seed word, multiplied
 * and summed; for two different keys it collides with odds of about 2^-32 over the seed. Its
 * high bits move little for keys a few apart in one word (two client ports), and the bucket
 * is taken from them, so the sum is mixed (splitmix64's finalizer) before it is used. */
static inline __attribute__((always_inline)) __u64
pending_hash(const struct redir_flow_key *k, const struct redir_pending_seed *seed)
{
	const __u32 *w = (const __u32 *)k, *s = seed->word;
	__u64 h = (__u64)(w[0] + s[0]) * (w[1] + s[1]) + (__u64)(w[2] + s[2]) * (w[3] + s[3]) +
		  (__u64)(w[4] + s[4]) * (w[5] + s[5]) + (__u64)(w[6] + s[6]) * (w[7] + s[7]) +
		  (__u64)(w[8] + s[8]) * (w[9] + s[9]);

	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

/* The bucket among n_buckets: the hash's high half scaled to the range (any n, no division). */
static inline __attribute__((always_inline)) __u32 pending_bucket_of(__u64 hash, __u32 n_buckets)
{
	return ((hash >> 32) * n_buckets) >> 32;
}

/* The value a way's word holds. */
static inline __attribute__((always_inline)) struct redir_flow pending_flow(__u64 word)
{
	struct redir_flow v = { .port = word & 0xffff, .flags = word >> 16 & 0xffff };

	return v;
}

/* Never 0, which is an empty way's word. */
static inline __attribute__((always_inline)) __u64 pending_word(__u64 hash, __u16 port, __u16 flags)
{
	return (__u64)((__u32)hash | 1) << 32 | (__u32)flags << 16 | port;
}

/* Does word carry the check of the key whose hash this is? */
static inline __attribute__((always_inline)) int pending_word_matches(__u64 word, __u64 hash)
{
	return (word >> 32) == ((__u32)hash | 1);
}

/*
 * flow_cache: per CPU, direct-mapped, the answers flows gave for established connections, so
 * their packets cost an array lookup where a hash lookup costs a helper call (about 30 ns
 * here, the most of an established packet's cost). A client's packet is keyed as an IN key
 * (local port: the public port; the answer: the target), a reply as its OUT key (the answer:
 * the public port). An entry answers only while flows_gen (an ARRAY of one __u64) still holds
 * the generation it was written in. Every change to flows or public_targets moves the
 * generation on, the datapath's by one, the loader's by BPFREDIR_GEN_LOADER_STEP: that keeps it
 * rising even when the loader's read-modify-write races the datapath's increments, so a
 * generation never comes back and a cached answer is one flows gives now. The LRU evicts
 * from flows only to make room for an insert, which moves the generation on as any change does.
 */
#define BPFREDIR_FLOW_CACHE_BITS 12
#define BPFREDIR_FLOW_CACHE_SLOTS (1U << BPFREDIR_FLOW_CACHE_BITS)
#define BPFREDIR_GEN_LOADER_STEP (1ULL << 32)

struct redir_flow_cached {
	struct redir_flow_key key;
	__u64 gen;
	__be16 port;
	__u8 pad[6];
};

/* sock_peers: socket-local storage, freed with the socket. For a socket whose connect() or
 * sendmsg() was redirected, the public port to show in place of the target port
 * (getpeername, recvfrom). An unconnected UDP socket may talk to several: it keeps its last
 * BPFREDIR_SOCK_PEERS, a new one taking the place of its own oldest, so no socket can push
 * out another's. */
#define BPFREDIR_SOCK_PEERS 4

struct redir_sock_peer {
	__u8 addr[BPFREDIR_ADDR_LEN]; /* the peer, v4 as ::ffff:a.b.c.d */
	__be16 target_port;	      /* the port the socket really talks to; 0: unused */
	__be16 public_port;	      /* the port it asked for */
};

struct redir_sock_peers {
	struct redir_sock_peer peer[BPFREDIR_SOCK_PEERS];
	__u32 next; /* the slot the next new peer takes */
};

/* local_addrs: this host's own addresses, for the socket hooks, which cannot ask the FIB
 * whether a destination is local, for TC egress, and for the datapath on a host that does not
 * forward, where the FIB tells nothing. The value (__u32) counts the addr_holders entries of
 * an own address: it goes when the last one does. LOCAL_ADDR_BROADCAST marks an IPv4 subnet's
 * broadcast address (the kernel's broadcast routes: each address's brd, and its prefix's
 * all-ones address below /31), which the kernel delivers to a socket on 0.0.0.0; only the
 * datapath counts those as this host's, and only the loader's syncs keep them. */
#define LOCAL_ADDR_BROADCAST (1U << 31)
#define LOCAL_ADDR_HOLDERS (LOCAL_ADDR_BROADCAST - 1)

struct redir_local_addr {
	__u8 addr[BPFREDIR_ADDR_LEN];
} __attribute__((aligned(8))); /* addr_cache compares addresses a word at a time */

/* addr_cache: per CPU, direct-mapped, whether local_addrs has an address, so "is this one of
 * ours?" costs a packet an array lookup where a hash lookup costs a helper call. Kept as
 * flow_cache is (redir_flow_cached): an entry answers only while addrs_gen (an ARRAY of one
 * __u64) holds the generation it was written in, and every change to local_addrs moves it on
 * (addrwatch's by one, the loader's by BPFREDIR_GEN_LOADER_STEP). */
#define BPFREDIR_ADDR_CACHE_BITS 8
#define BPFREDIR_ADDR_CACHE_SLOTS (1U << BPFREDIR_ADDR_CACHE_BITS)

enum redir_addr_cached_state {
	ADDR_CACHED_NONE,   /* an empty slot */
	ADDR_CACHED_ABSENT, /* local_addrs has no entry for addr */
	ADDR_CACHED_FOUND,  /* it has one */
};

struct redir_addr_cached {
	__u8 addr[BPFREDIR_ADDR_LEN];
	__u64 gen;
	__u8 state; /* enum redir_addr_cached_state */
	__u8 pad[7];
};

/* addr_holders: every address the kernel holds, one entry each, named as its address
 * notifications name it (bpf/addrwatch.bpf.c): an IPv4 address by interface, local address,
 * prefix length and ifa_address (the peer of a point-to-point address, else the address
 * again), which __inet_insert_ifa keeps unique; an IPv6 address by interface and address,
 * which ipv6_add_addr keeps unique. The value (__u8) is unused. */
#define BPFREDIR_MAX_ADDR_HOLDERS (2 * BPFREDIR_MAX_LOCAL_ADDRS)

struct redir_addr_holder {
	__u8 addr[BPFREDIR_ADDR_LEN]; /* as in local_addrs */
	__u32 ifindex;
	__be32 peer4;	/* IPv4: ifa_address; IPv6: 0 */
	__u8 prefixlen; /* IPv4; IPv6: 0 */
	__u8 pad[7];
};

/* frag_fix: the IPv4 TCP datagrams whose port ingress translated in a first fragment too short
 * to hold the checksum (the TCP header split over fragments, as `nmap -f` sends it). The
 * checksum covers the whole datagram, so its fix goes to the later fragment that holds it,
 * found by the datagram's addresses and IP ID (bpf/lib/frag.h). IPv6 needs none: the kernel
 * drops a first fragment without its whole TCP header (RFC 7112). */
#define BPFREDIR_FRAG_FIX_ENTRIES 4096

struct redir_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 pad[2];
};

struct redir_frag_fix {
	__u32 csum_diff; /* the port change's one's-complement sum, to add to the checksum */
};

/* tc_legacy (ifindex -> redir_tc_attach): interfaces attached through a clsact qdisc and
 * cls_bpf filters, where tcx is missing or --attach tc asked for it. Filters are no pinned
 * objects, so this is how unload (or the cleanup after a killed load) finds them. Written by
 * the loader before it attaches, never by BPF. */
#define BPFREDIR_MAX_IFACES 256

struct redir_tc_attach {
	__u32 priority[2]; /* ingress, egress; our filters use handle BPFREDIR_TC_HANDLE */
	__u8 made_qdisc;   /* the clsact qdisc is ours to delete; one we found never is */
	__u8 pad[3];
};

#define BPFREDIR_TC_HANDLE 0xb9f

/*
 * Per-port counters: port_counters, a per-CPU array of redir_port_stats, has one slot for
 * every public port (the translations it saw) and every hidden port (the drops aimed at it);
 * port_slots, an array indexed by port (host order), names each port's slot per protocol
 * (0: not counted). Two array lookups, which the verifier inlines, where a hash keyed by port
 * cost a hashed lookup on every translated packet. Only the loader assigns slots: it zeroes a
 * slot before it names it and after it takes it back, and keeps a port's slot while the port
 * stays in a rule, so its counters do too.
 */
#define BPFREDIR_PORT_COUNTERS (2 * BPFREDIR_MAX_RULES + 1) /* slot 0 is never used */

enum redir_port_slot_proto {
	PORT_SLOT_TCP,
	PORT_SLOT_UDP,
	PORT_SLOT__MAX,
};

/* A protocol's slot, for the datapath and the loader alike: TCP's, else UDP's (the only two a
 * rule names). 6 is IPPROTO_TCP, which the BPF and user space headers each define. */
static inline __u32 port_slot_of(__u8 proto)
{
	return proto == 6 ? PORT_SLOT_TCP : PORT_SLOT_UDP;
}

/* 8 bytes: an array's elements are 8-byte aligned, and the loader's mapping of port_slots
 * sees them so. */
struct redir_port_slots {
	__u16 slot[PORT_SLOT__MAX]; /* enum redir_port_slot_proto */
	__u8 pad[4];
};

/* Each port counter's slot and name, in ABI order: append only. */
#define BPFREDIR_PORT_STATS(X)                                                                     \
	/* on a public port: connections' packets translated */                                    \
	X(REWRITTEN, "rewritten")                                                                  \
	/* on a public port: replies given it back */                                              \
	X(REVERSE_REWRITTEN, "reverse_rewritten")                                                  \
	/* on a hidden port: external packets dropped or rejected */                               \
	X(HIDDEN_DROPPED, "hidden_dropped")                                                        \
	/* on a public port steered at socket lookup: connections no listener took (refused) */   \
	X(STEER_REFUSED, "steer_refused")

enum redir_port_stat {
#define BPFREDIR_PORT_STAT_ID(id, name) PORT_STAT_##id,
	BPFREDIR_PORT_STATS(BPFREDIR_PORT_STAT_ID)
#undef BPFREDIR_PORT_STAT_ID
	PORT_STAT__MAX,
};

/* Room for counters a later build adds, so it can still reuse a loaded instance's maps. */
#define BPFREDIR_PORT_STAT_SLOTS 8

struct redir_port_stats {
	__u64 count[BPFREDIR_PORT_STAT_SLOTS];
};

/* public_targets: an array indexed by port (host order), per protocol (enum
 * redir_port_slot_proto): the target the port's rule names, and the one its rule named before
 * (0: none), under which the client's packets find their connection (its OUT entry) after the
 * rule changed or went. Advisory: a wrong or missing target only misses, as the entry's public
 * port must match. The loader writes a rule's target there before the rule can act and never
 * clears one; before a target drops out, it gives every connection through the port to that
 * target an IN entry in flows, and marks the port (in_entries): only then do its packets look
 * for one. */
#define BPFREDIR_PUBLIC_TARGETS 2

struct redir_public_port {
	__be16 target[BPFREDIR_PUBLIC_TARGETS]; /* [0]: now or last; [1]: the one before */
	__u8 in_entries; /* flows may hold IN entries for connections through the port */
	__u8 pad;
};

struct redir_public_targets {
	struct redir_public_port proto[PORT_SLOT__MAX]; /* enum redir_port_slot_proto */
};

/* attach_point: cgroup storage of the socket programs, one per cgroup they are attached to
 * (keyed by cgroup id alone, so all hooks share it). A program cannot otherwise tell which
 * attachment it runs from: the task's and the socket's cgroup may be a descendant. The loader
 * writes the id after attaching; zero means not yet, and the programs there do nothing. */
struct redir_attach_point {
	__u64 cgroup_id;
};

/*
 * Socket steering's maps (load --steering socket), so a connection is handed only to a
 * listener the kernel itself would give it: one bound to the address it asks for, or to any.
 * The kernel drops a socket from them when it closes.
 * - steer_wildcard: a SOCKMAP of the targets' listeners bound to any address, at
 *   steer_wildcard_slot(port, v6): for IPv4 lookups a 0.0.0.0 listener, else a dual-stack ::
 *   one; for IPv6 lookups a :: one. An array: a lookup is an index, where a hash costs ~35 ns.
 * - steer_listeners: a SOCKHASH of every listener, keyed by the address it is bound to (v4
 *   as ::ffff:a.b.c.d, any as ::ffff:0.0.0.0 or ::), its port and its member number (its
 *   cookie modulo BPFREDIR_LISTENER_MEMBERS): up to that many members of an SO_REUSEPORT
 *   group each, so when the one in a wildcard slot closes, the lookup finds another and puts
 *   it there. steer_bound marks the ports that have listeners bound to one address (an
 *   ARRAY of __u8 by port, never cleared); the others skip their lookup.
 * - steer_fast: by public port (an ARRAY of __be16), the target of the live set's TCP rule
 *   there when no address limits it, else 0: a connection to such a port skips the set's
 *   lookup. The loader writes it from the set before the set goes live, and zeroes a port
 *   before its rule goes; 0 only sends a lookup the slow way, through the set.
 */
#define BPFREDIR_MAX_LISTENERS 1024
#define BPFREDIR_LISTENER_MEMBERS 4

struct redir_listener_key {
	__u8 addr[BPFREDIR_ADDR_LEN];
	__be16 port;
	__u8 member;
	__u8 pad;
};

static inline __u32 steer_wildcard_slot(__u16 port, int v6)
{
	return port + (v6 ? BPFREDIR_PORTS : 0);
}

/* stats: per-CPU array, one slot per verdict, with room for a later build's counters. */
#define BPFREDIR_STAT_SLOTS 32

/* Each counter's slot and the name `list`, `stats` and the tests give it, in ABI order:
 * append only. */
#define BPFREDIR_STATS(X)                                                                          \
	/* ingress: public port rewritten to the target */                                         \
	X(REWRITTEN, "rewritten")                                                                  \
	/* egress: reply's source port rewritten back */                                           \
	X(REVERSE_REWRITTEN, "reverse_rewritten")                                                  \
	/* ingress: dropped, aimed at a hidden port */                                             \
	X(HIDDEN_DROPPED, "hidden_dropped")                                                        \
	/* ingress: dropped, headers could not be trusted */                                       \
	X(MALFORMED_DROPPED, "malformed_dropped")                                                  \
	/* ingress: not ours, passed untouched */                                                  \
	X(PASSED, "passed")                                                                        \
	/* local connect()/sendmsg() redirected */                                                 \
	X(SOCK_REDIRECTED, "sock_redirected")                                                      \
	/* local connect()/sendmsg() to a hidden port refused */                                   \
	X(SOCK_REFUSED, "sock_refused")                                                            \
	/* ingress: aimed at a hidden port, answered as a closed port */                           \
	X(REJECTED, "rejected")                                                                    \
	/* ICMP error quoting a translated connection: port put right */                           \
	X(ICMP_TRANSLATED, "icmp_translated")                                                      \
	/* egress: from a hidden port, no connection: dropped */                                   \
	X(HIDDEN_UNTRACKED_DROPPED, "hidden_untracked_dropped")                                    \
	/* netns guard: a direct hit on a hidden port, on any interface */                         \
	X(GUARD_DROPPED, "guard_dropped")                                                          \
	/* socket steering: a new connection handed to its target's listener */                    \
	X(STEERED, "steered")                                                                      \
	/* socket steering: no listener registered for the target; the kernel refuses it */        \
	X(STEER_NO_LISTENER, "steer_no_listener")

enum redir_stat {
#define BPFREDIR_STAT_ID(id, name) STAT_##id,
	BPFREDIR_STATS(BPFREDIR_STAT_ID)
#undef BPFREDIR_STAT_ID
	STAT__MAX,
};

#ifndef __BPF__
/* User space (report.c, the tests): the names, indexed by the enums above. */
#define BPFREDIR_STAT_NAME(id, name) [STAT_##id] = name,
static const char *const redir_stat_names[STAT__MAX] = { BPFREDIR_STATS(BPFREDIR_STAT_NAME) };
#undef BPFREDIR_STAT_NAME
#define BPFREDIR_PORT_STAT_NAME(id, name) [PORT_STAT_##id] = name,
static const char *const redir_port_stat_names[PORT_STAT__MAX] = {
	BPFREDIR_PORT_STATS(BPFREDIR_PORT_STAT_NAME)
};
#undef BPFREDIR_PORT_STAT_NAME
#endif

_Static_assert(sizeof(struct redir_policy_key) == 16, "redir_policy_key layout");
_Static_assert(sizeof(struct redir_rule) == 20, "redir_rule layout");
_Static_assert(sizeof(struct redir_port_key) == 4, "redir_port_key layout");
_Static_assert(sizeof(struct redir_port_stats) == 64, "redir_port_stats layout");
_Static_assert(sizeof(struct redir_port_slots) == 8, "redir_port_slots layout");
_Static_assert(BPFREDIR_PORT_COUNTERS - 1 <= 0xffff, "a slot fits redir_port_slots");
_Static_assert(PORT_STAT__MAX <= BPFREDIR_PORT_STAT_SLOTS, "port counters fit their slots");
_Static_assert(STAT__MAX <= BPFREDIR_STAT_SLOTS, "counters fit their slots");
_Static_assert(sizeof(struct redir_flow_key) == 40, "redir_flow_key layout");
_Static_assert(sizeof(struct redir_flow) == 4, "redir_flow layout");
_Static_assert(sizeof(struct redir_flow_cached) == 56, "redir_flow_cached layout");
_Static_assert(sizeof(struct redir_pending_bucket) == 48 * BPFREDIR_PENDING_WAYS + 8,
	       "redir_pending_bucket layout");
_Static_assert(sizeof(struct redir_pending_seed) == 4 * BPFREDIR_PENDING_SEED_WORDS,
	       "redir_pending_seed layout");
_Static_assert(sizeof(struct redir_flow_key) == 4 * BPFREDIR_PENDING_SEED_WORDS,
	       "pending_hash takes the key's every word");
_Static_assert(sizeof(struct redir_public_port) == 6, "redir_public_port layout");
_Static_assert(sizeof(struct redir_public_targets) == 12, "redir_public_targets layout");
_Static_assert(sizeof(struct redir_local_addr) == 16, "redir_local_addr layout");
_Static_assert(sizeof(struct redir_addr_cached) == 32, "redir_addr_cached layout");
_Static_assert(sizeof(struct redir_addr_holder) == 32, "redir_addr_holder layout");
_Static_assert(sizeof(struct redir_sock_peer) == 20, "redir_sock_peer layout");
_Static_assert(sizeof(struct redir_sock_peers) == 4 + 20 * BPFREDIR_SOCK_PEERS,
	       "redir_sock_peers layout");
_Static_assert(sizeof(struct redir_frag_key) == 12, "redir_frag_key layout");
_Static_assert(sizeof(struct redir_frag_fix) == 4, "redir_frag_fix layout");
_Static_assert(sizeof(struct redir_tc_attach) == 12, "redir_tc_attach layout");
_Static_assert(sizeof(struct redir_attach_point) == 8, "redir_attach_point layout");
_Static_assert(sizeof(struct redir_listener_key) == 20, "redir_listener_key layout");

#endif /* BPFREDIR_H */
