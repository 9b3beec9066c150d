// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The netns guard: hidden ports stay hidden on every path into this network namespace, not
 * only through the interfaces TC or XDP runs on. The recipe's `mangle PREROUTING MARK` +
 * `filter INPUT DROP` have no `-i`; without this, a hidden target answers through a second
 * NIC, a bridge holding containers, a tunnel's decapsulated traffic or IPsec transport mode.
 *
 * The rule: a TCP/UDP packet about to reach a local socket on a hidden port is let through
 * only if it comes from this host (hiding from local clients is --hide-local's job, in the
 * socket hooks), if TC or XDP judged it on an interface where bpfredir acts (they translated
 * it, or would have dropped it), or if bpfredir translated its connection (its OUT entry in
 * flows or pending, which TC or XDP records before rewriting a packet: a macvlan over an
 * attached NIC delivers what TC translated on the NIC). Anything else aimed at a hidden port
 * is a direct hit.
 *
 * Two ways to run it, the loader picks the first the kernel has (guard.c):
 * - netfilter (6.4+), at LOCAL_IN for IPv4 and IPv6: sees every packet delivered locally,
 *   broadcast and multicast included, after IPv4 reassembly; drops.
 * - sk_lookup (written for 5.19+: ingress_ifindex, a 16-bit remote_port): runs when TCP
 *   looks for a listener and UDP for a unicast socket, so it never sees UDP broadcast or
 *   multicast; SK_DROP makes the lookup find nothing, so the port answers as a closed one
 *   (RST, ICMP port unreachable).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "bpfredir.h"
#include "lib/proto.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/sk_lookup.h"

#define NF_DROP 0
#define NF_ACCEPT 1
#define NFPROTO_IPV6 10
#define IFF_LOOPBACK 0x8
/* skb->_nfct holds the conntrack pointer with the ctinfo in its low bits. */
#define NFCT_INFOMASK 7UL
#define IP_CT_IS_REPLY 3
#define IPS_DST_NAT (1 << 5)
/* More than parse.h walks, so whatever TC reads the guard reads too. */
#define GUARD_MAX_EXT_HDRS 16

/* For sk_lookup, which cannot see the device: a local client's source is one of this host's
 * addresses, usually the very one it connects to (and a connection to the address of another
 * interface comes in there, not on loopback). From outside, IPv4 with a source of ours is
 * dropped as a martian before delivery; IPv6 is not, but the answer goes to this host, so
 * the sender learns nothing. The cheap tests here, the map last (guard_hides). */
static __always_inline bool plainly_local(const __u8 *remote, const __u8 *local)
{
	const __u32 *w = (const void *)remote;

	if (addr_eq(remote, local))
		return true;
	/* ::1 and ::ffff:127.0.0.0/104 */
	return !w[0] && !w[1] &&
	       ((!w[2] && w[3] == bpf_htonl(1)) ||
		(w[2] == bpf_htonl(0xffff) && remote[12] == 127));
}

/* Should a packet from remote to local, on local_port, be kept from its socket? judged_on:
 * the interface TC or XDP ran on last, when the guard can tell that they saw this very
 * packet (0 when not). by_source: tell local clients by their source address (sk_lookup;
 * netfilter tells them by the device). The lookups go in the order that costs least: most
 * packets that get past port_interest came in through an attached interface, or belong to a
 * translated connection (its OUT entry: the reply will be rewritten back). */
static __always_inline bool guard_hides(const __u8 *remote_addr, const __u8 *local_addr,
					__be16 remote_port, __be16 local_port, __u8 proto,
					__u32 judged_on, bool by_source)
{
	struct redir_flow_key fk;
	struct redir_flow flow;
	bool is_pending;

	if (!port_of_interest(local_port, proto) ||
	    (by_source && plainly_local(remote_addr, local_addr)))
		return false;
	/* TC or XDP acts there: it translated the packet, or it dropped it already. */
	if (judged_on && iface_enabled(judged_on))
		return false;
	flow_key_fill(&fk, remote_addr, local_addr, remote_port, local_port, proto, FLOW_DIR_OUT);
	if (flow_lookup(&fk, &flow, &is_pending))
		return false;
	return port_is_hidden(local_port, proto, NULL) && !(by_source && addr_is_own(remote_addr));
}

static __always_inline void guard_count(__be16 port, __u8 proto)
{
	stat_inc(STAT_GUARD_DROPPED);
	port_stat_inc(port, proto, PORT_STAT_HIDDEN_DROPPED);
}

/* Netfilter programs have no direct packet access: the headers are read through a dynptr
 * over the skb, a fixed-size slice at a time (a pointer into the skb where the bytes are
 * linear, else a copy). At LOCAL_IN skb->data is the IP header, the IP header was checked by
 * ip_rcv, and IPv4 is reassembled; IPv6 fragments are not (that happens behind the hook), so
 * like TC the guard judges a first fragment by its ports and passes the others, which cannot
 * reassemble without it. A packet too short for the ports it claims is the transport layer's
 * to drop. */
static __always_inline int nf_parse_ports(struct bpf_dynptr *dp, __u32 off, __u8 proto,
					  struct pkt *p)
{
	__be16 buf[2], *ports = bpf_dynptr_slice(dp, off, buf, sizeof(buf));

	if (!ports)
		return PARSE_NO_PORTS;
	p->sport = ports[0];
	p->dport = ports[1];
	p->proto = proto;
	return PARSE_PORTS;
}

/* The IP header and, right behind it as in most packets, the ports: one slice. */
struct nf_hdrs4 {
	struct iphdr ip;
	__be16 ports[2];
};

struct nf_hdrs6 {
	struct ipv6hdr ip6;
	__be16 ports[2];
};

static __always_inline int nf_parse_ipv4(struct bpf_dynptr *dp, struct pkt *p)
{
	struct nf_hdrs4 buf, *h = bpf_dynptr_slice(dp, 0, &buf, sizeof(buf));
	__u32 hdr_len;
	__u8 proto;

	if (!h || (*(__u8 *)h >> 4) != 4)
		return PARSE_NO_PORTS;
	proto = h->ip.protocol;
	hdr_len = (*(__u8 *)h & 0xF) * 4;
	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || hdr_len < sizeof(h->ip) ||
	    h->ip.frag_off & bpf_htons(IP_OFFSET))
		return PARSE_NO_PORTS;
	addr_from_v4(p->saddr, h->ip.saddr);
	addr_from_v4(p->daddr, h->ip.daddr);
	if (hdr_len > sizeof(h->ip))
		return nf_parse_ports(dp, hdr_len, proto, p);
	p->sport = h->ports[0];
	p->dport = h->ports[1];
	p->proto = proto;
	return PARSE_PORTS;
}

static __always_inline int nf_parse_ipv6(struct bpf_dynptr *dp, struct pkt *p)
{
	struct nf_hdrs6 buf, *h = bpf_dynptr_slice(dp, 0, &buf, sizeof(buf));
	struct frag_hdr fbuf, *frag;
	struct ipv6_opt_hdr obuf, *opt;
	__u32 off = sizeof(h->ip6);
	__u8 nexthdr;
	int i;

	if (!h || (*(__u8 *)h >> 4) != 6)
		return PARSE_NO_PORTS;
	__builtin_memcpy(p->saddr, &h->ip6.saddr, BPFREDIR_ADDR_LEN);
	__builtin_memcpy(p->daddr, &h->ip6.daddr, BPFREDIR_ADDR_LEN);
	nexthdr = h->ip6.nexthdr;
	if (nexthdr == IPPROTO_TCP || nexthdr == IPPROTO_UDP) {
		p->sport = h->ports[0];
		p->dport = h->ports[1];
		p->proto = nexthdr;
		return PARSE_PORTS;
	}
	for (i = 0; i < GUARD_MAX_EXT_HDRS; i++) {
		switch (nexthdr) {
		case IPPROTO_TCP:
		case IPPROTO_UDP:
			return nf_parse_ports(dp, off, nexthdr, p);
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			opt = bpf_dynptr_slice(dp, off, &obuf, sizeof(obuf));
			if (!opt)
				return PARSE_NO_PORTS;
			nexthdr = opt->nexthdr;
			off += (opt->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			opt = bpf_dynptr_slice(dp, off, &obuf, sizeof(obuf));
			if (!opt)
				return PARSE_NO_PORTS;
			nexthdr = opt->nexthdr;
			off += (opt->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			frag = bpf_dynptr_slice(dp, off, &fbuf, sizeof(fbuf));
			if (!frag || frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK))
				return PARSE_NO_PORTS;
			nexthdr = frag->nexthdr;
			off += sizeof(*frag);
			break;
		default:
			return PARSE_NO_PORTS;
		}
	}
	/* A chain longer than any real packet's: it might still lead to a hidden port. */
	return PARSE_MALFORMED;
}

/* Most packets' IP header and ports lie in the skb's linear area (ip_rcv pulled the IP
 * header; drivers and GRO put the transport header there too). They are read there with plain
 * loads through read-only casts (bpf_rdonly_cast is inlined: no call), checked against the
 * linear length first. Whatever is not (ports in a page fragment, IPv6 extension headers)
 * goes to the dynptr parser. */
#define PARSE_NOT_LINEAR (-1)

static __always_inline int nf_parse_linear(struct sk_buff *skb, bool ipv6, struct pkt *p)
{
	unsigned long data = (unsigned long)skb->data;
	__u32 headlen = skb->len - skb->data_len;
	struct udphdr *ports; /* TCP's ports lie where UDP's do */
	struct ipv6hdr *ip6h;
	struct iphdr *iph;
	__u32 hdr_len;
	__u8 proto;

	if (ipv6) {
		if (headlen < sizeof(*ip6h) + 4)
			return PARSE_NOT_LINEAR;
		ip6h = bpf_core_cast((void *)data, struct ipv6hdr);
		proto = ip6h->nexthdr;
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return PARSE_NOT_LINEAR;
		__builtin_memcpy(p->saddr, &ip6h->saddr, BPFREDIR_ADDR_LEN);
		__builtin_memcpy(p->daddr, &ip6h->daddr, BPFREDIR_ADDR_LEN);
		hdr_len = sizeof(*ip6h);
	} else {
		if (headlen < sizeof(*iph))
			return PARSE_NOT_LINEAR;
		iph = bpf_core_cast((void *)data, struct iphdr);
		proto = iph->protocol;
		hdr_len = iph->ihl * 4;
		if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || iph->version != 4 ||
		    hdr_len < sizeof(*iph) || iph->frag_off & bpf_htons(IP_OFFSET))
			return PARSE_NO_PORTS;
		if (headlen < hdr_len + 4)
			return PARSE_NOT_LINEAR;
		addr_from_v4(p->saddr, iph->saddr);
		addr_from_v4(p->daddr, iph->daddr);
	}
	ports = bpf_core_cast((void *)(data + hdr_len), struct udphdr);
	p->sport = ports->source;
	p->dport = ports->dest;
	p->proto = proto;
	return PARSE_PORTS;
}

/* Set at load time: struct nf_conn's id in the kernel's BTF, or 0 where it has none. (Not
 * bpf_core_cast: "nf_conn" would also match the kernel's nf_conn___init, an ambiguity CO-RE
 * refuses.) */
const volatile __u32 nf_conn_btf_id = 0;

/* The fields read, relocated by name onto the kernel's struct nf_conn. */
struct nf_conn___guard {
	unsigned long status;
	struct nf_conntrack_tuple_hash tuplehash[2];
} __attribute__((preserve_access_index));

/* Judged by the port the packet arrived with, as the recipe's mark is: a packet another
 * rule (iptables REDIRECT, nftables dnat) moved onto a hidden port was not aimed at it, and
 * one moved off a hidden port was. Conntrack's original tuple keeps the arrival port. The
 * entry is read through a read-only cast: plain loads, no helper call per packet. */
static __always_inline __be16 arrival_port(struct sk_buff *skb, __be16 dport)
{
	struct nf_conn___guard *ct;
	unsigned long nfct;

	if (!nf_conn_btf_id || !bpf_core_field_exists(skb->_nfct))
		return dport;
	nfct = skb->_nfct;
	if (!(nfct & ~NFCT_INFOMASK) || (nfct & NFCT_INFOMASK) >= IP_CT_IS_REPLY)
		return dport;
	ct = bpf_rdonly_cast((void *)(nfct & ~NFCT_INFOMASK), nf_conn_btf_id);
	if (!(ct->status & IPS_DST_NAT))
		return dport;
	return ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple.dst.u.all;
}

/* The interface whose TC (and XDP) saw this packet last: the device the stack received it on
 * last, skb_iif (a macvlan or VLAN device, say, after their lower device's hooks ran; a
 * tunnel's decapsulated packets are received again on the tunnel device). 0, so that the flow
 * tables decide, for a packet IPsec decrypted (it carries a secpath: TC saw ESP; a tunnel
 * mode packet does go through the interface's TC again, and its flow entry is found), and
 * for broadcast and multicast, which TC may have passed as not local. */
static __always_inline __u32 judged_on(struct sk_buff *skb, __u8 pkt_type)
{
	if (pkt_type != PACKET_HOST)
		return 0;
	if (bpf_core_field_exists(skb->active_extensions) &&
	    bpf_core_enum_value_exists(enum skb_ext_id, SKB_EXT_SEC_PATH) &&
	    (skb->active_extensions &
	     (1 << bpf_core_enum_value(enum skb_ext_id, SKB_EXT_SEC_PATH))))
		return 0;
	return skb->skb_iif;
}

SEC("netfilter")
int bpfredir_nf_in(struct bpf_nf_ctx *ctx)
{
	const struct nf_hook_state *state = ctx->state;
	struct sk_buff *skb = ctx->skb;
	struct net_device *in = state->in;
	__u8 pkt_type = BPF_CORE_READ_BITFIELD(skb, pkt_type);
	struct bpf_dynptr dp;
	/* Zeroed: where a parser leaves a field unset, clang may read any register in its
	 * place, and the verifier refuses an uninitialised one. */
	struct pkt p = {};
	__be16 port;
	int parsed;

	/* From this host: through loopback, or looped back by an L3 master device (VRF). The
	 * stack sets both, where a source address could be spoofed (IPv6 has no martian check
	 * for one of our own). */
	if ((in && (in->flags & IFF_LOOPBACK)) || pkt_type == PACKET_LOOPBACK)
		return NF_ACCEPT;
	parsed = nf_parse_linear(skb, state->pf == NFPROTO_IPV6, &p);
	if (parsed == PARSE_NOT_LINEAR) {
		if (bpf_dynptr_from_skb((struct __sk_buff *)skb, 0, &dp))
			return NF_ACCEPT;
		parsed =
			state->pf == NFPROTO_IPV6 ? nf_parse_ipv6(&dp, &p) : nf_parse_ipv4(&dp, &p);
	}
	if (parsed == PARSE_MALFORMED) {
		stat_inc(STAT_GUARD_DROPPED);
		return NF_DROP;
	}
	if (parsed != PARSE_PORTS)
		return NF_ACCEPT;
	port = arrival_port(skb, p.dport);
	if (!guard_hides(p.saddr, p.daddr, p.sport, port, p.proto, judged_on(skb, pkt_type), false))
		return NF_ACCEPT;
	guard_count(port, p.proto);
	return NF_DROP;
}

SEC("sk_lookup")
int bpfredir_sk_lkp(struct bpf_sk_lookup *ctx)
{
	__u32 remote[4], local[4];
	__be16 port = bpf_htons(ctx->local_port);
	__be16 remote_port = ctx->remote_port;
	__u8 proto = ctx->protocol;

	if (ctx->ingress_ifindex == LOOPBACK_IFINDEX ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return SK_PASS;
	sk_lookup_addrs(ctx, remote, local);
	/* No interface shortcut: without the skb, IPsec's decrypted packets cannot be told
	 * apart, and sk_lookup sees only new connections and datagrams, whose flow entries
	 * TC or XDP has just made. */
	if (!guard_hides((__u8 *)remote, (__u8 *)local, remote_port, port, proto, 0, true))
		return SK_PASS;
	guard_count(port, proto);
	return SK_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
