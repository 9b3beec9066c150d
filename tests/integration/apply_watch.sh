#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# apply -f FILE --watch as a fleet runs it: the file applied at start and on each change,
# whether an editor renames a new file over it or a Kubernetes ConfigMap volume swaps its
# ..data symlink; a bad file costs one line naming FILE:LINE:COLUMN and the rules in force
# stay; systemd's notify protocol says when it is ready; SIGTERM stops it with the rules left
# in place.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_start test_editor test_bad_file test_configmap test_stop"
t_depends test_editor test_start
t_depends test_bad_file test_start
t_depends test_configmap test_start
t_depends test_stop test_start

setup_tests() {
	t_require python3 curl
	t_topology
	https_server server
	pin_dir PIN main
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
	DIR=$T_TMP/etc
	mkdir -m 0755 "$DIR"
	CONF=$DIR/bpfredir.conf
	LOG=$T_TMP/watch.log
	NOTIFIED=$T_TMP/notified
}

# write_conf FILE RULE...: FILE with the server's interface and RULEs, as an editor saves it:
# a new file renamed over the old.
write_conf() {
	local file=$1
	shift
	{
		printf 'interface %s\n' "$SERVER_IF"
		printf 'rule %s\n' "$@"
	} >"$file.new" && chmod 0644 "$file.new" && mv "$file.new" "$file"
}

# applied N: the watcher has logged N applies.
applied() { [[ $(grep -c ' applied: ' "$LOG") -ge $1 ]]; }

# wait_log NAME PATTERN: the watcher's log gets a line matching PATTERN within 10 s.
wait_log() { check "$1" "$(cat "$LOG")" wait_for 10 grep -qE -- "$2" "$LOG"; }

test_start() {
	write_conf "$CONF" "8445 8443"
	# A notify socket as systemd's: each datagram the watcher sends, one a line.
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    open(sys.argv[2], "a").write(s.recv(4096).decode() + "\n")
' "$T_TMP/notify.sock" "$NOTIFIED" &
	T_PIDS+=("$!")
	wait_for 5 test -S "$T_TMP/notify.sock" || t_abort "the notify socket did not appear"
	# nsenter and env exec: $! is the watcher itself.
	nsenter --net="$(ns_path server)" -- env NOTIFY_SOCKET="$T_TMP/notify.sock" "$BPFREDIR" \
		apply -f "$CONF" --watch --pin-dir "$PIN" >"$LOG" 2>&1 &
	WATCHER=$!
	T_PIDS+=("$WATCHER")
	t_progs_record "$PIN"
	check "the first apply is logged in one line" "$(cat "$LOG")" wait_for 10 applied 1
	check "systemd is told READY=1" "$(cat "$NOTIFIED" 2>&1)" \
		wait_for 5 grep -qx READY=1 "$NOTIFIED"
	t_progs_record "$PIN"
	expect "8445 reaches the service" ok "$SRV:8445/" "${client[@]}"
	expect "8443 is hidden" dropped "$SRV:8443/" "${client[@]}"
	expect_cli_error "--watch with --dry-run: usage error" 2 "--watch and --dry-run" \
		server apply -f "$CONF" --watch --dry-run --pin-dir "$PIN"
}

test_editor() {
	write_conf "$CONF" "8445 8443" "8446 8443"
	check "an editor's rename is applied" "$(cat "$LOG")" wait_for 10 applied 2
	check "... logged with its change" "$(tail -n1 "$LOG")" \
		grep -qx "bpfredir apply: $CONF applied: 1 change" <(grep ' applied: ' "$LOG" | tail -n1)
	expect "the new rule works: 8446" ok "$SRV:8446/" "${client[@]}"
	touch "$CONF"
	sleep 1
	check "a touch that changes nothing applies nothing" "$(cat "$LOG")" \
		test "$(grep -c ' applied: ' "$LOG")" -eq 2
}

test_bad_file() {
	local lines
	lines=$(wc -l <"$LOG")
	printf 'interface %s\nrule 8445 8443\nrule 8447 nonsense\n' "$SERVER_IF" >"$CONF.new" &&
		chmod 0644 "$CONF.new" && mv "$CONF.new" "$CONF"
	wait_log "a bad file: one line naming FILE:LINE:COLUMN" "^bpfredir apply: $CONF:3:[0-9]+: "
	wait_log "... and that the rules in force stay" "$CONF not applied; the rules in force stay"
	check "the watcher runs on" "pid $WATCHER" kill -0 "$WATCHER"
	check "two lines for the bad file" "$(tail -n +$((lines + 1)) "$LOG")" \
		test "$(tail -n +$((lines + 1)) "$LOG" | wc -l)" -eq 2
	expect "the last good rules stay: 8446 works" ok "$SRV:8446/" "${client[@]}"
	write_conf "$CONF" "8445 8443"
	check "fixed: applied" "$(cat "$LOG")" wait_for 10 applied 3
	expect "8446 is gone" refused "$SRV:8446/" "${client[@]}"
}

# A ConfigMap volume: DIR/bpfredir.conf -> ..data/bpfredir.conf, ..data -> ..<timestamp>/,
# and an update makes a new ..<timestamp>/ and renames a new symlink over ..data.
test_configmap() {
	local cm=$T_TMP/configmap n
	mkdir -m 0755 "$cm" "$cm/..v1"
	write_conf "$cm/..v1/bpfredir.conf" "8445 8443"
	ln -s ..v1 "$cm/..data"
	ln -s ..data/bpfredir.conf "$cm/bpfredir.conf"
	kill "$WATCHER"
	wait "$WATCHER" 2>/dev/null
	CONF=$cm/bpfredir.conf
	: >"$LOG"
	nsenter --net="$(ns_path server)" -- "$BPFREDIR" apply -f "$CONF" --watch --pin-dir "$PIN" \
		>"$LOG" 2>&1 &
	WATCHER=$!
	T_PIDS+=("$WATCHER")
	check "a ConfigMap's file is applied at start" "$(cat "$LOG")" wait_for 10 applied 1
	mkdir -m 0755 "$cm/..v2"
	write_conf "$cm/..v2/bpfredir.conf" "8445 8443" "8448 8443"
	ln -s ..v2 "$cm/..data_tmp" && mv -T "$cm/..data_tmp" "$cm/..data"
	check "the ..data swap is applied" "$(cat "$LOG")" wait_for 10 applied 2
	expect "the ConfigMap's new rule works: 8448" ok "$SRV:8448/" "${client[@]}"
	n=$(grep -c ' applied: ' "$LOG")
	rm -rf "$cm/..v1"
	sleep 1
	check "removing the old version changes nothing" "$(cat "$LOG")" \
		test "$(grep -c ' applied: ' "$LOG")" -eq "$n"
}

test_stop() {
	local rc
	kill -TERM "$WATCHER"
	wait "$WATCHER"
	rc=$?
	check "SIGTERM: exit 0" "exit $rc: $(tail -n2 "$LOG")" test "$rc" -eq 0
	check "... saying the rules stay" "$(tail -n1 "$LOG")" \
		grep -q "stopped watching $CONF; the rules in force stay" "$LOG"
	expect "the rules stay in place: 8448 works" ok "$SRV:8448/" "${client[@]}"
	expect "... 8443 stays hidden" dropped "$SRV:8443/" "${client[@]}"
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

t_run_tests apply_watch "$@"
