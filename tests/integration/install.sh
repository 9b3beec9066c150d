#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What is shipped: --help for every verb, and make install/uninstall into a DESTDIR (binary,
# man pages, systemd unit, an example config that applies).
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_help test_docs test_install"

setup_tests() {
	t_topology
	cgroup_add CG a
}

# --- help ----------------------------------------------------------------------------------
test_help() {
	for verb in load add del list apply status stats attach detach watch unload oci-hook; do
		cli - "$verb" --help
		check "$verb --help: exit 0 and its usage" "$(cli_result) $CLI_OUT" \
			grep -q "^Usage: bpfredir $verb" <<<"$CLI_OUT"
	done
	cli - --help
	check "--help lists every verb" "$CLI_OUT" test "$(grep -cE '^bpfredir (load|add|del|list|apply|status|stats|attach|detach|watch|unload|oci-hook) ' <<<"$CLI_OUT")" -eq 12
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
	check "make install: binary, man pages, unit, example config" "$(cat "$T_TMP/install.log")" \
		test -x "$DEST/usr/sbin/bpfredir" -a -f "$DEST/usr/share/man/man8/bpfredir.8" \
		-a -f "$DEST/lib/systemd/system/bpfredir.service" \
		-a -f "$DEST/usr/share/man/man5/bpfredir.conf.5" \
		-a -f "$DEST/usr/share/doc/bpfredir/bpfredir.conf.example"
	check "the unit applies /etc/bpfredir.conf and unloads on stop" "$(grep Exec "$DEST/lib/systemd/system/bpfredir.service")" \
		grep -qx "ExecStart=/usr/sbin/bpfredir apply -f /etc/bpfredir.conf" "$DEST/lib/systemd/system/bpfredir.service"
	local hook
	for hook in attach detach; do
		hook=$DEST/usr/share/containers/oci/hooks.d/bpfredir-$hook.json
		check "make install: ${hook##*/}, valid JSON naming the installed binary" \
			"$(cat "$hook" 2>&1)" jq -e '.hook.path == "/usr/sbin/bpfredir" and
				.when.annotations["^io\\.bpfredir\\.attach$"] == "^true$"' "$hook"
	done
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

t_run_tests install "$@"
