#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The operator's tool on a live host: apply (dry run, idempotence, bad files, atomic switch
# under traffic), status and stats, the lock under concurrent invocations, load again with the
# same and a newer build (a connection held open across it), the upgrade by apply, the upgrade
# from a build with another map layout, and --cgroup without a path. (Killed loads and applies: crash.sh.)
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_dry_run_empty_host test_apply test_apply_again test_bad_files test_switch
	test_switch_under_traffic test_status test_concurrent test_reload test_upgrade
	test_upgrade_layout test_upgrade_pending test_upgrade_steering test_cgroup_root"
t_depends test_apply test_dry_run_empty_host
t_depends test_apply_again test_apply
t_depends test_bad_files test_apply
t_depends test_switch test_apply
t_depends test_status test_switch_under_traffic
t_depends test_concurrent test_status
t_depends test_upgrade test_reload
t_depends test_upgrade_steering test_reload

# conf NAME RULE...: a config file for srv0 and the test cgroup with these rule lines.
conf() {
	local file="$T_TMP/$1.conf" rule
	shift
	{
		echo "# written by apply.sh"
		echo "interface $SERVER_IF"
		echo "cgroup $CG"
		echo "flows 4096"
		for rule in "$@"; do
			echo "rule $rule"
		done
	} >"$file"
	printf '%s' "$file"
}

# The instance's link pins by inode: a link made anew would have a new one.
link_pins() { ls -i "$PIN/links" | sort | tr '\n' ' '; }

setup_tests() {
	t_topology
	https_server server
	cgroup_add CG a
	pin_dir PIN apply
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
}

# --- apply -------------------------------------------------------------------------------
test_dry_run_empty_host() {
	A=$(conf a "8445 8443")
	cli server apply -f "$A" --dry-run --pin-dir "$PIN"
	check "apply --dry-run on an empty host prints the load" "$(cli_result) out: $CLI_OUT" \
		grep -q "^+ load" <<<"$CLI_OUT"
	check "apply --dry-run creates no pin dir" "$PIN exists" test ! -e "$PIN"
}

test_apply() {
	expect_cli_ok "apply loads and sets the rules" server apply -f "$A" --pin-dir "$PIN"
	expect_rules "apply: the file's rule is live" server "$PIN" "8445 8443 tcp true"
	expect "apply: client reaches 8443 through 8445" ok "$SRV:8445" "${client[@]}"
	expect "apply: 8443 is dropped" dropped "$SRV:8443" "${client[@]}"
	check "apply: pin dir is mode 0700" "mode $(stat -c %a "$PIN")" test "$(stat -c %a "$PIN")" = 700
}

test_apply_again() {
	before=$(link_pins)
	cli server apply -f "$A" --pin-dir "$PIN"
	check "second apply changes nothing" "$(cli_result) out: $CLI_OUT" \
		test "$CLI_RC" -eq 0 -a "$CLI_OUT" = "nothing to change"
	check "second apply keeps every link" "before: $before after: $(link_pins)" test "$before" = "$(link_pins)"
}

test_bad_files() {
	printf 'interface %s\nflows 4096\nrule 8445 84x3\n' "$SERVER_IF" >"$T_TMP/bad.conf"
	expect_cli_error "bad file: line and column named" 1 "bad.conf:3:11: invalid port '84x3'" \
		server apply -f "$T_TMP/bad.conf" --pin-dir "$PIN"
	printf 'interface %s\nrule 8445 8443 colour blue\n' "$SERVER_IF" >"$T_TMP/bad2.conf"
	expect_cli_error "bad file: unknown rule option" 1 "bad2.conf:2:16: unknown rule option 'colour'" \
		server apply -f "$T_TMP/bad2.conf" --pin-dir "$PIN"
	expect_rules "bad files changed nothing" server "$PIN" "8445 8443 tcp true"
	expect_cli_error "apply without -f" 2 "-f FILE is required" server apply --pin-dir "$PIN"
	expect_cli_error "apply of a missing file" 1 "cannot read" server apply -f "$T_TMP/none.conf" --pin-dir "$PIN"
}

test_switch() {
	B=$(conf b "8446 8443")
	cli server apply -f "$B" --dry-run --pin-dir "$PIN"
	check "dry run prints the switch" "out: $CLI_OUT" \
		grep -qx -- "- rule 8445 8443 proto tcp" <<<"$CLI_OUT"
	expect_rules "dry run changed nothing" server "$PIN" "8445 8443 tcp true"
	expect_cli_ok "apply switches to 8446" server apply -f "$B" --pin-dir "$PIN"
	expect "after the switch: 8446 works" ok "$SRV:8446" "${client[@]}"
	expect "after the switch: 8445 refused" refused "$SRV:8445" "${client[@]}"
}

# --- atomic switch under traffic ---------------------------------------------------------
# Both sets translate 8445 and hide 8443; the second adds 8446 on the same target. A switch
# that went through a half state would refuse 8445 or open 8443 for a moment.
test_switch_under_traffic() {
	S1=$(conf s1 "8445 8443")
	S2=$(conf s2 "8445 8443" "8446 8443")
	FLIPS=1000
	expect_cli_ok "switch to the first set before the traffic starts" server apply -f "$S1" --pin-dir "$PIN"
	(
		for ((i = 0; i < FLIPS; i++)); do
			f=$S2
			((i % 2)) && f=$S1
			in_ns server "$BPFREDIR" apply -f "$f" --pin-dir "$PIN" >/dev/null 2>>"$T_TMP/flip.err" ||
				echo "apply $i failed" >>"$T_TMP/flip.err"
		done
		touch "$T_TMP/flips.done"
	) &
	flipper=$!
	# Connections through 8445 as fast as they go (a completed handshake needs both the
	# rewrite and the reply's rewrite back), a full HTTPS request now and then, and a try at
	# 8443 now and then, until the switching is done.
	ok=0 broken=0 https_ok=0 https_broken=0 leaked=0 n=0
	while [[ ! -e $T_TMP/flips.done ]]; do
		n=$((n + 1))
		if ((n % 20 == 0)); then
			if "${client[@]}" curl -ksS --noproxy '*' --connect-timeout 2 --max-time 5 \
				-o /dev/null "$SRV:8445" 2>>"$T_TMP/flip-curl.err"; then
				https_ok=$((https_ok + 1))
			else
				https_broken=$((https_broken + 1))
			fi
		elif "${client[@]}" timeout 2 bash -c "exec 3<>/dev/tcp/$SERVER_ADDR/8445" \
			2>>"$T_TMP/flip-tcp.err"; then
			ok=$((ok + 1))
		else
			echo "connect $n: exit $?" >>"$T_TMP/flip-tcp.err"
			broken=$((broken + 1))
		fi
		if ((n % 10 == 0)); then
			"${client[@]}" timeout 0.3 bash -c "exec 3<>/dev/tcp/$SERVER_ADDR/8443" 2>/dev/null &&
				leaked=$((leaked + 1))
		fi
	done
	wait "$flipper"
	check "1000 rule-set switches all applied" "$(head -c 300 "$T_TMP/flip.err")" test ! -s "$T_TMP/flip.err"
	check "connections during the switches: none broken" \
		"$ok ok, $broken broken: $(tail -c 300 "$T_TMP/flip-tcp.err")" \
		test "$broken" -eq 0 -a "$ok" -gt 100
	check "HTTPS requests during the switches: none broken" \
		"$https_ok ok, $https_broken broken: $(head -c 300 "$T_TMP/flip-curl.err")" \
		test "$https_broken" -eq 0 -a "$https_ok" -gt 5
	check "connections during the switches: 8443 never reachable" "$leaked connected to 8443" \
		test "$leaked" -eq 0
	echo "# $FLIPS switches; during them through 8445: $ok TCP connections ($broken broken)," \
		"$https_ok HTTPS requests ($https_broken broken)"
}

# --- status and stats --------------------------------------------------------------------
# srv0 by tcx, or by clsact filters on a kernel without tcx.
test_status() {
	if t_has tcx; then
		SRV0_JSON='.mode == "tcx" and (.ingress | map(.name) | index("bpfredir_tc_in") != null)'
		SRV0_TEXT="tcx"
	else
		SRV0_JSON='.mode == "tc" and .filters_present == [true, true]'
		SRV0_TEXT="tc, clsact qdisc"
	fi
	cli server status --json --pin-dir "$PIN"
	check "status --json: srv0 by $(tc_kind), the cgroup, flow-table size, kernel features" \
		"$(cli_result) $CLI_OUT" json_matches --arg cg "$CG" --argjson tcx "$(t_has tcx && echo true || echo false)" \
		"(.interfaces[0] | .name == \"srv0\" and $SRV0_JSON)
			and .cgroups[0].path == \$cg and .flows.max == 4096
			and .features.tcx == \$tcx and .features.btf"
	cli server status --pin-dir "$PIN"
	check "status: human-readable" "$(cli_result) $CLI_OUT" grep -q "srv0 (ifindex [0-9]*): $SRV0_TEXT" <<<"$CLI_OUT"
	cli server stats --prometheus --pin-dir "$PIN"
	check "stats --prometheus: counters per verdict and per rule" "$(cli_result) $CLI_OUT" \
		grep -q '^bpfredir_rule_packets_total{public_port="8445",target_port="8443",proto="tcp",counter="rewritten"} [1-9]' <<<"$CLI_OUT"
	cli server stats --json --interval 1 --count 2 --pin-dir "$PIN"
	check "stats --interval 1 --count 2 --json: two JSON lines of rates" "$(cli_result) $CLI_OUT" \
		test "$(jq -c '.rates.rewritten' <<<"$CLI_OUT" 2>/dev/null | grep -c '')" -eq 2
	expect_cli_error "stats --count needs --interval" 2 "--count goes with --interval" \
		server stats --count 2 --pin-dir "$PIN"
	expect_cli_error "stats --interval 0" 2 "invalid --interval '0'" server stats --interval 0 --pin-dir "$PIN"
}

# --- concurrent invocations --------------------------------------------------------------
# Only these: a bare `wait` would wait for the background servers too.
test_concurrent() {
	par=()
	for port in $(seq 9001 9020); do
		in_ns server "$BPFREDIR" add "$port" $((port + 100)) --pin-dir "$PIN" 2>>"$T_TMP/par.err" &
		par+=($!)
	done
	wait "${par[@]}"
	list_json server "$PIN"
	check "20 concurrent adds: all 20 rules there" "$(head -c 200 "$T_TMP/par.err") $(rules_of | wc -l) rules" \
		test "$(rules_of | grep -c ' 91[0-2][0-9] tcp')" -eq 20
	par=()
	for port in $(seq 9001 9020); do
		in_ns server "$BPFREDIR" del "$port" --pin-dir "$PIN" 2>>"$T_TMP/par.err" &
		par+=($!)
	done
	wait "${par[@]}"
	expect_rules "20 concurrent dels: back to the last file's rules" server "$PIN" "8445 8443 tcp true"
	expect_cli_ok "unload the applied instance" server unload --pin-dir "$PIN"
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

# --- --cgroup without a path: the cgroup2 root ---------------------------------------------
# The root is that of the cgroup2 mount in /proc/self/mounts. The host's would redirect every
# process on the host, so the loader runs where the root is a cgroup of this test's: in a
# cgroup namespace rooted at CGNS, with cgroup2 mounted afresh in a mount namespace of its own.
test_cgroup_root() {
	if t_need cgroupns "--cgroup with no path: the cgroup2 root of the loader's namespaces"; then
		cgroup_add CGNS nsroot
		pin_dir PINROOT root
		# in_cgroupns CMD...: CMD in the server's network namespace and those namespaces.
		in_cgroupns() {
			# shellcheck disable=SC2016 # expanded by the inner shell
			in_cgroup server "$CGNS" unshare --cgroup --mount --propagation private sh -c \
				'umount -l "$1" && mount -t cgroup2 cgroup2 "$1" && shift && exec "$@"' \
				in-cgroupns "$CGROUP2" "$@"
		}
		CLI_OUT=$(in_cgroupns timeout "$T_CLI_TIMEOUT" "$BPFREDIR" load --cgroup --pin-dir "$PINROOT" 2>&1)
		rc=$?
		check "load --cgroup with no path, in a cgroup namespace" "exit $rc: $CLI_OUT" test "$rc" -eq 0
		t_progs_record "$PINROOT"
		CLI_OUT=$(in_cgroupns timeout "$T_CLI_TIMEOUT" "$BPFREDIR" status --json --pin-dir "$PINROOT" 2>&1)
		# shellcheck disable=SC2016 # jq variables
		check "--cgroup with no path means the cgroup2 root from /proc/self/mounts" "$CLI_OUT" \
			json_matches --arg root "$CGROUP2" '.cgroups | length == 1 and .[0].path == $root'
		cli server status --json --pin-dir "$PINROOT"
		# shellcheck disable=SC2016 # jq variables
		check "... which was the namespace's root: this test's cgroup, seen from the host" "$CLI_OUT" \
			json_matches --arg cg "$CGNS" --argjson id "$(stat -c %i "$CGNS")" \
			'.cgroups | length == 1 and .[0].path == $cg and .[0].id == $id'
		expect_cli_ok "add on the root-attached instance" server add 8445 8443 --pin-dir "$PINROOT"
		expect "root-attached: a process in the namespace's root cgroup is redirected" ok \
			"https://127.0.0.1:8445" in_cgroup server "$CGNS"
		expect "root-attached: a process outside it is not" refused "https://127.0.0.1:8445" \
			in_cgroup server "$CG"
		expect_cli_ok "unload the root-attached instance" server unload --pin-dir "$PINROOT"
		expect "after unload: 127.0.0.1:8445 refused again" refused "https://127.0.0.1:8445" \
			in_cgroup server "$CGNS"
	fi
}

t_run_tests apply "$@"
