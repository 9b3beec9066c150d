#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs every unit test binary (build/tests/NAME for each tests/unit/NAME.c) and every
# integration script (tests/integration/*.sh), counts their `PASS:`, `FAIL:` and `SKIP:`
# lines, checks that this run left nothing behind, and ends with exactly
# `N passed, N failed` (`, N skipped` follows when a check was skipped). Exit status is
# non-zero when anything failed or no test ran. Needs root: `sudo make test`.
#
#   tests/run.sh [--quick | NAME[:TEST]...]
#
# NAME is a unit test (test_datapath) or an integration script (seed_scenario, or its path),
# or a suite of tests/long/ (run only when named: make test-dist, make test-churn);
# NAME:TEST runs one named test of it only: a function of the script's ALL_TESTS (with the
# tests it depends on, see tests/lib/harness.sh), or for a unit test `-t TEST` to the binary.
# --quick runs the QUICK subset below. Either way the run ends with the same checks and line.
# A NAME or TEST that does not exist is a usage error: one line on stderr, exit status 2.
#
# Another run of this suite, or another bpfredir instance, may share the host: everything a
# test makes carries this run's prefix, and what is checked at the end is this run's only.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# Every name a test of this run makes starts with this (see tests/lib/harness.sh).
export BPFREDIR_TEST_PREFIX="bpfredir-test-$$"
# shellcheck source=tests/lib/bpfredir.sh
. tests/lib/bpfredir.sh

T_NAME=run.sh
# Each test's time limit. In an emulated guest (tests/kernels/run.sh) everything takes
# several times longer: BPFREDIR_TEST_TIME_SCALE, a whole number, multiplies the limits.
TIME_SCALE=${BPFREDIR_TEST_TIME_SCALE:-1}
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

if [[ ! $TIME_SCALE =~ ^[1-9][0-9]*$ ]]; then
	fail "$T_NAME" "BPFREDIR_TEST_TIME_SCALE=$TIME_SCALE is not a whole number from 1 up"
	summary
fi
UNIT_TIMEOUT=$((120 * TIME_SCALE))
INTEGRATION_TIMEOUT=$((240 * TIME_SCALE))

# The quick subset, what each kernel's guest runs in CI (make test-kernels-quick): the unit
# tests that load every program of every object and run the datapath through them
# (BPF_PROG_TEST_RUN), and the scripts that attach them in each mode with real traffic: the
# seed scenario (default attach, tcx or clsact, and the cgroup hooks), legacy tc (clsact),
# XDP native and generic, the netns guard, and socket steering (sk_lookup, sock_ops).
QUICK=(test_datapath test_flood test_reject seed_scenario legacy_tc xdp_mode guard steering)
SELECTED=()
# The named tests asked for, by unit test or script name ("" when all of it is).
declare -A TESTS_OF=()
usage_error() {
	printf 'tests/run.sh: %s\n' "$*" >&2
	exit 2
}
case ${1:-} in
--quick) SELECTED=("${QUICK[@]}") ;;
-*) usage_error "usage: tests/run.sh [--quick | NAME[:TEST]...]" ;;
*)
	# Paths and file names name their tests too.
	for arg in "$@"; do
		name=$(basename "${arg%%:*}")
		name=${name%.sh}
		name=${name%.c}
		SELECTED+=("$name")
		[[ $arg == *:* ]] || continue
		test=${arg#*:}
		[[ -n $test && $test != *[!A-Za-z0-9_]* ]] || usage_error "$arg: no test named after the colon"
		TESTS_OF[$name]+="${TESTS_OF[$name]:+ }$test"
	done
	;;
esac
for name in "${SELECTED[@]}"; do
	if [[ ! -f tests/unit/$name.c && ! -f tests/integration/$name.sh && ! -f tests/long/$name.sh ]]; then
		usage_error "no test $name (tests/unit/$name.c, tests/integration/$name.sh, tests/long/$name.sh)"
	fi
	script=tests/integration/$name.sh
	[[ -f $script ]] || script=tests/long/$name.sh
	[[ -n ${TESTS_OF[$name]:-} && -f $script ]] || continue
	grep -q '^t_run_tests ' "$script" || usage_error "$script has no named tests"
	all=" $(bash "$script" --list | paste -sd' ') "
	for test in ${TESTS_OF[$name]}; do
		[[ $all == *" $test "* ]] || usage_error "no test $test in $script (tests:$all)"
	done
done

# selected NAME: NAME is to run this time (every test is when none was named).
selected() { ((${#SELECTED[@]} == 0)) || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }

# Tests run TEST_JOBS at a time (default 3): each script makes its own namespaces,
# cgroups and pin dirs and checks only its own programs, so they can share the host as
# several runs of the suite can; most of their time is spent waiting on the network, not the
# CPU: on 2 CPUs, three at a time keep them about two-thirds busy, and each test takes about a
# tenth longer than two at a time. The kernel guests pass their own (tests/kernels/run.sh).
TEST_JOBS=${TEST_JOBS:-3}
# The slow ones start first, so the last to finish is not one of them. scanner.sh's parallel
# nmap bursts load the CPU: not beside reject_icmp.sh, whose ICMP rate-limit bursts compare
# token buckets that refill with time; so scanner.sh comes after enough others that
# reject_icmp.sh (about 100 s) has ended when it starts.
SLOW_FIRST=(reject_icmp datapath_shapes apply upgrade client_port flow_state xdp_mode scanner crash
	local_state guard datapath_traffic)

# test_start NAME TIMEOUT CMD...: run one binary or script in the background, its output and
# exit status into files of its own; test_collect prints them and counts them.
declare -A JOB_NAME=() JOB_START=() JOB_LIMIT=()
test_start() {
	local name=$1 limit=$2 log
	shift 2
	RAN=$((RAN + 1))
	log=$(mktemp "/tmp/$BPFREDIR_TEST_PREFIX-log.XXXXXX")
	(
		timeout -k 60 "$limit" "$@" </dev/null >"$log" 2>&1
		echo $? >"$log.rc"
	) &
	JOB_NAME[$!]=$name
	JOB_START[$!]=$SECONDS
	JOB_LIMIT[$!]=$limit
	JOB_LOG[$!]=$log
}

# test_collect PID: a finished test's output, shown whole, and its PASS:/FAIL:/SKIP: lines
# added up. One that exits non-zero without a FAIL: line counts as one failure; one that
# reports no result at all counts as one failure too.
declare -A JOB_LOG=()
test_collect() {
	local pid=$1 name=${JOB_NAME[$1]} log=${JOB_LOG[$1]} rc passed failed skipped
	rc=$(cat "$log.rc" 2>/dev/null || echo 130)
	printf '### %s\n' "$name"
	cat "$log"
	TIMES+=("$(printf '%4ds %s' $((SECONDS - JOB_START[$pid])) "$name")")
	passed=$(grep -c '^PASS: ' "$log")
	failed=$(grep -c '^FAIL: ' "$log")
	skipped=$(grep -c '^SKIP: ' "$log")
	rm -f "$log" "$log.rc"
	unset "JOB_NAME[$pid]" "JOB_LOG[$pid]"
	T_PASSED=$((T_PASSED + passed))
	T_FAILED=$((T_FAILED + failed))
	T_SKIPPED=$((T_SKIPPED + skipped))
	if ((INTERRUPTED)); then
		fail "$name" "interrupted"
	elif ((rc == 124 || rc == 137)); then
		fail "$name" "timed out after ${JOB_LIMIT[$pid]}s"
	elif ((rc != 0 && failed == 0)); then
		fail "$name" "exited $rc"
	elif ((passed + failed + skipped == 0)); then
		fail "$name" "exited 0 but reported no result"
	fi
}

# test_wait: wait for one running test to end and collect it.
test_wait() {
	local pid
	wait -n -p pid "${!JOB_NAME[@]}" 2>/dev/null
	if [[ -n ${pid:-} && -n ${JOB_NAME[$pid]:-} ]]; then
		test_collect "$pid"
		return
	fi
	# No status to wait for (a job already reaped, say after a signal): a job that is gone
	# is collected as it ended, rather than waited for again and again.
	for pid in "${!JOB_NAME[@]}"; do
		kill -0 "$pid" 2>/dev/null || test_collect "$pid"
	done
}

# Interrupted: the running tests get SIGTERM (background jobs ignore SIGINT), clean up and
# exit; the run stops.
interrupt() {
	local pid
	INTERRUPTED=1
	for pid in "${!JOB_NAME[@]}"; do
		pkill -TERM -P "$pid" 2>/dev/null
	done
}

# still_loaded: the programs this run's tests recorded (see tests/lib/bpfredir.sh) that are still
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

INTERRUPTED=0
trap interrupt INT TERM
# One queue, TEST_JOBS at a time: the slow scripts first, the unit binaries (short, and busy
# on the CPU rather than waiting on the network) last, to fill the lane that frees first.
scripts=()
for name in "${SLOW_FIRST[@]}"; do
	[[ ! -f tests/integration/$name.sh ]] || scripts+=("tests/integration/$name.sh")
done
# tests/long/: suites too long for every run (their own make targets), run when named only.
for script in tests/integration/*.sh tests/long/*.sh; do
	[[ -f $script ]] || continue
	[[ " ${scripts[*]} " == *" $script "* ]] || scripts+=("$script")
done
for script in "${scripts[@]}" tests/unit/*.c; do
	((INTERRUPTED == 0)) || break
	[[ -f $script ]] || continue
	name=$(basename "${script%.*}")
	selected "$name" || continue
	[[ $script != tests/long/* || " ${SELECTED[*]} " == *" $name "* ]] || continue
	while ((${#JOB_NAME[@]} >= TEST_JOBS)); do
		test_wait
	done
	label=$script
	cmd=(bash "$script")
	limit=$INTEGRATION_TIMEOUT
	if [[ $script == tests/unit/* ]]; then
		label=build/tests/$name
		cmd=("$label")
		limit=$UNIT_TIMEOUT
		if [[ ! -x $label ]]; then
			RAN=$((RAN + 1))
			fail "$label" "not built (run: make tests-build)"
			continue
		fi
		for test in ${TESTS_OF[$name]:-}; do
			cmd+=(-t "$test")
		done
	else
		# shellcheck disable=SC2206 # the named tests, one word each
		cmd+=(${TESTS_OF[$name]:-})
	fi
	test_start "$label${TESTS_OF[$name]:+:${TESTS_OF[$name]// /,}}" "$limit" "${cmd[@]}"
done
while ((${#JOB_NAME[@]} > 0)); do
	test_wait
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
