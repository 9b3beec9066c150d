#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The loaders of the older commits the upgrade tests load first (UPGRADE_COMMITS in
# tests/lib/bpfredir.sh), each built once into build/tests/old/COMMIT (make tests-build), so
# no test compiles one: in a kernel guest that is a compile under emulation. A commit this
# clone's history lacks (a shallow clone, a tarball) is left out; the test that needs it says so.
#
#   tests/tools/old_builds.sh
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

(($# == 0)) || {
	echo "usage: $0" >&2
	exit 2
}
rc=0
for commit in "${UPGRADE_COMMITS[@]}"; do
	git -C "$T_REPO" cat-file -e "$commit^{commit}" 2>/dev/null || continue
	path=$(old_build_path "$commit")
	[[ -x $path ]] && continue
	printf '  %-8s %s\n' OLD "${path#"$T_REPO"/}"
	old_build "$commit" || rc=1
done
exit "$rc"
