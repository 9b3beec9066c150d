#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The operator's tool on a live host: apply (dry run, idempotence, bad files, atomic switch
# under traffic), status and stats, the lock under concurrent invocations, and --cgroup
# without a path. (Killed loads and applies: crash.sh; reloads and upgrades: upgrade.sh.)
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_dry_run_empty_host test_apply test_apply_again test_bad_files test_switch
	test_switch_under_traffic test_status test_concurrent test_cgroup_root"
t_depends test_apply test_dry_run_empty_host
t_depends test_apply_again test_apply
t_depends test_bad_files test_apply
t_depends test_switch test_apply
t_depends test_status test_switch_under_traffic
t_depends test_concurrent test_status

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
