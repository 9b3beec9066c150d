// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TC entry points: ingress translates public -> target and hides the target; egress puts
 * the public port back on replies. All decisions live in policy.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bpfredir.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* Enough for two VLAN tags, IPv6 with a few extension headers and a TCP header. */
#define TC_PULL_LEN 256

/* Headers usually sit in the linear area; when they do not, the parser sees a truncated
 * packet, so pull once and look again rather than pulling every packet. */
static __always_inline int tc_parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	int parsed = parse_packet(data, data_end, p);
	__u32 len;

	if (parsed != PARSE_MALFORMED || data_end - data >= skb->len)
		return parsed;
	len = skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN;
	if (bpf_skb_pull_data(skb, len))
		return PARSE_MALFORMED;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	return parse_packet(data, data_end, p);
}

/* Through the skb helpers, not a direct store: the helper knows the skb's checksum state
 * (CHECKSUM_PARTIAL replies must keep only the pseudo-header sum in the field) and keeps a
 * zero UDP checksum zero. */
static __always_inline int tc_rewrite_port(struct __sk_buff *skb, const struct pkt *p, bool dest,
					   __be16 new_port)
{
	__be16 old_port = dest ? p->dport : p->sport;
	__u32 port_off = p->l4_off + (dest ? offsetof(struct tcphdr, dest) : 0);
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
	__u64 csum_flags = sizeof(__be16);
	__u32 old_word = old_port, new_word = new_port;
	__sum16 udp_csum = 0;

	if (p->proto == IPPROTO_UDP) {
		csum_flags |= BPF_F_MARK_MANGLED_0;
		if (bpf_skb_load_bytes(skb, csum_off, &udp_csum, sizeof(udp_csum)))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, csum_flags))
		return -1;
	if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
		return -1;
	/* A checksum update leaves the sum of the whole packet as it was, but a zero UDP
	 * checksum stays zero, so there the sum moves by the port's change: a CHECKSUM_COMPLETE
	 * skb must be told (the helper does nothing for other states). */
	if (p->proto == IPPROTO_UDP && !udp_csum)
		bpf_csum_update(skb, bpf_csum_diff(&old_word, sizeof(old_word), &new_word,
						   sizeof(new_word), 0));
	return 0;
}

/* Carry out the policy's verdict; a rewrite the skb refuses becomes a malformed drop. */
static __always_inline int tc_apply(struct __sk_buff *skb, const struct pkt *p, int verdict,
				    bool ingress, __be16 new_port)
{
	if (verdict == VERDICT_REWRITE && tc_rewrite_port(skb, p, ingress, new_port))
		verdict = VERDICT_DROP_MALFORMED;
	account(p, verdict, ingress, new_port);
	return verdict == VERDICT_DROP_HIDDEN || verdict == VERDICT_DROP_MALFORMED ? TC_ACT_SHOT
										   : TC_ACT_OK;
}

SEC("tcx/ingress")
int bpfredir_tc_in(struct __sk_buff *skb)
{
	struct pkt p = {};
	__be16 new_port = 0;
	int parsed = tc_parse(skb, &p);
	int verdict = ingress_policy(skb, skb->ifindex, parsed, &p, &new_port);

	return tc_apply(skb, &p, verdict, true, new_port);
}

SEC("tcx/egress")
int bpfredir_tc_eg(struct __sk_buff *skb)
{
	struct pkt p = {};
	__be16 new_port = 0;
	int verdict = egress_policy(tc_parse(skb, &p), &p, &new_port);

	return tc_apply(skb, &p, verdict, false, new_port);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
