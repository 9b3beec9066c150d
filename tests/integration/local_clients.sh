#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Local clients: the cgroup socket hooks, probed with real sockets (helpers/sockprobe.py)
# from processes placed in test cgroups inside a server namespace.
#   - TCP, connected and unconnected UDP, TCP Fast Open; IPv4, IPv6 and IPv4-mapped; to
#     loopback and to the host's own addresses: connect() to 8445 reaches the service on
#     8443, getpeername()/recvfrom() show 8445, getsockname() the real local address;
#   - another host's 8445 is left alone; processes outside the cgroup are not redirected,
#     those in a child cgroup are; two socket-only instances give two cgroups two rules;
#   - attach/detach while a connection made through the redirect stays open, and the CLI
#     errors of attach/detach; --hide-local; a foreign program on the same hook survives
#     attach, detach and unload;
#   - curl, lwp-request and openssl s_client through the redirect.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

SOCKPROBE=$T_REPO/tests/integration/helpers/sockprobe.py
PY=/usr/bin/python3

ALL_TESTS="test_load test_socket_api test_local_only test_hide_local test_foreign_program
	test_two_instances test_real_clients test_unload"
t_depends test_socket_api test_load
t_depends test_local_only test_load
t_depends test_hide_local test_load
t_depends test_foreign_program test_load
t_depends test_real_clients test_load
t_depends test_unload test_foreign_program

lc_cleanup() {
	local rc=$?
	[[ -z $HOLD_FD ]] || exec {HOLD_FD}>&-
	[[ -z $FOREIGN_CG ]] || bpftool cgroup detach "$FOREIGN_CG" connect4 pinned "$FPIN/prog" 2>/dev/null
	(exit "$rc")
	t_cleanup
}

# sp_server NS PORT TAG: a sockprobe echo service (TCP with Fast Open, and UDP) on PORT;
# its pid goes in SP_SERVER_PID.
sp_server() {
	server "$1" "$2" tcp "$PY" "$SOCKPROBE" serve --port "$2" --tag "$3" --fastopen
	SP_SERVER_PID=${T_PIDS[-1]}
	wait_for 5 listening "$1" "$2" udp || t_abort "sockprobe did not listen on $1:$2/udp"
}

# sp CG|- MODE ADDR PORT: one sockprobe exchange in the server namespace, as a member of CG
# (or of no test cgroup with -). Its JSON result goes in SP_OUT.
sp() {
	local cg=$1 runner=(in_ns server) rc
	shift
	[[ $cg == - ]] || runner=(in_cgroup server "$cg")
	SP_OUT=$("${runner[@]}" timeout 20 "$PY" "$SOCKPROBE" "$@" 2>"$T_TMP/sp.err")
	rc=$?
	[[ -n $SP_OUT ]] || SP_OUT="(no output, exit $rc; stderr: $(head -c 300 "$T_TMP/sp.err" | tr '\n' ' '))"
}

# sp_expect NAME FILTER CG MODE ADDR PORT: the exchange's result satisfies the jq FILTER
# ($addr is ADDR, or SP_ADDR when set: the peer the kernel makes of ADDR).
sp_expect() {
	local name=$1 filter=$2 where
	shift 2
	where="cgroup ${1##*/}"
	[[ $1 != - ]] || where="no test cgroup"
	sp "$@"
	if jq -e --arg addr "${SP_ADDR:-$3}" "$JQ_DEFS $filter" <<<"$SP_OUT" >/dev/null 2>&1; then
		pass "$name"
	else
		fail "$name" "sockprobe $2 $3 $4 in $where: expected $filter, got $SP_OUT"
	fi
}

# bracket ADDR: ADDR as written in an address:port pair.
bracket() { if [[ $1 == *:* ]]; then printf '[%s]' "$1"; else printf '%s' "$1"; fi; }

setup_tests() {
	t_require clang
	[[ -x $PY ]] || t_abort "$PY is missing"
	[[ -r $SOCKPROBE ]] || t_abort "$SOCKPROBE is missing"

	# What this script makes beyond the harness's registry (tests/lib/harness.sh): the held
	# connection's fifo writer and the foreign program's cgroup attachment. Undone first, then
	# the harness's cleanup.
	HOLD_FD=
	FOREIGN_CG=
	trap lc_cleanup EXIT

	# --- topology: server (the host under test) and remote, on documentation addresses -------
	SERVER4=192.0.2.2
	SERVER6=2001:db8::2
	REMOTE4=192.0.2.1
	REMOTE6=2001:db8::1
	netns_add server
	netns_add remote
	veth remote rem0 "$REMOTE4/24" server "$SERVER_IF" "$SERVER4/24"
	if ! { ip -n "$(ns server)" addr add "$SERVER6/64" dev "$SERVER_IF" nodad &&
		ip -n "$(ns remote)" addr add "$REMOTE6/64" dev rem0 nodad; }; then
		t_abort "could not add the IPv6 addresses"
	fi
	in_ns server sysctl -qw net.ipv4.tcp_fastopen=3 || t_abort "cannot set net.ipv4.tcp_fastopen=3 in the server namespace"
	make_cert

	cgroup_add CG main
	cgroup_add CG2 attach
	cgroup_add CGA a
	cgroup_add CGB b
	# A child of CG; cleanup removes the last made first.
	CGCHILD=$CG/child
	mkdir "$CGCHILD" || t_abort "mkdir $CGCHILD failed"
	T_CGROUPS+=("$CGCHILD")
	pin_dir PIN main
	pin_dir PINA a
	pin_dir PINB b
	pin_dir FPIN foreign

	sp_server server 8443 svc8443
	SVC8443_PID=$SP_SERVER_PID
	sp_server server 9443 svc9443
	# Another host with its own service on the public port: must never be redirected.
	sp_server remote 8445 remote8445

	# --- probing -------------------------------------------------------------------------------

	# jq helpers over a sockprobe result; $addr is the destination the client used.
	# shellcheck disable=SC2016 # jq, not shell
	JQ_DEFS='
	def norm: if test("^::ffff:[0-9.]+$") then .[7:] else . end;
	def svc($t): .ok == true and .service == $t;
	def peer($p): .peername == [$addr, $p];
	def from($p): .from == [$addr, $p];
	def saw_me: .service_saw == [(.sockname[0] | norm), .sockname[1]];
	def real_local: .sockname[0] == $addr and saw_me;
	def saw_my_port: .service_saw == [($addr | norm), .sockname[1]];
	def refused: .ok == false and .errno == 111;
	def no_reply: .ok == false and .service == null;
	'
}

test_load() {
	expect_cli_ok "load --iface $SERVER_IF --cgroup CG" server load --iface "$SERVER_IF" --cgroup "$CG" --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 (tcp)" server add 8445 8443 --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 --proto udp" server add 8445 8443 --proto udp --pin-dir "$PIN"
}

# --- the socket API in the cgroup --------------------------------------------------------------
test_socket_api() {
	redirected=$(counter server "$PIN" sock_redirected)
	for dst in 127.0.0.1 ::1 ::ffff:127.0.0.1 "$SERVER4" "$SERVER6" "::ffff:$SERVER4"; do
		d=$(bracket "$dst")
		sp_expect "tcp connect $d:8445 reaches 8443, getpeername 8445, getsockname real" \
			'svc("svc8443") and peer(8445) and real_local' "$CG" tcp "$dst" 8445
		sp_expect "udp sendto $d:8445 gets the reply, recvfrom shows 8445" \
			'svc("svc8443") and from(8445) and saw_my_port' "$CG" udp "$dst" 8445
		sp_expect "connected udp $d:8445: reply, getpeername and recvfrom 8445" \
			'svc("svc8443") and peer(8445) and from(8445) and real_local' "$CG" udp-connect "$dst" 8445
	done
	expect_stat_grew "stats: sock_redirected grew" server "$PIN" sock_redirected "${redirected:-0}"

	# The kernel connects the unspecified address to loopback: 0.0.0.0, :: and ::ffff:0.0.0.0
	# (on an AF_INET6 socket) are this host, redirected and shown as the loopback peer on 8445.
	for pair in 0.0.0.0=127.0.0.1 ::=::1 ::ffff:0.0.0.0=::ffff:127.0.0.1; do
		dst=${pair%%=*} SP_ADDR=${pair#*=}
		d=$(bracket "$dst")
		sp_expect "tcp connect $d:8445 reaches 8443, getpeername $(bracket "$SP_ADDR"):8445" \
			'svc("svc8443") and peer(8445) and real_local' "$CG" tcp "$dst" 8445
		sp_expect "udp sendto $d:8445 gets the reply, recvfrom shows 8445" \
			'svc("svc8443") and from(8445) and saw_my_port' "$CG" udp "$dst" 8445
		sp_expect "connected udp $d:8445: reply, getpeername and recvfrom 8445" \
			'svc("svc8443") and peer(8445) and from(8445) and real_local' "$CG" udp-connect "$dst" 8445
	done
	SP_ADDR=

	# TCP Fast Open: the first exchange gets a cookie, the next carries its data in the SYN,
	# which must already be aimed at 8443.
	for mode in tcp-fastopen tcp-fastopen-connect; do
		for dst in 127.0.0.1 ::1 ::ffff:127.0.0.1 "$SERVER4"; do
			d=$(bracket "$dst")
			sp_expect "$mode $d:8445 reaches 8443, getpeername 8445" \
				'svc("svc8443") and peer(8445) and real_local' "$CG" "$mode" "$dst" 8445
			sp_expect "$mode $d:8445 again: data in the SYN, redirected" \
				'svc("svc8443") and peer(8445) and real_local and .syn_data == true' "$CG" "$mode" "$dst" 8445
		done
	done
}

# --- only local destinations, only the cgroup and its descendants --------------------------
test_local_only() {
	for dst in "$REMOTE4" "$REMOTE6"; do
		d=$(bracket "$dst")
		sp_expect "in cgroup: tcp to remote $d:8445 reaches the remote service" \
			'svc("remote8445") and peer(8445) and saw_me' "$CG" tcp "$dst" 8445
		sp_expect "in cgroup: udp to remote $d:8445 answered by the remote service" \
			'svc("remote8445") and from(8445)' "$CG" udp "$dst" 8445
	done
	sp_expect "outside cgroup: tcp 127.0.0.1:8445 refused" 'refused' - tcp 127.0.0.1 8445
	sp_expect "outside cgroup: tcp [::1]:8445 refused" 'refused' - tcp ::1 8445
	sp_expect "outside cgroup: tcp $SERVER4:8445 refused" 'refused' - tcp "$SERVER4" 8445
	sp_expect "outside cgroup: udp 127.0.0.1:8445 gets no reply" 'no_reply' - udp 127.0.0.1 8445
	sp_expect "child cgroup: tcp 127.0.0.1:8445 reaches 8443" \
		'svc("svc8443") and peer(8445) and real_local' "$CGCHILD" tcp 127.0.0.1 8445
	sp_expect "child cgroup: udp [::1]:8445 reaches 8443" \
		'svc("svc8443") and from(8445)' "$CGCHILD" udp ::1 8445
}

# --- --hide-local ----------------------------------------------------------------------------
test_hide_local() {
	sp_expect "no --hide-local: in cgroup tcp 127.0.0.1:8443 still reachable" \
		'svc("svc8443")' "$CG" tcp 127.0.0.1 8443
	sp_expect "no --hide-local: in cgroup tcp [::1]:8443 still reachable" \
		'svc("svc8443")' "$CG" tcp ::1 8443
	expect_cli_ok "del 8445 (tcp)" server del 8445 --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 --hide-local" server add 8445 8443 --hide-local --pin-dir "$PIN"
	refused=$(counter server "$PIN" sock_refused)
	for dst in 127.0.0.1 ::1 ::ffff:127.0.0.1 "$SERVER4" "$SERVER6" 0.0.0.0 :: ::ffff:0.0.0.0; do
		sp_expect "--hide-local: in cgroup tcp $(bracket "$dst"):8443 gets ECONNREFUSED" \
			'refused and .op == "connect"' "$CG" tcp "$dst" 8443
	done
	# The UDP rule was added without --hide-local: make it hide locally too, for the datagrams.
	expect_cli_ok "del 8445 (udp)" server del 8445 --proto udp --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 --proto udp --hide-local" server add 8445 8443 --proto udp --hide-local --pin-dir "$PIN"
	for dst in 127.0.0.1 ::1 ::ffff:127.0.0.1 "$SERVER4" 0.0.0.0 :: ::ffff:0.0.0.0; do
		sp_expect "--hide-local: in cgroup udp sendto $(bracket "$dst"):8443 gets ECONNREFUSED" \
			'refused and .op == "sendto"' "$CG" udp "$dst" 8443
		sp_expect "--hide-local: in cgroup connected udp $(bracket "$dst"):8443 gets ECONNREFUSED" \
			'refused and .op == "connect"' "$CG" udp-connect "$dst" 8443
	done
	expect_stat_grew "--hide-local: sock_refused grew" server "$PIN" sock_refused "${refused:-0}"
	sp_expect "--hide-local: in cgroup tcp 127.0.0.1:8445 still works" \
		'svc("svc8443") and peer(8445) and real_local' "$CG" tcp 127.0.0.1 8445
	sp_expect "--hide-local: outside cgroup tcp 127.0.0.1:8443 reachable" 'svc("svc8443")' - tcp 127.0.0.1 8443
	expect_cli_ok "del 8445, add 8445 8443 without --hide-local" server del 8445 --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 again" server add 8445 8443 --pin-dir "$PIN"
	expect_cli_ok "del 8445 (udp), add it again without --hide-local" server del 8445 --proto udp --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 --proto udp again" server add 8445 8443 --proto udp --pin-dir "$PIN"
	sp_expect "hide-local gone: in cgroup tcp 127.0.0.1:8443 reachable again" 'svc("svc8443")' "$CG" tcp 127.0.0.1 8443
}

# cg_progs CG: the programs attached to CG, as "attach_type:name" lines.
cg_progs() { bpftool -j cgroup show "$1" 2>/dev/null | jq -r '.[] | "\(.attach_type):\(.name)"'; }

# foreign_ok WHEN: the foreign program is still attached to CG2, once, and still works.
foreign_ok() {
	local progs n
	progs=$(cg_progs "$CG2")
	n=$(grep -c '^cgroup_inet4_connect:foreign_conn4$' <<<"$progs")
	check "$1: foreign connect4 program still attached to CG2" "attached: $(paste -sd' ' <<<"$progs")" test "$n" -eq 1
	sp_expect "$1: foreign program still sends 7777 to 9443" 'svc("svc9443")' "$CG2" tcp 127.0.0.1 7777
}

hold_has() { [[ $(grep -c '' "$T_TMP/hold.out") -ge $1 ]]; }

# hold_step NAME STEP: one more exchange on the held connection works.
hold_step() {
	local line
	HOLD_LINES=$((HOLD_LINES + 1))
	# In a subshell: if the probe has died, SIGPIPE ends only that.
	(printf '%s\n' "$2" >&"$HOLD_FD") 2>/dev/null
	if wait_for 8 hold_has "$HOLD_LINES"; then
		line=$(sed -n "${HOLD_LINES}p" "$T_TMP/hold.out")
		if jq -e --arg s "$2" '.ok == true and .step == $s and .service == "svc8443"' <<<"$line" >/dev/null 2>&1; then
			pass "$1"
		else
			fail "$1" "got: $line"
		fi
	else
		fail "$1" "no answer on the held connection: $(tail -c 300 "$T_TMP/hold.out") $(head -c 200 "$T_TMP/hold.err")"
	fi
}

# --- a foreign connect4 program on CG2, then attach/detach with a connection open -------------

# A tiny program of someone else's: connect4 to port 7777 goes to 9443.
test_foreign_program() {
	cat >"$T_TMP/foreign.bpf.c" <<'EOF'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("cgroup/connect4")
int foreign_conn4(struct bpf_sock_addr *ctx)
{
	if (ctx->user_port == bpf_htons(7777))
		ctx->user_port = bpf_htons(9443);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
EOF
	VMLINUX_DIR=$(dirname "$(find "$T_REPO/vmlinux" -name vmlinux.h | head -1)")
	clang -O2 -g -target bpf -I"$VMLINUX_DIR" -c "$T_TMP/foreign.bpf.c" -o "$T_TMP/foreign.o" 2>"$T_TMP/clang.err" ||
		t_abort "could not compile the foreign program: $(head -c 300 "$T_TMP/clang.err")"
	mkdir -p "$FPIN" || t_abort "mkdir $FPIN failed"
	bpftool prog load "$T_TMP/foreign.o" "$FPIN/prog" 2>"$T_TMP/bpftool.err" ||
		t_abort "bpftool prog load of the foreign program failed: $(head -c 300 "$T_TMP/bpftool.err")"
	bpftool cgroup attach "$CG2" connect4 pinned "$FPIN/prog" multi 2>"$T_TMP/bpftool.err" ||
		t_abort "bpftool cgroup attach of the foreign program failed: $(head -c 300 "$T_TMP/bpftool.err")"
	FOREIGN_CG=$CG2

	foreign_ok "before attach"
	sp_expect "before attach: CG2 tcp 127.0.0.1:8445 refused" 'refused' "$CG2" tcp 127.0.0.1 8445
	expect_cli_ok "attach --cgroup CG2" server attach --cgroup "$CG2" --pin-dir "$PIN"
	check "attach: bpfredir_conn4 attached to CG2" "attached: $(cg_progs "$CG2" | paste -sd' ' -)" \
		grep -q '^cgroup_inet4_connect:bpfredir_conn4$' <<<"$(cg_progs "$CG2")"
	sp_expect "attached: CG2 tcp 127.0.0.1:8445 reaches 8443" \
		'svc("svc8443") and peer(8445) and real_local' "$CG2" tcp 127.0.0.1 8445
	sp_expect "attached: CG2 udp [::1]:8445 reaches 8443" 'svc("svc8443") and from(8445)' "$CG2" udp ::1 8445
	foreign_ok "after attach"

	# A connection made through the redirect, held open by a process in CG2: one exchange per
	# line written to its stdin, one JSON line each in hold.out.
	mkfifo "$T_TMP/hold.in"
	nsenter --net="$(ns_path server)" -- "${JOIN_CGROUP[@]}" "$CG2" \
		timeout 90 "$PY" "$SOCKPROBE" hold 127.0.0.1 8445 <"$T_TMP/hold.in" >"$T_TMP/hold.out" 2>"$T_TMP/hold.err" &
	T_PIDS+=("$!")
	exec {HOLD_FD}>"$T_TMP/hold.in"
	# shellcheck disable=SC2016
	if wait_for 8 hold_has 1 &&
		jq -e --arg addr 127.0.0.1 "$JQ_DEFS"' svc("svc8443") and peer(8445) and real_local' \
			<(head -1 "$T_TMP/hold.out") >/dev/null 2>&1; then
		pass "held connection: opened through 8445 to 8443"
	else
		fail "held connection: opened through 8445 to 8443" \
			"got: $(head -c 400 "$T_TMP/hold.out") $(head -c 200 "$T_TMP/hold.err")"
	fi
	HOLD_LINES=1

	hold_step "held connection: send/recv while attached" attached
	expect_cli_error "attach CG2 twice: exit 1" 1 'already attached' server attach --cgroup "$CG2" --pin-dir "$PIN"
	expect_cli_ok "detach --cgroup CG2" server detach --cgroup "$CG2" --pin-dir "$PIN"
	check "detach: no bpfredir program left on CG2" "attached: $(cg_progs "$CG2" | paste -sd' ' -)" \
		test -z "$(cg_progs "$CG2" | grep bpfredir_)"
	foreign_ok "after detach"
	hold_step "held connection: send/recv after detach" detached
	sp_expect "detached: new CG2 tcp 127.0.0.1:8445 not redirected (refused)" 'refused' "$CG2" tcp 127.0.0.1 8445
	sp_expect "detached: CG still redirected" 'svc("svc8443") and peer(8445)' "$CG" tcp 127.0.0.1 8445
	expect_cli_error "detach CG2 not attached: exit 1" 1 'not attached' server detach --cgroup "$CG2" --pin-dir "$PIN"
	expect_cli_ok "del 8445 with the held connection open" server del 8445 --pin-dir "$PIN"
	hold_step "held connection: send/recv after del 8445" deleted
	sp_expect "after del: CG tcp 127.0.0.1:8445 refused" 'refused' "$CG" tcp 127.0.0.1 8445
	exec {HOLD_FD}>&-
	HOLD_FD=
	expect_cli_ok "add 8445 8443 once more" server add 8445 8443 --pin-dir "$PIN"
	expect_cli_error "attach --cgroup /tmp: exit 1" 1 'cgroup' server attach --cgroup /tmp --pin-dir "$PIN"
	expect_cli_error "attach without --cgroup: exit 2" 2 'cgroup' server attach --pin-dir "$PIN"
	expect_cli_ok "attach --cgroup CG2 again after detach" server attach --cgroup "$CG2" --pin-dir "$PIN"
	sp_expect "re-attached: CG2 tcp 127.0.0.1:8445 reaches 8443" \
		'svc("svc8443") and peer(8445) and real_local' "$CG2" tcp 127.0.0.1 8445
	foreign_ok "after re-attach"
}

# --- two socket-only instances, two cgroups, two rules for the same port ------------------------
test_two_instances() {
	expect_cli_ok "A: socket-only load --cgroup CGa" server load --cgroup "$CGA" --pin-dir "$PINA"
	expect_cli_ok "B: socket-only load --cgroup CGb" server load --cgroup "$CGB" --pin-dir "$PINB"
	expect_cli_ok "A: add 8445 8443" server add 8445 8443 --pin-dir "$PINA"
	expect_cli_ok "B: add 8445 9443" server add 8445 9443 --pin-dir "$PINB"
	for dst in 127.0.0.1 ::1 "$SERVER4"; do
		d=$(bracket "$dst")
		sp_expect "A: CGa tcp $d:8445 reaches 8443" 'svc("svc8443") and peer(8445) and real_local' "$CGA" tcp "$dst" 8445
		sp_expect "B: CGb tcp $d:8445 reaches 9443" 'svc("svc9443") and peer(8445) and real_local' "$CGB" tcp "$dst" 8445
	done
	expect_cli_ok "B: unload" server unload --pin-dir "$PINB"
	sp_expect "B unloaded: CGb tcp 127.0.0.1:8445 refused" 'refused' "$CGB" tcp 127.0.0.1 8445
	sp_expect "B unloaded: CGa still reaches 8443" 'svc("svc8443") and peer(8445)' "$CGA" tcp 127.0.0.1 8445
}

s_client_done() {
	grep -q '^CONNECTED' <<<"$S_CLIENT" &&
		grep -Eq '^New, TLSv1\.[23], Cipher is [A-Z0-9_-]+' <<<"$S_CLIENT" &&
		grep -q 'Verify return code: 0 (ok)' <<<"$S_CLIENT" &&
		grep -q 's_server' <<<"$S_CLIENT"
}

# --- real clients through the redirect: curl, lwp-request, openssl s_client -------------------
test_real_clients() {
	server_stop "$SVC8443_PID" server 8443
	https_server server
	in_cg=(in_cgroup server "$CG")
	expect "in cgroup: curl https://127.0.0.1:8445/ gets the s_server page" ok "https://127.0.0.1:8445/" "${in_cg[@]}"
	expect "in cgroup: curl https://$SERVER4:8445/ gets the s_server page" ok "https://$SERVER4:8445/" "${in_cg[@]}"
	expect_lwp "in cgroup: lwp-request https://127.0.0.1:8445/ gets 200" "https://127.0.0.1:8445/" "${in_cg[@]}"
	S_CLIENT=$(printf 'GET / HTTP/1.0\r\n\r\n' |
		"${in_cg[@]}" timeout 15 openssl s_client -connect 127.0.0.1:8445 -CAfile "$CERT" \
			-verify_return_error -ign_eof 2>&1)
	check "in cgroup: openssl s_client -connect 127.0.0.1:8445 completes the handshake and gets the page" \
		"output: $(grep -E 'CONNECTED|Cipher is|Verify return|errno|error' <<<"$S_CLIENT" | head -5)" s_client_done
	expect "outside cgroup: curl https://127.0.0.1:8445/ refused" refused "https://127.0.0.1:8445/" in_ns server
}

# --- unload: the foreign program stays -------------------------------------------------------------
test_unload() {
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
	check "unload: no bpfredir program left on CG or CG2" \
		"attached: $(cg_progs "$CG" | paste -sd' ' -) $(cg_progs "$CG2" | paste -sd' ' -)" \
		test -z "$( (cg_progs "$CG" && cg_progs "$CG2") | grep bpfredir_)"
	foreign_ok "after unload"
	sp_expect "unloaded: CG tcp 127.0.0.1:8445 refused" 'refused' "$CG" tcp 127.0.0.1 8445
	if bpftool cgroup detach "$CG2" connect4 pinned "$FPIN/prog" 2>"$T_TMP/bpftool.err"; then
		FOREIGN_CG=
		pass "foreign program detached by its owner"
	else
		fail "foreign program detached by its owner" "$(head -c 300 "$T_TMP/bpftool.err")"
	fi
}

t_run_tests local_clients "$@"
