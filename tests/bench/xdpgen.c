// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The in-kernel packet generator of benchmarks 2 and 3: BPF_PROG_TEST_RUN of bench_gen
 * (bench.bpf.c) in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) with IFNAME as the ingress
 * device. bench_gen answers XDP_TX, so every frame leaves through IFNAME; on a veth it
 * arrives at the peer, in the server's namespace, as a frame from the wire. Run it in the
 * namespace that holds IFNAME. The peer needs NAPI for that (an XDP program, or GRO on).
 *
 *   xdpgen IFNAME SRC_MAC DST_MAC SRC_IP DST_IP DPORT single|newport SECONDS
 *
 * Sends 64-byte (60 without FCS) IPv4/UDP frames SRC_IP:40000 -> DST_IP:DPORT for SECONDS;
 * with `newport` each frame has the next source port (1024..65535, round and round), so
 * each is a new flow. Prints "frames seconds".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bench.skel.h"
#include "benchutil.h"

#define FRAME_LEN 60
#define SPORT 40000
#define SPORT_BASE 1024
/* Frames per BPF_PROG_TEST_RUN call: short enough to stop on time. */
#define PER_CALL (1 << 16)

static void mac_arg(unsigned char *mac, const char *s)
{
	if (sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
		   &mac[5]) != 6)
		die("not a MAC address: %s", s);
}

static __u16 ip_csum(const void *hdr, size_t len)
{
	const __u8 *p = hdr;
	__u32 sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

int main(int argc, char **argv)
{
	__u8 frame[FRAME_LEN] = {};
	struct ethhdr *eth = (void *)frame;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct xdp_md ctx = {};
	struct bench_bpf *skel;
	unsigned long frames = 0;
	double seconds, t0, until;
	bool newport;
	char *end;
	int fd;

	if (argc != 9)
		die("usage: xdpgen IFNAME SRC_MAC DST_MAC SRC_IP DST_IP DPORT single|newport "
		    "SECONDS");
	/* The kernel wants the context to describe exactly the frame in data_in. */
	ctx.data_end = FRAME_LEN;
	ctx.ingress_ifindex = if_nametoindex(argv[1]);
	if (!ctx.ingress_ifindex)
		die("no interface %s in this network namespace", argv[1]);
	mac_arg(eth->h_source, argv[2]);
	mac_arg(eth->h_dest, argv[3]);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(FRAME_LEN - sizeof(*eth));
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	if (inet_pton(AF_INET, argv[4], &ip->saddr) != 1 ||
	    inet_pton(AF_INET, argv[5], &ip->daddr) != 1)
		die("not IPv4 addresses: %s %s", argv[4], argv[5]);
	ip->check = ip_csum(ip, sizeof(*ip));
	udp->source = htons(SPORT);
	udp->dest = htons(port_arg("DPORT", argv[6]));
	udp->len = htons(FRAME_LEN - sizeof(*eth) - sizeof(*ip));
	/* Checksum 0, "none" for UDP over IPv4: the generator changes the source port
	 * freely and the receiver has nothing to verify. */
	udp->check = 0;
	if (!strcmp(argv[7], "newport"))
		newport = true;
	else if (!strcmp(argv[7], "single"))
		newport = false;
	else
		die("not single or newport: %s", argv[7]);
	seconds = strtod(argv[8], &end);
	if (*end || seconds <= 0)
		die("SECONDS: not a positive number: %s", argv[8]);

	skel = bench_bpf__open_and_load();
	if (!skel)
		die("cannot load the generator: %s", strerror(errno));
	_Static_assert(sizeof(skel->bss->gen_frame) == FRAME_LEN, "the BPF side's frame size");
	memcpy(skel->bss->gen_frame, frame, FRAME_LEN);
	skel->bss->gen_vary_sport = newport;
	skel->bss->gen_sport_off = (__u8 *)&udp->source - frame;
	skel->bss->gen_sport_base = SPORT_BASE;
	skel->bss->gen_sport_count = 65536 - SPORT_BASE;
	fd = bpf_program__fd(skel->progs.bench_gen);

	t0 = now();
	until = t0 + seconds;
	while (now() < until) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = FRAME_LEN,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = PER_CALL,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

		if (bpf_prog_test_run_opts(fd, &opts))
			die("BPF_PROG_TEST_RUN (live frames) on %s: %s", argv[1], strerror(errno));
		frames += PER_CALL;
	}
	printf("%lu %.3f\n", frames, now() - t0);
	bench_bpf__destroy(skel);
	return 0;
}
