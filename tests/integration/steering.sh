#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Socket steering (load --steering socket), end to end with real services and clients: the
# seed scenario's TCP rule handed to the listener at the kernel's socket lookup instead of
# rewritten packet by packet.
#   - curl and lwp-request reach openssl s_server through 8445, v4 and v6; the SYN-ACK comes
#     from 8445; no connection table holds anything;
#   - 8443 is dropped silently, or answered as a closed port with --reject;
#   - local clients, in the attached cgroup or not, reach it on 127.0.0.1:8445;
#   - a service that restarts in an attached cgroup is followed with no command; one started
#     elsewhere by the next command; a listener bound to 127.0.0.1 is not reachable from
#     outside through the public port;
#   - a held connection outlives `del`; a reload keeps the mode, and changing it asks for an
#     unload; unload leaves the services as they were.
#
#   client 192.0.2.1 / 2001:db8:5::1 (cli0) ---- (srv0) 192.0.2.2, .3 / 2001:db8:5::2 server
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

ALL_TESTS="test_load test_public_port test_addr_rule test_hidden test_reject test_local_clients
	test_restart test_attach test_bound_address test_reuseport test_held_across_del test_reload
	test_apply test_unload test_apply_fresh"
for t in test_public_port test_addr_rule test_hidden test_reject test_local_clients test_restart \
	test_attach test_bound_address test_reuseport test_held_across_del test_reload test_apply \
	test_unload; do
	t_depends "$t" test_load
done
t_depends test_apply_fresh test_unload

CLIENT6=2001:db8:5::1
SERVER6=2001:db8:5::2
ECHO_PORT=8444

setup_tests() {
	t_require socat
	t_require_scapy
	t_topology
	ip -n "$(ns client)" addr add "$CLIENT6/64" dev "$CLIENT_IF" nodad
	ip -n "$(ns server)" addr add "$SERVER6/64" dev "$SERVER_IF" nodad
	cgroup_add CG steering
	cgroup_add CG2 steering2
	pin_dir PIN steering
	P=(--pin-dir "$PIN")
	# An echo service in the cgroup, for connections held open.
	server server "$ECHO_PORT" tcp "${JOIN_CGROUP[@]}" "$CG" \
		socat "TCP-LISTEN:$ECHO_PORT,fork,reuseaddr" EXEC:cat
	# Running before load, outside any attached cgroup: `add` finds it.
	https_server server
	SERVICE_PID=${T_PIDS[-1]}
	S="https://$SERVER_ADDR"
	LO=https://127.0.0.1
	client=(in_ns client)
	local_in_cg=(in_cgroup server "$CG")
	local_out_cg=(in_ns server)
}

# flows and pending: entries in use (empty if bpftool failed).
table_used() {
	if [[ $1 == pending ]]; then
		pending_used "$PIN"
	else
		bpftool -j map dump pinned "$PIN/maps/$1" 2>/dev/null | jq length 2>/dev/null
	fi
}

# listeners_registered: the ports of the listeners status shows, as "ADDR:PORT" lines.
listeners_registered() {
	cli server status --json "${P[@]}" >/dev/null
	json_get '.steering.listeners[] | "\(.addr):\(.port)"'
}

# https_in_cgroup: the s_server started again as a member of the attached cgroup.
https_in_cgroup() {
	server server "$TARGET_PORT" tcp "${JOIN_CGROUP[@]}" "$CG" \
		openssl s_server -accept "$TARGET_PORT" -www -quiet -cert "$CERT" -key "$KEY"
	SERVICE_PID=${T_PIDS[-1]}
}

# rule_stat NAME: the 8445 rule's counter NAME in `list --json`.
rule_stat() {
	list_json server "$PIN"
	json_get --arg c "$1" '.rules[] | select(.public_port == 8445) | .stats[$c]'
}

service_stop() { server_stop "$SERVICE_PID" server "$TARGET_PORT"; }

test_load() {
	expect_cli_error "load --steering bogus is a usage error" 2 "packet|socket" server load \
		--iface "$SERVER_IF" --steering bogus "${P[@]}"
	expect_cli_ok "load --steering socket" server load --iface "$SERVER_IF" --cgroup "$CG" \
		--steering socket "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	expect_rules "list: 8445 -> 8443 tcp hidden" server "$PIN" "8445 8443 tcp true"
	expect_cli_ok "status --json" server status --json "${P[@]}"
	check "status --json: steering socket, on the interface too" "$CLI_OUT" json_matches \
		'.steering.mode == "socket" and (.interfaces[0].steering == "socket")'
	check "status --json: the running service's listener is registered" "$CLI_OUT" \
		json_matches '[.steering.listeners[] | select(.port == 8443)] | length >= 1'
	expect_cli_ok "status" server status "${P[@]}"
	check "status: the interface line names the steering" "$CLI_OUT" \
		grep -q "$SERVER_IF (ifindex [0-9]*): .*; steering socket (TCP)" <<<"$CLI_OUT"
	check "status: the listener is shown" "$CLI_OUT" grep -Eq "^listeners: .*:8443" <<<"$CLI_OUT"
}

test_public_port() {
	steered=$(counter server "$PIN" steered)
	expect "client curl -> :8445 gets the page" ok "$S:8445/" "${client[@]}"
	expect "client curl -> second address :8445 gets the page" ok "https://$SERVER_ADDR2:8445/" \
		"${client[@]}"
	expect "client curl -> [v6]:8445 gets the page" ok "https://[$SERVER6]:8445/" "${client[@]}"
	expect_lwp "client lwp-request -> :8445 gets 200" "$S:8445/" "${client[@]}"
	expect_syn_reply "SYN to :8445 is answered by SYN-ACK from 8445" client "$SERVER_ADDR" 8445 \
		"8445 SA"
	expect_stat_grew "stats: steered grew" server "$PIN" steered "${steered:-0}"
	expect_eq "no connection table entry: flows" 0 "$(table_used flows)" "flows entries"
	expect_eq "no connection table entry: pending" 0 "$(table_used pending)" "pending entries"
	expect_eq "stats: nothing rewritten by TC" 0 "$(counter server "$PIN" rewritten)" "rewritten"
	expect "client curl -> :8446 (no rule) refused" refused "$S:8446/" "${client[@]}"
}

# A rule for one address is steered there only (the set decides, not the per-port shortcut).
test_addr_rule() {
	expect_cli_ok "add 8449 8443 --addr $SERVER_ADDR2" server add 8449 8443 --addr "$SERVER_ADDR2" \
		"${P[@]}"
	expect "--addr: client -> $SERVER_ADDR2:8449 gets the page" ok "https://$SERVER_ADDR2:8449/" \
		"${client[@]}"
	expect "--addr: client -> $SERVER_ADDR:8449 refused" refused "$S:8449/" "${client[@]}"
	expect_cli_ok "del 8449" server del 8449 "${P[@]}"
	expect "after del: client -> $SERVER_ADDR2:8449 refused" refused "https://$SERVER_ADDR2:8449/" \
		"${client[@]}"
}

test_hidden() {
	dropped=$(counter server "$PIN" hidden_dropped)
	expect "client curl -> :8443 times out (dropped)" dropped "$S:8443/" "${client[@]}"
	expect "client curl -> [v6]:8443 times out" dropped "https://[$SERVER6]:8443/" "${client[@]}"
	expect_syn_reply "SYN to :8443 gets no answer" client "$SERVER_ADDR" 8443 "none"
	expect_stat_grew "stats: hidden_dropped grew" server "$PIN" hidden_dropped "${dropped:-0}"
}

test_reject() {
	expect_cli_ok "del 8445" server del 8445 "${P[@]}"
	expect_cli_ok "add 8445 8443 --reject" server add 8445 8443 --reject "${P[@]}"
	expect_syn_reply "--reject: SYN to :8443 gets RST from 8443" client "$SERVER_ADDR" 8443 "8443 RA"
	expect "--reject: client curl -> :8443 refused" refused "$S:8443/" "${client[@]}"
	expect "--reject: client curl -> :8445 still gets the page" ok "$S:8445/" "${client[@]}"
	expect_cli_ok "del 8445" server del 8445 "${P[@]}"
	expect_cli_ok "add 8445 8443 again" server add 8445 8443 "${P[@]}"
}

test_local_clients() {
	expect "in cgroup: curl -> 127.0.0.1:8445 reaches 8443" ok "$LO:8445/" "${local_in_cg[@]}"
	expect "outside the cgroup: curl -> 127.0.0.1:8445 steered at socket lookup" ok \
		"$LO:8445/" "${local_out_cg[@]}"
	expect "outside the cgroup: curl -> own address :8445" ok "$S:8445/" "${local_out_cg[@]}"
	expect "outside the cgroup: curl -> [::1]:8445" ok "https://[::1]:8445/" "${local_out_cg[@]}"
	expect "local: curl -> 127.0.0.1:8443 still works" ok "$LO:8443/" "${local_out_cg[@]}"
}

test_restart() {
	service_stop
	refused=$(rule_stat steer_refused)
	expect "service stopped: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
	check "list: the rule counts the refused connection" "steer_refused $refused -> $(rule_stat steer_refused)" \
		test "$(rule_stat steer_refused)" -gt "${refused:-0}"
	expect_cli_ok "list (table)" server list "${P[@]}"
	check "list: the table's REFUSED column has the rule's count" "$CLI_OUT" \
		awk -v n="$(rule_stat steer_refused)" '$1 == "PUBLIC" { col = NF } $1 == 8445 && $2 == 8443 {
			found = $col == n } END { exit !found }' <<<"$CLI_OUT"
	expect_cli_ok "stats --interval 1 --count 1 (table)" server stats --interval 1 --count 1 "${P[@]}"
	check "stats --interval: the socket rule has a REFUSED/s rate" "$CLI_OUT" \
		awk '$1 == "PUBLIC" { col = NF; named = $NF == "REFUSED/s" } $1 == 8445 && $2 == 8443 {
			found = named && $col ~ /^[0-9]+\.[0-9]$/ } END { exit !found }' <<<"$CLI_OUT"

	expect_cli_ok "status while stopped" server status "${P[@]}"
	check "status: warns that 8443 has no listener" "$CLI_OUT" \
		grep -q "no listener on 8443 is registered" <<<"$CLI_OUT"
	https_in_cgroup
	expect "restarted in the attached cgroup: client -> :8445, no command run" ok "$S:8445/" \
		"${client[@]}"
	expect_cli_ok "stats --prometheus" server stats --prometheus "${P[@]}"
	check "stats --prometheus: the rule's steered connections" "$CLI_OUT" \
		grep -Eq 'public_port="8445".*counter="rewritten"\} [1-9]' <<<"$CLI_OUT"
	check "stats --prometheus: the rule's refused ones" "$CLI_OUT" \
		grep -Eq 'public_port="8445".*counter="steer_refused"\} [1-9]' <<<"$CLI_OUT"
	check "stats --prometheus: the totals" "$CLI_OUT" \
		grep -Eq 'verdict="steered"\} [1-9]' <<<"$CLI_OUT"
	service_stop
	https_server server
	SERVICE_PID=${T_PIDS[-1]}
	expect "restarted outside any attached cgroup: refused until a command runs" refused \
		"$S:8445/" "${client[@]}"
	expect_cli_ok "add 8446 8443 (any rule command registers it)" server add 8446 8443 "${P[@]}"
	expect "then: client -> :8445 gets the page" ok "$S:8445/" "${client[@]}"
	expect "then: client -> :8446 too" ok "$S:8446/" "${client[@]}"
	expect_cli_ok "del 8446" server del 8446 "${P[@]}"
}

# A cgroup attached later (a container's) gets the sock_ops program too: a service that starts
# listening there is followed; detach takes it away with the socket hooks.
test_attach() {
	local id
	id=$(stat -c %i "$CG2")
	expect_cli_ok "attach --cgroup (a second cgroup)" server attach --cgroup "$CG2" "${P[@]}"
	check "attach: the cgroup's sock_ops link is pinned" "$(ls "$PIN/links")" \
		test -e "$PIN/links/cgroup_${id}_listen"
	service_stop
	server server "$TARGET_PORT" tcp "${JOIN_CGROUP[@]}" "$CG2" \
		openssl s_server -accept "$TARGET_PORT" -www -quiet -cert "$CERT" -key "$KEY"
	SERVICE_PID=${T_PIDS[-1]}
	expect "started in the attached second cgroup: client -> :8445, no command run" ok \
		"$S:8445/" "${client[@]}"
	expect_cli_ok "detach --cgroup (the second)" server detach --cgroup "$CG2" "${P[@]}"
	check "detach: the sock_ops link is gone" "$(ls "$PIN/links")" \
		test ! -e "$PIN/links/cgroup_${id}_listen"
	service_stop
	https_in_cgroup
}

# A listener bound to one address is reached through the public port on that address only,
# as the kernel itself would.
test_bound_address() {
	service_stop
	server server "$TARGET_PORT" tcp openssl s_server -accept "127.0.0.1:$TARGET_PORT" -www \
		-quiet -cert "$CERT" -key "$KEY"
	SERVICE_PID=${T_PIDS[-1]}
	expect_cli_ok "del 8445" server del 8445 "${P[@]}"
	expect_cli_ok "add 8445 8443 (registers the 127.0.0.1 listener)" server add 8445 8443 "${P[@]}"
	check "the listener is registered under 127.0.0.1" "$(listeners_registered)" \
		grep -qx "127.0.0.1:8443" <<<"$(listeners_registered)"
	expect "127.0.0.1-only listener: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
	expect "127.0.0.1-only listener: local -> 127.0.0.1:8445 reaches it" ok "$LO:8445/" \
		"${local_out_cg[@]}"
	service_stop
	https_in_cgroup
}

# hold_open PUBLIC TARGET: a connection through PUBLIC, held open by socat as coprocess HOLD,
# to an echo service on TARGET (rule PUBLIC -> TARGET); hold_echo NAME TEXT: TEXT comes back.
hold_open() {
	expect_cli_ok "add $1 $2" server add "$1" "$2" "${P[@]}"
	coproc HOLD { exec nsenter --net="$(ns_path client)" -- timeout 60 socat - "TCP:$SERVER_ADDR:$1"; }
	T_PIDS+=("$HOLD_PID")
	hold_echo "held: echoes through $1" first
}

hold_echo() {
	local line=
	echo "$2" >&"${HOLD[1]}"
	read -r -t 5 line <&"${HOLD[0]}"
	expect_eq "$1" "$2" "$line" "echo"
}

hold_end() {
	local fd=${HOLD[1]}
	exec {fd}>&-
	wait "$HOLD_PID" 2>/dev/null
}

# reuseport_member: one member of an SO_REUSEPORT group on $GROUP_PORT, in the attached
# cgroup, answering each connection with its pid; its pid (which it writes once it listens)
# goes in MEMBER_PID.
GROUP_PORT=8451
reuseport_member() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	in_cgroup server "$CG" python3 -c '
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
open(sys.argv[2], "w").write("%d" % os.getpid())
while True:
    c, _ = s.accept()
    c.sendall(b"%d\n" % os.getpid())
    c.close()
' "$GROUP_PORT" "$T_TMP/member.ready" </dev/null >/dev/null 2>&1 &
	T_PIDS+=("$!")
	wait_for 5 test -s "$T_TMP/member.ready" || t_abort "a reuseport member did not listen"
	MEMBER_PID=$(cat "$T_TMP/member.ready")
	T_PIDS+=("$MEMBER_PID")
	rm -f "$T_TMP/member.ready"
}

# member_stop PID: the member gone, its socket closed (not a child of this shell).
member_stop() {
	kill "$1"
	wait_for 5 bash -c "! kill -0 $1 2>/dev/null" || t_abort "member $1 did not exit"
}

# group_answers N: the pids that answer N connections through 8450, sorted and unique.
group_answers() {
	local i
	for ((i = 0; i < $1; i++)); do
		in_ns client timeout 3 socat -u "TCP:$SERVER_ADDR:8450" - 2>/dev/null
	done | sort -u | paste -sd' ' -
}

# Every member of a group serves through the public port, and the group stays reachable
# when the member the wildcard slot holds closes: the one that started last, which both the
# sock_ops program and the loader's scan register last.
test_reuseport() {
	local a b c
	reuseport_member
	a=$MEMBER_PID
	reuseport_member
	b=$MEMBER_PID
	expect_cli_ok "add 8450 $GROUP_PORT" server add 8450 "$GROUP_PORT" "${P[@]}"
	check "reuseport: both members answer through 8450" "answers: $(group_answers 40)" \
		test "$(group_answers 40)" == "$(printf '%s\n' "$a" "$b" | sort | paste -sd' ' -)"
	member_stop "$b"
	expect_eq "reuseport: the last member gone: the first answers every connection" "$a" \
		"$(group_answers 10)" "answers"
	reuseport_member
	c=$MEMBER_PID
	member_stop "$c"
	expect_eq "reuseport: a member that came and went: the first still answers" "$a" \
		"$(group_answers 10)" "answers"
	member_stop "$a"
	expect_eq "reuseport: every member gone: refused" "" "$(group_answers 3)" "answers"
	expect_cli_ok "del 8450" server del 8450 "${P[@]}"
}

test_held_across_del() {
	hold_open 8447 "$ECHO_PORT"
	expect_eq "held: no connection table entry" 0 "$(table_used flows)" "flows entries"
	expect_cli_ok "del 8447" server del 8447 "${P[@]}"
	hold_echo "held: still echoes after del" second
	check "after del: a new connection to 8447 is refused" "it connected" \
		bash -c "! nsenter --net=$(ns_path client) -- timeout 5 socat -u TCP:$SERVER_ADDR:8447 - </dev/null 2>/dev/null"
	expect_cli_ok "add 8447 $TARGET_PORT (the port moves)" server add 8447 "$TARGET_PORT" "${P[@]}"
	hold_echo "held: still echoes on its service after the port moved" third
	expect_cli_ok "del 8447 again" server del 8447 "${P[@]}"
	hold_end
}

test_reload() {
	expect_cli_ok "load again, same steering" server load --iface "$SERVER_IF" --steering socket \
		"${P[@]}"
	check "load again: same build" "$CLI_OUT" grep -q "same build" <<<"$CLI_OUT"
	expect_cli_error "load --steering packet over it asks for an unload" 1 \
		"loaded with --steering socket; 'bpfredir unload' first" server load \
		--iface "$SERVER_IF" "${P[@]}"
	expect "after the reloads: client -> :8445 gets the page" ok "$S:8445/" "${client[@]}"
}

# conf_with STEERING: a config file for this instance with that steering line.
conf_with() {
	printf 'interface %s\ncgroup %s\nsteering %s\nrule 8445 8443\n' "$SERVER_IF" "$CG" "$1" \
		>"$T_TMP/steer.conf"
}

test_apply() {
	conf_with bogus
	expect_cli_error "apply: a steering word it does not know" 1 \
		"steer.conf:3:10: expected 'steering packet\|socket'" \
		server apply -f "$T_TMP/steer.conf" "${P[@]}"
	printf 'steering socket\nsteering socket\n' >"$T_TMP/twice.conf"
	expect_cli_error "apply: steering given twice" 1 "twice.conf:2:1: steering already set at line 1" \
		server apply -f "$T_TMP/twice.conf" "${P[@]}"
	conf_with packet
	expect_cli_error "apply of 'steering packet' over it asks for an unload" 1 \
		"steer.conf:3:10: steering packet, but the instance is loaded with --steering socket; 'bpfredir unload' first" \
		server apply -f "$T_TMP/steer.conf" "${P[@]}"
	conf_with socket
	expect_cli_ok "apply of 'steering socket'" server apply -f "$T_TMP/steer.conf" "${P[@]}"
	expect_rules "apply: the file's rule" server "$PIN" "8445 8443 tcp true"
	expect "apply: client -> :8445 gets the page" ok "$S:8445/" "${client[@]}"
}

test_unload() {
	hold_open 8448 "$ECHO_PORT"
	expect_cli_ok "unload" server unload "${P[@]}"
	hold_echo "held through 8448: still echoes after unload" after-unload
	hold_end
	check "unload: pin dir removed" "$PIN still exists" test ! -e "$PIN"
	check "unload: nothing attached to $SERVER_IF or the cgroup" \
		"still attached: $(attached_progs server "$SERVER_IF" "$CG")" \
		test -z "$(attached_progs server "$SERVER_IF" "$CG")"
	expect "after unload: client -> :8443 works directly" ok "$S:8443/" "${client[@]}"
	expect "after unload: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
	check "unload: bpftool shows no new bpfredir_* program" "$(new_bpfredir_progs | paste -sd' ' -)" \
		wait_for 5 no_new_bpfredir_progs
}

# apply on a host with nothing loaded loads with the file's steering.
test_apply_fresh() {
	conf_with socket
	expect_cli_ok "apply loads with 'steering socket'" server apply -f "$T_TMP/steer.conf" "${P[@]}"
	expect_cli_ok "status --json" server status --json "${P[@]}"
	check "apply: status says steering socket" "$CLI_OUT" json_matches '.steering.mode == "socket"'
	expect "apply: client -> :8445 gets the page" ok "$S:8445/" "${client[@]}"
	expect_cli_ok "unload" server unload "${P[@]}"
}

t_run_tests steering "$@"
