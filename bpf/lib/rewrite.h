/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Port rewrite by direct packet access, for hooks without the skb checksum helpers (XDP).
 * The TCP/UDP checksum is updated incrementally (RFC 1624, eqn. 3): only the port changes,
 * and the pseudo-header does not include it, so no full recomputation is needed.
 */
#ifndef BPFREDIR_REWRITE_H
#define BPFREDIR_REWRITE_H

#include "vmlinux.h"
#include "csum.h"
#include "parse.h"

/* Far enough for any header chain parse.h accepts; bounds l4_off for the verifier. */
#define REWRITE_MAX_L4_OFF 0x4000

/*
 * Put new_port in the packet's destination (dest) or source port and fix the checksum.
 * UDP's zero checksum means "none" and stays zero; a UDP checksum that comes out zero is
 * sent as 0xffff, its other representation (RFC 768). Returns 0, or -1 when the headers
 * parse.h found are not where p says (which the verifier needs us to check again).
 */
static __always_inline int rewrite_port(void *data, void *data_end, const struct pkt *p, bool dest,
					__be16 new_port)
{
	__u32 off = p->l4_off;
	__be16 *port, *check;
	void *l4;

	if (off > REWRITE_MAX_L4_OFF)
		return -1;
	l4 = data + off;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return -1;
		port = dest ? &th->dest : &th->source;
		check = &th->check;
	} else {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return -1;
		port = dest ? &uh->dest : &uh->source;
		check = &uh->check;
	}
	if (p->proto == IPPROTO_TCP || *check) {
		__u16 sum = csum_replace16(*check, *port, new_port);

		if (p->proto == IPPROTO_UDP && !sum)
			sum = 0xffff;
		*check = sum;
	}
	*port = new_port;
	return 0;
}

#endif /* BPFREDIR_REWRITE_H */
