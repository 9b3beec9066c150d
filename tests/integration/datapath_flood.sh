#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# A spoofed SYN flood at the public port against a small connection table (load --flows
# 1024): an established connection through the redirect keeps working before, during and
# after, and new connections keep being made. The spoofed sources are documentation
# addresses only (198.51.100.0/24, 203.0.113.0/24; helpers/synflood.py refuses others),
# which the server routes back through the client so its SYN-ACKs cross TC egress too.
# The measurements are printed as `# ` lines.
#
#   client 192.0.2.1 (cli0) ---- (srv0) 192.0.2.2 server: TCP echo on 8443, rule 8445->8443
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

HELPERS="$(cd "$(dirname "$0")" && pwd)/helpers"
FLOWS=1024
FLOOD_SECONDS=${FLOOD_SECONDS:-8}
FLOOD_MIN=50000
S=$SERVER_ADDR
STARTED=$SECONDS

ALL_TESTS="test_load test_before_flood test_flood test_after_flood"
t_depends test_before_flood test_load
t_depends test_flood test_before_flood
t_depends test_after_flood test_flood

# echo_ok: a line sent over a new connection to :8445 comes back.
echo_ok() {
	[[ $(printf 'hello\n' | in_ns client timeout 10 socat -T 3 - "TCP:$S:8445,connect-timeout=3" 2>/dev/null) == hello ]]
}

# flows_used: the flow table's use from `status --json` (empty if status failed).
flows_used() {
	cli server status --json "${P[@]}"
	json_get '.flows.used // empty'
}

# pending_fill: "ways used of all" in the table of connections not yet established (an
# internal map, printed as a measurement only).
pending_fill() { printf '%s of %s' "$(pending_used "$PIN")" "$(pending_ways "$PIN")"; }

# json_true FILTER TEXT: TEXT is JSON for which FILTER holds.
json_true() { jq -e "$1" <<<"$2" >/dev/null 2>&1; }

# nstat_of NAME: one counter of the server's network namespace.
nstat_of() { in_ns server nstat -az "$1" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }

setup_tests() {
	t_require socat
	t_topology
	for net in 198.51.100.0/24 203.0.113.0/24; do
		ip -n "$(ns server)" route add "$net" via "$CLIENT_ADDR" || t_abort "server route to $net"
	done
	pin_dir PIN flood
	P=(--pin-dir "$PIN")
	server server 8443 tcp "$SCAPY_PYTHON" "$HELPERS/xfer.py" serve 8443
}

test_load() {
	expect_cli_ok "load --flows $FLOWS" server load --iface "$SERVER_IF" --flows "$FLOWS" "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	cli server status --json "${P[@]}"
	check "status --json: flow table of $FLOWS entries" "status: $CLI_OUT $(cli_result)" \
		json_matches ".flows.max == $FLOWS"
}

# echo_line TEXT: TEXT sent on the held connection comes back within 3 s.
echo_line() {
	local line=
	printf '%s\n' "$1" >&"${HOLD[1]}" && read -r -t 3 line <&"${HOLD[0]}" && [[ $line == "$1" ]]
}

# --- an established connection, idle until the flood ----------------------------------------
test_before_flood() {
	coproc HOLD { exec nsenter --net="$(ns_path client)" -- timeout 120 socat - "TCP:$S:8445"; }
	T_PIDS+=("$HOLD_PID")
	check "before the flood: the established connection through :8445 echoes" "no echo" echo_line before
	check "before the flood: a new connection through :8445 echoes" "no echo" echo_ok
	flows_before=$(flows_used)
	check "before the flood: status shows the connections in the flow table" \
		"flows.used '$flows_before'" test "${flows_before:-0}" -ge 1
	rewritten_before=$(counter server "$PIN" rewritten)
	cookies_before=$(nstat_of TcpExtSyncookiesSent)
}

# --- the flood -------------------------------------------------------------------------------
test_flood() {
	mac=$(ip -n "$(ns server)" -j link show "$SERVER_IF" | jq -r '.[0].address')
	nsenter --net="$(ns_path client)" -- timeout $((3 * FLOOD_SECONDS + 30)) "$SCAPY_PYTHON" \
		"$HELPERS/synflood.py" --iface "$CLIENT_IF" --dst-mac "$mac" --dst "$S" --dport 8445 \
		--seconds "$FLOOD_SECONDS" --min-count "$FLOOD_MIN" >"$T_TMP/flood.json" 2>"$T_TMP/flood.err" &
	FLOOD_PID=$!
	T_PIDS+=("$FLOOD_PID")
	flood_start=$SECONDS

	held_ok=0 held_tries=0 new_ok=0 new_tries=0 new_max_ms=0 flows_max=0
	samples=()
	sleep 0.5
	while kill -0 "$FLOOD_PID" 2>/dev/null && ((SECONDS - flood_start < 3 * FLOOD_SECONDS + 30)); do
		held_tries=$((held_tries + 1))
		echo_line "during-$held_tries" && held_ok=$((held_ok + 1))
		new_tries=$((new_tries + 1))
		t0=$(date +%s%N)
		echo_ok && new_ok=$((new_ok + 1))
		ms=$((($(date +%s%N) - t0) / 1000000))
		((ms <= new_max_ms)) || new_max_ms=$ms
		used=$(flows_used)
		samples+=("${used:-?}")
		[[ ! $used =~ ^[0-9]+$ ]] || ((used <= flows_max)) || flows_max=$used
		sleep 0.3
	done
	wait "$FLOOD_PID"
	flood_rc=$?
	flood=$(cat "$T_TMP/flood.json")
	sent=$(jq -r '.sent // 0' <<<"$flood" 2>/dev/null)
	secs=$(jq -r '.seconds // 0' <<<"$flood" 2>/dev/null)
	pps=$(jq -r '.pps // 0' <<<"$flood" 2>/dev/null)
	rewritten_after=$(counter server "$PIN" rewritten)
	cookies_after=$(nstat_of TcpExtSyncookiesSent)

	printf '# flood: %s spoofed SYNs to :8445 in %s s (%s/s), sources %s\n' "${sent:-?}" "${secs:-?}" \
		"${pps:-?}" "$(jq -r '.nets | join(" and ")' <<<"$flood" 2>/dev/null)"
	printf '# flood: packets translated by bpfredir meanwhile: %s; SYN cookies sent by the server: %s\n' \
		$((${rewritten_after:-0} - ${rewritten_before:-0})) $((${cookies_after:-0} - ${cookies_before:-0}))
	printf '# flood: flow table (status --json flows.used) before %s, max during %s of %s\n' \
		"$flows_before" "$flows_max" "$FLOWS"
	printf '# flood: flows.used samples during (each new connection adds 2): %s\n' "${samples[*]}"
	printf '# flood: pending table after the flood: %s entries\n' "$(pending_fill)"
	printf '# flood: established connection echoed %d of %d times during the flood\n' "$held_ok" "$held_tries"
	printf '# flood: new connections during the flood: %d of %d succeeded, slowest %d ms\n' \
		"$new_ok" "$new_tries" "$new_max_ms"

	check "flood: at least $FLOOD_MIN spoofed SYNs sent" \
		"sender exit $flood_rc: $flood $(head -c 300 "$T_TMP/flood.err")" \
		test "${sent:-0}" -ge "$FLOOD_MIN"
	check "flood: every SYN was from a documentation range" "nets: $flood" \
		json_true '.nets == ["198.51.100.0/24", "203.0.113.0/24"]' "$flood"
	check "flood: the SYNs reached bpfredir and were translated" \
		"rewritten went from $rewritten_before to $rewritten_after for $sent SYNs" \
		test $((${rewritten_after:-0} - ${rewritten_before:-0})) -ge "${sent:-1}"
	check "during the flood: the established connection echoed every time ($held_ok of $held_tries)" \
		"echoed $held_ok of $held_tries times" test "$held_tries" -gt 0 -a "$held_ok" -eq "$held_tries"
	check "during the flood: new connections through :8445 succeeded ($new_ok of $new_tries)" \
		"$new_ok of $new_tries succeeded" test "$new_tries" -gt 0 -a "$new_ok" -eq "$new_tries"
	check "during the flood: the flow table stayed within $FLOWS entries" "max seen $flows_max" \
		test "$flows_max" -le "$FLOWS"
}

# --- after -----------------------------------------------------------------------------------
test_after_flood() {
	check "after the flood: the established connection still echoes" "no echo" echo_line after
	check "after the flood: a new connection through :8445 echoes" "no echo" echo_ok
	flows_after=$(flows_used)
	printf '# flood: flow table after: %s of %s\n' "$flows_after" "$FLOWS"
	expect_cli_ok "unload" server unload "${P[@]}"
	printf '# datapath_flood ran in %d s\n' $((SECONDS - STARTED))
}

t_run_tests datapath_flood "$@"
