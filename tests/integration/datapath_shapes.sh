#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Where bpfredir must act and where it must not, with real traffic:
#
# - fragments are judged by what they reassemble to: a SYN whose TCP header is split over
#   IPv4 fragments of 8 or 16 bytes (nmap -f, --mtu 16) gets the kernel's own answer on ports
#   no rule names, is translated on the public port (the checksum fixed in the fragment that
#   holds it) and dropped on the hidden one; IPv6 ones the kernel itself drops (RFC 7112);
# - shapes it does not translate (a frame with more VLAN tags than it rewrites through) on
#   ports no rule names get the kernel's own answer; on a port a rule names they are still
#   dropped;
# - frames for another host seen on the attached device (a macvlan "guest" on it, with
#   forwarding off in the server) are left alone;
# - UDP to the hidden port by 255.255.255.255, 224.0.0.1 or the subnet's broadcast address
#   (which the kernel delivers to a socket on 0.0.0.0) is dropped, with forwarding off and on
#   a forwarding host with a default route;
# - on a forwarding host, an address of a local route that no interface has is this host's;
# - an L3 device (tun: packets start at the IP header) is translated, hidden and, with
#   --reject, answered like an Ethernet one; device types bpfredir cannot parse are refused.
#
#   client 192.0.2.1 (cli0) ---- (srv0) 192.0.2.2  server  [mv0 192.0.2.50: guest, macvlan]
#          2001:db8::1                  2001:db8::2        tun0 198.51.100.1, 2001:db8:1::1
#                                                          (peer .2 / ::2: tunpeer.py)
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

ALL_TESTS="test_controls test_load test_fragments test_fragments_reject test_untranslated_shapes test_guest_frames test_udp_broadcast
	test_l3_devices test_unparsable_devices test_xdp_on_ethernet"
t_depends test_fragments test_load
t_depends test_fragments_reject test_load
t_depends test_untranslated_shapes test_load
t_depends test_guest_frames test_load
t_depends test_udp_broadcast test_load
t_depends test_l3_devices test_load
t_depends test_unparsable_devices test_l3_devices
t_depends test_xdp_on_ethernet test_load

# guest_8445: what the guest's own service on 8445 says to the client.
guest_8445() { "${client[@]}" timeout 5 socat -T 3 - "TCP:$G4:8445" </dev/null 2>&1; }

expect_guest() {
	local got
	expect "$1: curl -> guest $G4:8443 reaches the guest's own 8443" ok "$(url "$G4" 8443)" "${client[@]}"
	got=$(guest_8445)
	if [[ $got == guest-8445 ]]; then
		pass "$1: guest $G4:8445 reaches the guest's own 8445"
	else
		fail "$1: guest $G4:8445 reaches the guest's own 8445" "got '$got'"
	fi
}

# tunpeer ARGS...: the tun helper, in the server namespace.
tunpeer() { in_ns server timeout 30 "$SCAPY_PYTHON" "$T_HELPERS/tunpeer.py" "$@"; }

# tun_answers LOCAL PEER CASE PORT: the answers to one probe from PEER through tun0, one a
# line: "tcp SPORT FLAGS", "udp SPORT echo|payload-differs", "icmp TYPE/CODE QUOTED-DPORT".
# shellcheck disable=SC2016 # jq variables
tun_answers() {
	tunpeer probe "${TUN_DEV:-tun0}" "$1" "$2" "$3" "$4" 2>"$T_TMP/tunpeer.err" | jq -r '.cases[0].answers[]
		| if .proto == "tcp" then "tcp \(.sport) \(.flags)"
		  elif .proto == "udp" then "udp \(.sport) \(if .payload_ok then "echo" else "payload-differs" end)"
		  else "icmp \(.type)/\(.code) \(.dport)" end' 2>>"$T_TMP/tunpeer.err" | paste -sd, -
}

# expect_tun NAME LOCAL PEER CASE PORT WANT
expect_tun() {
	local got
	got=$(tun_answers "$2" "$3" "$4" "$5")
	if [[ $got == "$6" ]]; then
		pass "$1"
	else
		fail "$1" "$4 to $(endpoint "$2" "$5") through ${TUN_DEV:-tun0}: expected '${6:-no answer}', got '${got:-no answer}' $(head -c 200 "$T_TMP/tunpeer.err")"
	fi
}

setup_tests() {
	t_require socat
	t_require_scapy
	t_topology
	netns_add guest
	pin_dir PIN shapes
	P=(--pin-dir "$PIN")
	S4=$SERVER_ADDR
	S6=2001:db8::2
	G4=192.0.2.50
	addr6 client "$CLIENT_IF" 2001:db8::1/64
	addr6 server "$SERVER_IF" "$S6/64"
	https_server server
	server server 9000 tcp socat TCP6-LISTEN:9000,ipv6only=0,fork,reuseaddr SYSTEM:'echo unrelated'
	client=(in_ns client)

	# The guest: a second host on the server's own device, as a container on a macvlan is.
	if ! { ip -n "$(ns server)" link add mv0 link "$SERVER_IF" type macvlan mode bridge &&
		ip -n "$(ns server)" link set mv0 netns "$(ns guest)" &&
		ip -n "$(ns guest)" addr add "$G4/24" dev mv0 &&
		ip -n "$(ns guest)" link set mv0 up; }; then
		t_abort "could not give the guest a macvlan on $SERVER_IF"
	fi
	https_server guest
	server guest 8445 tcp socat TCP-LISTEN:8445,fork,reuseaddr SYSTEM:'echo guest-8445'
}

# --- controls, before bpfredir: the kernel answers every probe used below ------------------
test_controls() {
	raw_probe frag-syn-8 "$S4" 9 frag-syn-8 "$S4" 9000 frag-syn-8 "$S4" 8443 \
		frag-syn-16 "$S4" 9 frag-syn-16 "$S4" 8443 frag-syn-2 "$S4" 8443 \
		frag-syn-8 "$S6" 8443 frag-syn-16 "$S6" 8443 frag-syn "$S6" 8443 \
		syn@ad0,q0,q0,q0 "$S4" 9 syn@ad0,q0,q0,q0 "$S6" 9 syn@ad0,q0,q0,q0 "$S6" 9000
	expect_answer "control, no bpfredir: SYN in 8-byte first fragment to $S4:9 reset" frag-syn-8 "$S4" 9 "tcp 9 RA"
	expect_answer "control, no bpfredir: SYN in 8-byte first fragment to $S4:9000 answered" frag-syn-8 "$S4" 9000 "tcp 9000 SA"
	expect_answer "control, no bpfredir: SYN in 8-byte first fragment to $S4:8443 answered" frag-syn-8 "$S4" 8443 "tcp 8443 SA"
	expect_answer "control, no bpfredir: SYN in 16-byte first fragment to $S4:9 reset" frag-syn-16 "$S4" 9 "tcp 9 RA"
	expect_answer "control, no bpfredir: SYN in 16-byte first fragment to $S4:8443 answered" frag-syn-16 "$S4" 8443 "tcp 8443 SA"
	expect_answer "control, no bpfredir: SYN whose 2-byte first fragment leaves a hole to $S4:8443 never reassembles" frag-syn-2 "$S4" 8443 ""
	expect_quoted "control, no bpfredir: IPv6 SYN in 8-byte first fragment to [$S6]:8443 refused by the kernel with an ICMPv6 error (RFC 7112)" frag-syn-8 "$S6" 8443
	expect_quoted "control, no bpfredir: IPv6 SYN in 16-byte first fragment to [$S6]:8443 refused by the kernel with an ICMPv6 error (RFC 7112)" frag-syn-16 "$S6" 8443
	expect_answer "control, no bpfredir: IPv6 SYN in 24-byte first fragment to [$S6]:8443 answered" frag-syn "$S6" 8443 "tcp 8443 SA"
	for a in "$S4" "$S6"; do
		expect_answer "control, no bpfredir: SYN in 4 priority tags to $(endpoint "$a" 9) reset" \
			syn@ad0,q0,q0,q0 "$a" 9 "tcp 9 RA"
	done
	expect_answer "control, no bpfredir: SYN in 4 priority tags to [$S6]:9000 answered" \
		syn@ad0,q0,q0,q0 "$S6" 9000 "tcp 9000 SA"
	expect_guest "control, no bpfredir"
}

# --- load; forwarding is off in the server (a namespace starts so) -------------------------
test_load() {
	expect_cli_ok "load --iface $SERVER_IF" server load --iface "$SERVER_IF" "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	check "server does not forward (the FIB lookup answers FWD_DISABLED)" \
		"ip_forward is $(in_ns server sysctl -n net.ipv4.ip_forward)" \
		test "$(in_ns server sysctl -n net.ipv4.ip_forward)" = 0
	expect "server: curl -> $S4:8445 reaches its 8443" ok "$(url "$S4" 8445)" "${client[@]}"
	expect "server: curl -> $S4:8443 dropped" dropped "$(url "$S4" 8443)" "${client[@]}"
}

# expect_quoted NAME CASE ADDR PORT: the one answer to the probe of the last raw_probe is an
# ICMP error quoting it (its own source port, PORT).
expect_quoted() {
	local sport
	sport=$(jq -r --arg c "$2" --arg a "$3" --argjson p "$4" \
		'.cases[] | select(.case == $c and .addr == $a and .port == $p) | .sport' <<<"$RAW_OUT" 2>/dev/null)
	expect_answer "$1" "$2" "$3" "$4" "icmp ${sport:-?} $4"
}

# --- fragments: judged by what they reassemble to --------------------------------------------
# mode: the words for the mode the programs run in, for the check names.
frag_checks() {
	local mode=$1 p
	raw_probe frag-syn-8 "$S4" 9 frag-syn-8 "$S4" 9000 frag-syn-8 "$S4" 8443 frag-syn-8 "$S4" 8445 \
		frag-syn-16 "$S4" 9 frag-syn-16 "$S4" 8443 frag-syn-16 "$S4" 8445 \
		frag-syn-2 "$S4" 8443 frag-syn-2 "$S4" 8445 \
		frag-syn-8 "$S6" 8445 frag-syn-16 "$S6" 8445 frag-syn "$S6" 8445 frag-syn "$S6" 8443
	for p in 8 16; do
		expect_answer "$mode: SYN in $p-byte first fragment to unrelated $S4:9 gets the kernel's reset" frag-syn-$p "$S4" 9 "tcp 9 RA"
		expect_answer "$mode: SYN in $p-byte first fragment to public $S4:8445 translated (reassembled with its checksum fixed)" frag-syn-$p "$S4" 8445 "tcp 8445 SA"
		expect_answer "$mode: SYN in $p-byte first fragment to hidden $S4:8443 dropped" frag-syn-$p "$S4" 8443 ""
		expect_quoted "$mode: IPv6 SYN in $p-byte first fragment to public [$S6]:8445 gets the kernel's own ICMPv6 error (RFC 7112)" frag-syn-$p "$S6" 8445
	done
	expect_answer "$mode: SYN in 8-byte first fragment to unrelated $S4:9000 gets the kernel's SYN-ACK" frag-syn-8 "$S4" 9000 "tcp 9000 SA"
	expect_answer "$mode: SYN whose 2-byte first fragment holds no ports, to hidden $S4:8443, never reassembles" frag-syn-2 "$S4" 8443 ""
	expect_answer "$mode: SYN whose 2-byte first fragment holds no ports, to public $S4:8445, never reassembles" frag-syn-2 "$S4" 8445 ""
	expect_answer "$mode: IPv6 SYN in 24-byte first fragment to public [$S6]:8445 translated" frag-syn "$S6" 8445 "tcp 8445 SA"
	expect_answer "$mode: IPv6 SYN in 24-byte first fragment to hidden [$S6]:8443 dropped" frag-syn "$S6" 8443 ""
	check "$mode: no answer to a fragmented probe came from the hidden port 8443" \
		"answers by source: $(jq -c .from_ports <<<"$RAW_OUT" 2>/dev/null)" \
		bash -c '[[ -n $1 ]] && ! jq -e ".from_ports | keys[] | select(endswith(\":8443\"))" <<<"$1" >/dev/null' _ "$RAW_OUT"
}

test_fragments() {
	frag_checks "TC"
}

# udp_echo_5354: a UDP echo on 5354 in the server, started by the first test that needs it.
udp_echo_5354() {
	listening server 5354 udp || server server 5354 udp socat UDP6-RECVFROM:5354,ipv6only=0,fork PIPE
}

# --reject and a fragmented datagram to the hidden port: the kernel answers it, once it has
# reassembled and checked it, exactly as it answers the closed port 9999 (a port
# unreachable quoting the datagram); the hidden port is put back in the quote.
test_fragments_reject() {
	local a
	udp_echo_5354
	expect_cli_ok "add 5353 5354 --proto udp --reject" server add 5353 5354 --proto udp --reject "${P[@]}"
	raw_probe frag-udp "$S4" 5354 frag-udp "$S6" 5354 frag-udp "$S4" 9999 frag-udp "$S6" 9999 \
		frag-udp "$S4" 5353
	for a in "$S4" "$S6"; do
		expect_quoted "TC --reject: fragmented UDP to the closed $(endpoint "$a" 9999): the kernel's port unreachable (control)" frag-udp "$a" 9999
		expect_quoted "TC --reject: fragmented UDP to the hidden $(endpoint "$a" 5354): a port unreachable quoting 5354, as a closed port" frag-udp "$a" 5354
	done
	expect_answer "TC --reject: fragmented UDP to the public $S4:5353 translated and echoed from 5353" frag-udp "$S4" 5353 "udp 5353 echo"
	expect_cli_ok "del 5353 --proto udp" server del 5353 --proto udp "${P[@]}"
}

# --- shapes bpfredir does not translate, on ports no rule names ----------------------------
test_untranslated_shapes() {
	malformed=$(counter server "$PIN" malformed_dropped)
	raw_probe syn@ad0,q0,q0,q0 "$S4" 9 syn@ad0,q0,q0,q0 "$S6" 9 syn@ad0,q0,q0,q0 "$S6" 9000 \
		syn@ad0,q0,q0,q0 "$S4" 8443 syn@ad0,q0,q0,q0 "$S6" 8445
	for a in "$S4" "$S6"; do
		expect_answer "SYN in 4 priority tags to unrelated $(endpoint "$a" 9) gets the kernel's reset" \
			syn@ad0,q0,q0,q0 "$a" 9 "tcp 9 RA"
	done
	expect_answer "SYN in 4 priority tags to unrelated [$S6]:9000 gets the kernel's SYN-ACK" \
		syn@ad0,q0,q0,q0 "$S6" 9000 "tcp 9000 SA"
	expect_answer "SYN in 4 priority tags to hidden $S4:8443 still dropped" syn@ad0,q0,q0,q0 "$S4" 8443 ""
	expect_answer "SYN in 4 priority tags to public [$S6]:8445 still dropped" syn@ad0,q0,q0,q0 "$S6" 8445 ""
	expect_stat_grew "stats: malformed_dropped grew (those on ports of rules)" server "$PIN" malformed_dropped "${malformed:-0}"
}

# --- another host's frames on the attached device -----------------------------------------
test_guest_frames() {
	expect_guest "forwarding off, TC"
}

# udp_to DST PORT TAG [DSTMAC]: one datagram from the client, payload TAG, as a frame to
# DSTMAC or to the MAC address DST calls for; true when the socket on 0.0.0.0:8443 got it.
udp_to() {
	in_ns client timeout 20 "$SCAPY_PYTHON" "$T_HELPERS/udpsend.py" "$CLIENT_IF" "$1" "$2" "$3" \
		${4:+"$4"} || return 2
	wait_for 2 grep -q "$3" "$UDP_LOG"
}

# expect_udp_to NAME DST PORT delivered|dropped [DSTMAC]
expect_udp_to() {
	local tag="probe-$RANDOM-$RANDOM" rc
	udp_to "$2" "$3" "$tag" "${5:-}"
	rc=$?
	if { [[ $4 == delivered ]] && ((rc == 0)); } || { [[ $4 == dropped ]] && ((rc == 1)); }; then
		pass "$1"
	else
		fail "$1" "datagram to $2:$3: expected $4, got $([[ $rc == 0 ]] && echo delivered || ([[ $rc == 1 ]] && echo dropped || echo 'not sent'))"
	fi
}

# expect_udp_hidden WHERE: the hidden port by every way there, and the public port.
expect_udp_hidden() {
	local dst
	for dst in 255.255.255.255 224.0.0.1 192.0.2.255 "$S4"; do
		expect_udp_to "$1: datagram to $dst:8443 (hidden) dropped" "$dst" 8443 dropped
	done
	expect_udp_to "$1: datagram to 192.0.2.255:8443 in a frame to the server's MAC dropped" \
		192.0.2.255 8443 dropped "$SRV_MAC"
	expect_udp_to "$1: datagram to $S4:8445 reaches the socket on 8443" "$S4" 8445 delivered
}

# --- UDP to broadcast and multicast addresses: a socket on 0.0.0.0 gets them ------------------
test_udp_broadcast() {
	UDP_LOG=$T_TMP/udp8443.log
	: >"$UDP_LOG"
	server server 8443 udp socat -u UDP4-RECV:8443 "OPEN:$UDP_LOG,append"
	SRV_MAC=$(ip -n "$(ns server)" -j link show "$SERVER_IF" | jq -r '.[0].address')

	# No UDP rule yet: these reach the socket, so a drop below is bpfredir's doing.
	for dst in 255.255.255.255 224.0.0.1 192.0.2.255 "$S4"; do
		expect_udp_to "control, no udp rule: datagram to $dst:8443 reaches the socket on 0.0.0.0:8443" "$dst" 8443 delivered
	done
	expect_udp_to "control, no udp rule: datagram to 192.0.2.255:8443 in a frame to the server's MAC reaches it" \
		192.0.2.255 8443 delivered "$SRV_MAC"
	expect_cli_ok "add 8445 8443 --proto udp" server add 8445 8443 --proto udp "${P[@]}"
	hidden=$(counter server "$PIN" hidden_dropped)
	expect_udp_hidden "forwarding off"
	# A forwarding host with a default route: the FIB calls 255.255.255.255 and 224.0.0.1
	# forwarded, yet the kernel delivers them.
	in_ns server sysctl -qw net.ipv4.ip_forward=1 || t_abort "could not turn forwarding on in the server"
	ip -n "$(ns server)" route add default via "$CLIENT_ADDR" || t_abort "could not add a default route in the server"
	expect_udp_hidden "forwarding, default route"
	expect_stat_grew "stats: hidden_dropped grew (broadcast, multicast)" server "$PIN" hidden_dropped "${hidden:-0}"
	expect_guest "forwarding on, TC"
	# An address of a local route that no interface has (AnyIP): on a forwarding host only the
	# FIB knows it is this host's. bpf_fib_lookup takes the flags load picked for this kernel
	# (BPF_FIB_LOOKUP_SKIP_NEIGH from 6.3; before, a lookup with it fails and nothing is known).
	ANYIP=203.0.113.7
	ip -n "$(ns server)" route add local 203.0.113.0/24 dev lo &&
		ip -n "$(ns client)" route add 203.0.113.0/24 via "$S4" ||
		t_abort "could not route 203.0.113.0/24 to a local route of the server"
	expect "forwarding on: curl -> $ANYIP:8445 (a local route's, no interface's) reaches 8443" ok \
		"$(url "$ANYIP" 8445)" "${client[@]}"
	hidden=$(counter server "$PIN" hidden_dropped)
	expect "forwarding on: curl -> $ANYIP:8443 dropped" dropped "$(url "$ANYIP" 8443)" "${client[@]}"
	expect_stat_grew "forwarding on: stats: hidden_dropped grew (TC dropped it)" server "$PIN" hidden_dropped "${hidden:-0}"
	# ppp0 below takes 203.0.113.1.
	ip -n "$(ns server)" route del local 203.0.113.0/24 dev lo &&
		ip -n "$(ns client)" route del 203.0.113.0/24 via "$S4" ||
		t_abort "could not remove the routes to 203.0.113.0/24"
}

# A newer build replaces the L3 programs in place too: the tcx links of tun0, the filters
# of tun2.
l3_prog_ids() {
	{
		attached_progs server tun0 | cut -d: -f2,3
		in_ns server tc filter show dev tun2 ingress |
			sed -n 's/.*\(bpfredir_l3_[a-z]*\):\[\([0-9]*\)\].*/\1:\2/p'
	} | sort | paste -sd' ' -
}

# --- an L3 device: tun0, its far side played by tunpeer.py ---------------------------------
test_l3_devices() {
	T4=198.51.100.1 T4P=198.51.100.2 T6=2001:db8:1::1 T6P=2001:db8:1::2
	if ! { tunpeer create tun0 && ip -n "$(ns server)" addr add "$T4/24" dev tun0 &&
		ip -n "$(ns server)" addr add "$T6/64" dev tun0 nodad && ip -n "$(ns server)" link set tun0 up; }; then
		t_abort "could not make the tun device"
	fi
	udp_echo_5354
	# The netns guard keeps 8443 hidden on an interface bpfredir is not attached to: netfilter
	# drops, sk_lookup (a kernel without netfilter links) refuses as a closed port does.
	cli server status --json "${P[@]}"
	GUARD_KIND=$(json_get .guard.kind)
	case $GUARD_KIND in
	netfilter) GUARD_ANSWER="" GUARD_SAYS="no answer" ;;
	sk_lookup) GUARD_ANSWER="tcp 8443 RA" GUARD_SAYS="reset, as a closed port" ;;
	*) GUARD_ANSWER="" GUARD_SAYS="no answer" ;;
	esac
	for fam in "$T4 $T4P" "$T6 $T6P"; do
		read -r l p <<<"$fam"
		expect_tun "control, tun0 not attached: SYN to $(endpoint "$l" 8443): $GUARD_SAYS (the $GUARD_KIND guard)" \
			"$l" "$p" syn 8443 "$GUARD_ANSWER"
		expect_tun "control, tun0 not attached: SYN to $(endpoint "$l" 8445) reset" "$l" "$p" syn 8445 "tcp 8445 RA"
	done
	# A second load adds the interface to the loaded instance.
	expect_cli_ok "load --iface tun0 (added to the loaded instance)" server load --iface tun0 "${P[@]}"
	ATTACHED=$(attached_progs server tun0 | cut -d: -f1,2 | sort | paste -sd' ' -)
	check "tun0 runs the L3 programs" "attached: $ATTACHED" \
		test "$ATTACHED" = "$(tc_kind)/egress:bpfredir_l3_eg $(tc_kind)/ingress:bpfredir_l3_in"
	expect_cli_ok "add 5353 5354 --proto udp" server add 5353 5354 --proto udp "${P[@]}"
	for fam in "$T4 $T4P" "$T6 $T6P"; do
		read -r l p <<<"$fam"
		expect_tun "tun0: SYN to $(endpoint "$l" 8445) answered by SYN-ACK from 8445" "$l" "$p" syn 8445 "tcp 8445 SA"
		expect_tun "tun0: SYN to $(endpoint "$l" 8443) gets no answer" "$l" "$p" syn 8443 ""
		expect_tun "tun0: SYN to unrelated $(endpoint "$l" 9) gets the kernel's reset" "$l" "$p" syn 9 "tcp 9 RA"
		expect_tun "tun0: UDP to $(endpoint "$l" 5353) echoed from 5353" "$l" "$p" udp 5353 "udp 5353 echo"
		expect_tun "tun0: UDP to $(endpoint "$l" 5354) gets no answer" "$l" "$p" udp 5354 ""
	done

	# --reject on tun0: the kernel's answers for a closed port, with no Ethernet header.
	expect_cli_ok "add 9445 9443 --reject" server add 9445 9443 --reject "${P[@]}"
	expect_cli_ok "add 5355 5356 --proto udp --reject" server add 5355 5356 --proto udp --reject "${P[@]}"
	rejected=$(counter server "$PIN" rejected)
	for fam in "$T4 $T4P 3/3" "$T6 $T6P 1/4"; do
		read -r l p icmp <<<"$fam"
		expect_tun "tun0, --reject: SYN to hidden $(endpoint "$l" 9443) reset as by a closed port" "$l" "$p" syn 9443 "tcp 9443 RA"
		expect_tun "tun0, --reject: the kernel's own answer for UDP to closed $(endpoint "$l" 9)" "$l" "$p" udp 9 "icmp $icmp 9"
		expect_tun "tun0, --reject: UDP to hidden $(endpoint "$l" 5356) gets the same port unreachable" "$l" "$p" udp 5356 "icmp $icmp 5356"
	done
	expect_stat_grew "stats: rejected grew (answers through tun0)" server "$PIN" rejected "${rejected:-0}"

	# A tun of PPP's device type: an L3 device too.
	P4=203.0.113.1 P4P=203.0.113.2
	if ! { tunpeer create ppp0 512 && ip -n "$(ns server)" addr add "$P4/24" dev ppp0 &&
		ip -n "$(ns server)" link set ppp0 up; }; then
		t_abort "could not make a tun of device type ppp"
	fi
	expect_cli_ok "load --iface ppp0 (device type ppp)" server load --iface ppp0 "${P[@]}"
	TUN_DEV=ppp0 expect_tun "ppp0: SYN to $P4:8445 answered by SYN-ACK from 8445" "$P4" "$P4P" syn 8445 "tcp 8445 SA"
	TUN_DEV=ppp0 expect_tun "ppp0: SYN to $P4:8443 gets no answer" "$P4" "$P4P" syn 8443 ""

	# --attach tc on an L3 device: the same L3 programs, as cls_bpf filters.
	B6=2001:db8:5::1 B6P=2001:db8:5::2
	if ! { tunpeer create tun2 && ip -n "$(ns server)" addr add "$B6/64" dev tun2 nodad &&
		ip -n "$(ns server)" link set tun2 up; }; then
		t_abort "could not make a third tun device"
	fi
	expect_cli_ok "load --iface tun2 --attach tc" server load --iface tun2 --attach tc "${P[@]}"
	FILTERS=$(in_ns server tc filter show dev tun2 ingress; in_ns server tc filter show dev tun2 egress)
	check "tun2 runs the L3 programs as tc filters" "filters: $FILTERS" \
		eval 'grep -q "bpfredir_l3_in" <<<"$FILTERS" && grep -q "bpfredir_l3_eg" <<<"$FILTERS"'
	TUN_DEV=tun2 expect_tun "tun2 (tc filters): SYN to [$B6]:8445 answered by SYN-ACK from 8445" "$B6" "$B6P" syn 8445 "tcp 8445 SA"
	TUN_DEV=tun2 expect_tun "tun2 (tc filters): SYN to [$B6]:8443 gets no answer" "$B6" "$B6P" syn 8443 ""

	old_ids=$(l3_prog_ids)
	if newer_built "newer build: the L3 programs of tun0 (link) and tun2 (filter) replaced"; then
		cli server load --iface tun0 "${P[@]}" >/dev/null
		CLI_OUT=$(in_ns server "$T_NEWER" load --iface tun0 "${P[@]}" 2>&1)
		new_ids=$(l3_prog_ids)
		check "newer build: the L3 programs of tun0 (link) and tun2 (filter) replaced" \
			"$CLI_OUT; programs $old_ids -> $new_ids" \
			eval '[[ $CLI_OUT == *"programs replaced"* && -n $old_ids && $(wc -w <<<"$new_ids") == 3 ]] &&
				! grep -qwFf <(tr " " "\n" <<<"$old_ids") <<<"$(tr " " "\n" <<<"$new_ids")"'
	fi
	expect_tun "newer build: tun0 still translates" "$T4" "$T4P" syn 8445 "tcp 8445 SA"
	TUN_DEV=tun2 expect_tun "newer build: tun2 still translates" "$B6" "$B6P" syn 8445 "tcp 8445 SA"
}

# --- device types bpfredir cannot parse, and XDP on an L3 device: refused --------------------
test_unparsable_devices() {
	tunpeer create odd0 803 || t_abort "could not make a tun of device type 803"
	tunpeer create gre0 778 || t_abort "could not make a tun of device type 778"
	tunpeer create tun1 || t_abort "could not make a second tun device"
	expect_cli_error "load --iface odd0 (radiotap) refused, naming the interface and its type" 1 \
		'^bpfredir load: interface odd0 has device type 803 \(ieee802\.11/radiotap\), which is neither Ethernet nor plain IP' \
		server load --iface odd0 "${P[@]}"
	expect_cli_error "load --iface gre0 (GRE without a remote) refused" 1 \
		'^bpfredir load: interface gre0 is a GRE device .* without a fixed unicast remote' \
		server load --iface gre0 "${P[@]}"
	expect_cli_error "load --iface tun1 --mode xdp refused: no Ethernet header" 1 \
		'^bpfredir load: interface tun1 has device type 65534 \(none\), no Ethernet header: XDP mode needs one' \
		server load --iface tun1 --mode xdp "${P[@]}"
	CONF=$T_TMP/shapes.conf
	printf 'interface %s\ninterface tun0\ninterface odd0\nrule 8445 8443\n' "$SERVER_IF" >"$CONF"
	expect_cli_error "apply with odd0 refused at its line" 1 \
		"^bpfredir apply: $CONF:3:11: interface 'odd0' has device type 803" server apply -f "$CONF" "${P[@]}"
	check "nothing attached to odd0, gre0 or tun1" "attached: $(attached_progs server odd0; attached_progs server gre0; attached_progs server tun1)" \
		test -z "$(attached_progs server odd0; attached_progs server gre0; attached_progs server tun1)"
	expect "after the refusals: curl -> $S4:8445 still reaches its 8443" ok "$(url "$S4" 8445)" "${client[@]}"
	expect_tun "after the refusals: tun0 still translates" "$T4" "$T4P" syn 8445 "tcp 8445 SA"

	# apply keeps tun0 (and adds tun1) with the L3 programs.
	printf 'interface %s\ninterface tun0\ninterface tun1\nrule 8445 8443\n' "$SERVER_IF" >"$CONF"
	expect_cli_ok "apply with srv0, tun0 and tun1" server apply -f "$CONF" "${P[@]}"
	ATTACHED=$(attached_progs server tun1 | cut -d: -f1,2 | sort | paste -sd' ' -)
	check "apply attached the L3 programs to tun1" "attached: $ATTACHED" \
		test "$ATTACHED" = "$(tc_kind)/egress:bpfredir_l3_eg $(tc_kind)/ingress:bpfredir_l3_in"
	expect_tun "after apply: tun0 still translates" "$T4" "$T4P" syn 8445 "tcp 8445 SA"
}

# --- XDP mode on the Ethernet device: the guest's frames are left alone there too -----------
test_xdp_on_ethernet() {
	expect_cli_ok "unload" server unload "${P[@]}"
	in_ns server sysctl -qw net.ipv4.ip_forward=0 || t_abort "could not turn forwarding off in the server"
	expect_cli_ok "load --iface $SERVER_IF --mode xdp --xdp-generic" server load --iface "$SERVER_IF" --mode xdp --xdp-generic "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	expect "XDP: curl -> $S4:8445 reaches its 8443" ok "$(url "$S4" 8445)" "${client[@]}"
	expect "XDP: curl -> $S4:8443 dropped" dropped "$(url "$S4" 8443)" "${client[@]}"
	expect_guest "forwarding off, XDP"
	frag_checks "XDP generic"
	expect_cli_ok "unload (XDP)" server unload "${P[@]}"
	expect_cli_ok "load --iface $SERVER_IF --mode xdp (native)" server load --iface "$SERVER_IF" --mode xdp "${P[@]}"
	expect_cli_ok "add 8445 8443 (native XDP)" server add 8445 8443 "${P[@]}"
	frag_checks "XDP native"
	expect_cli_ok "unload (native XDP)" server unload "${P[@]}"
}

t_run_tests datapath_shapes "$@"
