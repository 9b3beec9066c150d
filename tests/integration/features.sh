#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What the README promises beyond the seed scenario, with real sockets: several interfaces,
# traffic the server only forwards left alone, --no-hide, established connections outliving
# `del`, UDP rules, IPv6, local addresses added after load, and no stale translation of a
# later direct connection.
#
#   client 192.0.2.1 (cli0) -- (srv0) 192.0.2.2 server 198.51.100.1 (srv1) -- (bk0) 198.51.100.2 backend
#          2001:db8::1                2001:db8::2
#
# The server routes between client and backend; the backend runs its own service on 8445.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

ALL_TESTS="test_load test_interfaces_and_forwarding test_ipv6 test_no_hide test_udp
	test_new_local_address test_translated_then_direct"
t_depends test_interfaces_and_forwarding test_load
t_depends test_ipv6 test_load
t_depends test_no_hide test_load
t_depends test_udp test_load
t_depends test_new_local_address test_load
t_depends test_translated_then_direct test_new_local_address

setup_tests() {
	t_require socat
	t_require_scapy
	t_topology
	netns_add backend
	veth server srv1 198.51.100.1/24 backend bk0 198.51.100.2/24
	ip -n "$(ns client)" route add 198.51.100.0/24 via "$SERVER_ADDR"
	ip -n "$(ns backend)" route add default via 198.51.100.1
	in_ns server sysctl -qw net.ipv4.ip_forward=1
	ip -n "$(ns client)" addr add 2001:db8::1/64 dev "$CLIENT_IF" nodad
	ip -n "$(ns server)" addr add 2001:db8::2/64 dev "$SERVER_IF" nodad
	cgroup_add CG features
	pin_dir PIN features
	P=(--pin-dir "$PIN")

	https_server server
	https_server backend 8445
	server server 9443 tcp socat TCP-LISTEN:9443,reuseaddr,fork EXEC:cat
	# The answer comes after the datagram is read: echo alone may exit before socat has written
	# the datagram to it, and socat then gives up on the reply (EPIPE).
	server server 9553 udp socat UDP-RECVFROM:9553,fork SYSTEM:'read -r _; echo pong'

	S="https://$SERVER_ADDR"
	S6="https://[2001:db8::2]"
	BACKEND=https://198.51.100.2
	client=(in_ns client)
	backend=(in_ns backend)
	in_cg=(in_cgroup server "$CG")
}

test_load() {
	expect_cli_ok "load --iface srv0 --iface srv1 --cgroup" server load --iface "$SERVER_IF" --iface srv1 --cgroup "$CG" "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
}

# --- several interfaces, and forwarded traffic ---
test_interfaces_and_forwarding() {
	expect "srv0: client -> server:8445 works" ok "$S:8445/" "${client[@]}"
	expect "srv1: backend -> server 198.51.100.1:8445 works" ok "https://198.51.100.1:8445/" "${backend[@]}"
	expect "srv1: backend -> server:8443 dropped" dropped "https://198.51.100.1:8443/" "${backend[@]}"
	expect "forwarded: client -> backend:8445 reaches the backend's own 8445" ok "$BACKEND:8445/" "${client[@]}"
	expect "forwarded: client -> backend:8443 refused by the backend, not dropped" refused "$BACKEND:8443/" "${client[@]}"
}

# --- IPv6 ---
test_ipv6() {
	expect "IPv6: client -> [2001:db8::2]:8445 works" ok "$S6:8445/" "${client[@]}"
	expect "IPv6: client -> [2001:db8::2]:8443 dropped" dropped "$S6:8443/" "${client[@]}"
	expect "IPv6: in cgroup -> [::1]:8445 redirected" ok "https://[::1]:8445/" "${in_cg[@]}"
	expect "IPv6: outside cgroup -> [::1]:8445 refused" refused "https://[::1]:8445/" in_ns server
}

# --- --no-hide, and established connections outliving del (TCP echo on 9443) ---
# echo_ok NS HOST PORT: a line sent over a fresh TCP connection comes back.
echo_ok() {
	[[ $(printf 'hello\n' | in_ns "$1" timeout 10 socat -T 3 - "TCP:$2:$3,connect-timeout=2" 2>/dev/null) == hello ]]
}

# echo_line TEXT: TEXT sent on the open connection comes back.
echo_line() {
	local line=
	printf '%s\n' "$1" >&"${ECHO[1]}" && read -r -t 5 line <&"${ECHO[0]}" && [[ $line == "$1" ]]
}

test_no_hide() {
	expect_cli_ok "add 9445 9443 --no-hide" server add 9445 9443 --no-hide "${P[@]}"
	expect_rules "list: 9445 -> 9443 not hidden" server "$PIN" $'8445 8443 tcp true\n9445 9443 tcp false'
	check "--no-hide: echo through :9445" "no echo" echo_ok client "$SERVER_ADDR" 9445
	check "--no-hide: echo straight to :9443 still works" "no echo" echo_ok client "$SERVER_ADDR" 9443

	coproc ECHO { exec nsenter --net="$(ns_path client)" -- timeout 60 socat - "TCP:$SERVER_ADDR:9445"; }
	T_PIDS+=("$ECHO_PID")
	check "open connection through :9445 echoes" "no echo" echo_line one
	expect_cli_ok "del 9445 with a connection open" server del 9445 "${P[@]}"
	check "after del: the established connection still echoes" "no echo" echo_line two
	expect "after del: a new connection to :9445 is refused" refused "$S:9445/" "${client[@]}"
	kill "$ECHO_PID" 2>/dev/null
}

# --- UDP ---
# udp_ask NS HOST PORT: prints the answer to one datagram from a connected UDP socket, which
# only accepts a reply from HOST:PORT.
udp_ask() {
	printf 'ping\n' | in_ns "$1" timeout 10 socat -T 2 - "UDP:$2:$3" 2>/dev/null
}

test_udp() {
	expect_cli_ok "add 9555 9553 --proto udp" server add 9555 9553 --proto udp "${P[@]}"
	check "udp: datagram to :9555 is answered from :9555" "no answer" \
		test "$(udp_ask client "$SERVER_ADDR" 9555)" = pong
	check "udp: datagram straight to :9553 gets no answer (hidden)" "answered" \
		test -z "$(udp_ask client "$SERVER_ADDR" 9553)"
	expect "udp rule leaves tcp :9555 alone (refused)" refused "$S:9555/" "${client[@]}"
	expect_cli_ok "del 9555 --proto udp" server del 9555 --proto udp "${P[@]}"
	check "udp: after del, :9553 answers directly" "no answer" test "$(udp_ask client "$SERVER_ADDR" 9553)" = pong
}

# --- local addresses added after load are picked up by the next command ---
test_new_local_address() {
	ip -n "$(ns server)" addr add 192.0.2.4/24 dev "$SERVER_IF"
	expect_cli_ok "add 8446 8443 after adding 192.0.2.4" server add 8446 8443 "${P[@]}"
	expect "in cgroup -> new own address 192.0.2.4:8445 redirected" ok "https://192.0.2.4:8445/" "${in_cg[@]}"
	expect "in cgroup -> own IPv6 address :8445 redirected" ok "$S6:8445/" "${in_cg[@]}"
}

# --- a translated connection leaves nothing that bites a later direct one ---
# Raw SYNs from a fixed client port: one through the public port, then one straight to the
# target from the same client port, which must be answered from the target port.
test_translated_then_direct() {
	expect_cli_ok "add 9446 9443 --no-hide" server add 9446 9443 --no-hide "${P[@]}"
	expect_syn_reply "--no-hide: SYN to :9446 from client port 40002 answered from 9446" \
		client "$SERVER_ADDR" 9446 "9446 SA" 40002
	expect_syn_reply "--no-hide: then SYN to :9443 from the same client port answered from 9443" \
		client "$SERVER_ADDR" 9443 "9443 SA" 40002
	expect_syn_reply "SYN to :8445 from client port 40000 answered from 8445" \
		client "$SERVER_ADDR" 8445 "8445 SA" 40000
	expect_cli_ok "del 8445" server del 8445 "${P[@]}"
	expect_cli_ok "del 8446" server del 8446 "${P[@]}"
	expect_syn_reply "after del: SYN to :8443 from the same client port answered from 8443" \
		client "$SERVER_ADDR" 8443 "8443 SA" 40000

	expect_cli_ok "unload" server unload "${P[@]}"
	expect "after unload: forwarded client -> backend:8445 still works" ok "$BACKEND:8445/" "${client[@]}"
	expect "after unload: client -> server:8443 works" ok "$S:8443/" "${client[@]}"
}

t_run_tests features "$@"
