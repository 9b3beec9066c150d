#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bpfredir among other TC programs, with real traffic through 8445 (HTTPS, curl). Foreign
# programs of the tests' own (tests/bpf/foreign.bpf.c) count each packet to or from 8445 and
# 8443 they see:
#   - returning "next" (TCX_NEXT, TC_ACT_UNSPEC), before and after bpfredir at tcx ingress and
#     egress and as clsact cls_bpf filters, every one of them sees every packet, before
#     bpfredir with the port as sent, after it translated; the client's own counters say
#     what went out (requests to 8445) and what came back (replies from 8445, none from 8443);
#   - with --attach tc, a foreign cls_bpf filter at a later priority sees every packet too;
#   - a foreign program after bpfredir returning "pass" (TCX_PASS) or "drop" (TCX_DROP) gets
#     the packets bpfredir translated, and with "pass" the service still works. (Drops go
#     last: the server goes on resending the SYN-ACKs dropped at egress for a minute, and a
#     later instance, which has no record of their connection, would not translate them.)
#
#   client 192.0.2.1 (cli0) ---- (srv0) 192.0.2.2 server: HTTPS on 8443, rule 8445 -> 8443
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

REQUESTS=10

ALL_TESTS="test_tcx_order test_foreign_pin_dir test_next test_attach_tc test_pass_and_drop"

# seen NAME DIR PORT: how many packets with PORT as DIR (dport or sport) the foreign program
# NAME counted.
seen() { foreign_count "$1" ".$2[\"$3\"]"; }

# expect_seen CHECK NAME DIR PORT WANT: that count is exactly WANT.
expect_seen() {
	local got
	got=$(seen "$2" "$3" "$4")
	if [[ $got == "$5" ]]; then
		pass "$1"
	else
		fail "$1" "$2 counted ${got:-nothing} packets with $3 $4, want $5 (all: $("$T_FOREIGN" counts "$(foreign_dir "$2")" 2>&1))"
	fi
}

foreign_dir() { local var=FOREIGN_DIR_$1; printf '%s' "${!var}"; }

# requests LABEL: REQUESTS HTTPS requests from the client to 8445; checks they all got the
# page, then waits for the last segments (FIN, ACK) to have gone both ways.
requests() {
	local i ok=0
	for ((i = 0; i < REQUESTS; i++)); do
		probe "$SRV:8445" "${client[@]}"
		probe_matches ok && ok=$((ok + 1))
	done
	check "$1: $REQUESTS requests through 8445 all served" "$ok served; last: $(probe_result)" \
		test "$ok" -eq "$REQUESTS"
	sleep 1
}

# client_counters LABEL: counters on the client's own TC hooks, tcx or else clsact filters:
# what leaves it, what reaches it (the foreign programs cli_eg_LABEL, cli_in_LABEL).
client_counters() {
	if t_has tcx; then
		foreign_attach "cli_in_$1" client --dev "$CLIENT_IF" --hook tcx-ingress
		foreign_attach "cli_eg_$1" client --dev "$CLIENT_IF" --hook tcx-egress
	else
		foreign_attach "cli_in_$1" client --dev "$CLIENT_IF" --hook tc-ingress --prio 1
		foreign_attach "cli_eg_$1" client --dev "$CLIENT_IF" --hook tc-egress --prio 1
	fi
}

# expect_client LABEL: the client sent requests to 8445 only, and every reply it got came from
# 8445. Sets SENT and REPLIES, the packets each way.
expect_client() {
	SENT=$(seen "cli_eg_$1" dport 8445)
	REPLIES=$(seen "cli_in_$1" sport 8445)
	check "$1: the client sent its requests to 8445" "$SENT packets to 8445" \
		test "${SENT:-0}" -gt 0 2>/dev/null
	expect_seen "$1: no request left the client for 8443" "cli_eg_$1" dport 8443 0
	check "$1: replies reached the client from 8445" "$REPLIES packets from 8445" \
		test "${REPLIES:-0}" -gt 0 2>/dev/null
	expect_seen "$1: no reply reached the client from 8443" "cli_in_$1" sport 8443 0
}

setup_tests() {
	t_topology
	https_server server
	pin_dir PIN coexist
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
	# The cls_bpf filters need these; the tcx checks do not.
	CLS=
	t_has clsact && t_has cls_bpf && CLS=1
	cls_missing="$(feature_text clsact) and $(feature_text cls_bpf)"
}

# --- other tcx programs -------------------------------------------------------------------
# A foreign program at each tcx hook of srv0 (tests/tools/foreign.c): ours go first at
# ingress and at egress, status marks the foreign ones, and unload leaves them attached.
# (The tests below check that they still see the traffic.)
test_tcx_order() {
	if t_need tcx "foreign tcx programs beside bpfredir's"; then
		pin_dir PINO order
		foreign_attach order_in server --dev "$SERVER_IF" --hook tcx-ingress
		foreign_attach order_eg server --dev "$SERVER_IF" --hook tcx-egress
		expect_cli_ok "load beside foreign tcx programs" server load --iface "$SERVER_IF" --pin-dir "$PINO"
		cli server status --json --pin-dir "$PINO"
		check "ours first at ingress and at egress; foreign ones marked" "$CLI_OUT" \
			json_matches '.interfaces[0] | (.ingress | map(.name)) == ["bpfredir_tc_in", "foreign_in"]
				and (.egress | map(.name)) == ["bpfredir_tc_eg", "foreign_eg"]
				and (.ingress[1].ours | not)'
		expect_cli_ok "add beside foreign tcx programs" server add 8445 8443 --pin-dir "$PINO"
		expect "redirect works beside foreign programs" ok "$SRV:8445" "${client[@]}"
		expect_cli_ok "unload beside foreign tcx programs" server unload --pin-dir "$PINO"
		left=$(attached_progs server "$SERVER_IF" | cut -d: -f1,2 | sort | paste -sd' ' -)
		check "unload leaves the foreign programs attached" "attached: $left" \
			test "$left" = "tcx/egress:foreign_eg tcx/ingress:foreign_in"
		foreign_detach order_in server --dev "$SERVER_IF" --hook tcx-ingress
		foreign_detach order_eg server --dev "$SERVER_IF" --hook tcx-egress
	fi
}

# --- foreign pin dir ---------------------------------------------------------------------
test_foreign_pin_dir() {
	pin_dir PINF foreign
	mkdir -p "$PINF/not-ours"
	chmod 700 "$PINF"
	expect_cli_error "a pin dir with foreign entries is refused" 1 "holds 'not-ours'.*refusing" \
		server load --iface "$SERVER_IF" --pin-dir "$PINF"
	check "the refused pin dir is untouched" "$(ls "$PINF")" test "$(ls "$PINF")" = not-ours
	rmdir "$PINF/not-ours" "$PINF"
}

# --- next: every program sees every packet ------------------------------------------------
# Foreign tcx programs around bpfredir's; without tcx, bpfredir's clsact filters among others
# are the --attach tc part below.
test_next() {
	if t_need tcx "next: foreign tcx programs before and after bpfredir's"; then
		expect_cli_ok "load on srv0 (tcx)" server load --iface "$SERVER_IF" --pin-dir "$PIN"
		expect_cli_ok "add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
		# Attached after bpfredir: at the head they go before it, at the tail after it.
		foreign_attach in_first server --dev "$SERVER_IF" --hook tcx-ingress --first
		foreign_attach in_last server --dev "$SERVER_IF" --hook tcx-ingress --last
		foreign_attach eg_first server --dev "$SERVER_IF" --hook tcx-egress --first
		foreign_attach eg_last server --dev "$SERVER_IF" --hook tcx-egress --last
		if [[ -n $CLS ]]; then
			foreign_attach cls_in server --dev "$SERVER_IF" --hook tc-ingress --prio 1
			foreign_attach cls_eg server --dev "$SERVER_IF" --hook tc-egress --prio 1
	fi
	client_counters next
	cli server status --json --pin-dir "$PIN"
	check "next: bpfredir between a foreign program before it and one after it, both ways" \
		"$(cli_result) $CLI_OUT" json_matches '.interfaces[0]
			| (.ingress | map(.name)) == ["foreign_in", "bpfredir_tc_in", "foreign_in"]
			and (.egress | map(.name)) == ["foreign_eg", "bpfredir_tc_eg", "foreign_eg"]'

	requests next
	expect_client next
	expect_seen "next: tcx ingress before bpfredir sees every request to 8445" in_first dport 8445 "$SENT"
	expect_seen "next: tcx ingress before bpfredir sees none to 8443" in_first dport 8443 0
	expect_seen "next: tcx ingress after bpfredir sees every request, translated to 8443" in_last dport 8443 "$SENT"
	expect_seen "next: tcx ingress after bpfredir sees none to 8445" in_last dport 8445 0
	expect_seen "next: tcx egress before bpfredir sees every reply, from 8443" eg_first sport 8443 "$REPLIES"
	expect_seen "next: tcx egress before bpfredir sees none from 8445" eg_first sport 8445 0
	expect_seen "next: tcx egress after bpfredir sees every reply, translated to 8445" eg_last sport 8445 "$REPLIES"
	expect_seen "next: tcx egress after bpfredir sees none from 8443" eg_last sport 8443 0
	if [[ -n $CLS ]]; then
		expect_seen "next: clsact ingress filter sees every request, translated" cls_in dport 8443 "$SENT"
		expect_seen "next: clsact egress filter sees every reply, translated" cls_eg sport 8445 "$REPLIES"
	else
		skip "next: clsact filters see every packet" "$cls_missing"
	fi
	expect_cli_ok "next: unload" server unload --pin-dir "$PIN"
	for name in in_first in_last eg_first eg_last; do
		rm "$(foreign_dir "$name")/link" || fail "next: detach $name" "rm failed"
	done
	if [[ -n $CLS ]]; then
		foreign_detach cls_in server --dev "$SERVER_IF" --hook tc-ingress --prio 1
		foreign_detach cls_eg server --dev "$SERVER_IF" --hook tc-egress --prio 1
	fi

	fi
}

# --- --attach tc: a filter after bpfredir's --------------------------------------------------
test_attach_tc() {
	if [[ -n $CLS ]]; then
		expect_cli_ok "tc: load --attach tc" server load --iface "$SERVER_IF" --attach tc --pin-dir "$PIN"
		expect_cli_ok "tc: add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
		foreign_attach tc_in server --dev "$SERVER_IF" --hook tc-ingress --prio 100
		foreign_attach tc_eg server --dev "$SERVER_IF" --hook tc-egress --prio 100
		client_counters tc
		requests tc
		expect_client tc
		expect_seen "tc: a later ingress filter sees every request, translated" tc_in dport 8443 "$SENT"
		expect_seen "tc: a later egress filter sees every reply, translated" tc_eg sport 8445 "$REPLIES"
		expect_cli_ok "tc: unload" server unload --pin-dir "$PIN"
		foreign_detach tc_in server --dev "$SERVER_IF" --hook tc-ingress --prio 100
		foreign_detach tc_eg server --dev "$SERVER_IF" --hook tc-egress --prio 100
	else
		skip "tc: a cls_bpf filter after bpfredir's sees every packet" "$cls_missing"
	fi
}

# --- pass after bpfredir -------------------------------------------------------------------
test_pass_and_drop() {
	if t_need tcx "pass and drop: foreign tcx programs after bpfredir's"; then
		# Attached before the load: bpfredir takes its own place beside them, ahead of them.
		foreign_attach pass_in server --dev "$SERVER_IF" --hook tcx-ingress --verdict pass
		foreign_attach pass_eg server --dev "$SERVER_IF" --hook tcx-egress --verdict pass
		expect_cli_ok "pass: load beside foreign programs that return pass" server load \
			--iface "$SERVER_IF" --pin-dir "$PIN"
		expect_cli_ok "pass: add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
		client_counters pass
		requests pass
		expect_client pass
		expect_seen "pass: the ingress program gets every request translated to 8443" pass_in dport 8443 "$SENT"
		expect_seen "pass: the ingress program gets none to 8445" pass_in dport 8445 0
		expect_seen "pass: the egress program gets every reply translated to 8445" pass_eg sport 8445 "$REPLIES"
		expect_seen "pass: the egress program gets none from 8443" pass_eg sport 8443 0
		rm "$(foreign_dir pass_in)/link" "$(foreign_dir pass_eg)/link" || fail "pass: detach" "rm failed"

		# --- drop after bpfredir -------------------------------------------------------------------
		rewritten=$(counter server "$PIN" rewritten)
		foreign_attach drop_in server --dev "$SERVER_IF" --hook tcx-ingress --last --verdict drop
		expect "drop at ingress: the request is dropped after bpfredir" dropped "$SRV:8445" "${client[@]}"
		check "drop at ingress: the ingress program got the SYNs translated to 8443" \
			"$(seen drop_in dport 8443) to 8443, $(seen drop_in dport 8445) to 8445" \
			test "$(seen drop_in dport 8443)" -gt 0 -a "$(seen drop_in dport 8445)" = 0
		expect_stat_grew "drop at ingress: bpfredir counted them rewritten" server "$PIN" rewritten "${rewritten:-0}"
		rm "$(foreign_dir drop_in)/link" || fail "drop at ingress: detach" "rm failed"
		foreign_attach drop_eg server --dev "$SERVER_IF" --hook tcx-egress --last --verdict drop
		client_counters drop
		expect "drop at egress: the reply is dropped after bpfredir" dropped "$SRV:8445" "${client[@]}"
		check "drop at egress: the egress program got the SYN-ACKs translated to 8445" \
			"$(seen drop_eg sport 8445) from 8445, $(seen drop_eg sport 8443) from 8443" \
			test "$(seen drop_eg sport 8445)" -gt 0 -a "$(seen drop_eg sport 8443)" = 0
		expect_seen "drop at egress: nothing reached the client" cli_in_drop sport 8445 0
		expect_seen "drop at egress: nothing reached the client from 8443" cli_in_drop sport 8443 0
		rm "$(foreign_dir drop_eg)/link" || fail "drop at egress: detach" "rm failed"
		expect_cli_ok "drop: unload" server unload --pin-dir "$PIN"
	fi
}

t_run_tests coexist "$@"
