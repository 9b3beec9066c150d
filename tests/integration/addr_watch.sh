#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Local clients and addresses the host gains after load: picked up at once where the kernel
# takes bpfredir's fentry programs, else by the next bpfredir command; and at once while
# `bpfredir watch` runs (the fallback where the kernel refuses the fentry programs, as this
# sandbox does). watch stops by itself after unload.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_load test_address_without_watch test_watch test_watch_file test_datapath_address"
t_depends test_address_without_watch test_load
t_depends test_watch test_load

# reach ADDR: a client in the cgroup gets the service through ADDR:8445.
# not CMD...: CMD fails (a shell function too, unlike `bash -c '! ...'`).
not() { ! "$@"; }

reach() {
	[[ $(in_cgroup server "$CG" timeout 3 socat -T2 - "TCP:$1:8445,connect-timeout=2" \
		</dev/null 2>/dev/null) == *served* ]]
}

# in_map ADDR: ADDR is a key of the local-address map.
in_map() { [[ -n $(local_addr_value "$PIN" "$1") ]]; }

setup_tests() {
	t_topology
	server server 8443 tcp socat TCP6-LISTEN:8443,fork,reuseaddr,ipv6only=0 SYSTEM:"echo served"
	cgroup_add CG watch
	pin_dir PIN watch
}

test_load() {
	expect_cli_ok "socket-only load" server load --cgroup "$CG" --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
	check "own address known at load is redirected" "no answer via $SERVER_ADDR:8445" reach "$SERVER_ADDR"
}

# Where the kernel takes the fentry programs, it follows addresses itself; elsewhere (this
# sandbox, lockdown) the next command or `watch` does.
test_address_without_watch() {
	cli server status --json --pin-dir "$PIN"
	ADDR_WATCH=$(json_get '.features.address_watch')
	[[ $ADDR_WATCH == true || $ADDR_WATCH == false ]] ||
		t_abort "status --json gives no features.address_watch: $(cli_result) $CLI_OUT"
	echo "# addresses followed by the kernel (fentry): $ADDR_WATCH"
	ip -n "$(ns server)" addr add 203.0.113.9/32 dev "$SERVER_IF"
	if [[ $ADDR_WATCH == true ]]; then
		check "an address added after load: redirected at once (fentry)" \
			"no answer via 203.0.113.9:8445" wait_for 3 reach 203.0.113.9
	else
		check "an address added after load: not yet known (no fentry)" \
			"redirected before any command" not reach 203.0.113.9
		cli server add 8445 8443 --pin-dir "$PIN"
		check "an address added after load: known after the next add" \
			"no answer via 203.0.113.9:8445" reach 203.0.113.9
	fi
}

gone() { ! in_map 203.0.113.10 && ! in_map 2001:db8::10; }

stopped() { ! kill -0 "$watcher" 2>/dev/null; }

# nsenter execs the loader: $! is the watcher itself, not a subshell around it.
test_watch() {
	nsenter --net="$(ns_path server)" -- "$BPFREDIR" watch --pin-dir "$PIN" 2>"$T_TMP/watch.err" &
	watcher=$!
	T_PIDS+=("$watcher")
	ip -n "$(ns server)" addr add 203.0.113.10/32 dev "$SERVER_IF"
	check "with watch: a new address is redirected at once" "no answer via 203.0.113.10:8445" \
		wait_for 3 reach 203.0.113.10
	ip -n "$(ns server)" -6 addr add 2001:db8::10/128 dev "$SERVER_IF" nodad
	check "with watch: a new IPv6 address is redirected at once" "no answer via [2001:db8::10]:8445" \
		wait_for 3 reach "[2001:db8::10]"
	ip -n "$(ns server)" addr del 203.0.113.10/32 dev "$SERVER_IF"
	ip -n "$(ns server)" -6 addr del 2001:db8::10/128 dev "$SERVER_IF"
	check "with watch: removed addresses leave the map" "still in the map" wait_for 3 gone
	expect_cli_ok "unload while watch runs" server unload --pin-dir "$PIN"
	check "watch stops by itself after unload" "still running" wait_for 5 stopped
	wait "$watcher"
	rc=$?
	check "watch exits 0 and says why" "exit $rc: $(cat "$T_TMP/watch.err")" \
		test "$rc" -eq 0 -a -n "$(grep 'was unloaded; stopping' "$T_TMP/watch.err")"
}

# ex0: the server's second interface, made (again) by mk_ex0 with a client on the other end.
mk_ex0() { veth server ex0 198.51.100.2/24 client2 ex1 198.51.100.1/24; }

# via_ex0: the client behind ex0 gets the service through 198.51.100.2:8445.
via_ex0() {
	[[ $(in_ns client2 timeout 3 socat -T2 - "TCP:198.51.100.2:8445,connect-timeout=2" \
		</dev/null 2>/dev/null) == *served* ]]
}

ex0_attached() {
	cli server status --json --pin-dir "$PINF"
	json_matches '[.interfaces[] | select(.name == "ex0" and (.defunct | not))] | length == 1'
}

# applied: the watcher's apply finished: ex0 attached and acting, nothing defunct left (apply
# attaches first, switches the set, then detaches what the file dropped).
applied() {
	cli server status --json --pin-dir "$PINF"
	json_matches '([.interfaces[] | select(.name == "ex0" and .active)] | length == 1) and
		([.interfaces[].defunct] == [false])'
}

# --- watch -f FILE: an interface made again under its name is attached again -------------
test_watch_file() {
	netns_add client2
	pin_dir PINF file
	mk_ex0
	printf 'interface ex0\nrule 8445 8443\n' >"$T_TMP/watch.conf"
	expect_cli_ok "watch -f: apply with ex0" server apply -f "$T_TMP/watch.conf" --pin-dir "$PINF"
	check "watch -f: 8445 through ex0" "no answer" via_ex0
	ip -n "$(ns server)" link del ex0 && mk_ex0
	check "without watch -f: ex0 made again is not attached" "$CLI_OUT" not ex0_attached
	check "without watch -f: 8445 through the new ex0 not served" "served" not via_ex0
	nsenter --net="$(ns_path server)" -- "$BPFREDIR" watch -f "$T_TMP/watch.conf" --pin-dir "$PINF" \
		>"$T_TMP/watch-f.out" 2>&1 &
	watcher=$!
	T_PIDS+=("$watcher")
	check "watch -f: applies the file as it starts" "$CLI_OUT" wait_for 5 applied
	check "watch -f: 8445 through ex0 again" "no answer" via_ex0
	ip -n "$(ns server)" link del ex0 && mk_ex0
	check "watch -f: ex0 made again is attached again" "$CLI_OUT" wait_for 5 ex0_attached
	check "watch -f: and acts, the old one's pins gone" "$CLI_OUT" wait_for 5 applied
	check "watch -f: 8445 through the new ex0" "no answer" via_ex0
	cli server status --json --pin-dir "$PINF"
	check "watch -f: nothing defunct left" "$CLI_OUT" json_matches '[.interfaces[].defunct] == [false]'
	expect_cli_ok "watch -f: unload" server unload --pin-dir "$PINF"
	check "watch -f stops by itself after unload" "still running" wait_for 5 stopped
	wait "$watcher"

	expect_cli_error "watch with nothing loaded" 1 "not loaded" server watch --pin-dir "$PIN"
	expect_cli_error "watch -f with a relative path" 2 "absolute path" server watch -f x.conf \
		--pin-dir "$PIN"
	expect_cli_error "watch takes no arguments" 2 "unexpected argument" server watch now --pin-dir "$PIN"
}

# --- TC: whether a destination is this host's, as addresses come and go -------------------
NEW_ADDR=203.0.113.20

# syn_to_new CPU: a client on CPU connects to $NEW_ADDR:8443 (the hidden target), one SYN;
# succeeds only if the connection is made.
syn_to_new() {
	in_ns client taskset -c "$1" timeout 3 socat -T1 - \
		"TCP:$NEW_ADDR:8443,connect-timeout=1" </dev/null >/dev/null 2>&1
}

# The datapath keeps per CPU what local_addrs said of a destination (addr_cache): an address
# gained or lost must count at once all the same, on every CPU, for a SYN to the hidden port.
test_datapath_address() {
	local cpu cpus dropped passed followed
	cpus=$(nproc)
	pin_dir PINT tc
	ip -n "$(ns client)" route add "$NEW_ADDR/32" via "$SERVER_ADDR"
	expect_cli_ok "tc: load" server load --iface "$SERVER_IF" --pin-dir "$PINT"
	expect_cli_ok "tc: add 8445 8443" server add 8445 8443 --pin-dir "$PINT"
	# Not ours yet: passed on (the kernel, not forwarding, drops it), and every CPU's cache
	# has the answer.
	passed=$(counter server "$PINT" passed)
	for ((cpu = 0; cpu < cpus; cpu++)); do syn_to_new "$cpu"; done
	expect_stat_grew "tc: a SYN to $NEW_ADDR:8443 before it is the host's passes" server "$PINT" \
		passed "${passed:-0}"
	# Where the kernel takes the fentry programs, they record the address as it comes (and
	# move addrs_gen on); elsewhere the next command does.
	cli server status --json --pin-dir "$PINT"
	followed=$(json_get '.features.address_watch')
	echo "# tc: addresses followed by the kernel (fentry): $followed"
	ip -n "$(ns server)" addr add "$NEW_ADDR/32" dev "$SERVER_IF"
	[[ $followed == true ]] ||
		expect_cli_ok "tc: a command after the address came" server add 8445 8443 --pin-dir "$PINT"
	dropped=$(counter server "$PINT" hidden_dropped)
	for ((cpu = 0; cpu < cpus; cpu++)); do
		check "tc: $NEW_ADDR:8443, the host's now, is hidden on CPU $cpu" "connected" \
			not syn_to_new "$cpu"
	done
	expect_stat_grew "tc: and its SYNs were dropped as hidden" server "$PINT" hidden_dropped \
		"${dropped:-0}"
	ip -n "$(ns server)" addr del "$NEW_ADDR/32" dev "$SERVER_IF"
	[[ $followed == true ]] ||
		expect_cli_ok "tc: a command after the address went" server add 8445 8443 --pin-dir "$PINT"
	dropped=$(counter server "$PINT" hidden_dropped)
	for ((cpu = 0; cpu < cpus; cpu++)); do syn_to_new "$cpu"; done
	check "tc: a SYN to $NEW_ADDR:8443 after it went is not the host's: not dropped" \
		"hidden_dropped $dropped -> $(counter server "$PINT" hidden_dropped)" \
		test "$(counter server "$PINT" hidden_dropped)" = "$dropped"
	expect_cli_ok "tc: unload" server unload --pin-dir "$PINT"
}

t_run_tests addr_watch "$@"
