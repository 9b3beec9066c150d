/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small frame builder for the unit tests: Ethernet (optionally VLAN tagged), then ARP, or
 * IPv4 (optionally with options) / IPv6 (optionally with an extension header chain) carrying
 * TCP or UDP with a short payload. Every length and checksum is computed from scratch, so a
 * frame built with the port a program should produce is the byte-exact expected output.
 */
#ifndef PKTBUILD_H
#define PKTBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <linux/types.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#define PKT_MAX 512
#define PKT_MAX_EXT 12
#define PKT_PAYLOAD_LEN 12 /* even, so the last payload word is 16-bit aligned */
#define PKT_TCP_FLAG_FIN 0x01
#define PKT_TCP_FLAG_SYN 0x02
#define PKT_TCP_FLAG_RST 0x04
#define PKT_TCP_FLAG_PSH 0x08
#define PKT_TCP_FLAG_ACK 0x10
#define PKT_IPV6_FRAGMENT 44

enum pkt_host {
	HOST_CLIENT,
	HOST_SERVER,
	HOST_STRANGER,
	HOST_TUNNELED, /* another host, reached through a tunnel (netns.h) */
	/* IPv4 destinations every host takes as its own (v6: ff02::1, all nodes) */
	HOST_LBCAST,   /* 255.255.255.255 */
	HOST_ALLHOSTS, /* 224.0.0.1 */
	HOST_ZERONET,  /* 0.1.2.3 */
	HOST_SERVER_BCAST, /* 198.51.100.255: the broadcast address of HOST_SERVER's subnet */
	HOST__MAX,
};

struct pkt_host_addrs {
	__u8 v4[4];
	__u8 v6[16];
};

/* Whom the frame is sent to at L2. Under BPF_PROG_TEST_RUN the skb is on the namespace's
 * loopback, whose MAC address is all zeros: that is this host's. */
enum pkt_l2_dest {
	PKT_L2_HOST,	  /* 00:00:00:00:00:00 */
	PKT_L2_OTHER,	  /* 02:00:00:00:00:01, another host's */
	PKT_L2_BROADCAST, /* ff:ff:ff:ff:ff:ff */
	PKT_L2_MULTICAST, /* 01:00:5e:00:00:01 */
};

struct pkt_spec {
	__u16 l3;	    /* ETH_P_IP, ETH_P_IPV6 or ETH_P_ARP */
	__u8 vlans;	    /* tags (up to 8); with more than one, the outer ones are 802.1ad */
	__u8 l2_dest;	    /* enum pkt_l2_dest */
	__u8 proto;	    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 src, dst;	    /* enum pkt_host */
	__u16 sport, dport; /* host order */
	__u8 tcp_flags;
	__u8 ip_opt_len; /* IPv4 options (NOPs, then EOL), a multiple of 4 */
	__u16 frag_off;	 /* IPv4 frag_off field, host order (IPv6: its MF bit sets M) */
	__u8 n_ext;	 /* IPv6 extension headers, 8 bytes each, types in ext[] */
	__u8 ext[PKT_MAX_EXT];
	__u8 l4_trunc;	  /* nonzero: the frame ends this many bytes into the L4 header */
	bool udp_no_csum; /* send UDP checksum 0 ("none") */
	/* Nonzero: choose the last payload word so the checksum computes to 0 when dport is
	 * this port (UDP then transmits 0xFFFF). The frame itself keeps dport. */
	__u16 zero_csum_dport;
};

struct frame {
	__u8 buf[PKT_MAX];
	__u32 len;
	__u32 l3_off, l4_off, l4_len; /* l4_len: untruncated TCP/UDP header + payload */
	bool v6;
	__u8 proto;
};

static inline const struct pkt_host_addrs *pkt_host(enum pkt_host h)
{
#define PKT_DB8 0x20, 0x01, 0x0d, 0xb8 /* 2001:db8::/32 */
	static const struct pkt_host_addrs hosts[HOST__MAX] = {
		/* 192.0.2.10, 2001:db8::10 */
		[HOST_CLIENT] = {{192, 0, 2, 10}, {PKT_DB8, [15] = 0x10}},
		/* 198.51.100.1, 2001:db8:1::1 */
		[HOST_SERVER] = {{198, 51, 100, 1}, {PKT_DB8, 0, 1, [15] = 0x01}},
		/* 203.0.113.99, 2001:db8:2::99 */
		[HOST_STRANGER] = {{203, 0, 113, 99}, {PKT_DB8, 0, 2, [15] = 0x99}},
		/* 203.0.113.200, 2001:db8:3::200 */
		[HOST_TUNNELED] = {{203, 0, 113, 200}, {PKT_DB8, 0, 3, [14] = 0x02}},
		[HOST_LBCAST] = {{255, 255, 255, 255}, {0xff, 0x02, [15] = 1}},
		[HOST_ALLHOSTS] = {{224, 0, 0, 1}, {0xff, 0x02, [15] = 1}},
		[HOST_ZERONET] = {{0, 1, 2, 3}, {0xff, 0x02, [15] = 1}},
		[HOST_SERVER_BCAST] = {{198, 51, 100, 255}, {0xff, 0x02, [15] = 1}},
	};
#undef PKT_DB8

	return &hosts[h];
}

/* Host h's address as the maps store it (16 bytes; v4 as ::ffff:a.b.c.d). */
static inline void pkt_host_mapped(enum pkt_host h, bool v6, __u8 *dst)
{
	static const __u8 v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

	if (v6) {
		memcpy(dst, pkt_host(h)->v6, 16);
		return;
	}
	memcpy(dst, v4_mapped, sizeof(v4_mapped));
	memcpy(dst + 12, pkt_host(h)->v4, 4);
}

static inline void pkt_put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* RFC 1071 sum of big-endian 16-bit words; every chunk but the last must be even-sized. */
static inline __u32 pkt_csum_add(__u32 sum, const __u8 *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	return sum;
}

static inline __u16 pkt_csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* Folded sum of pseudo-header and L4 segment of BUF, laid out as F: 0xFFFF iff the
 * transmitted TCP/UDP checksum is right. A full recomputation, never an incremental one. */
static inline __u16 pkt_l4_sum(const __u8 *buf, const struct frame *f)
{
	const __u8 *ip = buf + f->l3_off;
	__u32 sum = f->proto + f->l4_len;

	if (f->v6)
		sum = pkt_csum_add(sum, ip + 8, 32);
	else
		sum = pkt_csum_add(sum, ip + 12, 8);
	return pkt_csum_fold(pkt_csum_add(sum, buf + f->l4_off, f->l4_len));
}

static inline void pkt_build_l3(struct frame *f, const struct pkt_spec *s, __u32 l3_len)
{
	const struct pkt_host_addrs *src = pkt_host(s->src), *dst = pkt_host(s->dst);
	__u8 *ip = f->buf + f->l3_off;
	int i;

	if (f->v6) {
		ip[0] = 0x60;
		pkt_put16(ip + 4, l3_len - 40 + f->l4_len);
		ip[6] = s->n_ext ? s->ext[0] : s->proto;
		ip[7] = 64;
		memcpy(ip + 8, src->v6, 16);
		memcpy(ip + 24, dst->v6, 16);
		for (i = 0; i < s->n_ext; i++) {
			__u8 *ext = ip + 40 + 8 * i;

			ext[0] = i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;
			if (s->ext[i] != PKT_IPV6_FRAGMENT) {
				ext[2] = 1; /* PadN over the remaining 4 bytes */
				ext[3] = 4;
			} else if (s->frag_off & 0x2000) {
				ext[3] = 1; /* M: more fragments follow */
			}
		}
		return;
	}
	ip[0] = 0x40 | l3_len / 4;
	pkt_put16(ip + 2, l3_len + f->l4_len);
	pkt_put16(ip + 4, 0x1234);
	pkt_put16(ip + 6, s->frag_off);
	ip[8] = 64;
	ip[9] = s->proto;
	memcpy(ip + 12, src->v4, 4);
	memcpy(ip + 16, dst->v4, 4);
	memset(ip + 20, 1, s->ip_opt_len);
	if (s->ip_opt_len)
		ip[l3_len - 1] = 0;
	pkt_put16(ip + 10, ~pkt_csum_fold(pkt_csum_add(0, ip, l3_len)));
}

static inline void pkt_build_l4(struct frame *f, const struct pkt_spec *s)
{
	__u8 *l4 = f->buf + f->l4_off;
	__u32 csum_off = s->proto == IPPROTO_TCP ? 16 : 6;
	__u16 csum;
	int i;

	pkt_put16(l4, s->sport);
	pkt_put16(l4 + 2, s->dport);
	if (s->proto == IPPROTO_TCP) {
		pkt_put16(l4 + 6, 1000); /* seq */
		if (s->tcp_flags & PKT_TCP_FLAG_ACK)
			pkt_put16(l4 + 10, 2000);
		l4[12] = 5 << 4;
		l4[13] = s->tcp_flags;
		pkt_put16(l4 + 14, 65535);
	} else {
		pkt_put16(l4 + 4, f->l4_len);
	}
	for (i = 0; i < PKT_PAYLOAD_LEN; i++)
		l4[f->l4_len - PKT_PAYLOAD_LEN + i] = 'a' + i;
	if (s->zero_csum_dport) {
		pkt_put16(l4 + 2, s->zero_csum_dport);
		pkt_put16(l4 + f->l4_len - 2, 0);
		pkt_put16(l4 + f->l4_len - 2, ~pkt_l4_sum(f->buf, f));
		pkt_put16(l4 + 2, s->dport);
	}
	csum = ~pkt_l4_sum(f->buf, f);
	if (s->proto == IPPROTO_UDP && s->udp_no_csum)
		csum = 0;
	else if (s->proto == IPPROTO_UDP && !csum)
		csum = 0xffff;
	pkt_put16(l4 + csum_off, csum);
}

static inline void pkt_build(struct frame *f, const struct pkt_spec *s)
{
	static const __u8 dst_macs[][6] = {
		[PKT_L2_HOST] = {0, 0, 0, 0, 0, 0},
		[PKT_L2_OTHER] = {2, 0, 0, 0, 0, 1},
		[PKT_L2_BROADCAST] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[PKT_L2_MULTICAST] = {1, 0, 0x5e, 0, 0, 1},
	};
	static const __u8 src_mac[6] = {2, 0, 0, 0, 0, 2};
	__u32 l3_len;
	int i;

	memset(f, 0, sizeof(*f));
	memcpy(f->buf, dst_macs[s->l2_dest], 6);
	memcpy(f->buf + 6, src_mac, 6);
	f->l3_off = 12;
	for (i = 0; i < s->vlans; i++, f->l3_off += 4) {
		pkt_put16(f->buf + f->l3_off, i + 1 < s->vlans ? ETH_P_8021AD : ETH_P_8021Q);
		pkt_put16(f->buf + f->l3_off + 2, 100 + i);
	}
	pkt_put16(f->buf + f->l3_off, s->l3);
	f->l3_off += 2;

	if (s->l3 == ETH_P_ARP) {
		/* Ethernet/IPv4 request */
		static const __u8 arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
		__u8 *arp = f->buf + f->l3_off;

		memcpy(arp, arp_hdr, sizeof(arp_hdr));
		memcpy(arp + 8, src_mac, 6);
		memcpy(arp + 14, pkt_host(s->src)->v4, 4);
		memcpy(arp + 24, pkt_host(s->dst)->v4, 4);
		f->len = f->l3_off + 28;
		return;
	}

	f->v6 = s->l3 == ETH_P_IPV6;
	f->proto = s->proto;
	l3_len = f->v6 ? 40 + 8 * s->n_ext : 20 + s->ip_opt_len;
	f->l4_off = f->l3_off + l3_len;
	f->l4_len = (s->proto == IPPROTO_TCP ? 20 : 8) + PKT_PAYLOAD_LEN;
	pkt_build_l3(f, s, l3_len);
	pkt_build_l4(f, s);
	f->len = f->l4_off + (s->l4_trunc ? s->l4_trunc : f->l4_len);
}

#endif /* PKTBUILD_H */
