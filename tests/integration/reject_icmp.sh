#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# --reject against the kernel itself, and ICMP errors that quote a translated flow.
#
# Reject: the same probes (fixed bytes, from rejectprobe.py) go first to ports where nothing
# listens and no rule exists, and the kernel answers; then a service listens there, bpfredir
# hides the port with --reject, and bpfredir answers. The answers must be the same frames,
# byte for byte, except the fields the kernel itself does not keep fixed:
#   - IPv4 ICMP: the IP ID (no DF, so the kernel takes it from a counter per address pair
#     that grows by 1 and a random amount) and so the IP header checksum. bpfredir goes on
#     from the last ID the kernel used for the peer: checked to be a little above the ID of
#     the kernel's port unreachable for a closed port sent just before;
#   - IPv6 RST: the flow label, which the kernel makes from a hash of the answer's flow
#     (ports included) keyed with a secret picked at boot (ip6_make_flowlabel).
# The ICMPv6 flow label must match too: the kernel's is the same for every port of a peer,
# and bpfredir takes it from the kernel's own port unreachable for a closed port, sent
# just before.
# A RST gets no answer from either. The ICMP rate limit is compared too: a burst of
# datagrams from a fresh source gets as many errors from bpfredir at the hidden port as
# from the kernel at a closed one.
#
#   client 192.0.2.1 2001:db8::1 (cli0) ---- (srv0) 192.0.2.2 2001:db8::2 server
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

PROBE="$T_HELPERS/rejectprobe.py"

ALL_TESTS="test_reject_tc test_reject_config test_icmp_rate_limit
	test_reject_xdp test_pmtu test_egress_port_unreachable test_no_programs_left"
t_depends test_reject_config test_reject_tc
t_depends test_icmp_rate_limit test_reject_tc
t_depends test_reject_xdp test_icmp_rate_limit
t_depends test_egress_port_unreachable test_pmtu

# probe NS SRC DST PORT CASE OUTFILE: one probe, its answers as JSON in OUTFILE.
probe_to() {
	in_ns client timeout 30 "$SCAPY_PYTHON" "$PROBE" "$CLIENT_IF" "$1" "$2" "$3" "$4" \
		>"$5" 2>"$T_TMP/probe.err" || echo '{"error": "probe failed"}' >"$5"
}

# run_cases ROUND: every case probed (one scapy process for them all), each one's answers in
# $T_TMP/ROUND-NAME.json.
run_cases() {
	local c name src dst port kind
	for c in "${CASES[@]}"; do
		read -r name src dst port kind <<<"$c"
		echo '{"error": "probe failed"}' >"$T_TMP/$1-$name.json"
		printf '%s %s %s %s %s\n' "$src" "$dst" "$port" "$kind" "$T_TMP/$1-$name.json"
	done | in_ns client timeout 120 "$SCAPY_PYTHON" "$PROBE" "$CLIENT_IF" --batch \
		2>"$T_TMP/probe.err"
}

# compare NAME [LABEL]: the kernel's and bpfredir's answers to probe NAME, field by field
# (helpers/reject_compare.py).
compare() {
	local out
	if out=$("$SCAPY_PYTHON" "$T_HELPERS/reject_compare.py" "$T_TMP/kernel-$1.json" \
		"$T_TMP/bpfredir-$1.json" "$T_TMP/closed4.json" 2>"$T_TMP/compare.err"); then
		pass "${2:+$2: }reject $1: bpfredir's answer is the kernel's ($out)"
	else
		fail "${2:+$2: }reject $1" "$out $(cat "$T_TMP/compare.err")"
	fi
}

# burst SRC DST PORT: send 10 datagrams at once from SRC; prints how many ICMP errors came.
burst() {
	in_ns client timeout 30 "$SCAPY_PYTHON" "$T_HELPERS/udp_burst.py" "$CLIENT_IF" "$@"
}

setup_tests() {
	t_require socat sha256sum ethtool xdp-filter
	t_require_scapy
	t_topology
	addr6 client "$CLIENT_IF" 2001:db8::1/64
	addr6 server "$SERVER_IF" 2001:db8::2/64
	pin_dir PIN reject
	P=(--pin-dir "$PIN")

	C4=$CLIENT_ADDR
	S4=$SERVER_ADDR
	C6=2001:db8::1
	S6=2001:db8::2
	UDP_TARGET=5354

	# The cases: "name src dst port case".
	CASES=(
		"v4-syn $C4 $S4 $TARGET_PORT syn"
		"v4-ack $C4 $S4 $TARGET_PORT ack"
		"v4-rst $C4 $S4 $TARGET_PORT rst"
		"v4-udp $C4 $S4 $UDP_TARGET udp"
		"v4-badsum-syn $C4 $S4 $TARGET_PORT badsum-syn"
		"v4-badsum-udp $C4 $S4 $UDP_TARGET badsum-udp"
		"v6-syn $C6 $S6 $TARGET_PORT syn"
		"v6-ack $C6 $S6 $TARGET_PORT ack"
		"v6-rst $C6 $S6 $TARGET_PORT rst"
		"v6-udp $C6 $S6 $UDP_TARGET udp"
		"v6-udp-big $C6 $S6 $UDP_TARGET udp-big"
		"v6-badsum-syn $C6 $S6 $TARGET_PORT badsum-syn"
		"v6-badsum-udp $C6 $S6 $UDP_TARGET badsum-udp"
	)
}

# The kernel's answers, with nothing loaded and nothing listening, then bpfredir's, with the
# services listening and their ports hidden with --reject.
test_reject_tc() {
	# --- the kernel's answers, with nothing loaded and nothing listening -----------------
	# With transmit checksum offload, veth carries the kernel's IPv6 RST with its checksum
	# unfinished (the pseudo-header sum only, for the NIC to complete); a real NIC would
	# send the full one. Offload off, the kernel computes it, as bpfredir does.
	in_ns server ethtool -K "$SERVER_IF" tx off >/dev/null || t_abort "ethtool -K $SERVER_IF tx off"
	run_cases kernel
	# Back to the default: real clients below leave their checksums to veth's offload.
	in_ns server ethtool -K "$SERVER_IF" tx on >/dev/null || t_abort "ethtool -K $SERVER_IF tx on"

	# --- bpfredir's, with the services listening and their ports hidden with --reject ----
	https_server server
	server server "$UDP_TARGET" udp socat "UDP6-RECVFROM:$UDP_TARGET,ipv6only=0,fork" PIPE
	expect_cli_ok "load" server load --iface "$SERVER_IF" "${P[@]}"
	expect_cli_error "add --reject --no-hide: usage error" 2 "--reject.*--no-hide" server \
		add "$PUBLIC_PORT" "$TARGET_PORT" --reject --no-hide "${P[@]}"
	expect_cli_error "del --reject: usage error" 2 "'--reject' does not apply to 'del'" server \
		del "$PUBLIC_PORT" --reject "${P[@]}"
	printf 'rule 8445 8443 reject no-hide\n' >"$T_TMP/bad.conf"
	expect_cli_error "config 'reject' with 'no-hide': error at its line" 1 \
		"bad.conf:1:1: 'reject' cannot go with 'no-hide'" server apply -f "$T_TMP/bad.conf" "${P[@]}"
	printf 'rule 8445 8443 reject reject\n' >"$T_TMP/bad.conf"
	expect_cli_error "config 'reject' twice: error at the second" 1 "bad.conf:1:23: 'reject' given twice" \
		server apply -f "$T_TMP/bad.conf" "${P[@]}"
	cli server list "${P[@]}"
	check "nothing added by the failed commands" "list: $CLI_OUT" \
		test "$(grep -c "^[0-9]" <<<"$CLI_OUT")" == 0
	expect_cli_ok "add --reject (tcp)" server add "$PUBLIC_PORT" "$TARGET_PORT" --reject "${P[@]}"
	expect_cli_ok "add --reject (udp)" server add 5353 "$UDP_TARGET" --proto udp --reject "${P[@]}"
	list_json server "$PIN"
	check "list --json shows reject" "list: $CLI_OUT" \
		json_matches '[.rules[] | .reject] == [true, true]'
	cli server list "${P[@]}"
	check "list shows reject" "list: $CLI_OUT" grep -Eq "^$PUBLIC_PORT +$TARGET_PORT +tcp +rej " <<<"$CLI_OUT"
	before=$(counter server "$PIN" rejected)
	# The kernel's own port unreachables for a closed port, which bpfredir learns from.
	probe_to "$C4" "$S4" 5999 udp "$T_TMP/closed4.json"
	probe_to "$C6" "$S6" 5999 udp "$T_TMP/closed6.json"
	run_cases bpfredir
	for c in "${CASES[@]}"; do
		compare "${c%% *}"
	done
	# 7 answered; the RSTs and bad checksums not (they count as hidden drops).
	expect_stat_grew "rejected counter counts the answers" server "$PIN" rejected $((before + 6))
	expect "public port still served" ok "https://$S4:$PUBLIC_PORT/" in_ns client

	# Real clients, whose kernel leaves the checksum to veth's offload: refused at once.
	expect "curl to the hidden port: connection refused" refused "https://$S4:$TARGET_PORT/" in_ns client
	expect "curl to the hidden port over IPv6: connection refused" refused \
		"https://[$S6]:$TARGET_PORT/" in_ns client
	# The RST to such a segment is left to offload too: with the server's transmit offload off,
	# the stack completes its checksum itself.
	in_ns server ethtool -K "$SERVER_IF" tx off >/dev/null || t_abort "ethtool -K $SERVER_IF tx off"
	expect "curl to the hidden port, server without tx offload: refused" refused \
		"https://$S4:$TARGET_PORT/" in_ns client
	in_ns server ethtool -K "$SERVER_IF" tx on >/dev/null || t_abort "ethtool -K $SERVER_IF tx on"
	for dst in "$S4" "$S6"; do
		out=$(udp_connected client "$dst" "$UDP_TARGET" 3 2>&1)
		check "connected udp socket to the hidden port $dst: refused" "got: $out" test "$out" == refused
	done
}

# The config file's 'reject' is the same rule: applying it changes nothing; without it,
# the rule changes.
test_reject_config() {
	printf 'interface %s\nrule %s %s reject\nrule 5353 %s proto udp reject\n' "$SERVER_IF" \
		"$PUBLIC_PORT" "$TARGET_PORT" "$UDP_TARGET" >"$T_TMP/reject.conf"
	cli server apply -f "$T_TMP/reject.conf" "${P[@]}"
	check "apply -f with 'reject' matches add --reject" "$(cli_result) $CLI_OUT" \
		test "$CLI_RC:$CLI_OUT" == "0:nothing to change"
	sed -i 's/ reject$//' "$T_TMP/reject.conf"
	cli server apply -f "$T_TMP/reject.conf" --dry-run "${P[@]}"
	check "apply --dry-run shows the rule losing 'reject'" "$(cli_result) $CLI_OUT" \
		grep -qx -- "- rule $PUBLIC_PORT $TARGET_PORT proto tcp reject" <<<"$CLI_OUT"
}

# --- the ICMP rate limit: bpfredir at the hidden port, the kernel at a closed one ----------
test_icmp_rate_limit() {
	ip -n "$(ns client)" addr add 192.0.2.8/24 dev "$CLIENT_IF" || t_abort "client address"
	ip -n "$(ns client)" addr add 192.0.2.9/24 dev "$CLIENT_IF" || t_abort "client address"
	addr6 client "$CLIENT_IF" 2001:db8::8/64
	addr6 client "$CLIENT_IF" 2001:db8::9/64
	for fam in 4 6; do
		if [[ $fam == 4 ]]; then a=192.0.2.8 b=192.0.2.9 dst=$S4; else a=2001:db8::8 b=2001:db8::9 dst=$S6; fi
		kernel_n=$(burst "$a" "$dst" 5999 2>&1)
		ours_n=$(burst "$b" "$dst" "$UDP_TARGET" 2>&1)
		if [[ $kernel_n =~ ^[0-9]+$ && $kernel_n == "$ours_n" && $kernel_n -lt 10 ]]; then
			pass "v$fam ICMP rate limit: 10 datagrams, $ours_n errors from bpfredir as from the kernel"
		else
			fail "v$fam ICMP rate limit" "10 datagrams: kernel answered '$kernel_n', bpfredir '$ours_n'"
		fi
	done

	expect_cli_ok "unload" server unload "${P[@]}"
}

# --- the same through XDP ingress, answered with XDP_TX -----------------------------------
# Native XDP_TX on veth hands the frame to the peer's NAPI ring, which a veth polls only while
# it has an XDP program of its own: the client's veth gets xdp-filter (which passes
# everything) for the native round, as a real NIC needs nothing of the kind.
test_reject_xdp() {
	for mode in generic native; do
		args=(--mode xdp --xdp-generic)
		if [[ $mode == native ]]; then
			args=(--mode xdp)
			xdp_filter_load client "$CLIENT_IF" native
		fi
		expect_cli_ok "xdp $mode: load" server load --iface "$SERVER_IF" "${args[@]}" "${P[@]}"
		expect_cli_ok "xdp $mode: add --reject" server add "$PUBLIC_PORT" "$TARGET_PORT" --reject \
			"${P[@]}"
		expect_cli_ok "xdp $mode: add --reject (udp)" server add 5353 "$UDP_TARGET" --proto udp \
			--reject "${P[@]}"
		probe_to "$C4" "$S4" 5999 udp "$T_TMP/closed4.json"
		probe_to "$C6" "$S6" 5999 udp "$T_TMP/closed6.json"
		run_cases bpfredir
		for c in "${CASES[@]}"; do
			compare "${c%% *}" "xdp $mode"
		done
		expect "xdp $mode: curl to the hidden port: connection refused" refused \
			"https://$S4:$TARGET_PORT/" in_ns client
		expect "xdp $mode: public port still served" ok "https://$S4:$PUBLIC_PORT/" in_ns client
		expect_cli_ok "xdp $mode: unload" server unload "${P[@]}"
		[[ $mode == generic ]] || xdp_filter_unload client "$CLIENT_IF" >/dev/null 2>&1 ||
			fail "xdp $mode: xdp-filter unload" "failed"
	done
}

# --- path MTU discovery through the public port ------------------------------------------
#
#   pclient (pc0, MTU 1500) ---- (pr0, MTU 1280) prouter (pr1) ---- (ps0) pserver
#   198.51.100.1 2001:db8:10::1      198.51.100.2 / 203.0.113.1        203.0.113.2 2001:db8:20::2
#
# The client asks for a download on 8445; the server's service on 8443 sends 2 MB in 1500-byte
# segments (the client's MSS allows them), which the router cannot forward onto its 1280-byte
# link: it answers "fragmentation needed" / "packet too big" quoting source port 8445. Only
# with the quote put back to 8443 does the server's kernel find the socket, lower the path
# MTU and resend smaller: without it the transfer stalls (no MTU probing by default).
test_pmtu() {
	netns_add pclient
	netns_add prouter
	netns_add pserver
	veth pclient pc0 198.51.100.1/24 prouter pr0 198.51.100.2/24
	veth prouter pr1 203.0.113.1/24 pserver ps0 203.0.113.2/24
	addr6 pclient pc0 2001:db8:10::1/64
	addr6 prouter pr0 2001:db8:10::2/64
	addr6 prouter pr1 2001:db8:20::1/64
	addr6 pserver ps0 2001:db8:20::2/64
	ip -n "$(ns prouter)" link set pr0 mtu 1280 || t_abort "router MTU"
	ip -n "$(ns pclient)" route add default via 198.51.100.2 || t_abort "pclient route"
	ip -n "$(ns pclient)" -6 route add default via 2001:db8:10::2 || t_abort "pclient route6"
	ip -n "$(ns pserver)" route add default via 203.0.113.1 || t_abort "pserver route"
	ip -n "$(ns pserver)" -6 route add default via 2001:db8:20::1 || t_abort "pserver route6"
	in_ns prouter sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
		t_abort "router forwarding"
	in_ns pserver sysctl -qw net.ipv4.ip_no_pmtu_disc=0 net.ipv4.tcp_mtu_probing=0 ||
		t_abort "server PMTU sysctls"

	DOWNLOAD_BYTES=$((2 * 1024 * 1024))
	server pserver "$TARGET_PORT" tcp "$SCAPY_PYTHON" "$T_HELPERS/download.py" serve "$DOWNLOAD_BYTES" "$TARGET_PORT"
	pin_dir PIN2 pmtu
	expect_cli_ok "load on the server behind the router" pserver load --iface ps0 --pin-dir "$PIN2"
	expect_cli_ok "add the tcp rule" pserver add "$PUBLIC_PORT" "$TARGET_PORT" --pin-dir "$PIN2"

	for dst in 203.0.113.2 2001:db8:20::2; do
		if [[ $dst == *:* ]]; then client_addr=2001:db8:10::1; else client_addr=198.51.100.1; fi
		before=$(counter pserver "$PIN2" icmp_translated)
		out=$(in_ns pclient timeout 40 "$SCAPY_PYTHON" "$T_HELPERS/download.py" get "$DOWNLOAD_BYTES" \
			"$dst" "$PUBLIC_PORT" 2>&1 | tail -1)
		read -r got_len got_sum want_sum <<<"$out"
		if [[ $got_len == "$DOWNLOAD_BYTES" && -n $got_sum && $got_sum == "$want_sum" ]]; then
			pass "PMTU $dst: 2 MB through $PUBLIC_PORT over a 1280-byte hop, sha256 matches"
		else
			fail "PMTU $dst" "download: $out"
		fi
		expect_stat_grew "PMTU $dst: icmp_translated counter moved" pserver "$PIN2" \
			icmp_translated "${before:-0}"
		mtu=$(in_ns pserver ip route get "$client_addr" 2>/dev/null | grep -o 'mtu [0-9]*')
		check "PMTU $dst: the server's kernel learned the path MTU" "route: $mtu" \
			test "$mtu" == "mtu 1280"
	done
}

# Egress: nothing listens on udp 5354, so the server's kernel answers a datagram translated
# 5353 -> 5354 with a port unreachable quoting 5354; put back to 5353, it reaches the
# client's connected socket as ECONNREFUSED (quoting 5354, it would match no socket).
test_egress_port_unreachable() {
	expect_cli_ok "add a udp rule to a closed port" pserver add 5353 5354 --proto udp --pin-dir "$PIN2"
	for dst in 203.0.113.2 2001:db8:20::2; do
		before=$(counter pserver "$PIN2" icmp_translated)
		out=$(udp_connected pclient "$dst" 5353 3 2>&1)
		check "egress port unreachable for $dst:5353 reaches the client's socket" "got: $out" \
			test "$out" == refused
		expect_stat_grew "egress error for $dst: icmp_translated counter moved" pserver "$PIN2" \
			icmp_translated "${before:-0}"
	done
	expect_cli_ok "unload the server's instance" pserver unload --pin-dir "$PIN2"
}

# --- cleanup --------------------------------------------------------------------------------

# Program teardown is asynchronous in the kernel: give it a moment.
test_no_programs_left() {
	check "no bpfredir programs left" "left: $(new_bpfredir_progs | tr '\n' ' ')" \
		wait_for 5 no_new_bpfredir_progs
}

t_run_tests reject_icmp "$@"
