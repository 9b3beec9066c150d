#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# load --attach tc: the legacy clsact + cls_bpf path (what kernels without tcx get). The
# seed scenario through it, status, a newer build replacing the filters' programs in place,
# a clsact qdisc found in place (with someone else's filter) never deleted, ours deleted at
# unload, and a load killed midway leaving no filter behind once the next command ran.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_load test_newer_build test_unload test_found_qdisc test_load_killed"
t_depends test_newer_build test_load
t_depends test_unload test_load

# our_filters DIR: our filters (handle 0xb9f) on srv0 in direction DIR, one line each.
our_filters() { "${S[@]}" tc filter show dev "$SERVER_IF" "$1" | grep -c 'handle 0xb9f.*bpfredir_tc_'; }

filter_prog() { "${S[@]}" tc filter show dev "$SERVER_IF" ingress | sed -n 's/.*handle 0xb9f bpfredir_tc_in:\[\([0-9]*\)\].*/\1/p'; }

# Output captured first: `tc ... | grep -q` fails under pipefail when grep's early exit
# kills tc with SIGPIPE.
clsact() { [[ $("${S[@]}" tc qdisc show dev "$SERVER_IF") == *clsact* ]]; }

no_clsact() { ! clsact; }

foreign_filter() { [[ $("${S[@]}" tc filter show dev "$SERVER_IF" ingress) == *"pref 7 u32"* ]]; }

setup_tests() {
	t_require tc
	# What --attach tc needs of the kernel beyond what bpfredir itself does.
	t_has clsact || t_skip_all "$(feature_text clsact)"
	t_has cls_bpf || t_skip_all "$(feature_text cls_bpf)"
	t_topology
	https_server server
	pin_dir PIN tc
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
	S=(in_ns server)
}

test_load() {
	expect_cli_ok "load --attach tc" server load --iface "$SERVER_IF" --attach tc --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
	check "a clsact qdisc and our filter on ingress and egress" "$("${S[@]}" tc filter show dev "$SERVER_IF" ingress)" \
		test "$(our_filters ingress)" = 1 -a "$(our_filters egress)" = 1
	check "no tcx link for srv0" "$(bpftool net show 2>/dev/null | grep tcx)" \
		test -z "$(ls "$PIN/links" | grep tcx_)"
	expect "tc: 8445 reaches 8443" ok "$SRV:8445" "${client[@]}"
	expect "tc: 8443 is dropped" dropped "$SRV:8443" "${client[@]}"
	cli server status --json --pin-dir "$PIN"
	check "status: srv0 in tc mode, qdisc ours" "$CLI_OUT" \
		json_matches '.interfaces[0].mode == "tc" and .interfaces[0].qdisc_ours and .interfaces[0].name == "srv0"'
	# What status says of tcx chains ahead of the filters is true of this kernel.
	if t_has tcx; then
		check "status --json: the kernel has tcx, and srv0's tcx chains are listed" "$CLI_OUT" \
			json_matches '.features.tcx and (.interfaces[0] | has("ingress") and has("egress"))'
		cli server status --pin-dir "$PIN"
		check "status: tcx programs run before the filters, chains listed" "$CLI_OUT" \
			grep -q "tcx programs run before them" <<<"$CLI_OUT"
	else
		check "status --json: no tcx here, so no tcx chains for srv0" "$CLI_OUT" \
			json_matches '(.features.tcx | not) and (.interfaces[0] | has("ingress") or has("egress") | not)'
		cli server status --pin-dir "$PIN"
		check "status: says no tcx, and nothing of tcx chains" "$CLI_OUT" \
			test "$(grep -c 'tcx no (legacy tc is used)' <<<"$CLI_OUT")" = 1 -a \
			"$(grep -c 'run order\|tcx programs' <<<"$CLI_OUT")" = 0
	fi
	expect_cli_error "--attach takes tcx or tc" 2 "invalid --attach 'xdp'" \
		server load --iface "$SERVER_IF" --attach xdp --pin-dir "$PIN"
}

test_newer_build() {
	old=$(filter_prog)
	if newer_built "newer build: the filters' programs replaced in place"; then
		CLI_OUT=$("${S[@]}" "$T_NEWER" load --iface "$SERVER_IF" --attach tc --pin-dir "$PIN" 2>&1)
		check "newer build: the filters' programs replaced in place" "$CLI_OUT; prog $old -> $(filter_prog)" \
			test "$(filter_prog)" != "$old" -a "$(our_filters ingress)" = 1
	fi
	expect "newer build: 8445 still reaches 8443" ok "$SRV:8445" "${client[@]}"
	expect_rules "newer build: rules kept" server "$PIN" "8445 8443 tcp true"
}

test_unload() {
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
	check "unload: our filters gone" "$("${S[@]}" tc filter show dev "$SERVER_IF" ingress)" \
		test "$(our_filters ingress)" = 0 -a "$(our_filters egress)" = 0
	check "unload: the clsact qdisc bpfredir made is gone" "$("${S[@]}" tc qdisc show dev "$SERVER_IF")" \
		no_clsact
	expect "after unload: 8443 answers again" ok "$SRV:8443" "${client[@]}"
}

# A qdisc that was there before, with someone else's filter on it.
test_found_qdisc() {
	"${S[@]}" tc qdisc add dev "$SERVER_IF" clsact 2>"$T_TMP/tc.err" ||
		t_abort "tc qdisc add clsact failed: $(head -c 300 "$T_TMP/tc.err")"
	# (u32, as this kernel has neither matchall nor gact.)
	FOREIGN_U32=
	if t_need cls_u32 "the foreign filter is kept"; then
		"${S[@]}" tc filter add dev "$SERVER_IF" ingress pref 7 protocol ip u32 match u32 0 0 \
			flowid 1:1 2>"$T_TMP/tc.err" || t_abort "tc filter add u32 failed: $(head -c 300 "$T_TMP/tc.err")"
		FOREIGN_U32=1
	fi
	expect_cli_ok "load beside a clsact qdisc found in place" server load --iface "$SERVER_IF" --attach tc --pin-dir "$PIN"
	cli server status --json --pin-dir "$PIN"
	check "status: the qdisc is not ours" "$CLI_OUT" json_matches '.interfaces[0].qdisc_ours == false'
	expect_cli_ok "unload beside the found qdisc" server unload --pin-dir "$PIN"
	check "the found qdisc is kept" "" clsact
	[[ -z $FOREIGN_U32 ]] || check "the foreign filter is kept" \
		"$("${S[@]}" tc filter show dev "$SERVER_IF" ingress)" foreign_filter
	"${S[@]}" tc qdisc del dev "$SERVER_IF" clsact
}

# Killed midway: whatever was attached is on record, and the next command takes it off. The
# kills land at fractions of the time a whole load takes here, so that they land mid-run;
# whether each did is checked, not assumed.
test_load_killed() {
	load_time_ms load_ms server "$PIN" --iface "$SERVER_IF" --attach tc
	echo "# a whole load --attach tc takes ${load_ms} ms here"
	landed=0
	for pct in 5 20 35 50 65; do
		delay=$(awk -v ms="$load_ms" -v pct="$pct" 'BEGIN { printf "%.3f", ms * pct / 100000 }')
		nsenter --net="$(ns_path server)" -- "$BPFREDIR" load --iface "$SERVER_IF" --attach tc \
			--pin-dir "$PIN" >/dev/null 2>&1 &
		loader=$!
		sleep "$delay"
		kill -9 "$loader" 2>/dev/null
		wait "$loader" 2>/dev/null
		rc=$?
		if ((rc == 137)); then
			landed=$((landed + 1))
			how="killed after ${delay}s"
		else
			how="done before the kill at ${delay}s (exit $rc)"
		fi
		cli server status --pin-dir "$PIN"
		if [[ $CLI_RC -eq 0 ]]; then
			expect_cli_ok "load --attach tc $how: found loaded, unload" server unload --pin-dir "$PIN"
		else
			# Not loaded: unload says so, after removing what the killed load left.
			cli server unload --pin-dir "$PIN"
			check "load --attach tc $how: found not loaded, unload says so" "$(cli_result)" \
				test "$CLI_RC" -eq 1 -a -n "$(grep 'not loaded' <<<"$CLI_ERR")"
		fi
		check "load --attach tc $how: no filter, no pin dir left" \
			"filters: $(our_filters ingress)/$(our_filters egress); $("${S[@]}" tc qdisc show dev "$SERVER_IF" | grep clsact); $(ls "$PIN" 2>&1)" \
			test "$(our_filters ingress)" = 0 -a "$(our_filters egress)" = 0 -a ! -e "$PIN"
		"${S[@]}" tc qdisc del dev "$SERVER_IF" clsact 2>/dev/null
	done
	check "loads --attach tc killed mid-run: at least 3 of 5" "$landed of 5 were killed before they ended" \
		test "$landed" -ge 3
}

t_run_tests legacy_tc "$@"
