#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The connection tables (flows, pending) with real connections, a small table (--flows 1024)
# and two public ports sharing one target (8445 and 8446 -> 8443; udp 8445 -> 8443):
#   - a connection whose entries are gone (deleted here with bpftool, as the LRU would evict
#     them): what the service sends it from 8443 never leaves the host (sniffed on the
#     client), for TCP data, the SYN-ACK of a pending handshake, and UDP; the connection
#     comes back once the client speaks;
#   - connections that close (the client first, the service first) leave nothing in flows,
#     and an idle established connection survives the churn of many closed ones (checked
#     after `del`, when only its entries keep it working);
#   - a spoofed SYN from a live connection's client port to the other public port does not
#     cut the connection; a client that reuses its port after a close (FIN from either side,
#     or its own RST) through the other public port is served;
#   - a connection stays on its target while its public port moves to other targets, twice
#     (the second move makes the port forget the target: the loader gives the connection an
#     entry of its own first).
#
#   client 192.0.2.1 (cli0) ---- (srv0) 192.0.2.2 server: helpers/flowprobe.py on 8443
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

FLOWPROBE=$T_HELPERS/flowprobe.py
S=$SERVER_ADDR
# A client address the client namespace does not have: the server's answers to it reach
# the client's interface (a static neighbour entry) and go no further, so nothing there
# resets the handshake.
GHOST=192.0.2.77
CHURN=1500

ALL_TESTS="test_load test_untracked test_churn test_spoofed_syn test_moves test_port_reuse"
t_depends test_untracked test_load
t_depends test_moves test_load
t_depends test_churn test_load
t_depends test_spoofed_syn test_load
t_depends test_port_reuse test_load

# tables_clear: delete every entry of flows and pending, as LRU eviction would. The LRU evicts
# from flows only to make room for an insert, which moves flows_gen on (the datapath's cached
# answers go with it): so does this, after the deletes.
tables_clear() {
	local key gen i bytes=()
	bpftool -j map dump pinned "$PIN/maps/flows" 2>"$T_TMP/bpftool.err" >"$T_TMP/dump.json" ||
		t_abort "bpftool map dump flows: $(head -c 200 "$T_TMP/bpftool.err")"
	while read -r key; do
		# shellcheck disable=SC2086 # one argument per byte
		[[ -z $key ]] || bpftool map delete pinned "$PIN/maps/flows" key hex $key 2>/dev/null
	done < <(jq -r '.[].key | map(ltrimstr("0x")) | join(" ")' "$T_TMP/dump.json")
	pending_clear "$PIN"
	gen=$(bpftool -j map lookup pinned "$PIN/maps/flows_gen" key 0 0 0 0 | jq -r .formatted.value) ||
		t_abort "bpftool map lookup flows_gen failed"
	for ((i = 0; i < 8; i++)); do bytes+=($((((gen + 1) >> (8 * i)) & 255))); done
	bpftool map update pinned "$PIN/maps/flows_gen" key 0 0 0 0 value "${bytes[@]}" ||
		t_abort "bpftool map update flows_gen failed"
}

# table_used MAP: entries in flows or pending (empty if bpftool failed).
table_used() {
	if [[ $1 == pending ]]; then
		pending_used "$PIN"
	else
		bpftool -j map dump pinned "$PIN/maps/$1" 2>/dev/null | jq length 2>/dev/null
	fi
}

# sniff_start SECONDS [PORT]: count what reaches the client from the server's PORT (default
# 8443), in the background; sniff_wait waits for it and puts its JSON in SNIFFED.
sniff_start() {
	# What is sent meanwhile starts python and scapy: under emulation (tests/kernels) that
	# alone can outlast the window, so it grows with the suite's time scale.
	local seconds=$(($1 * ${BPFREDIR_TEST_TIME_SCALE:-1}))
	rm -f "$T_TMP/sniff.ready"
	in_ns client timeout $((seconds + 10)) "$SCAPY_PYTHON" "$FLOWPROBE" sniff --iface "$CLIENT_IF" \
		--src "$S" --port "${2:-8443}" --seconds "$seconds" --ready "$T_TMP/sniff.ready" \
		>"$T_TMP/sniff.json" 2>"$T_TMP/sniff.err" &
	SNIFF_PID=$!
	T_PIDS+=("$SNIFF_PID")
	wait_for $((5 * ${BPFREDIR_TEST_TIME_SCALE:-1})) test -e "$T_TMP/sniff.ready" || t_abort "the sniffer did not start: $(head -c 200 "$T_TMP/sniff.err")"
}

sniff_wait() {
	wait "$SNIFF_PID"
	SNIFFED=$(cat "$T_TMP/sniff.json")
}

# json_holds FILTER JSON: JSON (not empty) satisfies the jq FILTER.
json_holds() { [[ -n $2 ]] && jq -e "$1" <<<"$2" >/dev/null 2>&1; }

# expect_none_from NAME [PORT]: the last sniffer saw nothing from PORT (default 8443), and did
# see the server.
expect_none_from() {
	sniff_wait
	if json_holds '.count == 0 and .all_from_src > 0' "$SNIFFED"; then
		pass "$1"
	else
		fail "$1" "expected packets from $S but none from port ${2:-8443}, got: '$SNIFFED' $(head -c 200 "$T_TMP/sniff.err")"
	fi
}

# hold NAME [SPORT]: a connection to :8445 kept open by socat (from SPORT if given), as
# coprocess HOLD; hold_line TEXT: "echo TEXT" on it comes back as TEXT within 3 s.
hold() {
	local from=
	[[ -z ${2:-} ]] || from=",sourceport=$2,reuseaddr"
	coproc HOLD { exec nsenter --net="$(ns_path client)" -- timeout 200 socat - "TCP:$S:8445$from"; }
	T_PIDS+=("$HOLD_PID")
}

hold_send() { printf '%s\n' "$1" >&"${HOLD[1]}"; }

# hold_read WANT SECONDS: lines from the held connection until WANT, within SECONDS; the
# lines read go in HOLD_GOT.
hold_read() {
	local line end=$((SECONDS + $2))
	HOLD_GOT=
	while ((SECONDS <= end)) && read -r -t 1 line <&"${HOLD[0]}"; do
		HOLD_GOT+="$line "
		[[ $line != "$1" ]] || return 0
	done
	[[ " $HOLD_GOT" == *" $1 "* ]]
}

hold_line() { hold_send "echo $1" && hold_read "$1" 3; }

hold_close() {
	local fd=${HOLD[1]:-}
	[[ -z $fd ]] || exec {fd}>&-
	wait "${HOLD_PID:-}" 2>/dev/null
}

# connect NAME ARGS...: flowprobe connect ... succeeds for every connection.
expect_connect() {
	local name=$1 out
	shift
	out=$(in_ns client timeout 120 "$SCAPY_PYTHON" "$FLOWPROBE" connect "$S" "$@" 2>&1)
	if jq -e '.failed == 0 and .ok > 0' <<<"$out" >/dev/null 2>&1; then
		pass "$name"
	else
		fail "$name" "flowprobe connect $S $*: $out"
	fi
}

setup_tests() {
	t_require socat
	t_require_scapy
	t_topology
	# The client ports this script picks itself (40123, 40201-40203) stay out of the kernel's
	# own choice: a connection that took one of them by chance (curl's, in TIME_WAIT) made the
	# explicit bind fail with EADDRINUSE now and then.
	in_ns client sysctl -qw net.ipv4.ip_local_port_range="41000 60999" ||
		t_abort "cannot set the client's ephemeral port range"
	pin_dir PIN flows
	P=(--pin-dir "$PIN")
	server server 8443 tcp "$SCAPY_PYTHON" "$FLOWPROBE" serve --port 8443
	wait_for 5 listening server 8443 udp || t_abort "flowprobe did not listen on 8443/udp"
	client_mac=$(ip -n "$(ns client)" -j link show "$CLIENT_IF" | jq -r '.[0].address')
	ip -n "$(ns server)" neigh replace "$GHOST" lladdr "$client_mac" dev "$SERVER_IF" nud permanent ||
		t_abort "static neighbour entry for $GHOST"
}

test_load() {
	expect_cli_ok "load --flows 1024" server load --iface "$SERVER_IF" --flows 1024 "${P[@]}"
	expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
	expect_cli_ok "add 8446 8443 (a second public port, same target)" server add 8446 8443 "${P[@]}"
	expect_cli_ok "add 8445 8443 --proto udp" server add 8445 8443 --proto udp "${P[@]}"
}

# --- a connection whose entries are gone: nothing from 8443 leaves ------------------------------
test_untracked() {
	hold untracked
	check "untracked: a connection through :8445 echoes" "no echo" hold_line one
	dropped=$(counter server "$PIN" hidden_untracked_dropped)
	sniff_start 5
	# The service answers in 2 s; meanwhile its entries go.
	hold_send "push 2 late"
	sleep 0.3
	tables_clear
	sleep 3
	hold_send "echo two"
	got_two=0
	hold_read two 5 && got_two=1
	expect_none_from "untracked: the service's data after eviction never left from 8443"
	check "untracked: the connection came back once the client spoke (late answer and echo arrived)" \
		"read: $HOLD_GOT" test "$got_two" -eq 1 -a -n "$(grep -ow late <<<"$HOLD_GOT")"
	expect_stat_grew "untracked: hidden_untracked_dropped grew" server "$PIN" \
		hidden_untracked_dropped "${dropped:-0}"
	hold_close

	# A handshake from an address that never answers: the server retransmits its SYN-ACK
	# (after 1 s, 3 s, ...), and by then the pending entries are gone.
	dropped=$(counter server "$PIN" hidden_untracked_dropped)
	sniff_start 5
	in_ns client timeout 20 "$SCAPY_PYTHON" "$T_HELPERS/send_syn.py" "$S" 40777 8445 1000 "$GHOST" \
		>"$T_TMP/ghost.out" 2>&1
	sleep 0.3
	tables_clear
	expect_none_from "untracked: the SYN-ACK of an evicted pending entry never left from 8443"
	expect_stat_grew "untracked: ... its retransmits were dropped (hidden_untracked_dropped grew)" \
		server "$PIN" hidden_untracked_dropped "${dropped:-0}"
	check "untracked: the first SYN-ACK did leave, from 8445" "sniffed: $SNIFFED $(cat "$T_TMP/ghost.out")" \
		json_holds '.all_from_src > 0' "$SNIFFED"

	sniff_start 5
	(sleep 1 && tables_clear) &
	pushed=$(in_ns client timeout 20 "$SCAPY_PYTHON" "$FLOWPROBE" udp-push "$S" 8445 2 --wait 3 2>&1)
	wait $!
	expect_none_from "untracked: a UDP answer after eviction never left from 8443"
	check "untracked: ... and the client got no answer from 8443 either (the echo before, from 8445)" \
		"got: $pushed" json_holds '.echo_from[1] == 8445 and .answer == false' "$pushed"
}

# --- closed connections leave flows; an idle established one survives their churn ---------------
test_churn() {
	tables_clear
	hold churn
	check "churn: the idle connection echoes before" "no echo" hold_line before
	expect_connect "churn: $CHURN connections through :8445, closed by the client or the service" \
		8445 --count "$CHURN" --close mixed
	used=$(table_used flows)
	check "churn: closed connections left nothing in flows (only the idle one's entry)" \
		"flows holds ${used:-?} entries" test "${used:-0}" -eq 1
	expect_cli_ok "churn: del 8445 (only the entries keep the idle connection)" server del 8445 "${P[@]}"
	check "churn: the idle connection still echoes after del" "no echo: $HOLD_GOT" hold_line after
	hold_close
	expect_cli_ok "add 8445 8443 again" server add 8445 8443 "${P[@]}"
}

# --- a spoofed SYN from a live connection's client port to the other public port -----------------
test_spoofed_syn() {
	hold spoofed 40123
	check "spoofed syn: a connection from port 40123 through :8445 echoes" "no echo" hold_line first
	# What the service answers the SYN (a challenge ACK on the live connection) goes out as the
	# live connection's, from 8445: nothing from 8446.
	list_json server "$PIN"
	translated=$(json_get '.rules[] | select(.public_port == 8446 and .proto == "tcp") | .stats.rewritten')
	sniff_start 3 8446
	in_ns client timeout 20 "$SCAPY_PYTHON" "$T_HELPERS/send_syn.py" "$S" 40123 8446 12345 \
		>"$T_TMP/spoof.out" 2>&1
	expect_none_from "spoofed syn: the answer to the SYN from 40123 to :8446 did not leave from 8446" 8446
	list_json server "$PIN"
	now=$(json_get '.rules[] | select(.public_port == 8446 and .proto == "tcp") | .stats.rewritten')
	check "spoofed syn: the SYN to :8446 was translated to the service" \
		"8446 rewritten counter from ${translated:-?} to ${now:-?} ($(cat "$T_TMP/spoof.out"))" \
		test "${now:-0}" -gt "${translated:-0}"
	check "spoofed syn: the live connection still echoes" "no echo: $HOLD_GOT" hold_line second
	sleep 1
	check "spoofed syn: ... and a second later" "no echo: $HOLD_GOT" hold_line third
	hold_close
}

# --- a public port that moves to other targets: its connections stay on theirs ------------------
test_moves() {
	hold moves
	check "moves: a connection through :8445 echoes" "no echo" hold_line first
	expect_cli_ok "moves: del 8445" server del 8445 "${P[@]}"
	expect_cli_ok "moves: add 8445 8447 (the port moves)" server add 8445 8447 "${P[@]}"
	check "moves: the connection still echoes from 8443" "no echo: $HOLD_GOT" hold_line second
	expect_cli_ok "moves: del 8445 again" server del 8445 "${P[@]}"
	expect_cli_ok "moves: add 8445 8448 (it moves again: 8443 is no longer among its targets)" \
		server add 8445 8448 "${P[@]}"
	check "moves: the connection still echoes from 8443 after the second move" \
		"no echo: $HOLD_GOT" hold_line third
	hold_close
	expect_cli_ok "moves: del 8445" server del 8445 "${P[@]}"
	expect_cli_ok "moves: add 8445 8443 again" server add 8445 8443 "${P[@]}"
}

# --- a client that reuses its port after a close, through the other public port ------------------
test_port_reuse() {
	port=40200
	for how in client server abort; do
		port=$((port + 1))
		expect_connect "reuse: port $port through :8445, closed by $how" 8445 --sport "$port" --close "$how"
		expect_connect "reuse: port $port again through :8446" 8446 --sport "$port" --close client
	done

	expect_cli_ok "unload" server unload "${P[@]}"
}

t_run_tests flow_state "$@"
