#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# One client port used for the public, the hidden and an unrelated port, in turn and again,
# as a scanner with a fixed source port does (nmap -g, hping3 -s): every probe must get the
# answer it gets alone, from a fresh port. Nothing an earlier probe left in the connection
# tables may change it: an answer about the hidden port comes from the hidden port, as a
# closed port's does (--reject) or not at all; a translated connection's comes from the
# public port; an unrelated port's is the kernel's.
#
# In TC, XDP generic and native XDP, with and without --reject, TCP (SYNs) and UDP, IPv4
# (and IPv6 in TC). Server: TCP and UDP services on 8443 (rules 8445 -> 8443 for both), port
# 9 closed for both.
#
#   client 192.0.2.1 2001:db8::1 (cli0) ---- (srv0) 192.0.2.2 2001:db8::2 server
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

SEQPROBE=$T_HELPERS/seqprobe.py

ALL_TESTS="test_tc test_tc_reject test_xdp_generic test_xdp_generic_reject test_xdp_native
	test_xdp_native_reject"

setup_tests() {
	t_require socat xdp-filter
	t_require_scapy
	t_topology
	addr6 client "$CLIENT_IF" 2001:db8::1/64
	addr6 server "$SERVER_IF" 2001:db8::2/64
	pin_dir PIN client-port
	P=(--pin-dir "$PIN")
	S4=$SERVER_ADDR
	S6=2001:db8::2
	server server 8443 tcp socat TCP6-LISTEN:8443,ipv6only=0,fork,reuseaddr PIPE
	server server 8443 udp socat UDP6-RECVFROM:8443,ipv6only=0,fork PIPE
	# The kernel's ICMP rate limit would answer a closed port's probes by how many came
	# before, which is not what is compared here (reject_icmp.sh compares that).
	in_ns server sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 ||
		t_abort "could not lift the server's ICMP rate limit"
	# A fixed client port per run, each run its own, so no run sees another's leftovers.
	NEXT_PORT=41000
}

# seq_probe SPORT PROBE...: the answers, one line per probe (helpers/seqprobe.py).
seq_probe() {
	in_ns client timeout 120 "$SCAPY_PYTHON" "$SEQPROBE" "$CLIENT_IF" "$@" 2>"$T_TMP/seq.err" ||
		echo "seqprobe failed: $(tail -c 200 "$T_TMP/seq.err")"
}

# check_sequence MODE ADDR PROTO WANT_PUBLIC WANT_HIDDEN WANT_UNRELATED: the answers alone
# (fresh ports) are the WANTs; then from one fixed port the sequence public, hidden,
# unrelated, hidden, public gets them again, probe by probe.
check_sequence() {
	local mode=$1 a=$2 proto=$3 e i alone seq got want
	local ports=(8445 8443 9) order=(0 1 2 1 0) names=(public hidden unrelated)
	local wants=("$4" "$5" "$6") probes=()
	e=$a
	[[ $a != *:* ]] || e="[$a]"
	mapfile -t alone < <(seq_probe 0 "$proto:$e:8445" "$proto:$e:8443" "$proto:$e:9")
	for i in 0 1 2; do
		expect_eq "$mode: $proto $(endpoint "$a" "${ports[i]}") (${names[i]}) alone" \
			"${wants[i]}" "${alone[i]:-}" "the answer"
	done
	for i in "${order[@]}"; do
		probes+=("$proto:$e:${ports[i]}")
	done
	NEXT_PORT=$((NEXT_PORT + 1))
	mapfile -t seq < <(seq_probe "$NEXT_PORT" "${probes[@]}")
	for i in "${!order[@]}"; do
		got=${seq[i]:-}
		want=${alone[${order[i]}]:-}
		expect_eq "$mode: $proto probe $((i + 1)) of ${#order[@]} from fixed port $NEXT_PORT to $(endpoint "$a" "${ports[${order[i]}]}") (${names[${order[i]}]}) answered as alone" \
			"$want" "$got" "the answer"
	done
}

# run_mode MODE REJECT LOAD-ARGS...: load, the rules, the sequences, unload.
run_mode() {
	local mode=$1 reject=$2 hidden_tcp=none hidden_udp=none
	shift 2
	[[ -z $reject ]] || mode="$mode --reject" hidden_tcp="tcp 8443 RA" hidden_udp="icmp 8443"
	expect_cli_ok "$mode: load" server load --iface "$SERVER_IF" "$@" "${P[@]}" || return
	expect_cli_ok "$mode: add 8445 8443" server add 8445 8443 $reject "${P[@]}"
	expect_cli_ok "$mode: add 8445 8443 --proto udp" server add 8445 8443 --proto udp $reject "${P[@]}"
	check_sequence "$mode" "$S4" tcp "tcp 8445 SA" "$hidden_tcp" "tcp 9 RA"
	check_sequence "$mode" "$S4" udp "udp 8445" "$hidden_udp" "icmp 9"
	if [[ $mode == TC* ]]; then
		check_sequence "$mode" "$S6" tcp "tcp 8445 SA" "$hidden_tcp" "tcp 9 RA"
		check_sequence "$mode" "$S6" udp "udp 8445" "$hidden_udp" "icmp 9"
	fi
	expect_cli_ok "$mode: unload" server unload "${P[@]}"
}

test_tc() { run_mode TC ""; }
test_tc_reject() { run_mode TC --reject; }
test_xdp_generic() { run_mode "XDP generic" "" --mode xdp --xdp-generic; }
test_xdp_generic_reject() { run_mode "XDP generic" --reject --mode xdp --xdp-generic; }
# A veth sends what native XDP_TX sends back (--reject's answers) only to a peer that has an XDP
# program of its own: the client's veth gets xdp-filter, which passes everything, as a real
# NIC needs nothing of the kind.
native_mode() {
	xdp_filter_load client "$CLIENT_IF" native || {
		fail "XDP native: xdp-filter on the client's veth" "could not load it"
		return
	}
	run_mode "XDP native" "$@" --mode xdp
	xdp_filter_unload client "$CLIENT_IF" || fail "XDP native: xdp-filter unload" "failed"
}
test_xdp_native() { native_mode ""; }
test_xdp_native_reject() { native_mode --reject; }

t_run_tests client_port "$@"
