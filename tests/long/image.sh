#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The container image (make image) run by podman as deploy/kubernetes/bpfredir.yaml runs it:
# the host network namespace (a test namespace here), the host's bpffs and cgroup2, the
# config from a mounted directory laid out as a ConfigMap volume, the capabilities the
# manifest names and no others, a read-only root. It applies the config and redirects real
# traffic, follows a config change, writes the textfile metrics whole, survives a container
# restart with the rules and an open connection intact, and is unloaded cleanly.
# make test-dist builds the image first (about a minute).
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_start test_follow test_restart test_unload"
t_depends test_follow test_start
t_depends test_restart test_start
t_depends test_unload test_start

IMAGE=${BPFREDIR_IMAGE:-localhost/bpfredir:$(dpkg-parsechangelog -l "$T_REPO/debian/changelog" -S Version)}

setup_tests() {
	t_require podman socat curl
	podman image exists "$IMAGE" || t_abort "no image $IMAGE (run: make image)"
	t_topology
	https_server server
	# A service that answers each line it gets, for a connection held across a restart.
	server server 9443 tcp socat TCP-LISTEN:9443,fork,reuseaddr EXEC:cat
	pin_dir PIN main
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
	NAME=$T_PREFIX-ds
	# The manifest's capabilities, so the test proves they are enough.
	CAPS=$(sed -n 's/^ *add: \[\(.*\)\]$/\1/p' "$T_REPO/deploy/kubernetes/bpfredir.yaml" |
		tr -d ' ')
	[[ -n $CAPS ]] || t_abort "no capabilities found in deploy/kubernetes/bpfredir.yaml"
	# A ConfigMap volume: bpfredir.conf -> ..data/bpfredir.conf, ..data -> ..v1.
	CM=$T_TMP/configmap
	mkdir -m 0755 "$CM" "$CM/..v1"
	conf "$CM/..v1" "8445 8443" "9445 9443"
	ln -s ..v1 "$CM/..data"
	ln -s ..data/bpfredir.conf "$CM/bpfredir.conf"
	TEXTFILE=$T_TMP/textfile
	mkdir -m 0755 "$TEXTFILE"
}

teardown_tests() {
	podman rm -f -t 0 "$NAME" >/dev/null 2>&1
	[[ -z ${HOLD_PID:-} ]] || kill "$HOLD_PID" 2>/dev/null
}

# conf DIR RULE...: DIR/bpfredir.conf with the server's interface and RULEs.
conf() {
	local dir=$1
	shift
	{
		printf 'interface %s\n' "$SERVER_IF"
		printf 'rule %s\n' "$@"
	} >"$dir/bpfredir.conf"
	chmod 0644 "$dir/bpfredir.conf"
}

# run_image: the DaemonSet's pod, as podman runs it.
run_image() {
	# nofile and nproc: podman's defaults exceed this machine's hard limits.
	podman run -d --name "$NAME" --runtime runc --ulimit nofile=1024:1024 \
		--ulimit nproc=1024:1024 --network "ns:$(ns_path server)" --read-only \
		--cap-drop all --cap-add "$CAPS" -v /sys/fs/bpf:/sys/fs/bpf \
		-v "$CGROUP2:$CGROUP2:ro" -v "$CM:/etc/bpfredir:ro" \
		-v "$TEXTFILE:/var/lib/node_exporter/textfile" \
		-e BPFREDIR_PIN_DIR="$PIN" -e BPFREDIR_INTERVAL=1 "$IMAGE" >/dev/null 2>"$T_TMP/run.err"
	RUN_RC=$?
}

# applied N: the pod has logged N applies.
applied() { [[ $(podman logs "$NAME" 2>&1 | grep -c ' applied: ') -ge $1 ]]; }

# hold_open: a connection through 9445 kept open; send LINE on it and read the answer with
# hold_echo LINE.
hold_open() {
	coproc HOLD { in_ns client socat -t 30 - "TCP:$SERVER_ADDR:9445"; }
	HOLD_PID=$HOLD_PID
}
hold_echo() {
	local got
	printf '%s\n' "$1" >&"${HOLD[1]}" || return 1
	read -r -t 5 got <&"${HOLD[0]}" || return 1
	[[ $got == "$1" ]]
}

test_start() {
	run_image
	check "the pod starts with the manifest's capabilities ($CAPS)" "$(cat "$T_TMP/run.err")" \
		test "$RUN_RC" -eq 0
	t_progs_record "$PIN"
	check "it applies the mounted config" "$(podman logs "$NAME" 2>&1)" wait_for 20 applied 1
	t_progs_record "$PIN"
	expect "8445 reaches the service" ok "$SRV:8445/" "${client[@]}"
	expect "8443 is hidden" dropped "$SRV:8443/" "${client[@]}"
	check "the textfile metrics are written" "$(ls -la "$TEXTFILE")" \
		wait_for 10 grep -q '^bpfredir_packets_total' "$TEXTFILE/bpfredir.prom"
	check "... whole: no temporary file left beside it" "$(ls "$TEXTFILE")" \
		test "$(ls "$TEXTFILE")" = bpfredir.prom
}

test_follow() {
	mkdir -m 0755 "$CM/..v2"
	conf "$CM/..v2" "8445 8443" "9445 9443" "8446 8443"
	ln -s ..v2 "$CM/..data_tmp" && mv -T "$CM/..data_tmp" "$CM/..data"
	check "a ConfigMap update is applied" "$(podman logs "$NAME" 2>&1)" wait_for 20 applied 2
	expect "its new rule works: 8446" ok "$SRV:8446/" "${client[@]}"
}

test_restart() {
	local out
	hold_open
	check "a connection through 9445 answers" "" hold_echo before
	out=$(podman restart -t 10 "$NAME" 2>&1)
	check "the pod restarts" "$out" test $? -eq 0
	check "... and applies again" "$(podman logs "$NAME" 2>&1)" wait_for 20 applied 3
	check "the connection opened before the restart still answers" "" hold_echo after
	expect "8446 still works" ok "$SRV:8446/" "${client[@]}"
	expect "8443 still hidden" dropped "$SRV:8443/" "${client[@]}"
	kill "$HOLD_PID" 2>/dev/null
	wait "$HOLD_PID" 2>/dev/null
	HOLD_PID=
}

test_unload() {
	local out
	podman rm -f -t 10 "$NAME" >/dev/null 2>&1
	expect "the pod deleted: the rules stay" ok "$SRV:8446/" "${client[@]}"
	out=$(podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
		--network "ns:$(ns_path server)" --cap-drop all --cap-add "$CAPS" \
		-v /sys/fs/bpf:/sys/fs/bpf --entrypoint bpfredir "$IMAGE" unload --pin-dir "$PIN" 2>&1)
	check "unload with the image, as the README says" "$out" test $? -eq 0 -a ! -e "$PIN"
	expect "unloaded: 8443 reachable again" ok "$SRV:8443/" "${client[@]}"
	expect "... 8445 refused" refused "$SRV:8445/" "${client[@]}"
}

t_run_tests image "$@"
