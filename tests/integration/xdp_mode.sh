#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# load --mode xdp, in native XDP (veth has it) and in generic XDP (--xdp-generic), with real
# traffic: TCP (HTTPS, a bulk transfer checked by sha256) and UDP, over IPv4 and IPv6, with
# the veths' checksum offloads off on both sides, so every rewritten checksum is verified
# in software by the receiving stack (and its InCsumErrors counters must not move). Also:
# the XDP program does ingress and TC ingress is not attached, status reports the XDP mode,
# a load on the same build changes nothing and a newer build updates the link in place, a
# foreign XDP program (xdp-filter, from xdp-tools) is refused with nothing left attached,
# and unload leaves nothing. Egress is tcx where the kernel has it, else a clsact filter;
# --attach tc asks for the filter on any kernel.
#
#   client 192.0.2.1   (cli0) ---- (srv0) 192.0.2.2    server
#          2001:db8::1                    2001:db8::2
#                                  (srv2) 198.51.100.1  (a second port, for the foreign program)
#
# Server: HTTPS on 8443, UDP echo on 8443, TCP echo on 9443; rules tcp and udp 8445->8443,
# tcp 9445->9443.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

XFER_BYTES=$((4 * 1024 * 1024))

ALL_TESTS="test_native test_load_again test_foreign_xdp test_generic test_attach_tc
	test_config_file"
t_depends test_load_again test_native
t_depends test_foreign_xdp test_native

# expect_udp NAME ADDR PORT WANT: udp_connected from the client gives WANT.
expect_udp() {
	local got
	got=$(udp_connected client "$2" "$3" 2>&1)
	expect_eq "$1" "$4" "$got" "datagram to $2 port $3"
}

# xdp_of NS IF: "mode:name" of the XDP program on IF, e.g. "driver:bpfredir_xdp", or empty;
# what failed when bpftool does (see bpftool_json).
xdp_of() {
	local json mode id
	json=$(bpftool_json "$1" net show dev "$2") || { printf '%s\n' "$json"; return 1; }
	read -r mode id < <(jq -r '.[] | (.xdp // [])[] | "\(.mode) \(.id)"' <<<"$json")
	[[ -n ${id:-} ]] || return 0
	json=$(bpftool_json - prog show id "$id") || { printf '%s\n' "$json"; return 1; }
	printf '%s:%s\n' "$mode" "$(jq -r .name <<<"$json")"
}

# xdp_id NS IF: the id of the XDP program on IF (empty when there is none).
xdp_id() {
	local json
	json=$(bpftool_json "$1" net show dev "$2") || { printf '%s\n' "$json"; return 1; }
	jq -r '.[0].xdp[0].id // empty' <<<"$json"
}

# xdp_link NS IF: the id of the link pinned for IF's XDP program in native mode.
xdp_link() {
	local ifindex json
	ifindex=$(ip -n "$(ns "$1")" -j link show dev "$2" | jq -r '.[0].ifindex')
	json=$(bpftool_json - link show pinned "$PIN/links/xdp_native_$ifindex") ||
		{ printf '%s\n' "$json"; return 1; }
	jq -r '.id // empty' <<<"$json"
}

# --- the datapath, in both XDP modes -----------------------------------------------------
# run_mode LABEL LOAD_OPTS...: load with LOAD_OPTS, traffic, status; stays loaded.
run_mode() {
	local m=$1 kmode want_status csum_before egress_by
	shift
	[[ $EGRESS == tcx ]] && egress_by=tcx || egress_by=tc
	[[ $m == native ]] && kmode=driver || kmode=generic
	want_status=$m
	expect_cli_ok "$m: load --iface $SERVER_IF $*" server load --iface "$SERVER_IF" "$@" "${P[@]}"
	expect_cli_ok "$m: add tcp 8445 8443" server add 8445 8443 "${P[@]}"
	expect_cli_ok "$m: add udp 8445 8443" server add 8445 8443 --proto udp "${P[@]}"
	expect_cli_ok "$m: add tcp 9445 9443" server add 9445 9443 "${P[@]}"

	check "$m: bpfredir_xdp runs in $kmode mode on $SERVER_IF" "xdp: $(xdp_of server "$SERVER_IF")" \
		test "$(xdp_of server "$SERVER_IF")" = "$kmode:bpfredir_xdp"
	ATTACHED=$(attached_progs server "$SERVER_IF")
	check "$m: TC egress attached ($EGRESS)" "attached: $ATTACHED" grep -q "^$EGRESS/egress:bpfredir_tc_eg:" <<<"$ATTACHED"
	check "$m: TC ingress not attached" "attached: $ATTACHED" test -z "$(grep ingress <<<"$ATTACHED")"
	cli server status --json "${P[@]}"
	# shellcheck disable=SC2016 # jq variables
	check "$m: status --json says mode xdp, $want_status, egress by $egress_by" "$(cli_result) $CLI_OUT" json_matches \
		--arg m "$want_status" --arg e "$egress_by" '.interfaces | length == 1 and .[0].name == "srv0" and
			.[0].mode == "xdp" and .[0].xdp_mode == $m and .[0].xdp_prog_id > 0 and .[0].egress_by == $e'
	cli server status "${P[@]}"
	check "$m: status says xdp ($want_status), egress by $egress_by" "$CLI_OUT" \
		grep -q "srv0 (ifindex [0-9]*): xdp ($want_status), XDP program [0-9]*; egress by $egress_by" <<<"$CLI_OUT"
	check "$m: checksum offloads are off on both veths" "$(in_ns server ethtool -k "$SERVER_IF" | grep checksumming)" \
		test "$(in_ns server ethtool -k "$SERVER_IF" | grep -c 'checksumming: off$')$(in_ns client ethtool -k "$CLIENT_IF" | grep -c 'checksumming: off$')" = 22

	csum_before="$(csum_errors server) $(csum_errors client)"
	list_json server "$PIN"
	local rewritten
	rewritten=$(stat_of rewritten)
	expect "$m: v4 curl -> :8445 gets the page" ok "$(url "$S4" 8445)" "${client[@]}"
	expect "$m: v6 curl -> :8445 gets the page" ok "$(url "$S6" 8445)" "${client[@]}"
	expect_syn_reply "$m: v4 SYN to :8445 is answered from 8445" client "$S4" 8445 "8445 SA"
	expect_udp "$m: v4 udp -> :8445 echoed from 8445" "$S4" 8445 echo
	expect_udp "$m: v6 udp -> :8445 echoed from 8445" "$S6" 8445 echo
	check "$m: v4 transfer through 9445, sha256 equal" "$(xfer "$S4" 9445)" test "$(xfer "$S4" 9445)" = ok
	check "$m: v6 transfer through 9445, sha256 equal" "$(xfer "$S6" 9445)" test "$(xfer "$S6" 9445)" = ok
	expect_stat_grew "$m: stats: rewritten grew (XDP counts as TC does)" server "$PIN" rewritten "${rewritten:-0}"
	local dropped
	dropped=$(counter server "$PIN" hidden_dropped)
	expect "$m: v4 curl -> :8443 dropped" dropped "$(url "$S4" 8443)" "${client[@]}"
	expect "$m: v6 curl -> :8443 dropped" dropped "$(url "$S6" 8443)" "${client[@]}"
	expect_syn_reply "$m: v4 SYN to :8443 gets no answer" client "$S4" 8443 none
	expect_udp "$m: v4 udp -> :8443 gets no answer at all" "$S4" 8443 none
	expect_udp "$m: v6 udp -> :8443 gets no answer at all" "$S6" 8443 none
	expect_stat_grew "$m: stats: hidden_dropped grew" server "$PIN" hidden_dropped "${dropped:-0}"
	check "$m: no checksum errors in either stack" "before (server client) $csum_before, after $(csum_errors server) $(csum_errors client)" \
		test "$csum_before" = "$(csum_errors server) $(csum_errors client)"

	# Crafted shapes. XDP sees every VLAN tag in the frame (TC finds the outermost moved
	# to skb metadata), so two tags are walked and a third makes the frame malformed.
	local malformed csum_server
	malformed=$(counter server "$PIN" malformed_dropped)
	csum_server=$(csum_errors server)
	raw_probe ipopt-syn "$S4" 8445 ipopt-syn "$S4" 8443 frag-syn "$S4" 8445 \
		ext2-syn "$S6" 8445 ext8-syn "$S6" 8445 ext2-syn "$S6" 8443 ext9-syn "$S6" 8445 \
		frag-udp "$S4" 8445 frag-udp "$S6" 8445 \
		syn@q0 "$S4" 8445 syn@q0 "$S6" 8443 syn@ad0,q0 "$S4" 8445 syn@ad0,q0 "$S6" 8445 \
		syn@ad0,q0 "$S4" 8443 udp@ad0,q0 "$S6" 8445 syn@ad0,q0,q0 "$S4" 8445 \
		badsum-syn "$S4" 9445 badsum-syn "$S6" 9445
	expect_answer "$m: v4 SYN with IP options to :8445 answered from 8445" ipopt-syn "$S4" 8445 "tcp 8445 SA"
	expect_answer "$m: v4 SYN with IP options to :8443 not answered" ipopt-syn "$S4" 8443 ""
	expect_answer "$m: v4 fragmented SYN to :8445 answered from 8445" frag-syn "$S4" 8445 "tcp 8445 SA"
	expect_answer "$m: v6 SYN behind 2 ext headers to :8445 answered from 8445" ext2-syn "$S6" 8445 "tcp 8445 SA"
	expect_answer "$m: v6 SYN behind 8 ext headers to :8445 answered from 8445" ext8-syn "$S6" 8445 "tcp 8445 SA"
	expect_answer "$m: v6 SYN behind 2 ext headers to :8443 not answered" ext2-syn "$S6" 8443 ""
	expect_answer "$m: v6 SYN behind 9 ext headers to :8445 dropped (malformed)" ext9-syn "$S6" 8445 ""
	expect_answer "$m: v4 fragmented datagram to :8445 echoed from 8445" frag-udp "$S4" 8445 "udp 8445 echo"
	expect_answer "$m: v6 fragmented datagram to :8445 echoed from 8445" frag-udp "$S6" 8445 "udp 8445 echo"
	expect_answer "$m: v4 SYN in an 802.1Q tag to :8445 answered from 8445" syn@q0 "$S4" 8445 "tcp 8445 SA"
	expect_answer "$m: v6 SYN in an 802.1Q tag to :8443 not answered" syn@q0 "$S6" 8443 ""
	expect_answer "$m: v4 SYN in 802.1ad+802.1Q tags to :8445 answered from 8445" syn@ad0,q0 "$S4" 8445 "tcp 8445 SA"
	expect_answer "$m: v6 SYN in 802.1ad+802.1Q tags to :8445 answered from 8445" syn@ad0,q0 "$S6" 8445 "tcp 8445 SA"
	expect_answer "$m: v4 SYN in 802.1ad+802.1Q tags to :8443 not answered" syn@ad0,q0 "$S4" 8443 ""
	expect_answer "$m: v6 datagram in 802.1ad+802.1Q tags to :8445 echoed from 8445" udp@ad0,q0 "$S6" 8445 "udp 8445 echo"
	expect_answer "$m: v4 SYN in three tags to :8445 dropped (malformed at XDP)" syn@ad0,q0,q0 "$S4" 8445 ""
	expect_stat_grew "$m: stats: malformed_dropped grew" server "$PIN" malformed_dropped "${malformed:-0}"
	for a in "$S4" "$S6"; do
		expect_answer "$m: a SYN with a bad checksum to $(endpoint "$a" 9445) stays bad, not answered" \
			badsum-syn "$a" 9445 ""
	done
	check "$m: the server counted both bad checksums (it verifies rewritten segments)" \
		"InCsumErrors went from $csum_server to $(csum_errors server)" \
		test "$(csum_errors server)" -ge $((csum_server + 2))
}

# instance_ids KIND: the ids of the instance's pinned programs (prog) or of their maps (map).
instance_ids() {
	local f json
	for f in "$PIN"/progs/*; do
		json=$(bpftool_json - prog show pinned "$f") || { printf '%s\n' "$json"; continue; }
		jq -r "if \"$1\" == \"prog\" then .id else .map_ids[]? end" <<<"$json"
	done | sort -un
}

# unloaded LABEL: nothing of bpfredir is left. (Other bpfredir instances may run on this
# machine at the same time, so the programs checked are this instance's, by id.)
unloaded() {
	local progs maps
	mapfile -t progs < <(instance_ids prog)
	mapfile -t maps < <(instance_ids map)
	check "$1: the instance's programs and maps are known" "programs: ${progs[*]}, maps: ${maps[*]}" \
		test "${#progs[@]}" -ge 11 -a "${#maps[@]}" -ge 8
	expect_cli_ok "$1: unload" server unload "${P[@]}"
	check "$1: pin dir removed" "$PIN exists" test ! -e "$PIN"
	check "$1: no XDP program on $SERVER_IF" "xdp: $(xdp_of server "$SERVER_IF")" test -z "$(xdp_of server "$SERVER_IF")"
	check "$1: nothing at TC on $SERVER_IF" "attached: $(attached_progs server "$SERVER_IF")" \
		test -z "$(attached_progs server "$SERVER_IF")"
	check "$1: programs ${progs[*]} freed" "still loaded" wait_for 5 gone_ids prog "${progs[@]}"
	check "$1: maps ${maps[*]} freed" "still there" wait_for 5 gone_ids map "${maps[@]}"
	expect "$1: after unload, curl -> :8443 works directly" ok "$(url "$S4" 8443)" "${client[@]}"
	expect_udp "$1: after unload, udp -> :8443 echoed" "$S4" 8443 echo
}

setup_tests() {
	t_require socat ethtool xdp-filter
	t_require_scapy
	t_topology
	netns_add other
	veth server srv2 198.51.100.1/24 other oth0 198.51.100.2/24
	S4=$SERVER_ADDR
	S6=2001:db8::2
	addr6 client "$CLIENT_IF" 2001:db8::1/64
	addr6 server "$SERVER_IF" "$S6/64"
	for side in "client $CLIENT_IF" "server $SERVER_IF"; do
		# shellcheck disable=SC2086 # "NS IF"
		in_ns ${side% *} ethtool -K ${side#* } rx off tx off >/dev/null 2>&1 ||
			t_abort "ethtool -K ${side#* } rx off tx off failed"
	done
	https_server server
	server server 8443 udp socat UDP6-RECVFROM:8443,ipv6only=0,fork PIPE
	server server 9443 tcp "$SCAPY_PYTHON" "$T_HELPERS/xfer.py" serve 9443
	pin_dir PIN xdp
	cgroup_add CG xdp
	P=(--pin-dir "$PIN")
	client=(in_ns client)
	# Where egress goes without --attach: tcx, or a clsact filter on a kernel without tcx.
	EGRESS=$(tc_kind)
}

test_native() {
	run_mode native --mode xdp
}

link_updated() {
	[[ $old_id =~ ^[0-9]+$ && $new_id =~ ^[0-9]+$ && $old_id != "$new_id" &&
		$new_link =~ ^[0-9]+$ && $old_link == "$new_link" ]]
}

# --- load again: same build, wrong mode, newer build ---------------------------------------
test_load_again() {
	cli server load --iface "$SERVER_IF" --mode xdp "${P[@]}"
	check "native: load again with the same build changes nothing" "$(cli_result) $CLI_OUT" grep -q "same build" <<<"$CLI_OUT"
	expect_cli_error "native: load the interface in tc mode is refused" 1 "interface srv0 is attached in xdp mode" \
		server load --iface "$SERVER_IF" "${P[@]}"
	expect_cli_error "native: load the interface with --xdp-generic is refused" 1 "interface srv0 is attached in xdp mode" \
		server load --iface "$SERVER_IF" --mode xdp --xdp-generic "${P[@]}"
	old_id=$(xdp_id server "$SERVER_IF")
	old_link=$(xdp_link server "$SERVER_IF")
	if newer_built "native: load of a newer build replaces the programs"; then
		CLI_OUT=$(in_ns server "$T_NEWER" load --iface "$SERVER_IF" --mode xdp "${P[@]}" 2>&1)
		check "native: load of a newer build replaces the programs" "$CLI_OUT" \
			grep -q "programs replaced by this build, maps kept" <<<"$CLI_OUT"
	fi
	new_id=$(xdp_id server "$SERVER_IF")
	new_link=$(xdp_link server "$SERVER_IF")
	check "newer build: another XDP program, through the same link" \
		"program $old_id -> $new_id, link $old_link -> $new_link" link_updated
	check "newer build: still bpfredir_xdp in driver mode" "xdp: $(xdp_of server "$SERVER_IF")" \
		test "$(xdp_of server "$SERVER_IF")" = driver:bpfredir_xdp
	expect_rules "newer build: the rules are kept" server "$PIN" $'8445 8443 tcp true\n8445 8443 udp true\n9445 9443 tcp true'
	expect "newer build: v4 curl -> :8445 gets the page" ok "$(url "$S4" 8445)" "${client[@]}"
	expect "newer build: v4 curl -> :8443 dropped" dropped "$(url "$S4" 8443)" "${client[@]}"
}

# --- a foreign XDP program ---------------------------------------------------------------
# libxdp installs its dispatcher (xdp_dispatcher) where the kernel takes freplace programs,
# else xdp-filter's own program (xdpfilt_*): the name is whatever runs.
test_foreign_xdp() {
	xdp_filter_load server srv2 skb
	foreign=$(xdp_of server srv2)
	foreign_name=${foreign#*:}
	[[ $foreign_name =~ ^[a-z_0-9]+$ ]] || t_abort "xdp-filter's program on srv2: '$foreign'"
	echo "# xdp-filter runs as $foreign"
	links_before=$(ls "$PIN/links")
	expect_cli_error "foreign: adding srv2 in xdp mode is refused, naming it" 1 \
		"interface srv2 already runs XDP program [0-9]+ '$foreign_name'" server load --iface srv2 --mode xdp "${P[@]}"
	check "foreign: its program still runs" "xdp: $(xdp_of server srv2)" test "$(xdp_of server srv2)" = "$foreign"
	check "foreign: nothing of bpfredir attached to srv2" "attached: $(attached_progs server srv2)" \
		test -z "$(attached_progs server srv2)"
	check "foreign: the instance's links are unchanged" "before: $links_before, after: $(ls "$PIN/links")" \
		test "$links_before" = "$(ls "$PIN/links")"
	pin_dir PIN2 xdp-foreign
	expect_cli_error "foreign: a fresh load on srv2 in xdp mode is refused" 1 \
		"interface srv2 already runs XDP program [0-9]+ '$foreign_name'" server load --iface srv2 --mode xdp --pin-dir "$PIN2"
	check "foreign: the fresh load left no pin dir" "$PIN2 exists" test ! -e "$PIN2"
	check "foreign: the fresh load left nothing on srv2" "attached: $(attached_progs server srv2)" \
		test -z "$(attached_progs server srv2)"
	expect_cli_ok "foreign: srv2 in tc mode is allowed beside it" server load --iface srv2 --mode tc "${P[@]}"
	cli server status --json "${P[@]}"
	# tc mode is tcx, or a clsact qdisc's filters without tcx: the XDP program runs before either.
	if [[ $(tc_kind) == tcx ]]; then TC_MODE=tcx TC_TEXT=tcx; else TC_MODE=tc TC_TEXT="tc, clsact .*"; fi
	# shellcheck disable=SC2016 # a jq variable
	check "foreign: status --json names it on srv2, before $TC_MODE" "$(cli_result) $CLI_OUT" json_matches \
		--arg name "$foreign_name" --arg mode "$TC_MODE" '.interfaces[] | select(.name == "srv2") |
			.mode == $mode and .xdp_mode == "generic" and .xdp_prog_name == $name and
			.xdp_prog_ours == false'
	cli server status "${P[@]}"
	check "foreign: status names it on srv2" "$CLI_OUT" \
		grep -Eq "srv2 \(ifindex [0-9]+\): $TC_TEXT; XDP program [0-9]+:$foreign_name \(foreign\) \(generic\) runs before TC" <<<"$CLI_OUT"
	xdp_filter_unload server srv2 >/dev/null 2>&1 || fail "foreign: xdp-filter unload" "failed"

	unloaded native
}

test_generic() {
	run_mode generic --mode xdp --xdp-generic
	unloaded generic
}

# --- --attach tc: egress by a clsact filter, as on a kernel without tcx --------------------
test_attach_tc() {
	if t_need cls_bpf "xdp with --attach tc"; then
		expect_cli_ok "generic, --attach tc: load" server load --iface "$SERVER_IF" --mode xdp --xdp-generic --attach tc "${P[@]}"
		expect_cli_ok "generic, --attach tc: add tcp 8445 8443" server add 8445 8443 "${P[@]}"
		expect_cli_ok "generic, --attach tc: add udp 8445 8443" server add 8445 8443 --proto udp "${P[@]}"
		check "generic, --attach tc: bpfredir_xdp runs in generic mode" "xdp: $(xdp_of server "$SERVER_IF")" \
			test "$(xdp_of server "$SERVER_IF")" = generic:bpfredir_xdp
		ATTACHED=$(attached_progs server "$SERVER_IF")
		check "generic, --attach tc: egress alone, as a clsact filter" "attached: $ATTACHED" \
			test "$(cut -d: -f1,2 <<<"$ATTACHED")" = clsact/egress:bpfredir_tc_eg
		cli server status "${P[@]}"
		check "generic, --attach tc: status says egress by tc" "$CLI_OUT" \
			grep -q "srv0 (ifindex [0-9]*): xdp (generic), XDP program [0-9]*; egress by tc" <<<"$CLI_OUT"
		check "generic, --attach tc: status lists srv0 once" "$CLI_OUT" test "$(grep -c '^  srv0 ' <<<"$CLI_OUT")" = 1
		expect "generic, --attach tc: v4 curl -> :8445 gets the page" ok "$(url "$S4" 8445)" "${client[@]}"
		expect_syn_reply "generic, --attach tc: v4 SYN to :8445 is answered from 8445" client "$S4" 8445 "8445 SA"
		expect_udp "generic, --attach tc: v4 udp -> :8445 echoed from 8445" "$S4" 8445 echo
		expect "generic, --attach tc: v4 curl -> :8443 dropped" dropped "$(url "$S4" 8443)" "${client[@]}"
		cli server load --iface "$SERVER_IF" --mode xdp --xdp-generic --attach tc "${P[@]}"
		check "generic, --attach tc: load again changes nothing" "$(cli_result) $CLI_OUT" grep -q "same build" <<<"$CLI_OUT"
		if newer_built "generic, --attach tc: a newer build replaces the programs"; then
			old_eg=$(attached_progs server "$SERVER_IF" | cut -d: -f3)
			CLI_OUT=$(in_ns server "$T_NEWER" load --iface "$SERVER_IF" --mode xdp --xdp-generic "${P[@]}" 2>&1)
			check "generic, --attach tc: a newer build replaces the programs" "$CLI_OUT" \
				grep -q "programs replaced by this build, maps kept" <<<"$CLI_OUT"
			ATTACHED=$(attached_progs server "$SERVER_IF")
			check "generic, --attach tc: the egress filter runs the newer program" "before: $old_eg, now: $ATTACHED" \
				test "$(cut -d: -f1,2 <<<"$ATTACHED")" = clsact/egress:bpfredir_tc_eg -a "$(cut -d: -f3 <<<"$ATTACHED")" != "$old_eg"
			expect_udp "generic, --attach tc: newer build: v4 udp -> :8445 echoed from 8445" "$S4" 8445 echo
		fi
		unloaded "generic, --attach tc"
	fi
}

# --- the config file: interface NAME mode ... --------------------------------------------
conf() { printf '%s\n' "$@" >"$T_TMP/bpfredir.conf"; }

test_config_file() {
	conf "interface $SERVER_IF mode xdp-generic" "rule 8445 8443"
	expect_cli_ok "apply: interface in mode xdp-generic, from nothing" server apply -f "$T_TMP/bpfredir.conf" "${P[@]}"
	check "apply: bpfredir_xdp runs in generic mode" "xdp: $(xdp_of server "$SERVER_IF")" \
		test "$(xdp_of server "$SERVER_IF")" = generic:bpfredir_xdp
	check "apply: TC ingress not attached" "attached: $(attached_progs server "$SERVER_IF")" \
		test "$(attached_progs server "$SERVER_IF" | cut -d: -f1,2)" = "$EGRESS/egress:bpfredir_tc_eg"
	expect "apply: v4 curl -> :8445 gets the page" ok "$(url "$S4" 8445)" "${client[@]}"
	expect "apply: v4 curl -> :8443 dropped" dropped "$(url "$S4" 8443)" "${client[@]}"
	cli server apply -f "$T_TMP/bpfredir.conf" "${P[@]}"
	check "apply: the same file again changes nothing" "$(cli_result) $CLI_OUT" test "$CLI_OUT" = "nothing to change"
	conf "interface $SERVER_IF mode xdp" "rule 8445 8443"
	expect_cli_error "apply: another mode for an attached interface is refused" 1 \
		"bpfredir.conf:1:11: interface srv0 is attached in xdp-generic mode" server apply -f "$T_TMP/bpfredir.conf" "${P[@]}"
	check "apply: refused, still generic" "xdp: $(xdp_of server "$SERVER_IF")" \
		test "$(xdp_of server "$SERVER_IF")" = generic:bpfredir_xdp
	conf "interface $SERVER_IF mode bogus"
	expect_cli_error "apply: an unknown mode is refused" 1 "bpfredir.conf:1:21: invalid mode 'bogus'" \
		server apply -f "$T_TMP/bpfredir.conf" "${P[@]}"
	conf "cgroup $CG" "rule 8445 8443"
	expect_cli_ok "apply: a file without the interface detaches it" server apply -f "$T_TMP/bpfredir.conf" "${P[@]}"
	check "apply: no XDP program left on $SERVER_IF" "xdp: $(xdp_of server "$SERVER_IF")" test -z "$(xdp_of server "$SERVER_IF")"
	check "apply: nothing left at TC on $SERVER_IF" "attached: $(attached_progs server "$SERVER_IF")" \
		test -z "$(attached_progs server "$SERVER_IF")"
	conf "interface $SERVER_IF mode xdp" "cgroup $CG" "rule 8445 8443"
	expect_cli_ok "apply: the interface back, in native mode" server apply -f "$T_TMP/bpfredir.conf" "${P[@]}"
	check "apply: bpfredir_xdp runs in driver mode" "xdp: $(xdp_of server "$SERVER_IF")" \
		test "$(xdp_of server "$SERVER_IF")" = driver:bpfredir_xdp
	expect "apply: native: v4 curl -> :8445 gets the page" ok "$(url "$S4" 8445)" "${client[@]}"
	unloaded apply
}

t_run_tests xdp_mode "$@"
