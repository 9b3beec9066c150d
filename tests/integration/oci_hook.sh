#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The OCI hook as a container host runs it: podman (runc, cgroupfs manager) with the shipped
# hooks.d files (their binary path set as make install sets it), containers from a local
# busybox root filesystem in the service's network namespace, each in its own cgroup under a
# test cgroup.
#   - annotated io.bpfredir.attach=true: attached at create, its local clients redirected,
#     detached at poststop (nothing left); not annotated: the hook does not run;
#   - fail closed: a create whose attach fails stops the container, with the hook's message;
#     --fail-open lets it start unredirected;
#   - the verb alone, fed states as runtimes give them: the process's cgroup, a bundle's
#     cgroupsPath (cgroupfs path, systemd slice:prefix:name), removed cgroups, bad input;
#   - containers started and removed in a row leave pins and rule set as they were;
#   - a container attached by hand (no hook) and removed is forgotten by the next command;
#   - a container's cgroup attached by the hook inside an attached parent: redirected once.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_annotated test_not_annotated test_fail_closed test_states test_container_churn
	test_removed_unhooked test_nested"
t_depends test_annotated test_states
t_depends test_not_annotated test_states
t_depends test_fail_closed test_states
t_depends test_container_churn test_states
t_depends test_removed_unhooked test_states
t_depends test_nested test_states

CONTAINERS=20

setup_tests() {
	t_require podman runc socat jq
	[[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 ||
		t_abort "no static /bin/busybox (run: sudo make deps)"
	netns_add server
	# The service: one line back to each client, on the target port.
	server server 8443 tcp socat TCP-LISTEN:8443,fork,reuseaddr SYSTEM:'echo served'
	cgroup_add CGA instance
	cgroup_add CGP containers
	pin_dir PIN main
	POD_ROOT=$T_TMP/containers
	POD_RUN=$(mktemp -d "/run/$T_PREFIX-pod.XXXXXX") || t_abort "no run root for podman under /run"
	make_rootfs
	HOOKS=$T_TMP/hooks.d
	mkdir -p "$HOOKS"
	local hook
	for hook in attach detach; do
		sed "s|@SBINDIR@|$(dirname "$BPFREDIR")|" "$T_REPO/scripts/dist/oci/bpfredir-$hook.json" \
			>"$HOOKS/bpfredir-$hook.json"
	done
	expect_cli_ok "load --cgroup (socket-only; containers get their own by the hook)" \
		server load --cgroup "$CGA" --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 --hide-local" server add 8445 8443 --hide-local --pin-dir "$PIN"
}

# pod ARGS...: podman with a store of this test's own, so the host's containers are never
# listed nor touched, and with the vfs driver, which works on any file system: the default
# overlay refuses an overlayfs root, such as a kernel guest's (tests/kernels/run.sh). The
# containers run from --rootfs, so the driver stores nothing of theirs. Short paths under
# /run: conmon's sockets live under the run root.
pod() {
	podman --root "$POD_ROOT" --runroot "$POD_RUN/storage" --tmpdir "$POD_RUN/libpod" \
		--storage-driver vfs "$@"
}

# make_rootfs: a container root of static busybox alone.
make_rootfs() {
	ROOTFS=$T_TMP/rootfs
	mkdir -p "$ROOTFS"/{bin,etc,proc,sys,dev,tmp}
	cp /bin/busybox "$ROOTFS/bin/"
	for tool in sh nc cat sleep echo true; do
		ln -s busybox "$ROOTFS/bin/$tool"
	done
	echo 'root:x:0:0:root:/:/bin/sh' >"$ROOTFS/etc/passwd"
	echo 'root:x:0:' >"$ROOTFS/etc/group"
}

teardown_tests() {
	local name
	[[ -n ${POD_RUN:-} ]] || return 0
	for name in $(pod ps -a --format '{{.Names}}' 2>/dev/null); do
		pod rm -f -t 0 "$name" >/dev/null 2>&1
	done
	# What the store mounted (its run root's tmpfs mounts) goes before the directories.
	findmnt -rn -o TARGET | awk -v run="$POD_RUN/" -v root="$POD_ROOT/" \
		'index($0, run) == 1 || index($0, root) == 1' | sort -r | xargs -r umount -l
	rm -rf "$POD_RUN"
}

# run_container NAME HOOKS_DIR [ANNOTATION...] -- CMD: podman run -d, as a container host
# runs it (runc, cgroupfs, the service's network namespace, a cgroup under CGP). RUN_RC and
# RUN_ERR; the container's name is $T_PREFIX-NAME.
run_container() {
	local name=$T_PREFIX-$1 hooks=$2 args=()
	shift 2
	while (($# > 0)) && [[ $1 != -- ]]; do
		args+=(--annotation "$1")
		shift
	done
	shift
	# nofile and nproc: podman's defaults exceed this machine's hard limits.
	RUN_ERR=$(pod --runtime runc --cgroup-manager cgroupfs --hooks-dir "$hooks" run -d \
		--name "$name" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
		--network "ns:$(ns_path server)" --cgroup-parent "${CGP#"$CGROUP2"}" "${args[@]}" \
		--rootfs "$ROOTFS" "$@" 2>&1 >/dev/null)
	RUN_RC=$?
}

# in_container NAME CMD...: CMD in the running container; its output.
in_container() { pod exec "$T_PREFIX-$1" "${@:2}" 2>&1; }

# ask NAME PORT: what the container gets from 127.0.0.1:PORT ("served", or "failed"). nc's
# input stays open until the service has answered and closed: on an input that ends at once,
# nc may leave before reading the answer.
ask() {
	in_container "$1" sh -c "sleep 1 | nc -w 3 127.0.0.1 $2 2>/dev/null || echo failed"
}

# container_cgroup NAME: the container's cgroup2 directory.
container_cgroup() {
	local pid
	pid=$(pod inspect -f '{{.State.Pid}}' "$T_PREFIX-$1") || return 1
	printf '%s%s\n' "$CGROUP2" "$(sed -n 's/^0:://p' "/proc/$pid/cgroup")"
}

cgroup_pins() { find "$PIN/links" -name 'cgroup_*' | wc -l; }

attached_json() {
	cli server status --json --pin-dir "$PIN"
	json_get --arg p "$1" '[.cgroups[] | select(.path == $p)] | length'
}

remove_container() { pod rm -f -t 0 "$T_PREFIX-$1" >/dev/null 2>&1; }

test_annotated() {
	local before cg id got
	before=$(cgroup_pins)
	run_container web "$HOOKS" io.bpfredir.attach=true "io.bpfredir.pin-dir=$PIN" -- \
		sleep 600
	check "annotated container starts" "exit $RUN_RC: $RUN_ERR" test "$RUN_RC" -eq 0
	cg=$(container_cgroup web)
	check "it has its own cgroup under the test's" "$cg" test "${cg%/*}" = "$CGP"
	check "status: the hook attached its cgroup" "$CLI_OUT" test "$(attached_json "$cg")" -eq 1
	got=$(ask web 8445)
	check "in the container: 127.0.0.1:8445 reaches the service" "$got" test "$got" = served
	got=$(ask web 8443)
	check "in the container: 127.0.0.1:8443 refused (hide-local)" "$got" test "$got" = failed
	id=$(stat -c %i "$cg")
	remove_container web
	check "removed: poststop detached it, no pin left" "$(cgroup_pins) pins, $before before" \
		test "$(cgroup_pins)" -eq "$before" -a -z "$(find "$PIN/links" -name "cgroup_${id}_*")"
	cli server status --json --pin-dir "$PIN"
	check "status shows nothing of it" "$CLI_OUT" \
		json_matches --argjson id "$id" '[.cgroups[] | select(.id == $id)] | length == 0'
}

test_not_annotated() {
	local got
	run_container plain "$HOOKS" "io.bpfredir.pin-dir=$PIN" -- sleep 600
	check "container without io.bpfredir.attach starts" "exit $RUN_RC: $RUN_ERR" \
		test "$RUN_RC" -eq 0
	check "its cgroup is not attached" "$CLI_OUT" \
		test "$(attached_json "$(container_cgroup plain)")" -eq 0
	got=$(ask plain 8445)
	check "in it: 127.0.0.1:8445 is not redirected" "$got" test "$got" = failed
	remove_container plain
}

test_fail_closed() {
	local got none=/sys/fs/bpf/$T_PREFIX-none fo=$T_TMP/hooks-fail-open
	run_container closed "$HOOKS" io.bpfredir.attach=true "io.bpfredir.pin-dir=$none" -- \
		sleep 600
	check "attach fails: the container does not start" "exit $RUN_RC: $RUN_ERR" \
		test "$RUN_RC" -ne 0
	check "... and the runtime shows the hook's one line" "$RUN_ERR" \
		grep -q "bpfredir oci-hook: not loaded at $none" <<<"$RUN_ERR"
	remove_container closed
	mkdir -p "$fo"
	jq '.hook.args += ["--fail-open"]' "$HOOKS/bpfredir-attach.json" >"$fo/bpfredir-attach.json"
	run_container open "$fo" io.bpfredir.attach=true "io.bpfredir.pin-dir=$none" -- sleep 600
	check "--fail-open: the container starts" "exit $RUN_RC: $RUN_ERR" test "$RUN_RC" -eq 0
	got=$(ask open 8445)
	check "... unredirected" "$got" test "$got" = failed
	remove_container open
}

# hook STAGE [ARGS...] <<<STATE: the verb as a runtime runs it; CLI_RC, CLI_OUT, CLI_ERR.
hook() {
	CLI_OUT=$(timeout "$T_CLI_TIMEOUT" "$BPFREDIR" oci-hook "$@" --pin-dir "$PIN" \
		2>"$T_TMP/hook.err")
	CLI_RC=$?
	CLI_ERR=$(cat "$T_TMP/hook.err")
}

test_states() {
	local cg pid bundle slice scope id
	cgroup_add CGS state
	sleep 600 &
	pid=$!
	T_PIDS+=("$pid")
	echo "$pid" >"$CGS/cgroup.procs"
	hook create <<<"$(printf '{"ociVersion":"1.0.2","id":"s1","status":"creating","pid":%d,"bundle":"/none"}' "$pid")"
	check "create: the process's cgroup attached" "$(cli_result)" \
		test "$CLI_RC" -eq 0 -a "$(attached_json "$CGS")" -eq 1
	hook create <<<"$(printf '{"id":"s1","pid":%d}' "$pid")"
	check "create again: already attached is done" "$(cli_result) $CLI_OUT" \
		eval '[[ $CLI_RC -eq 0 && $CLI_OUT == "already attached to cgroup $CGS" ]]'
	kill "$pid"
	wait "$pid" 2>/dev/null
	bundle=$T_TMP/bundle
	mkdir -p "$bundle"
	printf '{"linux":{"cgroupsPath":"%s"}}' "${CGS#"$CGROUP2"}" >"$bundle/config.json"
	hook poststop <<<"$(printf '{"id":"s1","status":"stopped","pid":0,"bundle":"%s"}' "$bundle")"
	check "poststop: the bundle's cgroupsPath detached" "$(cli_result)" \
		test "$CLI_RC" -eq 0 -a "$(attached_json "$CGS")" -eq 0
	hook poststop <<<"$(printf '{"id":"s1","pid":0,"bundle":"%s"}' "$bundle")"
	check "poststop again: not attached is done" "$(cli_result) $CLI_OUT" \
		eval '[[ $CLI_RC -eq 0 && $CLI_OUT == "not attached to cgroup $CGS" ]]'

	# systemd's form: slice:prefix:name is SLICE-PATH/prefix-name.scope.
	slice=bpfredirtest$$.slice
	mkdir "$CGROUP2/$slice" && T_CGROUPS+=("$CGROUP2/$slice") || t_abort "mkdir $slice failed"
	scope=$CGROUP2/$slice/pfx-ctr1.scope
	mkdir "$scope" && T_CGROUPS+=("$scope") || t_abort "mkdir $scope failed"
	expect_cli_ok "attach a systemd-style scope" server attach --cgroup "$scope" --pin-dir "$PIN"
	id=$(stat -c %i "$scope")
	rmdir "$scope"
	printf '{"linux":{"cgroupsPath":"%s:pfx:ctr1"}}' "$slice" >"$bundle/config.json"
	hook poststop <<<"$(printf '{"id":"s2","pid":0,"bundle":"%s"}' "$bundle")"
	check "poststop, slice:prefix:name of a removed scope: done" "$(cli_result) $CLI_OUT" \
		eval '[[ $CLI_RC -eq 0 && $CLI_OUT == "cgroup $scope does not exist: nothing is attached there" ]]'
	check "... and nothing of it is left" "$(find "$PIN/links" -name "cgroup_${id}_*")" \
		test -z "$(find "$PIN/links" -name "cgroup_${id}_*")"

	hook create <<<'not json'
	check "bad state: exit 1, one line" "$(cli_result)" \
		eval '[[ $CLI_RC -eq 1 && $CLI_ERR == "bpfredir oci-hook: the container state on stdin is not a JSON object: "* ]]'
	hook create <<<'{"id":"x"}'
	check "no pid, no bundle: exit 1 saying so" "$(cli_result)" \
		eval '[[ $CLI_RC -eq 1 && $CLI_ERR == "bpfredir oci-hook: the container state has no pid and no bundle" ]]'
	printf '{"linux":{"cgroupsPath":"relative/path"}}' >"$bundle/config.json"
	hook poststop <<<"$(printf '{"id":"s3","bundle":"%s"}' "$bundle")"
	check "a cgroupsPath it cannot use: exit 1 naming it" "$(cli_result)" \
		eval '[[ $CLI_RC -eq 1 && $CLI_ERR == *"cannot use linux.cgroupsPath '"'"'relative/path'"'"'"* ]]'
	cli - oci-hook </dev/null
	check "no stage: usage error" "$(cli_result)" test "$CLI_RC" -eq 2
	cli - oci-hook start </dev/null
	check "an unknown stage: usage error" "$(cli_result)" test "$CLI_RC" -eq 2
}

test_container_churn() {
	local before i
	before=$(cgroup_pins)
	for ((i = 0; i < CONTAINERS; i++)); do
		run_container "churn$i" "$HOOKS" io.bpfredir.attach=true "io.bpfredir.pin-dir=$PIN" -- \
			true
		if ((RUN_RC != 0)); then
			fail "container $((i + 1)) of $CONTAINERS" "exit $RUN_RC: $RUN_ERR"
			return
		fi
		pod wait "$T_PREFIX-churn$i" >/dev/null 2>&1
		remove_container "churn$i"
	done
	pass "$CONTAINERS annotated containers run and removed"
	check "pins as before" "$(cgroup_pins), $before before" test "$(cgroup_pins)" -eq "$before"
	cli server status --json --pin-dir "$PIN"
	check "the live set holds the instance's cgroup only" "$CLI_OUT" \
		json_matches '.cgroup_use.attached == 1'
}

test_removed_unhooked() {
	local cg id got
	run_container byhand "$HOOKS" -- sleep 600
	check "a container without the annotation starts" "exit $RUN_RC: $RUN_ERR" test "$RUN_RC" -eq 0
	cg=$(container_cgroup byhand)
	id=$(stat -c %i "$cg")
	expect_cli_ok "attach its cgroup by hand" server attach --cgroup "$cg" --pin-dir "$PIN"
	got=$(ask byhand 8445)
	check "redirected" "$got" test "$got" = served
	remove_container byhand
	cli server status --pin-dir "$PIN"
	check "podman rm: status says removed, nothing else" "$CLI_OUT" \
		grep -q "removed cgroup (id $id)" <<<"$CLI_OUT"
	expect_cli_ok "the next command (add)" server add 9300 9301 --pin-dir "$PIN"
	check "... forgets it" "stderr: $CLI_ERR" grep -q "forgot 1 removed cgroup" <<<"$CLI_ERR"
	check "... pins and all" "$(find "$PIN/links" -name "cgroup_${id}_*")" \
		test -z "$(find "$PIN/links" -name "cgroup_${id}_*")"
	expect_cli_ok "del 9300" server del 9300 --pin-dir "$PIN"
}

test_nested() {
	local got
	expect_cli_ok "attach the containers' parent cgroup" server attach --cgroup "$CGP" \
		--pin-dir "$PIN"
	run_container inner "$HOOKS" io.bpfredir.attach=true "io.bpfredir.pin-dir=$PIN" -- sleep 600
	check "the hook attaches the container inside it" "$CLI_OUT" \
		test "$(attached_json "$(container_cgroup inner)")" -eq 1
	got=$(ask inner 8445)
	check "redirected once: 8445 reaches the service" "$got" test "$got" = served
	got=$(ask inner 8443)
	check "and 8443 refused (hide-local)" "$got" test "$got" = failed
	remove_container inner
	expect_cli_ok "detach the parent" server detach --cgroup "$CGP" --pin-dir "$PIN"
}

t_run_tests oci_hook "$@"
