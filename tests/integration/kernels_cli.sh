#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# tests/kernels/run.sh given a kernel it cannot use: a .deb file that is missing, not a
# package, not a kernel, or a kernel without modules or vmlinuz, and names that are no
# kernel. Each is one error line and exit 2, and leaves nothing in the kernel cache; a .deb
# that is a kernel is cached once. (Booting the kernels users run: make test-kernels.)
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_fetch_errors test_fetch_deb"
t_depends test_fetch_deb test_fetch_errors

setup_tests() {
	t_require dpkg-deb depmod
	KRUN=$T_REPO/tests/kernels/run.sh
	CACHE=$T_TMP/cache
}

# make_deb NAME PACKAGE [PATH...]: $T_TMP/NAME.deb, package PACKAGE holding empty files at
# PATH (a trailing / makes a directory).
make_deb() {
	local name=$1 pkg=$2 root=$T_TMP/deb-$1 path
	shift 2
	mkdir -p "$root/DEBIAN"
	printf 'Package: %s\nVersion: 1.0\nArchitecture: amd64\nMaintainer: bpfredir tests <tests@example.org>\nDescription: a test package\n' \
		"$pkg" >"$root/DEBIAN/control"
	for path in "$@"; do
		if [[ $path == */ ]]; then
			mkdir -p "$root/$path"
		else
			mkdir -p "$root/$(dirname "$path")" && : >"$root/$path"
		fi
	done
	dpkg-deb -b --root-owner-group "$root" "$T_TMP/$name.deb" >/dev/null 2>&1 ||
		t_abort "cannot build the test package $name"
}

# fetch SPEC: run.sh --fetch SPEC on the test's own cache; RC and OUT (stdout and stderr).
fetch() {
	OUT=$(BPFREDIR_KERNEL_CACHE=$CACHE timeout 60 "$KRUN" --fetch "$1" 2>&1)
	RC=$?
}

# expect_fetch_error NAME SPEC MESSAGE: exit 2, the last line is the error MESSAGE, any other
# line is run.sh's own progress, and the cache holds no half-fetched kernel.
expect_fetch_error() {
	local name=$1 others
	fetch "$2"
	others=$(head -n -1 <<<"$OUT" | grep -v '^kernels: fetching ')
	check "$name" "exit $RC: $OUT" test "$RC" -eq 2 -a -z "$others" -a \
		"$(tail -n1 <<<"$OUT")" = "kernels: error: $3"
	check "$name: nothing left in the cache" "$(ls -A "$CACHE" 2>&1)" \
		test -z "$(ls -A "$CACHE" 2>/dev/null)"
}

test_fetch_errors() {
	expect_fetch_error "a .deb that is not there" "$T_TMP/none.deb" "$T_TMP/none.deb: no such file"
	echo "not a package" >"$T_TMP/junk.deb"
	expect_fetch_error "a .deb that is no package" "$T_TMP/junk.deb" \
		"$T_TMP/junk.deb: not a Debian package"
	make_deb hello hello usr/bin/hello
	expect_fetch_error "a package that is no kernel" "$T_TMP/hello.deb" \
		"$T_TMP/hello.deb: hello is not a linux-image package"
	make_deb nomods linux-image-9.9.0-1-amd64 boot/vmlinuz-9.9.0-1-amd64
	expect_fetch_error "a kernel package without modules" "$T_TMP/nomods.deb" \
		"linux-image-9.9.0-1-amd64 has no lib/modules"
	make_deb noimage linux-image-9.9.0-1-amd64 lib/modules/9.9.0-1-amd64/
	expect_fetch_error "a kernel package without vmlinuz" "$T_TMP/noimage.deb" \
		"linux-image-9.9.0-1-amd64 has no vmlinuz"
	expect_fetch_error "the cloud flavour" linux-image-6.1.0-9-cloud-amd64 \
		"linux-image-6.1.0-9-cloud-amd64: the -cloud flavour has no 9p (CONFIG_NET_9P), use the generic one"
	expect_fetch_error "a name that is no kernel" bookworm \
		"bookworm: not a kernel (6.1, 6.12 or linux-image-*)"
	OUT=$("$KRUN" --bogus 2>&1)
	RC=$?
	check "an unknown option: exit 2 and the usage" "exit $RC: $(head -n3 <<<"$OUT")" \
		test "$RC" -eq 2 -a -n "$(grep -F 'tests/kernels/run.sh [--quick] [KERNEL...]' <<<"$OUT")"
}

test_fetch_deb() {
	local kdir
	make_deb kernel linux-image-9.9.0-1-amd64 boot/vmlinuz-9.9.0-1-amd64 \
		lib/modules/9.9.0-1-amd64/kernel/
	fetch "$T_TMP/kernel.deb"
	kdir=$CACHE/linux-image-9.9.0-1-amd64_1.0
	check "a kernel .deb is cached" "exit $RC: $OUT" test "$RC" -eq 0 -a -e "$kdir/ok"
	check "... with its version, series and image" "$(cat "$kdir/kver" "$kdir/series" 2>&1)" \
		test "$(cat "$kdir/kver")" = 9.9.0-1-amd64 -a "$(cat "$kdir/series")" = 9.9 -a \
		-f "$kdir/vmlinuz"
	fetch "$T_TMP/kernel.deb"
	check "... once: a second fetch takes the cached one" "exit $RC: $OUT" \
		test "$RC" -eq 0 -a -z "$(grep fetching <<<"$OUT")"
}

t_run_tests kernels_cli "$@"
