#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# make bench: bpfredir against the iptables recipe it replaces, side by side in one run.
#
# Variants (each round sets every variant up in a fresh pair of network namespaces, client
# and server joined by a veth pair on 192.0.2.0/24, and tears it down again; rounds are
# interleaved, each starting one variant further on: A B C, B C A, C A B, ...; before its
# rules go in, each variant measures rows 2 and 5b once with no rule, for a paired ratio):
#   baseline     no rules; clients use the service's own port 8443
#   tc-pass      the same with a tcx program on the server's veth, ingress and egress, that
#                lets every packet go on: what attaching any TC program costs here, the floor
#                under bpfredir's TC variants
#   bpfredir     build/bpfredir load --iface srv0 --cgroup CG (tcx), add 8445 8443
#   bpfredir-xdp the same with load --mode xdp, when this build has it
#   bpfredir-socket  the same with load --steering socket: TCP at the kernel's socket
#                lookup, UDP and the hidden port by TC; its servers start in the attached
#                cgroup, which registers their listeners, as a deployment would do it
#   ipt-nft      the original recipe with iptables-nft
#   ipt-legacy   the original recipe with iptables-legacy
#   nft          the same recipe in native nftables
# The benchmarks' UDP traffic (2, 3) needs UDP rules, so every variant gets the recipe's
# two port rules (nat REDIRECT, mangle MARK) once more with -p udp, and bpfredir a UDP rule.
#
# Benchmarks:
#   1 program cost    build/bench/prog_cost: ns per packet of bpfredir's TC and XDP ingress
#                     programs above an empty program (BPF_PROG_TEST_RUN, no namespace pair
#                     needed)
#   2 ingress         build/bench/xdpgen on the client's veth -> UDP to 8445 (baseline 8443),
#                     counted by a socket on 8443: one flow, and a new source port per packet
#   3 hidden drop     the generator at 8443 (new source port per packet), drops/s from the
#                     variant's own counter (baseline: packets the socket got, the same
#                     traffic with no rule)
#   4 connections     build/bench/netbench: TCP connect/request/close loops through 8445,
#                     from the client (external) and from the server itself to 127.0.0.1
#                     (local: bpfredir's cgroup hook, the recipe's nat OUTPUT rule)
#   5 throughput      iperf3 through 8445 (5a), and again with TSO, GSO and GRO off on both
#                     veth ends (5b: MTU-sized segments, every one through the datapath)
#   6 memory          bpfredir (tcx) loaded once with --flows 1000000, on its own before the
#                     rounds: the kernel's bytes_memlock of every map in its pin dir, and what
#                     held TCP connections leave in them; then loaded again at the size that
#                     holds 1,000,000 such connections
#
# Knobs (environment): BENCH_ROUNDS (3), BENCH_SECONDS (2, per measurement), BENCH_REPEAT
# (1000000, BPF_PROG_TEST_RUN repeats), BENCH_SETTLE (1, seconds after each variant's
# teardown), BENCH_VARIANTS (space-separated subset), BENCH_OUT (.output/bench).
# Output: BENCH_OUT/results.md (the tables), results.png (the plot), raw.tsv (every
# measurement), memory.tsv (6), env.txt (machine and versions).
#
# Numbers are what the machine gave; nothing here asserts a speed. Exit status: 0 when every
# variant was set up (a measurement that fails, such as the recipe's own local connection,
# is a result and says so in the table); 1 when a variant could not be set up: at once, or
# for a kernel without legacy xtables after the tables are written, which say why; 2 on bad
# knobs.
set -uo pipefail
# Only tests/lib's generic helpers (wait_for, cgroup2_root, ns, in_ns, in_cgroup): the bench
# is no test, so no t_init. Its namespaces are named $T_PREFIX-c and -s.
BPFREDIR_TEST_PREFIX=bpfredir-bench
# shellcheck source=tests/lib/net.sh
. "$(dirname "$0")/../lib/net.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$REPO/build/bench
BPFREDIR=$REPO/build/bpfredir
BENCH_OBJ=$REPO/.output/bench/bench.bpf.o
ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER=${BENCH_SECONDS:-2}
REPEAT=${BENCH_REPEAT:-1000000}
SETTLE=${BENCH_SETTLE:-1}
OUT=${BENCH_OUT:-$REPO/.output/bench}
ALL_VARIANTS="baseline tc-pass bpfredir bpfredir-xdp bpfredir-socket ipt-nft ipt-legacy nft"
VARIANTS=${BENCH_VARIANTS:-$ALL_VARIANTS}

PREFIX=$T_PREFIX
CLIENT_NS=$(ns c)
SERVER_NS=$(ns s)
CLIENT_IF=cli0
SERVER_IF=srv0
CLIENT_ADDR=192.0.2.1
SERVER_ADDR=192.0.2.2
PUBLIC=8445
TARGET=8443
WARMUP_MS=300

PIDS=()
CGROUP=
PIN=
PASS_PIN=
TMP=

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}
usage() {
	printf 'bench: %s\n' "$*" >&2
	exit 2
}

positive_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
positive_int "$ROUNDS" || usage "BENCH_ROUNDS must be a positive integer, not '$ROUNDS'"
positive_int "$SECONDS_PER" || usage "BENCH_SECONDS must be a positive integer, not '$SECONDS_PER'"
positive_int "$REPEAT" || usage "BENCH_REPEAT must be a positive integer, not '$REPEAT'"
[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage "BENCH_SETTLE must be a number of seconds, not '$SETTLE'"
((ROUNDS >= 3)) || say "warning: BENCH_ROUNDS=$ROUNDS: medians of fewer than 3 rounds"
for v in $VARIANTS; do
	[[ " $ALL_VARIANTS " == *" $v "* ]] || usage "BENCH_VARIANTS: unknown variant '$v' (known: $ALL_VARIANTS)"
done
[[ " $VARIANTS " == *" baseline "* ]] || usage "BENCH_VARIANTS must include baseline: every result is a ratio to it"

[[ $EUID -eq 0 ]] || die "must be run as root (sudo make bench)"
missing=()
for tool in ip nsenter ethtool iptables-nft iptables-legacy nft iperf3 gnuplot jq taskset \
	/usr/bin/python3 bpftool; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run: sudo make deps)"
for bin in "$BPFREDIR" "$BENCH/prog_cost" "$BENCH/xdpgen" "$BENCH/netbench"; do
	[[ -x $bin ]] || die "not built: $bin (run: make bench-build)"
done
[[ -f $BENCH_OBJ ]] || die "not built: $BENCH_OBJ (run: make bench-build)"
CGROUP2=$(cgroup2_root)
[[ -n $CGROUP2 ]] || die "no cgroup2 mount in /proc/self/mounts"

# --- cleanup: every namespace, process, pin and cgroup this run made ---------------------

teardown_variant() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	PIDS=()
	if [[ -n $PIN && -e $PIN ]]; then
		timeout 30 "$BPFREDIR" unload --pin-dir "$PIN" >/dev/null 2>&1
		rm -rf "$PIN"
	fi
	PIN=
	[[ -z $PASS_PIN ]] || rm -rf "$PASS_PIN"
	PASS_PIN=
	# Deleting the namespaces takes every rule in them along; the host's own rulesets
	# were never touched.
	ip netns del "$CLIENT_NS" 2>/dev/null
	ip netns del "$SERVER_NS" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM HUP
	teardown_variant
	if [[ -n $CGROUP && -d $CGROUP ]]; then
		while read -r pid; do
			echo "$pid" >"$CGROUP2/cgroup.procs" 2>/dev/null
		done <"$CGROUP/cgroup.procs"
		rmdir "$CGROUP" 2>/dev/null || { sleep 0.5 && rmdir "$CGROUP"; } ||
			say "warning: could not remove cgroup $CGROUP"
	fi
	[[ -z $TMP ]] || rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted; cleaning up"; exit 130' INT TERM HUP

TMP=$(mktemp -d "/tmp/$PREFIX.XXXXXX")
CGROUP=$CGROUP2/$PREFIX
mkdir "$CGROUP" || die "mkdir $CGROUP failed"
mkdir -p "$OUT" || die "cannot create $OUT"
RAW=$OUT/raw.tsv
printf 'round\tvariant\tmetric\tvalue\n' >"$RAW"

# Command prefixes: the generator (and the softirq work it does) and the clients on CPU 0,
# the UDP sink on CPU 1, so they do not take turns on one CPU; unpinned on one CPU.
CPU0=()
CPU1=()
if (($(nproc) >= 2)); then
	CPU0=(taskset -c 0)
	CPU1=(taskset -c 1)
fi

in_c() { in_ns c "$@"; }
in_s() { in_ns s "$@"; }
# in_s_cg CMD...: in the server namespace, as a member of the bench cgroup.
in_s_cg() { in_cgroup s "$CGROUP" "$@"; }

# target_listening PORT: a TCP socket is bound to PORT in the server namespace.
target_listening() { [[ -n $(in_s ss -Hltn "sport = :$1") ]]; }

# record ROUND VARIANT METRIC VALUE: VALUE is a number, or "FAIL: why".
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }

# --- variants ----------------------------------------------------------------------------

XDP_NA=
if ! "$BPFREDIR" load --help 2>&1 | grep -q -- '--mode' ||
	! "$BPFREDIR" load --help 2>&1 | grep -qw xdp; then
	XDP_NA="n/a: this build has no XDP mode"
fi

# Can iptables-legacy make the recipe's tables here? Asked in a scratch namespace, so the
# host's own tables are never touched.
LEGACY_NA=
legacy_probe() {
	local ns=$PREFIX-probe err table
	ip netns add "$ns" || die "ip netns add $ns failed"
	for table in nat mangle filter; do
		if ! err=$(nsenter --net="/run/netns/$ns" -- iptables-legacy -t "$table" -nL 2>&1 >/dev/null); then
			LEGACY_NA="NOT MEASURED: the kernel has no legacy xtables table '$table' ($(head -n1 <<<"$err"))"
			break
		fi
	done
	ip netns del "$ns"
}

# ipt_recipe IPTABLES: the original write-up's four rules, exactly (with the server's
# documentation address for 195.33.1.38), and the two port rules once more for UDP.
ipt_recipe() {
	local ipt=$1
	in_s "$ipt" -t nat -A PREROUTING -p tcp -d "$SERVER_ADDR" --dport $PUBLIC -j REDIRECT --to-ports $TARGET &&
		in_s "$ipt" -t mangle -A PREROUTING -p tcp -m tcp --dport $TARGET -j MARK --set-mark 1 &&
		in_s "$ipt" -A INPUT -m mark --mark 1 -j DROP &&
		in_s "$ipt" -t nat -A OUTPUT -p tcp -o lo --dport $PUBLIC -j REDIRECT --to-ports $TARGET &&
		in_s "$ipt" -t nat -A PREROUTING -p udp -d "$SERVER_ADDR" --dport $PUBLIC -j REDIRECT --to-ports $TARGET &&
		in_s "$ipt" -t mangle -A PREROUTING -p udp -m udp --dport $TARGET -j MARK --set-mark 1
}

# The same recipe in native nftables. The drop rule counts, as every iptables rule does.
nft_recipe() {
	in_s nft -f - <<EOF
table ip bench_redirect {
	chain prerouting_nat {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr $SERVER_ADDR tcp dport $PUBLIC redirect to :$TARGET
		ip daddr $SERVER_ADDR udp dport $PUBLIC redirect to :$TARGET
	}
	chain prerouting_mangle {
		type filter hook prerouting priority mangle; policy accept;
		tcp dport $TARGET meta mark set 1
		udp dport $TARGET meta mark set 1
	}
	chain input {
		type filter hook input priority filter; policy accept;
		meta mark 1 counter drop
	}
	chain output_nat {
		type nat hook output priority -100; policy accept;
		oifname "lo" tcp dport $PUBLIC redirect to :$TARGET
	}
}
EOF
}

bpfredir_setup() {
	local extra=("$@")
	PIN=/sys/fs/bpf/$PREFIX
	in_s "$BPFREDIR" load --iface $SERVER_IF --cgroup "$CGROUP" --pin-dir "$PIN" "${extra[@]}" &&
		in_s "$BPFREDIR" add $PUBLIC $TARGET --pin-dir "$PIN" &&
		in_s "$BPFREDIR" add $PUBLIC $TARGET --proto udp --pin-dir "$PIN"
}

# The tc-pass variant's programs, loaded from the bench's own object and attached with bpftool
# (tcx); they go with the server's namespace, their pins at teardown.
tc_pass_setup() {
	PASS_PIN=/sys/fs/bpf/$PREFIX-pass
	bpftool prog loadall "$BENCH_OBJ" "$PASS_PIN" &&
		in_s bpftool net attach tcx_ingress pinned "$PASS_PIN/bench_pass_in" dev $SERVER_IF &&
		in_s bpftool net attach tcx_egress pinned "$PASS_PIN/bench_pass_eg" dev $SERVER_IF
}

# variant_na VARIANT: why VARIANT cannot run on this machine or build, or nothing.
variant_na() {
	case $1 in
	bpfredir-xdp) printf '%s' "$XDP_NA" ;;
	ipt-legacy) printf '%s' "$LEGACY_NA" ;;
	esac
}

# make_hosts VARIANT: the fresh pair of namespaces, joined by the veth pair.
make_hosts() {
	local v=$1
	ip netns add "$CLIENT_NS" && ip netns add "$SERVER_NS" &&
		ip -n "$CLIENT_NS" link set lo up && ip -n "$SERVER_NS" link set lo up &&
		ip -n "$CLIENT_NS" link add $CLIENT_IF type veth peer name $SERVER_IF netns "$SERVER_NS" &&
		ip -n "$CLIENT_NS" addr add $CLIENT_ADDR/24 dev $CLIENT_IF &&
		ip -n "$SERVER_NS" addr add $SERVER_ADDR/24 dev $SERVER_IF &&
		ip -n "$CLIENT_NS" link set $CLIENT_IF up && ip -n "$SERVER_NS" link set $SERVER_IF up ||
		die "$v: could not make the namespaces $CLIENT_NS and $SERVER_NS"
	# The generator's XDP_TX frames reach the peer only through its NAPI, which GRO turns
	# on (as an XDP program on srv0 would).
	in_s ethtool -K $SERVER_IF gro on >/dev/null || die "$v: ethtool -K $SERVER_IF gro on failed"
	# Plenty of ports and no TIME_WAIT limits in the client's way.
	in_c sysctl -qw net.ipv4.ip_local_port_range="1024 65000" || die "$v: sysctl failed"
	in_s sysctl -qw net.ipv4.ip_local_port_range="1024 65000" || die "$v: sysctl failed"
}

# setup_rules VARIANT: the variant's rules, in the namespaces make_hosts made.
setup_rules() {
	local v=$1 rc=0
	case $v in
	baseline) ;;
	tc-pass) tc_pass_setup || rc=$? ;;
	bpfredir) bpfredir_setup || rc=$? ;;
	bpfredir-xdp) bpfredir_setup --mode xdp || rc=$? ;;
	bpfredir-socket) bpfredir_setup --steering socket || rc=$? ;;
	ipt-nft) ipt_recipe iptables-nft || rc=$? ;;
	ipt-legacy) ipt_recipe iptables-legacy || rc=$? ;;
	nft) nft_recipe || rc=$? ;;
	esac
	((rc == 0)) || die "$v: the variant's rules could not be set up (see the message above)"
}

# start_server VARIANT NAME CMD...: run a TCP server on the target port in the server
# namespace until stop_server (one at a time: iperf3 and netbench both want 8443).
SERVER_PID=
start_server() {
	local v=$1 name=$2
	shift 2
	# Steered at socket lookup, the service registers its listener as it starts in the
	# attached cgroup.
	[[ $v != bpfredir-socket ]] || set -- "${JOIN_CGROUP[@]}" "$CGROUP" "$@"
	# nsenter itself, not a function in a subshell: it execs CMD (and bash CMD), so $! is
	# the server.
	nsenter --net="$(ns_path s)" -- "$@" </dev/null >"$TMP/$name.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	wait_for 5 target_listening $TARGET ||
		die "$v: $name did not listen on $TARGET: $(head -c 300 "$TMP/$name.log")"
}

stop_server() {
	local pid kept=()
	kill "$SERVER_PID" 2>/dev/null
	wait "$SERVER_PID" 2>/dev/null
	# Forget it, so the teardown never signals a recycled process id.
	for pid in "${PIDS[@]}"; do
		[[ $pid == "$SERVER_PID" ]] || kept+=("$pid")
	done
	PIDS=("${kept[@]}")
	wait_for 5 eval '! target_listening $TARGET' || die "a server still listens on $TARGET"
}

# ruleless VARIANT: the variant has no rules (no public port, nothing hidden).
ruleless() { [[ $1 == baseline || $1 == tc-pass ]]; }

# port_for VARIANT: the port clients use: the public one, or the service's own for the
# variants without rules.
port_for() { ruleless "$1" && echo $TARGET || echo $PUBLIC; }

mac_of() { ip -n "$1" -j link show "$2" | jq -r '.[0].address'; }

# --- benchmarks --------------------------------------------------------------------------

# gen PORT single|newport SECONDS: run the generator from the client's veth.
gen() {
	"${CPU0[@]}" nsenter --net="$(ns_path c)" -- "$BENCH/xdpgen" $CLIENT_IF \
		"$(mac_of "$CLIENT_NS" $CLIENT_IF)" "$(mac_of "$SERVER_NS" $SERVER_IF)" \
		$CLIENT_ADDR $SERVER_ADDR "$1" "$2" "$3"
}

gen_seconds() { awk -v w=$WARMUP_MS -v s="$SECONDS_PER" 'BEGIN { print w / 1000 + s + 0.3 }'; }

# bench_ingress ROUND VARIANT MODE [PORT METRIC]: datagrams/s that reach the socket on 8443,
# sent to the variant's port (or PORT), recorded as ingress_MODE (or METRIC).
bench_ingress() {
	local r=$1 v=$2 mode=$3 port=${4:-$(port_for "$2")} metric=${5:-ingress_$3}
	local sink gen_pid got drops secs
	sink=$TMP/sink.out
	in_s "${CPU1[@]}" "$BENCH/netbench" udpsink $TARGET $WARMUP_MS "$SECONDS_PER" \
		</dev/null >"$sink" 2>"$TMP/sink.err" &
	local sink_pid=$!
	wait_for 5 grep -qs ready "$sink" || die "$v: the UDP sink did not start: $(cat "$TMP/sink.err")"
	gen "$port" "$mode" "$(gen_seconds)" >/dev/null 2>"$TMP/gen.err" &
	gen_pid=$!
	wait "$sink_pid" || die "$v: the UDP sink failed: $(cat "$TMP/sink.err")"
	wait "$gen_pid" || die "$v: the generator failed: $(cat "$TMP/gen.err")"
	read -r got drops secs < <(tail -n1 "$sink")
	if ((got + drops == 0)); then
		say "$v: $metric: no datagram reached the socket on $TARGET"
		record "$r" "$v" "$metric" "FAIL: no datagram reached the socket on $TARGET"
		return 0
	fi
	record "$r" "$v" "$metric" "$(awk -v g="$got" -v d="$drops" -v s="$secs" 'BEGIN { printf "%.0f", (g + d) / s }')"
}

# hidden_drops VARIANT: the variant's own count of packets dropped at the hidden port.
hidden_drops() {
	case $1 in
	bpfredir | bpfredir-xdp | bpfredir-socket)
		in_s "$BPFREDIR" list --json --pin-dir "$PIN" | jq -e '.stats.hidden_dropped'
		;;
	ipt-nft | ipt-legacy)
		local ipt=iptables-nft
		[[ $1 == ipt-legacy ]] && ipt=iptables-legacy
		in_s "$ipt" -t filter -nvxL INPUT | awk '$3 == "DROP" && /mark match 0x1/ { print $1; found = 1 } END { exit !found }'
		;;
	nft)
		in_s nft -j list chain ip bench_redirect input |
			jq -e '[.nftables[] | .rule? // empty | .expr[] | .counter? // empty | .packets] | first'
		;;
	esac
}

now() { date +%s.%N; }

# bench_hidden ROUND VARIANT: drops/s of a new-source-port flood at the hidden port.
bench_hidden() {
	local r=$1 v=$2 gen_pid d0 d1 t0 t1
	if ruleless "$v"; then
		# No hidden port without rules: the same traffic is simply delivered (the
		# ingress_newport figure of this round is its baseline).
		return 0
	fi
	gen $TARGET newport "$(gen_seconds)" >/dev/null 2>"$TMP/gen.err" &
	gen_pid=$!
	sleep "$(awk -v w=$WARMUP_MS 'BEGIN { print w / 1000 }')"
	d0=$(hidden_drops "$v") || die "$v: cannot read the drop counter"
	t0=$(now)
	sleep "$SECONDS_PER"
	d1=$(hidden_drops "$v") || die "$v: cannot read the drop counter"
	t1=$(now)
	wait "$gen_pid" || die "$v: the generator failed: $(cat "$TMP/gen.err")"
	if ((d1 == d0)); then
		say "$v: hidden_drop: the variant counted no drop at $TARGET"
		record "$r" "$v" hidden_drop "FAIL: no drop counted at $TARGET"
		return 0
	fi
	record "$r" "$v" hidden_drop "$(awk -v a="$d0" -v b="$d1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')"
}

# bench_conn ROUND VARIANT METRIC RUNNER ADDR: connections/s; a failure is recorded as such.
bench_conn() {
	local r=$1 v=$2 metric=$3 run_in=$4 addr=$5 out n secs
	if out=$($run_in "${CPU0[@]}" "$BENCH/netbench" tcpclient "$addr" "$(port_for "$v")" "$SECONDS_PER" 2>&1); then
		read -r n secs <<<"$out"
		record "$r" "$v" "$metric" "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')"
	else
		say "$v: $metric: ${out#netbench: }"
		record "$r" "$v" "$metric" "FAIL: ${out#netbench: }"
	fi
}

# bench_iperf ROUND VARIANT METRIC [PORT]: iperf3 throughput in Gbit/s, to the variant's port
# (or PORT).
bench_iperf() {
	local r=$1 v=$2 metric=$3 port=${4:-$(port_for "$2")} out bps
	out=$(in_c iperf3 -c $SERVER_ADDR -p "$port" -t "$SECONDS_PER" -J 2>&1) ||
		die "$v: iperf3 failed: $(jq -r '.error // empty' <<<"$out" 2>/dev/null || head -c 300 <<<"$out")"
	bps=$(jq -e '.end.sum_received.bits_per_second' <<<"$out") || die "$v: no iperf3 result"
	record "$r" "$v" "$metric" "$(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }')"
}

# offloads_off VARIANT: no TSO, GSO or GRO on either veth end, so TCP sends segments of one
# MTU and each is received, and goes through the datapath, on its own, as over a wire
# without offloads. Checked, as a driver may keep a feature it calls fixed.
offloads_off() {
	local v=$1 side dev feature
	for side in c s; do
		dev=$CLIENT_IF
		[[ $side == s ]] && dev=$SERVER_IF
		in_ns $side ethtool -K $dev tso off gso off gro off >/dev/null ||
			die "$v: ethtool -K $dev tso off gso off gro off failed"
		for feature in tcp-segmentation-offload generic-segmentation-offload \
			generic-receive-offload; do
			in_ns $side ethtool -k $dev | grep -Eq "^$feature: off( |$)" ||
				die "$v: $dev: $feature is still on after ethtool -K"
		done
	done
}

# offloads_save / offloads_restore VARIANT: the veth ends' TSO, GSO and GRO as they are, and
# back to that (checked), for rows that need them off for a while.
declare -A OFFLOADS=()
offloads_save() {
	local side dev
	for side in c s; do
		dev=$CLIENT_IF
		[[ $side == s ]] && dev=$SERVER_IF
		OFFLOADS[$side]=$(in_ns $side ethtool -k $dev | awk -F': ' '
			$1 == "tcp-segmentation-offload" { tso = $2 }
			$1 == "generic-segmentation-offload" { gso = $2 }
			$1 == "generic-receive-offload" { gro = $2 }
			END { sub(/ .*/, "", tso); sub(/ .*/, "", gso); sub(/ .*/, "", gro)
				print "tso", tso, "gso", gso, "gro", gro }')
	done
}
offloads_restore() {
	local v=$1 side dev
	local -A want=()
	for side in c s; do
		want[$side]=${OFFLOADS[$side]}
		dev=$CLIENT_IF
		[[ $side == s ]] && dev=$SERVER_IF
		# shellcheck disable=SC2086 # "tso on gso on gro off": the words ethtool takes
		in_ns $side ethtool -K $dev ${want[$side]} >/dev/null ||
			die "$v: ethtool -K $dev ${want[$side]} failed"
	done
	offloads_save
	for side in c s; do
		[[ ${OFFLOADS[$side]} == "${want[$side]}" ]] ||
			die "$v: the $side veth end has ${OFFLOADS[$side]}, not ${want[$side]}, after ethtool -K"
	done
}

rx_counters() { in_s ip -j -s link show $SERVER_IF | jq -r '.[0].stats64.rx | "\(.packets) \(.bytes)"'; }

# bench_iperf_nooffload ROUND VARIANT [PORT METRIC]: 5b (to PORT, as METRIC), and the mean
# size of the frames the server's veth received meanwhile (Ethernet header included), which
# shows the segments were MTU-sized.
bench_iperf_nooffload() {
	local r=$1 v=$2 port=${3:-$(port_for "$2")} metric=${4:-throughput_nooffload}
	local p0 b0 p1 b1 mean mtu
	mtu=$(in_s ip -j link show $SERVER_IF | jq -r '.[0].mtu')
	read -r p0 b0 < <(rx_counters)
	bench_iperf "$r" "$v" "$metric" "$port"
	read -r p1 b1 < <(rx_counters)
	mean=$(awk -v p=$((p1 - p0)) -v b=$((b1 - b0)) 'BEGIN { printf "%.0f", p ? b / p : 0 }')
	if ((mean > mtu + 14)); then
		say "$v: $metric: frames of $mean bytes on average reached $SERVER_IF"
		record "$r" "$v" "$metric" "FAIL: frames of $mean bytes on average reached $SERVER_IF (MTU $mtu): an offload is still on"
		return 0
	fi
	record "$r" "$v" "${metric/throughput/frame}" "$mean"
}

# The recipe's MARK rule also catches its own redirected local connection when it comes
# back in through lo (its dport is 8443 by then). To still measure the nat OUTPUT rule,
# the last step takes the TCP MARK rule out and runs the local loop again.
drop_mark_rule() {
	case $1 in
	ipt-nft | ipt-legacy)
		local ipt=iptables-nft
		[[ $1 == ipt-legacy ]] && ipt=iptables-legacy
		in_s "$ipt" -t mangle -D PREROUTING -p tcp -m tcp --dport $TARGET -j MARK --set-mark 1
		;;
	nft)
		local handle
		handle=$(in_s nft -a list chain ip bench_redirect prerouting_mangle |
			awk '/tcp dport/ { print $NF }')
		in_s nft delete rule ip bench_redirect prerouting_mangle handle "$handle"
		;;
	*) return 0 ;;
	esac
}

# paired_rows ROUND VARIANT: rows 2 and 5b once more in the variant's fresh namespaces, before
# its rules or programs go in: the same traffic to 8443 with no rule, as the baseline's, but
# seconds before the variant's own (metrics *_pair). A ratio to it is free of what the machine
# does between variants (row 2's baseline falls in two groups here, minutes apart).
paired_rows() {
	local r=$1 v=$2
	bench_ingress "$r" "$v" single $TARGET ingress_single_pair
	bench_ingress "$r" "$v" newport $TARGET ingress_newport_pair
	offloads_save
	offloads_off "$v"
	# Named so in the messages, and started as the baseline's is: nothing is loaded yet.
	start_server "$v (its pair, no rule)" iperf3-server iperf3 -s -p $TARGET
	bench_iperf_nooffload "$r" "$v" $TARGET throughput_nooffload_pair
	stop_server
	offloads_restore "$v"
}

run_variant() {
	local r=$1 v=$2 na
	na=$(variant_na "$v")
	if [[ -n $na ]]; then
		record "$r" "$v" all "NA: $na"
		return 0
	fi
	say "round $r/$ROUNDS: $v"
	make_hosts "$v"
	[[ $v == baseline ]] || paired_rows "$r" "$v"
	setup_rules "$v"
	bench_ingress "$r" "$v" single
	bench_ingress "$r" "$v" newport
	bench_hidden "$r" "$v"
	start_server "$v" iperf3-server iperf3 -s -p $TARGET
	bench_iperf "$r" "$v" throughput
	stop_server
	start_server "$v" tcpserver "$BENCH/netbench" tcpserver $TARGET
	bench_conn "$r" "$v" conn_external in_c $SERVER_ADDR
	local run_in=in_s
	[[ $v == bpfredir* ]] && run_in=in_s_cg
	bench_conn "$r" "$v" conn_local $run_in 127.0.0.1
	stop_server
	# After the rows above (which keep the veth's default offloads) and before the MARK rule
	# goes (the recipe exactly).
	offloads_off "$v"
	start_server "$v" iperf3-server iperf3 -s -p $TARGET
	bench_iperf_nooffload "$r" "$v"
	stop_server
	if [[ $v == ipt-* || $v == nft ]]; then
		drop_mark_rule "$v" || die "$v: could not take the MARK rule out"
		start_server "$v" tcpserver "$BENCH/netbench" tcpserver $TARGET
		bench_conn "$r" "$v" conn_local_nomark $run_in 127.0.0.1
	fi
	teardown_variant
	# A deleted namespace is taken apart later, by a kernel worker (thousands of TIME_WAIT
	# sockets and conntrack entries here): let that finish before the next variant runs,
	# or the next one pays for it.
	sleep "$SETTLE"
}

# --- 6: memory of the connection tables ----------------------------------------------------

# The size the issue asks about, and how many connections show what each one costs.
MEMORY_FLOWS=1000000
MEMORY_CONNS=1000000
HELD=100
FLOWS_MAX=16777216

# maps_table LOAD: a line for every map pinned in the instance's pin dir (never another
# instance's): the kernel's own accounting of it.
maps_table() {
	local load=$1 pin
	for pin in "$PIN"/maps/*; do
		bpftool -j map show pinned "$pin" |
			jq -er --arg load "$load" --arg name "${pin##*/}" \
				'["map", $load, $name, .type, .max_entries, .bytes_memlock, .flags] | @tsv' ||
			return 1
	done
}

# hash_maps: the instance's maps that hold entries one by one (every kind of hash).
hash_maps() {
	local pin
	for pin in "$PIN"/maps/*; do
		bpftool -j map show pinned "$pin" | jq -e '.type | test("hash")' >/dev/null &&
			printf '%s\n' "${pin##*/}"
	done
}

map_entries() { bpftool -j map dump pinned "$PIN/maps/$1" | jq length; }

# held_entries OUT: HELD TCP connections through the public port, each having carried data
# both ways (so promoted as an established one), kept open while every hash map of the
# instance is counted, before and after. Lines "held HELD map before after".
held_entries() {
	local out=$1 name client_pid
	local -A before=()
	for name in $(hash_maps); do
		before[$name]=$(map_entries "$name") || return 1
	done
	start_server bpfredir holdserver "$BENCH/netbench" holdserver $TARGET
	nsenter --net="$(ns_path c)" -- "$BENCH/netbench" holdclient $SERVER_ADDR $PUBLIC $HELD \
		</dev/null >"$TMP/hold.out" 2>"$TMP/hold.err" &
	client_pid=$!
	PIDS+=("$client_pid")
	if ! wait_for 20 grep -qs ready "$TMP/hold.out"; then
		printf 'fail\theld connections: %s\n' "$(head -c 300 "$TMP/hold.err")" >>"$out"
		return 0
	fi
	for name in "${!before[@]}"; do
		printf 'held\t%s\t%s\t%s\t%s\n' $HELD "$name" "${before[$name]}" \
			"$(map_entries "$name")" >>"$out" || return 1
	done
}

# conns_load OUT: the --flows that holds MEMORY_CONNS held connections, from what they took
# in the first load (the map they fill first decides); twice MEMORY_FLOWS when that is
# MEMORY_FLOWS itself, or when they took nothing, so the second load still shows which maps
# grow with --flows.
conns_load() {
	awk -F'\t' -v flows=$MEMORY_FLOWS -v conns=$MEMORY_CONNS -v most=$FLOWS_MAX '
		$1 == "map" && $2 == flows { max[$3] = $5 }
		$1 == "held" && $5 > $4 { per[$3] = ($5 - $4) / $2 }
		END {
			cap = -1
			for (m in per)
				if (cap < 0 || max[m] / per[m] < cap)
					cap = max[m] / per[m]
			n = cap > 0 ? flows * conns / cap : 0
			n = n == int(n) ? n : int(n) + 1
			if (n <= 0 || n == flows)
				n = 2 * flows
			print (n > most ? most : n)
		}' "$1"
}

# bench_memory: section 6, once, on an instance of its own (the tcx variant's setup).
bench_memory() {
	local out=$OUT/memory.tsv err second
	: >"$out"
	say "6: memory of the connection tables (bpfredir, tcx, load --flows $MEMORY_FLOWS)"
	make_hosts bpfredir
	# Not in $(...): bpfredir_setup sets PIN, which the teardown needs.
	if ! bpfredir_setup --flows $MEMORY_FLOWS >/dev/null 2>"$TMP/load.err"; then
		err=$(grep -v '^$' "$TMP/load.err" | head -n1)
		printf 'fail\tload --flows %s: %s\n' $MEMORY_FLOWS "$err" >>"$out"
		say "6: load --flows $MEMORY_FLOWS refused: $err"
		teardown_variant
		return 0
	fi
	maps_table $MEMORY_FLOWS >>"$out" || die "6: bpftool could not show the instance's maps"
	held_entries "$out" || die "6: bpftool could not count the instance's entries"
	teardown_variant
	sleep "$SETTLE"

	second=$(conns_load "$out")
	make_hosts bpfredir
	if ! bpfredir_setup --flows "$second" >/dev/null 2>"$TMP/load.err"; then
		err=$(grep -v '^$' "$TMP/load.err" | head -n1)
		printf 'fail\tload --flows %s: %s\n' "$second" "$err" >>"$out"
		say "6: load --flows $second refused: $err"
	else
		maps_table "$second" >>"$out" || die "6: bpftool could not show the instance's maps"
	fi
	teardown_variant
	sleep "$SETTLE"
}

# What the kernel does to guard calls and returns against speculation on this CPU, which sets
# the price of every call the verifier cannot inline (benchmark 1's last line).
return_mitigations() {
	local dir=/sys/devices/system/cpu/vulnerabilities name state out=()

	# Each state's first clause: what guards the calls (spectre_v2 goes on with STIBP and more).
	for name in spectre_v2 retbleed spec_rstack_overflow; do
		state=$(cat "$dir/$name" 2>/dev/null) || continue
		[[ $state == "Not affected" ]] || out+=("$name: ${state%%;*}")
	done
	((${#out[@]})) || out=(none)
	local sep=
	for state in "${out[@]}"; do
		printf '%s%s' "$sep" "$state"
		sep='; '
	done
}

# --- the run -----------------------------------------------------------------------------

START=$(date +%s)
legacy_probe
[[ -z $LEGACY_NA ]] || say "WARNING: ipt-legacy: $LEGACY_NA"
[[ -z $XDP_NA ]] || say "bpfredir-xdp: $XDP_NA"

{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'machine\t%s, %s CPUs, %s\n' "$(uname -m)" "$(nproc)" \
		"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	printf 'kernel\t%s\n' "$(uname -r)"
	printf 'mitigations\t%s\n' "$(return_mitigations)"
	printf 'bpfredir\t%s\n' "$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
	printf 'libbpf\t%s\n' "$(pkg-config --modversion libbpf 2>/dev/null || echo unknown)"
	printf 'tools\t%s; %s; %s; %s\n' "$(iptables-nft --version)" "$(iptables-legacy --version)" \
		"$(nft --version)" "$(iperf3 --version | head -n1)"
	printf 'load_before\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'knobs\tBENCH_ROUNDS=%s BENCH_SECONDS=%s BENCH_REPEAT=%s BENCH_SETTLE=%s\n' "$ROUNDS" \
		"$SECONDS_PER" "$REPEAT" "$SETTLE"
} >"$OUT/env.txt"

say "1: program cost (BPF_PROG_TEST_RUN, $REPEAT repeats, $ROUNDS rounds)"
"${CPU0[@]}" "$BENCH/prog_cost" --repeat "$REPEAT" --rounds "$ROUNDS" >"$OUT/prog_cost.tsv" ||
	die "the program cost benchmark failed"
if [[ " $VARIANTS " == *" bpfredir "* ]]; then
	bench_memory
else
	rm -f "$OUT/memory.tsv"
fi

# Each round starts one variant further on (A B C, B C A, C A B, ...), so no variant always
# runs right after the same one.
read -ra ORDER <<<"$VARIANTS"
for ((round = 1; round <= ROUNDS; round++)); do
	for ((i = 0; i < ${#ORDER[@]}; i++)); do
		run_variant "$round" "${ORDER[(i + round - 1) % ${#ORDER[@]}]}"
	done
done

printf 'load_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"
printf 'duration\t%ss\n' "$(($(date +%s) - START))" >>"$OUT/env.txt"
/usr/bin/python3 "$REPO/tests/bench/report.py" "$OUT" "$VARIANTS" || die "the report could not be made"
( cd "$OUT" && gnuplot plot.gp ) || die "gnuplot could not draw $OUT/results.png"
cat "$OUT/results.md"
say "results in $OUT (results.md, results.png, raw.tsv, env.txt), $(($(date +%s) - START)) s"
if [[ -n $LEGACY_NA && " $VARIANTS " == *" ipt-legacy "* ]]; then
	say "ERROR: variant ipt-legacy could not be set up: $LEGACY_NA"
	exit 1
fi
exit 0
