# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Test hosts, over harness.sh: network namespaces joined by veth pairs, on documentation
# addresses only, cgroups, the usual topology, servers and clients.
# Commands run in a namespace through nsenter --net (never `ip netns exec`, which remounts /sys
# and so hides bpffs and cgroup2). tests/bench/run.sh uses in_ns and its friends too.

[[ -z ${T_LIB_NET:-} ]] || return 0
T_LIB_NET=1
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

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
	# IPv4 forwarding is taken from the host's (a container runtime's bridge turns it on):
	# a test host forwards only where its test says so.
	in_ns "$1" sysctl -qw net.ipv4.ip_forward=0 ||
		t_abort "cannot turn forwarding off in $full"
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

not_listening() { ! listening "$@"; }

# server_stop PID NS PORT [SECONDS]: the server PID (server's, or a T_PIDS entry) killed and
# waited for, and PORT in NS free again within SECONDS (default 5); aborts the test if not.
server_stop() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	wait_for "${4:-5}" not_listening "$2" "$3" tcp || t_abort "$2 still listens on $3 after kill"
}

# https_server NS [PORT]: openssl s_server -www on PORT (default 8443) in NS.
https_server() {
	server "$1" "${2:-$TARGET_PORT}" tcp \
		openssl s_server -accept "${2:-$TARGET_PORT}" -www -quiet -cert "$CERT" -key "$KEY"
}

# "${JOIN_CGROUP[@]}" CGROUP CMD...: CMD as a member of CGROUP, in the same process (it execs),
# so a server started through it (server, a background job of nsenter) is CMD itself.
# shellcheck disable=SC2016 # expanded by the inner shell
JOIN_CGROUP=(bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' in-cgroup)

# in_cgroup NS CGROUP CMD...: run CMD in namespace NS as a member of CGROUP.
in_cgroup() {
	local ns_name=$1 cg=$2
	shift 2
	in_ns "$ns_name" "${JOIN_CGROUP[@]}" "$cg" "$@"
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

# csum_errors NS: TCP and UDP (v4 and v6) checksum errors counted in NS.
csum_errors() {
	in_ns "$1" cat /proc/net/snmp /proc/net/snmp6 2>/dev/null | awk '
		/^(Tcp|Udp):/ { if (!hdr[$1]) { hdr[$1] = 1; for (i = 2; i <= NF; i++) col[$1, $i] = i; next }
			sum += $(col[$1, "InCsumErrors"]) }
		$1 == "Udp6InCsumErrors" { sum += $2 }
		END { print sum + 0 }'
}
