#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The Debian package as an operator gets it: make deb builds it (lintian finds no error),
# apt-get installs it, the installed bpfredir loads, redirects and unloads, and a purge
# leaves nothing of it.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_build test_install test_purge"
t_depends test_install test_build
t_depends test_purge test_install

setup_tests() {
	t_require dpkg-buildpackage lintian apt-get
	# The test installs and purges the package: never over an operator's own.
	if dpkg-query -W -f='${db:Status-Abbrev}' bpfredir 2>/dev/null | grep -q '^i'; then
		t_abort "a bpfredir package is installed on this machine; the test would replace it"
	fi
	t_topology
	https_server server
	pin_dir PIN main
	SRV=https://$SERVER_ADDR
	client=(in_ns client)
	# Its own output dir: the build neither waits for nor disturbs the tree's .output.
	OUT=$T_TMP/out
}

teardown_tests() {
	if dpkg-query -W -f='${db:Status-Abbrev}' bpfredir 2>/dev/null | grep -q '^i'; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q bpfredir >/dev/null 2>&1
	fi
}

test_build() {
	local out
	out=$(make -s -C "$T_REPO" deb OUTPUT="$OUT" 2>&1)
	check "make deb: built, lintian finds no error" "$out" test $? -eq 0
	DEB=$(find "$OUT/deb" -name 'bpfredir_*.deb' 2>/dev/null | head -n1)
	check "... into OUTPUT/deb/" "$(ls "$OUT/deb" 2>&1)" test -f "$DEB"
	out=$(git -C "$T_REPO" status --porcelain --ignored --untracked-files=all -- debian |
		grep '^[?!]')
	check "the source tree gained nothing under debian/" "$out" test -z "$out"
	check "the config is a conffile in /etc/bpfredir" "$(dpkg-deb -f "$DEB" Package)" \
		eval 'dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | grep -qx /etc/bpfredir/bpfredir.conf'
}

test_install() {
	local out
	[[ -f ${DEB:-} ]] || { fail "install" "no package was built"; return; }
	out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$DEB" 2>&1)
	check "apt-get install ./bpfredir_*.deb" "$(tail -n5 <<<"$out")" test $? -eq 0
	dpkg -L bpfredir >"$T_TMP/files"
	check "installed: /usr/sbin/bpfredir --version" "$(/usr/sbin/bpfredir --version 2>&1)" \
		eval '/usr/sbin/bpfredir --version | grep -q "^bpfredir "'
	for file in /usr/share/man/man8/bpfredir.8.gz /lib/systemd/system/bpfredir.service \
		/usr/share/bash-completion/completions/bpfredir \
		/usr/share/containers/oci/hooks.d/bpfredir-attach.json /etc/bpfredir/bpfredir.conf; do
		check "installed: $file" "" test -f "$file"
	done
	check "the units read /etc/bpfredir/bpfredir.conf" \
		"$(grep ExecStart /lib/systemd/system/bpfredir.service)" \
		grep -qx "ExecStart=/usr/sbin/bpfredir apply -f /etc/bpfredir/bpfredir.conf" \
		/lib/systemd/system/bpfredir.service
	in_ns server /usr/sbin/bpfredir load --iface "$SERVER_IF" --pin-dir "$PIN" >/dev/null 2>&1
	check "the installed bpfredir loads" "" test $? -eq 0
	t_progs_record "$PIN"
	in_ns server /usr/sbin/bpfredir add 8445 8443 --pin-dir "$PIN" >/dev/null 2>&1
	check "... and adds a rule" "" test $? -eq 0
	expect "8445 reaches the service" ok "$SRV:8445/" "${client[@]}"
	expect "8443 is hidden" dropped "$SRV:8443/" "${client[@]}"
	in_ns server /usr/sbin/bpfredir unload --pin-dir "$PIN" >/dev/null 2>&1
	check "... and unloads" "" test $? -eq 0 -a ! -e "$PIN"
}

test_purge() {
	local out left
	out=$(DEBIAN_FRONTEND=noninteractive apt-get purge -y -q bpfredir 2>&1)
	check "apt-get purge bpfredir" "$(tail -n5 <<<"$out")" test $? -eq 0
	left=$(while read -r path; do
		[[ -d $path || ! -e $path ]] || echo "$path"
	done <"$T_TMP/files")
	check "no file of the package is left" "$left" test -z "$left"
	check "/etc/bpfredir is gone" "" test ! -e /etc/bpfredir
	check "dpkg knows it no more" "" \
		eval '! dpkg-query -W -f="\${db:Status-Abbrev}" bpfredir 2>/dev/null | grep -q "^[ic]"'
}

t_run_tests deb "$@"
