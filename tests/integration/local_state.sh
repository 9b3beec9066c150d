#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What the socket hooks keep, with real sockets in a test cgroup of a server namespace:
#   - each redirected socket remembers its peers in storage of its own (an unconnected UDP
#     socket several of them): a local process that sprays datagrams at 127.x.y.z:8445
#     cannot make another socket's getpeername() or recvfrom() show the target port 8443;
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

FLOWPROBE=$T_HELPERS/flowprobe.py
SPRAY=80000

t_init local_state
t_require_scapy
netns_add server
if ! { ip -n "$(ns server)" link add "$SERVER_IF" type veth peer name srv1 &&
	ip -n "$(ns server)" link set "$SERVER_IF" up && ip -n "$(ns server)" link set srv1 up &&
	ip -n "$(ns server)" addr add "$SERVER_ADDR/24" dev "$SERVER_IF"; }; then
	t_abort "could not make the server's interfaces"
fi
cgroup_add CG main
pin_dir PIN main
P=(--pin-dir "$PIN")
server server 8443 tcp "$SCAPY_PYTHON" "$FLOWPROBE" serve --port 8443
wait_for 5 listening server 8443 udp || t_abort "flowprobe did not listen on 8443/udp"

# json_holds FILTER JSON: JSON (not empty) satisfies the jq FILTER.
json_holds() { [[ -n $2 ]] && jq -e "$1" <<<"$2" >/dev/null 2>&1; }

expect_cli_ok "load --cgroup CG" server load --cgroup "$CG" "${P[@]}"
expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
expect_cli_ok "add 8445 8443 --proto udp" server add 8445 8443 --proto udp "${P[@]}"

# --- one socket's spray does not reach another socket's peers -----------------------------------

got=$(in_cgroup server "$CG" timeout 30 "$SCAPY_PYTHON" "$FLOWPROBE" peers 8445 4 2>&1)
check "peers: an unconnected udp socket talking to 4 local addresses on 8445 sees 8445 from each" \
	"got: $got" json_holds '.from | length == 4 and all(.[1] == 8445)' "$got"

for mode in udp udp-connect tcp; do
	in_cgroup server "$CG" timeout 60 "$SCAPY_PYTHON" "$FLOWPROBE" victim "$mode" 127.0.0.1 8445 8 \
		>"$T_TMP/victim.json" 2>&1 &
	victim=$!
	sleep 1
	sprayed=$(in_cgroup server "$CG" timeout 120 "$SCAPY_PYTHON" "$FLOWPROBE" spray 8445 "$SPRAY" 2>&1)
	wait "$victim"
	got=$(cat "$T_TMP/victim.json")
	check "spray: a $mode socket still shows 127.0.0.1:8445 after another sent to $SPRAY loopback addresses" \
		"victim: $got; spray: $sprayed" json_holds '(.from // [0, 8445])[1] == 8445 and
			(.peername // [0, 8445])[1] == 8445 and (has("from") or has("peername"))' "$got"
done

expect_cli_ok "unload" server unload "${P[@]}"
t_finish
