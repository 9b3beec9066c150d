#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What is shipped: --help for every verb, make install/uninstall into a DESTDIR (binary,
# man pages, systemd unit, an example config that applies, OCI hooks), bash completion.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_help test_docs test_install test_completion"

setup_tests() {
	t_topology
	cgroup_add CG a
}

# --- help ----------------------------------------------------------------------------------
test_help() {
	for verb in load add del list apply status stats attach detach watch unload oci-hook import verify; do
		cli - "$verb" --help
		check "$verb --help: exit 0 and its usage" "$(cli_result) $CLI_OUT" \
			grep -q "^Usage: bpfredir $verb" <<<"$CLI_OUT"
	done
	cli - --help
	check "--help lists every verb" "$CLI_OUT" test "$(grep -cE '^bpfredir (load|add|del|list|apply|status|stats|attach|detach|watch|unload|oci-hook|import|verify) ' <<<"$CLI_OUT")" -eq 14
}

# --- docs ----------------------------------------------------------------------------------
# The synopsis in README.md and bpfredir.8 is written from the help (make docs); a help
# changed without it would leave the docs promising the old command line.
test_docs() {
	local out rc

	out=$("$T_REPO/scripts/docs.py" --check "$BPFREDIR" 2>&1)
	rc=$?
	check "README.md and bpfredir.8: the synopsis is the binary's help (make docs)" "$out" \
		test "$rc" -eq 0
}

# --- install / uninstall -----------------------------------------------------------------
test_install() {
	DEST="$T_TMP/dest"
	make -s -C "$T_REPO" install DESTDIR="$DEST" PREFIX=/usr >"$T_TMP/install.log" 2>&1
	check "make install: binary, man pages, unit, example config, completion" \
		"$(cat "$T_TMP/install.log")" \
		test -x "$DEST/usr/sbin/bpfredir" -a -f "$DEST/usr/share/man/man8/bpfredir.8" \
		-a -f "$DEST/lib/systemd/system/bpfredir.service" \
		-a -f "$DEST/usr/share/man/man5/bpfredir.conf.5" \
		-a -f "$DEST/usr/share/doc/bpfredir/bpfredir.conf.example" \
		-a -f "$DEST/usr/share/bash-completion/completions/bpfredir"
	check "the unit applies /etc/bpfredir.conf and unloads on stop" "$(grep Exec "$DEST/lib/systemd/system/bpfredir.service")" \
		grep -qx "ExecStart=/usr/sbin/bpfredir apply -f /etc/bpfredir.conf" "$DEST/lib/systemd/system/bpfredir.service"
	local hook
	for hook in attach detach; do
		hook=$DEST/usr/share/containers/oci/hooks.d/bpfredir-$hook.json
		check "make install: ${hook##*/}, valid JSON naming the installed binary" \
			"$(cat "$hook" 2>&1)" jq -e '.hook.path == "/usr/sbin/bpfredir" and
				.when.annotations["^io\\.bpfredir\\.attach$"] == "^true$"' "$hook"
	done
	check "bpfredir-apply-watch.service: Type=notify, apply --watch" \
		"$(cat "$DEST/lib/systemd/system/bpfredir-apply-watch.service" 2>&1)" eval \
		'grep -qx "ExecStart=/usr/sbin/bpfredir apply -f /etc/bpfredir.conf --watch" \
			"$DEST/lib/systemd/system/bpfredir-apply-watch.service" &&
		grep -qx "Type=notify" "$DEST/lib/systemd/system/bpfredir-apply-watch.service"'
	check "the unit is oneshot with RemainAfterExit" "" \
		grep -q "^RemainAfterExit=yes" "$DEST/lib/systemd/system/bpfredir.service"
	local page warnings
	for page in man8/bpfredir.8 man5/bpfredir.conf.5; do
		warnings=$(groff -man -Tutf8 -ww "$DEST/usr/share/man/$page" 2>&1 >/dev/null)
		check "${page#*/} renders without warnings" "$warnings" test -z "$warnings"
	done
	# The example names eth0 and a systemd cgroup; point those at this test's, keep the rest.
	sed -e "s/^interface eth0/interface $SERVER_IF/" -e "s|^cgroup .*|cgroup $CG|" \
		"$DEST/usr/share/doc/bpfredir/bpfredir.conf.example" >"$T_TMP/example.conf"
	expect_cli_ok "the example config is valid (dry run)" server apply -f "$T_TMP/example.conf" \
		--dry-run --pin-dir "/sys/fs/bpf/$T_PREFIX-none"
	make -s -C "$T_REPO" uninstall DESTDIR="$DEST" PREFIX=/usr >>"$T_TMP/install.log" 2>&1
	check "make uninstall removes every file" "$(find "$DEST" -type f)" test -z "$(find "$DEST" -type f)"
}

# --- bash completion -------------------------------------------------------------------------
# complete WORD...: what the shipped completion offers for the command line WORD... (the last
# word being completed), space-separated.
complete_line() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	PATH=$(dirname "$BPFREDIR"):$PATH bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
		_bpfredir; echo "${COMPREPLY[*]}"' - "$T_REPO/scripts/dist/bpfredir.bash-completion" "$@"
}

# expect_completion NAME WANT WORD...: the completion of WORD... is exactly WANT.
expect_completion() {
	local name=$1 want=$2 got
	shift 2
	got=$(complete_line "$@")
	check "completion: $name" "got '$got', want '$want'" test "$got" = "$want"
}

test_completion() {
	local verbs
	verbs=$("$BPFREDIR" --help | sed -nE 's/^bpfredir ([a-z][a-z-]*)( .*)?$/\1/p' | paste -sd' ')
	expect_completion "the verbs, as --help lists them" "$verbs" bpfredir ""
	expect_completion "a verb begun" "status stats" bpfredir --pin-dir /tmp stat
	expect_completion "add's options" "--addr --hide-local --no-hide --pin-dir --proto --reject --help" \
		bpfredir add 8445 8443 --
	expect_completion "--proto's values" "tcp udp" bpfredir add 8445 8443 --proto ""
	expect_completion "--mode's values" "tc xdp" bpfredir load --mode ""
	expect_completion "--steering's values" "packet socket" bpfredir load --steering ""
	expect_completion "oci-hook's stages" "create poststop" bpfredir oci-hook ""
	expect_completion "--flows takes a number: nothing listed" "" bpfredir load --flows ""
	mkdir -p "$T_TMP/comp" && : >"$T_TMP/comp/gate.pkts"
	expect_completion "verify --packets: files" "$T_TMP/comp/gate.pkts" \
		bpfredir verify --packets "$T_TMP/comp/g"
	expect_completion "verify's options" \
		"--host --json --packet --packets --pin-dir --xdp --help" bpfredir verify --
	expect_completion "--iface: the interfaces" "$(ls /sys/class/net | paste -sd' ')" \
		bpfredir load --iface ""
	pin_dir PIN main
	expect_cli_ok "load, for del's ports" server load --iface "$SERVER_IF" --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443" server add 8445 8443 --pin-dir "$PIN"
	expect_cli_ok "add 5353 5354 udp" server add 5353 5354 --proto udp --pin-dir "$PIN"
	expect_completion "del: the rules' public ports" "5353 8445" \
		bpfredir del --pin-dir "$PIN" ""
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

t_run_tests install "$@"
