# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# bpfredir and BPF objects, over net.sh: pin dirs, the loader's command line and its JSON,
# counters and rules, bpftool, this test's programs and links, and other people's programs
# (tests/tools/foreign.c, xdp-filter).

[[ -z ${T_LIB_BPFREDIR:-} ]] || return 0
T_LIB_BPFREDIR=1
# shellcheck source=tests/lib/net.sh
. "$(dirname "${BASH_SOURCE[0]}")/net.sh"

# tc_kind: where bpfredir attaches TC programs by default on this kernel, as bpftool's `net
# show` names the hook: tcx, or clsact (a clsact qdisc's filters) where the kernel has no tcx.
tc_kind() { if t_has tcx; then echo tcx; else echo clsact; fi; }

# pin_dir VAR NAME: a unique pin dir path, in VAR; whatever is there is unloaded and
# removed at cleanup.
pin_dir() {
	local path="/sys/fs/bpf/$T_PREFIX-$2"
	T_PIN_DIRS+=("$path")
	printf -v "$1" '%s' "$path"
}

# bpffs_dir VAR NAME: a unique bpffs path for pins that are not bpfredir's (foreign_attach),
# in VAR; removed at cleanup.
bpffs_dir() {
	local path="/sys/fs/bpf/$T_PREFIX-$2"
	T_BPFFS_DIRS+=("$path")
	printf -v "$1" '%s' "$path"
}

# --- other builds: what a reload or an upgrade replaces ------------------------------------

# This tree built with other BPF instructions (BPF_CPU=v2; make tests-build): "a newer build",
# whose load replaces every program in place.
T_NEWER=$T_REPO/build/tests/newer/bpfredir

# newer_built NAME: T_NEWER is there; else the check NAME fails, saying what builds it.
newer_built() {
	[[ -x $T_NEWER ]] && return 0
	fail "$1" "$T_NEWER is not built (run: make tests-build)"
	return 1
}

# The older commits upgrade.sh upgrades from: the first build with socket steering, the last
# with the flat pin layout, the last with the per-connection pending LRU.
# shellcheck disable=SC2034 # used by upgrade.sh and tests/tools/old_builds.sh
UPGRADE_COMMITS=(ebf4c3c f0340b1 a459032)

# old_build_dir COMMIT: where old_build builds COMMIT's tree; its loader is build/bpfredir there.
old_build_dir() { printf '%s/build/tests/old/%s' "$T_REPO" "$1"; }
old_build_path() { printf '%s/build/bpfredir' "$(old_build_dir "$1")"; }

# old_build COMMIT: COMMIT's tree (from this clone's history) built under build/tests/old, once:
# into a directory of its own first, which takes the final name only when the build succeeded.
# On failure the build's last lines go to stderr.
old_build() {
	local dir loader tmp
	dir=$(old_build_dir "$1")
	loader=$(old_build_path "$1")
	[[ -x $loader ]] && return 0
	mkdir -p "${dir%/*}" && tmp=$(mktemp -d "$dir.XXXXXX") || return 1
	if { git -C "$T_REPO" archive "$1" | tar -x -C "$tmp" && make -s -C "$tmp" build/bpfredir; } \
		>"$tmp.log" 2>&1 && mv -T "$tmp" "$dir" 2>/dev/null; then
		rm -f "$tmp.log"
		return 0
	fi
	tail -n 5 "$tmp.log" >&2
	rm -rf "$tmp" "$tmp.log"
	# Another run may have put its own there meanwhile.
	[[ -x $loader ]]
}

# --- the loader --------------------------------------------------------------------------

# cli NS ARGS...: run the loader in namespace NS (or in the current one when NS is -).
# Sets CLI_RC, CLI_OUT and CLI_ERR. The programs of this test's pin dir it works on are
# recorded before a verb that may replace or remove them and after one that may make them.
cli() {
	local ns_name=$1
	shift
	local runner=() pin
	[[ $ns_name == - ]] || runner=(in_ns "$ns_name")
	pin=$(own_pin_dir_of "$@")
	[[ -z $pin || ! $1 =~ ^(load|apply|unload|detach)$ ]] || t_progs_record "$pin"
	CLI_OUT=$("${runner[@]}" timeout "$T_CLI_TIMEOUT" "$BPFREDIR" "$@" 2>"$T_TMP/cli.err")
	CLI_RC=$?
	CLI_ERR=$(cat "$T_TMP/cli.err")
	[[ -z $pin || ! $1 =~ ^(load|apply|attach)$ ]] || t_progs_record "$pin"
}

# own_pin_dir_of ARGS...: the --pin-dir among ARGS when it is one of this test's.
own_pin_dir_of() {
	local dir
	while (($# > 1)); do
		if [[ $1 == --pin-dir ]]; then
			for dir in "${T_PIN_DIRS[@]}"; do
				[[ $2 != "$dir" ]] || { printf '%s' "$dir"; return; }
			done
		fi
		shift
	done
}

# load_time_ms VAR NS PIN LOAD_ARGS...: in VAR, the fastest of two whole `load LOAD_ARGS` on
# PIN in NS here, in ms; each is unloaded again. Kills meant to land while a load runs are
# timed by it (a load only gets slower than its fastest, so they land in time).
load_time_ms() {
	local var=$1 ns_name=$2 pin=$3 start ms best=
	shift 3
	for _ in 1 2; do
		start=$(date +%s%N)
		in_ns "$ns_name" timeout "$T_CLI_TIMEOUT" "$BPFREDIR" load "$@" --pin-dir "$pin" \
			>/dev/null 2>"$T_TMP/load.err" ||
			t_abort "load $* failed: $(head -c 300 "$T_TMP/load.err")"
		ms=$((($(date +%s%N) - start) / 1000000))
		cli "$ns_name" unload --pin-dir "$pin"
		[[ $CLI_RC -eq 0 ]] || t_abort "unload after a timed load failed: $(cli_result)"
		[[ -n $best && $ms -ge $best ]] || best=$ms
	done
	printf -v "$var" '%s' "$best"
}

cli_result() {
	printf 'exit %s, stderr: %s' "$CLI_RC" "$(printf '%s' "$CLI_ERR" | head -c 300)"
}

# expect_cli_ok NAME NS ARGS...: the command succeeds.
expect_cli_ok() {
	local name=$1
	shift
	cli "$@"
	if [[ $CLI_RC -eq 0 ]]; then
		pass "$name"
	else
		fail "$name" "bpfredir ${*:2}: expected exit 0, got $(cli_result)"
	fi
}

# expect_cli_error NAME RC PATTERN NS ARGS...: the command exits RC with exactly one line
# on stderr matching the extended regex PATTERN (case-insensitive), and nothing on stdout.
expect_cli_error() {
	local name=$1 want=$2 pattern=$3 lines
	shift 3
	cli "$@"
	lines=$(printf '%s' "$CLI_ERR" | grep -c '')
	if [[ $CLI_RC -ne $want ]]; then
		fail "$name" "bpfredir ${*:2}: expected exit $want, got $(cli_result)"
	elif [[ $lines -ne 1 ]]; then
		fail "$name" "bpfredir ${*:2}: expected one line on stderr, got $lines: $CLI_ERR"
	elif ! grep -Eqi -- "$pattern" <<<"$CLI_ERR"; then
		fail "$name" "bpfredir ${*:2}: stderr does not match /$pattern/: $CLI_ERR"
	elif [[ -n $CLI_OUT ]]; then
		fail "$name" "bpfredir ${*:2}: unexpected output on stdout: $CLI_OUT"
	else
		pass "$name"
	fi
}

# json_matches [JQ OPTIONS] FILTER: the last loader output (CLI_OUT) is JSON for which
# FILTER is true.
json_matches() { jq -e "$@" <<<"$CLI_OUT" >/dev/null 2>&1; }

# json_get [JQ OPTIONS] FILTER: prints FILTER applied to the last loader output.
json_get() { jq -r "$@" <<<"$CLI_OUT" 2>/dev/null; }

# list_json NS PIN: run `list --json` on the instance; the result is in CLI_OUT.
list_json() { cli "$1" list --json --pin-dir "$2"; }

# stat_of NAME: one counter of the last `list --json` (empty when there is none).
# shellcheck disable=SC2016 # a jq variable
stat_of() { json_get --arg c "$1" '.stats[$c] // empty'; }

# counter NS PIN NAME: prints one counter of the instance.
counter() {
	list_json "$1" "$2"
	stat_of "$3"
}

# rules_of: the rules of the last `list --json` as "public target proto hide" lines, sorted.
rules_of() {
	json_get '.rules[] | "\(.public_port) \(.target_port) \(.proto) \(.hide)"' | sort
}

# expect_rules NAME NS PIN WANT: the rule set equals WANT (lines as printed by rules_of).
expect_rules() {
	local got
	list_json "$2" "$3"
	got=$(rules_of)
	if [[ $got == "$4" ]]; then
		pass "$1"
	else
		fail "$1" "expected rules [$4], got [$got] (list: $(cli_result))"
	fi
}

# expect_stat_grew NAME NS PIN COUNTER BEFORE: the counter is now above BEFORE.
expect_stat_grew() {
	local now
	list_json "$2" "$3"
	now=$(stat_of "$4")
	if [[ $now =~ ^[0-9]+$ && $now -gt $5 ]]; then
		pass "$1"
	else
		fail "$1" "expected $4 > $5, got '${now}' (list: $(cli_result))"
	fi
}

# addr_key ADDR [list]: ADDR as the maps key it (v4 as ::ffff:a.b.c.d): bpftool's hex bytes
# ("0x00 0x00 ..."), or with list a JSON list of numbers.
addr_key() {
	/usr/bin/python3 "$T_HELPERS/addr_key.py" "$@"
}

# local_addr_value PIN ADDR: local_addrs' value for ADDR in the instance at PIN (how many
# holders; LOCAL_ADDR_BROADCAST for a subnet broadcast address), empty when ADDR is no key.
local_addr_value() {
	local key
	key=$(addr_key "$2")
	bpftool -j map dump pinned "$1/maps/local_addrs" 2>/dev/null |
		jq -r --arg k "$key" '.[] | select(.key | join(" ") == $k) | .formatted.value' 2>/dev/null
}

# --- BPF objects ---------------------------------------------------------------------------
# Every helper here fails loudly: when bpftool fails, its output says so (a line starting
# "bpftool" and "failed:"), so that no check built on it can pass by an empty answer.

# bpftool_json NS ARGS...: bpftool -j ARGS in namespace NS (- for the current one); prints the
# JSON, or one line saying what failed, and returns non-zero. Success is judged by the output:
# one JSON document that is not bpftool's {"error": ...} (bpftool 7.5 exits 255 after
# printing a link it found, so its status cannot be trusted).
bpftool_json() {
	local ns_name=$1 out err
	shift
	local runner=()
	[[ $ns_name == - ]] || runner=(in_ns "$ns_name")
	err=$(mktemp "$T_TMP/bpftool.XXXXXX")
	out=$("${runner[@]}" bpftool -j "$@" 2>"$err")
	# (cgroup show prints nothing at all for a cgroup without programs.)
	if [[ -z $out && ! -s $err ]]; then
		out='[]'
	fi
	if jq -se 'length == 1 and (.[0] | type != "object" or (has("error") | not))' \
		>/dev/null 2>&1 <<<"$out"; then
		rm -f "$err"
		printf '%s\n' "$out"
		return 0
	fi
	printf 'bpftool %s failed: %s\n' "$*" \
		"$({ jq -r '.error? // empty' <<<"$out" 2>/dev/null; head -c 200 "$err"; } | tr '\n' ' ')"
	rm -f "$err"
	return 1
}

# --- the connection tables ------------------------------------------------------------------
# pending is an ARRAY of buckets of ways (include/bpfredir.h, redir_pending_bucket), read
# through the core's own code (tests/tools/pending_table.c).

# pending_used PIN: the ways in use in the instance's pending (empty if that failed).
pending_used() { "$T_PENDING_TABLE" used "$1" 2>/dev/null; }

# pending_ways PIN: the ways the instance's pending has (empty if that failed).
pending_ways() { "$T_PENDING_TABLE" ways "$1" 2>/dev/null; }

# pending_clear PIN: every way emptied, as evicting every entry would.
pending_clear() {
	local err
	err=$("$T_PENDING_TABLE" clear "$1" 2>&1) || t_abort "$err"
}

# --- this test's programs ----------------------------------------------------------------
# A test knows its own programs and never counts anyone else's: the programs pinned under its
# pin dirs (recorded as "id name" lines whenever the loader works on one of them, see cli,
# and at cleanup) and any bpfredir program attached at the devices of its namespaces or at its
# cgroups. tests/run.sh checks at the end of a run that every recorded one is gone.

# t_progs_record [PIN...]: record the programs pinned under these pin dirs (default: all of
# this test's).
t_progs_record() {
	local json
	(($# > 0)) || set -- "${T_PIN_DIRS[@]}"
	(($# > 0)) || return 0
	json=$(bpftool_json - -f prog show) || { echo "$json" >&2; return 1; }
	jq -r '$ARGS.positional as $dirs | .[]
		| select(any(.pinned[]?; . as $p | any($dirs[]; . as $d | $p | startswith($d + "/"))))
		| "\(.id) \(.name)"' --args "$@" <<<"$json" >>"$T_TMP/progs"
}

# bpfredir_prog_ids: the IDs of this test's programs still loaded, sorted, one a line: pinned
# under its pin dirs, recorded, or attached at its namespaces and cgroups (bpfredir_* there).
bpfredir_prog_ids() {
	local progs json ns cg attached=()
	progs=$(bpftool_json - -f prog show) || { printf '%s\n' "$progs"; return 1; }
	for ns in "${T_NETNS[@]}"; do
		[[ -e /run/netns/$ns ]] || continue
		json=$(bpftool_json "${ns#"$T_PREFIX-"}" net show) || { printf '%s\n' "$json"; return 1; }
		mapfile -t -O "${#attached[@]}" attached < <(jq -r '.[] |
			((.tc // [])[] | .prog_id // .id), ((.xdp // [])[] | .id)' <<<"$json")
	done
	for cg in "${T_CGROUPS[@]}"; do
		[[ -d $cg ]] || continue
		json=$(bpftool_json - cgroup show "$cg") || { printf '%s\n' "$json"; return 1; }
		mapfile -t -O "${#attached[@]}" attached < <(jq -r '.[] | .id' <<<"$json")
	done
	jq -r --rawfile recorded <(cat "$T_TMP/progs" 2>/dev/null) \
		--arg attached "${attached[*]}" '
		($recorded | split("\n") | map(select(. != ""))) as $rec
		| ($attached | split(" ") | map(select(. != "") | tonumber)) as $att
		| $ARGS.positional as $dirs | .[]
		| select(any(.pinned[]?; . as $p | any($dirs[]; . as $d | $p | startswith($d + "/")))
			or ("\(.id) \(.name)" | IN($rec[]))
			or (.id | IN($att[])) and (.name // "" | startswith("bpfredir_")))
		| .id' --args "${T_PIN_DIRS[@]}" <<<"$progs" | sort -n
}

# new_bpfredir_progs: this test's programs still loaded (see bpfredir_prog_ids); nothing to
# print, non-zero status.
new_bpfredir_progs() {
	local ids
	ids=$(bpfredir_prog_ids)
	[[ -n $ids ]] && printf '%s\n' "$ids"
}

no_new_bpfredir_progs() {
	local ids
	ids=$(bpfredir_prog_ids) && [[ -z $ids ]]
}

# link_ids_of PROG_ID...: IDs of the links that hold those programs.
link_ids_of() {
	local ids json
	ids=$(printf '%s,' "$@")
	json=$(bpftool_json - link show) || { printf '%s\n' "$json"; return 1; }
	jq -r --arg ids "${ids%,}" '($ids | split(",")) as $p | .[]
		| select(.prog_id | tostring | IN($p[])) | .id' <<<"$json" | sort -n
}

# attached_progs NS IFACE [CGROUP]: the programs attached to IFACE (TC, in NS) and to
# CGROUP, as "hook:name:prog_id" lines, e.g. tcx/ingress:bpfredir_tc_in:42. (bpftool shows
# a clsact filter's program as "id", and its name as the filter's, "bpfredir_tc_in:[42]".)
attached_progs() {
	local json
	json=$(bpftool_json "$1" net show dev "$2") || { printf '%s\n' "$json"; return 1; }
	jq -r '.[] | (.tc // [])[] |
		"\(.kind):\(.name | sub(":\\[[0-9]+\\]$"; "")):\(.prog_id // .id)"' <<<"$json"
	[[ -n ${3:-} ]] || return 0
	json=$(bpftool_json - cgroup show "$3") || { printf '%s\n' "$json"; return 1; }
	jq -r '.[] | "\(.attach_type):\(.name):\(.id)"' <<<"$json"
}

# map_ids_of PROG_ID...: IDs of the maps those programs use.
map_ids_of() {
	local id json
	for id in "$@"; do
		json=$(bpftool_json - prog show id "$id") || { printf '%s\n' "$json"; return 1; }
		jq -r '.map_ids[]?' <<<"$json"
	done | sort -un
}

# gone_ids KIND ID...: none of the IDs is still a loaded prog/map/link (KIND). bpftool must
# say "No such file or directory" for each; any other answer is an error, said on stderr.
gone_ids() {
	local kind=$1 id err
	shift
	(($# > 0)) || { echo "gone_ids: no $kind id given" >&2; return 2; }
	for id in "$@"; do
		err=$(bpftool_json - "$kind" show id "$id") && return 1
		[[ $err == *"No such file or directory"* ]] || { echo "$err" >&2; return 2; }
	done
	return 0
}

# no_loader_running PIN: no bpfredir process works on PIN (the datapath runs on its own).
no_loader_running() { ! pgrep -f -- "--pin-dir $1" >/dev/null; }

# xdp-filter and libxdp pin their state under bpffs by interface name, which tests of two
# runs (with the same interface names in their own namespaces) would share: they get a bpffs
# of this test's own, in a mount namespace held by a process of its own until cleanup.
xdp_filter_mnt() {
	local tries=50
	[[ -z ${T_XDPF_PID:-} ]] || return 0
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --propagation private -- bash -c 'exec -a "$1" sleep infinity' \
		xdpf "$T_PREFIX-xdp-filter-mnt" &
	T_XDPF_PID=$!
	T_PIDS+=("$T_XDPF_PID")
	while [[ $(readlink "/proc/$T_XDPF_PID/ns/mnt") == "$(readlink /proc/self/ns/mnt)" ]]; do
		((--tries > 0)) || t_abort "unshare --mount did not make a mount namespace"
		sleep 0.1
	done
	nsenter --mount="/proc/$T_XDPF_PID/ns/mnt" mount -t bpf bpf /sys/fs/bpf 2>"$T_TMP/xdpf.log" ||
		t_abort "mount bpffs for xdp-filter failed: $(tail -c 300 "$T_TMP/xdpf.log")"
}

# xdp_filter NS ARGS...: xdp-filter ARGS in namespace NS, with the bpffs of xdp_filter_mnt.
xdp_filter() {
	local ns_name=$1
	shift
	xdp_filter_mnt
	nsenter --mount="/proc/$T_XDPF_PID/ns/mnt" --net="$(ns_path "$ns_name")" -- xdp-filter "$@"
}

# xdp_filter_load NS IFACE MODE: xdp-filter (xdp-tools; it passes everything) on IFACE in NS,
# in MODE (skb or native), or the test aborts.
xdp_filter_load() {
	xdp_filter "$1" load -m "$3" "$2" >"$T_TMP/xdpf.log" 2>&1 ||
		t_abort "xdp-filter load on $2 failed: $(tail -c 300 "$T_TMP/xdpf.log")"
}

# xdp_filter_unload NS IFACE: take it off again.
xdp_filter_unload() { xdp_filter "$1" unload "$2"; }

# --- foreign programs ------------------------------------------------------------------------

# foreign_attach NAME NS ARGS...: one foreign TC program (tests/tools/foreign.c attach ARGS)
# in namespace NS, its pins under a bpffs dir of this test's; the test aborts when it cannot.
foreign_attach() {
	local var=FOREIGN_DIR_$1 ns_name=$2
	shift 2
	bpffs_dir "$var" "foreign-${var#FOREIGN_DIR_}"
	in_ns "$ns_name" "$T_FOREIGN" attach "${!var}" "$@" 2>"$T_TMP/foreign.err" ||
		t_abort "foreign program ${var#FOREIGN_DIR_} ($*) could not be attached: $(head -c 300 "$T_TMP/foreign.err")"
}

# foreign_detach NAME NS ARGS...: detach it again (ARGS: --dev, --hook and --prio as given).
foreign_detach() {
	local var=FOREIGN_DIR_$1 ns_name=$2
	shift 2
	in_ns "$ns_name" "$T_FOREIGN" detach "${!var}" "$@"
}

# foreign_count NAME FILTER: one number from its counters ({"packets": N, "dport": {"PORT":
# N}, "sport": {...}}), e.g. '.dport["8445"]'; says "error: ..." when they cannot be read.
foreign_count() {
	local var=FOREIGN_DIR_$1 out
	if ! out=$("$T_FOREIGN" counts "${!var}" 2>&1); then
		printf 'error: %s\n' "$out"
		return 1
	fi
	jq -r "$2" <<<"$out"
}

