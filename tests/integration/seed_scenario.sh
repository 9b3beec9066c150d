#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The seed scenario end to end, with real sockets: the iptables recipe
#   nat PREROUTING REDIRECT 8445->8443, mangle MARK + filter DROP 8443,
#   nat OUTPUT -o lo REDIRECT 8445->8443
# done by bpfredir on a server namespace, probed with curl, lwp-request and raw SYNs from a
# client namespace and from processes in and out of the attached cgroup.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

ALL_TESTS="test_before_load test_load test_public_port test_hidden test_local_clients test_del
	test_move test_unload"
t_depends test_public_port test_load
t_depends test_hidden test_load
t_depends test_local_clients test_load
t_depends test_del test_load
t_depends test_move test_del
t_depends test_unload test_load

setup_tests() {
	t_require_scapy
	t_topology
	cgroup_add CG seed
	pin_dir PIN seed
	https_server server
	# A service on the client too: a local connect() to another host's 8445 must not be
	# redirected to it.
	https_server client

	S="https://$SERVER_ADDR"
	S2="https://$SERVER_ADDR2"
	LO=https://127.0.0.1
	client=(in_ns client)
	local_in_cg=(in_cgroup server "$CG")
	local_out_cg=(in_ns server)
}

test_before_load() {
	expect "before load: client -> :8443 works" ok "$S:8443/" "${client[@]}"
	expect "before load: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
}

# --- load and add ---
test_load() {
	expect_cli_ok "load --iface $SERVER_IF --cgroup" server load --iface "$SERVER_IF" --cgroup "$CG" --pin-dir "$PIN"
	check "load: pin dir exists" "$PIN missing" test -d "$PIN"
	ATTACHED=$(attached_progs server "$SERVER_IF" "$CG")
	TC=$(tc_kind)
	for hook in $TC/ingress:bpfredir_tc_in $TC/egress:bpfredir_tc_eg cgroup_inet4_connect:bpfredir_conn4; do
		check "load: $hook attached" "attached: $ATTACHED" grep -q "^$hook:" <<<"$ATTACHED"
	done
	mapfile -t PROG_IDS < <(cut -d: -f3 <<<"$ATTACHED")
	mapfile -t MAP_IDS < <(map_ids_of "${PROG_IDS[@]}")
	mapfile -t LINK_IDS < <(link_ids_of "${PROG_IDS[@]}")
	# Without tcx a clsact filter holds each TC program instead.
	mapfile -t LINKED_IDS < <(grep -v '^clsact/' <<<"$ATTACHED" | cut -d: -f3)
	check "load: every program but clsact's is held by a bpf link" \
		"programs: ${PROG_IDS[*]}, links: ${LINK_IDS[*]}" test "${#LINK_IDS[@]}" -eq "${#LINKED_IDS[@]}"
	expect_rules "list: no rules after load" server "$PIN" ""

	expect_cli_ok "add $PUBLIC_PORT $TARGET_PORT" server add "$PUBLIC_PORT" "$TARGET_PORT" --pin-dir "$PIN"
	expect_rules "list: $PUBLIC_PORT -> $TARGET_PORT tcp hidden" server "$PIN" "8445 8443 tcp true"
	check "no loader process left running" "a bpfredir process still runs" no_loader_running "$PIN"
}

# --- external clients reach the service on the public port ---
test_public_port() {
	expect "client curl -> :8445 gets the page" ok "$S:8445/" "${client[@]}"
	expect "client curl -> second address :8445 gets the page" ok "$S2:8445/" "${client[@]}"
	expect_lwp "client lwp-request -> :8445 gets 200" "$S:8445/" "${client[@]}"
	expect_syn_reply "SYN to :8445 is answered by SYN-ACK from sport 8445" client "$SERVER_ADDR" 8445 "8445 SA"
	expect_stat_grew "stats: rewritten > 0" server "$PIN" rewritten 0
	expect_stat_grew "stats: reverse_rewritten > 0" server "$PIN" reverse_rewritten 0
}

# --- the target port is hidden: dropped, not refused ---
test_hidden() {
	dropped=$(counter server "$PIN" hidden_dropped)
	expect "client curl -> :8443 times out (dropped)" dropped "$S:8443/" "${client[@]}"
	expect "client curl -> second address :8443 times out" dropped "$S2:8443/" "${client[@]}"
	expect_syn_reply "SYN to :8443 gets no answer" client "$SERVER_ADDR" 8443 "none"
	expect_stat_grew "stats: hidden_dropped increased" server "$PIN" hidden_dropped "${dropped:-0}"
}

# --- local clients: redirected only inside the cgroup, only to local addresses ---
test_local_clients() {
	redirected=$(counter server "$PIN" sock_redirected)
	expect "in cgroup: curl -> 127.0.0.1:8445 reaches 8443" ok "$LO:8445/" "${local_in_cg[@]}"
	expect "in cgroup: curl -> own address :8445 reaches 8443" ok "$S:8445/" "${local_in_cg[@]}"
	expect "in cgroup: curl -> own second address :8445" ok "$S2:8445/" "${local_in_cg[@]}"
	expect_lwp "in cgroup: lwp-request -> 127.0.0.1:8445 gets 200" "$LO:8445/" "${local_in_cg[@]}"
	expect_stat_grew "stats: sock_redirected increased" server "$PIN" sock_redirected "${redirected:-0}"
	expect "in cgroup: curl -> 127.0.0.1:8443 still works locally" ok "$LO:8443/" "${local_in_cg[@]}"
	expect "in cgroup: curl -> client (not local):8445 not redirected" refused \
		"https://$CLIENT_ADDR:8445/" "${local_in_cg[@]}"
	expect "outside cgroup: curl -> 127.0.0.1:8445 refused" refused "$LO:8445/" "${local_out_cg[@]}"
}

# --- del restores the original ---
test_del() {
	expect_cli_ok "del $PUBLIC_PORT" server del "$PUBLIC_PORT" --pin-dir "$PIN"
	expect_rules "list: no rules after del" server "$PIN" ""
	expect "after del: client -> :8443 works again" ok "$S:8443/" "${client[@]}"
	expect "after del: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
	expect "after del: in cgroup -> 127.0.0.1:8445 refused" refused "$LO:8445/" "${local_in_cg[@]}"
}

# --- move the public port: add the new one, then del the old ---
test_move() {
	expect_cli_ok "add $PUBLIC_PORT $TARGET_PORT again" server add "$PUBLIC_PORT" "$TARGET_PORT" --pin-dir "$PIN"
	expect "re-added: client -> :8445 works" ok "$S:8445/" "${client[@]}"
	expect_cli_ok "add 8446 $TARGET_PORT" server add 8446 "$TARGET_PORT" --pin-dir "$PIN"
	expect_rules "list: both public ports" server "$PIN" $'8445 8443 tcp true\n8446 8443 tcp true'
	expect "two rules: client -> :8446 works" ok "$S:8446/" "${client[@]}"
	expect_cli_ok "del $PUBLIC_PORT (moving to 8446)" server del "$PUBLIC_PORT" --pin-dir "$PIN"
	check "no loader process running between commands" "a bpfredir process still runs" no_loader_running "$PIN"
	expect_rules "list: only 8446 left" server "$PIN" "8446 8443 tcp true"
	expect "moved: client -> :8446 works" ok "$S:8446/" "${client[@]}"
	expect_lwp "moved: client lwp-request -> :8446 gets 200" "$S:8446/" "${client[@]}"
	expect "moved: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
	expect "moved: client -> :8443 still dropped" dropped "$S:8443/" "${client[@]}"
	expect "moved: in cgroup -> 127.0.0.1:8446 works" ok "$LO:8446/" "${local_in_cg[@]}"
	expect "moved: in cgroup -> 127.0.0.1:8445 refused" refused "$LO:8445/" "${local_in_cg[@]}"
}

# --- unload detaches everything ---
test_unload() {
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
	check "unload: pin dir removed" "$PIN still exists" test ! -e "$PIN"
	check "unload: nothing attached to $SERVER_IF or the cgroup" "still attached: $(attached_progs server "$SERVER_IF" "$CG")" \
		test -z "$(attached_progs server "$SERVER_IF" "$CG")"
	check "unload: programs ${PROG_IDS[*]} freed" "still loaded" wait_for 5 gone_ids prog "${PROG_IDS[@]}"
	check "unload: links ${LINK_IDS[*]} freed" "still there" wait_for 5 gone_ids link "${LINK_IDS[@]}"
	check "unload: maps ${MAP_IDS[*]} freed" "still there" wait_for 5 gone_ids map "${MAP_IDS[@]}"
	check "unload: bpftool shows no new bpfredir_* program" "$(new_bpfredir_progs | paste -sd' ' -)" \
		wait_for 5 no_new_bpfredir_progs
	expect "after unload: client -> :8443 works directly" ok "$S:8443/" "${client[@]}"
	expect "after unload: client -> :8446 refused" refused "$S:8446/" "${client[@]}"
	expect "after unload: in cgroup -> 127.0.0.1:8446 refused" refused "$LO:8446/" "${local_in_cg[@]}"
}

t_run_tests seed_scenario "$@"
