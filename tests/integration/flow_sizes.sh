#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The sizes of the connection tables: flows is --flows (default 65536), at least 256 entries
# per possible CPU, which an LRU table needs to keep its entries on kernels before 6.16;
# pending (buckets of ways, no LRU) has a way for an eighth of flows, at least 1024. The CPU
# count is what libbpf reads from /sys/devices/system/cpu/possible; more CPUs than this
# machine has are shown to the loader by a bind mount over that file, in a mount namespace of
# its own.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_default_flows test_flows_1024 test_16_cpus test_128_cpus"

# max_of PIN MAP: max_entries of a loaded instance's map.
max_of() { bpftool -j map show pinned "$1/maps/$2" 2>/dev/null | jq -r '.max_entries // empty'; }

# expect_sizes NAME FLOWS PENDING: the instance's tables have these sizes (pending: its ways).
expect_sizes() {
	local f p
	f=$(max_of "$PIN" flows)
	p=$(pending_ways "$PIN")
	check "$1: flows $2, pending $3" "got flows '${f}', pending '${p}'" \
		test "$f" = "$2" -a "$p" = "$3"
}

# with_cpus N ARGS...: the loader, in the server namespace, seeing N possible CPUs.
with_cpus() {
	local n=$1
	shift
	printf '0-%d\n' $((n - 1)) >"$T_TMP/possible"
	# shellcheck disable=SC2016 # expanded by the inner shell
	CLI_OUT=$(timeout "$T_CLI_TIMEOUT" unshare -m --propagation private sh -c \
		'mount --bind "$1" "$2" && shift 2 && exec nsenter --net="$0" -- "$@"' \
		"$(ns_path server)" "$T_TMP/possible" "$POSSIBLE" "$BPFREDIR" "$@" 2>"$T_TMP/cli.err")
	CLI_RC=$?
	CLI_ERR=$(cat "$T_TMP/cli.err")
}

setup_tests() {
	t_require unshare mount
	t_topology
	pin_dir PIN sizes
	POSSIBLE=/sys/devices/system/cpu/possible

	cpus=$(($(sed 's/.*-//' "$POSSIBLE") + 1))
}

test_default_flows() {
	expect_cli_ok "load (default --flows)" server load --iface "$SERVER_IF" --pin-dir "$PIN"
	expect_sizes "default" 65536 8192
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

test_flows_1024() {
	expect_cli_ok "load --flows 1024 ($cpus possible CPUs)" server load --iface "$SERVER_IF" --flows 1024 --pin-dir "$PIN"
	expect_sizes "--flows 1024 on $cpus CPUs" $((cpus * 256 > 1024 ? cpus * 256 : 1024)) 1024
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

test_16_cpus() {
	with_cpus 16 load --iface "$SERVER_IF" --flows 1024 --pin-dir "$PIN"
	check "16 CPUs: load --flows 1024 succeeds and says flows were raised" "$(cli_result)" \
		test "$CLI_RC" -eq 0 -a -n "$(grep -E 'flows 1024 raised to 4096 \(256 per possible CPU' <<<"$CLI_ERR")"
	expect_sizes "--flows 1024 on 16 CPUs" 4096 1024
	with_cpus 16 load --iface "$SERVER_IF" --flows 1024 --pin-dir "$PIN"
	check "16 CPUs: load --flows 1024 again is a no-op" "$(cli_result)" test "$CLI_RC" -eq 0
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

test_128_cpus() {
	with_cpus 128 load --iface "$SERVER_IF" --pin-dir "$PIN"
	check "128 CPUs: load (default --flows) succeeds" "$(cli_result)" test "$CLI_RC" -eq 0
	expect_sizes "default on 128 CPUs" 65536 8192
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

t_run_tests flow_sizes "$@"
