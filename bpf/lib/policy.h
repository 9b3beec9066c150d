/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one redirect policy, shared by every packet hook: given a parsed packet, decide
 * whether to rewrite a port, drop, or pass. Hooks only apply the decision.
 */
#ifndef BPFREDIR_POLICY_H
#define BPFREDIR_POLICY_H

#include "maps.h"
#include "proto.h"
#include "parse.h"
#include "flow_cache.h"

enum redir_verdict {
	VERDICT_PASS,
	VERDICT_REWRITE, /* ingress: dport := port; egress: sport := port */
	VERDICT_DROP_HIDDEN,
	VERDICT_DROP_MALFORMED,
	VERDICT_REJECT,		/* aimed at a hidden port with --reject: answer as a closed port */
	VERDICT_REJECT_LATER,	/* the same, a fragment: ingress: dport := 0, the kernel answers */
	VERDICT_DROP_UNTRACKED, /* egress: would show a hidden port (egress_shows_hidden) */
};

static __always_inline void flow_key_fill(struct redir_flow_key *k, const __u8 *remote_addr,
					  const __u8 *local_addr, __be16 remote_port,
					  __be16 local_port, __u8 proto, __u8 dir)
{
	__builtin_memcpy(k->remote_addr, remote_addr, BPFREDIR_ADDR_LEN);
	__builtin_memcpy(k->local_addr, local_addr, BPFREDIR_ADDR_LEN);
	k->remote_port = remote_port;
	k->local_port = local_port;
	k->proto = proto;
	k->dir = dir;
	k->pad[0] = 0;
	k->pad[1] = 0;
}

/*
 * The connection tables. Packets from outside may be spoofed; the service's own packets,
 * sent by this host's kernel, cannot be, and its kernel answers on a tuple only as its
 * socket there allows. So:
 *
 * - A SYN through a rule writes its connection into `pending` only, one OUT entry (the
 *   client's packets find it through public_targets). It never changes `flows`: a spoofed SYN
 *   with a live connection's client address and port (to any public port sharing the target)
 *   must not repoint or cut that connection.
 * - The service's SYN-ACK takes the `pending` entry: the kernel sends one only when it has no
 *   established socket on the tuple (on one, it answers a SYN with a challenge ACK), so
 *   whatever `flows` still holds for the tuple is over and goes (a client that reuses its
 *   port after a close, maybe through another public port).
 * - Its first packet that is neither a SYN nor a RST, which only a real peer gets, moves the
 *   connection to `flows` (promotion); other packets use `flows` first, then `pending`.
 * - Its FIN (the service closing) moves the connection back to `pending`, both directions,
 *   marked closing: the rest of the close (ACKs, the client's FIN, TIME_WAIT's retransmits) is
 *   still translated whatever became of its rule since, it is never promoted again, and churn
 *   evicts it before established connections.
 * - Its RST (the socket is gone, or never was) forgets the connection.
 *
 * The client's FIN and RST change nothing. Without the sequence numbers (no window is
 * tracked here) a spoofed one cannot be told from a real one, and acting on it would let an
 * off-path attacker who knows or guesses a connection's addresses and ports cut it with one
 * packet, where the kernel wants the exact sequence number. What such an attacker can do:
 * fill `pending` with spoofed SYNs (a pending handshake may be pushed out; its SYN-ACK is
 * then dropped and the client retries), and make the service answer a spoofed SYN, RST or
 * ACK as its kernel would (a RST of the service to a handshake forgets its pending entries,
 * which the client's next packet through a live rule writes again). What it cannot: move or
 * end a connection in `flows`. The cost: a connection the client resets stays in `flows`
 * until the LRU evicts it, as it is never used again.
 */

/* Remember both directions of a closing connection in pending: its IN entry keeps the rest of
 * its close on its target whatever its port's targets are by then (see redir_flow_key).
 * remote/local are as seen from this host. */
static __always_inline void pending_record_closing(const __u8 *remote_addr, const __u8 *local_addr,
						   __be16 remote_port, __be16 public_port,
						   __be16 target_port, __u8 proto)
{
	struct redir_flow_key k;

	flow_key_fill(&k, remote_addr, local_addr, remote_port, public_port, proto, FLOW_DIR_IN);
	pending_put(&k, target_port, FLOW_F_CLOSING);
	flow_key_fill(&k, remote_addr, local_addr, remote_port, target_port, proto, FLOW_DIR_OUT);
	pending_put(&k, public_port, FLOW_F_CLOSING);
}

/* The IN key of the connection whose OUT key is out, through public_port. */
static __always_inline void flow_key_in_of(struct redir_flow_key *in,
					   const struct redir_flow_key *out, __be16 public_port)
{
	*in = *out;
	in->dir = FLOW_DIR_IN;
	in->local_port = public_port;
}

/* A lookup first: most keys are not there, and a miss costs less than a delete. Whether
 * there was one. */
static __always_inline bool flows_delete(const struct redir_flow_key *k)
{
	return bpf_map_lookup_elem(&flows, k) && !bpf_map_delete_elem(&flows, k);
}

/* Both entries of the connection whose OUT key is `out` (public_port: its value), from
 * flows, whose every change outdates flow_cache. */
static __always_inline void flows_delete_pair(const struct redir_flow_key *out, __be16 public_port)
{
	bool deleted = flows_delete(out);
	struct redir_flow_key in;

	flow_key_in_of(&in, out, public_port);
	if (flows_delete(&in) || deleted)
		gen_move_on(&flows_gen);
}

/* The same from pending. */
static __always_inline void pending_delete_pair(const struct redir_flow_key *out,
						__be16 public_port)
{
	struct redir_flow_key in;

	pending_delete(out);
	flow_key_in_of(&in, out, public_port);
	pending_delete(&in);
}

/* The service sends a SYN(-ACK) on `out`'s tuple: what flows holds there is over (see
 * above). An IN entry (public_targets_note, or an earlier build's) goes only if it points at
 * this target: one pointing elsewhere belongs to another connection through the same public
 * port. */
static __always_inline void flows_drop_stale(const struct redir_flow_key *out)
{
	struct redir_flow *old = bpf_map_lookup_elem(&flows, out);
	struct redir_flow_key k;
	struct redir_flow *in;

	if (!old)
		return;
	flow_key_in_of(&k, out, old->port);
	bpf_map_delete_elem(&flows, out);
	in = bpf_map_lookup_elem(&flows, &k);
	if (in && in->port == out->local_port)
		bpf_map_delete_elem(&flows, &k);
	gen_move_on(&flows_gen);
}

/* A new connection's OUT entry in pending: the client's packets find it through
 * public_targets (conn_through), the reply by its key. A UDP flow's is written for each of
 * its datagrams until the service answers (pending_put leaves an unchanged entry unwritten),
 * and until then they go by the rule, not by this entry: looking here would only keep a flow
 * the service never answered on its target after `del`. The answer promotes the flow to
 * `flows`, as a TCP connection's first packet does. */
static __always_inline void pending_record(const struct pkt *p, __be16 target_port)
{
	struct redir_flow_key k;

	flow_key_fill(&k, p->saddr, p->daddr, p->sport, target_port, p->proto, FLOW_DIR_OUT);
	pending_put(&k, p->dport, 0);
}

/* public_port's entry in public_targets for proto. */
static __always_inline struct redir_public_port *public_port_targets(__be16 public_port, __u8 proto)
{
	__u32 idx = bpf_ntohs(public_port);
	struct redir_public_targets *targets = bpf_map_lookup_elem(&public_targets, &idx);

	return targets ? &targets->proto[port_slot_of(proto)] : NULL;
}

/* The connection in flows (else pending) from remote to local through public_port: its OUT
 * entry, found under each target the port has had, is the one whose public port it is. *k is
 * left its key (local_port: the target). */
static __always_inline bool conn_through(bool in_pending, const struct redir_public_port *port,
					 const __u8 *remote_addr, const __u8 *local_addr,
					 __be16 remote_port, __be16 public_port, __u8 proto,
					 struct redir_flow_key *k)
{
	struct redir_flow *flow, v;
	int i;

	for (i = 0; i < BPFREDIR_PUBLIC_TARGETS; i++) {
		if (!port->target[i])
			break;
		flow_key_fill(k, remote_addr, local_addr, remote_port, port->target[i], proto,
			      FLOW_DIR_OUT);
		flow = in_pending ? (pending_get(k, &v) ? &v : NULL)
				  : bpf_map_lookup_elem(&flows, k);
		if (flow && flow->port == public_port)
			return true;
	}
	return false;
}

/* A SYN that reaches the service untranslated (no rule applies, the target is not hidden)
 * starts a direct connection: the new connections its tuple left in pending no longer
 * apply: one through the port it asks for, one whose replies leave from that port (and a
 * closing one's IN entry). flows is left alone. */
static __always_inline void pending_forget(const struct pkt *p)
{
	struct redir_public_port *port = public_port_targets(p->dport, p->proto);
	struct redir_flow_key k;

	flow_key_fill(&k, p->saddr, p->daddr, p->sport, p->dport, p->proto, FLOW_DIR_IN);
	pending_delete(&k);
	k.dir = FLOW_DIR_OUT;
	pending_delete(&k);
	if (port && conn_through(true, port, p->saddr, p->daddr, p->sport, p->dport, p->proto, &k))
		pending_delete(&k);
}

/*
 * --reject for a fragment aimed at a hidden port: the answer (a RST, a port unreachable) is
 * about the whole datagram, which only the kernel reassembles, and checks, first. So the
 * datagram goes on to port 0, where nothing can listen, and the kernel answers as for any
 * closed port; its answer, sent from port 0, gets the hidden port back in TC egress
 * through the OUT entry recorded here. No IN entry: nothing else is sent on to port 0.
 */
static __always_inline void reject_later(const struct pkt *p, __be16 *new_dport)
{
	struct redir_flow_key k;

	flow_key_fill(&k, p->saddr, p->daddr, p->sport, 0, p->proto, FLOW_DIR_OUT);
	pending_put(&k, p->dport, FLOW_F_CLOSING);
	*new_dport = 0;
}

/* A client's own packet to port 0: the kernel's answer to it is its own, whatever a
 * fragment of a rejected datagram from the same client port left for reject_later. */
static __always_inline void port_zero_forget(const struct pkt *p)
{
	struct redir_flow_key k;

	flow_key_fill(&k, p->saddr, p->daddr, p->sport, 0, p->proto, FLOW_DIR_OUT);
	pending_delete(&k);
}

/* Established first, then pending, into *v; *is_pending (when asked) says which. Whether
 * either has k. */
static __always_inline bool flow_lookup(struct redir_flow_key *k, struct redir_flow *v,
					bool *is_pending)
{
	struct redir_flow *flow = bpf_map_lookup_elem(&flows, k);

	if (is_pending)
		*is_pending = !flow;
	if (!flow)
		return pending_get(k, v);
	*v = *flow;
	return true;
}

/* The target of the connection a client's packet belongs to, or 0: from remote to local,
 * to public_port. An established one (as flow_cache has it from flows in this generation):
 * its OUT entry in flows under a target the port has had, else its IN entry where the port
 * has some (redir_public_port). A new or closing TCP one in pending the same way: its OUT
 * entry, else a closing one's IN (its target may be older than the port remembers). The OUT
 * entry first: a client that reuses its port for a new connection leaves the closing IN of
 * its last one there until the new one is promoted. UDP keeps no new flow in pending that its
 * packets could find: they go by the rule until the service answers (pending_record). */
static __always_inline __be16 client_conn_target(const __u8 *remote_addr, const __u8 *local_addr,
						 __be16 remote_port, __be16 public_port, __u8 proto)
{
	struct redir_flow_cached *cached;
	struct redir_public_port *port;
	struct redir_flow_key k, in;
	__u64 gen = gen_now(&flows_gen);
	struct redir_flow *flow, v;
	__be16 target;

	flow_key_fill(&in, remote_addr, local_addr, remote_port, public_port, proto, FLOW_DIR_IN);
	cached = flow_cache_entry(&in);
	if (flow_cache_get(cached, &in, gen, &target))
		return target;
	port = public_port_targets(public_port, proto);
	if (!port)
		return 0;
	if (conn_through(false, port, remote_addr, local_addr, remote_port, public_port, proto,
			 &k)) {
		flow_cache_put(cached, &in, gen, k.local_port);
		return k.local_port;
	}
	if (port->in_entries) {
		flow = bpf_map_lookup_elem(&flows, &in);
		if (flow) {
			flow_cache_put(cached, &in, gen, flow->port);
			return flow->port;
		}
	}
	if (proto == IPPROTO_UDP)
		return 0;
	if (conn_through(true, port, remote_addr, local_addr, remote_port, public_port, proto, &k))
		return k.local_port;
	return pending_get(&in, &v) ? v.port : 0;
}

/* bpf_fib_lookup's flags, set by the loader (probe_fib_skip_neigh). Kernels before 6.3 refuse
 * BPF_FIB_LOOKUP_SKIP_NEIGH; without it the lookup also resolves the next hop's neighbour,
 * which costs a little more and answers the same (NO_NEIGH is forwarded too). */
const volatile __u32 fib_lookup_flags = BPF_FIB_LOOKUP_SKIP_NEIGH;

/* IPv4 destinations the kernel delivers to a socket bound to 0.0.0.0 whatever the FIB says
 * about them: limited broadcast and multicast (224/4: the all-hosts group 224.0.0.1 is
 * joined on every interface), which have no route of their own, so on a host with a
 * default route the lookup answers "forwarded" (ip_route_input takes them before any
 * lookup); and 0.0.0.0/8, which it drops as martian, so counting it ours changes nothing. */
static __always_inline bool v4_dest_is_always_local(const struct pkt *p)
{
	__u8 first = p->daddr[12];

	return (first & 0xf0) == 0xe0 || first == 0 ||
	       *(const __u32 *)(p->daddr + 12) == 0xffffffff;
}

/* addr_cache: for the packet hooks only. They run with bottom halves off (TC egress) or in
 * them (ingress, XDP), so none starts on a CPU while another writes that CPU's entry; a socket
 * hook runs preemptible, and a packet arriving meanwhile could read its entry half written. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFREDIR_ADDR_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct redir_addr_cached);
} addr_cache SEC(".maps");

/*
 * Whether local_addrs has addr (in the maps' form): from addr_cache when it holds the answer
 * of this generation (see redir_addr_cached). The generation is read before local_addrs is: a
 * change after the read outdates the answer.
 */
static __always_inline bool local_addr_cached(const __u8 *addr)
{
	__u64 gen = gen_now(&addrs_gen);
	struct redir_addr_cached *cached;
	struct redir_local_addr key;
	__u32 slot;
	bool found;

	__builtin_memcpy(key.addr, addr, BPFREDIR_ADDR_LEN);
	slot = cache_slot(key.addr, BPFREDIR_ADDR_LEN / sizeof(__u32), BPFREDIR_ADDR_CACHE_BITS);
	cached = bpf_map_lookup_elem(&addr_cache, &slot);
	if (cached && cached->state != ADDR_CACHED_NONE && cached->gen == gen &&
	    cache_key_eq(cached->addr, key.addr, BPFREDIR_ADDR_LEN / sizeof(__u64)))
		return cached->state == ADDR_CACHED_FOUND;
	found = bpf_map_lookup_elem(&local_addrs, &key);
	if (cached) {
		__builtin_memcpy(cached->addr, key.addr, BPFREDIR_ADDR_LEN);
		cached->gen = gen;
		cached->state = found ? ADDR_CACHED_FOUND : ADDR_CACHED_ABSENT;
	}
	return found;
}

/* Is addr one of this host's addresses or one of its subnets' broadcast addresses
 * (local_addrs, which the loader and the address watch keep)? */
static __always_inline bool addr_is_own_or_brd(const __u8 *addr)
{
	return local_addr_cached(addr);
}

/*
 * Is the packet for this host (rather than forwarded through it)? One of this host's own
 * addresses is, which local_addrs answers for a lookup in a small table (dest_is_local): the
 * address's local route is what the FIB would find. Anything else, ask the FIB as the stack
 * will (dest_is_local_fib): a local route (AnyIP, say) is not forwarded. UNSUPP_LWT is a
 * unicast route that encapsulates (IP tunnel, SRv6, MPLS, ...), which the helper does not
 * resolve but the stack forwards. ctx is an skb or an xdp_md.
 *
 * Whose MAC address a frame is for does not decide: a macvlan in this namespace takes the
 * frames for its own address from the attached device, and they are this host's; a bridged
 * VM's or a container's address is another host's, and the FIB says so. The helper answers
 * FWD_DISABLED before it looks anything up when the input device does not forward (most
 * servers), and errors where it cannot look up at all: then only a frame sent to an L2 group
 * (a broadcast or multicast frame, which ip_rcv takes) is this host's besides its own
 * addresses, so a frame this host merely sees (a macvlan or ipvlan container's address,
 * say) keeps what the stack does with it.
 *
 * The FIB's part is a subprogram, not inlined: at its two call sites clang would copy the
 * rest of the policy once per way it returns, some 2000 instructions more in TC ingress. The
 * common answers come before the call, which costs about 8 ns of a SYN to the hidden port.
 */
static __noinline bool dest_is_local_fib(void *ctx, __u32 ifindex, const struct pkt *p)
{
	struct bpf_fib_lookup fib = {};
	long ret;

	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	fib.ifindex = ifindex;
	if (p->is_ipv6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, p->saddr, BPFREDIR_ADDR_LEN);
		__builtin_memcpy(fib.ipv6_dst, p->daddr, BPFREDIR_ADDR_LEN);
	} else {
		fib.family = AF_INET;
		__builtin_memcpy(&fib.ipv4_src, p->saddr + 12, 4);
		__builtin_memcpy(&fib.ipv4_dst, p->daddr + 12, 4);
	}
	ret = bpf_fib_lookup(ctx, &fib, sizeof(fib), fib_lookup_flags);
	if (ret < 0 || ret == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return p->l2_dest == L2_GROUP;
	return ret != BPF_FIB_LKUP_RET_SUCCESS && ret != BPF_FIB_LKUP_RET_NO_NEIGH &&
	       ret != BPF_FIB_LKUP_RET_FRAG_NEEDED && ret != BPF_FIB_LKUP_RET_UNSUPP_LWT;
}

static __always_inline bool dest_is_local(void *ctx, __u32 ifindex, const struct pkt *p)
{
	if (!p->is_ipv6 && v4_dest_is_always_local(p))
		return true;
	if (addr_is_own_or_brd(p->daddr))
		return true;
	return dest_is_local_fib(ctx, ifindex, p);
}

static __always_inline bool rule_applies(void *ctx, __u32 ifindex, const struct pkt *p,
					 const struct redir_rule *rule)
{
	if (rule->flags & REDIR_F_ADDR)
		return addr_eq(p->daddr, rule->addr);
	return dest_is_local(ctx, ifindex, p);
}

static __always_inline int ingress_policy(void *ctx, __u32 ifindex, int parsed, const struct pkt *p,
					  __be16 *new_dport)
{
	bool new_connection, reject = false;
	struct redir_rule *rule;
	__be16 target;
	__u8 interest;

	/* No port to read: it could be aimed at a hidden port. */
	if (parsed == PARSE_MALFORMED)
		return VERDICT_DROP_MALFORMED;
	if (parsed != PARSE_PORTS && parsed != PARSE_PORTS_ONLY)
		return VERDICT_PASS;
	interest = port_interest_bits(p->dport);
	if (!(interest & interest_bit(p->proto))) {
		if (!p->dport)
			port_zero_forget(p);
		return VERDICT_PASS;
	}
	/* A port a rule may name, in a shape we do not translate (a deep tag stack or header
	 * chain): what reaches the service must have gone through a rule, so it goes no
	 * further. An IPv6 first fragment without its whole TCP/UDP header the kernel refuses
	 * (RFC 7112: an ICMPv6 parameter problem, whatever the port), so it is the kernel's.
	 * An IPv4 one is judged by its ports as its datagram would be (frag.h translates it),
	 * but a closed port's answer needs the whole header. */
	if (parsed == PARSE_PORTS_ONLY && !p->frag)
		return VERDICT_DROP_MALFORMED;
	if (parsed == PARSE_PORTS_ONLY && p->is_ipv6)
		return VERDICT_PASS;

	/* A fresh SYN starts a new connection, which only a live rule may translate: a stale
	 * flow with the same tuple must not resurrect a deleted rule. */
	new_connection = p->proto == IPPROTO_TCP &&
			 (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	if (!new_connection) {
		target = client_conn_target(p->saddr, p->daddr, p->sport, p->dport, p->proto);
		if (target) {
			*new_dport = target;
			return VERDICT_REWRITE;
		}
	}

	/* A rule steered at socket lookup is sk_lookup's (steer.bpf.c): its packets go on as
	 * they are. */
	rule = interest & interest_public_bit(p->proto)
		       ? set_lookup(policy_set_get(), p->dport, p->proto, POLICY_PUBLIC)
		       : NULL;
	if (rule && !(rule->flags & REDIR_F_SOCKET) && rule_applies(ctx, ifindex, p, rule) &&
	    iface_enabled(ifindex)) {
		*new_dport = rule->target_port;
		pending_record(p, rule->target_port);
		return VERDICT_REWRITE;
	}

	if (port_is_hidden(p->dport, p->proto, &reject) && dest_is_local(ctx, ifindex, p) &&
	    iface_enabled(ifindex)) {
		if (!reject)
			return VERDICT_DROP_HIDDEN;
		if (!p->frag)
			return VERDICT_REJECT;
		reject_later(p, new_dport);
		return VERDICT_REJECT_LATER;
	}
	/* Only a SYN that goes through forgets: a spoofed one aimed at a hidden port must not
	 * cut a pending connection's replies. */
	if (new_connection)
		pending_forget(p);
	return VERDICT_PASS;
}

/* A packet from a hidden target that no translated connection accounts for: the service's
 * data to a client whose entries were evicted, or the SYN-ACK of an evicted pending entry.
 * Sent as it is, it would show the hidden port to the client, so it is dropped where ingress
 * drops that port: on an interface the live set enables, when this host's stack made it
 * (from_host: not forwarded) from one of its addresses (a container on a macvlan of this
 * device sends through it too, from its own) for another host (not loopback nor one of its
 * addresses: a local client talking to the target directly, as over `--iface lo`, gets its
 * replies). --reject's answers never get here (tc_egress). */
static __always_inline bool egress_shows_hidden(__u32 ifindex, bool from_host, const struct pkt *p)
{
	return port_is_hidden(p->sport, p->proto, NULL) && from_host && !addr_is_host(p->daddr) &&
	       addr_is_own(p->saddr) && iface_enabled(ifindex);
}

/* The service's packets: the public port back on a translated connection's, and the
 * connection's state moved on as the comment on the tables says. */
static __always_inline int egress_policy(__u32 ifindex, bool from_host, int parsed,
					 const struct pkt *p, __be16 *new_sport)
{
	bool is_pending = true, tcp = p->proto == IPPROTO_TCP;
	bool syn = tcp && (p->tcp_flags & TCP_FLAG_SYN);
	/* A packet that moves no connection on: flow_cache may answer for flows. */
	bool plain = !tcp || !(p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST));
	struct redir_flow_cached *cached = NULL;
	struct redir_flow_key fk;
	struct redir_flow flow;
	bool found;
	__u64 gen;

	if (parsed != PARSE_PORTS || (!port_of_interest(p->sport, p->proto) && p->sport))
		return VERDICT_PASS;
	flow_key_fill(&fk, p->daddr, p->saddr, p->dport, p->sport, p->proto, FLOW_DIR_OUT);
	gen = gen_now(&flows_gen);
	if (plain) {
		cached = flow_cache_entry(&fk);
		if (flow_cache_get(cached, &fk, gen, new_sport))
			return VERDICT_REWRITE;
	}
	if (syn) {
		flows_drop_stale(&fk);
		found = pending_get(&fk, &flow);
	} else {
		found = flow_lookup(&fk, &flow, &is_pending);
	}
	if (!found)
		return egress_shows_hidden(ifindex, from_host, p) ? VERDICT_DROP_UNTRACKED
								  : VERDICT_PASS;
	*new_sport = flow.port;

	if (tcp && (p->tcp_flags & TCP_FLAG_RST)) {
		flows_delete_pair(&fk, *new_sport);
		pending_delete_pair(&fk, *new_sport);
	} else if (tcp && (p->tcp_flags & TCP_FLAG_FIN)) {
		pending_record_closing(p->daddr, p->saddr, p->dport, *new_sport, p->sport,
				       p->proto);
		if (!is_pending)
			flows_delete_pair(&fk, *new_sport);
	} else if (plain && !is_pending) {
		flow_cache_put(cached, &fk, gen, *new_sport);
	} else if (!syn && is_pending && !(flow.flags & FLOW_F_CLOSING)) {
		/* The service answers a spoofed SYN with SYN-ACK and a stray packet with RST;
		 * anything else it sends only to a real peer: the connection has earned its
		 * place. */
		struct redir_flow established = { .port = *new_sport };

		bpf_map_update_elem(&flows, &fk, &established, BPF_ANY);
		gen_move_on(&flows_gen);
		/* The IN a closing connection before it on the tuple left goes too. */
		pending_delete_pair(&fk, *new_sport);
	}
	return VERDICT_REWRITE;
}

/* Counters for a verdict the hook has carried out. */
static __always_inline void account(const struct pkt *p, int verdict, bool ingress, __be16 new_port)
{
	switch (verdict) {
	case VERDICT_REWRITE:
		if (ingress) {
			stat_inc(STAT_REWRITTEN);
			port_stat_inc(p->dport, p->proto, PORT_STAT_REWRITTEN);
		} else {
			stat_inc(STAT_REVERSE_REWRITTEN);
			port_stat_inc(new_port, p->proto, PORT_STAT_REVERSE_REWRITTEN);
		}
		break;
	case VERDICT_DROP_HIDDEN:
		stat_inc(STAT_HIDDEN_DROPPED);
		port_stat_inc(p->dport, p->proto, PORT_STAT_HIDDEN_DROPPED);
		break;
	case VERDICT_DROP_MALFORMED:
		stat_inc(STAT_MALFORMED_DROPPED);
		break;
	case VERDICT_REJECT:
	case VERDICT_REJECT_LATER:
		stat_inc(STAT_REJECTED);
		port_stat_inc(p->dport, p->proto, PORT_STAT_HIDDEN_DROPPED);
		break;
	case VERDICT_DROP_UNTRACKED:
		stat_inc(STAT_HIDDEN_UNTRACKED_DROPPED);
		break;
	default:
		if (ingress)
			stat_inc(STAT_PASSED);
	}
}

#endif /* BPFREDIR_POLICY_H */
