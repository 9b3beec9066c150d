#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# tests/run.sh and the named tests of tests/lib/harness.sh, asked for something that does
# not exist: a usage error, one line on stderr, nothing on stdout, exit status 2, and no
# test run.
set -uo pipefail
# shellcheck source=tests/lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"

ALL_TESTS="test_unknown_name test_unknown_test test_empty_test test_unknown_option
	test_script_unknown_test test_script_list"

# usage_error NAME PATTERN CMD...: CMD exits 2 with exactly one line on stderr matching the
# extended regex PATTERN, and nothing on stdout.
usage_error() {
	local name=$1 pattern=$2 out err rc lines
	shift 2
	out=$(cd "$T_REPO" && timeout 60 "$@" 2>"$T_TMP/err")
	rc=$?
	err=$(cat "$T_TMP/err")
	lines=$(printf '%s' "$err" | grep -c '')
	if ((rc != 2)); then
		fail "$name" "$*: expected exit 2, got $rc (stderr: $(head -c 300 <<<"$err"))"
	elif ((lines != 1)); then
		fail "$name" "$*: expected one line on stderr, got $lines: $err"
	elif ! grep -Eq -- "$pattern" <<<"$err"; then
		fail "$name" "$*: stderr does not match /$pattern/: $err"
	else
		expect_eq "$name" "" "$out" "$*: stdout"
	fi
}

test_unknown_name() {
	usage_error "run.sh: an unknown NAME" '^tests/run.sh: no test no_such_test ' \
		tests/run.sh seed_scenario no_such_test
}

test_unknown_test() {
	usage_error "run.sh: an unknown FILE:TEST" \
		'^tests/run.sh: no test test_nope in tests/integration/seed_scenario.sh \(tests: test_' \
		tests/run.sh seed_scenario:test_load tests/integration/seed_scenario.sh:test_nope
}

test_empty_test() {
	usage_error "run.sh: FILE: without a test" '^tests/run.sh: seed_scenario:: no test named' \
		tests/run.sh seed_scenario:
}

test_unknown_option() {
	usage_error "run.sh: an unknown option" '^tests/run.sh: usage: tests/run.sh \[--quick' \
		tests/run.sh --no-such-option
}

test_script_unknown_test() {
	usage_error "a script asked for an unknown test" '^seed_scenario: no test test_nope \(tests: ' \
		bash tests/integration/seed_scenario.sh test_load test_nope
}

test_script_list() {
	local out
	out=$(bash "$T_REPO/tests/integration/seed_scenario.sh" --list 2>&1)
	expect_eq "a script's --list names its tests, one a line" "test_before_load test_load" \
		"$(head -n2 <<<"$out" | paste -sd' ')" "seed_scenario.sh --list"
}

t_run_tests runner "$@"
