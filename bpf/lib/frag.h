/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A translated TCP datagram whose header is split over IPv4 fragments (`nmap -f`, `--mtu
 * 16`): ingress rewrites the port in the first fragment, but the checksum, which covers the
 * whole datagram, lies in a later one. The first fragment leaves the checksum's change in
 * frag_fix under the datagram's addresses and IP ID; the fragment holding byte 16 of the
 * segment (PARSE_FRAG_TAIL) takes it. The kernel then reassembles a datagram that is
 * translated and whole, as conntrack's reassembly lets the recipe do.
 *
 * Fragments sent in order work; a checksum fragment that comes before its first fragment
 * finds nothing and goes on unchanged: the reassembled datagram fails its checksum and the
 * kernel drops it (the sender retransmits). IPv6 needs none of this: the kernel drops a
 * first fragment without its whole TCP header (RFC 7112), so ingress never translates one.
 */
#ifndef BPFREDIR_FRAG_H
#define BPFREDIR_FRAG_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "proto.h"
#include "parse.h"
#include "ctx.h"
#include "csum.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFREDIR_FRAG_FIX_ENTRIES);
	__type(key, struct redir_frag_key);
	__type(value, struct redir_frag_fix);
} frag_fix SEC(".maps");

/* Does the port rewrite of p leave its checksum to a later fragment? A first fragment that is
 * not the last is a multiple of 8 bytes long for the kernel, which cuts off the rest: one
 * without the whole TCP header keeps at most 16 bytes of it, never the checksum. */
static __always_inline bool frag_split_csum(const struct pkt *p, void *data_end, void *data)
{
	return p->frag && !p->is_ipv6 && p->proto == IPPROTO_TCP &&
	       data + p->l4_off + sizeof(struct tcphdr) > data_end;
}

static __always_inline int frag_key_fill(struct redir_frag_key *k, void *data, void *data_end,
					 const struct pkt *p)
{
	struct iphdr *iph = data + (p->l3_off & L3_OFF_MASK);

	if ((void *)(iph + 1) > data_end)
		return -1;
	k->saddr = iph->saddr;
	k->daddr = iph->daddr;
	k->id = iph->id;
	k->pad[0] = 0;
	k->pad[1] = 0;
	return 0;
}

/* The first fragment's port goes from old_port to new_port: remember what the checksum owes. */
static __always_inline int frag_head_record(void *data, void *data_end, const struct pkt *p,
					    __be16 old_port, __be16 new_port)
{
	struct redir_frag_fix fix = { .csum_diff = csum_diff16(old_port, new_port) };
	struct redir_frag_key k;

	if (frag_key_fill(&k, data, data_end, p))
		return -1;
	return bpf_map_update_elem(&frag_fix, &k, &fix, BPF_ANY);
}

/* The checksum of a PARSE_FRAG_TAIL fragment, fixed for its datagram's translated first
 * fragment, if it holds the checksum and one was translated. */
static __always_inline void frag_tail_fix(ctx_t *ctx, const struct pkt *p)
{
	__u32 csum_off = p->l4_off + TCP_CSUM_OFF - p->frag_off;
	struct redir_frag_fix *fix;
	struct redir_frag_key k;
	void *data, *data_end;
	__u16 check;

	/* Keeps clang from reusing &ctx->data from the parse: the verifier refuses loads
	 * through a moved context pointer. */
	barrier_var(ctx);
	data = ctx_data(ctx);
	data_end = ctx_end(ctx);
	if (frag_key_fill(&k, data, data_end, p))
		return;
	fix = bpf_map_lookup_elem(&frag_fix, &k);
	if (!fix || ctx_load(ctx, csum_off, &check, sizeof(check)))
		return;
	check = csum_apply16(check, fix->csum_diff);
	if (!ctx_store(ctx, csum_off, &check, sizeof(check)))
		bpf_map_delete_elem(&frag_fix, &k);
}

#endif /* BPFREDIR_FRAG_H */
