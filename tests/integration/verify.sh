#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# verify: packets run through the programs over a private copy of the rules. The seed's rules
# give the results the recipe would (TC and XDP, v4 and v6, replies, reject's answers, local
# clients' connect and sendmsg); a wrong expectation is named and fails the run; an unreadable
# line is FILE:LINE; the rules of a loaded instance are used without one counter, connection
# or pending entry of it moving; nothing is left behind (cgroup, programs).
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_seed test_xdp test_steering test_differs test_unreadable test_live
	test_import_verify_apply"

setup_tests() {
	t_require jq curl
	t_topology
	https_server server
	cat >"$T_TMP/seed.conf" <<EOF
interface $SERVER_IF
rule 8445 8443
rule 5354 5353 proto udp reject
EOF
	# What the recipe does, packet by packet: the expectations a pipeline would write.
	cat >"$T_TMP/seed.pkts" <<'EOF'
# external clients
tcp 203.0.113.2:40000 > 192.0.2.1:8445 syn => rewrite 8443
out tcp 192.0.2.1:8443 > 203.0.113.2:40000 syn ack => rewrite 8445
tcp 203.0.113.2:40000 > 192.0.2.1:8445 ack => rewrite 8443
tcp 203.0.113.2:40001 > 192.0.2.1:8443 syn => drop
tcp [2001:db8::2]:40000 > [2001:db8::1]:8445 syn => rewrite 8443
tcp [2001:db8::2]:40001 > [2001:db8::1]:8443 syn => drop
udp 203.0.113.2:5000 > 192.0.2.1:5354 => rewrite 5353
udp 203.0.113.2:5001 > 192.0.2.1:5353 => reject
tcp 203.0.113.2:40002 > 192.0.2.1:22 syn => pass
# local clients
connect tcp 127.0.0.1:8445 => rewrite 8443
connect tcp 192.0.2.1:8445 => rewrite 8443
connect tcp [::1]:8445 => rewrite 8443
sendmsg udp 127.0.0.1:5354 => rewrite 5353
connect udp [::1]:5354 => rewrite 5353
connect tcp 127.0.0.1:22 => pass
EOF
}

# verify_cgroups: the cgroups verify made that are still there.
verify_cgroups() { find "$CGROUP2" -maxdepth 1 -name 'bpfredir-verify.*' | wc -l; }

test_seed() {
	local before
	before=$(verify_cgroups)
	expect_cli_ok "the seed's packets give the recipe's results" - verify -f "$T_TMP/seed.conf" \
		--packets "$T_TMP/seed.pkts"
	check "a line per packet, each with its result" "$CLI_OUT" \
		test "$(grep -c "^$T_TMP/seed.pkts:[0-9]*: " <<<"$CLI_OUT")" -eq 15
	check "the rewrite names the bytes that changed" "$CLI_OUT" grep -q \
		"seed.pkts:2: tcp 203.0.113.2:40000 > 192.0.2.1:8445 syn: rewrite 8443 (tcp dport 8445 -> 8443, tcp csum 0x" <<<"$CLI_OUT"
	check "reject shows its answer" "$CLI_OUT" grep -q \
		"seed.pkts:9: .*: reject: answer icmp 192.0.2.1 > 203.0.113.2 port unreachable (about: udp 203.0.113.2:5001 > 192.0.2.1:5353)" <<<"$CLI_OUT"
	check "a local client's connect: reached the target, getpeername shows the public port" \
		"$CLI_OUT" grep -q "seed.pkts:13: connect tcp 192.0.2.1:8445: rewrite 8443: reached port 8443; getpeername shows port 8445" <<<"$CLI_OUT"
	check "a local client's sendto: recvfrom shows the public port" "$CLI_OUT" grep -q \
		"seed.pkts:15: sendmsg udp 127.0.0.1:5354: rewrite 5353: reached port 5353; recvfrom shows port 5354" <<<"$CLI_OUT"
	expect_cli_ok "--json" - verify -f "$T_TMP/seed.conf" --packets "$T_TMP/seed.pkts" --json
	check "--json: every packet as expected, hooks named" "$CLI_OUT" json_matches '
		.differ == 0 and .ingress == "tc" and (.packets | length) == 15 and
		all(.packets[]; .as_expected) and
		all(.packets[]; [has("answer", "detail", "port", "expected", "changes")] | all) and
		.packets[0].hook == "tc ingress" and .packets[0].verdict == "rewrite" and
		.packets[0].port == 8443 and .packets[0].changes[0].field == "tcp dport" and
		.packets[1].hook == "tc egress" and .packets[3].verdict == "drop" and
		(.packets[7].answer | test("port unreachable")) and .packets[9].hook == "connect"'
	check "no cgroup of verify's left" "before $before, after $(verify_cgroups)" \
		test "$(verify_cgroups)" -eq "$before"
	cli - verify -f "$T_TMP/seed.conf" --packet 'tcp 203.0.113.2:1 > 192.0.2.1:8445 syn' \
		--packet 'tcp 203.0.113.2:1 > 198.51.100.7:8445 syn' --host 192.0.2.1
	check "--host: only its addresses are the host's; another host's packet passes" \
		"$(cli_result) $CLI_OUT" grep -q "^--packet:2: .*: pass$" <<<"$CLI_OUT"
}

test_xdp() {
	expect_cli_ok "--xdp: the same results" - verify -f "$T_TMP/seed.conf" \
		--packets "$T_TMP/seed.pkts" --xdp --json
	check "--xdp: ingress through XDP" "$CLI_OUT" json_matches \
		'.ingress == "xdp" and .packets[0].hook == "xdp" and .packets[1].hook == "tc egress" and .differ == 0'
	sed "s/^interface .*/& mode xdp-generic/" "$T_TMP/seed.conf" >"$T_TMP/xdp.conf"
	expect_cli_ok "a config whose interfaces run XDP" - verify -f "$T_TMP/xdp.conf" \
		--packets "$T_TMP/seed.pkts" --json
	check "its ingress runs through XDP" "$CLI_OUT" json_matches '.ingress == "xdp" and .differ == 0'
	pin_dir PINX xdp
	# Its egress in tcx, or a legacy tc filter (what kernels before tcx get).
	for attach in tcx tc; do
		[[ $attach == tc ]] || t_has tcx || continue
		expect_cli_ok "an instance whose interfaces run XDP (egress: $attach)" server load \
			--iface "$SERVER_IF" --mode xdp --xdp-generic --attach "$attach" --pin-dir "$PINX"
		expect_cli_ok "  with the rule" server add 8445 8443 --pin-dir "$PINX"
		expect_cli_ok "  verify against it" server verify --pin-dir "$PINX" --json \
			--packet 'tcp 203.0.113.2:1 > 192.0.2.1:8445 syn => rewrite 8443'
		check "  runs ingress through XDP" "$CLI_OUT" json_matches '.ingress == "xdp" and .differ == 0'
		expect_cli_ok "  unload" server unload --pin-dir "$PINX"
	done
}

# steering socket: TCP rules at socket lookup. A SYN to the public port passes TC and is handed
# to the target's listener by sk_lookup; the replies leave from the public port already.
test_steering() {
	sed 's/^rule 8445/steering socket\n&/' "$T_TMP/seed.conf" >"$T_TMP/steer.conf"
	printf '%s\n' 'tcp 203.0.113.2:40000 > 192.0.2.1:8445 syn => rewrite 8443' \
		'tcp [2001:db8::2]:40000 > [2001:db8::1]:8445 syn => rewrite 8443' \
		'out tcp 192.0.2.1:8445 > 203.0.113.2:40000 syn ack => pass' \
		'tcp 203.0.113.2:40001 > 192.0.2.1:8443 syn => drop' \
		'tcp 203.0.113.2:40002 > 192.0.2.1:22 syn => pass' \
		'udp 203.0.113.2:5000 > 192.0.2.1:5354 => rewrite 5353' \
		'connect tcp 127.0.0.1:8445 => rewrite 8443' >"$T_TMP/steer.pkts"
	expect_cli_ok "steering socket: the results the mode gives" - verify -f "$T_TMP/steer.conf" \
		--packets "$T_TMP/steer.pkts" --json
	check "  the SYN handed to the listener on 8443 at socket lookup" "$CLI_OUT" json_matches '
		.steering == "socket" and .differ == 0 and .packets[0].hook == "tc ingress, sk_lookup" and
		(.packets[0].detail | test("listener on port 8443 at socket lookup")) and
		.packets[5].hook == "tc ingress"'
	pin_dir PINS steer
	expect_cli_ok "an instance that steers" server load --iface "$SERVER_IF" --steering socket \
		--pin-dir "$PINS"
	expect_cli_ok "  with the rule" server add 8445 8443 --pin-dir "$PINS"
	expect_cli_ok "  verify against it" server verify --pin-dir "$PINS" --json \
		--packet 'tcp 203.0.113.2:1 > 192.0.2.1:8445 syn => rewrite 8443'
	check "  steers at socket lookup" "$CLI_OUT" json_matches \
		'.steering == "socket" and .differ == 0 and .packets[0].hook == "tc ingress, sk_lookup"'
	expect_cli_ok "  unload" server unload --pin-dir "$PINS"
}

test_differs() {
	printf '%s\n' 'tcp 203.0.113.2:40000 > 192.0.2.1:8445 syn => rewrite 8444' \
		'tcp 203.0.113.2:40000 > 192.0.2.1:8443 syn => pass' \
		'tcp 203.0.113.2:40000 > 192.0.2.1:22 syn => pass' \
		'connect tcp 127.0.0.1:8445 => pass' >"$T_TMP/wrong.pkts"
	cli - verify -f "$T_TMP/seed.conf" --packets "$T_TMP/wrong.pkts"
	check "a wrong expectation fails the run" "$(cli_result)" test "$CLI_RC" -eq 1
	check "each packet that differs is named with what was expected and what came" "$CLI_ERR" \
		grep -qx "$T_TMP/wrong.pkts:1: expected rewrite 8444, got rewrite 8443" <<<"$CLI_ERR"
	check "  (the hidden port)" "$CLI_ERR" \
		grep -qx "$T_TMP/wrong.pkts:2: expected pass, got drop" <<<"$CLI_ERR"
	check "  (a local client)" "$CLI_ERR" \
		grep -qx "$T_TMP/wrong.pkts:4: expected pass, got rewrite 8443" <<<"$CLI_ERR"
	check "  and the count" "$CLI_ERR" grep -q "3 of 4 packets differ" <<<"$CLI_ERR"
	check "the one as expected is not named" "$CLI_ERR" \
		test "$(grep -c 'wrong.pkts:3' <<<"$CLI_ERR")" -eq 0
	check "every packet is still printed" "$CLI_OUT" test "$(grep -c '' <<<"$CLI_OUT")" -eq 4
}

test_unreadable() {
	printf '%s\n' '# fine' 'tcp 203.0.113.2:1 > 192.0.2.1:8445 syn' 'tcp 203.0.113.2 > 192.0.2.1:8445' \
		'udp 203.0.113.2:1 > 192.0.2.1:2 syn' 'tcp 203.0.113.2:1 > [2001:db8::1]:2' \
		'tcp 203.0.113.2:1 > 192.0.2.1:2 => maybe' 'sendmsg tcp 127.0.0.1:1' >"$T_TMP/bad.pkts"
	cli - verify -f "$T_TMP/seed.conf" --packets "$T_TMP/bad.pkts"
	check "unreadable lines: exit 1, nothing run" "$(cli_result) $CLI_OUT" \
		test "$CLI_RC" -eq 1 -a -z "$CLI_OUT"
	check "FILE:LINE: what is wrong, for each" "$CLI_ERR" grep -qx \
		"$T_TMP/bad.pkts:3: '203.0.113.2' where the source, ADDR:PORT or \[ADDR\]:PORT, should be" <<<"$CLI_ERR"
	check "  a flag on UDP" "$CLI_ERR" grep -qx "$T_TMP/bad.pkts:4: 'syn': a udp packet has no flags" <<<"$CLI_ERR"
	check "  mixed IP versions" "$CLI_ERR" \
		grep -qx "$T_TMP/bad.pkts:5: the source and destination are not of one IP version" <<<"$CLI_ERR"
	check "  an unknown result" "$CLI_ERR" grep -q "^$T_TMP/bad.pkts:6: unknown result 'maybe'" <<<"$CLI_ERR"
	check "  sendmsg over TCP" "$CLI_ERR" grep -q "^$T_TMP/bad.pkts:7: sendmsg is for udp" <<<"$CLI_ERR"
	check "  then the count" "$CLI_ERR" grep -qx "bpfredir verify: 5 lines could not be read" <<<"$CLI_ERR"
	printf 'tcp \033[31mred:1 > 192.0.2.1:2\n' >"$T_TMP/escape.pkts"
	chmod 0644 "$T_TMP/escape.pkts"
	cli - verify -f "$T_TMP/seed.conf" --packets "$T_TMP/escape.pkts"
	check "a control character in a word is shown escaped" "$CLI_ERR" \
		grep -qF "escape.pkts:1: '\x1b[31mred:1' where the source" <<<"$CLI_ERR"
	chmod 0600 "$T_TMP/escape.pkts"
	cli - verify -f "$T_TMP/seed.conf" --packets "$T_TMP/escape.pkts"
	check "a file not every user may read: its words are not repeated" "$CLI_ERR" grep -qx \
		"$T_TMP/escape.pkts:1: not a packet (not every user may read the file: its words are not repeated)" <<<"$CLI_ERR"
	printf '%s\n' 'tcp 203.0.113.2:1 >' 'tcp 203.0.113.2:1 > 192.0.2.1:70000' \
		'tcp 203.0.113.2:1 > 192.0.2.1:2 => rewrite 0' 'connect tcp' >"$T_TMP/short.pkts"
	cli - verify -f "$T_TMP/seed.conf" --packets "$T_TMP/short.pkts"
	check "a line cut short, a port out of range: one line each, exit 1" "$(cli_result)" \
		test "$CLI_RC" -eq 1 -a "$(grep -c "^$T_TMP/short.pkts:[1-4]: " <<<"$CLI_ERR")" -eq 4
	check "  the missing destination named" "$CLI_ERR" \
		grep -qx "$T_TMP/short.pkts:1: '' where the destination, ADDR:PORT or \[ADDR\]:PORT, should be" <<<"$CLI_ERR"
	check "  port 70000 named" "$CLI_ERR" grep -q "^$T_TMP/short.pkts:2: '192.0.2.1:70000' where the destination" <<<"$CLI_ERR"
	check "  rewrite 0 refused" "$CLI_ERR" grep -qx "$T_TMP/short.pkts:3: rewrite needs a port (1-65535)" <<<"$CLI_ERR"
	expect_cli_error "--packet without its text: a usage error" 2 "option '--packet' needs an argument" \
		- verify -f "$T_TMP/seed.conf" --packet
	expect_cli_error "an empty --packet: no packets" 1 "no packets \(in --packet\)" \
		- verify -f "$T_TMP/seed.conf" --packet ''
	expect_cli_error "a packets file that is not there" 1 "$T_TMP/none.pkts: No such file" \
		- verify -f "$T_TMP/seed.conf" --packets "$T_TMP/none.pkts"
	expect_cli_error "no instance and no -f" 1 "not loaded at .*give the rules with -f CONFIG" \
		- verify --packet 'tcp 203.0.113.2:1 > 192.0.2.1:2' --pin-dir /sys/fs/bpf/"$T_PREFIX"-none
	expect_cli_error "a bad --host is a usage error" 2 "--host 'x' is not" \
		- verify -f "$T_TMP/seed.conf" --packet 'tcp 203.0.113.2:1 > 192.0.2.1:2' --host x
}

# live_state PIN: what a run of packets would move in the instance at PIN: its counters, its
# connections, its pending handshakes, its per-port counters, its local clients' peers.
live_state() {
	local map
	for map in stats flows pending_buckets port_counters; do
		printf '%s: ' "$map"
		bpftool -j map dump pinned "$1/maps/$map" | jq -cS . | md5sum
	done
}

test_live() {
	cgroup_add CG live
	pin_dir PIN live
	expect_cli_ok "load" server load --iface "$SERVER_IF" --cgroup "$CG" --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
	expect "traffic through it first" ok "https://$SERVER_ADDR:8445/" in_ns client
	# Nothing else may reach the instance meanwhile (a neighbour probe would count).
	in_ns server ip link set "$SERVER_IF" down
	before=$(live_state "$PIN")
	cli server verify --pin-dir "$PIN" --packets "$T_TMP/seed.pkts" --json
	after=$(live_state "$PIN")
	in_ns server ip link set "$SERVER_IF" up
	check "the loaded rules: TCP as in the seed's file" "$(cli_result) $CLI_OUT" json_matches \
		'[.packets[] | select(.as_expected | not) | .line] == [8, 9, 15, 16]'
	check "  (the UDP rule is not loaded: its packets pass)" "$CLI_OUT" json_matches \
		'[.packets[] | select(.line == 8 or .line == 9) | .verdict] == ["pass", "pass"]'
	check "the instance's counters, connections and pending entries did not move" \
		"before:
$before
after:
$after" test "$before" = "$after"
	expect "the instance still redirects" ok "https://$SERVER_ADDR:8445/" in_ns client
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
	# Where a CI job runs it: a new network namespace (lo only), nothing loaded.
	CLI_OUT=$(unshare --net timeout "$T_CLI_TIMEOUT" "$BPFREDIR" verify -f "$T_TMP/seed.conf" \
		--packets "$T_TMP/seed.pkts" 2>&1)
	CLI_RC=$?
	check "without an instance, in a fresh network namespace" "exit $CLI_RC: $CLI_OUT" \
		test "$CLI_RC" -eq 0 -a "$(grep -c '' <<<"$CLI_OUT")" -eq 15
}

# The worked example of bpfredir(8): import the recipe, verify it, apply it.
test_import_verify_apply() {
	pin_dir PIN import
	cat >"$T_TMP/recipe" <<'EOF'
*mangle
-A PREROUTING -p tcp -m tcp --dport 8443 -j MARK --set-xmark 0x1/0xffffffff
COMMIT
*nat
-A PREROUTING -p tcp -m tcp --dport 8445 -j REDIRECT --to-ports 8443
-A OUTPUT -o lo -p tcp -m tcp --dport 8445 -j REDIRECT --to-ports 8443
COMMIT
*filter
-A INPUT -m mark --mark 0x1 -j DROP
COMMIT
EOF
	cli - import -f "$T_TMP/recipe"
	sed -e "s|^# interface NAME .*|interface $SERVER_IF|" -e "/^cgroup/d" <<<"$CLI_OUT" >"$T_TMP/imported.conf"
	printf '%s\n' "tcp 192.0.2.1:40000 > $SERVER_ADDR:8445 syn => rewrite 8443" \
		"tcp 192.0.2.1:40000 > $SERVER_ADDR:8443 syn => drop" >"$T_TMP/gate.pkts"
	expect_cli_ok "the imported recipe passes the gate" - verify -f "$T_TMP/imported.conf" \
		--packets "$T_TMP/gate.pkts"
	expect_cli_ok "then it is applied" server apply -f "$T_TMP/imported.conf" --pin-dir "$PIN"
	expect "8445 reaches the service" ok "https://$SERVER_ADDR:8445/" in_ns client
	expect "8443 is hidden" dropped "https://$SERVER_ADDR:8443/" in_ns client
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

t_run_tests verify "$@"
