#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# A container host's cgroups over their lifetime: a socket-only instance (load --cgroup, no
# --iface) whose cgroups come and go as containers do.
#   - a removed cgroup shows as removed in status, and the next command that changes
#     anything forgets it (pins and live-set entry) without being told; detach of its path
#     or id then succeeds with nothing to do;
#   - churn: more attach / remove cycles than the live set holds cgroups leave pins and set
#     at the size of the cgroups alive, and attach and add keep working;
#   - nested cgroups, attached in either order, by attach or apply: the nearest attached
#     one decides, so a hidden target does not refuse what the inner one redirected;
#     re-applying is a no-op, a failed apply changes nothing;
#   - (make test-churn) 1024 cgroups attached at once: one more is refused, naming the number.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_removed test_detach_removed test_churn test_nested test_apply_nested"
t_depends test_detach_removed test_removed
t_depends test_churn test_removed
t_depends test_nested test_removed
t_depends test_apply_nested test_nested
t_depends test_limit test_removed

# Attach / remove cycles in test_churn: past the 1024 cgroups the live set holds. make
# test-churn runs 100,000, and test_limit (a minute: 1024 cgroups attached one by one).
CHURN=${BPFREDIR_TEST_CHURN:-1100}
[[ -z ${BPFREDIR_TEST_CHURN:-} ]] || ALL_TESTS+=" test_limit"

setup_tests() {
	t_require curl jq openssl
	netns_add server
	make_cert
	https_server server
	cgroup_add TEAM team
	pin_dir PIN main
	LO=https://127.0.0.1
}

# child VAR PARENT NAME: a cgroup inside PARENT, removed at cleanup (before its parent).
child() {
	local path="$2/$3"
	mkdir "$path" || t_abort "mkdir $path failed"
	T_CGROUPS+=("$path")
	printf -v "$1" '%s' "$path"
}

cgroup_id() { stat -c %i "$1"; }

# links_of ID: how many link pins the instance has for cgroup ID.
links_of() { find "$PIN/links" -name "cgroup_$1_*" | wc -l; }

# status_json: status --json of the instance in CLI_OUT.
status_json() { cli server status --json --pin-dir "$PIN"; }

test_removed() {
	local id
	expect_cli_ok "load --cgroup (socket-only)" server load --cgroup "$TEAM" --pin-dir "$PIN"
	expect_cli_ok "add 8445 8443 --hide-local" server add 8445 8443 --hide-local --pin-dir "$PIN"
	child GONE "$TEAM" gone
	id=$(cgroup_id "$GONE")
	expect_cli_ok "attach a container's cgroup" server attach --cgroup "$GONE" --pin-dir "$PIN"
	check "its links are pinned" "$(links_of "$id") links" test "$(links_of "$id")" -ge 8
	rmdir "$GONE" || t_abort "rmdir $GONE failed"

	cli server status --pin-dir "$PIN"
	check "status says removed, not interrupted" "$CLI_OUT" \
		grep -q "removed cgroup (id $id)" <<<"$CLI_OUT"
	check "status does not blame an interrupted run" "$CLI_OUT" \
		bash -c '! grep -q "interrupted" <<<"$1"' - "$CLI_OUT"
	status_json
	check "status --json: removed true" "$CLI_OUT" \
		json_matches --argjson id "$id" '.cgroups[] | select(.id == $id) | .removed'
	cli server list --pin-dir "$PIN"
	check "a read view forgets nothing" "$(links_of "$id") links" test "$(links_of "$id")" -ge 8

	expect_cli_ok "add 9000 9001 (any changing command)" server add 9000 9001 --pin-dir "$PIN"
	check "it said what it forgot" "stderr: $CLI_ERR" grep -q "forgot 1 removed cgroup" <<<"$CLI_ERR"
	check "the removed cgroup's pins are gone" "$(links_of "$id") links" test "$(links_of "$id")" -eq 0
	status_json
	check "status shows nothing of it" "$CLI_OUT" \
		json_matches --argjson id "$id" '[.cgroups[] | select(.id == $id)] | length == 0'
	check "the live set holds the one cgroup left" "$CLI_OUT" \
		json_matches '.cgroup_use == {"attached": 1, "max": 1024}'
	expect_cli_ok "del 9000" server del 9000 --pin-dir "$PIN"
}

test_detach_removed() {
	local id
	child GONE2 "$TEAM" gone2
	expect_cli_ok "attach another" server attach --cgroup "$GONE2" --pin-dir "$PIN"
	rmdir "$GONE2" || t_abort "rmdir $GONE2 failed"
	expect_cli_ok "detach --cgroup PATH of a removed cgroup succeeds" server detach \
		--cgroup "$GONE2" --pin-dir "$PIN"
	check "... saying nothing is attached there" "$CLI_OUT" \
		grep -q "does not exist: nothing is attached there" <<<"$CLI_OUT"
	child GONE3 "$TEAM" gone3
	id=$(cgroup_id "$GONE3")
	expect_cli_ok "attach a third" server attach --cgroup "$GONE3" --pin-dir "$PIN"
	rmdir "$GONE3" || t_abort "rmdir $GONE3 failed"
	expect_cli_ok "detach --cgroup-id ID of a removed cgroup succeeds" server detach \
		--cgroup-id "$id" --pin-dir "$PIN"
	check "its pins are gone" "$(links_of "$id") links" test "$(links_of "$id")" -eq 0

	child HERE "$TEAM" here
	expect_cli_error "detach --cgroup-id of a cgroup not attached" 1 \
		"not attached to cgroup id $(cgroup_id "$HERE")" \
		server detach --cgroup-id "$(cgroup_id "$HERE")" --pin-dir "$PIN"
	expect_cli_error "detach without a cgroup" 2 "--cgroup or --cgroup-id is required" \
		server detach --pin-dir "$PIN"
	expect_cli_error "detach with both" 2 "name the cgroup once" \
		server detach --cgroup "$HERE" --cgroup-id 1 --pin-dir "$PIN"
	expect_cli_error "detach --cgroup-id abc" 2 "not a cgroup id: 'abc'" \
		server detach --cgroup-id abc --pin-dir "$PIN"
	expect_cli_error "detach of a path on no cgroup2" 1 "no cgroup2 at $T_TMP/none" \
		server detach --cgroup "$T_TMP/none" --pin-dir "$PIN"
}

test_churn() {
	local i path n_links start
	start=$SECONDS
	for ((i = 0; i < CHURN; i++)); do
		path=$TEAM/churn
		mkdir "$path" || t_abort "mkdir $path failed"
		if ! in_ns server "$BPFREDIR" attach --cgroup "$path" --pin-dir "$PIN" \
			>/dev/null 2>"$T_TMP/churn.err"; then
			rmdir "$path"
			fail "attach in cycle $((i + 1)) of $CHURN" "$(head -c 300 "$T_TMP/churn.err")"
			return
		fi
		rmdir "$path" || t_abort "rmdir $path failed"
	done
	pass "$CHURN attach / remove cycles (${CHURN} > 1024 the live set holds), $((SECONDS - start))s"
	expect_cli_ok "add after the churn" server add 9100 9101 --pin-dir "$PIN"
	n_links=$(find "$PIN/links" -name 'cgroup_*' | wc -l)
	# The parent, attached by load: its 8 socket hooks.
	check "pins: the cgroups alive only" "$n_links link pins" test "$n_links" -eq 8
	status_json
	check "live set: the cgroups alive only" "$CLI_OUT" json_matches '.cgroup_use.attached == 1'
	expect_cli_ok "del after the churn" server del 9100 --pin-dir "$PIN"
}

test_nested() {
	child C1 "$TEAM" c1
	expect "parent attached: a process in a child is redirected" ok "$LO:8445/" \
		in_cgroup server "$C1"
	expect_cli_ok "attach the child too" server attach --cgroup "$C1" --pin-dir "$PIN"
	expect "child and parent attached: redirected once (the hidden target is not refused)" \
		ok "$LO:8445/" in_cgroup server "$C1"
	expect "... and the parent's own process too" ok "$LO:8445/" in_cgroup server "$TEAM"
	expect "... and the target stays hidden from the child" refused "$LO:8443/" \
		in_cgroup server "$C1"
	expect_cli_ok "detach the parent" server detach --cgroup "$TEAM" --pin-dir "$PIN"
	expect "child alone: redirected" ok "$LO:8445/" in_cgroup server "$C1"
	expect "parent detached: its own process is not" refused "$LO:8445/" \
		in_cgroup server "$TEAM"
	expect_cli_ok "attach the parent after its child" server attach --cgroup "$TEAM" \
		--pin-dir "$PIN"
	expect "both again: redirected once" ok "$LO:8445/" in_cgroup server "$C1"
}

test_apply_nested() {
	local conf=$T_TMP/nested.conf
	child C2 "$TEAM" c2
	child C3 "$C2" c3
	printf 'cgroup %s\ncgroup %s\ncgroup %s\ncgroup %s\nrule 8445 8443 hide-local\n' \
		"$TEAM" "$C1" "$C2" "$C3" >"$conf"
	expect_cli_ok "apply: the attached parent and child, and two more nested" \
		server apply -f "$conf" --pin-dir "$PIN"
	for cg in "$TEAM" "$C1" "$C2" "$C3"; do
		expect "after apply: redirected once in ${cg#"$CGROUP2/"}" ok "$LO:8445/" in_cgroup server "$cg"
	done
	expect_cli_ok "apply again" server apply -f "$conf" --pin-dir "$PIN"
	check "... changes nothing" "$CLI_OUT" grep -qx "nothing to change" <<<"$CLI_OUT"
	printf 'cgroup %s\ncgroup %s/none\nrule 8445 8443\n' "$TEAM" "$TEAM" >"$T_TMP/bad.conf"
	expect_cli_error "apply of a file naming a missing cgroup fails" 1 "bad.conf:2:.*none" \
		server apply -f "$T_TMP/bad.conf" --pin-dir "$PIN"
	expect "after the failed apply: still redirected in the innermost" ok "$LO:8445/" \
		in_cgroup server "$C3"
	expect "... and the target still hidden" refused "$LO:8443/" in_cgroup server "$C3"
}

test_limit() {
	local have i path
	status_json
	have=$(json_get '.cgroup_use.attached')
	cgroup_add MANY many
	for ((i = have; i < 1024; i++)); do
		path=$MANY/c$i
		mkdir "$path" && T_CGROUPS+=("$path") || t_abort "mkdir $path failed"
		if ! in_ns server "$BPFREDIR" attach --cgroup "$path" --pin-dir "$PIN" \
			>/dev/null 2>"$T_TMP/limit.err"; then
			fail "attach $((i + 1)) of 1024" "$(head -c 300 "$T_TMP/limit.err")"
			return
		fi
	done
	pass "1024 cgroups attached at once"
	mkdir "$MANY/one-more" && T_CGROUPS+=("$MANY/one-more") || t_abort "mkdir failed"
	expect_cli_error "the 1025th is refused, naming the limit" 1 \
		"cannot attach to cgroup $MANY/one-more: 1024 cgroups are attached, the most one instance holds" \
		server attach --cgroup "$MANY/one-more" --pin-dir "$PIN"
	cli server status --pin-dir "$PIN"
	check "status: 1024 attached, of 1024 at once" "$(head -n 20 <<<"$CLI_OUT")" \
		grep -q "^cgroups: *1024 attached, of 1024 at once" <<<"$CLI_OUT"
	expect_cli_ok "rules still change" server add 9200 9201 --pin-dir "$PIN"
	expect_cli_ok "detach one" server detach --cgroup "$MANY/c$have" --pin-dir "$PIN"
	expect_cli_ok "then the one more attaches" server attach --cgroup "$MANY/one-more" \
		--pin-dir "$PIN"
}

t_run_tests cgroups "$@"
