// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The device-type mapping of loader/iface.h: which interfaces get the Ethernet programs,
 * which the L3 ones, and which are refused. Real devices of most of these types cannot be
 * made here (no GRE, IP tunnels or WireGuard in this kernel): datapath_shapes.sh attaches to
 * tun devices of the types a tun can take.
 */
#include <stdio.h>
#include <string.h>
#include "iface.h"
#include "harness.h"

struct icase {
	const char *name;
	__u16 type;
	__u8 remote[16];
	size_t remote_len;
	int want;
};

/* clang-format off */
static const struct icase cases[] = {
	{ "ethernet (veth, bridge, bond, vlan, macvlan, ipvlan)", ARPHRD_ETHER, {}, 6,
	  IFACE_KIND_ETHER },
	{ "loopback", ARPHRD_LOOPBACK, {}, 6, IFACE_KIND_ETHER },
	{ "none (tun, wireguard)", ARPHRD_NONE, {}, 0, IFACE_KIND_L3 },
	{ "rawip", ARPHRD_RAWIP, {}, 0, IFACE_KIND_L3 },
	{ "ppp", ARPHRD_PPP, {}, 0, IFACE_KIND_L3 },
	{ "ipip", ARPHRD_TUNNEL, { 203, 0, 113, 1 }, 4, IFACE_KIND_L3 },
	{ "ip6tnl", ARPHRD_TUNNEL6, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, 16, IFACE_KIND_L3 },
	{ "sit", ARPHRD_SIT, {}, 4, IFACE_KIND_L3 },
	{ "gre with a unicast remote", ARPHRD_IPGRE, { 203, 0, 113, 1 }, 4, IFACE_KIND_L3 },
	{ "gre without a remote", ARPHRD_IPGRE, {}, 4, -EADDRNOTAVAIL },
	{ "gre with a multicast remote", ARPHRD_IPGRE, { 239, 1, 2, 3 }, 4, -EADDRNOTAVAIL },
	{ "gre without a broadcast address at all", ARPHRD_IPGRE, {}, 0, -EADDRNOTAVAIL },
	{ "ip6gre with a remote", ARPHRD_IP6GRE, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, 16,
	  IFACE_KIND_L3 },
	{ "ip6gre without a remote", ARPHRD_IP6GRE, {}, 16, -EADDRNOTAVAIL },
	{ "infiniband", ARPHRD_INFINIBAND, {}, 20, -EPROTONOSUPPORT },
	{ "ieee802.11 radiotap", ARPHRD_IEEE80211_RADIOTAP, {}, 6, -EPROTONOSUPPORT },
	{ "can", ARPHRD_CAN, {}, 0, -EPROTONOSUPPORT },
	{ "void", ARPHRD_VOID, {}, 0, -EPROTONOSUPPORT },
};
/* clang-format on */

void test_iface_kind(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!test__start_subtest("iface: %s", cases[i].name))
			continue;
		ASSERT_EQ(iface_kind_of(cases[i].type, cases[i].remote, cases[i].remote_len),
			  cases[i].want, "kind");
	}
}
