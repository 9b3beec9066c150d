#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Loads and applies killed midway, at failpoints (the test build of the loader) and at
# whatever moment the clock gives: the host behaves exactly as the old file or the new one
# says, and the next run settles what the kill left.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_apply_killed test_attach_detach_settle test_apply_killed_any_time
	test_normal_build_has_no_failpoints test_load_killed test_load_cut_short"
t_depends test_attach_detach_settle test_apply_killed
t_depends test_apply_killed_any_time test_apply_killed
t_depends test_normal_build_has_no_failpoints test_apply_killed

# ingress_ids: bpfredir's programs at srv0's ingress (tcx, or clsact filters).
ingress_ids() {
	attached_progs server "$SERVER_IF" | grep '/ingress:bpfredir_tc_in:' | cut -d: -f3 | paste -sd, -
}

# kconf NAME CGROUP RULE: a file for srv0, that cgroup and that one rule.
kconf() {
	printf '# written by crash.sh\ninterface %s\ncgroup %s\nrule %s\n' \
		"$SERVER_IF" "$2" "$3" >"$T_TMP/$1.conf"
	printf '%s' "$T_TMP/$1.conf"
}

# behaves LABEL X|Y: external and local clients get exactly what that file says.
behaves() {
	local pub=8445 other=8446 on=$CG off=$CG2
	[[ $2 == Y ]] && pub=8446 other=8445 on=$CG2 off=$CG
	expect "$1: external client reaches the service on $pub" ok "$SRV:$pub" "${client[@]}"
	expect "$1: external client refused on $other" refused "$SRV:$other" "${client[@]}"
	expect "$1: local client in ${on##*/} redirected from $pub" ok "https://127.0.0.1:$pub" \
		in_cgroup server "$on"
	expect "$1: local client in ${off##*/} not redirected from $pub" refused \
		"https://127.0.0.1:$pub" in_cgroup server "$off"
}

# killed_apply FILE POINT: apply FILE, killed by BPFREDIR_FAILPOINT at POINT.
killed_apply() {
	in_ns server env BPFREDIR_FAILPOINT="$2" timeout "$T_CLI_TIMEOUT" "$FAILPOINTS_BIN" apply \
		-f "$1" --pin-dir "$PINA" >/dev/null 2>&1
	KILL_RC=$?
}

# expect_cgroup NAME ID WANT: status --json shows cgroup ID as WANT: active, inactive (attached
# but not acting) or absent.
expect_cgroup() {
	local got
	cli server status --json --pin-dir "$PINA"
	got=$(json_get --argjson id "$2" '[.cgroups[] | select(.id == $id)]
		| if length == 0 then "absent" elif .[0].active then "active" else "inactive" end')
	check "$1" "status shows it $got" test "$got" = "$3"
}

setup_tests() {
	t_topology
	https_server server
	cgroup_add CG a
	pin_dir PINK kill
	SRV=https://$SERVER_ADDR
	client=(in_ns client)

	# --- applies killed midway ---------------------------------------------------------------
	# Attached is not acting: apply attaches what its file adds (inert), switches the whole rule
	# set, which names the interfaces and cgroups that act, then detaches what the file dropped.
	# Killed anywhere, the host must behave exactly as the old file or the new one says.
	cgroup_add CG2 b
	pin_dir PINA kapply
	CG_ID=$(stat -c %i "$CG")
	CG2_ID=$(stat -c %i "$CG2")
	X=$(kconf x "$CG" "8445 8443")
	Y=$(kconf y "$CG2" "8446 8443")
	# Only the test build of the loader has failpoints (killed_apply).
	FAILPOINTS_BIN=$T_REPO/build/tests/bpfredir-failpoints
	[[ -x $FAILPOINTS_BIN ]] || t_abort "not built: $FAILPOINTS_BIN (run: make tests-build)"
}

test_apply_killed() {
	expect_cli_ok "apply X (8445, cgroup a)" server apply -f "$X" --pin-dir "$PINA"
	behaves "after apply X" X

	killed_apply "$Y" apply-attached
	check "apply Y killed after attaching cgroup b" "exit $KILL_RC" test "$KILL_RC" -eq 137
	behaves "apply Y killed after attaching: still X" X
	expect_rules "apply Y killed after attaching: rules still X" server "$PINA" "8445 8443 tcp true"
	expect_cgroup "apply Y killed after attaching: cgroup b attached but inactive" "$CG2_ID" inactive
	cli server apply -f "$Y" --pin-dir "$PINA"
	check "apply Y after the kill: cgroup b made active" "$(cli_result) out: $CLI_OUT" \
		grep -qx -- "+ cgroup $CG2" <<<"$CLI_OUT"
	behaves "apply Y after the kill" Y
	expect_cgroup "apply Y after the kill: cgroup a detached" "$CG_ID" absent

	killed_apply "$X" apply-switched
	check "apply X killed after switching" "exit $KILL_RC" test "$KILL_RC" -eq 137
	behaves "apply X killed after switching: already X" X
	expect_cgroup "apply X killed after switching: cgroup b still attached, inactive" "$CG2_ID" inactive
	cli server apply -f "$X" --pin-dir "$PINA"
	check "apply X again detaches what the kill left" "$(cli_result) out: $CLI_OUT" \
		grep -qx -- "- cgroup id $CG2_ID (left inert by an interrupted run)" <<<"$CLI_OUT"
	expect_cgroup "apply X again: cgroup b gone" "$CG2_ID" absent
	cli server apply -f "$X" --pin-dir "$PINA"
	check "apply X a third time changes nothing" "$(cli_result) out: $CLI_OUT" \
		test "$CLI_RC" -eq 0 -a "$CLI_OUT" = "nothing to change"
}

# attach and detach settle what a kill left too.
test_attach_detach_settle() {
	killed_apply "$Y" apply-attached
	expect_cli_ok "attach takes in the cgroup a killed apply left inert" server attach \
		--cgroup "$CG2" --pin-dir "$PINA"
	expect_cgroup "after attach: cgroup b active" "$CG2_ID" active
	expect "after attach: local client in b redirected" ok "https://127.0.0.1:8445" \
		in_cgroup server "$CG2"
	expect_cli_error "attach of an active cgroup" 1 "already attached" server attach \
		--cgroup "$CG2" --pin-dir "$PINA"
	killed_apply "$X" apply-switched
	expect_cgroup "apply X killed after switching: cgroup b inactive again" "$CG2_ID" inactive
	expect_cli_ok "detach removes an inactive cgroup" server detach --cgroup "$CG2" --pin-dir "$PINA"
	expect_cgroup "after detach: cgroup b gone" "$CG2_ID" absent
}

# Killed at whatever moment the clock gives: the host is X or Y, never a mix.
test_apply_killed_any_time() {
	want=Y
	for delay in 0.001 0.003 0.006 0.01 0.02 0.04; do
		file=$X
		[[ $want == Y ]] && file=$Y
		# nsenter execs the loader, so $! is the loader itself (in_ns, a function, would make $!
		# a subshell and leave the loader running).
		nsenter --net="$(ns_path server)" -- "$BPFREDIR" apply -f "$file" --pin-dir "$PINA" \
			>/dev/null 2>&1 &
		sleep "$delay"
		kill -9 $! 2>/dev/null
		wait $! 2>/dev/null
		list_json server "$PINA"
		state=X
		[[ $(rules_of) == "8446 8443 tcp true" ]] && state=Y
		behaves "apply $want killed after ${delay}s (found $state)" "$state"
		expect_cli_ok "apply $want killed after ${delay}s: apply again settles" server apply \
			-f "$file" --pin-dir "$PINA"
		[[ $want == Y ]] && want=X || want=Y
	done
}

# The normal build has no failpoints: the variable changes nothing.
test_normal_build_has_no_failpoints() {
	expect_cli_ok "apply X before the normal build's turn" server apply -f "$X" --pin-dir "$PINA"
	in_ns server env BPFREDIR_FAILPOINT=apply-attached timeout "$T_CLI_TIMEOUT" "$BPFREDIR" apply \
		-f "$Y" --pin-dir "$PINA" >/dev/null 2>"$T_TMP/nofail.err"
	rc=$?
	check "the normal build ignores BPFREDIR_FAILPOINT" "exit $rc: $(head -c 300 "$T_TMP/nofail.err")" \
		test "$rc" -eq 0
	behaves "after the normal build's apply Y" Y
	expect_cli_ok "unload the killed-apply instance" server unload --pin-dir "$PINA"
}

# --- loads killed midway -----------------------------------------------------------------
# ingress_progs: how many bpfredir programs srv0's ingress runs (see ingress_ids).
ingress_progs() { ingress_ids | tr , '\n' | grep -c .; }

# The kills are timed by how long a whole load takes here, most of them to land mid-run (which
# is checked), the last after the load is done.
test_load_killed() {
	load_time_ms load_ms server "$PINK" --iface "$SERVER_IF" --cgroup "$CG"
	echo "# a whole load takes ${load_ms} ms here"
	landed=0 delays=0
	for pct in 0 2 5 10 20 30 45 60 75 90 120; do
		delay=$(awk -v ms="$load_ms" -v pct="$pct" 'BEGIN { printf "%.3f", ms * pct / 100000 }')
		nsenter --net="$(ns_path server)" -- "$BPFREDIR" load --iface "$SERVER_IF" --cgroup "$CG" \
			--pin-dir "$PINK" >/dev/null 2>&1 &
		loader=$!
		sleep "$delay"
		kill -9 "$loader" 2>/dev/null
		wait "$loader" 2>/dev/null
		# 137: the kill landed while the load ran; anything else, the load was over by then.
		(($? == 137)) && landed=$((landed + 1))
		delays=$((delays + 1))
		cli server status --json --pin-dir "$PINK"
		if [[ $CLI_RC -eq 0 ]]; then
			state=loaded
		else
			state=absent
		fi
		# Whatever the kill left, load (or the state it found) must end with exactly one of ours.
		[[ $state == loaded ]] || cli server load --iface "$SERVER_IF" --cgroup "$CG" --pin-dir "$PINK"
		check "load killed after ${delay}s: $state, then exactly one program at ingress" \
			"$(cli_result) ingress: $(ingress_progs)" test "$(ingress_progs)" = 1
		expect_cli_ok "load killed after ${delay}s: add 8445 8443" server add 8445 8443 --pin-dir "$PINK"
		expect "load killed after ${delay}s: redirect works once loaded" ok "$SRV:8445" "${client[@]}"
		cli server unload --pin-dir "$PINK"
		check "load killed after ${delay}s: unload leaves no pin dir" "$(cli_result)" test ! -e "$PINK"
	done
	check "loads killed mid-run: at least 6 of $delays" "$landed were killed before they ended" \
		test "$landed" -ge 6
}

test_load_cut_short() {
	cli server load --iface "$SERVER_IF" --pin-dir "$PINK"
	bpftool map show pinned "$PINK/maps/policy" >/dev/null 2>&1 && rm "$PINK/maps/policy"
	expect_cli_error "a load cut short before its marker reads as not loaded" 1 "not loaded" \
		server list --pin-dir "$PINK"
	cli server load --iface "$SERVER_IF" --pin-dir "$PINK"
	check "the next load cleans up and loads" "$(cli_result)" \
		grep -q "removed what an interrupted run left" <<<"$CLI_ERR"
	check "after the cleanup: exactly one program at ingress" "ingress: $(ingress_progs)" \
		test "$(ingress_progs)" = 1
	expect_cli_ok "unload after the cleanup" server unload --pin-dir "$PINK"
}

t_run_tests crash "$@"
