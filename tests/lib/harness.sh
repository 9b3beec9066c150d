# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The test harness, the floor of tests/lib/: reporting, setup and cleanup, kernel feature
# probes, and named tests (t_run_tests). net.sh, bpfredir.sh and packets.sh build on it.
#
# Reporting: every check prints exactly `PASS: <name>` or `FAIL: <name>: <detail>`; a check
# this kernel cannot run prints `SKIP: <name>: needs <feature>` (see t_has).
#
# Everything a test makes (namespaces, cgroups, pin dirs, background servers, temp files) is
# registered here (net.sh and bpfredir.sh register into these lists) and removed by the EXIT
# trap, even when the test fails or is killed.
#
# Other suites and bpfredir instances may run on the same host at the same time: a test only
# ever counts and checks what is its own (see bpfredir.sh, "this test's programs"), and never
# attaches anything outside its own namespaces and cgroups.

[[ -z ${T_LIB_HARNESS:-} ]] || return 0
T_LIB_HARNESS=1
T_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T_REPO=$(cd "$T_LIB/../.." && pwd)
BPFREDIR=${BPFREDIR:-$T_REPO/build/bpfredir}
# The integration tests' helper programs (python, run in the namespaces).
# shellcheck disable=SC2034 # used by bpfredir.sh, packets.sh and the scripts
T_HELPERS=$T_REPO/tests/integration/helpers
# Someone else's TC programs (tests/tools/foreign.c, built by make tests-build).
T_FOREIGN=$T_REPO/build/tests/tools/foreign
# A loaded instance's pending table, read and cleared (tests/tools/pending_table.c).
# shellcheck disable=SC2034 # used by bpfredir.sh
T_PENDING_TABLE=$T_REPO/build/tests/tools/pending_table
# Unique per process; tests/run.sh exports BPFREDIR_TEST_PREFIX to tag a whole run.
T_PREFIX="${BPFREDIR_TEST_PREFIX:-bpfredir-test}-$$"
T_CLI_TIMEOUT=30

T_PASSED=0
T_FAILED=0
T_SKIPPED=0
T_NETNS=()
T_CGROUPS=()
T_PIN_DIRS=()
T_BPFFS_DIRS=()
T_PIDS=()
T_TMP=

# --- reporting -------------------------------------------------------------------------

pass() {
	printf 'PASS: %s\n' "$1"
	T_PASSED=$((T_PASSED + 1))
}

# fail NAME DETAIL...: the detail is squeezed onto the one line.
fail() {
	local name=$1
	shift
	printf 'FAIL: %s: %s\n' "$name" "$(printf '%s' "$*" | tr '\n' ' ' | sed 's/ *$//')"
	T_FAILED=$((T_FAILED + 1))
}

# check NAME DETAIL CMD...: PASS when CMD succeeds, else FAIL with DETAIL.
check() {
	local name=$1 detail=$2
	shift 2
	if "$@"; then
		pass "$name"
	else
		fail "$name" "$detail"
	fi
}

# skip NAME FEATURE: the check NAME is not run, as this kernel lacks FEATURE. Only for a
# kernel feature the check needs beyond what bpfredir itself requires (that fails instead).
skip() {
	printf 'SKIP: %s: needs %s\n' "$1" "$2"
	T_SKIPPED=$((T_SKIPPED + 1))
}

# A test that cannot run fails loudly; it never skips.
t_abort() {
	fail "$T_NAME" "$*"
	[[ -z ${T_TEST:-} ]] || printf '# %s:%s aborted\n' "$T_NAME" "$T_TEST" >&2
	exit 1
}

# expect_eq NAME WANT GOT [DETAIL]: PASS when GOT is exactly WANT, else FAIL saying both.
expect_eq() {
	if [[ $3 == "$2" ]]; then
		pass "$1"
	else
		fail "$1" "${4:+$4: }expected '$2', got '$3'"
	fi
}


# t_skip_all FEATURE: none of this script can run on this kernel; said once, counted once.
t_skip_all() {
	skip "$T_NAME" "$1"
	exit 0
}

# Exit status of a test script: non-zero when any check failed, or none ran nor was skipped.
t_finish() {
	printf '%s: %d passed, %d failed, %d skipped%s\n' "$T_NAME" "$T_PASSED" "$T_FAILED" \
		"$T_SKIPPED" "${T_FAILED_TESTS[*]:+ (failed: ${T_FAILED_TESTS[*]})}" >&2
	((T_FAILED == 0 && T_PASSED + T_SKIPPED > 0))
}

# --- setup and cleanup -------------------------------------------------------------------

cgroup2_root() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts
}

# t_require TOOL...: every tool must be there, else the test fails.
t_require() {
	local tool missing=()
	for tool in "$@"; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	((${#missing[@]} == 0)) || t_abort "missing tools: ${missing[*]} (run: sudo make deps)"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
	local tries=$(($1 * 10))
	shift
	while ! "$@"; do
		((--tries > 0)) || return 1
		sleep 0.1
	done
}

# --- kernel features ---------------------------------------------------------------------
# Each feature a test needs beyond what bpfredir requires is probed once per run: the answer
# goes in a file under BPFREDIR_TEST_RUN_DIR (tests/run.sh sets it; a script run alone probes
# into its own temp dir). A check whose feature is missing is skipped (`skip`), loudly.

# feature_text FEATURE: what the SKIP line says is needed.
feature_text() {
	case $1 in
	tcx) echo "tcx (kernel 6.6)" ;;
	clsact) echo "the clsact qdisc (CONFIG_NET_SCH_INGRESS)" ;;
	cls_bpf) echo "cls_bpf filters (CONFIG_NET_CLS_BPF)" ;;
	cls_u32) echo "u32 filters (CONFIG_NET_CLS_U32)" ;;
	cgroupns) echo "cgroup namespaces (CONFIG_CGROUPS, unshare --cgroup)" ;;
	cgroup_v1) echo "a cgroup v1 hierarchy mounted" ;;
	netfilter) echo "netfilter BPF links (CONFIG_NETFILTER_BPF_LINK, Linux 6.4)" ;;
	*) echo "$1" ;;
	esac
}

# probe_refused: the error of the last probe (in $T_TMP/probe.err) is the kernel not knowing
# the thing asked for, not some other failure.
probe_refused() { grep -Eqi 'unknown|not found|not supported|invalid argument' "$T_TMP/probe.err"; }

# probe_FEATURE: 0 when the kernel has it, 1 when it has not, 2 when the probe itself failed
# (its error in $T_TMP/probe.err). The tc ones run in a network namespace that vanishes after.
probe_tcx() {
	"$T_FOREIGN" probe tcx 2>"$T_TMP/probe.err"
}
probe_clsact() {
	unshare --net tc qdisc add dev lo clsact 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_cls_bpf() {
	unshare --net sh -c 'tc qdisc add dev lo clsact &&
		tc filter add dev lo ingress bpf bytecode "1,6 0 0 0,"' 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_cls_u32() {
	unshare --net sh -c 'tc qdisc add dev lo clsact &&
		tc filter add dev lo ingress protocol ip u32 match u32 0 0' 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_cgroupns() {
	unshare --cgroup true 2>"$T_TMP/probe.err" && return 0
	probe_refused && return 1
	return 2
}
probe_netfilter() {
	bpftool -j feature probe kernel 2>"$T_TMP/probe.err" >"$T_TMP/probe.json" || return 2
	jq -e '.program_types.have_netfilter_prog_type' "$T_TMP/probe.json" >/dev/null
}
probe_cgroup_v1() {
	[[ -n $(awk '$3 == "cgroup" { print $2; exit }' /proc/self/mounts) ]]
}

# t_has FEATURE: 0 when this kernel has FEATURE (see feature_text). A probe that fails for
# another reason than the feature missing aborts the test.
t_has() {
	local dir=${BPFREDIR_TEST_RUN_DIR:-$T_TMP}/features rc
	if [[ ! -e $dir/$1 ]]; then
		mkdir -p "$dir" || t_abort "mkdir $dir failed"
		"probe_$1"
		rc=$?
		((rc <= 1)) || t_abort "probing $(feature_text "$1") failed: $(head -c 300 "$T_TMP/probe.err")"
		echo "$rc" >"$dir/$1"
	fi
	[[ $(cat "$dir/$1") == 0 ]]
}

# t_need FEATURE NAME: true when the kernel has FEATURE; else the check NAME is skipped.
t_need() {
	t_has "$1" && return 0
	skip "$2" "$(feature_text "$1")"
	return 1
}

# tc_kind: where bpfredir attaches TC programs by default on this kernel, as bpftool's `net

# t_init NAME: root, tools, loader binary, what bpfredir needs of the kernel (each missing
# piece fails the test), temp dir and cleanup trap.
t_init() {
	T_NAME=$1
	[[ $EUID -eq 0 ]] || t_abort "must be run as root (sudo make test, sudo make demo)"
	t_require ip nsenter unshare curl openssl lwp-request jq bpftool ss timeout awk pgrep
	[[ -x $BPFREDIR ]] || t_abort "loader not built: $BPFREDIR (run: make)"
	[[ -x $T_FOREIGN ]] || t_abort "test tools not built: $T_FOREIGN (run: make tests-build)"
	CGROUP2=$(cgroup2_root)
	[[ -n $CGROUP2 ]] || t_abort "no cgroup2 mount in /proc/self/mounts"
	[[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || t_abort "no bpffs at /sys/fs/bpf"
	[[ -r /sys/kernel/btf/vmlinux ]] || t_abort "no kernel BTF (/sys/kernel/btf/vmlinux)"
	T_TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
	# Others may pass through (not list): apply repeats the words of a config file only when
	# every user could read it, directories on the way included.
	chmod 0711 "$T_TMP"
	trap t_cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

t_cleanup() {
	local rc=$? pid dir ns cg i
	trap - EXIT INT TERM HUP
	# What a script made beyond these (containers, say): its teardown_tests, first.
	! declare -F teardown_tests >/dev/null || teardown_tests
	for pid in "${T_PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	# (bpfredir.sh's, when the test sourced it.)
	[[ -z $T_TMP ]] || ! declare -F t_progs_record >/dev/null || t_progs_record >/dev/null 2>&1
	for dir in "${T_PIN_DIRS[@]}"; do
		# A test may plant a symlink there; one left dangling is gone from -e's view.
		if [[ -L $dir ]]; then
			rm -f "$dir"
			continue
		fi
		[[ -e $dir ]] || continue
		timeout "$T_CLI_TIMEOUT" "$BPFREDIR" unload --pin-dir "$dir" >/dev/null 2>&1
		rm -rf "$dir"
	done
	# Foreign programs' pins: removing a link's pin detaches it.
	for dir in "${T_BPFFS_DIRS[@]}"; do
		rm -rf "$dir"
	done
	for ns in "${T_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	# Last made first: a cgroup made inside another goes before it. So do the ones others made
	# inside a test's (podman's conmon cgroup on a pure cgroup2 host), deepest first.
	for ((i = ${#T_CGROUPS[@]} - 1; i >= 0; i--)); do
		[[ -d ${T_CGROUPS[i]} ]] || continue
		while read -r cg; do
			# Anything still in it goes back to the root cgroup, so the directory can go.
			while read -r pid; do
				echo "$pid" >"$CGROUP2/cgroup.procs" 2>/dev/null
			done <"$cg/cgroup.procs"
			rmdir "$cg" 2>/dev/null || sleep 0.5
			[[ ! -d $cg ]] || rmdir "$cg" || echo "warning: could not remove cgroup $cg" >&2
		done < <(find "${T_CGROUPS[i]}" -depth -type d)
	done
	# The run checks at its end that every program of this test is gone (tests/run.sh).
	if [[ -n ${BPFREDIR_TEST_RUN_DIR:-} && -n $T_TMP && -s $T_TMP/progs ]]; then
		cat "$T_TMP/progs" >>"$BPFREDIR_TEST_RUN_DIR/progs"
	fi
	[[ -z $T_TMP ]] || rm -rf "$T_TMP"
	exit "$rc"
}

# --- named tests ---------------------------------------------------------------------------
# In the manner of xdp-tools' lib/testing/test_runner.sh: a script sets ALL_TESTS to its test
# functions in the order they run, defines them, optionally setup_tests (run once, after
# t_init, before the first), cleanup_tests (run after each test) and teardown_tests (run at
# exit, first, for what the harness does not know of), and ends with
#
#   t_run_tests SCRIPT_NAME "$@"
#
# `bash SCRIPT` runs every test; `bash SCRIPT TEST...` runs those only (tests/run.sh
# FILE:TEST), after setup_tests and the tests they depend on (t_depends); `bash SCRIPT
# --list` prints ALL_TESTS and touches nothing.
# A test that fails is named on stderr, and again in the script's last line.

T_TEST=
T_FAILED_TESTS=()
declare -A T_DEPS=()

# t_depends TEST DEP...: TEST works on what the tests DEP leave (a loaded instance, a rule),
# so run alone it runs after them.
t_depends() {
	local test=$1
	shift
	T_DEPS[$test]="$*"
}

# t_test_deps TEST: the tests TEST needs run before it, theirs first.
t_test_deps() {
	local _td_dep
	for _td_dep in ${T_DEPS[$1]:-}; do
		t_test_deps "$_td_dep"
		printf '%s\n' "$_td_dep"
	done
}

# (Its locals are prefixed: a test function assigns globals, and bash would let it assign
# these instead.)
t_run_tests() {
	local _tr_name=$1 _tr_t _tr_before _tr_wanted=() _tr_run=() _tr_all
	shift
	# shellcheck disable=SC2086 # one word a test, on as many lines as it takes
	_tr_all=$(printf '%s ' $ALL_TESTS)
	if [[ ${1:-} == --list ]]; then
		# shellcheck disable=SC2086 # one a line
		printf '%s\n' $_tr_all
		exit 0
	fi
	for _tr_t in "$@"; do
		if [[ " $_tr_all" != *" $_tr_t "* ]] || ! declare -F "$_tr_t" >/dev/null; then
			printf '%s: no test %s (tests: %s)\n' "$_tr_name" "$_tr_t" "${_tr_all% }" >&2
			exit 2
		fi
		mapfile -t -O "${#_tr_wanted[@]}" _tr_wanted < <(t_test_deps "$_tr_t")
		_tr_wanted+=("$_tr_t")
	done
	# In ALL_TESTS order, each once.
	for _tr_t in $_tr_all; do
		(($# == 0)) || [[ " ${_tr_wanted[*]} " == *" $_tr_t "* ]] && _tr_run+=("$_tr_t")
	done
	t_init "$_tr_name"
	! declare -F setup_tests >/dev/null || setup_tests
	for _tr_t in "${_tr_run[@]}"; do
		T_TEST=$_tr_t
		_tr_before=$T_FAILED
		printf '# %s:%s\n' "$_tr_name" "$_tr_t" >&2
		"$_tr_t"
		! declare -F cleanup_tests >/dev/null || cleanup_tests
		if ((T_FAILED > _tr_before)); then
			T_FAILED_TESTS+=("$_tr_t")
			printf '# %s:%s failed (alone: tests/run.sh %s:%s)\n' "$_tr_name" "$_tr_t" \
				"$_tr_name" "$_tr_t" >&2
		fi
	done
	T_TEST=
	t_finish
}
