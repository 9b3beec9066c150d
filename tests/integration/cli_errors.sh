#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The loader's error contract: exit 2 for usage errors, 1 for failures, one line on stderr
# each time, and a failed load leaves nothing behind.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_usage_errors_not_loaded test_before_load test_failed_loads test_loaded"

# usage_error ARGS...: exit 2 and a one-line message, whether or not anything is loaded.
usage_error() {
	expect_cli_error "usage error: bpfredir $*" 2 . server "$@"
}

# nothing_left WHAT: a failed load created no pin dir and no program (of this test's: none
# pinned under its pin dir nor attached in its namespaces or cgroups, see tests/lib/bpfredir.sh).
nothing_left() {
	check "$1: no pin dir left" "$PIN exists" test ! -e "$PIN"
	check "$1: no program left" "new programs: $(new_bpfredir_progs | paste -sd' ' -)" \
		wait_for 5 no_new_bpfredir_progs
}

check_usage_errors() {
	local port
	# strtoul alone took " -18446744073709551615" for 1, and a space, sign or leading zero.
	for port in 0 65536 abc 8445x 1.5 '' ' -18446744073709551615' ' 8445' +8445 0008445; do
		expect_cli_error "usage error: add '$port' 8443 ($1)" 2 'port' server add "$port" 8443 "${P[@]}"
		expect_cli_error "usage error: add 8445 '$port' ($1)" 2 'port' server add 8445 "$port" "${P[@]}"
	done
	expect_cli_error "usage error: del 65536 ($1)" 2 'port' server del 65536 "${P[@]}"
	usage_error add -1 8443 "${P[@]}"
	usage_error add 8445 "${P[@]}"
	usage_error add "${P[@]}"
	usage_error del "${P[@]}"
	usage_error add 8445 8443 8446 "${P[@]}"
	usage_error load "${P[@]}"
	usage_error list --bogus "${P[@]}"
	usage_error load --iface "$SERVER_IF" --frobnicate "${P[@]}"
	usage_error frobnicate
	usage_error
	expect_cli_error "usage error: --flows abc ($1)" 2 "invalid --flows 'abc'" \
		server load --iface "$SERVER_IF" --flows abc "${P[@]}"
	expect_cli_error "usage error: --flows below 1024 ($1)" 2 "invalid --flows '100'" \
		server load --iface "$SERVER_IF" --flows 100 "${P[@]}"
	expect_cli_error "usage error: add 08445 8443 says why ($1)" 2 \
		"invalid port '08445' \\(expected 1-65535, in decimal digits only: no sign, space or leading zero\\)" \
		server add 08445 8443 "${P[@]}"
	for flows in 04096 ' 4096' +4096; do
		expect_cli_error "usage error: --flows '$flows' ($1)" 2 "invalid --flows '.*4096'.*decimal digits only" \
			server load --iface "$SERVER_IF" --flows "$flows" "${P[@]}"
	done
	expect_cli_error "usage error: stats --interval 01 ($1)" 2 "invalid --interval '01'" \
		server stats --interval 01 --count 1 "${P[@]}"
	expect_cli_error "usage error: stats --count 01 ($1)" 2 "invalid --count '01'" \
		server stats --interval 1 --count 01 "${P[@]}"
	expect_cli_error "usage error: --mode bogus ($1)" 2 "invalid --mode 'bogus' \\(expected tc or xdp\\)" \
		server load --iface "$SERVER_IF" --mode bogus "${P[@]}"
	expect_cli_error "usage error: --mode without a value ($1)" 2 "option '--mode' needs an argument" \
		server load --iface "$SERVER_IF" --mode
	expect_cli_error "usage error: --xdp-generic without --mode xdp ($1)" 2 "--xdp-generic needs --mode xdp" \
		server load --iface "$SERVER_IF" --xdp-generic "${P[@]}"
	expect_cli_error "usage error: --xdp-generic with --mode tc ($1)" 2 "--xdp-generic needs --mode xdp" \
		server load --iface "$SERVER_IF" --mode tc --xdp-generic "${P[@]}"
	expect_cli_error "usage error: --mode xdp without --iface ($1)" 2 "--mode xdp needs --iface" \
		server load --cgroup "$CG" --mode xdp "${P[@]}"
	expect_cli_error "usage error: --proto icmp ($1)" 2 "invalid protocol 'icmp'" \
		server add 8445 8443 --proto icmp "${P[@]}"
	expect_cli_error "usage error: --addr 192.0.2.256 ($1)" 2 "invalid address '192.0.2.256'" \
		server add 8445 8443 --addr 192.0.2.256 "${P[@]}"
	for addr in 0.0.0.0 :: 224.0.0.1 ff02::1 255.255.255.255; do
		expect_cli_error "usage error: --addr $addr, not unicast ($1)" 2 "--addr $addr is .*; a rule's address must be unicast" \
			server add 8445 8443 --addr "$addr" "${P[@]}"
	done
	expect_cli_error "usage error: --hide-local with --no-hide ($1)" 2 "cannot go with --no-hide" \
		server add 8445 8443 --hide-local --no-hide "${P[@]}"
	expect_cli_error "usage error: --addr on del ($1)" 2 "does not apply to 'del'" \
		server del 8445 --addr 192.0.2.2 "${P[@]}"
}

setup_tests() {
	t_topology
	cgroup_add CG errors
	pin_dir PIN errors
	P=(--pin-dir "$PIN")
}

test_usage_errors_not_loaded() {
	check_usage_errors "not loaded"
}

# --- verbs that need an instance, before load ---
test_before_load() {
	expect_cli_error "add before load" 1 'not loaded' server add 8445 8443 "${P[@]}"
	expect_cli_error "del before load" 1 'not loaded' server del 8445 "${P[@]}"
	expect_cli_error "list before load" 1 'not loaded' server list "${P[@]}"
	expect_cli_error "unload before load" 1 'not loaded' server unload "${P[@]}"
}

# --- failed loads ---
test_failed_loads() {
	expect_cli_error "load --iface of another namespace" 1 'nosuch0|interface' \
		server load --iface nosuch0 "${P[@]}"
	nothing_left "unknown iface"
	expect_cli_error "load --iface $CLIENT_IF (exists only in the client namespace)" 1 "$CLIENT_IF|interface" \
		server load --iface "$CLIENT_IF" "${P[@]}"
	nothing_left "iface of another namespace"
	# Loopback has no native XDP: the load fails at the attach, after loading, and must undo.
	expect_cli_error "load --iface lo --mode xdp (no native XDP)" 1 'cannot attach native XDP to interface lo.*--xdp-generic' \
		server load --iface lo --mode xdp "${P[@]}"
	nothing_left "native XDP refused"
	mkdir "$T_TMP/not-a-cgroup"
	expect_cli_error "load --cgroup on a plain directory" 1 'cgroup' \
		server load --iface "$SERVER_IF" --cgroup "$T_TMP/not-a-cgroup" "${P[@]}"
	nothing_left "plain directory as cgroup"
	expect_cli_error "load --cgroup on a missing path" 1 'cgroup|no such' \
		server load --iface "$SERVER_IF" --cgroup "$T_TMP/missing" "${P[@]}"
	nothing_left "missing cgroup"
	# --attach tcx where the kernel has none: refused in one line naming it and the kernel that
	# has it (without --attach, the clsact fallback is taken).
	if ! t_has tcx; then
		expect_cli_error "load --attach tcx on a kernel without tcx" 1 \
			"--attach tcx: this kernel has no tcx \\(Linux 6.6 has it\\)" \
			server load --iface "$SERVER_IF" --attach tcx "${P[@]}"
		nothing_left "--attach tcx refused"
	else
		expect_cli_ok "load --attach tcx on a kernel with tcx" server load --iface "$SERVER_IF" --attach tcx "${P[@]}"
		expect_cli_ok "unload after --attach tcx" server unload "${P[@]}"
	fi
	V1=$(awk '$3 == "cgroup" { print $2; exit }' /proc/self/mounts)
	if t_need cgroup_v1 "load --cgroup on a cgroup v1 hierarchy"; then
		expect_cli_error "load --cgroup on a cgroup v1 hierarchy ($V1)" 1 'cgroup' \
			server load --iface "$SERVER_IF" --cgroup "$V1" "${P[@]}"
		nothing_left "cgroup v1 path"
	fi
}

# --- loaded ---
test_loaded() {
	expect_cli_ok "load" server load --iface "$SERVER_IF" --cgroup "$CG" "${P[@]}"
	# load on a loaded pin dir is idempotent: it says so, and changes nothing.
	cli server load --iface "$SERVER_IF" --cgroup "$CG" "${P[@]}"
	check "load twice: nothing to do, said on stdout" "$(cli_result) out: $CLI_OUT" \
		grep -q "^already loaded at .*: same build$" <<<"$CLI_OUT"
	cli server load --iface "$SERVER_IF" "${P[@]}"
	check "load twice, fewer options: still nothing to do" "$(cli_result) out: $CLI_OUT" \
		grep -q "^already loaded at .*: same build$" <<<"$CLI_OUT"
	check_usage_errors "loaded"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	expect_cli_error "add of a public port already redirected elsewhere" 1 '8445' server add 8445 9000 "${P[@]}"
	expect_cli_error "add with a target as public port" 1 '8443' server add 8443 9000 "${P[@]}"
	expect_cli_error "add with a public port as target" 1 '8445' server add 9000 8445 "${P[@]}"
	expect_cli_error "del of a port without a rule" 1 '9999|no rule|not found|no such' server del 9999 "${P[@]}"
	expect_rules "failed commands changed no rule" server "$PIN" "8445 8443 tcp true"
	expect_cli_ok "add --addr (IPv6)" server add 8447 8443 --addr 2001:db8::2 "${P[@]}"
	cli server list --json "${P[@]}"
	check "list --json shows the rule's --addr" "list --json printed: $CLI_OUT" \
		json_matches '.rules[] | select(.public_port == 8447) | .addr == "2001:db8::2"'
	expect_cli_ok "del 8447" server del 8447 "${P[@]}"
	# The target of a no-hide rule is a target all the same: it cannot be public in another.
	expect_cli_ok "add 8450 8451 --no-hide" server add 8450 8451 --no-hide "${P[@]}"
	expect_cli_error "add with the target of a no-hide rule as public port" 1 \
		"public port 8451/tcp is already the target of a rule \\(from 8450\\)" server add 8451 9000 "${P[@]}"
	expect_cli_ok "del 8450" server del 8450 "${P[@]}"
	# Rules sharing a target share its hiding: one asking for other hiding is refused.
	expect_cli_error "add --no-hide to a hidden target" 1 \
		"target 8443/tcp would be left open \\(no-hide\\) by this rule but is hidden by the rule for 8445; rules sharing a target must agree" \
		server add 8452 8443 --no-hide "${P[@]}"
	expect_cli_error "add --reject to a target hidden without it" 1 "would be hidden with reject by this rule but is hidden by the rule for 8445" \
		server add 8452 8443 --reject "${P[@]}"
	expect_cli_error "add --hide-local to a target hidden without it" 1 "would be hidden with hide-local by this rule" \
		server add 8452 8443 --hide-local "${P[@]}"
	expect_rules "refused rules sharing a target changed nothing" server "$PIN" "8445 8443 tcp true"
	expect_cli_ok "add 8452 8443 with the same hiding" server add 8452 8443 "${P[@]}"
	expect_cli_ok "del 8452" server del 8452 "${P[@]}"
	expect_cli_ok "list (table)" server list "${P[@]}"
	check "list table names the rule" "list printed: $CLI_OUT" grep -Eq '8445.*8443' <<<"$CLI_OUT"
	check "list table: a rule that rewrites packets refuses nothing (REFUSED -)" "list printed: $CLI_OUT" \
		awk '$1 == "PUBLIC" { col = NF } $1 == 8445 { found = $col == "-" } END { exit !found }' <<<"$CLI_OUT"
	check "list table: the counters' values line up" "list printed: $CLI_OUT" \
		awk 'blank && NF == 2 { at = index($0, $2); if (!start) start = at; if (at != start) bad = 1; n++ }
			!NF { blank = 1 } END { exit bad || n < 2 }' <<<"$CLI_OUT"
	expect_cli_ok "stats --interval 1 --count 1 (table)" server stats --interval 1 --count 1 "${P[@]}"
	check "stats --interval: a rule that rewrites packets refuses nothing (REFUSED/s -)" "$CLI_OUT" \
		awk '$1 == "PUBLIC" { col = NF } $1 == 8445 { found = $col == "-" } END { exit !found }' <<<"$CLI_OUT"
	cli server list --json "${P[@]}"
	# shellcheck disable=SC2016 # jq variables
	check "list --json is one JSON object with pin_dir, rules, stats" "list --json printed: $CLI_OUT" \
		json_matches --arg pin "$PIN" '.pin_dir == $pin and (.rules | length) == 1 and
			(.rules[0] | has("public_port") and has("target_port") and has("proto") and has("hide")) and
			(.stats | has("rewritten") and has("reverse_rewritten") and has("hidden_dropped") and
				has("malformed_dropped") and has("passed") and has("sock_redirected"))'
	check "list --json prints exactly one line" "printed $(grep -c '' <<<"$CLI_OUT") lines" \
		test "$(grep -c '' <<<"$CLI_OUT")" -eq 1
	expect_cli_ok "unload" server unload "${P[@]}"
	expect_cli_error "unload twice" 1 'not loaded' server unload "${P[@]}"
	expect_cli_error "add after unload" 1 'not loaded' server add 8445 8443 "${P[@]}"
}

t_run_tests cli_errors "$@"
