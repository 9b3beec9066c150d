#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs every unit test binary (build/tests/NAME for each tests/unit/NAME.c) and every
# integration script (tests/integration/*.sh), counts their `PASS:`, `FAIL:` and `SKIP:`
# lines, checks that this run left nothing behind, and ends with exactly
# `N passed, N failed` (`, N skipped` follows when a check was skipped). Exit status is
# non-zero when anything failed or no test ran. Needs root: `sudo make test`.
#
# Another run of this suite, or another bpfredir instance, may share the host: everything a
# test makes carries this run's prefix, and what is checked at the end is this run's only.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# Every name a test of this run makes starts with this (see tests/lib.sh).
export BPFREDIR_TEST_PREFIX="bpfredir-test-$$"
# shellcheck source=tests/lib.sh
. tests/lib.sh

T_NAME=run.sh
UNIT_TIMEOUT=120
INTEGRATION_TIMEOUT=240
RAN=0
TIMES=()

summary() {
	if ((T_SKIPPED > 0)); then
		printf '%d passed, %d failed, %d skipped\n' "$T_PASSED" "$T_FAILED" "$T_SKIPPED"
	else
		printf '%d passed, %d failed\n' "$T_PASSED" "$T_FAILED"
	fi
	((T_FAILED == 0 && T_PASSED > 0)) && exit 0
	exit 1
}

# run_test NAME TIMEOUT CMD...: run one binary or script, show its output and add up its
# PASS:/FAIL:/SKIP: lines. One that exits non-zero without a FAIL: line counts as one
# failure; one that reports no result at all counts as one failure too.
run_test() {
	local name=$1 limit=$2 log rc passed failed skipped start
	shift 2
	RAN=$((RAN + 1))
	log=$(mktemp "/tmp/$BPFREDIR_TEST_PREFIX-log.XXXXXX")
	printf '### %s\n' "$name"
	start=$SECONDS
	# --foreground: the test gets Ctrl-C itself and cleans up (its commands are all
	# bounded, so its trap runs in time); tee ignores it so the cleanup's output still
	# shows.
	timeout --foreground -k 60 "$limit" "$@" </dev/null 2>&1 | (trap '' INT TERM && exec tee "$log")
	rc=${PIPESTATUS[0]}
	TIMES+=("$(printf '%4ds %s' $((SECONDS - start)) "$name")")
	passed=$(grep -c '^PASS: ' "$log")
	failed=$(grep -c '^FAIL: ' "$log")
	skipped=$(grep -c '^SKIP: ' "$log")
	rm -f "$log"
	T_PASSED=$((T_PASSED + passed))
	T_FAILED=$((T_FAILED + failed))
	T_SKIPPED=$((T_SKIPPED + skipped))
	if ((rc == 130)); then
		# Ctrl-C: the test cleaned up and exited; the run stops. (bash runs no INT trap
		# here, as the test handled the signal itself.)
		fail "$name" "interrupted"
		INTERRUPTED=1
	elif ((rc == 124 || rc == 137)); then
		fail "$name" "timed out after ${limit}s"
	elif ((rc != 0 && failed == 0)); then
		fail "$name" "exited $rc"
	elif ((passed + failed + skipped == 0)); then
		fail "$name" "exited 0 but reported no result"
	fi
}

# still_loaded: the programs this run's tests recorded (see tests/lib.sh) that are still
# loaded, as "id name" lines; an ID now held by a program of another name is not one of ours.
still_loaded() {
	local json
	[[ -n $RUN_PROGS ]] || return 0
	json=$(bpftool_json - prog show) || { printf '%s\n' "$json"; return; }
	jq -r --arg recorded "$RUN_PROGS" '($recorded | split("\n")) as $rec | .[]
		| "\(.id) \(.name)" | select(IN($rec[]))' <<<"$json"
}

# leftovers: what this run's tests left behind, one item a line.
leftovers() {
	local cg2 p
	cg2=$(cgroup2_root)
	ip netns list 2>/dev/null | awk -v p="$BPFREDIR_TEST_PREFIX-" 'index($1, p) == 1 { print "netns " $1 }'
	[[ -z $cg2 ]] || find "$cg2" -maxdepth 1 -name "$BPFREDIR_TEST_PREFIX-*" -printf 'cgroup %p\n'
	find /sys/fs/bpf -maxdepth 1 -name "$BPFREDIR_TEST_PREFIX-*" -printf 'pin dir %p\n' 2>/dev/null
	find /tmp -maxdepth 1 -name "$BPFREDIR_TEST_PREFIX-*" -printf 'temp %p\n'
	pgrep -f -- "$BPFREDIR_TEST_PREFIX-" | while read -r p; do
		printf 'process %s\n' "$(ps -o pid=,args= -p "$p")"
	done
	still_loaded | sed 's/^/program /'
}

# shellcheck disable=SC2317 # called through wait_for
nothing_left() { [[ -z $(leftovers) ]]; }

if [[ $EUID -ne 0 ]]; then
	fail "$T_NAME" "must be run as root (sudo make test)"
	summary
fi
# Shared by this run's tests: the kernel features probed, the programs each recorded.
export BPFREDIR_TEST_RUN_DIR="/tmp/$BPFREDIR_TEST_PREFIX-run"
mkdir "$BPFREDIR_TEST_RUN_DIR" || exit 1
T_TMP=$BPFREDIR_TEST_RUN_DIR

# Interrupted: the test running finishes its cleanup, then the run stops.
INTERRUPTED=0
trap 'INTERRUPTED=1' INT TERM
for src in tests/unit/*.c; do
	((INTERRUPTED == 0)) || break
	[[ -f $src ]] || continue
	bin=build/tests/$(basename "$src" .c)
	if [[ -x $bin ]]; then
		run_test "$bin" "$UNIT_TIMEOUT" "$bin"
	else
		RAN=$((RAN + 1))
		fail "$bin" "not built (run: make tests-build)"
	fi
done
for script in tests/integration/*.sh; do
	((INTERRUPTED == 0)) || break
	[[ -f $script ]] || continue
	run_test "$script" "$INTEGRATION_TIMEOUT" bash "$script"
done

if ((RAN == 0)); then
	fail "$T_NAME" "no test found (tests/unit/*.c, tests/integration/*.sh)"
fi
RUN_PROGS=$(cat "$BPFREDIR_TEST_RUN_DIR/progs" 2>/dev/null)
rm -rf "$BPFREDIR_TEST_RUN_DIR"
T_TMP=$(mktemp -d "/tmp/bpfredir-run-$$.XXXXXX") || exit 1
# Program and link teardown is asynchronous in the kernel: give it a moment.
if wait_for 10 nothing_left; then
	pass "nothing left behind (netns, cgroups, pin dirs, temp files, processes, programs)"
else
	fail "nothing left behind" "$(leftovers | paste -sd';' -)"
fi
rm -rf "$T_TMP"
printf '# time: %s\n' "${TIMES[@]}"
summary
