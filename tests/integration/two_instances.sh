#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Two instances, each with its own pin dir, cgroup and server namespace (whose interfaces
# even share a name), must not see each other's rules, counters, sockets or unload.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_load test_traffic test_cgroup_hooks test_unload"
t_depends test_traffic test_load
t_depends test_cgroup_hooks test_load
t_depends test_unload test_load

setup_tests() {
	netns_add client
	netns_add srva
	netns_add srvb
	A_ADDR=192.0.2.2
	B_ADDR=198.51.100.2
	veth client cli0 192.0.2.1/24 srva "$SERVER_IF" "$A_ADDR/24"
	veth client cli1 198.51.100.1/24 srvb "$SERVER_IF" "$B_ADDR/24"
	make_cert
	https_server srva
	https_server srvb
	cgroup_add CGA a
	cgroup_add CGB b
	pin_dir PINA a
	pin_dir PINB b
	A="https://$A_ADDR"
	B="https://$B_ADDR"
	LO=https://127.0.0.1
	client=(in_ns client)
}

test_load() {
	expect_cli_ok "A: load in srva" srva load --iface "$SERVER_IF" --cgroup "$CGA" --pin-dir "$PINA"
	expect_cli_ok "B: load in srvb" srvb load --iface "$SERVER_IF" --cgroup "$CGB" --pin-dir "$PINB"
	expect_cli_ok "A: add 8445 8443" srva add 8445 8443 --pin-dir "$PINA"
	expect_cli_ok "B: add 8446 8443" srvb add 8446 8443 --pin-dir "$PINB"
	expect_rules "A: list shows only A's rule" srva "$PINA" "8445 8443 tcp true"
	expect_rules "B: list shows only B's rule" srvb "$PINB" "8446 8443 tcp true"
}

# traffic_to ME OTHER: ME's public port works and OTHER's does not, ME's target is hidden,
# and only ME's counters move.
traffic_to() {
	local me=$1 other=$2 before now
	before=$(counter "${NS[$other]}" "${PIN[$other]}" rewritten)
	expect "$me: client -> :${PORT[$me]} works" ok "${URL[$me]}:${PORT[$me]}/" "${client[@]}"
	expect "$me: client -> :${PORT[$other]} ($other's port) refused" refused \
		"${URL[$me]}:${PORT[$other]}/" "${client[@]}"
	expect "$me: client -> :8443 dropped" dropped "${URL[$me]}:8443/" "${client[@]}"
	expect_stat_grew "$me: rewritten grew" "${NS[$me]}" "${PIN[$me]}" rewritten 0
	now=$(counter "${NS[$other]}" "${PIN[$other]}" rewritten)
	check "$other: rewritten unchanged by $me's traffic" "was $before, now $now" test "$now" = "$before"
}

test_traffic() {
	declare -gA NS=([A]=srva [B]=srvb) URL=([A]=$A [B]=$B) PORT=([A]=8445 [B]=8446) PIN=([A]=$PINA [B]=$PINB)

	traffic_to A B
	traffic_to B A
}

# connect4 hooks are bound to their own cgroup and namespace.
test_cgroup_hooks() {
	expect "A: in cgroup A in srva -> 127.0.0.1:8445 redirected" ok "$LO:8445/" in_cgroup srva "$CGA"
	expect "B: in cgroup B in srvb -> 127.0.0.1:8446 redirected" ok "$LO:8446/" in_cgroup srvb "$CGB"
	expect "cgroup A but in srvb -> 127.0.0.1:8445 not redirected" refused "$LO:8445/" in_cgroup srvb "$CGA"
	expect "cgroup B but in srva -> 127.0.0.1:8446 not redirected" refused "$LO:8446/" in_cgroup srva "$CGB"
	expect "cgroup B in srvb -> 127.0.0.1:8445 (A's port) not redirected" refused "$LO:8445/" in_cgroup srvb "$CGB"
}

test_unload() {
	expect_cli_ok "A: unload" srva unload --pin-dir "$PINA"
	check "A: pin dir removed" "$PINA still exists" test ! -e "$PINA"
	check "B: pin dir kept" "$PINB is gone" test -d "$PINB"
	expect "after A unload: A :8443 works directly" ok "$A:8443/" "${client[@]}"
	expect "after A unload: A :8445 refused" refused "$A:8445/" "${client[@]}"
	expect "after A unload: B :8446 still works" ok "$B:8446/" "${client[@]}"
	expect "after A unload: B :8443 still dropped" dropped "$B:8443/" "${client[@]}"
	expect "after A unload: cgroup B -> 127.0.0.1:8446 still redirected" ok "$LO:8446/" in_cgroup srvb "$CGB"
	expect_rules "after A unload: B's rule intact" srvb "$PINB" "8446 8443 tcp true"
	expect_cli_ok "B: unload" srvb unload --pin-dir "$PINB"
	expect "after B unload: B :8443 works directly" ok "$B:8443/" "${client[@]}"
}

t_run_tests two_instances "$@"
