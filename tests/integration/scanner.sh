#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What real scanners (Debian's nmap and hping3) see of bpfredir, against what they see of
# the kernel alone. First the control: no bpfredir, and every scan of the server's ports
# records the kernel's answers. Then, in each mode (TC, XDP generic, XDP native, and TC with
# TCP steered at socket lookup: load --steering socket), bpfredir
# loaded with no rule (every port must answer as before), then with `add 8445 8443` (tcp and
# udp), hiding, then with --reject; the same scans must show:
#   - the public port 8445 as the kernel showed 8443 (the service);
#   - the hidden port 8443 as the kernel showed the closed port 9 with --reject, and as
#     the port 8446 the server's own nftables drops (no answer, the recipe's filter DROP)
#     without it;
#   - the ports no rule names (9 closed, 9000 open, 8446 dropped) exactly as before.
# nmap: SYN, ACK, FIN, NULL, Xmas, window, bad checksum and UDP scans over IPv4 and IPv6; SYN
# scans in 8-byte (-f) and 16-byte (--mtu 16) IPv4 fragments (nmap fragments no IPv6); SYN
# scans from one fixed source port (-g): the public port, then the hidden one, then the public
# one again, then every port twice. Its answers are read from its XML (-oX -,
# helpers/nmapxml.py), never from its screen text, TTLs included.
# hping3 (IPv4 only): single SYNs, each from a fresh source port, then a sequence from one
# fixed source port (-s -k) to the public, hidden and unrelated ports in turn: every answer
# must be the one that SYN gets alone (an answer about 8443 from 8443, as the kernel's about
# 9 comes from 9).
#
#   client 192.0.2.1 2001:db8::1 (cli0) ---- (srv0) 192.0.2.2 2001:db8::2 server
#
# Server: TCP (HTTPS) and UDP (echo) on 8443, TCP and UDP (echo) on 9000, nothing on 9,
# tcp and udp 8446 dropped by nftables.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"
# shellcheck source=tests/lib/packets.sh
. "$(dirname "$0")/../lib/packets.sh"

ALL_TESTS="test_control test_tc test_xdp_generic test_xdp_native test_socket"
t_depends test_tc test_control
t_depends test_socket test_control
t_depends test_xdp_generic test_control
t_depends test_xdp_native test_control

PUBLIC=$PUBLIC_PORT
HIDDEN=$TARGET_PORT
CLOSED=9
OPEN=9000
DROPPED=8446
UNRELATED="$CLOSED $OPEN $DROPPED"
PORTS="$CLOSED,$HIDDEN,$PUBLIC,$DROPPED,$OPEN"
# The fixed client ports of the sequences (nmap -g, hping3 -s -k).
NMAP_SPORT=40404
HPING_SPORT=40405
# The scans side by side each send from a port of their own, from this one up: nmap without
# -g takes a random port per scan and, from a random port, takes any answer to that port
# for its own, so two scans that drew the same port would read each other's answers.
SCAN_SPORT0=41000

# The scans run side by side, each "key|nmap options|families", each from a client port of
# its own (SCAN_SPORT0 up); the sequences from one fixed port run in turn, see g_sequence.
SCANS=(
	"syn|-sS|v4 v6"
	"ack|-sA|v4 v6"
	"fin|-sF|v4 v6"
	"null|-sN|v4 v6"
	"xmas|-sX|v4 v6"
	"window|-sW|v4 v6"
	"badsum|-sS --badsum|v4 v6"
	"udp|-sU|v4 v6"
	"frag8|-sS -f|v4"
	"frag16|-sS --mtu 16|v4"
)

# opts_of KEY: the nmap options of the scan KEY of SCANS.
opts_of() {
	local spec key opts fams
	for spec in "${SCANS[@]}"; do
		IFS='|' read -r key opts fams <<<"$spec"
		[[ $key != "$1" ]] || { printf '%s' "$opts"; return; }
	done
}

# --- nmap --------------------------------------------------------------------------------

# nmap_scan OUT FAMILY PORTS OPTIONS...: one nmap scan from the client of PORTS on the server
# over FAMILY (v4, v6); its ports, one a line "PROTO PORT STATE REASON TTL" (nmapxml.py), in
# OUT, or one line "error: ..." when nmap or its XML failed. --disable-arp-ping: -Pn alone
# still has nmap solicit the neighbour over IPv6 first, and with --badsum that solicitation
# carries a bad checksum too, so the host would be "down".
nmap_scan() {
	local out=$1 fam=$2 ports=$3 addr=$S4 six=()
	shift 3
	[[ $fam == v4 ]] || { addr=$S6; six=(-6); }
	in_ns client timeout 60 nmap -n -Pn --disable-arp-ping -T5 --max-retries 1 \
		--host-timeout 30s "${six[@]}" -p "$ports" -oX - "$@" "$addr" \
		>"$out.xml" 2>"$out.err"
	if ! "$SCAPY_PYTHON" "$T_HELPERS/nmapxml.py" --ttl <"$out.xml" >"$out" 2>>"$out.err"; then
		printf 'error: nmap %s %s: %s\n' "${six[*]}" "$*" \
			"$(tail -c 300 "$out.err" | tr '\n' ' ')" >"$out"
	fi
}

# g_sequence DIR FAMILY: SYN scans from the one client port NMAP_SPORT, in turn: the public
# port (g1), the hidden one (g2), the public one again (g3), every port (g4), every port
# again (g5).
g_sequence() {
	local dir=$1 fam=$2 g=(-sS -g "$NMAP_SPORT")
	nmap_scan "$dir/g1.$fam" "$fam" "$PUBLIC" "${g[@]}"
	nmap_scan "$dir/g2.$fam" "$fam" "$HIDDEN" "${g[@]}"
	nmap_scan "$dir/g3.$fam" "$fam" "$PUBLIC" "${g[@]}"
	nmap_scan "$dir/g4.$fam" "$fam" "$PORTS" "${g[@]}"
	nmap_scan "$dir/g5.$fam" "$fam" "$PORTS" "${g[@]}"
}

# scan_all DIR control|norules|rules: every scan of SCANS side by side, then the fixed-port
# ones of both families side by side: for the control, a scan of every port (gall); with
# rules, the sequences of g_sequence; none without rules. The results in DIR/KEY.FAMILY.
scan_all() {
	local dir=$1 spec key opts fams fam pids=() sport=$SCAN_SPORT0
	mkdir -p "$dir"
	for spec in "${SCANS[@]}"; do
		IFS='|' read -r key opts fams <<<"$spec"
		for fam in $fams; do
			# shellcheck disable=SC2086 # the options, one word each
			nmap_scan "$dir/$key.$fam" "$fam" "$PORTS" $opts -g "$sport" &
			pids+=($!)
			sport=$((sport + 1))
		done
	done
	wait "${pids[@]}"
	[[ $2 != norules ]] || return 0
	pids=()
	for fam in v4 v6; do
		if [[ $2 == control ]]; then
			nmap_scan "$dir/gall.$fam" "$fam" "$PORTS" -sS -g "$NMAP_SPORT" &
		else
			g_sequence "$dir" "$fam" &
		fi
		pids+=($!)
	done
	wait "${pids[@]}"
}

# answer FILE PORT: "STATE REASON TTL" of PORT in a scan's result, or what went wrong.
answer() {
	local line
	if [[ ! -s $1 ]]; then
		printf 'no result (%s)' "$1"
	elif [[ $(head -c 6 "$1") == error: ]]; then
		head -n 1 "$1"
	else
		line=$(awk -v p="$2" '$2 == p { print $3, $4, $5 }' "$1")
		printf '%s' "${line:-port $2 missing from the scan}"
	fi
}

# per_port FIELDS FILE PORT...: "PORT: " and its answer (only its first FIELDS words, unless
# FIELDS is 0), for each, joined by "; ".
per_port() {
	local fields=$1 file=$2 port a sep=
	shift 2
	for port in "$@"; do
		a=$(answer "$file" "$port")
		((fields == 0)) || a=$(cut -d' ' -f"1-$fields" <<<"$a")
		printf '%s%s: %s' "$sep" "$port" "$a"
		sep='; '
	done
}

# answers FILE PORT...: "PORT: STATE REASON TTL" for each, joined by "; ".
answers() { per_port 0 "$@"; }

# states FILE PORT...: "PORT: STATE" for each, joined by "; ".
states() { per_port 1 "$@"; }

# hidden_like: the control's port the hidden one must look like in this phase (REJECT: hide
# or reject), and what that port is.
hidden_like() {
	if [[ $REJECT == reject ]]; then
		echo "$CLOSED closed"
	else
		echo "$DROPPED dropped"
	fi
}

# expect_scan LABEL WHAT CONTROL GOT: the public, hidden and unrelated ports of one scan.
expect_scan() {
	local label=$1 what=$2 ctl=$3 got=$4 like kind
	read -r like kind < <(hidden_like)
	expect_eq "$label: $what: public $PUBLIC answers as the kernel's $HIDDEN did" \
		"$(answer "$ctl" "$HIDDEN")" "$(answer "$got" "$PUBLIC")"
	expect_eq "$label: $what: hidden $HIDDEN answers as the kernel's $kind $like did" \
		"$(answer "$ctl" "$like")" "$(answer "$got" "$HIDDEN")"
	# shellcheck disable=SC2086 # one word a port
	expect_eq "$label: $what: unrelated $UNRELATED answer as without bpfredir" \
		"$(answers "$ctl" $UNRELATED)" "$(answers "$got" $UNRELATED)"
}

# expect_unchanged LABEL DIR: every port of every scan of DIR answers as in the control's.
expect_unchanged() {
	local label=$1 dir=$2 spec key opts fams fam all=${PORTS//,/ } ctl
	for spec in "${SCANS[@]}"; do
		IFS='|' read -r key opts fams <<<"$spec"
		for fam in $fams; do
			ctl=$CONTROL/$key.$fam
			# shellcheck disable=SC2086 # one word a port
			expect_eq "$label: $fam nmap $opts: each port answers as without bpfredir" \
				"$(answers "$ctl" $all)" "$(answers "$dir/$key.$fam" $all)"
		done
	done
}

# expect_scans LABEL DIR: every scan of DIR against the control's.
expect_scans() {
	local label=$1 dir=$2 spec key opts fams fam like kind
	read -r like kind < <(hidden_like)
	for spec in "${SCANS[@]}"; do
		IFS='|' read -r key opts fams <<<"$spec"
		for fam in $fams; do
			expect_scan "$label" "$fam nmap $opts" "$CONTROL/$key.$fam" "$dir/$key.$fam"
		done
	done
	for fam in v4 v6; do
		local ctl=$CONTROL/gall.$fam what="$fam nmap -sS -g $NMAP_SPORT"
		expect_eq "$label: $what, first to $PUBLIC: answers as the kernel's $HIDDEN did" \
			"$(answer "$ctl" "$HIDDEN")" "$(answer "$dir/g1.$fam" "$PUBLIC")"
		expect_eq "$label: $what, then to $HIDDEN: answers as the kernel's $kind $like" \
			"$(answer "$ctl" "$like")" "$(answer "$dir/g2.$fam" "$HIDDEN")"
		expect_eq "$label: $what, then to $PUBLIC again: answers as the kernel's $HIDDEN" \
			"$(answer "$ctl" "$HIDDEN")" "$(answer "$dir/g3.$fam" "$PUBLIC")"
		expect_scan "$label" "$what, then every port" "$ctl" "$dir/g4.$fam"
		expect_scan "$label" "$what, then every port again" "$ctl" "$dir/g5.$fam"
	done
}

# --- hping3 ------------------------------------------------------------------------------

# hping_syn SPORT PORT: one SYN by hping3 from the client's port SPORT (-s -k) to the server's
# PORT over IPv4; prints every reply to SPORT that reached the client (helpers/replies.py), as
# "sport=N flags=F ttl=N [DF ]id=N win=N len=N", joined by ", ", or "none". hping3 shows only
# replies from PORT itself; an answer from another port is what must be seen. (A reply that
# hping3 printed and the sniffer missed is said so, and matches nothing.)
hping_syn() {
	local sport=$1 port=$2 dir pid seen shown
	dir=$(mktemp -d "$T_TMP/hping.XXXXXX")
	in_ns client timeout 20 "$SCAPY_PYTHON" "$T_HELPERS/replies.py" "$CLIENT_IF" "$S4" \
		"$sport" "$dir/ready" >"$dir/replies" 2>&1 &
	pid=$!
	if ! wait_for 5 test -e "$dir/ready"; then
		kill "$pid" 2>/dev/null
		printf 'error: the sniffer did not start: %s' "$(head -c 200 "$dir/replies")"
		return
	fi
	in_ns client timeout 10 hping3 -S -c 1 -s "$sport" -k -p "$port" "$S4" >"$dir/hping" 2>&1
	# hping3 is done at the first reply: a moment for any other.
	sleep 0.1
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	seen=$(paste -sd, "$dir/replies" | sed 's/,/, /g')
	shown=$(awk '/^len=/ {
			delete f; df = ""
			for (i = 1; i <= NF; i++) {
				if ($i == "DF") df = "DF "
				else if (split($i, kv, "=") == 2) f[kv[1]] = kv[2]
			}
			printf "sport=%s flags=%s ttl=%s %sid=%s win=%s len=%s\n", f["sport"],
				f["flags"], f["ttl"], df, f["id"], f["win"], f["len"]
		}' "$dir/hping")
	if [[ -n $shown && $seen != *"$shown"* ]]; then
		printf 'error: hping3 got %s, the sniffer saw %s' "$shown" "${seen:-nothing}"
		return
	fi
	printf '%s' "${seen:-none}"
}

# A lone SYN comes from a client port no other packet of this test came from: fresh_sport sets
# SPORT to the next one. (Left to itself, hping3 takes the same source port in every run
# started within one second: it seeds its choice with the time.)
FRESH_SPORT=41000
fresh_sport() {
	FRESH_SPORT=$((FRESH_SPORT + 1))
	SPORT=$FRESH_SPORT
}

# as_from ANSWER PORT: a hping3 answer as it would read coming from PORT.
as_from() { sed -E "s/sport=[0-9]+/sport=$2/g" <<<"$1"; }

# hping_control: the kernel's answer to a lone SYN at each port, in HPING_CTL[PORT].
declare -A HPING_CTL=()
hping_control() {
	local port
	for port in "$HIDDEN" $UNRELATED; do
		fresh_sport
		HPING_CTL[$port]=$(hping_syn "$SPORT" "$port")
	done
}

# expect_hping LABEL: lone SYNs to the public and hidden ports, then a sequence from one
# client port; each answered as a lone SYN to that port must be.
expect_hping() {
	local label=$1 like kind port i=0 sequence name
	read -r like kind < <(hidden_like)
	declare -A want_of=(
		[$PUBLIC]=$(as_from "${HPING_CTL[$HIDDEN]}" "$PUBLIC")
		[$HIDDEN]=$(as_from "${HPING_CTL[$like]}" "$HIDDEN")
		[$CLOSED]=${HPING_CTL[$CLOSED]}
		[$OPEN]=${HPING_CTL[$OPEN]}
	)
	fresh_sport
	expect_eq "$label: hping3 SYN to $PUBLIC answers as the kernel's $HIDDEN did" \
		"${want_of[$PUBLIC]}" "$(hping_syn "$SPORT" "$PUBLIC")"
	fresh_sport
	expect_eq "$label: hping3 SYN to $HIDDEN answers as the kernel's $kind $like did" \
		"${want_of[$HIDDEN]}" "$(hping_syn "$SPORT" "$HIDDEN")"
	sequence="$PUBLIC $HIDDEN $PUBLIC $CLOSED $OPEN $HIDDEN"
	for port in $sequence; do
		i=$((i + 1))
		name="$label: hping3 -s $HPING_SPORT -k, SYNs to ($sequence): SYN $i, to $port, as alone"
		expect_eq "$name" "${want_of[$port]}" "$(hping_syn "$HPING_SPORT" "$port")"
	done
}

# --- tests -------------------------------------------------------------------------------

setup_tests() {
	t_require nmap hping3 nft xdp-filter
	t_require_scapy
	t_topology
	S4=$SERVER_ADDR
	S6=2001:db8::2
	addr6 client "$CLIENT_IF" 2001:db8::1/64
	addr6 server "$SERVER_IF" "$S6/64"
	https_server server
	server server "$HIDDEN" udp "$SCAPY_PYTHON" "$T_HELPERS/udp_echo.py" "$HIDDEN"
	server server "$OPEN" tcp socat "TCP6-LISTEN:$OPEN,ipv6only=0,fork,reuseaddr" PIPE
	server server "$OPEN" udp "$SCAPY_PYTHON" "$T_HELPERS/udp_echo.py" "$OPEN"
	in_ns server nft -f - <<-EOF || t_abort "nft: could not drop port $DROPPED"
		table inet scanner {
			chain input {
				type filter hook input priority 0;
				tcp dport $DROPPED drop
				udp dport $DROPPED drop
			}
		}
	EOF
	pin_dir PIN scanner
	P=(--pin-dir "$PIN")
	CONTROL=$T_TMP/control
}

# The kernel's own answers, nothing of bpfredir loaded. The comparisons below mean
# something only if the services answer and the closed and dropped ports differ: checked.
test_control() {
	local fam c key opts want
	scan_all "$CONTROL" control
	for fam in v4 v6; do
		for c in syn "gall|-sS -g $NMAP_SPORT" udp frag8 frag16; do
			IFS='|' read -r key opts <<<"$c"
			[[ -n $opts ]] || opts=$(opts_of "$key")
			[[ $fam == v4 || $key != frag* ]] || continue
			want="$HIDDEN: open; $CLOSED: closed; $OPEN: open; $DROPPED: filtered"
			[[ $key != udp ]] || want="${want%filtered}open|filtered"
			# shellcheck disable=SC2086 # one word a port
			expect_eq "control: $fam nmap $opts: open, closed, dropped told apart" \
				"$want" "$(states "$CONTROL/$key.$fam" "$HIDDEN" $UNRELATED)"
		done
	done
	hping_control
	expect_eq "control: hping3 SYN to $HIDDEN is answered by the service" \
		"sport=$HIDDEN flags=SA" "$(cut -d' ' -f1,2 <<<"${HPING_CTL[$HIDDEN]}")"
	expect_eq "control: hping3 SYN to $CLOSED is refused" \
		"sport=$CLOSED flags=RA" "$(cut -d' ' -f1,2 <<<"${HPING_CTL[$CLOSED]}")"
	expect_eq "control: hping3 SYN to $DROPPED gets no answer" none "${HPING_CTL[$DROPPED]}"
}

# run_mode LABEL LOAD_OPTIONS...: one load, the scans hiding then with --reject, one unload.
run_mode() {
	local label=$1 want_mode
	shift
	expect_cli_ok "$label: load --iface $SERVER_IF $*" server \
		load --iface "$SERVER_IF" "$@" "${P[@]}"
	case $label in
	tc) want_mode='.mode == "tcx" or .mode == "tc"' ;;
	socket) want_mode='(.mode == "tcx" or .mode == "tc") and .steering == "socket"' ;;
	xdp-generic) want_mode='.mode == "xdp" and .xdp_mode == "generic"' ;;
	xdp-native) want_mode='.mode == "xdp" and .xdp_mode == "native"' ;;
	esac
	cli server status --json "${P[@]}"
	check "$label: status says $SERVER_IF runs in $label mode" "$(cli_result) $CLI_OUT" \
		json_matches ".interfaces | length == 1 and (.[0] | $want_mode)"
	# Loaded, no rule yet: no port is any business of bpfredir's.
	scan_all "$T_TMP/$label-norules" norules
	expect_unchanged "$label, no rules" "$T_TMP/$label-norules"
	for REJECT in hide reject; do
		local opt=()
		[[ $REJECT == hide ]] || opt=(--reject)
		if [[ $REJECT == reject ]]; then
			expect_cli_ok "$label: del $PUBLIC" server del "$PUBLIC" "${P[@]}"
			expect_cli_ok "$label: del $PUBLIC --proto udp" server \
				del "$PUBLIC" --proto udp "${P[@]}"
		fi
		expect_cli_ok "$label: add $PUBLIC $HIDDEN ${opt[*]}" server \
			add "$PUBLIC" "$HIDDEN" "${opt[@]}" "${P[@]}"
		expect_cli_ok "$label: add --proto udp $PUBLIC $HIDDEN ${opt[*]}" server \
			add --proto udp "$PUBLIC" "$HIDDEN" "${opt[@]}" "${P[@]}"
		scan_all "$T_TMP/$label-$REJECT" rules
		expect_scans "$label, $REJECT" "$T_TMP/$label-$REJECT"
		expect_hping "$label, $REJECT"
	done
	expect_cli_ok "$label: unload" server unload "${P[@]}"
}

test_tc() { run_mode tc; }
# The service on 8443 runs before load: each `add` registers its listener.
test_socket() { run_mode socket --steering socket; }
test_xdp_generic() { run_mode xdp-generic --mode xdp --xdp-generic; }
# Native XDP_TX on veth (--reject's answers) reaches the peer only while the peer polls its
# ring, that is while it has an XDP program of its own: the client's veth gets xdp-filter
# (which passes everything), as in reject_icmp.sh; a real NIC needs nothing of the kind.
test_xdp_native() {
	xdp_filter_load client "$CLIENT_IF" native
	run_mode xdp-native --mode xdp
	xdp_filter_unload client "$CLIENT_IF" >/dev/null 2>&1 ||
		fail "xdp-native: xdp-filter unload" "failed"
}

t_run_tests scanner "$@"
