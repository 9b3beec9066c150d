/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * verify's packets (verify_packet.c): a line of the readable form, the frame it stands for,
 * and what a program made of it, said back in the same words.
 *
 *   [in|out] tcp|udp SRC > DST [syn|ack|fin|rst|psh ...] [=> EXPECTED]
 *   connect tcp|udp DST [=> EXPECTED]        (a local client's connect(), then getpeername())
 *   sendmsg udp DST [=> EXPECTED]            (a local client's sendto(), then recvfrom())
 *   host ADDR...                             (this host's addresses)
 *
 * SRC and DST are A.B.C.D:PORT or [IPv6]:PORT; in (the default) is a packet arriving, out one
 * this host sends; EXPECTED is pass, drop, reject or rewrite PORT.
 */
#ifndef BPFREDIR_VERIFY_H
#define BPFREDIR_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "bpfredir.h"

#define VERIFY_FRAME_MAX 512

enum verify_kind {
	VERIFY_IN,
	VERIFY_OUT,
	VERIFY_CONNECT,
	VERIFY_SENDMSG,
	VERIFY_HOST, /* a host line: addrs */
};

enum verify_verdict {
	VERDICT_NONE, /* no expectation */
	VERDICT_PASS,
	VERDICT_REWRITE,
	VERDICT_DROP,
	VERDICT_REJECT,
	VERDICT_ERROR, /* the program could not be run, or returned what no hook does */
};

#define VERIFY_MAX_HOST_ADDRS 16

struct verify_packet {
	enum verify_kind kind;
	__u8 proto;
	bool v6;
	__u8 saddr[BPFREDIR_ADDR_LEN], daddr[BPFREDIR_ADDR_LEN]; /* v4 as ::ffff:a.b.c.d */
	__u16 sport, dport;
	__u8 tcp_flags;
	enum verify_verdict expect;
	__u16 expect_port;				      /* VERDICT_REWRITE */
	__u8 addrs[VERIFY_MAX_HOST_ADDRS][BPFREDIR_ADDR_LEN]; /* VERIFY_HOST */
	int n_addrs;
};

/* A line (modified: split into words) into *p: 0, 1 for a blank or comment line, or -1 with
 * why[n] saying what is wrong. */
int verify_packet_parse(char *line, struct verify_packet *p, char *why, size_t n);
/* The packet, without its expectation, as a line of the form. */
void verify_packet_text(const struct verify_packet *p, char *buf, size_t size);
const char *verdict_name(enum verify_verdict v);

/* The Ethernet frame of an in or out packet, lengths and checksums right: its length. */
__u32 verify_frame(const struct verify_packet *p, __u8 *buf);
/* A frame as a packet of the form (a TCP or UDP packet), or what it is (ICMP errors). */
void frame_text(const __u8 *frame, __u32 len, char *buf, size_t size);
/* A frame's port at the L4 header (dest or source), host order; 0 when it has none. */
__u16 frame_port(const __u8 *frame, __u32 len, bool dest);

/* One field that differs between two frames of one layout. */
struct frame_change {
	char field[24];
	char from[48], to[48];
};
/* The fields of in that out changed, at most max: how many. */
int frame_changes(const __u8 *in, const __u8 *out, __u32 len, struct frame_change *changes,
		  int max);

#endif /* BPFREDIR_VERIFY_H */
