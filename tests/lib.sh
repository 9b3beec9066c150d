# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Shared helpers for the integration tests and the demo. Source it, then call t_init.
# (tests/bench/run.sh sources it too, for the helpers that need no t_init: wait_for,
# cgroup2_root.)
#
# Test hosts are network namespaces joined by veth pairs, on documentation addresses only.
# Commands run in them through nsenter --net (never `ip netns exec`, which remounts /sys and
# so hides bpffs and cgroup2). Everything a test makes (namespaces, cgroups, pin dirs,
# background servers, temp files) is registered here and removed by the EXIT trap, even
# when the test fails or is killed.
#
# Reporting: every check prints exactly `PASS: <name>` or `FAIL: <name>: <detail>`; a check
# this kernel cannot run prints `SKIP: <name>: needs <feature>` (see t_has).
#
# Other suites and bpfredir instances may run on the same host at the same time: a test only
# ever counts and checks what is its own (see "this test's programs" below), and never
# attaches anything outside its own namespaces and cgroups.

T_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BPFREDIR=${BPFREDIR:-$T_REPO/build/bpfredir}
# The integration tests' helper programs (python, run in the namespaces).
T_HELPERS=$T_REPO/tests/integration/helpers
# Someone else's TC programs (tests/tools/foreign.c, built by make tests-build).
T_FOREIGN=$T_REPO/build/tests/tools/foreign
# Unique per process; tests/run.sh exports BPFREDIR_TEST_PREFIX to tag a whole run.
T_PREFIX="${BPFREDIR_TEST_PREFIX:-bpfredir-test}-$$"
T_CLI_TIMEOUT=30

# Topology of t_topology: one client, one server with two addresses. Used by the scripts
# that source this file.
CLIENT_IF=cli0
SERVER_IF=srv0
CLIENT_ADDR=192.0.2.1
SERVER_ADDR=192.0.2.2
SERVER_ADDR2=192.0.2.3
# shellcheck disable=SC2034
PUBLIC_PORT=8445
TARGET_PORT=8443

T_PASSED=0
T_FAILED=0
T_SKIPPED=0
T_NETNS=()
T_CGROUPS=()
T_PIN_DIRS=()
T_BPFFS_DIRS=()
T_PIDS=()
T_TMP=

# --- reporting -------------------------------------------------------------------------

pass() {
	printf 'PASS: %s\n' "$1"
	T_PASSED=$((T_PASSED + 1))
}

# fail NAME DETAIL...: the detail is squeezed onto the one line.
fail() {
	local name=$1
	shift
	printf 'FAIL: %s: %s\n' "$name" "$(printf '%s' "$*" | tr '\n' ' ' | sed 's/ *$//')"
	T_FAILED=$((T_FAILED + 1))
}

# check NAME DETAIL CMD...: PASS when CMD succeeds, else FAIL with DETAIL.
check() {
	local name=$1 detail=$2
	shift 2
	if "$@"; then
		pass "$name"
	else
		fail "$name" "$detail"
	fi
}

# skip NAME FEATURE: the check NAME is not run, as this kernel lacks FEATURE. Only for a
# kernel feature the check needs beyond what bpfredir itself requires (that fails instead).
skip() {
	printf 'SKIP: %s: needs %s\n' "$1" "$2"
	T_SKIPPED=$((T_SKIPPED + 1))
}

# A test that cannot run fails loudly; it never skips.
t_abort() {
	fail "$T_NAME" "$*"
	exit 1
}

# t_skip_all FEATURE: none of this script can run on this kernel; said once, counted once.
t_skip_all() {
	skip "$T_NAME" "$1"
	exit 0
}

# Exit status of a test script: non-zero when any check failed, or none ran nor was skipped.
t_finish() {
	printf '%s: %d passed, %d failed, %d skipped\n' "$T_NAME" "$T_PASSED" "$T_FAILED" \
		"$T_SKIPPED" >&2
	((T_FAILED == 0 && T_PASSED + T_SKIPPED > 0))
}

# --- setup and cleanup -------------------------------------------------------------------

cgroup2_root() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts
}

# t_require TOOL...: every tool must be there, else the test fails.
t_require() {
	local tool missing=()
	for tool in "$@"; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	((${#missing[@]} == 0)) || t_abort "missing tools: ${missing[*]} (run: sudo make deps)"
}

# --- kernel features ---------------------------------------------------------------------
# Each feature a test needs beyond what bpfredir requires is probed once per run: the answer
# goes in a file under BPFREDIR_TEST_RUN_DIR (tests/run.sh sets it; a script run alone probes
# into its own temp dir). A check whose feature is missing is skipped (`skip`), loudly.

# feature_text FEATURE: what the SKIP line says is needed.
feature_text() {
	case $1 in
	tcx) echo "tcx (kernel 6.6)" ;;
	clsact) echo "the clsact qdisc (CONFIG_NET_SCH_INGRESS)" ;;
	cls_bpf) echo "cls_bpf filters (CONFIG_NET_CLS_BPF)" ;;
	cls_u32) echo "u32 filters (CONFIG_NET_CLS_U32)" ;;
	cgroupns) echo "cgroup namespaces (CONFIG_CGROUPS, unshare --cgroup)" ;;
	cgroup_v1) echo "a cgroup v1 hierarchy mounted" ;;
	netfilter) echo "netfilter BPF links (CONFIG_NETFILTER_BPF_LINK, Linux 6.4)" ;;
	*) echo "$1" ;;
	esac
}

# probe_refused: the error of the last probe (in $T_TMP/probe.err) is the kernel not knowing
# the thing asked for, not some other failure.
probe_refused() { grep -Eqi 'unknown|not found|not supported|invalid argument' "$T_TMP/probe.err"; }

# probe_FEATURE: 0 when the kernel has it, 1 when it has not, 2 when the probe itself failed
# (its error in $T_TMP/probe.err). The tc ones run in a network namespace that vanishes after.
probe_tcx() {
	"$T_FOREIGN" probe tcx 2>"$T_TMP/probe.err"
}
probe_clsact() {
	unshare --net tc qdisc add dev lo clsact 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_cls_bpf() {
	unshare --net sh -c 'tc qdisc add dev lo clsact &&
		tc filter add dev lo ingress bpf bytecode "1,6 0 0 0,"' 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_cls_u32() {
	unshare --net sh -c 'tc qdisc add dev lo clsact &&
		tc filter add dev lo ingress protocol ip u32 match u32 0 0' 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_cgroupns() {
	unshare --cgroup true 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_netfilter() {
	bpftool -j feature probe kernel 2>"$T_TMP/probe.err" >"$T_TMP/probe.json" || return 2
	jq -e '.program_types.have_netfilter_prog_type' "$T_TMP/probe.json" >/dev/null
}
probe_cgroup_v1() {
	[[ -n $(awk '$3 == "cgroup" { print $2; exit }' /proc/self/mounts) ]]
}

# t_has FEATURE: 0 when this kernel has FEATURE (see feature_text). A probe that fails for
# another reason than the feature missing aborts the test.
t_has() {
	local dir=${BPFREDIR_TEST_RUN_DIR:-$T_TMP}/features rc
	if [[ ! -e $dir/$1 ]]; then
		mkdir -p "$dir" || t_abort "mkdir $dir failed"
		"probe_$1"
		rc=$?
		((rc <= 1)) || t_abort "probing $(feature_text "$1") failed: $(head -c 300 "$T_TMP/probe.err")"
		echo "$rc" >"$dir/$1"
	fi
	[[ $(cat "$dir/$1") == 0 ]]
}

# t_need FEATURE NAME: true when the kernel has FEATURE; else the check NAME is skipped.
t_need() {
	t_has "$1" && return 0
	skip "$2" "$(feature_text "$1")"
	return 1
}

# tc_kind: where bpfredir attaches TC programs by default on this kernel, as bpftool's `net
# show` names the hook: tcx, or clsact (a clsact qdisc's filters) where the kernel has no tcx.
tc_kind() { if t_has tcx; then echo tcx; else echo clsact; fi; }

# t_init NAME: root, tools, loader binary, what bpfredir needs of the kernel (each missing
# piece fails the test), temp dir and cleanup trap.
t_init() {
	T_NAME=$1
	[[ $EUID -eq 0 ]] || t_abort "must be run as root (sudo make test, sudo make demo)"
	t_require ip nsenter unshare curl openssl lwp-request jq bpftool ss timeout awk pgrep
	[[ -x $BPFREDIR ]] || t_abort "loader not built: $BPFREDIR (run: make)"
	[[ -x $T_FOREIGN ]] || t_abort "test tools not built: $T_FOREIGN (run: make tests-build)"
	CGROUP2=$(cgroup2_root)
	[[ -n $CGROUP2 ]] || t_abort "no cgroup2 mount in /proc/self/mounts"
	[[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || t_abort "no bpffs at /sys/fs/bpf"
	[[ -r /sys/kernel/btf/vmlinux ]] || t_abort "no kernel BTF (/sys/kernel/btf/vmlinux)"
	T_TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
	# Others may pass through (not list): apply repeats the words of a config file only when
	# every user could read it, directories on the way included.
	chmod 0711 "$T_TMP"
	trap t_cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

t_cleanup() {
	local rc=$? pid dir ns cg
	trap - EXIT INT TERM HUP
	for pid in "${T_PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[[ -z $T_TMP ]] || t_progs_record >/dev/null 2>&1
	for dir in "${T_PIN_DIRS[@]}"; do
		# A test may plant a symlink there; one left dangling is gone from -e's view.
		if [[ -L $dir ]]; then
			rm -f "$dir"
			continue
		fi
		[[ -e $dir ]] || continue
		timeout "$T_CLI_TIMEOUT" "$BPFREDIR" unload --pin-dir "$dir" >/dev/null 2>&1
		rm -rf "$dir"
	done
	# Foreign programs' pins: removing a link's pin detaches it.
	for dir in "${T_BPFFS_DIRS[@]}"; do
		rm -rf "$dir"
	done
	for ns in "${T_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	for cg in "${T_CGROUPS[@]}"; do
		[[ -d $cg ]] || continue
		# Anything still in it goes back to the root cgroup, so the directory can go.
		while read -r pid; do
			echo "$pid" >"$CGROUP2/cgroup.procs" 2>/dev/null
		done <"$cg/cgroup.procs"
		rmdir "$cg" 2>/dev/null || sleep 0.5
		[[ ! -d $cg ]] || rmdir "$cg" || echo "warning: could not remove cgroup $cg" >&2
	done
	# The run checks at its end that every program of this test is gone (tests/run.sh).
	if [[ -n ${BPFREDIR_TEST_RUN_DIR:-} && -n $T_TMP && -s $T_TMP/progs ]]; then
		cat "$T_TMP/progs" >>"$BPFREDIR_TEST_RUN_DIR/progs"
	fi
	[[ -z $T_TMP ]] || rm -rf "$T_TMP"
	exit "$rc"
}

# ns NAME: the full name of this test's namespace NAME; ns_path NAME: its nsfs file.
ns() { printf '%s-%s' "$T_PREFIX" "$1"; }
ns_path() { printf '/run/netns/%s' "$(ns "$1")"; }

# netns_add NAME: a namespace with loopback up, deleted at cleanup.
netns_add() {
	local full
	full=$(ns "$1")
	ip netns add "$full" || t_abort "ip netns add $full failed"
	T_NETNS+=("$full")
	ip -n "$full" link set lo up
}

# in_ns NAME CMD...: run CMD in namespace NAME (same mounts, so bpffs and cgroup2 stay).
in_ns() {
	local path
	path=$(ns_path "$1")
	shift
	nsenter --net="$path" -- "$@"
}

# veth NS1 IF1 ADDR1/LEN NS2 IF2 ADDR2/LEN: join two namespaces.
veth() {
	if ! { ip -n "$(ns "$1")" link add "$2" type veth peer name "$5" netns "$(ns "$4")" &&
		ip -n "$(ns "$1")" addr add "$3" dev "$2" &&
		ip -n "$(ns "$4")" addr add "$6" dev "$5" &&
		ip -n "$(ns "$1")" link set "$2" up &&
		ip -n "$(ns "$4")" link set "$5" up; }; then
		t_abort "could not join $1 and $4 with a veth pair"
	fi
}

# addr6 NS IF ADDR/LEN: an IPv6 address usable at once (no duplicate address detection).
addr6() { ip -n "$(ns "$1")" addr add "$3" dev "$2" nodad || t_abort "ip addr add $3 on $1/$2 failed"; }

# cgroup_add VAR NAME: make a fresh cgroup2 directory, removed at cleanup; its path goes
# in VAR. (Not through $(...): the registration must happen in this shell.)
cgroup_add() {
	local path="$CGROUP2/$T_PREFIX-$2"
	mkdir "$path" || t_abort "mkdir $path failed"
	T_CGROUPS+=("$path")
	printf -v "$1" '%s' "$path"
}

# pin_dir VAR NAME: a unique pin dir path, in VAR; whatever is there is unloaded and
# removed at cleanup.
pin_dir() {
	local path="/sys/fs/bpf/$T_PREFIX-$2"
	T_PIN_DIRS+=("$path")
	printf -v "$1" '%s' "$path"
}

# bpffs_dir VAR NAME: a unique bpffs path for pins that are not bpfredir's (foreign_attach),
# in VAR; removed at cleanup.
bpffs_dir() {
	local path="/sys/fs/bpf/$T_PREFIX-$2"
	T_BPFFS_DIRS+=("$path")
	printf -v "$1" '%s' "$path"
}

# t_topology: namespaces `client` and `server` joined by cli0/srv0 on 192.0.2.0/24; the
# server has a second address. Also a certificate for the server's addresses.
t_topology() {
	netns_add client
	netns_add server
	veth client "$CLIENT_IF" "$CLIENT_ADDR/24" server "$SERVER_IF" "$SERVER_ADDR/24"
	ip -n "$(ns server)" addr add "$SERVER_ADDR2/24" dev "$SERVER_IF"
	make_cert
}

# make_cert: a self-signed certificate, valid for every address the tests use, so clients
# that verify (lwp-request) can trust it by file.
make_cert() {
	CERT="$T_TMP/cert.pem"
	KEY="$T_TMP/key.pem"
	[[ -e $CERT ]] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=bpfredir-test -keyout "$KEY" -out "$CERT" \
		-addext "subjectAltName=IP:127.0.0.1,IP:192.0.2.2,IP:192.0.2.3,IP:198.51.100.2" \
		>/dev/null 2>&1 || t_abort "openssl could not make a certificate"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
	local tries=$(($1 * 10))
	shift
	while ! "$@"; do
		((--tries > 0)) || return 1
		sleep 0.1
	done
}

# listening NS PORT [tcp|udp]: a socket is bound to PORT in NS.
listening() {
	local flags=-Hltn
	[[ ${3:-tcp} == tcp ]] || flags=-Hlun
	[[ -n $(in_ns "$1" ss "$flags" "sport = :$2") ]]
}

# server NS PORT PROTO CMD...: start the server CMD in NS in the background, wait until it
# listens on PORT/PROTO; it is killed at cleanup.
server() {
	local ns_name=$1 port=$2 proto=$3
	shift 3
	# nsenter execs CMD, so $! is the server itself.
	nsenter --net="$(ns_path "$ns_name")" -- "$@" </dev/null >>"$T_TMP/server-$ns_name-$port.log" 2>&1 &
	T_PIDS+=("$!")
	wait_for 5 listening "$ns_name" "$port" "$proto" || t_abort "$1 did not listen on $ns_name:$port/$proto"
}

# https_server NS [PORT]: openssl s_server -www on PORT (default 8443) in NS.
https_server() {
	server "$1" "${2:-$TARGET_PORT}" tcp \
		openssl s_server -accept "${2:-$TARGET_PORT}" -www -quiet -cert "$CERT" -key "$KEY"
}

# in_cgroup NS CGROUP CMD...: run CMD in namespace NS as a member of CGROUP.
in_cgroup() {
	local ns_name=$1 cg=$2
	shift 2
	# shellcheck disable=SC2016 # expanded by the inner shell
	in_ns "$ns_name" bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in-cgroup "$cg" "$@"
}

# xdp-filter and libxdp pin their state under bpffs by interface name, which tests of two
# runs (with the same interface names in their own namespaces) would share: they get a bpffs
# of this test's own, in a mount namespace held by a process of its own until cleanup.
xdp_filter_mnt() {
	local tries=50
	[[ -z ${T_XDPF_PID:-} ]] || return 0
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --propagation private -- bash -c 'exec -a "$1" sleep infinity' \
		xdpf "$T_PREFIX-xdp-filter-mnt" &
	T_XDPF_PID=$!
	T_PIDS+=("$T_XDPF_PID")
	while [[ $(readlink "/proc/$T_XDPF_PID/ns/mnt") == "$(readlink /proc/self/ns/mnt)" ]]; do
		((--tries > 0)) || t_abort "unshare --mount did not make a mount namespace"
		sleep 0.1
	done
	nsenter --mount="/proc/$T_XDPF_PID/ns/mnt" mount -t bpf bpf /sys/fs/bpf 2>"$T_TMP/xdpf.log" ||
		t_abort "mount bpffs for xdp-filter failed: $(tail -c 300 "$T_TMP/xdpf.log")"
}

# xdp_filter NS ARGS...: xdp-filter ARGS in namespace NS, with the bpffs of xdp_filter_mnt.
xdp_filter() {
	local ns_name=$1
	shift
	xdp_filter_mnt
	nsenter --mount="/proc/$T_XDPF_PID/ns/mnt" --net="$(ns_path "$ns_name")" -- xdp-filter "$@"
}

# xdp_filter_load NS IFACE MODE: xdp-filter (xdp-tools; it passes everything) on IFACE in NS,
# in MODE (skb or native), or the test aborts.
xdp_filter_load() {
	xdp_filter "$1" load -m "$3" "$2" >"$T_TMP/xdpf.log" 2>&1 ||
		t_abort "xdp-filter load on $2 failed: $(tail -c 300 "$T_TMP/xdpf.log")"
}

# xdp_filter_unload NS IFACE: take it off again.
xdp_filter_unload() { xdp_filter "$1" unload "$2"; }

# --- foreign programs ------------------------------------------------------------------------

# foreign_attach NAME NS ARGS...: one foreign TC program (tests/tools/foreign.c attach ARGS)
# in namespace NS, its pins under a bpffs dir of this test's; the test aborts when it cannot.
foreign_attach() {
	local var=FOREIGN_DIR_$1 ns_name=$2
	shift 2
	bpffs_dir "$var" "foreign-${var#FOREIGN_DIR_}"
	in_ns "$ns_name" "$T_FOREIGN" attach "${!var}" "$@" 2>"$T_TMP/foreign.err" ||
		t_abort "foreign program ${var#FOREIGN_DIR_} ($*) could not be attached: $(head -c 300 "$T_TMP/foreign.err")"
}

# foreign_detach NAME NS ARGS...: detach it again (ARGS: --dev, --hook and --prio as given).
foreign_detach() {
	local var=FOREIGN_DIR_$1 ns_name=$2
	shift 2
	in_ns "$ns_name" "$T_FOREIGN" detach "${!var}" "$@"
}

# foreign_count NAME FILTER: one number from its counters ({"packets": N, "dport": {"PORT":
# N}, "sport": {...}}), e.g. '.dport["8445"]'; says "error: ..." when they cannot be read.
foreign_count() {
	local var=FOREIGN_DIR_$1 out
	if ! out=$("$T_FOREIGN" counts "${!var}" 2>&1); then
		printf 'error: %s\n' "$out"
		return 1
	fi
	jq -r "$2" <<<"$out"
}

# --- clients -----------------------------------------------------------------------------

# url ADDR PORT: https://ADDR:PORT/, an IPv6 ADDR in brackets; endpoint ADDR PORT: ADDR:PORT so.
url() { if [[ $1 == *:* ]]; then printf 'https://[%s]:%s/' "$1" "$2"; else printf 'https://%s:%s/' "$1" "$2"; fi; }
endpoint() { if [[ $1 == *:* ]]; then printf '[%s]:%s' "$1" "$2"; else printf '%s:%s' "$1" "$2"; fi; }

# probe URL [RUNNER...]: one HTTPS GET with curl, run through RUNNER (e.g. in_ns client).
# Sets PROBE_RC (curl's exit status: 0 ok, 7 refused, 28 timed out) and PROBE_HTTP.
probe() {
	local url=$1
	shift
	PROBE_HTTP=$("$@" curl -ksS --noproxy '*' --connect-timeout 2 --max-time 8 -o "$T_TMP/body" \
		-w '%{http_code}' "$url" 2>"$T_TMP/curl.err")
	PROBE_RC=$?
}

# The page openssl s_server -www serves.
served_page() { grep -q 's_server' "$T_TMP/body"; }

# probe_matches WANT: did the last probe give WANT (ok, refused or dropped)?
probe_matches() {
	case $1 in
	ok) [[ $PROBE_RC -eq 0 && $PROBE_HTTP == 200 ]] && served_page ;;
	refused) [[ $PROBE_RC -eq 7 ]] ;;
	dropped) [[ $PROBE_RC -eq 28 ]] ;;
	*) return 1 ;;
	esac
}

probe_result() {
	printf 'curl exit %s, HTTP %s, %s' "$PROBE_RC" "${PROBE_HTTP:-none}" \
		"$(head -c 200 "$T_TMP/curl.err" | tr '\n' ' ')"
}

# expect NAME WANT URL [RUNNER...]: check that curl to URL gives WANT: ok (HTTP 200 and the
# s_server page), refused (exit 7) or dropped (time out, exit 28).
expect() {
	local name=$1 want=$2 url=$3
	shift 3
	probe "$url" "$@"
	if probe_matches "$want"; then
		pass "$name"
	else
		fail "$name" "expected $want, got $(probe_result)"
	fi
}

# lwp_get URL [RUNNER...]: GET with lwp-request, trusting the test certificate. Prints the
# status line; returns lwp-request's status.
lwp_get() {
	local url=$1
	shift
	"$@" env PERL_LWP_SSL_CA_FILE="$CERT" HTTPS_CA_FILE="$CERT" \
		timeout 15 lwp-request -P -t 5 -m GET -s -d "$url" 2>&1
}

# expect_lwp NAME URL [RUNNER...]: lwp-request gets 200 from URL.
expect_lwp() {
	local name=$1 url=$2 out
	shift 2
	out=$(lwp_get "$url" "$@")
	if [[ $? -eq 0 && $out == 200* ]]; then
		pass "$name"
	else
		fail "$name" "expected 200, got: $out"
	fi
}

# --- the loader --------------------------------------------------------------------------

# cli NS ARGS...: run the loader in namespace NS (or in the current one when NS is -).
# Sets CLI_RC, CLI_OUT and CLI_ERR. The programs of this test's pin dir it works on are
# recorded before a verb that may replace or remove them and after one that may make them.
cli() {
	local ns_name=$1
	shift
	local runner=() pin
	[[ $ns_name == - ]] || runner=(in_ns "$ns_name")
	pin=$(own_pin_dir_of "$@")
	[[ -z $pin || ! $1 =~ ^(load|apply|unload|detach)$ ]] || t_progs_record "$pin"
	CLI_OUT=$("${runner[@]}" timeout "$T_CLI_TIMEOUT" "$BPFREDIR" "$@" 2>"$T_TMP/cli.err")
	CLI_RC=$?
	CLI_ERR=$(cat "$T_TMP/cli.err")
	[[ -z $pin || ! $1 =~ ^(load|apply|attach)$ ]] || t_progs_record "$pin"
}

# own_pin_dir_of ARGS...: the --pin-dir among ARGS when it is one of this test's.
own_pin_dir_of() {
	local dir
	while (($# > 1)); do
		if [[ $1 == --pin-dir ]]; then
			for dir in "${T_PIN_DIRS[@]}"; do
				[[ $2 != "$dir" ]] || { printf '%s' "$dir"; return; }
			done
		fi
		shift
	done
}

# load_time_ms VAR NS PIN LOAD_ARGS...: in VAR, the fastest of two whole `load LOAD_ARGS` on
# PIN in NS here, in ms; each is unloaded again. Kills meant to land while a load runs are
# timed by it (a load only gets slower than its fastest, so they land in time).
load_time_ms() {
	local var=$1 ns_name=$2 pin=$3 start ms best=
	shift 3
	for _ in 1 2; do
		start=$(date +%s%N)
		in_ns "$ns_name" timeout "$T_CLI_TIMEOUT" "$BPFREDIR" load "$@" --pin-dir "$pin" \
			>/dev/null 2>"$T_TMP/load.err" ||
			t_abort "load $* failed: $(head -c 300 "$T_TMP/load.err")"
		ms=$((($(date +%s%N) - start) / 1000000))
		cli "$ns_name" unload --pin-dir "$pin"
		[[ $CLI_RC -eq 0 ]] || t_abort "unload after a timed load failed: $(cli_result)"
		[[ -n $best && $ms -ge $best ]] || best=$ms
	done
	printf -v "$var" '%s' "$best"
}

cli_result() {
	printf 'exit %s, stderr: %s' "$CLI_RC" "$(printf '%s' "$CLI_ERR" | head -c 300)"
}

# expect_cli_ok NAME NS ARGS...: the command succeeds.
expect_cli_ok() {
	local name=$1
	shift
	cli "$@"
	if [[ $CLI_RC -eq 0 ]]; then
		pass "$name"
	else
		fail "$name" "bpfredir ${*:2}: expected exit 0, got $(cli_result)"
	fi
}

# expect_cli_error NAME RC PATTERN NS ARGS...: the command exits RC with exactly one line
# on stderr matching the extended regex PATTERN (case-insensitive), and nothing on stdout.
expect_cli_error() {
	local name=$1 want=$2 pattern=$3 lines
	shift 3
	cli "$@"
	lines=$(printf '%s' "$CLI_ERR" | grep -c '')
	if [[ $CLI_RC -ne $want ]]; then
		fail "$name" "bpfredir ${*:2}: expected exit $want, got $(cli_result)"
	elif [[ $lines -ne 1 ]]; then
		fail "$name" "bpfredir ${*:2}: expected one line on stderr, got $lines: $CLI_ERR"
	elif ! grep -Eqi -- "$pattern" <<<"$CLI_ERR"; then
		fail "$name" "bpfredir ${*:2}: stderr does not match /$pattern/: $CLI_ERR"
	elif [[ -n $CLI_OUT ]]; then
		fail "$name" "bpfredir ${*:2}: unexpected output on stdout: $CLI_OUT"
	else
		pass "$name"
	fi
}

# json_matches [JQ OPTIONS] FILTER: the last loader output (CLI_OUT) is JSON for which
# FILTER is true.
json_matches() { jq -e "$@" <<<"$CLI_OUT" >/dev/null 2>&1; }

# json_get [JQ OPTIONS] FILTER: prints FILTER applied to the last loader output.
json_get() { jq -r "$@" <<<"$CLI_OUT" 2>/dev/null; }

# list_json NS PIN: run `list --json` on the instance; the result is in CLI_OUT.
list_json() { cli "$1" list --json --pin-dir "$2"; }

# stat_of NAME: one counter of the last `list --json` (empty when there is none).
# shellcheck disable=SC2016 # a jq variable
stat_of() { json_get --arg c "$1" '.stats[$c] // empty'; }

# counter NS PIN NAME: prints one counter of the instance.
counter() {
	list_json "$1" "$2"
	stat_of "$3"
}

# rules_of: the rules of the last `list --json` as "public target proto hide" lines, sorted.
rules_of() {
	json_get '.rules[] | "\(.public_port) \(.target_port) \(.proto) \(.hide)"' | sort
}

# expect_rules NAME NS PIN WANT: the rule set equals WANT (lines as printed by rules_of).
expect_rules() {
	local got
	list_json "$2" "$3"
	got=$(rules_of)
	if [[ $got == "$4" ]]; then
		pass "$1"
	else
		fail "$1" "expected rules [$4], got [$got] (list: $(cli_result))"
	fi
}

# expect_stat_grew NAME NS PIN COUNTER BEFORE: the counter is now above BEFORE.
expect_stat_grew() {
	local now
	list_json "$2" "$3"
	now=$(stat_of "$4")
	if [[ $now =~ ^[0-9]+$ && $now -gt $5 ]]; then
		pass "$1"
	else
		fail "$1" "expected $4 > $5, got '${now}' (list: $(cli_result))"
	fi
}

# addr_key ADDR [list]: ADDR as the maps key it (v4 as ::ffff:a.b.c.d): bpftool's hex bytes
# ("0x00 0x00 ..."), or with list a JSON list of numbers.
addr_key() {
	/usr/bin/python3 -c 'import ipaddress, sys
a = ipaddress.ip_address(sys.argv[1])
a = ipaddress.IPv6Address("::ffff:" + str(a)) if a.version == 4 else a
print(list(a.packed) if sys.argv[2:] == ["list"] else " ".join("0x%02x" % b for b in a.packed))' "$@"
}

# local_addr_value PIN ADDR: local_addrs' value for ADDR in the instance at PIN (how many
# holders; LOCAL_ADDR_BROADCAST for a subnet broadcast address), empty when ADDR is no key.
local_addr_value() {
	local key
	key=$(addr_key "$2")
	bpftool -j map dump pinned "$1/maps/local_addrs" 2>/dev/null |
		jq -r --arg k "$key" '.[] | select(.key | join(" ") == $k) | .formatted.value' 2>/dev/null
}

# --- BPF objects ---------------------------------------------------------------------------
# Every helper here fails loudly: when bpftool fails, its output says so (a line starting
# "bpftool" and "failed:"), so that no check built on it can pass by an empty answer.

# bpftool_json NS ARGS...: bpftool -j ARGS in namespace NS (- for the current one); prints the
# JSON, or one line saying what failed, and returns non-zero. Success is judged by the output:
# one JSON document that is not bpftool's {"error": ...} (bpftool 7.5 exits 255 after
# printing a link it found, so its status cannot be trusted).
bpftool_json() {
	local ns_name=$1 out err
	shift
	local runner=()
	[[ $ns_name == - ]] || runner=(in_ns "$ns_name")
	err=$(mktemp "$T_TMP/bpftool.XXXXXX")
	out=$("${runner[@]}" bpftool -j "$@" 2>"$err")
	# (cgroup show prints nothing at all for a cgroup without programs.)
	if [[ -z $out && ! -s $err ]]; then
		out='[]'
	fi
	if jq -se 'length == 1 and (.[0] | type != "object" or (has("error") | not))' \
		>/dev/null 2>&1 <<<"$out"; then
		rm -f "$err"
		printf '%s\n' "$out"
		return 0
	fi
	printf 'bpftool %s failed: %s\n' "$*" \
		"$({ jq -r '.error? // empty' <<<"$out" 2>/dev/null; head -c 200 "$err"; } | tr '\n' ' ')"
	rm -f "$err"
	return 1
}

# --- this test's programs ----------------------------------------------------------------
# A test knows its own programs and never counts anyone else's: the programs pinned under its
# pin dirs (recorded as "id name" lines whenever the loader works on one of them, see cli,
# and at cleanup) and any bpfredir program attached at the devices of its namespaces or at its
# cgroups. tests/run.sh checks at the end of a run that every recorded one is gone.

# t_progs_record [PIN...]: record the programs pinned under these pin dirs (default: all of
# this test's).
t_progs_record() {
	local json
	(($# > 0)) || set -- "${T_PIN_DIRS[@]}"
	(($# > 0)) || return 0
	json=$(bpftool_json - -f prog show) || { echo "$json" >&2; return 1; }
	jq -r '$ARGS.positional as $dirs | .[]
		| select(any(.pinned[]?; . as $p | any($dirs[]; . as $d | $p | startswith($d + "/"))))
		| "\(.id) \(.name)"' --args "$@" <<<"$json" >>"$T_TMP/progs"
}

# bpfredir_prog_ids: the IDs of this test's programs still loaded, sorted, one a line: pinned
# under its pin dirs, recorded, or attached at its namespaces and cgroups (bpfredir_* there).
bpfredir_prog_ids() {
	local progs json ns cg attached=()
	progs=$(bpftool_json - -f prog show) || { printf '%s\n' "$progs"; return 1; }
	for ns in "${T_NETNS[@]}"; do
		[[ -e /run/netns/$ns ]] || continue
		json=$(bpftool_json "${ns#"$T_PREFIX-"}" net show) || { printf '%s\n' "$json"; return 1; }
		mapfile -t -O "${#attached[@]}" attached < <(jq -r '.[] |
			((.tc // [])[] | .prog_id // .id), ((.xdp // [])[] | .id)' <<<"$json")
	done
	for cg in "${T_CGROUPS[@]}"; do
		[[ -d $cg ]] || continue
		json=$(bpftool_json - cgroup show "$cg") || { printf '%s\n' "$json"; return 1; }
		mapfile -t -O "${#attached[@]}" attached < <(jq -r '.[] | .id' <<<"$json")
	done
	jq -r --rawfile recorded <(cat "$T_TMP/progs" 2>/dev/null) \
		--arg attached "${attached[*]}" '
		($recorded | split("\n") | map(select(. != ""))) as $rec
		| ($attached | split(" ") | map(select(. != "") | tonumber)) as $att
		| $ARGS.positional as $dirs | .[]
		| select(any(.pinned[]?; . as $p | any($dirs[]; . as $d | $p | startswith($d + "/")))
			or ("\(.id) \(.name)" | IN($rec[]))
			or (.id | IN($att[])) and (.name // "" | startswith("bpfredir_")))
		| .id' --args "${T_PIN_DIRS[@]}" <<<"$progs" | sort -n
}

# new_bpfredir_progs: this test's programs still loaded (see bpfredir_prog_ids); nothing to
# print, non-zero status.
new_bpfredir_progs() {
	local ids
	ids=$(bpfredir_prog_ids)
	[[ -n $ids ]] && printf '%s\n' "$ids"
}

no_new_bpfredir_progs() {
	local ids
	ids=$(bpfredir_prog_ids) && [[ -z $ids ]]
}

# link_ids_of PROG_ID...: IDs of the links that hold those programs.
link_ids_of() {
	local ids json
	ids=$(printf '%s,' "$@")
	json=$(bpftool_json - link show) || { printf '%s\n' "$json"; return 1; }
	jq -r --arg ids "${ids%,}" '($ids | split(",")) as $p | .[]
		| select(.prog_id | tostring | IN($p[])) | .id' <<<"$json" | sort -n
}

# attached_progs NS IFACE [CGROUP]: the programs attached to IFACE (TC, in NS) and to
# CGROUP, as "hook:name:prog_id" lines, e.g. tcx/ingress:bpfredir_tc_in:42. (bpftool shows
# a clsact filter's program as "id", and its name as the filter's, "bpfredir_tc_in:[42]".)
attached_progs() {
	local json
	json=$(bpftool_json "$1" net show dev "$2") || { printf '%s\n' "$json"; return 1; }
	jq -r '.[] | (.tc // [])[] |
		"\(.kind):\(.name | sub(":\\[[0-9]+\\]$"; "")):\(.prog_id // .id)"' <<<"$json"
	[[ -n ${3:-} ]] || return 0
	json=$(bpftool_json - cgroup show "$3") || { printf '%s\n' "$json"; return 1; }
	jq -r '.[] | "\(.attach_type):\(.name):\(.id)"' <<<"$json"
}

# map_ids_of PROG_ID...: IDs of the maps those programs use.
map_ids_of() {
	local id json
	for id in "$@"; do
		json=$(bpftool_json - prog show id "$id") || { printf '%s\n' "$json"; return 1; }
		jq -r '.map_ids[]?' <<<"$json"
	done | sort -un
}

# gone_ids KIND ID...: none of the IDs is still a loaded prog/map/link (KIND). bpftool must
# say "No such file or directory" for each; any other answer is an error, said on stderr.
gone_ids() {
	local kind=$1 id err
	shift
	(($# > 0)) || { echo "gone_ids: no $kind id given" >&2; return 2; }
	for id in "$@"; do
		err=$(bpftool_json - "$kind" show id "$id") && return 1
		[[ $err == *"No such file or directory"* ]] || { echo "$err" >&2; return 2; }
	done
	return 0
}

# no_loader_running PIN: no bpfredir process works on PIN (the datapath runs on its own).
no_loader_running() { ! pgrep -f -- "--pin-dir $1" >/dev/null; }

# --- raw packets -------------------------------------------------------------------------

# Debian's python3, which has scapy (a pyenv or venv python3 earlier in PATH may not).
SCAPY_PYTHON=${SCAPY_PYTHON:-/usr/bin/python3}

# t_require_scapy: the raw-packet helpers can run.
t_require_scapy() {
	"$SCAPY_PYTHON" -c 'import scapy.all' >/dev/null 2>&1 ||
		t_abort "$SCAPY_PYTHON cannot import scapy (run: sudo make deps)"
}

# syn_reply NS DST PORT [SPORT]: send one bare SYN from NS with scapy (from SPORT, else a
# random port); prints the reply's "sport flags" (e.g. "8445 SA"), or "none".
syn_reply() {
	in_ns "$1" timeout 30 "$SCAPY_PYTHON" - "$2" "$3" "${4:-0}" <<'PY'
import sys
import logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import IP, TCP, RandShort, conf, sr1
conf.verb = 0
sport = int(sys.argv[3]) or RandShort()
reply = sr1(IP(dst=sys.argv[1]) / TCP(sport=sport, dport=int(sys.argv[2]), flags="S"),
            timeout=3)
print(f"{reply[TCP].sport} {reply[TCP].flags}" if reply and TCP in reply else "none")
PY
}

# expect_syn_reply NAME NS DST PORT WANT [SPORT]: the SYN to DST:PORT is answered with
# WANT ("sport flags").
expect_syn_reply() {
	local got
	got=$(syn_reply "$2" "$3" "$4" "${6:-}" 2>&1)
	if [[ $got == "$5" ]]; then
		pass "$1"
	else
		fail "$1" "SYN to $3:$4: expected reply '$5', got '$got'"
	fi
}

# raw_probe CASE ADDR PORT ...: crafted packets from the client (helpers/rawprobe.py, which
# lists the cases), every answer sniffed; the JSON result is in RAW_OUT. A probe that could
# not run leaves RAW_OUT empty and says why in RAW_ERR, which the checks report as a failure.
raw_probe() {
	if ! RAW_OUT=$(in_ns client timeout 60 "$SCAPY_PYTHON" "$T_HELPERS/rawprobe.py" "$@" 2>"$T_TMP/raw.err") ||
		! jq -e '.cases' <<<"$RAW_OUT" >/dev/null 2>&1; then
		RAW_ERR="rawprobe failed: $(tail -c 300 "$T_TMP/raw.err") $RAW_OUT"
		RAW_OUT=
	fi
}

# raw_answers CASE ADDR PORT: the answers to one probe of the last raw_probe, one a line:
# "tcp SPORT FLAGS", "udp SPORT echo|payload-differs" or "icmp QUOTED-SPORT QUOTED-DPORT".
# shellcheck disable=SC2016 # jq variables
raw_answers() {
	jq -r --arg c "$1" --arg a "$2" --argjson p "$3" '.cases[]
		| select(.case == $c and .addr == $a and .port == $p) | .answers[]
		| if .proto == "tcp" then "tcp \(.sport) \(.flags)"
		  elif .proto == "udp" then "udp \(.sport) \(if .payload_ok then "echo" else "payload-differs" end)"
		  else "icmp \(.sport) \(.dport)" end' <<<"$RAW_OUT" 2>/dev/null
}

# expect_answer NAME CASE ADDR PORT WANT: the probe's answers (see raw_answers), joined by
# commas, are WANT, e.g. "tcp 8445 SA" ("" for none at all, ICMP errors included).
expect_answer() {
	local got
	if [[ -z $RAW_OUT ]]; then
		fail "$1" "$RAW_ERR"
		return
	fi
	got=$(raw_answers "$2" "$3" "$4" | paste -sd, -)
	if [[ $got == "$5" ]]; then
		pass "$1"
	else
		fail "$1" "$2 to $(endpoint "$3" "$4"): expected '${5:-no answer}', got '${got:-no answer}'"
	fi
}

# udp_connected NS ADDR PORT [SECONDS]: one datagram from a socket in NS connected to
# ADDR:PORT, which takes a reply from that very port only; prints "echo", "payload-differs",
# "refused" (an ICMP error came back) or "none" (nothing at all within SECONDS, default 1.5).
udp_connected() {
	in_ns "$1" timeout 10 "$SCAPY_PYTHON" - "$2" "$3" "${4:-1.5}" <<'PY'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
s.connect((addr, port))
msg = b"udp-connected %d" % id(s)
s.send(msg)
try:
    print("echo" if s.recv(2048) == msg else "payload-differs")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("none")
PY
}

# xfer ADDR PORT: XFER_BYTES (the test sets it) echoed through ADDR:PORT from the client
# (helpers/xfer.py, sha256 compared); prints "ok" or what went wrong.
xfer() {
	local out
	out=$(in_ns client timeout 60 "$SCAPY_PYTHON" "$T_HELPERS/xfer.py" echo "$1" "$2" "${XFER_BYTES:?}" 2>&1)
	if jq -e '.ok' <<<"$out" >/dev/null 2>&1; then
		echo ok
	else
		printf '%s: %s\n' "$(endpoint "$1" "$2")" "$(tail -c 300 <<<"$out")"
	fi
}

# csum_errors NS: TCP and UDP (v4 and v6) checksum errors counted in NS.
csum_errors() {
	in_ns "$1" cat /proc/net/snmp /proc/net/snmp6 2>/dev/null | awk '
		/^(Tcp|Udp):/ { if (!hdr[$1]) { hdr[$1] = 1; for (i = 2; i <= NF; i++) col[$1, $i] = i; next }
			sum += $(col[$1, "InCsumErrors"]) }
		$1 == "Udp6InCsumErrors" { sum += $2 }
		END { print sum + 0 }'
}
