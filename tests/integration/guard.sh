#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The netns guard: a hidden port stays hidden on every path into the server's network
# namespace, not only on the interface bpfredir is attached to, as the recipe's
# `mangle PREROUTING MARK` + `filter INPUT DROP` (no -i) hide it.
#
#   client  192.0.2.1, 2001:db8::1      (cli0) ---- (srv0, attached)     server
#   client2 198.51.100.1, 2001:db8:1::1 (c2)   ---- (srv1, NOT attached) 198.51.100.2, 2001:db8:1::2
#           vx0 203.0.113.1, 2001:db8:2::1   vxlan over srv1 (decap)  vx0 203.0.113.2, 2001:db8:2::2
#   ctr     203.0.113.130, 2001:db8:3::2 (ctr0) -- (vb0) port of br0: 203.0.113.129, 2001:db8:3::1
#   client  --> 192.0.2.130 on mv0, a macvlan over srv0 (a container on the attached NIC)
#
# The server forwards and has a default route via client2, so a FIB lookup for a broadcast
# or multicast destination succeeds (the review's H4). Server: HTTPS on 8443/tcp, and
# helpers/guardprobe.py's sink (UDP echo on 8443 and 9000, TCP on 9000), which logs every
# datagram it gets, broadcast and multicast included. Rules: 8445 -> 8443, tcp and udp.
#
# Shown: before load every path reaches 8443; with the netfilter guard, direct hits through
# every path get nothing (counters grow) while 8445 works on srv0, local clients reach 8443
# and port 9000 is untouched; a newer build replaces the guard with no gap; after del every
# path reaches 8443 again; unload leaves no guard link. Then the same with the sk_lookup
# fallback forced (direct hits refused as by a closed port; broadcast and multicast get
# through, and status, add and apply say so), and with no guard at all.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

ALL_TESTS="test_without_bpfredir test_netfilter_guard test_sk_lookup test_no_guard"

vxlan() {
	ip -n "$(ns "$1")" link add vx0 type vxlan id 42 local "$2" remote "$3" dstport 4789 \
		dev "$4" &&
		ip -n "$(ns "$1")" addr add "$5" dev vx0 &&
		ip -n "$(ns "$1")" -6 addr add "$6" dev vx0 nodad &&
		ip -n "$(ns "$1")" link set vx0 up
}

# tcp_open NS ADDR: the sink's TCP port 9000 answers from NS.
tcp_open() {
	[[ $(in_ns "$1" timeout 5 "$SCAPY_PYTHON" "$T_HELPERS/guardprobe.py" probe --timeout 0.5 \
		p="tcp:$2:9000") == '{"p": "open"}' ]]
}

# probe_all PHASE PORT [EXTRA...]: every path's probes to PORT at once, from the three
# namespaces in parallel; EXTRA (NAME=KIND:ADDR:PORT, from client) ride along. Results in
# RES (JSON {PHASE-NAME: result}); casts are looked up in the sink's log.
probe_all() {
	local phase=$1 port=$2 ns p specs pids=()
	shift 2
	for ns in client client2 ctr; do
		local -n paths="PATHS_$ns"
		specs=()
		for p in "${paths[@]}"; do
			specs+=("$phase-${p/:@/:$port}")
		done
		[[ $ns != client ]] || specs+=("$@")
		in_ns "$ns" timeout 30 "$SCAPY_PYTHON" "$T_HELPERS/guardprobe.py" probe "${specs[@]}" \
			>"$T_TMP/probe-$ns.json" 2>"$T_TMP/probe-$ns.err" &
		pids+=($!)
	done
	wait "${pids[@]}"
	sleep 0.3 # a datagram still on its way to the sink
	RES=$(jq -s 'add' "$T_TMP"/probe-{client,client2,ctr}.json 2>/dev/null)
	[[ -n $RES ]] || RES='{}'
}

# result NAME: the probe's result, or what went wrong.
result() {
	local got
	got=$(jq -r --arg n "$1" '.[$n] // empty' <<<"$RES")
	printf '%s' "${got:-missing ($(cat "$T_TMP"/probe-*.err | tail -c 200))}"
}

# arrived NAME PORT: the sink got the datagram NAME on PORT.
arrived() { grep -qx "$2 $1" "$SINK_LOG"; }

# expect_probe NAME PROBE WANT: a unicast probe gave WANT.
expect_probe() {
	local got
	got=$(result "$2")
	expect_eq "$1" "$3" "$got" "$2"
}

# expect_cast NAME PROBE PORT arrived|stopped: a broadcast or multicast probe's fate.
expect_cast() {
	local sent
	sent=$(result "$2")
	if [[ $sent != sent ]]; then
		fail "$1" "$2 could not be sent: $sent"
	elif arrived "$2" "$3"; then
		if [[ $4 == arrived ]]; then pass "$1"; else fail "$1" "$2 reached the service on $3"; fi
	elif [[ $4 == stopped ]]; then
		pass "$1"
	else
		fail "$1" "$2 never reached the service on $3"
	fi
}

# expect_paths PHASE PORT PREFIX... -- TCP UDP CAST: every probe of the paths PREFIX gave TCP,
# UDP (unicast) or, for broadcast, multicast and spoofed datagrams, CAST (arrived, stopped, or
# - for unchecked).
expect_paths() {
	local phase=$1 port=$2 prefixes=() name kind
	shift 2
	while [[ $1 != -- ]]; do
		prefixes+=("$1")
		shift
	done
	shift
	for name in $(jq -r 'keys[]' <<<"$RES"); do
		for kind in "${prefixes[@]}"; do
			[[ $name == "$phase-$kind-"* && ${name#"$phase-$kind-"} != *-* ]] || continue
			case $name in
			*-tcp?) expect_probe "$phase: $name" "$name" "$1" ;;
			*-udp?) expect_probe "$phase: $name" "$name" "$2" ;;
			*cast* | *spoof*) [[ $3 == - ]] || expect_cast "$phase: $name" "$name" "$port" "$3" ;;
			esac
		done
	done
}

# cli_ok_and_err PATTERN: the last command succeeded and said PATTERN on stderr.
cli_ok_and_err() { [[ $CLI_RC == 0 ]] && grep -q -- "$1" <<<"$CLI_ERR"; }

# A count of probes: a phase that ran none must not pass silently.
expect_ran() {
	local n
	n=$(jq 'length' <<<"$RES")
	check "$1: probes ran" "only $n results: $RES" test "$n" -ge "$2"
}

setup_tests() {
	# The loader built with test hooks: BPFREDIR_TEST_GUARD forces the guard's fallbacks.
	FAILPOINTS_BIN=$T_REPO/build/tests/bpfredir-failpoints
	t_require socat
	t_require_scapy

	netns_add client
	netns_add client2
	netns_add server
	netns_add ctr
	veth client cli0 192.0.2.1/24 server srv0 192.0.2.2/24
	veth client2 c2 198.51.100.1/24 server srv1 198.51.100.2/24
	veth ctr ctr0 203.0.113.130/25 server vb0 203.0.113.129/25
	addr6 client cli0 2001:db8::1/64
	addr6 server srv0 2001:db8::2/64
	addr6 client2 c2 2001:db8:1::1/64
	addr6 server srv1 2001:db8:1::2/64
	addr6 ctr ctr0 2001:db8:3::2/64
	# The bridge takes vb0's place: its address moves to br0.
	S=(ip -n "$(ns server)")
	{ "${S[@]}" addr flush dev vb0 &&
		"${S[@]}" link add br0 type bridge &&
		"${S[@]}" link set vb0 master br0 &&
		"${S[@]}" addr add 203.0.113.129/25 dev br0 &&
		"${S[@]}" -6 addr add 2001:db8:3::1/64 dev br0 nodad &&
		"${S[@]}" link set br0 up; } || t_abort "could not make the bridge"
	if ! vxlan server 198.51.100.2 198.51.100.1 srv1 203.0.113.2/25 2001:db8:2::2/64 ||
		! vxlan client2 198.51.100.1 198.51.100.2 c2 203.0.113.1/25 2001:db8:2::1/64; then
		t_abort "could not make the vxlan devices"
	fi
	# A macvlan over srv0: TC on srv0 sees its traffic, then the stack delivers it through mv0.
	# srv0 answers ARP only for its own address, so the client talks to mv0's MAC address.
	{ "${S[@]}" link add mv0 link srv0 type macvlan mode bridge &&
		"${S[@]}" addr add 192.0.2.130/32 dev mv0 &&
		"${S[@]}" link set mv0 up &&
		in_ns server sysctl -qw net.ipv4.conf.srv0.arp_ignore=1; } || t_abort "could not make the macvlan"
	# client2 reaches srv0's address through srv1 too (the weak host model).
	ip -n "$(ns client2)" route add 192.0.2.2/32 via 198.51.100.2 || t_abort "client2 route"
	ip -n "$(ns server)" route add default via 198.51.100.1 || t_abort "server default route"
	ip -n "$(ns server)" -6 route add default via 2001:db8:1::1 || t_abort "server default route6"
	in_ns server sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
		t_abort "could not turn forwarding on in the server"
	make_cert
	https_server server
	SINK_LOG="$T_TMP/sink.log"
	: >"$SINK_LOG"
	server server 9000 tcp "$SCAPY_PYTHON" "$T_HELPERS/guardprobe.py" sink "$SINK_LOG" udp:8443 \
		udp:9000 tcp:9000
	wait_for 5 listening server 8443 udp || t_abort "the sink did not listen on 8443/udp"
	wait_for 5 tcp_open ctr 203.0.113.129 || t_abort "the bridge does not pass"
	wait_for 5 tcp_open client2 203.0.113.2 || t_abort "the vxlan does not pass"

	pin_dir PIN guard
	P=(--pin-dir "$PIN")
	SRV=192.0.2.2
	SRV6=2001:db8::2
	# The kernel's answer, not bpfredir's: without netfilter BPF links (Linux 6.4+) only the
	# sk_lookup part below runs.
	NETFILTER=1
	t_need netfilter "guard netfilter" || NETFILTER=0

	# --- probes --------------------------------------------------------------------------------

	# Every path into the server, per probing namespace: NAME=KIND:ADDR:@[:DEV], @ standing for
	# the port (see guardprobe.py). srv1x1 and srv1x12 are SYNs behind 1 and 12 IPv6
	# destination options headers (the kernel here delivers no longer chain), srv1o one with
	# IPv4 options: the guard's other parser, and the long header. srv1-spoof6 is a datagram from
	# the server's own IPv6 address, which the kernel delivers (IPv4 drops it as a martian).
	# shellcheck disable=SC2034 # read through a nameref in probe_all
	PATHS_client=(
		"srv0-tcp4=tcp:$SRV:@" "srv0-tcp6=tcp:[$SRV6]:@" "srv0-udp4=udp:$SRV:@" "srv0-udp6=udp:[$SRV6]:@"
		"srv0-bcast=bcast:255.255.255.255:@:cli0" "srv0-mcast4=mcast:224.0.0.1:@:cli0"
		"srv0-mcast6=mcast:[ff02::1]:@:cli0"
		"mvl-tcp4=tcp:192.0.2.130:@" "mvl-udp4=udp:192.0.2.130:@"
	)
	# shellcheck disable=SC2034
	PATHS_client2=(
		"srv1-tcp4=tcp:198.51.100.2:@" "srv1-tcp6=tcp:[2001:db8:1::2]:@"
		"srv1-udp4=udp:198.51.100.2:@" "srv1-udp6=udp:[2001:db8:1::2]:@"
		"srv1-weak-tcp4=tcp:$SRV:@" "srv1-weak-udp4=udp:$SRV:@"
		"srv1x1-tcp6=syn:[2001:db8:1::2]:@:1" "srv1x12-tcp6=syn:[2001:db8:1::2]:@:12"
		"srv1o-tcp4=syn:198.51.100.2:@:8" "srv1-spoof6=spoof:[2001:db8:1::2]:@"
		"srv1-bcast=bcast:255.255.255.255:@:c2" "srv1-sbcast=bcast:198.51.100.255:@:c2"
		"srv1-mcast4=mcast:224.0.0.1:@:c2" "srv1-mcast6=mcast:[ff02::1]:@:c2"
		"vxlan-tcp4=tcp:203.0.113.2:@" "vxlan-tcp6=tcp:[2001:db8:2::2]:@"
		"vxlan-udp4=udp:203.0.113.2:@" "vxlan-udp6=udp:[2001:db8:2::2]:@"
		"vxlan-bcast=bcast:203.0.113.127:@:vx0"
	)
	# shellcheck disable=SC2034
	PATHS_ctr=(
		"bridge-tcp4=tcp:203.0.113.129:@" "bridge-tcp6=tcp:[2001:db8:3::1]:@"
		"bridge-udp4=udp:203.0.113.129:@" "bridge-udp6=udp:[2001:db8:3::1]:@"
		"bridge-bcast=bcast:203.0.113.255:@:ctr0" "bridge-mcast4=mcast:224.0.0.1:@:ctr0"
	)
	# The paths that do not go through srv0, and those that do.
	OFF_PATHS=(srv1 srv1-weak srv1x1 srv1x12 srv1o vxlan bridge)
	ON_PATHS=(srv0 mvl)
}

# --- without bpfredir: every path reaches 8443 -----------------------------------------
test_without_bpfredir() {
	probe_all before 8443
	expect_ran before 34
	expect_paths before 8443 "${ON_PATHS[@]}" "${OFF_PATHS[@]}" -- open echo arrived
}

# --- the netfilter guard -------------------------------------------------------------------
test_netfilter_guard() {
	if ((NETFILTER)); then
		expect_cli_ok "load" server load --iface srv0 "${P[@]}"
		cli server status --json "${P[@]}"
		check "load: the guard is netfilter" "$(json_get .guard)" \
			test "$(json_get .features.guard)" = netfilter
		NF_LINKS=$(json_get '.guard.link_ids | join(" ")')
		check "load: two netfilter links, LOCAL_IN v4 and v6, pinned" "links: $NF_LINKS" \
			bash -c "bpftool -j link show pinned '$PIN/links/guard_nf4' | jq -e '.type == \"netfilter\" and .pf == 2 and .hook == 1' >/dev/null &&
				bpftool -j link show pinned '$PIN/links/guard_nf6' | jq -e '.type == \"netfilter\" and .pf == 10 and .hook == 1' >/dev/null"
		expect_cli_ok "add 8445 8443" server add 8445 8443 "${P[@]}"
		check "add: no warning, the guard covers every interface" "stderr: $CLI_ERR" \
			test -z "$CLI_ERR"
		expect_cli_ok "add 8445 8443 udp" server add 8445 8443 --proto udp "${P[@]}"
		before_guard=$(counter server "$PIN" guard_dropped)
		before_hidden=$(counter server "$PIN" hidden_dropped)

		probe_all nf 8443 "nf-pub-udp4=udp:$SRV:8445" "nf-pub-udp6=udp:[$SRV6]:8445" \
			nf-mvl-pub-tcp4=tcp:192.0.2.130:8445 nf-mvl-pub-udp4=udp:192.0.2.130:8445
		expect_ran netfilter 38
		# srv0 is attached: TC drops the unicast hits, the guard the broadcast and multicast
		# ones TC passes as "not local" (H4).
		expect_paths nf 8443 "${ON_PATHS[@]}" "${OFF_PATHS[@]}" -- none none stopped
		expect_probe "netfilter: UDP through 8445 (srv0) still works" nf-pub-udp4 echo
		expect_probe "netfilter: UDP through [v6]:8445 (srv0) still works" nf-pub-udp6 echo
		# Translated on srv0, delivered through mv0: the guard finds the connection's flow entry.
		expect_probe "netfilter: TCP through 8445 on the macvlan still works" nf-mvl-pub-tcp4 open
		expect_probe "netfilter: UDP through 8445 on the macvlan still works" nf-mvl-pub-udp4 echo
		expect_stat_grew "netfilter: guard_dropped counts the hits off srv0" server "$PIN" \
			guard_dropped "${before_guard:-0}"
		expect_stat_grew "netfilter: hidden_dropped counts the hits on srv0" server "$PIN" \
			hidden_dropped "${before_hidden:-0}"
		check "netfilter: the rule's counter counts the guard's drops too" "$(cli_result)" \
			json_matches '.rules[] | select(.public_port == 8445 and .proto == "tcp")
				| .stats.hidden_dropped > 0'
		expect "netfilter: HTTPS through 8445 (srv0)" ok "$(url $SRV 8445)" in_ns client
		expect "netfilter: HTTPS through [v6]:8445 (srv0)" ok "$(url $SRV6 8445)" in_ns client

		# Local clients are --hide-local's business: the guard lets loopback through.
		in_ns server timeout 30 "$SCAPY_PYTHON" "$T_HELPERS/guardprobe.py" probe \
			local-tcp4=tcp:127.0.0.1:8443 "local-tcp6=tcp:[::1]:8443" "local-own=tcp:$SRV:8443" \
			local-own-srv1=tcp:198.51.100.2:8443 local-own-vxlan=tcp:203.0.113.2:8443 \
			local-udp4=udp:127.0.0.1:8443 local-own-udp=udp:198.51.100.2:8443 \
			>"$T_TMP/local.json" 2>&1
		RES=$(cat "$T_TMP/local.json")
		for name in local-tcp4 local-tcp6 local-own local-own-srv1 local-own-vxlan; do
			expect_probe "netfilter: a local client reaches 8443 ($name)" $name open
		done
		for name in local-udp4 local-own-udp; do
			expect_probe "netfilter: a local client reaches 8443/udp ($name)" $name echo
		done

		# Judged by the port a packet arrived with, like the recipe's MARK in mangle PREROUTING
		# (before nat): an nftables redirect onto 8443 is not a direct hit, one off 8443 is.
		if command -v nft >/dev/null; then
			in_ns server nft -f - <<-'NFT' || t_abort "nft: could not add the redirects"
			table ip guardtest {
				chain pre {
					type nat hook prerouting priority dstnat;
					tcp dport 9100 redirect to :8443
					udp dport 9100 redirect to :8443
					udp dport 8443 redirect to :9000
				}
			}
		NFT
			in_ns client2 timeout 30 "$SCAPY_PYTHON" "$T_HELPERS/guardprobe.py" probe \
				nat-onto-tcp=tcp:198.51.100.2:9100 nat-onto-udp=udp:198.51.100.2:9100 \
				nat-off-udp=udp:198.51.100.2:8443 >"$T_TMP/nat.json" 2>&1
			RES=$(cat "$T_TMP/nat.json")
			expect_probe "netfilter: nft redirect 9100 -> 8443 through srv1 still works (tcp)" \
				nat-onto-tcp open
			expect_probe "netfilter: nft redirect 9100 -> 8443 through srv1 still works (udp)" \
				nat-onto-udp echo
			stopped_off() { [[ $(result nat-off-udp) == none ]] && ! arrived nat-off-udp 9000; }
			check "netfilter: a datagram to 8443 redirected to 9000 is still a hit on 8443" \
				"$(result nat-off-udp); $(grep -c nat-off "$SINK_LOG") delivered" stopped_off
			in_ns server nft delete table ip guardtest
		else
			printf 'SKIP: guard nat: needs nft\n'
		fi

		probe_all nf-other 9000
		expect_paths nf-other 9000 "${ON_PATHS[@]}" "${OFF_PATHS[@]}" -- open echo arrived

		cli server status "${P[@]}"
		check "status: the guard is netfilter" "$CLI_OUT" grep -q '^guard: *netfilter' <<<"$CLI_OUT"
		for dev in srv1 vx0 br0 mv0; do
			check "status: $dev listed as not attached, its public ports not translated" \
				"$CLI_OUT" grep -Eq "^  $dev \(ifindex [0-9]+\): not attached: public ports not translated here, hidden ports guarded\$" <<<"$CLI_OUT"
		done
		check "status: no WARNING with the netfilter guard" "$CLI_OUT" \
			bash -c '! grep -q WARNING' <<<"$CLI_OUT"
		cli server status --json "${P[@]}"
		check "status --json: not_attached lists srv1, vx0, br0, mv0, nothing exposed" "$CLI_OUT" \
			json_matches '([.guard.not_attached[].name] | sort) == ["br0","mv0","srv1","vx0"] and
				all(.guard.not_attached[]; .exposed == [])'

		# A newer build (other instructions) replaces the guard's links; netfilter links cannot
		# be updated in place, so the new ones go in before the old ones go out. Datagrams
		# streamed at 8443 through srv1 meanwhile must all be dropped.
		if newer_built "newer build: load replaces the programs"; then
			in_ns client2 timeout 30 "$SCAPY_PYTHON" "$T_HELPERS/guardprobe.py" stream 3 gap \
				198.51.100.2 8443 >"$T_TMP/stream.out" 2>&1 &
			stream=$!
			sleep 1
			BPFREDIR=$T_NEWER cli server load --iface srv0 "${P[@]}"
			wait "$stream"
			check "newer build: load replaces the programs" "$(cli_result) $CLI_OUT" \
				grep -q "programs replaced" <<<"$CLI_OUT"
			cli server status --json "${P[@]}"
			new_links=$(json_get '.guard.link_ids | join(" ")')
			check "newer build: the guard runs new netfilter links" "before $NF_LINKS, after $new_links" \
				test "$(json_get .guard.kind)" = netfilter -a -n "$new_links" -a "$new_links" != "$NF_LINKS"
			# shellcheck disable=SC2086
			check "newer build: the old guard links are gone" "links $NF_LINKS" \
				wait_for 5 gone_ids link $NF_LINKS
			sent=$(cat "$T_TMP/stream.out")
			check "newer build: $sent datagrams at 8443 during the swap, none delivered" \
				"$(grep -c ' gap-' "$SINK_LOG") delivered" \
				bash -c "[[ '$sent' =~ ^[0-9]+\$ && '$sent' -gt 500 ]] && ! grep -q ' gap-' '$SINK_LOG'"
			NF_LINKS=$new_links
		fi

		expect_cli_ok "del 8445" server del 8445 "${P[@]}"
		expect_cli_ok "del 8445 udp" server del 8445 --proto udp "${P[@]}"
		probe_all nf-del 8443
		expect_paths nf-del 8443 "${ON_PATHS[@]}" "${OFF_PATHS[@]}" -- open echo arrived
		expect_cli_ok "unload" server unload "${P[@]}"
		# shellcheck disable=SC2086
		check "unload: no guard link left" "links $NF_LINKS" wait_for 5 gone_ids link $NF_LINKS
	fi
}

# --- the sk_lookup fallback (kernels without netfilter BPF links) --------------------------
test_sk_lookup() {
	BPFREDIR=$FAILPOINTS_BIN BPFREDIR_TEST_GUARD=sk_lookup cli server load --iface srv0 "${P[@]}"
	check "sk_lookup: load" "$(cli_result)" test "$CLI_RC" -eq 0
	check "sk_lookup: load warns that broadcast and multicast are not covered" "$CLI_ERR" \
		grep -q "guard runs as sk_lookup.*cannot see UDP broadcast or multicast" <<<"$CLI_ERR"
	cli server status --json "${P[@]}"
	SK_LINKS=$(json_get '.guard.link_ids | join(" ")')
	check "sk_lookup: one sk_lookup link on the server's netns" "$(json_get .guard)" \
		bash -c "[[ '$(json_get .features.guard)' == sk_lookup ]] && bpftool -j link show pinned '$PIN/links/guard_sk_lookup' | jq -e '.type == \"netns\" and .attach_type == \"sk_lookup\"' >/dev/null"
	expect_cli_ok "sk_lookup: add 8445 8443" server add 8445 8443 "${P[@]}"
	check "sk_lookup: add (tcp) warns of nothing: TCP is covered" "$CLI_ERR" test -z "$CLI_ERR"
	expect_cli_ok "sk_lookup: add 8445 8443 udp" server add 8445 8443 --proto udp "${P[@]}"
	for dev in srv1 vx0 br0; do
		check "sk_lookup: add (udp) warns that 8443/udp is reachable through $dev" "$CLI_ERR" \
			grep -q "^bpfredir: warning: hidden 8443/udp reachable through $dev by UDP broadcast or multicast" <<<"$CLI_ERR"
	done
	before_guard=$(counter server "$PIN" guard_dropped)

	probe_all sk 8443 "sk-pub-udp4=udp:$SRV:8445"
	expect_ran sk_lookup 35
	expect_paths sk 8443 "${ON_PATHS[@]}" -- none none -
	# A closed port's answers: RST, ICMP port unreachable.
	expect_paths sk 8443 "${OFF_PATHS[@]}" -- refused refused arrived
	expect_probe "sk_lookup: UDP through 8445 (srv0) still works" sk-pub-udp4 echo
	expect "sk_lookup: HTTPS through 8445 (srv0)" ok "$(url $SRV 8445)" in_ns client
	expect_stat_grew "sk_lookup: guard_dropped counts the refused lookups" server "$PIN" \
		guard_dropped "${before_guard:-0}"
	expect "sk_lookup: a local client reaches 127.0.0.1:8443" ok "$(url 127.0.0.1 8443)" in_ns server
	expect "sk_lookup: a local client reaches 198.51.100.2:8443" ok "$(url 198.51.100.2 8443)" \
		in_ns server

	cli server status "${P[@]}"
	check "sk_lookup: status names the guard" "$CLI_OUT" grep -q '^guard: *sk_lookup' <<<"$CLI_OUT"
	for dev in srv1 vx0 br0; do
		check "sk_lookup: status warns that 8443/udp is reachable through $dev" "$CLI_OUT" \
			grep -q "^  WARNING: hidden 8443/udp reachable through $dev by UDP broadcast or multicast" <<<"$CLI_OUT"
	done
	check "sk_lookup: status does not warn about srv0" "$CLI_OUT" \
		bash -c '! grep -q "WARNING.* srv0 " ' <<<"$CLI_OUT"
	cli server status --json "${P[@]}"
	check "sk_lookup: status --json lists 8443/udp exposed by broadcast/multicast on srv1" \
		"$CLI_OUT" json_matches '.guard.not_attached[] | select(.name == "srv1")
			| .exposed == [{"port":8443,"proto":"udp","by":"broadcast/multicast"}]'

	CONF="$T_TMP/guard.conf"
	printf 'interface srv0\nrule 8445 8443\nrule 8445 8443 proto udp\n' >"$CONF"
	chmod 0600 "$CONF"
	# apply upgrades the programs, the guard too: it is forced to sk_lookup here as well.
	BPFREDIR=$FAILPOINTS_BIN BPFREDIR_TEST_GUARD=sk_lookup cli server apply -f "$CONF" "${P[@]}"
	check "sk_lookup: apply succeeds and warns about srv1" "$(cli_result)" \
		cli_ok_and_err "^bpfredir: warning: hidden 8443/udp reachable through srv1 by UDP broadcast"
	if ((NETFILTER)); then
		# Not forced any more, apply (the same build) puts in the best guard there is.
		cli server apply -f "$CONF" "${P[@]}"
		cli_ok() { [[ $CLI_RC == 0 ]]; }
		check "apply, not forced: succeeds" "$(cli_result)" cli_ok
		cli server status --json "${P[@]}"
		# shellcheck disable=SC2086 # ids, one word each
		nf_replaced_sk() { [[ $(json_get .guard.kind) == netfilter ]] && wait_for 5 gone_ids link $SK_LINKS; }
		check "apply, not forced: the netfilter guard replaces sk_lookup" "$(json_get .guard)" \
			nf_replaced_sk
		# A guard that went (its pins removed, so its links detached) comes back at the next load.
		rm -f "$PIN/links/guard_nf4" "$PIN/links/guard_nf6"
		expect_cli_ok "guard gone: load again" server load --iface srv0 "${P[@]}"
		cli server status --json "${P[@]}"
		check "guard gone: load of the same build attaches it again" "$(json_get .guard)" \
			test "$(json_get .guard.kind)" = netfilter
		SK_LINKS="$SK_LINKS $(json_get '.guard.link_ids | join(" ")')"
	fi
	expect_cli_ok "sk_lookup: unload" server unload "${P[@]}"
	# shellcheck disable=SC2086
	check "sk_lookup: no guard link left" "links $SK_LINKS" wait_for 5 gone_ids link $SK_LINKS
}

# --- no guard: the warning is the whole defence ---------------------------------------------
test_no_guard() {
	BPFREDIR=$FAILPOINTS_BIN BPFREDIR_TEST_GUARD=none cli server load --iface srv0 "${P[@]}"
	check "no guard: load warns" "$(cli_result)" cli_ok_and_err "no guard runs"
	expect_cli_ok "no guard: add 8445 8443" server add 8445 8443 "${P[@]}"
	check "no guard: add warns that 8443/tcp is reachable through srv1" "$CLI_ERR" \
		grep -q "^bpfredir: warning: hidden 8443/tcp reachable through srv1: not attached, and no guard runs" <<<"$CLI_ERR"
	cli server status "${P[@]}"
	for dev in srv1 vx0 br0; do
		check "no guard: status warns about $dev" "$CLI_OUT" \
			grep -q "^  WARNING: hidden 8443/tcp reachable through $dev: not attached, and no guard runs" <<<"$CLI_OUT"
	done
	probe_all none 8443
	# What the warning says is true: the hidden port answers off srv0.
	expect_probe "no guard: 8443 answers through srv1, as the warning says" none-srv1-tcp4 open
	expect_probe "no guard: 8443 is still dropped on srv0" none-srv0-tcp4 none
	expect_cli_ok "no guard: unload" server unload "${P[@]}"

	# The test hook is only in the test build: the loader users run always takes the best guard.
	BPFREDIR_TEST_GUARD=none cli server load --iface srv0 "${P[@]}"
	check "the normal build ignores BPFREDIR_TEST_GUARD" "$(cli_result)" test "$CLI_RC" -eq 0
	cli server status --json "${P[@]}"
	GUARD_KIND=sk_lookup
	((NETFILTER == 0)) || GUARD_KIND=netfilter
	check "... and runs the $GUARD_KIND guard, the best this kernel has" "$CLI_OUT" \
		json_matches ".guard.kind == \"$GUARD_KIND\""
	expect_cli_ok "normal build: unload" server unload "${P[@]}"
}

t_run_tests guard "$@"
