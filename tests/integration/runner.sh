#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# tests/run.sh and the named tests of tests/lib/harness.sh: asked for something that does
# not exist, a usage error (one line on stderr, nothing on stdout, exit status 2, no test
# run); a test asked for runs after the tests it depends on; a failure names its test.
set -uo pipefail
# shellcheck source=tests/lib/harness.sh
. "$(dirname "$0")/../lib/harness.sh"

ALL_TESTS="test_unknown_name test_unknown_test test_empty_test test_unknown_option
	test_script_unknown_test test_script_list test_depends test_failure_named"

# toy ARGS...: a script of three named tests in T_TMP (b depends on a, c fails), run with
# ARGS; its stdout and stderr in TOY_OUT and TOY_ERR, its exit status in TOY_RC.
toy() {
	cat >"$T_TMP/toy.sh" <<EOF
. "$T_LIB/harness.sh"
ALL_TESTS="test_a test_b test_c"
t_depends test_b test_a
test_a() { pass "a ran"; }
test_b() { pass "b ran"; }
test_c() { fail "c ran" "as it must"; }
t_run_tests toy "\$@"
EOF
	TOY_OUT=$(bash "$T_TMP/toy.sh" "$@" 2>"$T_TMP/toy.err")
	TOY_RC=$?
	TOY_ERR=$(cat "$T_TMP/toy.err")
}

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

test_depends() {
	toy test_b
	expect_eq "a test asked for runs after the one it depends on, alone" \
		"PASS: a ran,PASS: b ran" "$(paste -sd, - <<<"$TOY_OUT")" "toy.sh test_b (rc $TOY_RC)"
}

test_failure_named() {
	toy
	expect_eq "a failing script exits 1" 1 "$TOY_RC" "toy.sh"
	check "a failure names its test function and how to run it alone" "stderr: $TOY_ERR" \
		grep -qx '# toy:test_c failed (alone: tests/run.sh toy:test_c)' <<<"$TOY_ERR"
	check "the script's last line names the failed tests" "stderr: $TOY_ERR" \
		grep -qx 'toy: 2 passed, 1 failed, 0 skipped (failed: test_c)' <<<"$TOY_ERR"
}

t_run_tests runner "$@"
