// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The benchmark's own programs, none of them part of bpfredir:
 *
 * - bench_stamp (TC): puts the frame's original destination port and L4 checksum back, then
 *   tail-calls slot 0 of `target`. BPF_PROG_TEST_RUN with repeat runs a program over and over
 *   on one skb, so without this every repeat after the first would see the port bpfredir
 *   rewrote (8443: the hidden-port path) instead of the public one. With stamp_sport_walk
 *   each repeat also gets the next source port (of STAMP_SPORTS), its checksum to match: a
 *   new connection every time, as a stream of new clients makes them.
 * - bench_empty (TC): the floor. Slot 0 holds either it or bpfredir_tc_in, so the stamp and
 *   the tail call cost the same on both sides and cancel out of the difference.
 * - bench_stamp_xdp, bench_empty_xdp: the same for bpfredir_xdp.
 * - bench_pass_in, bench_pass_eg (TC): the tc-pass variant's programs on the server's veth,
 *   which let every packet go on: what any TC program there costs, bpfredir's floor.
 * - bench_calls_sk_lookup: what one call the verifier cannot inline costs on this machine,
 *   beside bench_empty_sk_lookup.
 * - bench_gen (XDP): the packet generator. Run with BPF_F_TEST_XDP_LIVE_FRAMES on the
 *   client's veth, each frame is transmitted (XDP_TX) to the peer in the server namespace.
 *   With vary_sport set, every frame gets the next source port, so each is a new flow.
 *   Every frame is written whole from gen_frame first: the live-frames page pool hands back
 *   pages as the receiving stack left them, and a redirect rewrites the port in place.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "../../bpf/lib/csum.h"

#define TC_ACT_OK 0

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

/* Set by user space before each run (the frame's layout and its original bytes). */
__u32 stamp_port_off, stamp_csum_off;
__be16 stamp_port, stamp_sport, stamp_csum;
__u32 stamp_sport_walk;
__u64 stamp_seq;

/* Source ports a walk goes through, more than a default load's pending holds, from the
 * frame's own on. */
#define STAMP_SPORTS 20000

/* The source port (the destination port's neighbour in the frame) and the checksum for this
 * repeat: the frame's own, or with a walk the next port, the checksum moved by the
 * difference (RFC 1624, the same in either byte order). */
static __always_inline void stamp_ports(__be16 *sport, __be16 *csum)
{
	*sport = stamp_sport;
	*csum = stamp_csum;
	if (!stamp_sport_walk)
		return;
	*sport = bpf_htons(bpf_ntohs(stamp_sport) + stamp_seq++ % STAMP_SPORTS);
	*csum = csum_replace16(stamp_csum, stamp_sport, *sport);
}

/* Generator: the frame, where its UDP source port sits, and the range that port walks. */
#define GEN_FRAME_LEN 60
__u8 gen_frame[GEN_FRAME_LEN];
__u32 gen_sport_off;
__u32 gen_vary_sport;
__u32 gen_sport_base, gen_sport_count;
__u64 gen_seq;

SEC("tcx/ingress")
int bench_stamp(struct __sk_buff *skb)
{
	__be16 port = stamp_port, sport, csum;

	stamp_ports(&sport, &csum);
	bpf_skb_store_bytes(skb, stamp_port_off - 2, &sport, sizeof(sport), 0);
	bpf_skb_store_bytes(skb, stamp_port_off, &port, sizeof(port), 0);
	bpf_skb_store_bytes(skb, stamp_csum_off, &csum, sizeof(csum), 0);
	bpf_tail_call(skb, &target, 0);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int bench_pass_in(struct __sk_buff *skb)
{
	return TCX_NEXT;
}

SEC("tcx/egress")
int bench_pass_eg(struct __sk_buff *skb)
{
	return TCX_NEXT;
}

/* The same pair for XDP: the stamp writes the bytes itself, XDP has no skb helpers. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_xdp SEC(".maps");

SEC("xdp")
int bench_stamp_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 port_off = stamp_port_off, csum_off = stamp_csum_off;
	__be16 *sport_at, *port, *csum, sport, sum;

	if (port_off < 2 || port_off > 256 || csum_off > 256)
		return XDP_ABORTED;
	sport_at = data + (port_off - 2);
	port = data + port_off;
	csum = data + csum_off;
	if ((void *)(sport_at + 1) > data_end || (void *)(port + 1) > data_end ||
	    (void *)(csum + 1) > data_end)
		return XDP_ABORTED;
	stamp_ports(&sport, &sum);
	*sport_at = sport;
	*port = stamp_port;
	*csum = sum;
	bpf_tail_call(ctx, &target_xdp, 0);
	return XDP_PASS;
}

SEC("xdp")
int bench_empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* The floor of socket steering's sk_lookup program: a lookup left to the kernel. */
SEC("sk_lookup")
int bench_empty_sk_lookup(struct bpf_sk_lookup *ctx)
{
	return SK_PASS;
}

/* BENCH_CALLS calls of a helper that does next to nothing and that the verifier does not
 * inline: above the empty program, the price of a call and its return here. Where the kernel
 * guards returns against speculation in software (retpolines, SRSO's "Safe RET"), that price
 * is well above the work, and socket steering's mechanism makes three such calls (the
 * sockmap lookup, bpf_sk_assign, bpf_sk_release). */
#define BENCH_CALLS 16
const volatile __u32 bench_calls = BENCH_CALLS;
__u32 bench_calls_sink;

SEC("sk_lookup")
int bench_calls_sk_lookup(struct bpf_sk_lookup *ctx)
{
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < BENCH_CALLS; i++)
		sum += bpf_get_numa_node_id();
	bench_calls_sink = sum;
	return SK_PASS;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = gen_sport_off;
	__be16 *sport;
	__u32 n;

	if (data + GEN_FRAME_LEN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, gen_frame, GEN_FRAME_LEN);
	if (!gen_vary_sport)
		return XDP_TX;
	if (off > GEN_FRAME_LEN - sizeof(*sport))
		return XDP_ABORTED;
	sport = data + off;
	if ((void *)(sport + 1) > data_end)
		return XDP_ABORTED;
	n = gen_seq++ % gen_sport_count;
	*sport = bpf_htons(gen_sport_base + n);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
