#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The packet datapath with real traffic: IPv6 clients, UDP rules, packet shapes crafted with
# scapy (IPv4 fragments and options, IPv6 extension header chains, VLAN tag stacks),
# forwarding through a router running bpfredir, and bulk transfers under every veth offload
# setting.
# Every attempt at a hidden port is watched by a sniffer on the client: nothing at all may
# come back from it (no SYN-ACK, RST, datagram or ICMP error). Controls first show that,
# without bpfredir, the kernel answers every crafted shape used.
#
#   client 192.0.2.1    (cli0) ---- (srv0) 192.0.2.2    server ---- (srv1) 198.51.100.1   backend
#          2001:db8::1                     2001:db8::2  (router)           2001:db8:1::1  (bk0) .2, ::2
#
# Server: HTTPS (openssl s_server) on 8443, UDP echo (socat) on 5354, TCP echo (xfer.py)
# on 9443; rules 8445->8443, udp 5353->5354, 9445->9443. Backend: HTTPS on 8443.
# Tags are tested as tagged frames on the wire (priority tags, id 0, which the stack accepts
# untagged); VLAN subinterfaces are not, as this project's kernel has no VLAN devices
# (CONFIG_VLAN_8021Q). The SYN flood is in datapath_flood.sh.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

XFER_BYTES=$((5 * 1024 * 1024))
STARTED=$SECONDS

ALL_TESTS="test_controls test_load test_ipv6_clients test_crafted_packets test_udp_sockets
	test_forwarding test_offloads test_vlan_tags"
t_depends test_ipv6_clients test_load
t_depends test_crafted_packets test_load
t_depends test_udp_sockets test_load
t_depends test_forwarding test_load
t_depends test_offloads test_load
t_depends test_vlan_tags test_load

# raw_from PROTO ADDR PORT: how many PROTO packets came from ADDR:PORT during the probe.
# shellcheck disable=SC2016
raw_from() { jq -r --arg k "$1 $(endpoint "$2" "$3")" '.from_ports[$k] // 0' <<<"$RAW_OUT"; }

# raw_true FILTER: the last probe's JSON satisfies the jq FILTER.
raw_true() { jq -e "$1" <<<"$RAW_OUT" >/dev/null 2>&1; }

# expect_silent NAME CASE ADDR PORT [PROTO]: no answer at all to the probe, and not one
# PROTO (default: the probe's) packet from ADDR:PORT while the probes ran.
# expect_refused NAME CASE ADDR PORT: the probe's only answer is an ICMP error (the kernel's
# about a packet it refuses whatever the port), and no TCP packet came from ADDR:PORT.
expect_refused() {
	local got from
	if [[ -z $RAW_OUT ]]; then
		fail "$1" "$RAW_ERR"
		return
	fi
	got=$(raw_answers "$2" "$3" "$4" | paste -sd, -)
	from=$(raw_from tcp "$3" "$4")
	if [[ $got == icmp\ * && $got != *,* && $from == 0 ]]; then
		pass "$1"
	else
		fail "$1" "$2 to $(endpoint "$3" "$4"): expected one ICMP error, got '${got}', $from tcp packets from $(endpoint "$3" "$4")"
	fi
}

expect_silent() {
	local got proto=${5:-tcp} from
	[[ -n ${5:-} || $2 != *udp* ]] || proto=udp
	if [[ -z $RAW_OUT ]]; then
		fail "$1" "$RAW_ERR"
		return
	fi
	got=$(raw_answers "$2" "$3" "$4" | paste -sd, -)
	from=$(raw_from "$proto" "$3" "$4")
	if [[ -z $got && $from == 0 ]]; then
		pass "$1"
	else
		fail "$1" "$2 to $(endpoint "$3" "$4"): expected no answer, got '${got}', $from $proto packets from $(endpoint "$3" "$4")"
	fi
}

# expect_no_answer NAME CASE ADDR PORT: no answer to this probe (other probes of the batch
# may be answered from the same port).
expect_no_answer() { expect_answer "$@" ""; }

# udp_ask NS ADDR PORT: one datagram from an unconnected socket (it takes a reply from any
# port; helpers/udp_ask.py); prints the reply's "source-port echo|payload-differs", or "none"
# after 1.5 s.
udp_ask() {
	in_ns "$1" timeout 10 "$SCAPY_PYTHON" "$T_HELPERS/udp_ask.py" "$2" "$3"
}

expect_udp() {
	local got
	got=$(udp_ask client "$2" "$3" 2>&1)
	expect_eq "$1" "$4" "$got" "datagram to $(endpoint "$2" "$3")"
}

# set_offloads NS IF FEATURE on|off ...: ethtool -K; features the kernel cannot have in
# that combination are left as it fixes them (see offload_state).
set_offloads() {
	local n=$1 dev=$2
	shift 2
	in_ns "$n" ethtool -K "$dev" "$@" >/dev/null 2>"$T_TMP/ethtool.err" ||
		t_abort "ethtool -K $dev $* in $n failed: $(head -c 300 "$T_TMP/ethtool.err")"
}

# offload_state NS IF: the veth's actual TSO (TCP v4/v6 segmentation), GSO, GRO, TX and RX
# checksum settings, as one word.
offload_state() {
	in_ns "$1" ethtool -k "$2" 2>/dev/null | awk -F': ' '
		{ sub(/^[ \t]+/, "", $1); split($2, v, " "); f[$1] = v[1] }
		END { printf "tso=%s,gso=%s,gro=%s,tx-csum=%s,rx-csum=%s\n",
			f["tx-tcp-segmentation"] == "on" && f["tx-tcp6-segmentation"] == "on" ? "on" : "off",
			f["generic-segmentation-offload"], f["generic-receive-offload"],
			f["tx-checksumming"], f["rx-checksumming"] }'
}

setup_tests() {
	t_require socat ethtool sha256sum
	t_require_scapy
	t_topology
	netns_add backend
	veth server srv1 198.51.100.1/24 backend bk0 198.51.100.2/24

	S4=$SERVER_ADDR
	S6=2001:db8::2
	R4=198.51.100.1 # the router's (server's) backend-facing address
	R6=2001:db8:1::1
	B4=198.51.100.2
	B6=2001:db8:1::2

	addr6 client "$CLIENT_IF" 2001:db8::1/64
	addr6 server "$SERVER_IF" "$S6/64"
	addr6 server srv1 "$R6/64"
	addr6 backend bk0 "$B6/64"
	ip -n "$(ns client)" route add 198.51.100.0/24 via "$S4" || t_abort "client route"
	ip -n "$(ns client)" -6 route add 2001:db8:1::/64 via "$S6" || t_abort "client route6"
	ip -n "$(ns backend)" route add default via "$R4" || t_abort "backend route"
	ip -n "$(ns backend)" -6 route add default via "$R6" || t_abort "backend route6"
	in_ns server sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
		t_abort "could not turn forwarding on in the server"
	pin_dir PIN datapath
	P=(--pin-dir "$PIN")
	https_server server
	https_server backend
	server server 5354 udp socat UDP6-RECVFROM:5354,ipv6only=0,fork PIPE
	server server 9443 tcp "$SCAPY_PYTHON" "$T_HELPERS/xfer.py" serve 9443
	client=(in_ns client)

	# --- helpers -------------------------------------------------------------------------------
}

# --- controls: without bpfredir every probe below is answered ------------------------------
# So a silent hidden port later is bpfredir's doing, not a probe the kernel ignores anyway.
# (frag-syn-2 and frag-udp-2 never reassemble, and IPv6 refuses a first fragment without
# the whole TCP header, bpfredir or not: those are only checked for silence.)
test_controls() {
	raw_probe syn "$S4" 8443 frag-syn "$S4" 8443 frag-syn-8 "$S4" 8443 ipopt-syn "$S4" 8443 \
		udp "$S4" 5354 frag-udp "$S4" 5354 \
		syn "$S6" 8443 frag-syn "$S6" 8443 ext2-syn "$S6" 8443 ext9-syn "$S6" 8443 \
		udp "$S6" 5354 frag-udp "$S6" 5354 ext9-udp "$S6" 5354 \
		syn@ad0,q0,q0,q0 "$S4" 8443 syn@ad0,q0,q0,q0 "$S6" 8443
	for probe in syn frag-syn frag-syn-8 ipopt-syn; do
		expect_answer "control, no bpfredir: $probe to $S4:8443 answered" "$probe" "$S4" 8443 "tcp 8443 SA"
	done
	for probe in syn frag-syn ext2-syn ext9-syn; do
		expect_answer "control, no bpfredir: $probe to [$S6]:8443 answered" "$probe" "$S6" 8443 "tcp 8443 SA"
	done
	for a in "$S4" "$S6"; do
		expect_answer "control, no bpfredir: udp to $(endpoint "$a" 5354) echoed" udp "$a" 5354 "udp 5354 echo"
		expect_answer "control, no bpfredir: frag-udp to $(endpoint "$a" 5354) echoed" frag-udp "$a" 5354 "udp 5354 echo"
	done
	expect_answer "control, no bpfredir: ext9-udp to [$S6]:5354 echoed" ext9-udp "$S6" 5354 "udp 5354 echo"
	for a in "$S4" "$S6"; do
		expect_answer "control, no bpfredir: SYN in 4 priority tags to $(endpoint "$a" 8443) answered" \
			syn@ad0,q0,q0,q0 "$a" 8443 "tcp 8443 SA"
	done
}

# --- load on the router's client-facing interface ---------------------------------------
test_load() {
	expect_cli_ok "load --iface $SERVER_IF" server load --iface "$SERVER_IF" "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	expect_cli_ok "add 5353 5354 --proto udp" server add 5353 5354 --proto udp "${P[@]}"
	expect_cli_ok "add 9445 9443" server add 9445 9443 "${P[@]}"
	malformed=$(counter server "$PIN" malformed_dropped)
	hidden=$(counter server "$PIN" hidden_dropped)
}

# --- IPv6 clients -----------------------------------------------------------------------
test_ipv6_clients() {
	expect "IPv6: curl -> [$S6]:8445 reaches 8443" ok "$(url "$S6" 8445)" "${client[@]}"
	expect "IPv6: curl -> [$S6]:8443 dropped" dropped "$(url "$S6" 8443)" "${client[@]}"
}

# --- crafted packets, IPv6 and IPv4 -------------------------------------------------------
test_crafted_packets() {
	raw_probe syn "$S6" 8445 syn "$S6" 8443 \
		ext2-syn "$S6" 8445 ext2-syn "$S6" 8443 ext8-syn "$S6" 8445 ext8-syn "$S6" 8443 \
		ext9-syn "$S6" 8443 ext9-syn "$S6" 8445 ext9-udp "$S6" 5354 \
		frag-syn "$S6" 8443 frag-syn-8 "$S6" 8443 frag-syn-2 "$S6" 8443 \
		udp "$S6" 5353 udp "$S6" 5354 frag-udp "$S6" 5353 frag-udp "$S6" 5354 frag-udp-2 "$S6" 5354 \
		syn "$S4" 8445 syn "$S4" 8443 ipopt-syn "$S4" 8445 ipopt-syn "$S4" 8443 \
		frag-syn "$S4" 8443 frag-syn-8 "$S4" 8443 frag-syn-2 "$S4" 8443 \
		udp "$S4" 5353 udp "$S4" 5354 frag-udp "$S4" 5353 frag-udp "$S4" 5354 frag-udp-2 "$S4" 5354
	expect_answer "IPv6: SYN to :8445 answered by SYN-ACK from 8445" syn "$S6" 8445 "tcp 8445 SA"
	expect_silent "IPv6: SYN to :8443 gets no answer at all" syn "$S6" 8443
	expect_answer "IPv6: hop-by-hop + dest-opts SYN to :8445 answered from 8445" ext2-syn "$S6" 8445 "tcp 8445 SA"
	expect_silent "IPv6: hop-by-hop + dest-opts SYN to :8443 not answered" ext2-syn "$S6" 8443
	expect_answer "IPv6: 8 extension headers, SYN to :8445 answered from 8445" ext8-syn "$S6" 8445 "tcp 8445 SA"
	expect_silent "IPv6: 8 extension headers, SYN to :8443 not answered" ext8-syn "$S6" 8443
	expect_silent "IPv6: 9 extension headers, SYN to :8443 not answered" ext9-syn "$S6" 8443
	expect_no_answer "IPv6: 9 extension headers, SYN to :8445 dropped as malformed" ext9-syn "$S6" 8445
	expect_silent "IPv6: 9 extension headers, UDP to :5354 not answered" ext9-udp "$S6" 5354
	expect_silent "IPv6: fragmented SYN to :8443 (ports in first fragment) not answered" frag-syn "$S6" 8443
	expect_refused "IPv6: fragmented SYN to :8443, TCP header cut short in first fragment, gets only the kernel's ICMPv6 error, as every port does (RFC 7112)" frag-syn-8 "$S6" 8443
	expect_refused "IPv6: fragmented SYN to :8443, no ports in first fragment, gets only the kernel's ICMPv6 error, as every port does (RFC 7112)" frag-syn-2 "$S6" 8443
	expect_answer "IPv6: UDP to :5353 echoed from 5353" udp "$S6" 5353 "udp 5353 echo"
	expect_silent "IPv6: UDP to :5354 not answered" udp "$S6" 5354
	expect_answer "IPv6: fragmented UDP to :5353 reassembled, echoed from 5353" frag-udp "$S6" 5353 "udp 5353 echo"
	expect_silent "IPv6: fragmented UDP to :5354 not answered" frag-udp "$S6" 5354
	expect_silent "IPv6: fragmented UDP to :5354, no ports in first fragment, not answered" frag-udp-2 "$S6" 5354
	expect_answer "IPv4: SYN to :8445 answered by SYN-ACK from 8445" syn "$S4" 8445 "tcp 8445 SA"
	expect_silent "IPv4: SYN to :8443 gets no answer at all" syn "$S4" 8443
	expect_answer "IPv4: SYN with IP options (NOP, record route) to :8445 answered from 8445" ipopt-syn "$S4" 8445 "tcp 8445 SA"
	check "IPv4: that SYN-ACK carries the echoed IP options too (rewritten behind ihl > 5)" \
		"answers: $(jq -c '.cases[] | select(.case == "ipopt-syn" and .port == 8445) | .answers' <<<"$RAW_OUT" 2>/dev/null)" \
		raw_true '[.cases[] | select(.case == "ipopt-syn" and .port == 8445) | .answers[]
			| select(.sport == 8445 and .ihl > 5)] | length > 0'
	expect_silent "IPv4: SYN with IP options to :8443 not answered" ipopt-syn "$S4" 8443
	expect_silent "IPv4: fragmented SYN to :8443 (ports in first fragment) not answered" frag-syn "$S4" 8443
	expect_silent "IPv4: fragmented SYN to :8443, TCP header cut short in first fragment, not answered" frag-syn-8 "$S4" 8443
	expect_silent "IPv4: fragmented SYN to :8443, no ports in first fragment, not answered" frag-syn-2 "$S4" 8443
	expect_answer "IPv4: UDP to :5353 echoed from 5353" udp "$S4" 5353 "udp 5353 echo"
	expect_silent "IPv4: UDP to :5354 not answered" udp "$S4" 5354
	expect_answer "IPv4: fragmented UDP to :5353 reassembled, echoed from 5353" frag-udp "$S4" 5353 "udp 5353 echo"
	expect_silent "IPv4: fragmented UDP to :5354 not answered" frag-udp "$S4" 5354
	expect_silent "IPv4: fragmented UDP to :5354, no ports in first fragment, not answered" frag-udp-2 "$S4" 5354
	expect_stat_grew "stats: malformed_dropped grew (long IPv6 chain, cut-short first fragments)" \
		server "$PIN" malformed_dropped "${malformed:-0}"
	expect_stat_grew "stats: hidden_dropped grew" server "$PIN" hidden_dropped "${hidden:-0}"
}

# --- UDP with real sockets: the reply's source port --------------------------------------
test_udp_sockets() {
	for a in "$S4" "$S6"; do
		expect_udp "UDP socket: datagram to $(endpoint "$a" 5353) answered from port 5353" "$a" 5353 "5353 echo"
		expect_udp "UDP socket: datagram to $(endpoint "$a" 5354) gets nothing" "$a" 5354 none
	done
}

# --- forwarding: the router's own ports change, the backend's do not -----------------------
test_forwarding() {
	for a in "$B4" "$B6"; do
		expect "forwarded: client -> backend $(endpoint "$a" 8443) reaches the backend's service" ok "$(url "$a" 8443)" "${client[@]}"
		expect "forwarded: client -> backend $(endpoint "$a" 8445) refused by the backend" refused "$(url "$a" 8445)" "${client[@]}"
	done
	for a in "$S4" "$R4" "$S6" "$R6"; do
		expect "router: client -> own $(endpoint "$a" 8445) redirected to its 8443" ok "$(url "$a" 8445)" "${client[@]}"
	done
	raw_probe syn "$B4" 8443 syn "$B4" 8445 syn "$R4" 8443 syn "$B6" 8443 syn "$B6" 8445 syn "$R6" 8443
	for a in "$B4" "$B6"; do
		expect_answer "forwarded: SYN to backend $(endpoint "$a" 8443) answered by the backend from 8443" syn "$a" 8443 "tcp 8443 SA"
		expect_answer "forwarded: SYN to backend $(endpoint "$a" 8445) reset by the backend from 8445" syn "$a" 8445 "tcp 8445 RA"
	done
	for a in "$R4" "$R6"; do
		expect_silent "router: SYN to own $(endpoint "$a" 8443) (other interface's address) not answered" syn "$a" 8443
	done
}

# --- offloads: 5 MB each way through the redirect, byte-identical --------------------------
# First, that a checksum bpfredir got wrong would show: with checksum offloads off, the
# server verifies every segment, so a rewritten SYN whose checksum was wrong to begin with
# is dropped and counted.
test_offloads() {
	set_offloads client "$CLIENT_IF" tso off gso off gro off tx off rx off
	set_offloads server "$SERVER_IF" tso off gso off gro off tx off rx off
	csum_before=$(csum_errors server)
	raw_probe badsum-syn "$S4" 9445 badsum-syn "$S6" 9445 syn "$S4" 9445
	expect_answer "offloads off: a good SYN to :9445 answered from 9445" syn "$S4" 9445 "tcp 9445 SA"
	for a in "$S4" "$S6"; do
		expect_no_answer "offloads off: a SYN with a bad checksum to $(endpoint "$a" 9445) is not answered" \
			badsum-syn "$a" 9445
	done
	csum_after=$(csum_errors server)
	check "offloads off: the server counted both bad checksums (it verifies rewritten segments)" \
		"InCsumErrors went from $csum_before to $csum_after" test "$csum_after" -ge $((csum_before + 2))
	list_json server "$PIN"
	xfer_rewritten=$(json_get '.rules[] | select(.public_port == 9445) | .stats.rewritten')
	xfer_replies=$(json_get '.rules[] | select(.public_port == 9445) | .stats.reverse_rewritten')
	csum_before=$(($(csum_errors client) + $(csum_errors server)))
	declare -gA tried=()
	features=(tso gso gro tx rx)
	xfer_start=$SECONDS
	for ((m = 0; m < 32; m++)); do
		args=()
		for ((i = 0; i < 5; i++)); do
			args+=("${features[i]}" "$( ((m >> i & 1)) && echo on || echo off)")
		done
		set_offloads client "$CLIENT_IF" "${args[@]}"
		set_offloads server "$SERVER_IF" "${args[@]}"
		state=$(offload_state server "$SERVER_IF")
		# tx-csum off forces tso off: skip what the kernel made a repeat.
		[[ -z ${tried[$state]:-} ]] || continue
		tried[$state]=1
		[[ $(offload_state client "$CLIENT_IF") == "$state" ]] ||
			fail "offloads: both veths set alike" "client $(offload_state client "$CLIENT_IF"), server $state"
		r4=$(xfer "$S4" 9445)
		r6=$(xfer "$S6" 9445)
		if [[ $r4 == ok && $r6 == ok ]]; then
			pass "offloads $state: 5 MB echoed through :9445 byte-identical, IPv4 and IPv6"
		else
			fail "offloads $state: 5 MB echoed through :9445" "IPv4: $r4; IPv6: $r6"
		fi
	done
	printf '# offloads: %d distinct settings, 2 x 2 x 5 MB each, in %d s\n' "${#tried[@]}" $((SECONDS - xfer_start))
	csum_after=$(($(csum_errors client) + $(csum_errors server)))
	check "offloads: no TCP/UDP checksum errors counted in client or server" \
		"InCsumErrors went from $csum_before to $csum_after" test "$csum_after" -eq "$csum_before"
	list_json server "$PIN"
	now=$(json_get '.rules[] | select(.public_port == 9445) | "\(.stats.rewritten) \(.stats.reverse_rewritten)"')
	check "offloads: the transfers went through the 9445 rule both ways" \
		"rewritten/reverse_rewritten went from ${xfer_rewritten:-?}/${xfer_replies:-?} to ${now/ //}" \
		test "${now% *}" -gt $((${xfer_rewritten:-0} + 1000)) -a "${now#* }" -gt $((${xfer_replies:-0} + 1000))
	set_offloads client "$CLIENT_IF" tso on gso on gro off tx on rx on
	set_offloads server "$SERVER_IF" tso on gso on gro off tx on rx on
}

# --- VLAN tags on the wire, bpfredir on the untagged veth --------------------------------
# Priority tags (VLAN id 0) need no VLAN device: the stack strips them and delivers, so the
# answers show what bpfredir did. The outermost tag is moved out of the frame before TC
# ingress; the ones inside stay in the frame for the parser to skip (two at most).
test_vlan_tags() {
	tags_probes=()
	for tags in q0 ad0,q0 ad0,q0,q0; do
		for a in "$S4" "$S6"; do
			tags_probes+=(syn@"$tags" "$a" 8445 syn@"$tags" "$a" 8443 udp@"$tags" "$a" 5353
				udp@"$tags" "$a" 5354)
		done
	done
	raw_probe "${tags_probes[@]}" syn@ad0,q0,q0,q0 "$S4" 8443 syn@ad0,q0,q0,q0 "$S4" 8445 \
		syn@ad0,q0,q0,q0 "$S6" 8443 udp@ad0,q0,q0,q0 "$S6" 5354
	for tags in q0 ad0,q0 ad0,q0,q0; do
		case $tags in
		q0) what="one 802.1Q tag" ;;
		ad0,q0) what="802.1ad + 802.1Q tags (one in the frame at TC)" ;;
		*) what="three tags (two in the frame at TC)" ;;
		esac
		for a in "$S4" "$S6"; do
			expect_answer "tagged, $what: SYN to $(endpoint "$a" 8445) answered from 8445" \
				syn@"$tags" "$a" 8445 "tcp 8445 SA"
			expect_silent "tagged, $what: SYN to $(endpoint "$a" 8443) not answered" syn@"$tags" "$a" 8443
			expect_answer "tagged, $what: UDP to $(endpoint "$a" 5353) echoed from 5353" \
				udp@"$tags" "$a" 5353 "udp 5353 echo"
			expect_silent "tagged, $what: UDP to $(endpoint "$a" 5354) not answered" udp@"$tags" "$a" 5354
		done
	done
	expect_silent "tagged, four tags (three in the frame): SYN to $S4:8443 not answered" \
		syn@ad0,q0,q0,q0 "$S4" 8443
	expect_silent "tagged, four tags: SYN to [$S6]:8443 not answered" syn@ad0,q0,q0,q0 "$S6" 8443
	expect_silent "tagged, four tags: UDP to [$S6]:5354 not answered" udp@ad0,q0,q0,q0 "$S6" 5354
	expect_no_answer "tagged, four tags: SYN to $S4:8445 dropped as malformed" syn@ad0,q0,q0,q0 "$S4" 8445

	expect_cli_ok "unload" server unload "${P[@]}"

	printf '# datapath_traffic ran in %d s\n' $((SECONDS - STARTED))
}

t_run_tests datapath_traffic "$@"
