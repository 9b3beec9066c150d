#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# A loaded instance taken over by another build, a connection held open across each: load
# again with the same build and with a newer one (this tree with other BPF instructions), the
# upgrade by apply, and the upgrades from older commits whose maps differ (socket steering's
# first layout, the per-rule counters' hash, pending's LRU hash). The other loaders come from
# make tests-build (tests/lib/bpfredir.sh: T_NEWER, old_build).
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_reload test_upgrade test_upgrade_layout test_upgrade_pending test_upgrade_steering"
t_depends test_upgrade test_reload
t_depends test_upgrade_steering test_reload

setup_tests() {
	t_require socat
	t_topology
	client=(in_ns client)
}

# held_echo NAME: one connection through 9445 from the client, in the background (its pid in
# $held): one echo now and one after $T_TMP/go-NAME appears, each printed to $T_TMP/NAME.out
# (helpers/held_echo.py).
held_echo() {
	"${client[@]}" /usr/bin/python3 "$T_HELPERS/held_echo.py" "$SERVER_ADDR" 9445 "$T_TMP/go-$1" \
		>"$T_TMP/$1.out" 2>&1 &
	held=$!
	wait_for 5 grep -q before "$T_TMP/$1.out"
}

# ingress_ids: bpfredir's programs at srv0's ingress (tcx, or clsact filters).
ingress_ids() {
	attached_progs server "$SERVER_IF" | grep '/ingress:bpfredir_tc_in:' | cut -d: -f3 | paste -sd, -
}

# --- load again: same build, newer build ------------------------------------------------
test_reload() {
	pin_dir PINR reload
	server server 9443 tcp socat TCP-LISTEN:9443,fork,reuseaddr EXEC:cat
	expect_cli_ok "reload: first load" server load --iface "$SERVER_IF" --pin-dir "$PINR"
	expect_cli_ok "reload: add 9445 9443" server add 9445 9443 --pin-dir "$PINR"
	cli server load --iface "$SERVER_IF" --pin-dir "$PINR"
	check "load again with the same build: nothing changes" "$(cli_result) $CLI_OUT" \
		grep -q "same build" <<<"$CLI_OUT"
	held_echo held
	old_ids=$(ingress_ids)
	if newer_built "load of a newer build replaces the programs"; then
		CLI_OUT=$(in_ns server "$T_NEWER" load --iface "$SERVER_IF" --pin-dir "$PINR" 2>&1)
		check "load of a newer build replaces the programs" "$CLI_OUT" \
			grep -q "programs replaced by this build, maps kept" <<<"$CLI_OUT"
	fi
	check "newer build: other programs at ingress" "before $old_ids, after $(ingress_ids)" \
		test "$old_ids" != "$(ingress_ids)" -a -n "$(ingress_ids)"
	expect_rules "newer build: the rules are kept" server "$PINR" "9445 9443 tcp true"
	touch "$T_TMP/go-held"
	wait "$held"
	check "newer build: a connection open across the reload still works" "$(cat "$T_TMP/held.out")" \
		grep -qx after "$T_TMP/held.out"
	"${client[@]}" timeout 3 bash -c "exec 3<>/dev/tcp/$SERVER_ADDR/9445" 2>/dev/null
	check "newer build: new connections through 9445" "connect failed" test $? -eq 0
	cli server load --iface "$SERVER_IF" --flows 2048 --pin-dir "$PINR"
	check "load again with another --flows is refused" "$(cli_result)" \
		grep -q "loaded with --flows 65536" <<<"$CLI_ERR"
	expect_cli_ok "reload: unload" server unload --pin-dir "$PINR"
}

# build_commit LABEL COMMIT: OLD is the loader of an older COMMIT (old_build: make tests-build
# built it, or it is built now); a failure (not in this clone's history, or the build) is
# LABEL's, and the caller returns.
build_commit() {
	local label=$1 commit=$2 err
	OLD=$(old_build_path "$commit")
	if ! git -C "$T_REPO" cat-file -e "$commit^{commit}" 2>/dev/null; then
		fail "$label: build $commit" "not in the history of $T_REPO (test a clone)"
		return 1
	fi
	if ! err=$(old_build "$commit" 2>&1); then
		fail "$label: build $commit" "$err"
		return 1
	fi
}

# --- socket steering loaded by an older build: its links updated in place, maps added ------
# The first build with socket steering kept every listener in one hash; this one adds the
# wildcard slots, steer_fast and the interfaces, which the upgrade makes before the programs
# switch. The held connection and the listener the older build registered carry over.
STEER_COMMIT=${UPGRADE_COMMITS[0]}

# steer_link_prog: the program id the steering link runs.
steer_link_prog() {
	bpftool -j link show pinned "$PINS/links/steer_sk_lookup" 2>/dev/null | jq -r '.prog_id'
}

test_upgrade_steering() {
	local before
	pin_dir PINS upgrade-steering
	build_commit "steering upgrade" "$STEER_COMMIT" || return
	BPFREDIR=$OLD expect_cli_ok "steering upgrade: load --steering socket, older build" \
		server load --iface "$SERVER_IF" --steering socket --pin-dir "$PINS"
	BPFREDIR=$OLD expect_cli_ok "steering upgrade: add 9445 9443 with it" server \
		add 9445 9443 --pin-dir "$PINS"
	held_echo held-steering
	before=$(steer_link_prog)
	expect_cli_ok "steering upgrade: load with this build" server load --iface "$SERVER_IF" \
		--steering socket --pin-dir "$PINS"
	check "steering upgrade: the programs are replaced" "$CLI_OUT" \
		grep -q "programs replaced by this build, maps kept" <<<"$CLI_OUT"
	check "steering upgrade: the link runs another program" "before $before, after $(steer_link_prog)" \
		test -n "$before" -a "$before" != "$(steer_link_prog)"
	touch "$T_TMP/go-held-steering"
	wait "$held"
	check "steering upgrade: a connection open across it still works" \
		"$(cat "$T_TMP/held-steering.out")" grep -qx after "$T_TMP/held-steering.out"
	"${client[@]}" timeout 3 bash -c "exec 3<>/dev/tcp/$SERVER_ADDR/9445" 2>/dev/null
	check "steering upgrade: new connections through 9445" "connect failed" test $? -eq 0
	expect_cli_ok "steering upgrade: status" server status --json --pin-dir "$PINS"
	check "steering upgrade: the listener is registered" "$CLI_OUT" \
		json_matches '[.steering.listeners[] | select(.port == 9443)] | length >= 1'
	expect_cli_ok "steering upgrade: unload" server unload --pin-dir "$PINS"
}

# --- apply of a newer build: what the service's reload or restart does after an upgrade ----
test_upgrade() {
	pin_dir PINU upgrade
	printf 'interface %s\nrule 9445 9443\n' "$SERVER_IF" >"$T_TMP/upgrade.conf"
	expect_cli_ok "upgrade: apply with this build" server apply -f "$T_TMP/upgrade.conf" --pin-dir "$PINU"
	held_echo held-upgrade
	PINR=$PINU
	old_ids=$(ingress_ids)
	if newer_built "upgrade: apply of a newer build replaces the programs in place"; then
		CLI_OUT=$(in_ns server "$T_NEWER" apply -f "$T_TMP/upgrade.conf" --pin-dir "$PINU" 2>&1)
		check "upgrade: apply of a newer build replaces the programs in place" "$CLI_OUT" \
			grep -qx "programs replaced by this build, maps kept" <<<"$CLI_OUT"
		CLI_OUT=$(in_ns server "$T_NEWER" apply -f "$T_TMP/upgrade.conf" --pin-dir "$PINU" 2>&1)
		check "upgrade: the same again changes nothing" "$CLI_OUT" test "$CLI_OUT" = "nothing to change"
	fi
	check "upgrade: other programs at ingress" "before $old_ids, after $(ingress_ids)" \
		test "$old_ids" != "$(ingress_ids)" -a -n "$(ingress_ids)"
	expect_rules "upgrade: the rules are kept" server "$PINU" "9445 9443 tcp true"
	touch "$T_TMP/go-held-upgrade"
	wait "$held"
	check "upgrade: a connection open across the upgrade still works" "$(cat "$T_TMP/held-upgrade.out")" \
		grep -qx after "$T_TMP/held-upgrade.out"
	expect_cli_ok "upgrade: unload" server unload --pin-dir "$PINU"
}

# --- load of a build whose maps differ: from the last build with the port_stats hash -------
# That build kept two entries per connection in flows; this one keeps one and finds the
# ingress entries left on the ports marked for them when its programs take over. The held
# connection shows it: its rule moved (9545 -> 9547) with the older build, so this build knows
# its target only from its ingress entry.
LAYOUT_COMMIT=${UPGRADE_COMMITS[1]}

# rewritten_9545: the translations `list --json` counts for 9545 (run with BPFREDIR set).
rewritten_9545() {
	cli server list --json --pin-dir "$PINL"
	jq -r '.rules[] | select(.public_port == 9545) | .stats.rewritten' <<<"$CLI_OUT"
}

test_upgrade_layout() {
	local before after
	pin_dir PINL layout
	build_commit layout "$LAYOUT_COMMIT" || return
	server server 9543 tcp socat TCP-LISTEN:9543,fork,reuseaddr EXEC:cat
	server server 9547 tcp socat TCP-LISTEN:9547,fork,reuseaddr EXEC:cat
	BPFREDIR=$OLD expect_cli_ok "layout: load with the older build" server \
		load --iface "$SERVER_IF" --pin-dir "$PINL"
	BPFREDIR=$OLD expect_cli_ok "layout: add 9545 9543 with it" server \
		add 9545 9543 --pin-dir "$PINL"
	"${client[@]}" /usr/bin/python3 "$T_HELPERS/held_echo.py" "$SERVER_ADDR" 9545 \
		"$T_TMP/go-layout" >"$T_TMP/layout.out" 2>&1 &
	held=$!
	wait_for 5 grep -q before "$T_TMP/layout.out"
	BPFREDIR=$OLD expect_cli_ok "layout: del 9545 with it" server \
		del 9545 --pin-dir "$PINL"
	BPFREDIR=$OLD expect_cli_ok "layout: add 9545 9547 with it" server \
		add 9545 9547 --pin-dir "$PINL"
	for _ in 1 2 3; do
		"${client[@]}" timeout 3 socat -T 2 - "TCP:$SERVER_ADDR:9545" <<<x >/dev/null 2>&1
	done
	before=$(BPFREDIR=$OLD rewritten_9545)
	check "layout: the older build counted the connections" "rewritten: $before" \
		test "${before:-0}" -gt 0
	check "layout: this build's list shows the older build's counts" \
		"older build $before, this build $(rewritten_9545)" test "$(rewritten_9545)" = "$before"
	cli server status --json --pin-dir "$PINL"
	check "layout: this build's status says another build's programs run" "$(cli_result)" \
		test "$(jq -r .this_build <<<"$CLI_OUT")" = false
	cli server add 9546 9543 --pin-dir "$PINL"
	check "layout: this build's add says the older build must be upgraded" "$(cli_result)" \
		grep -q "loaded by another build, which has no .*/port_slots: 'bpfredir load' or" \
		<<<"$CLI_ERR"
	check "layout: ... exits 1 and adds nothing" "$(cli_result)" test "$CLI_RC" -eq 1
	cli server load --iface "$SERVER_IF" --pin-dir "$PINL"
	check "layout: load with this build replaces the programs" "$(cli_result) $CLI_OUT" \
		grep -q "programs replaced by this build, maps kept" <<<"$CLI_OUT"
	check "layout: the older build's port_stats is gone" "$(ls "$PINL/maps")" \
		test ! -e "$PINL/maps/port_stats" -a -e "$PINL/maps/port_slots"
	expect_rules "layout: the rule is kept" server "$PINL" "9545 9547 tcp true"
	cli server status --pin-dir "$PINL"
	check "layout: status says this build's programs run now" "$(cli_result) $CLI_OUT" \
		grep -qx "programs:   this build's" <<<"$CLI_OUT"
	after=$(rewritten_9545)
	check "layout: the counts are carried over" "before $before, after $after" \
		test "$after" = "$before"
	touch "$T_TMP/go-layout"
	wait "$held"
	check "layout: a connection open across the upgrade, on its rule's target before, works" \
		"$(cat "$T_TMP/layout.out")" grep -qx after "$T_TMP/layout.out"
	"${client[@]}" timeout 3 socat -T 2 - "TCP:$SERVER_ADDR:9545" <<<x >/dev/null 2>&1
	check "layout: new connections through 9545" "socat exit $?" test $? -eq 0
	check "layout: ... counted in the new slots" "before $after, now $(rewritten_9545)" \
		test "$(rewritten_9545)" -gt "$after"
	expect_cli_ok "layout: unload" server unload --pin-dir "$PINL"
}

# --- load of a build whose maps differ: from the last build with pending an LRU hash ------
# That build kept new and closing connections in a hash named pending; this one keeps them in
# pending_buckets. The upgrade carries them over and the old map goes. The connection the
# service closed first shows it: with its rule deleted after the upgrade, its last packets are
# translated only by its closing entries.
PENDING_COMMIT=${UPGRADE_COMMITS[2]}

test_upgrade_pending() {
	local untracked
	pin_dir PINP pending
	build_commit pending "$PENDING_COMMIT" || return
	server server 9643 tcp python3 "$T_HELPERS/closing_conn.py" serve 9643 "$T_TMP/closing.got"
	BPFREDIR=$OLD expect_cli_ok "pending: load with the older build" server \
		load --iface "$SERVER_IF" --pin-dir "$PINP"
	BPFREDIR=$OLD expect_cli_ok "pending: add 9645 9643 with it" server \
		add 9645 9643 --pin-dir "$PINP"
	"${client[@]}" /usr/bin/python3 "$T_HELPERS/closing_conn.py" client "$SERVER_ADDR" 9645 \
		"$T_TMP/go-pending" >"$T_TMP/closing.out" 2>&1 &
	held=$!
	wait_for 5 grep -q "closed by the service" "$T_TMP/closing.out"
	check "pending: the service closed its side first" "$(cat "$T_TMP/closing.out")" \
		grep -q "closed by the service" "$T_TMP/closing.out"
	untracked=$(counter server "$PINP" hidden_untracked_dropped)
	cli server load --iface "$SERVER_IF" --pin-dir "$PINP"
	check "pending: load with this build replaces the programs" "$(cli_result) $CLI_OUT" \
		grep -q "programs replaced by this build, maps kept" <<<"$CLI_OUT"
	check "pending: the older build's pending is gone" "$(ls "$PINP/maps")" \
		test ! -e "$PINP/maps/pending" -a -e "$PINP/maps/pending_buckets"
	check "pending: its closing connection was carried over (both directions)" \
		"ways in use: $(pending_used "$PINP")" test "$(pending_used "$PINP")" -ge 2
	# Without its rule, only the closing entries translate the rest of the connection.
	expect_cli_ok "pending: del 9645 with this build" server del 9645 --pin-dir "$PINP"
	touch "$T_TMP/go-pending"
	wait "$held"
	check "pending: the client's last data and FIN reached the service" \
		"service got: $(cat "$T_TMP/closing.got" 2>/dev/null)" grep -qx late "$T_TMP/closing.got"
	check "pending: the service's ACK of them came back through 9645" \
		"$(cat "$T_TMP/closing.out")" grep -qx acked "$T_TMP/closing.out"
	check "pending: nothing of it was dropped as untracked" \
		"before $untracked, now $(counter server "$PINP" hidden_untracked_dropped)" \
		test "$(counter server "$PINP" hidden_untracked_dropped)" = "$untracked"
	expect_cli_ok "pending: unload" server unload --pin-dir "$PINP"
}

t_run_tests upgrade "$@"
