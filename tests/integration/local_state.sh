#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What the socket hooks keep, with real sockets in a test cgroup of a server namespace:
#   - each redirected socket remembers its peers in storage of its own (an unconnected UDP
#     socket several of them): a local process that sprays datagrams at 127.x.y.z:8445
#     cannot make another socket's getpeername() or recvfrom() show the target port 8443;
#   - more local addresses than the local-address maps hold are an error naming the count,
#     at load and at add, and the add leaves no rule behind;
#   - an address two interfaces (or two prefixes of one) have counts twice, and stays in the
#     map until the last one goes: checked for what bpfredir commands and `bpfredir watch`
#     write (the fentry programs that do it without a process cannot load here; see
#     bpf/addrwatch.bpf.c).
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

FLOWPROBE=$T_HELPERS/flowprobe.py
SPRAY=80000

ALL_TESTS="test_load test_spray test_address_counts test_many_addresses"
t_depends test_spray test_load
t_depends test_address_counts test_load

# json_holds FILTER JSON: JSON (not empty) satisfies the jq FILTER.
json_holds() { [[ -n $2 ]] && jq -e "$1" <<<"$2" >/dev/null 2>&1; }

setup_tests() {
	t_require_scapy
	netns_add server
	if ! { ip -n "$(ns server)" link add "$SERVER_IF" type veth peer name srv1 &&
		ip -n "$(ns server)" link set "$SERVER_IF" up && ip -n "$(ns server)" link set srv1 up &&
		ip -n "$(ns server)" addr add "$SERVER_ADDR/24" dev "$SERVER_IF"; }; then
		t_abort "could not make the server's interfaces"
	fi
	cgroup_add CG main
	pin_dir PIN main
	P=(--pin-dir "$PIN")
	server server 8443 tcp "$SCAPY_PYTHON" "$FLOWPROBE" serve --port 8443
	wait_for 5 listening server 8443 udp || t_abort "flowprobe did not listen on 8443/udp"
}

test_load() {
	expect_cli_ok "load --cgroup CG" server load --cgroup "$CG" "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	expect_cli_ok "add 8445 8443 --proto udp" server add 8445 8443 --proto udp "${P[@]}"
}

# --- one socket's spray does not reach another socket's peers -----------------------------------
test_spray() {
	got=$(in_cgroup server "$CG" timeout 30 "$SCAPY_PYTHON" "$FLOWPROBE" peers 8445 4 2>&1)
	check "peers: an unconnected udp socket talking to 4 local addresses on 8445 sees 8445 from each" \
		"got: $got" json_holds '.from | length == 4 and all(.[1] == 8445)' "$got"

	for mode in udp udp-connect tcp; do
		in_cgroup server "$CG" timeout 60 "$SCAPY_PYTHON" "$FLOWPROBE" victim "$mode" 127.0.0.1 8445 8 \
			>"$T_TMP/victim.json" 2>&1 &
		victim=$!
		sleep 1
		sprayed=$(in_cgroup server "$CG" timeout 120 "$SCAPY_PYTHON" "$FLOWPROBE" spray 8445 "$SPRAY" 2>&1)
		wait "$victim"
		got=$(cat "$T_TMP/victim.json")
		check "spray: a $mode socket still shows 127.0.0.1:8445 after another sent to $SPRAY loopback addresses" \
			"victim: $got; spray: $sprayed" json_holds '(.from // [0, 8445])[1] == 8445 and
				(.peername // [0, 8445])[1] == 8445 and (has("from") or has("peername"))' "$got"
	done
}

# addr_count ADDR: local_addrs' value for ADDR (how many holders), empty when it has none.
addr_count() { local_addr_value "$PIN" "$1"; }

# holders_of ADDR: addr_holders' entries for ADDR, as "ifindex/prefixlen" lines.
holders_of() {
	bpftool -j map dump pinned "$PIN/maps/addr_holders" 2>/dev/null |
		jq -r --argjson k "$(addr_key "$1" list)" '.[].formatted.key | select(.addr == $k) |
			"\(.ifindex)/\(.prefixlen)"' 2>/dev/null | sort
}

# count_is ADDR N: local_addrs says ADDR has N holders (N empty: not in the map).
count_is() { [[ $(addr_count "$1") == "$2" ]]; }

stopped() { ! kill -0 "$watcher" 2>/dev/null; }

# --- an address on two interfaces counts twice -----------------------------------------------------
test_address_counts() {
	srv0=$(ip -n "$(ns server)" -j link show "$SERVER_IF" | jq -r '.[0].ifindex')
	srv1=$(ip -n "$(ns server)" -j link show srv1 | jq -r '.[0].ifindex')
	if ! { ip -n "$(ns server)" addr add 192.0.2.50/32 dev "$SERVER_IF" &&
		ip -n "$(ns server)" addr add 192.0.2.50/32 dev srv1 &&
		ip -n "$(ns server)" addr add 192.0.2.51/32 dev "$SERVER_IF" &&
		ip -n "$(ns server)" addr add 192.0.2.51/28 dev "$SERVER_IF" &&
		ip -n "$(ns server)" addr add 2001:db8::50/128 dev "$SERVER_IF" nodad &&
		ip -n "$(ns server)" addr add 2001:db8::50/128 dev srv1 nodad; }; then
		t_abort "could not add the shared addresses"
	fi
	expect_cli_ok "add 8446 8443 (records the host's addresses)" server add 8446 8443 "${P[@]}"
	check "count: 192.0.2.50 on two interfaces counts 2" "local_addrs value '$(addr_count 192.0.2.50)'" \
		count_is 192.0.2.50 2
	check "count: ... its two holders are the two interfaces" "holders: $(holders_of 192.0.2.50 | paste -sd' ')" \
		test "$(holders_of 192.0.2.50 | paste -sd' ')" = "$(printf '%s\n' "$srv0/32" "$srv1/32" | sort | paste -sd' ')"
	check "count: 192.0.2.51 as /32 and /28 on one interface counts 2" \
		"local_addrs value '$(addr_count 192.0.2.51)'" count_is 192.0.2.51 2
	check "count: 2001:db8::50 on two interfaces counts 2" \
		"local_addrs value '$(addr_count 2001:db8::50)'" count_is 2001:db8::50 2
	check "count: 127.0.0.1 (on lo only) counts 1" "local_addrs value '$(addr_count 127.0.0.1)'" \
		count_is 127.0.0.1 1

	nsenter --net="$(ns_path server)" -- "$BPFREDIR" watch "${P[@]}" 2>"$T_TMP/watch.err" &
	watcher=$!
	T_PIDS+=("$watcher")
	sleep 0.5
	ip -n "$(ns server)" addr del 192.0.2.50/32 dev "$SERVER_IF"
	ip -n "$(ns server)" addr del 192.0.2.51/28 dev "$SERVER_IF"
	ip -n "$(ns server)" addr del 2001:db8::50/128 dev srv1
	check "watch: one of two copies of 192.0.2.50 gone: it stays, counted once" \
		"local_addrs value '$(addr_count 192.0.2.50)'" wait_for 3 count_is 192.0.2.50 1
	check "watch: 192.0.2.51/28 gone, /32 left: it stays, counted once" \
		"local_addrs value '$(addr_count 192.0.2.51)'" wait_for 3 count_is 192.0.2.51 1
	check "watch: 2001:db8::50 gone from srv1: it stays, counted once" \
		"local_addrs value '$(addr_count 2001:db8::50)'" wait_for 3 count_is 2001:db8::50 1
	ip -n "$(ns server)" addr del 192.0.2.50/32 dev srv1
	check "watch: the last copy of 192.0.2.50 gone: it leaves the map" \
		"local_addrs value '$(addr_count 192.0.2.50)'" wait_for 3 count_is 192.0.2.50 ""
	check "watch: ... and its holders" "holders: $(holders_of 192.0.2.50 | paste -sd' ')" \
		test -z "$(holders_of 192.0.2.50)"

	expect_cli_ok "unload" server unload "${P[@]}"
	wait_for 5 stopped || fail "watch stops after unload" "still running"
}

# addrs_batch VERB FROM TO: ip -batch lines adding or deleting 2001:db8:1::FROM..TO on m1.
addrs_batch() {
	local i opt=
	[[ $1 != add ]] || opt=" nodad"
	for ((i = $2; i <= $3; i++)); do
		printf 'addr %s 2001:db8:1::%x/128 dev m1%s\n' "$1" "$i" "$opt"
	done
}

# The namespace's addresses as the kernel lists them (lo's, the link-local ones, these).
host_addrs() {
	ip -n "$(ns many)" -j addr show | jq '[.[].addr_info[].local] | unique | length'
}

# --- more local addresses than the maps hold ---------------------------------------------------------
test_many_addresses() {
	netns_add many
	pin_dir PIN2 many
	if ! { ip -n "$(ns many)" link add m0 type veth peer name m1 &&
		ip -n "$(ns many)" link set m0 up && ip -n "$(ns many)" link set m1 up; }; then
		t_abort "could not make the interfaces of namespace many"
	fi
	addrs_batch add 1 1100 | ip -n "$(ns many)" -batch - || t_abort "could not add 1100 addresses"
	n=$(host_addrs)
	expect_cli_error "many: load with $n local addresses fails, naming the count" 1 \
		"this host has $n local addresses .*more than the local-address maps hold \(1024" \
		many load --iface m0 --pin-dir "$PIN2"
	addrs_batch del 1 200 | ip -n "$(ns many)" -batch - || t_abort "could not delete 200 addresses"
	expect_cli_ok "many: load with $(host_addrs) local addresses" many load --iface m0 --pin-dir "$PIN2"
	addrs_batch add 1 200 | ip -n "$(ns many)" -batch - || t_abort "could not add 200 addresses"
	expect_cli_error "many: add with $n local addresses fails, naming the count" 1 \
		"cannot add rule 8445/tcp: this host has $n local addresses" many add 8445 8443 --pin-dir "$PIN2"
	expect_rules "many: the failed add left no rule" many "$PIN2" ""
	addrs_batch del 1 200 | ip -n "$(ns many)" -batch - || t_abort "could not delete 200 addresses"
	expect_cli_ok "many: add with fewer addresses" many add 8445 8443 --pin-dir "$PIN2"
	expect_cli_ok "many: unload" many unload --pin-dir "$PIN2"
}

t_run_tests local_state "$@"
