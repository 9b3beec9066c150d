#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Attachments can vanish under bpfredir: an interface or a cgroup goes away, someone deletes
# the clsact qdisc holding the legacy filters, another program is put ahead of ours. status
# must say so (never print what is gone as attached), and load/apply must put back what
# they are asked for. Programs are ours by id, not by name: another instance's are foreign.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_defunct test_foreign_instance test_legacy_tc_qdisc_deleted"
t_depends test_foreign_instance test_defunct

# iface_json NAME FILTER: FILTER holds for the status --json entry of interface NAME.
iface_json() {
	cli server status --json --pin-dir "$PIN"
	json_matches --arg n "$1" "[.interfaces[] | select(.name == \$n)] | length == 1 and (.[0] | $2)"
}

setup_tests() {
	t_topology
	https_server server
	pin_dir PIN a
	# A second instance, beside the first (test_foreign_instance, test_legacy_tc_qdisc_deleted).
	pin_dir PINB b
	cgroup_add CG a
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
	SV=$(ns server)
}

cg_defunct() {
	cli server status --json --pin-dir "$PIN"
	json_matches '.cgroups | length == 1 and .[0].defunct and .[0].path == null'
}

# --- an interface and a cgroup go away (TC by tcx, or clsact where there is none) ----------
test_defunct() {
	K=$(tc_kind)
	ip -n "$SV" link add ex0 type veth peer name ex1 && ip -n "$SV" link set ex0 up &&
		ip -n "$SV" link set ex1 up || t_abort "cannot make ex0"
	EX0=$(ip -n "$SV" -j link show ex0 | jq '.[0].ifindex')
	expect_cli_ok "$K: load on srv0, ex0 and a cgroup" server load --iface "$SERVER_IF" --iface ex0 \
		--cgroup "$CG" --pin-dir "$PIN"
	expect_cli_ok "$K: add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
	check "$K: ex0 attached and not defunct" "$CLI_OUT" iface_json ex0 '.defunct == false'
	ip -n "$SV" link del ex0
	cli server status --json --pin-dir "$PIN"
	check "$K: ex0 deleted: status shows its link defunct" "$CLI_OUT" \
		json_matches --argjson i "$EX0" '[.interfaces[] | select(.ifindex == $i)]
			| length == 1 and .[0].defunct and .[0].name == null
			and (.[0].warnings | any(startswith("defunct")))'
	rmdir "$CG"
	# The kernel detaches a removed cgroup's links from a work queue, a moment later.
	check "$K: cgroup removed: status shows its hooks defunct" "$CLI_OUT" wait_for 10 cg_defunct
	cli server status --pin-dir "$PIN"
	check "$K: the text view says defunct for the interface, removed for the cgroup" \
		"$CLI_OUT" eval '[[ $(grep -c "warning: defunct" <<<"$CLI_OUT") -eq 1 &&
			$(grep -c "warning: removed" <<<"$CLI_OUT") -eq 1 ]]'
	printf 'interface %s\nrule 8445 8443\n' "$SERVER_IF" >"$T_TMP/a.conf"
	cli server apply -f "$T_TMP/a.conf" --pin-dir "$PIN"
	# The removed cgroup is forgotten as apply opens the pin dir, before it plans.
	check "$K: apply drops what is gone" "$(cli_result) $CLI_OUT" \
		eval '[[ $CLI_RC -eq 0 && $CLI_OUT == *"- interface ifindex $EX0"* &&
			$CLI_ERR == *"forgot 1 removed cgroup"* ]]'
	cli server status --json --pin-dir "$PIN"
	check "$K: status after apply: only srv0, nothing defunct" "$CLI_OUT" \
		json_matches '[.interfaces[].name] == ["srv0"] and .cgroups == []
			and (.interfaces[0].defunct | not)'
	check "$K: no pins of the gone attachments are left" "$(ls "$PIN/links")" \
		eval '! ls "$PIN/links" | grep -q -e "_$EX0\$" -e "^cgroup_"'
	expect "$K: 8445 works" ok "$SRV:8445/" "${client[@]}"
}

# --- programs are ours by id: another instance at the same hooks is foreign, and ahead ---
# (tcx only: clsact filters of two instances run one after the other, which legacy_tc.sh
# covers.)
test_foreign_instance() {
	if t_need tcx "a second instance's tcx programs ahead of the first's"; then
		expect_cli_ok "second instance: load on srv0 (attached ahead of the first)" server load \
			--iface "$SERVER_IF" --pin-dir "$PINB"
		check "first's status: the second's programs are foreign" "$CLI_OUT" iface_json srv0 \
			'[.ingress[], .egress[]] | map(select(.ours)) | length == 2'
		check "first's status: warns at ingress and egress that foreign programs run first" "$CLI_OUT" \
			iface_json srv0 '[.warnings[] | select(test("foreign tcx program.*(ingress|egress).*before bpfredir"))] | length == 2'
		cli server status --pin-dir "$PIN"
		check "first's status (text): foreign marked" "$CLI_OUT" \
			eval '[[ $(grep -c "bpfredir_tc_.. (foreign)" <<<"$CLI_OUT") -eq 2 ]]'
		expect "beside a second instance with no rules: 8445 still works" ok "$SRV:8445/" "${client[@]}"
		expect_cli_ok "second instance: unload" server unload --pin-dir "$PINB"
		check "first's status: no warning once alone" "$CLI_OUT" iface_json srv0 '.warnings == []'
	fi
	expect_cli_ok "$K: unload" server unload --pin-dir "$PIN"
}

# --- legacy tc: the clsact qdisc deleted under us -----------------------------------------
test_legacy_tc_qdisc_deleted() {
	expect_cli_ok "tc: load --attach tc" server load --iface "$SERVER_IF" --attach tc --pin-dir "$PIN"
	expect_cli_ok "tc: add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
	expect "tc: 8445 works" ok "$SRV:8445/" "${client[@]}"
	check "tc: filters present" "$CLI_OUT" iface_json srv0 '.filters_present == [true, true]'
	in_ns server tc qdisc del dev "$SERVER_IF" clsact || t_abort "tc qdisc del failed"
	check "tc: qdisc deleted: status shows both filters missing" "$CLI_OUT" iface_json srv0 \
		'.filters_present == [false, false] and (.warnings | any(startswith("missing")))'
	# The netfilter guard leaves attached interfaces to TC, so 8443 is open until apply; the
	# sk_lookup guard (6.1) refuses a direct hit whatever the interface.
	if [[ $(json_get .guard.kind) == sk_lookup ]]; then
		expect "tc: qdisc deleted: 8443 refused by the sk_lookup guard" refused "$SRV:8443/" "${client[@]}"
	else
		expect "tc: qdisc deleted: 8443 reachable (what status warns about)" ok "$SRV:8443/" "${client[@]}"
	fi
	printf 'interface %s\nrule 8445 8443\n' "$SERVER_IF" >"$T_TMP/tc.conf"
	cli server apply -f "$T_TMP/tc.conf" --pin-dir "$PIN"
	check "tc: apply attaches again" "$(cli_result) $CLI_OUT" \
		eval '[[ $CLI_RC -eq 0 && $CLI_OUT == *"+ interface srv0 (again"* ]]'
	check "tc: filters present again" "$CLI_OUT" iface_json srv0 '.filters_present == [true, true]'
	expect "tc: 8445 works again" ok "$SRV:8445/" "${client[@]}"
	expect "tc: 8443 dropped again" dropped "$SRV:8443/" "${client[@]}"
	in_ns server tc qdisc del dev "$SERVER_IF" clsact || t_abort "tc qdisc del failed"
	cli server load --iface "$SERVER_IF" --attach tc --pin-dir "$PIN"
	check "tc: load attaches again too" "$(cli_result)" test "$CLI_RC" -eq 0
	check "tc: filters present after load" "$CLI_OUT" iface_json srv0 '.filters_present == [true, true]'
	expect "tc: 8443 dropped after load" dropped "$SRV:8443/" "${client[@]}"

	# A tcx program on the same interface runs before every clsact filter.
	if t_need tcx "tc: a tcx instance beside it"; then
		expect_cli_ok "tc: a tcx instance beside it" server load --iface "$SERVER_IF" --pin-dir "$PINB"
		check "tc: warns that tcx programs run before its filters" "$CLI_OUT" iface_json srv0 \
			'.mode == "tc" and (.warnings | any(test("tcx program.*before bpfredir.s clsact")))'
		expect_cli_ok "tc: unload the tcx instance" server unload --pin-dir "$PINB"
	fi
	expect_cli_ok "tc: unload" server unload --pin-dir "$PIN"
}

t_run_tests status_health "$@"
