#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The pin dir as root sees it: bpfredir acts there as root, and whoever can write next to it
# may have prepared it. Symlinks are never followed, a directory that is not root's alone or
# is a bpffs mount's root is refused, the lock survives an unload under its waiters, and
# read-only verbs change nothing.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_symlinks test_owner_mode_mount_root test_lock test_read_only_verbs"

victim_whole() { [[ -e $VICTIM/a && -e $VICTIM/b ]]; }

# planted NAME SUB: a pin dir, root's and 0700, whose SUB is a symlink to the victim.
planted() {
	pin_dir "$1" "$2"
	mkdir -m 0700 "${!1}" && ln -s "$VICTIM" "${!1}/$3" || t_abort "cannot plant ${!1}/$3"
}

setup_tests() {
	t_topology

	# A directory elsewhere, with files, that a planted symlink points at: it must stay whole.
	VICTIM="$T_TMP/victim"
	mkdir "$VICTIM" && touch "$VICTIM/a" "$VICTIM/b" || t_abort "cannot make $VICTIM"
}

# --- symlinks ----------------------------------------------------------------------------
test_symlinks() {
	for sub in links progs maps; do
		planted PIN "sym-$sub" "$sub"
		expect_cli_error "unload: $sub a symlink: refused" 1 "$sub is a symlink.*refusing" \
			server unload --pin-dir "$PIN"
		check "unload: $sub a symlink: what it points at is untouched" "$(ls -A "$VICTIM")" victim_whole
		expect_cli_error "load: $sub a symlink: refused" 1 "$sub is a symlink.*refusing" \
			server load --iface "$SERVER_IF" --pin-dir "$PIN"
		check "load: $sub a symlink: what it points at is untouched" "$(ls -A "$VICTIM")" victim_whole
		check "load: $sub a symlink: nothing attached" "$(in_ns server bpftool net show dev "$SERVER_IF")" \
			test -z "$(attached_progs server "$SERVER_IF")"
	done

	pin_dir REAL real
	mkdir -m 0700 "$REAL" || t_abort "mkdir $REAL"
	pin_dir LINKED linked
	ln -s "$REAL" "$LINKED" || t_abort "ln -s $REAL $LINKED"
	expect_cli_error "load: the pin dir a symlink: refused" 1 "is a symlink.*refusing" \
		server load --iface "$SERVER_IF" --pin-dir "$LINKED"
	check "load: the pin dir a symlink: its target stays empty" "$(ls -A "$REAL")" test -z "$(ls -A "$REAL")"
}

# --- owner, mode, mount root -------------------------------------------------------------
test_owner_mode_mount_root() {
	pin_dir PIN nobody
	mkdir -m 0700 "$PIN" && chown 65534 "$PIN" || t_abort "cannot make $PIN"
	expect_cli_error "load: pin dir owned by nobody: refused" 1 "owned by uid 65534.*refusing" \
		server load --iface "$SERVER_IF" --pin-dir "$PIN"
	check "load: pin dir owned by nobody: left empty" "$(ls -A "$PIN")" test -z "$(ls -A "$PIN")"

	pin_dir PIN open
	mkdir -m 0755 "$PIN" || t_abort "cannot make $PIN"
	expect_cli_error "load: pin dir mode 0755: refused" 1 "mode 0755.*0700" \
		server load --iface "$SERVER_IF" --pin-dir "$PIN"
	check "load: pin dir mode 0755: mode left alone" "$(stat -c %a "$PIN")" test "$(stat -c %a "$PIN")" = 755
	expect_cli_error "status: pin dir mode 0755: refused" 1 "mode 0755" \
		server status --pin-dir "$PIN"

	expect_cli_error "--pin-dir /sys/fs/bpf/ (the mount itself): usage error" 2 "trailing" \
		server load --iface "$SERVER_IF" --pin-dir /sys/fs/bpf/
	expect_cli_error "--pin-dir /sys/fs/bpf/. : usage error" 2 "'\.' or '\.\.'" \
		server load --iface "$SERVER_IF" --pin-dir /sys/fs/bpf/.
	expect_cli_error "--pin-dir .../x/../y: usage error" 2 "'\.' or '\.\.'" \
		server unload --pin-dir "/sys/fs/bpf/$T_PREFIX-x/../$T_PREFIX-y"
	expect_cli_error "--pin-dir /sys/fs/bpf: the bpffs root refused" 1 "root of a bpffs mount" \
		server unload --pin-dir /sys/fs/bpf

	# A bpffs mounted on the pin dir is a mount's root too; mounted in a mount namespace of its
	# own, so nothing outside this test sees it.
	pin_dir PIN mnt
	mkdir -m 0700 "$PIN" || t_abort "cannot make $PIN"
	# shellcheck disable=SC2016 # expanded by the inner shell
	out=$(unshare --mount --propagation private -- sh -c \
		'mount -t bpf -o mode=0700 bpf "$1" && nsenter --net="$2" -- "$3" load --iface "$4" --pin-dir "$1"' \
		mnt "$PIN" "$(ns_path server)" "$BPFREDIR" "$SERVER_IF" 2>&1)
	rc=$?
	check "load: a bpffs mount's root as pin dir: refused" "exit $rc: $out" \
		eval '[[ $rc -eq 1 && $out == *"not a mount'"'"'s root"* ]]'
}

# --- the lock ----------------------------------------------------------------------------
# waiter_has_open DIR ARGS: a bpfredir process whose command line has ARGS holds DIR open
# (a command waiting for DIR's lock polls it through that fd).
waiter_has_open() {
	local pid fd

	for pid in $(pgrep -f -- "$2"); do
		for fd in /proc/"$pid"/fd/*; do
			[[ $(readlink "$fd" 2>/dev/null) == "$1" ]] && return 0
		done
	done
	return 1
}

test_lock() {
	pin_dir PIN lock
	expect_cli_ok "lock: load" server load --iface "$SERVER_IF" --pin-dir "$PIN"
	flock -x "$PIN" sleep 4 &
	T_PIDS+=("$!")
	wait_for 2 eval '! flock -n -x "$PIN" true' || t_abort "flock did not take $PIN"
	start=$SECONDS
	# (An assignment before a shell function reaches the commands it runs.)
	BPFREDIR_LOCK_TIMEOUT=1 expect_cli_error "lock: held by another: gives up after BPFREDIR_LOCK_TIMEOUT" \
		1 "has held .* for 1 s" server add 8445 8443 --pin-dir "$PIN"
	expect_cli_ok "lock: held by another: add waits for it" server add 8445 8443 --pin-dir "$PIN"
	elapsed=$((SECONDS - start))
	check "lock: waited for the holder, not for the default timeout" "took ${elapsed}s" \
		eval '((elapsed >= 2 && elapsed < 25))'
	wait

	# A waiter whose pin dir is moved away and made anew while it waits works in the new one.
	# The holder lets go only once the new instance is loaded, and the dir is moved only
	# once the waiter has it open: on a slow machine (a guest under emulation) neither a
	# command's start nor a load fits in a fixed sleep.
	pin_dir OLD lock-old
	flock -x "$PIN" sh -c 'while [ ! -e "$1" ]; do sleep 0.1; done' sh "$T_TMP/release" &
	holder=$!
	T_PIDS+=("$holder")
	wait_for 2 eval '! flock -n -x "$PIN" true' || t_abort "flock did not take $PIN"
	in_ns server timeout "$T_CLI_TIMEOUT" "$BPFREDIR" add 9445 9443 --pin-dir "$PIN" \
		>"$T_TMP/waiter.out" 2>&1 &
	waiter=$!
	wait_for 20 waiter_has_open "$PIN" "add 9445 9443" ||
		t_abort "the waiting add never opened $PIN: $(cat "$T_TMP/waiter.out")"
	mv "$PIN" "$OLD" || t_abort "mv $PIN $OLD"
	expect_cli_ok "lock: a new instance where the old one was" server load --iface "$SERVER_IF" \
		--pin-dir "$PIN"
	touch "$T_TMP/release"
	wait "$holder"
	wait "$waiter"
	rc=$?
	check "lock: the waiter succeeded" "exit $rc: $(cat "$T_TMP/waiter.out")" test "$rc" -eq 0
	list_json server "$PIN"
	check "lock: the waiter's rule went to the instance the path names now" "$CLI_OUT" \
		json_matches '[.rules[] | .public_port] == [9445]'
	list_json server "$OLD"
	check "lock: the moved-away instance did not get it" "$CLI_OUT" \
		json_matches '[.rules[] | .public_port] == [8445]'
	expect_cli_ok "lock: unload the moved-away instance" server unload --pin-dir "$OLD"
	expect_cli_ok "lock: unload" server unload --pin-dir "$PIN"
}

# --- read-only verbs ---------------------------------------------------------------------
# An unload cut short after its first step (the policy pin, the marker) leaves the rest;
# only a writing verb may finish it.
test_read_only_verbs() {
	pin_dir PIN ro
	expect_cli_ok "read-only: load" server load --iface "$SERVER_IF" --pin-dir "$PIN"
	cat >"$T_TMP/ro.conf" <<EOF
interface $SERVER_IF
rule 8445 8443
EOF
	chmod 0750 "$PIN"
	expect_cli_error "read-only: apply --dry-run on a pin dir of mode 0750: refused" 1 "mode 0750" \
		server apply -f "$T_TMP/ro.conf" --dry-run --pin-dir "$PIN"
	check "read-only: apply --dry-run left the mode alone" "$(stat -c %a "$PIN")" \
		test "$(stat -c %a "$PIN")" = 750
	chmod 0700 "$PIN"
	rm "$PIN/maps/policy" || t_abort "rm $PIN/maps/policy"
	cli server apply -f "$T_TMP/ro.conf" --dry-run --pin-dir "$PIN"
	check "read-only: apply --dry-run ran" "$(cli_result)" test "$CLI_RC" -eq 0
	check "read-only: apply --dry-run left the interrupted run's pins" "$(ls -A "$PIN/links")" \
		test -n "$(ls -A "$PIN/links")"
	expect_cli_error "read-only: status says not loaded" 1 "not loaded" server status --pin-dir "$PIN"
	check "read-only: status left them too" "$(ls -A "$PIN/links")" test -n "$(ls -A "$PIN/links")"
	cli server unload --pin-dir "$PIN"
	check "read-only: unload finishes the interrupted run" "$(cli_result)" \
		eval '[[ $CLI_RC -eq 1 && $CLI_ERR == *"removed what an interrupted run left"* && ! -e $PIN/links ]]'
	check "read-only: nothing attached after" "$(in_ns server bpftool net show dev "$SERVER_IF")" \
		test -z "$(attached_progs server "$SERVER_IF")"
}

t_run_tests pin_dir "$@"
