#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The operator's tool: apply (dry run, idempotence, bad files, atomic switch under traffic),
# status and stats, the lock under concurrent invocations, loads killed midway, foreign pin
# dirs, --help for every verb, and make install/uninstall into a DESTDIR.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

t_init lifecycle
t_topology
https_server server
cgroup_add CG a
pin_dir PIN apply
SRV=https://$SERVER_ADDR
client=(in_ns client)

# conf NAME RULE...: a config file for srv0 and the test cgroup with these rule lines.
conf() {
	local file="$T_TMP/$1.conf" rule
	shift
	{
		echo "# written by lifecycle.sh"
		echo "interface $SERVER_IF"
		echo "cgroup $CG"
		echo "flows 4096"
		for rule in "$@"; do
			echo "rule $rule"
		done
	} >"$file"
	printf '%s' "$file"
}

# The instance's link pins by inode: a link made anew would have a new one.
link_pins() { ls -i "$PIN/links" | sort | tr '\n' ' '; }

# --- apply -------------------------------------------------------------------------------
A=$(conf a "8445 8443")
cli server apply -f "$A" --dry-run --pin-dir "$PIN"
check "apply --dry-run on an empty host prints the load" "$(cli_result) out: $CLI_OUT" \
	grep -q "^+ load" <<<"$CLI_OUT"
check "apply --dry-run creates no pin dir" "$PIN exists" test ! -e "$PIN"

expect_cli_ok "apply loads and sets the rules" server apply -f "$A" --pin-dir "$PIN"
expect_rules "apply: the file's rule is live" server "$PIN" "8445 8443 tcp true"
expect "apply: client reaches 8443 through 8445" ok "$SRV:8445" "${client[@]}"
expect "apply: 8443 is dropped" dropped "$SRV:8443" "${client[@]}"
check "apply: pin dir is mode 0700" "mode $(stat -c %a "$PIN")" test "$(stat -c %a "$PIN")" = 700

before=$(link_pins)
cli server apply -f "$A" --pin-dir "$PIN"
check "second apply changes nothing" "$(cli_result) out: $CLI_OUT" \
	test "$CLI_RC" -eq 0 -a "$CLI_OUT" = "nothing to change"
check "second apply keeps every link" "before: $before after: $(link_pins)" test "$before" = "$(link_pins)"

printf 'interface %s\nflows 4096\nrule 8445 84x3\n' "$SERVER_IF" >"$T_TMP/bad.conf"
expect_cli_error "bad file: line and column named" 1 "bad.conf:3:11: invalid port '84x3'" \
	server apply -f "$T_TMP/bad.conf" --pin-dir "$PIN"
printf 'interface %s\nrule 8445 8443 colour blue\n' "$SERVER_IF" >"$T_TMP/bad2.conf"
expect_cli_error "bad file: unknown rule option" 1 "bad2.conf:2:16: unknown rule option 'colour'" \
	server apply -f "$T_TMP/bad2.conf" --pin-dir "$PIN"
expect_rules "bad files changed nothing" server "$PIN" "8445 8443 tcp true"
expect_cli_error "apply without -f" 2 "-f FILE is required" server apply --pin-dir "$PIN"
expect_cli_error "apply of a missing file" 1 "cannot read" server apply -f "$T_TMP/none.conf" --pin-dir "$PIN"

B=$(conf b "8446 8443")
cli server apply -f "$B" --dry-run --pin-dir "$PIN"
check "dry run prints the switch" "out: $CLI_OUT" \
	grep -qx -- "- rule 8445 8443 proto tcp" <<<"$CLI_OUT"
expect_rules "dry run changed nothing" server "$PIN" "8445 8443 tcp true"
expect_cli_ok "apply switches to 8446" server apply -f "$B" --pin-dir "$PIN"
expect "after the switch: 8446 works" ok "$SRV:8446" "${client[@]}"
expect "after the switch: 8445 refused" refused "$SRV:8445" "${client[@]}"

# --- atomic switch under traffic ---------------------------------------------------------
# Both sets translate 8445 and hide 8443; the second adds 8446 on the same target. A switch
# that went through a half state would refuse 8445 or open 8443 for a moment.
S1=$(conf s1 "8445 8443")
S2=$(conf s2 "8445 8443" "8446 8443")
FLIPS=1000
expect_cli_ok "switch to the first set before the traffic starts" server apply -f "$S1" --pin-dir "$PIN"
(
	for ((i = 0; i < FLIPS; i++)); do
		f=$S2
		((i % 2)) && f=$S1
		in_ns server "$BPFREDIR" apply -f "$f" --pin-dir "$PIN" >/dev/null 2>>"$T_TMP/flip.err" ||
			echo "apply $i failed" >>"$T_TMP/flip.err"
	done
	touch "$T_TMP/flips.done"
) &
flipper=$!
# Connections through 8445 as fast as they go (a completed handshake needs both the
# rewrite and the reply's rewrite back), a full HTTPS request now and then, and a try at
# 8443 now and then, until the switching is done.
ok=0 broken=0 https_ok=0 https_broken=0 leaked=0 n=0
while [[ ! -e $T_TMP/flips.done ]]; do
	n=$((n + 1))
	if ((n % 20 == 0)); then
		if "${client[@]}" curl -ksS --noproxy '*' --connect-timeout 2 --max-time 5 \
			-o /dev/null "$SRV:8445" 2>>"$T_TMP/flip-curl.err"; then
			https_ok=$((https_ok + 1))
		else
			https_broken=$((https_broken + 1))
		fi
	elif "${client[@]}" timeout 2 bash -c "exec 3<>/dev/tcp/$SERVER_ADDR/8445" \
		2>>"$T_TMP/flip-tcp.err"; then
		ok=$((ok + 1))
	else
		echo "connect $n: exit $?" >>"$T_TMP/flip-tcp.err"
		broken=$((broken + 1))
	fi
	if ((n % 10 == 0)); then
		"${client[@]}" timeout 0.3 bash -c "exec 3<>/dev/tcp/$SERVER_ADDR/8443" 2>/dev/null &&
			leaked=$((leaked + 1))
	fi
done
wait "$flipper"
check "1000 rule-set switches all applied" "$(head -c 300 "$T_TMP/flip.err")" test ! -s "$T_TMP/flip.err"
check "connections during the switches: none broken" \
	"$ok ok, $broken broken: $(tail -c 300 "$T_TMP/flip-tcp.err")" \
	test "$broken" -eq 0 -a "$ok" -gt 100
check "HTTPS requests during the switches: none broken" \
	"$https_ok ok, $https_broken broken: $(head -c 300 "$T_TMP/flip-curl.err")" \
	test "$https_broken" -eq 0 -a "$https_ok" -gt 5
check "connections during the switches: 8443 never reachable" "$leaked connected to 8443" \
	test "$leaked" -eq 0
echo "# $FLIPS switches; during them through 8445: $ok TCP connections ($broken broken)," \
	"$https_ok HTTPS requests ($https_broken broken)"

# --- status and stats --------------------------------------------------------------------
# srv0 by tcx, or by clsact filters on a kernel without tcx.
if t_has tcx; then
	SRV0_JSON='.mode == "tcx" and (.ingress | map(.name) | index("bpfredir_tc_in") != null)'
	SRV0_TEXT="tcx"
else
	SRV0_JSON='.mode == "tc" and .filters_present == [true, true]'
	SRV0_TEXT="tc, clsact qdisc"
fi
cli server status --json --pin-dir "$PIN"
check "status --json: srv0 by $(tc_kind), the cgroup, flow-table size, kernel features" \
	"$(cli_result) $CLI_OUT" json_matches --arg cg "$CG" --argjson tcx "$(t_has tcx && echo true || echo false)" \
	"(.interfaces[0] | .name == \"srv0\" and $SRV0_JSON)
		and .cgroups[0].path == \$cg and .flows.max == 4096
		and .features.tcx == \$tcx and .features.btf"
cli server status --pin-dir "$PIN"
check "status: human-readable" "$(cli_result) $CLI_OUT" grep -q "srv0 (ifindex [0-9]*): $SRV0_TEXT" <<<"$CLI_OUT"
cli server stats --prometheus --pin-dir "$PIN"
check "stats --prometheus: counters per verdict and per rule" "$(cli_result) $CLI_OUT" \
	grep -q '^bpfredir_rule_packets_total{public_port="8445",target_port="8443",proto="tcp",counter="rewritten"} [1-9]' <<<"$CLI_OUT"
cli server stats --json --interval 1 --count 2 --pin-dir "$PIN"
check "stats --interval 1 --count 2 --json: two JSON lines of rates" "$(cli_result) $CLI_OUT" \
	test "$(jq -c '.rates.rewritten' <<<"$CLI_OUT" 2>/dev/null | grep -c '')" -eq 2
expect_cli_error "stats --count needs --interval" 2 "--count goes with --interval" \
	server stats --count 2 --pin-dir "$PIN"
expect_cli_error "stats --interval 0" 2 "invalid --interval '0'" server stats --interval 0 --pin-dir "$PIN"

# --- concurrent invocations --------------------------------------------------------------
# Only these: a bare `wait` would wait for the background servers too.
par=()
for port in $(seq 9001 9020); do
	in_ns server "$BPFREDIR" add "$port" $((port + 100)) --pin-dir "$PIN" 2>>"$T_TMP/par.err" &
	par+=($!)
done
wait "${par[@]}"
list_json server "$PIN"
check "20 concurrent adds: all 20 rules there" "$(head -c 200 "$T_TMP/par.err") $(rules_of | wc -l) rules" \
	test "$(rules_of | grep -c ' 91[0-2][0-9] tcp')" -eq 20
par=()
for port in $(seq 9001 9020); do
	in_ns server "$BPFREDIR" del "$port" --pin-dir "$PIN" 2>>"$T_TMP/par.err" &
	par+=($!)
done
wait "${par[@]}"
expect_rules "20 concurrent dels: back to the last file's rules" server "$PIN" "8445 8443 tcp true"
expect_cli_ok "unload the applied instance" server unload --pin-dir "$PIN"

# --- load again: same build, newer build ------------------------------------------------
pin_dir PINR reload
server server 9443 tcp socat TCP-LISTEN:9443,fork,reuseaddr EXEC:cat
expect_cli_ok "reload: first load" server load --iface "$SERVER_IF" --pin-dir "$PINR"
expect_cli_ok "reload: add 9445 9443" server add 9445 9443 --pin-dir "$PINR"
cli server load --iface "$SERVER_IF" --pin-dir "$PINR"
check "load again with the same build: nothing changes" "$(cli_result) $CLI_OUT" \
	grep -q "same build" <<<"$CLI_OUT"
# held_echo NAME: one connection through 9445 from the client, in the background (its pid in
# $held): one echo now and one after $T_TMP/go-NAME appears, each printed to $T_TMP/NAME.out.
held_echo() {
	"${client[@]}" /usr/bin/python3 -c '
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 9445), timeout=5)
s.sendall(b"before\n"); print(s.recv(100).decode().strip(), flush=True)
while not os.path.exists(sys.argv[2]): time.sleep(0.05)
s.sendall(b"after\n"); print(s.recv(100).decode().strip(), flush=True)
' "$SERVER_ADDR" "$T_TMP/go-$1" >"$T_TMP/$1.out" 2>&1 &
	held=$!
	wait_for 5 grep -q before "$T_TMP/$1.out"
}
held_echo held
# ingress_ids: bpfredir's programs at srv0's ingress (tcx, or clsact filters).
ingress_ids() {
	attached_progs server "$SERVER_IF" | grep '/ingress:bpfredir_tc_in:' | cut -d: -f3 | paste -sd, -
}
old_ids=$(ingress_ids)
NEWER="$T_TMP/newer"
if make -s -C "$T_REPO" OUTPUT="$NEWER/.output" BUILD="$NEWER/build" BPF_CPU=v2 \
	"$NEWER/build/bpfredir" >"$T_TMP/newer.log" 2>&1; then
	CLI_OUT=$(in_ns server "$NEWER/build/bpfredir" load --iface "$SERVER_IF" --pin-dir "$PINR" 2>&1)
	check "load of a newer build replaces the programs" "$CLI_OUT" \
		grep -q "programs replaced by this build, maps kept" <<<"$CLI_OUT"
else
	fail "build a newer build (BPF_CPU=v2)" "$(tail -5 "$T_TMP/newer.log")"
fi
check "newer build: other programs at ingress" "before $old_ids, after $(ingress_ids)" \
	test "$old_ids" != "$(ingress_ids)" -a -n "$(ingress_ids)"
expect_rules "newer build: the rules are kept" server "$PINR" "9445 9443 tcp true"
touch "$T_TMP/go-held"
wait "$held"
check "newer build: a connection open across the reload still works" "$(cat "$T_TMP/held.out")" \
	grep -qx after "$T_TMP/held.out"
"${client[@]}" timeout 3 bash -c "exec 3<>/dev/tcp/$SERVER_ADDR/9445" 2>/dev/null
check "newer build: new connections through 9445" "connect failed" test $? -eq 0
cli server load --iface "$SERVER_IF" --flows 2048 --pin-dir "$PINR"
check "load again with another --flows is refused" "$(cli_result)" \
	grep -q "loaded with --flows 65536" <<<"$CLI_ERR"
expect_cli_ok "reload: unload" server unload --pin-dir "$PINR"

# --- apply of a newer build: what the service's reload or restart does after an upgrade ----
pin_dir PINU upgrade
printf 'interface %s\nrule 9445 9443\n' "$SERVER_IF" >"$T_TMP/upgrade.conf"
expect_cli_ok "upgrade: apply with this build" server apply -f "$T_TMP/upgrade.conf" --pin-dir "$PINU"
held_echo held-upgrade
PINR=$PINU
old_ids=$(ingress_ids)
if [[ -x $NEWER/build/bpfredir ]]; then
	CLI_OUT=$(in_ns server "$NEWER/build/bpfredir" apply -f "$T_TMP/upgrade.conf" --pin-dir "$PINU" 2>&1)
	check "upgrade: apply of a newer build replaces the programs in place" "$CLI_OUT" \
		grep -qx "programs replaced by this build, maps kept" <<<"$CLI_OUT"
	CLI_OUT=$(in_ns server "$NEWER/build/bpfredir" apply -f "$T_TMP/upgrade.conf" --pin-dir "$PINU" 2>&1)
	check "upgrade: the same again changes nothing" "$CLI_OUT" test "$CLI_OUT" = "nothing to change"
fi
check "upgrade: other programs at ingress" "before $old_ids, after $(ingress_ids)" \
	test "$old_ids" != "$(ingress_ids)" -a -n "$(ingress_ids)"
expect_rules "upgrade: the rules are kept" server "$PINU" "9445 9443 tcp true"
touch "$T_TMP/go-held-upgrade"
wait "$held"
check "upgrade: a connection open across the upgrade still works" "$(cat "$T_TMP/held-upgrade.out")" \
	grep -qx after "$T_TMP/held-upgrade.out"
expect_cli_ok "upgrade: unload" server unload --pin-dir "$PINU"

# --- --cgroup without a path: the cgroup2 root ---------------------------------------------
# The root is that of the cgroup2 mount in /proc/self/mounts. The host's would redirect every
# process on the host, so the loader runs where the root is a cgroup of this test's: in a
# cgroup namespace rooted at CGNS, with cgroup2 mounted afresh in a mount namespace of its own.
if t_need cgroupns "--cgroup with no path: the cgroup2 root of the loader's namespaces"; then
	cgroup_add CGNS nsroot
	pin_dir PINROOT root
	# in_cgroupns CMD...: CMD in the server's network namespace and those namespaces.
	in_cgroupns() {
		# shellcheck disable=SC2016 # expanded by the inner shell
		in_cgroup server "$CGNS" unshare --cgroup --mount --propagation private sh -c \
			'umount -l "$1" && mount -t cgroup2 cgroup2 "$1" && shift && exec "$@"' \
			in-cgroupns "$CGROUP2" "$@"
	}
	CLI_OUT=$(in_cgroupns timeout "$T_CLI_TIMEOUT" "$BPFREDIR" load --cgroup --pin-dir "$PINROOT" 2>&1)
	rc=$?
	check "load --cgroup with no path, in a cgroup namespace" "exit $rc: $CLI_OUT" test "$rc" -eq 0
	t_progs_record "$PINROOT"
	CLI_OUT=$(in_cgroupns timeout "$T_CLI_TIMEOUT" "$BPFREDIR" status --json --pin-dir "$PINROOT" 2>&1)
	# shellcheck disable=SC2016 # jq variables
	check "--cgroup with no path means the cgroup2 root from /proc/self/mounts" "$CLI_OUT" \
		json_matches --arg root "$CGROUP2" '.cgroups | length == 1 and .[0].path == $root'
	cli server status --json --pin-dir "$PINROOT"
	# shellcheck disable=SC2016 # jq variables
	check "... which was the namespace's root: this test's cgroup, seen from the host" "$CLI_OUT" \
		json_matches --arg cg "$CGNS" --argjson id "$(stat -c %i "$CGNS")" \
		'.cgroups | length == 1 and .[0].path == $cg and .[0].id == $id'
	expect_cli_ok "add on the root-attached instance" server add 8445 8443 --pin-dir "$PINROOT"
	expect "root-attached: a process in the namespace's root cgroup is redirected" ok \
		"https://127.0.0.1:8445" in_cgroup server "$CGNS"
	expect "root-attached: a process outside it is not" refused "https://127.0.0.1:8445" \
		in_cgroup server "$CG"
	expect_cli_ok "unload the root-attached instance" server unload --pin-dir "$PINROOT"
	expect "after unload: 127.0.0.1:8445 refused again" refused "https://127.0.0.1:8445" \
		in_cgroup server "$CGNS"
fi

# --- applies killed midway ---------------------------------------------------------------
# Attached is not acting: apply attaches what its file adds (inert), switches the whole rule
# set, which names the interfaces and cgroups that act, then detaches what the file dropped.
# Killed anywhere, the host must behave exactly as the old file or the new one says.
cgroup_add CG2 b
pin_dir PINA kapply
CG_ID=$(stat -c %i "$CG")
CG2_ID=$(stat -c %i "$CG2")
# kconf NAME CGROUP RULE: a file for srv0, that cgroup and that one rule.
kconf() {
	printf '# written by lifecycle.sh\ninterface %s\ncgroup %s\nrule %s\n' \
		"$SERVER_IF" "$2" "$3" >"$T_TMP/$1.conf"
	printf '%s' "$T_TMP/$1.conf"
}
X=$(kconf x "$CG" "8445 8443")
Y=$(kconf y "$CG2" "8446 8443")
# behaves LABEL X|Y: external and local clients get exactly what that file says.
behaves() {
	local pub=8445 other=8446 on=$CG off=$CG2
	[[ $2 == Y ]] && pub=8446 other=8445 on=$CG2 off=$CG
	expect "$1: external client reaches the service on $pub" ok "$SRV:$pub" "${client[@]}"
	expect "$1: external client refused on $other" refused "$SRV:$other" "${client[@]}"
	expect "$1: local client in ${on##*/} redirected from $pub" ok "https://127.0.0.1:$pub" \
		in_cgroup server "$on"
	expect "$1: local client in ${off##*/} not redirected from $pub" refused \
		"https://127.0.0.1:$pub" in_cgroup server "$off"
}
# killed_apply FILE POINT: apply FILE, killed by BPFREDIR_FAILPOINT at POINT. Only the test
# build of the loader has failpoints.
FAILPOINTS_BIN=$T_REPO/build/tests/bpfredir-failpoints
[[ -x $FAILPOINTS_BIN ]] || t_abort "not built: $FAILPOINTS_BIN (run: make tests-build)"
killed_apply() {
	in_ns server env BPFREDIR_FAILPOINT="$2" timeout "$T_CLI_TIMEOUT" "$FAILPOINTS_BIN" apply \
		-f "$1" --pin-dir "$PINA" >/dev/null 2>&1
	KILL_RC=$?
}
# expect_cgroup NAME ID WANT: status --json shows cgroup ID as WANT: active, inactive (attached
# but not acting) or absent.
expect_cgroup() {
	local got
	cli server status --json --pin-dir "$PINA"
	got=$(json_get --argjson id "$2" '[.cgroups[] | select(.id == $id)]
		| if length == 0 then "absent" elif .[0].active then "active" else "inactive" end')
	check "$1" "status shows it $got" test "$got" = "$3"
}

expect_cli_ok "apply X (8445, cgroup a)" server apply -f "$X" --pin-dir "$PINA"
behaves "after apply X" X

killed_apply "$Y" apply-attached
check "apply Y killed after attaching cgroup b" "exit $KILL_RC" test "$KILL_RC" -eq 137
behaves "apply Y killed after attaching: still X" X
expect_rules "apply Y killed after attaching: rules still X" server "$PINA" "8445 8443 tcp true"
expect_cgroup "apply Y killed after attaching: cgroup b attached but inactive" "$CG2_ID" inactive
cli server apply -f "$Y" --pin-dir "$PINA"
check "apply Y after the kill: cgroup b made active" "$(cli_result) out: $CLI_OUT" \
	grep -qx -- "+ cgroup $CG2" <<<"$CLI_OUT"
behaves "apply Y after the kill" Y
expect_cgroup "apply Y after the kill: cgroup a detached" "$CG_ID" absent

killed_apply "$X" apply-switched
check "apply X killed after switching" "exit $KILL_RC" test "$KILL_RC" -eq 137
behaves "apply X killed after switching: already X" X
expect_cgroup "apply X killed after switching: cgroup b still attached, inactive" "$CG2_ID" inactive
cli server apply -f "$X" --pin-dir "$PINA"
check "apply X again detaches what the kill left" "$(cli_result) out: $CLI_OUT" \
	grep -qx -- "- cgroup id $CG2_ID (left inert by an interrupted run)" <<<"$CLI_OUT"
expect_cgroup "apply X again: cgroup b gone" "$CG2_ID" absent
cli server apply -f "$X" --pin-dir "$PINA"
check "apply X a third time changes nothing" "$(cli_result) out: $CLI_OUT" \
	test "$CLI_RC" -eq 0 -a "$CLI_OUT" = "nothing to change"

# attach and detach settle what a kill left too.
killed_apply "$Y" apply-attached
expect_cli_ok "attach takes in the cgroup a killed apply left inert" server attach \
	--cgroup "$CG2" --pin-dir "$PINA"
expect_cgroup "after attach: cgroup b active" "$CG2_ID" active
expect "after attach: local client in b redirected" ok "https://127.0.0.1:8445" \
	in_cgroup server "$CG2"
expect_cli_error "attach of an active cgroup" 1 "already attached" server attach \
	--cgroup "$CG2" --pin-dir "$PINA"
killed_apply "$X" apply-switched
expect_cgroup "apply X killed after switching: cgroup b inactive again" "$CG2_ID" inactive
expect_cli_ok "detach removes an inactive cgroup" server detach --cgroup "$CG2" --pin-dir "$PINA"
expect_cgroup "after detach: cgroup b gone" "$CG2_ID" absent

# Killed at whatever moment the clock gives: the host is X or Y, never a mix.
want=Y
for delay in 0.001 0.003 0.006 0.01 0.02 0.04; do
	file=$X
	[[ $want == Y ]] && file=$Y
	# nsenter execs the loader, so $! is the loader itself (in_ns, a function, would make $!
	# a subshell and leave the loader running).
	nsenter --net="$(ns_path server)" -- "$BPFREDIR" apply -f "$file" --pin-dir "$PINA" \
		>/dev/null 2>&1 &
	sleep "$delay"
	kill -9 $! 2>/dev/null
	wait $! 2>/dev/null
	list_json server "$PINA"
	state=X
	[[ $(rules_of) == "8446 8443 tcp true" ]] && state=Y
	behaves "apply $want killed after ${delay}s (found $state)" "$state"
	expect_cli_ok "apply $want killed after ${delay}s: apply again settles" server apply \
		-f "$file" --pin-dir "$PINA"
	[[ $want == Y ]] && want=X || want=Y
done
# The normal build has no failpoints: the variable changes nothing.
expect_cli_ok "apply X before the normal build's turn" server apply -f "$X" --pin-dir "$PINA"
in_ns server env BPFREDIR_FAILPOINT=apply-attached timeout "$T_CLI_TIMEOUT" "$BPFREDIR" apply \
	-f "$Y" --pin-dir "$PINA" >/dev/null 2>"$T_TMP/nofail.err"
rc=$?
check "the normal build ignores BPFREDIR_FAILPOINT" "exit $rc: $(head -c 300 "$T_TMP/nofail.err")" \
	test "$rc" -eq 0
behaves "after the normal build's apply Y" Y
expect_cli_ok "unload the killed-apply instance" server unload --pin-dir "$PINA"

# --- loads killed midway -----------------------------------------------------------------
pin_dir PINK kill
# ingress_progs: how many bpfredir programs srv0's ingress runs (see ingress_ids).
ingress_progs() { ingress_ids | tr , '\n' | grep -c .; }
# The kills are timed by how long a whole load takes here, most of them to land mid-run (which
# is checked), the last after the load is done.
load_time_ms load_ms server "$PINK" --iface "$SERVER_IF" --cgroup "$CG"
echo "# a whole load takes ${load_ms} ms here"
landed=0 delays=0
for pct in 0 2 5 10 20 30 45 60 75 90 120; do
	delay=$(awk -v ms="$load_ms" -v pct="$pct" 'BEGIN { printf "%.3f", ms * pct / 100000 }')
	nsenter --net="$(ns_path server)" -- "$BPFREDIR" load --iface "$SERVER_IF" --cgroup "$CG" \
		--pin-dir "$PINK" >/dev/null 2>&1 &
	loader=$!
	sleep "$delay"
	kill -9 "$loader" 2>/dev/null
	wait "$loader" 2>/dev/null
	# 137: the kill landed while the load ran; anything else, the load was over by then.
	(($? == 137)) && landed=$((landed + 1))
	delays=$((delays + 1))
	cli server status --json --pin-dir "$PINK"
	if [[ $CLI_RC -eq 0 ]]; then
		state=loaded
	else
		state=absent
	fi
	# Whatever the kill left, load (or the state it found) must end with exactly one of ours.
	[[ $state == loaded ]] || cli server load --iface "$SERVER_IF" --cgroup "$CG" --pin-dir "$PINK"
	check "load killed after ${delay}s: $state, then exactly one program at ingress" \
		"$(cli_result) ingress: $(ingress_progs)" test "$(ingress_progs)" = 1
	expect_cli_ok "load killed after ${delay}s: add 8445 8443" server add 8445 8443 --pin-dir "$PINK"
	expect "load killed after ${delay}s: redirect works once loaded" ok "$SRV:8445" "${client[@]}"
	cli server unload --pin-dir "$PINK"
	check "load killed after ${delay}s: unload leaves no pin dir" "$(cli_result)" test ! -e "$PINK"
done
check "loads killed mid-run: at least 6 of $delays" "$landed were killed before they ended" \
	test "$landed" -ge 6
cli server load --iface "$SERVER_IF" --pin-dir "$PINK"
bpftool map show pinned "$PINK/maps/policy" >/dev/null 2>&1 && rm "$PINK/maps/policy"
expect_cli_error "a load cut short before its marker reads as not loaded" 1 "not loaded" \
	server list --pin-dir "$PINK"
cli server load --iface "$SERVER_IF" --pin-dir "$PINK"
check "the next load cleans up and loads" "$(cli_result)" \
	grep -q "removed what an interrupted run left" <<<"$CLI_ERR"
check "after the cleanup: exactly one program at ingress" "ingress: $(ingress_progs)" \
	test "$(ingress_progs)" = 1
expect_cli_ok "unload after the cleanup" server unload --pin-dir "$PINK"

# --- other tcx programs -------------------------------------------------------------------
# A foreign program at each tcx hook of srv0 (tests/tools/foreign.c): ours go first at
# ingress and at egress, status marks the foreign ones, and unload leaves them attached.
# (coexist.sh checks that they still see the traffic.)
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

# --- foreign pin dir ---------------------------------------------------------------------
pin_dir PINF foreign
mkdir -p "$PINF/not-ours"
chmod 700 "$PINF"
expect_cli_error "a pin dir with foreign entries is refused" 1 "holds 'not-ours'.*refusing" \
	server load --iface "$SERVER_IF" --pin-dir "$PINF"
check "the refused pin dir is untouched" "$(ls "$PINF")" test "$(ls "$PINF")" = not-ours
rmdir "$PINF/not-ours" "$PINF"

# --- help ----------------------------------------------------------------------------------
for verb in load add del list apply status stats attach detach watch unload; do
	cli - "$verb" --help
	check "$verb --help: exit 0 and its usage" "$(cli_result) $CLI_OUT" \
		grep -q "^Usage: bpfredir $verb" <<<"$CLI_OUT"
done
cli - --help
check "--help lists every verb" "$CLI_OUT" test "$(grep -cE '^bpfredir (load|add|del|list|apply|status|stats|attach|detach|watch|unload) ' <<<"$CLI_OUT")" -eq 11

# --- install / uninstall -----------------------------------------------------------------
DEST="$T_TMP/dest"
make -s -C "$T_REPO" install DESTDIR="$DEST" PREFIX=/usr >"$T_TMP/install.log" 2>&1
check "make install: binary, man page, unit, example config" "$(cat "$T_TMP/install.log")" \
	test -x "$DEST/usr/sbin/bpfredir" -a -f "$DEST/usr/share/man/man8/bpfredir.8" \
	-a -f "$DEST/lib/systemd/system/bpfredir.service" \
	-a -f "$DEST/usr/share/doc/bpfredir/bpfredir.conf.example"
check "the unit applies /etc/bpfredir.conf and unloads on stop" "$(grep Exec "$DEST/lib/systemd/system/bpfredir.service")" \
	grep -qx "ExecStart=/usr/sbin/bpfredir apply -f /etc/bpfredir.conf" "$DEST/lib/systemd/system/bpfredir.service"
check "the unit is oneshot with RemainAfterExit" "" \
	grep -q "^RemainAfterExit=yes" "$DEST/lib/systemd/system/bpfredir.service"
check "the man page renders without warnings" "$(groff -man -Tutf8 -ww "$DEST/usr/share/man/man8/bpfredir.8" 2>&1 >/dev/null)" \
	test -z "$(groff -man -Tutf8 -ww "$DEST/usr/share/man/man8/bpfredir.8" 2>&1 >/dev/null)"
# The example names eth0 and a systemd cgroup; point those at this test's, keep the rest.
sed -e "s/^interface eth0/interface $SERVER_IF/" -e "s|^cgroup .*|cgroup $CG|" \
	"$DEST/usr/share/doc/bpfredir/bpfredir.conf.example" >"$T_TMP/example.conf"
expect_cli_ok "the example config is valid (dry run)" server apply -f "$T_TMP/example.conf" \
	--dry-run --pin-dir "/sys/fs/bpf/$T_PREFIX-none"
make -s -C "$T_REPO" uninstall DESTDIR="$DEST" PREFIX=/usr >>"$T_TMP/install.log" 2>&1
check "make uninstall removes every file" "$(find "$DEST" -type f)" test -z "$(find "$DEST" -type f)"

t_finish
