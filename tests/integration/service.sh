#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The systemd units as installed, and the privileges bpfredir asks for. No systemd runs as
# PID 1 in this test's sandbox, so the units are checked by systemd-analyze (syntax, and the
# exposure score of their hardening), and what the hardening leaves bpfredir is run for real:
# the unit's capability bounding set alone must be enough for the whole seed scenario.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_units_verify test_unit_settings test_missing_config test_bounded_capabilities
	test_missing_capabilities"
t_depends test_bounded_capabilities test_unit_settings

setup_tests() {
	t_require systemd-analyze setpriv
	t_topology
	https_server server
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
	# The instance the loader runs with the unit's capabilities, or fewer.
	pin_dir PIN caps

	DEST="$T_TMP/dest"
	make -s -C "$T_REPO" install DESTDIR="$DEST" PREFIX=/usr >"$T_TMP/install.log" 2>&1 ||
		t_abort "make install failed: $(tail -3 "$T_TMP/install.log")"
	UNIT="$DEST/lib/systemd/system/bpfredir.service"
	WATCH="$DEST/lib/systemd/system/bpfredir-watch.service"
}

# verify wants the units' programs where they say: copies that name the built loader.
test_units_verify() {
	mkdir "$T_TMP/units"
	for u in "$UNIT" "$WATCH"; do
		sed "s|/usr/sbin/bpfredir|$BPFREDIR|" "$u" >"$T_TMP/units/${u##*/}"
	done
	out=$(systemd-analyze verify --man=no "$T_TMP/units/bpfredir.service" \
		"$T_TMP/units/bpfredir-watch.service" 2>&1)
	check "both units: systemd-analyze verify" "$out" test -z "$out"
	for u in "$UNIT" "$WATCH"; do
		name=${u##*/}
		score=$(systemd-analyze security --offline=true --no-pager "$u" 2>/dev/null |
			sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		check "$name: hardened (systemd-analyze exposure $score, at most 4.0)" "score '$score'" \
			awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 4.0) }'
	done
}

unit_has() { grep -qx -- "$1" "$UNIT"; }

test_unit_settings() {
	check "the unit applies before the network is up" "$(grep -E '^(Before|Wants)=' "$UNIT")" \
		eval 'unit_has "Before=network-pre.target shutdown.target" && unit_has "Wants=network-pre.target"'
	check "the unit never unloads (stop, restart): no ExecStop" "$(grep ExecStop "$UNIT")" \
		eval '! grep -q "^ExecStop" "$UNIT"'
	check "reload applies the file again (upgrading in place)" "$(grep ExecReload "$UNIT")" \
		unit_has "ExecReload=/usr/sbin/bpfredir apply -f /etc/bpfredir.conf"
	check "a missing config is not skipped: no ConditionPathExists" "" \
		eval '! grep -q "^ConditionPathExists" "$UNIT"'
	bounding=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT")
	check "capabilities bounded to CAP_BPF CAP_NET_ADMIN CAP_SYS_ADMIN CAP_PERFMON" "$bounding" \
		test "$bounding" = "CAP_BPF CAP_NET_ADMIN CAP_SYS_ADMIN CAP_PERFMON"
}

# ExecStart with no config file: it fails, saying so.
test_missing_config() {
	cli server apply -f "$T_TMP/missing.conf" --pin-dir "/sys/fs/bpf/$T_PREFIX-none"
	check "apply of a missing file fails, naming it" "$(cli_result)" \
		eval '[[ $CLI_RC -eq 1 && $CLI_ERR == *missing.conf* ]]'
}

bounded() { in_ns server setpriv --bounding-set=-all,"$caps" --inh-caps=-all -- "$BPFREDIR" "$@"; }

# The unit's bounding set alone: root keeps only those capabilities across exec.
test_bounded_capabilities() {
	caps=$(tr 'A-Z' 'a-z' <<<"$bounding" | sed -e 's/cap_/+/g' -e 's/ /,/g')
	cat >"$T_TMP/caps.conf" <<EOF
interface $SERVER_IF
rule 8445 8443
EOF
	for step in "apply -f $T_TMP/caps.conf" "status" "list --json" "add 8446 8443" "del 8446" \
		"apply -f $T_TMP/caps.conf"; do
		# shellcheck disable=SC2086 # the step's words
		out=$(bounded $step --pin-dir "$PIN" 2>&1)
		check "bounded to the unit's capabilities: $step" "$out" test $? -eq 0
		t_progs_record "$PIN"
	done
	expect "bounded: 8445 reaches the service" ok "$SRV:8445/" "${client[@]}"
	expect "bounded: 8443 dropped" dropped "$SRV:8443/" "${client[@]}"
	out=$(bounded unload --pin-dir "$PIN" 2>&1)
	check "bounded to the unit's capabilities: unload" "$out" test $? -eq 0
}

# Without them: one line naming what is missing.
test_missing_capabilities() {
	out=$(in_ns server setpriv --bounding-set=-all,+bpf,+sys_admin --inh-caps=-all -- "$BPFREDIR" \
		status --pin-dir "$PIN" 2>&1)
	rc=$?
	check "without CAP_NET_ADMIN: refused, naming it" "exit $rc: $out" \
		eval '[[ $rc -eq 1 && $out == "bpfredir status: missing capabilities CAP_NET_ADMIN (run as root)" ]]'
	out=$(in_ns server setpriv --reuid=65534 --regid=65534 --clear-groups -- "$BPFREDIR" \
		list --pin-dir "$PIN" 2>&1)
	rc=$?
	check "as nobody: refused, naming every missing capability" "exit $rc: $out" \
		eval '[[ $rc -eq 1 && $out == *"missing capabilities CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN"* ]]'
}

t_run_tests service "$@"
