#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What apply reads from its file, the one input that decides as root what is hidden: only a
# regular file root owns and only root can write, of bounded size and line length, read to
# its end or refused; no NUL bytes, no word cut short, no rules that overrule each other,
# no rule address that is not unicast; no file that names nothing to act on, or that would
# take away every rule of a loaded host, unless --allow-empty; and its words repeated only
# short and escaped, never from a file others cannot read. Dry runs (on a pin dir that is
# never loaded) show the file checks; a loaded instance in the server namespace the checks
# against what is live.
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_file_kind test_file_owner test_file_size test_file_content test_repeated_words
	test_loaded_host"
# (test_loaded_host applies the empty file test_file_content writes.)
t_depends test_loaded_host test_file_content

# conf NAME: stdin becomes $T_TMP/NAME.conf, root's and mode 0644 whatever the umask; its path
# goes in CONF. (Feed it with < <(...), so that CONF is set in this shell.)
conf() {
	CONF="$T_TMP/$1.conf"
	{ cat >"$CONF" && chown root:root "$CONF" && chmod 0644 "$CONF"; } || t_abort "cannot write $CONF"
}

# limited KB ARGS...: the loader in the server namespace with its address space capped at KB
# kilobytes (ulimit -v); sets CLI_RC, CLI_OUT and CLI_ERR as cli does.
limited() {
	local kb=$1
	shift
	# shellcheck disable=SC2016 # expanded by the inner shell
	CLI_OUT=$(in_ns server bash -c 'ulimit -v "$1" && shift && exec "$@"' limited "$kb" \
		timeout "$T_CLI_TIMEOUT" "$BPFREDIR" "$@" 2>"$T_TMP/cli.err")
	CLI_RC=$?
	CLI_ERR=$(cat "$T_TMP/cli.err")
}

# re TEXT: TEXT as an extended regex that matches only itself.
# shellcheck disable=SC2001 # a bracket expression, which ${var//} cannot do in one go
re() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# lacks TEXT WORD...: none of the WORDs is in TEXT.
lacks() {
	local text=$1 word
	shift
	for word in "$@"; do
		[[ $text != *"$word"* ]] || return 1
	done
}

# refused NAME PATTERN ARGS...: apply ARGS exits 1 with one line matching PATTERN.
refused() {
	local name=$1 pattern=$2
	shift 2
	expect_cli_error "$name" 1 "$pattern" server apply "$@"
}

setup_tests() {
	netns_add client
	netns_add server
	veth client "$CLIENT_IF" "$CLIENT_ADDR/24" server "$SERVER_IF" "$SERVER_ADDR/24"
	pin_dir FRESH fresh # never loaded: dry runs only
	pin_dir PIN loaded
	cgroup_add CG cfg
	DRY=(--dry-run --pin-dir "$FRESH")
}

# --- what kind of file ---------------------------------------------------------------------
test_file_kind() {
	mkfifo "$T_TMP/fifo.conf"
	refused "a FIFO is refused at once, not waited on" "fifo.conf is a FIFO; apply reads only a regular file" \
		-f "$T_TMP/fifo.conf" "${DRY[@]}"
	refused "/dev/null (a character device) is refused, not read as an empty file" \
		"/dev/null is a character device" -f /dev/null "${DRY[@]}"
	# Capped, so that a loader that reads it goes out of memory, not the machine.
	limited 400000 apply -f /dev/zero "${DRY[@]}"
	check "/dev/zero is refused before a byte is read" "$(cli_result)" \
		test "$CLI_RC:$CLI_ERR" = "1:bpfredir apply: /dev/zero is a character device; apply reads only a regular file"
	refused "a directory is refused" "$T_TMP is a directory" -f "$T_TMP" "${DRY[@]}"
}

# --- whose file ----------------------------------------------------------------------------
test_file_owner() {
	conf good < <(printf 'interface %s\nrule 8445 8443\n' "$SERVER_IF")
	GOOD=$CONF
	expect_cli_ok "a 0644 file of root's is read" server apply -f "$GOOD" "${DRY[@]}"
	cp "$GOOD" "$T_TMP/0666.conf" && chmod 0666 "$T_TMP/0666.conf"
	refused "a 0666 file is refused, saying who can write it" \
		"0666.conf: mode 0666 lets group and others write it; apply reads only a file that root owns and only root can write" \
		-f "$T_TMP/0666.conf" "${DRY[@]}"
	cp "$GOOD" "$T_TMP/0664.conf" && chmod 0664 "$T_TMP/0664.conf"
	refused "a group-writable file is refused" "0664.conf: mode 0664 lets its group write it" \
		-f "$T_TMP/0664.conf" "${DRY[@]}"
	cp "$GOOD" "$T_TMP/0602.conf" && chmod 0602 "$T_TMP/0602.conf"
	refused "a world-writable file is refused" "0602.conf: mode 0602 lets others write it" \
		-f "$T_TMP/0602.conf" "${DRY[@]}"
	cp "$GOOD" "$T_TMP/nobody.conf" && chown 65534 "$T_TMP/nobody.conf"
	refused "a file of uid 65534 is refused, naming the owner" "nobody.conf: owned by uid 65534, not root;" \
		-f "$T_TMP/nobody.conf" "${DRY[@]}"
	cp "$GOOD" "$T_TMP/both.conf" && chown 65534 "$T_TMP/both.conf" && chmod 0666 "$T_TMP/both.conf"
	refused "a 0666 file of uid 65534: both said on one line" \
		"both.conf: owned by uid 65534, not root, and mode 0666 lets group and others write it" \
		-f "$T_TMP/both.conf" "${DRY[@]}"
	# The checks are on the file opened: a symlink leads to what it points at, no further.
	ln -s "$GOOD" "$T_TMP/link-good.conf"
	expect_cli_ok "a symlink to a good file is read" server apply -f "$T_TMP/link-good.conf" "${DRY[@]}"
	ln -s "$T_TMP/0666.conf" "$T_TMP/link-0666.conf"
	refused "a symlink to a 0666 file is refused for the file's mode" "link-0666.conf: mode 0666" \
		-f "$T_TMP/link-0666.conf" "${DRY[@]}"
}

# --- how much of it ------------------------------------------------------------------------
test_file_size() {
	conf longline < <(printf 'interface %s\nrule 8445 8443 # %s\n' "$SERVER_IF" "$(head -c 8200 /dev/zero | tr '\0' x)")
	refused "a line over 8192 bytes is refused where it passes the cap" "longline.conf:2:8193: line longer than 8192 bytes" \
		-f "$CONF" "${DRY[@]}"
	conf big < <(printf 'interface %s\n' "$SERVER_IF"
		for ((i = 0; i < 16500; i++)); do printf '# %061d\n' 0; done)
	refused "a file over 1 MiB is refused" "big.conf is 105[0-9]{4} bytes; a config file may have at most 1048576" \
		-f "$CONF" "${DRY[@]}"
	# A line too long for memory used to end the file silently there (getline's ENOMEM taken
	# for the end of the file): the rule after it was dropped, and the dry run passed.
	conf hugeline < <(printf 'interface %s\nrule 8445 8443\n' "$SERVER_IF")
	{ truncate -s 400M "$CONF" && printf '\nrule 8446 8444\n' >>"$CONF"; } || t_abort "cannot make $CONF"
	limited 300000 apply -f "$CONF" "${DRY[@]}"
	check "a 400 MB line, memory capped: refused, not cut short" "$(cli_result) out: $CLI_OUT" \
		grep -Eq '^bpfredir apply: .*hugeline.conf is 4194304[0-9]{2} bytes; a config file may have at most' <<<"$CLI_ERR"
	rm -f "$CONF"
	# A cgroup path cut at PATH_MAX used to end in slashes only: the cgroup2 root, every process.
	root_slashes="cgroup $CGROUP2$(head -c $((4100 - ${#CGROUP2})) /dev/zero | tr '\0' /)child"
	conf longpath < <(printf 'interface %s\n%s\nrule 8445 8443\n' "$SERVER_IF" "$root_slashes")
	refused "a cgroup path of PATH_MAX bytes or more is refused, not cut to the cgroup2 root" \
		"longpath.conf:2:8: word of 4105 bytes; at most 4095" -f "$CONF" "${DRY[@]}"
}

# --- what is in it -------------------------------------------------------------------------
test_file_content() {
	conf nul < <(printf 'interface %s\nrule 8445 8443\0 no-hide\n' "$SERVER_IF")
	refused "a NUL byte is refused at its column, not taken for the end of the line" \
		"nul.conf:2:15: NUL byte in the line" -f "$CONF" "${DRY[@]}"
	conf empty < <(:)
	refused "an empty file is refused" "empty.conf names no interface and no cgroup, so no rule would act; --allow-empty applies it anyway" \
		-f "$CONF" "${DRY[@]}"
	conf comments < <(printf '# interface %s\n\n   # rule 8445 8443\n' "$SERVER_IF")
	refused "a file of comments only is refused" "comments.conf names no interface and no cgroup" -f "$CONF" "${DRY[@]}"
	conf rulesonly < <(printf 'rule 8445 8443\n')
	refused "rules with no interface and no cgroup are refused" "rulesonly.conf names no interface and no cgroup" \
		-f "$CONF" "${DRY[@]}"
	cli server apply -f "$T_TMP/empty.conf" --allow-empty "${DRY[@]}"
	check "an empty file with --allow-empty: the dry run shows only the load" "$(cli_result) out: $CLI_OUT" \
		test "$CLI_RC:$CLI_OUT" = "0:+ load $FRESH"

	for bad in 08445 +8445 -8445 0x20fd; do
		conf num < <(printf 'interface %s\nrule %s 8443\n' "$SERVER_IF" "$bad")
		refused "port '$bad' in a rule is refused" "num.conf:2:6: invalid port '$(re "$bad")' \\(expected 1-65535" \
			-f "$CONF" "${DRY[@]}"
	done
	conf num < <(printf 'interface %s\nflows 04096\nrule 8445 8443\n' "$SERVER_IF")
	refused "flows with a leading zero is refused, saying why" \
		"num.conf:2:7: invalid flows '04096' \\(expected 1024-16777216, in decimal digits only: no sign, space or leading zero\\)" \
		-f "$CONF" "${DRY[@]}"

	for addr in 0.0.0.0 :: ::ffff:0.0.0.0 224.0.0.1 ff02::1 255.255.255.255 0.1.2.3 240.0.0.1; do
		conf addr < <(printf 'interface %s\nrule 8445 8443 addr %s\n' "$SERVER_IF" "$addr")
		refused "addr $addr is refused (not unicast)" "addr.conf:2:21: address '$addr' is .*; a rule's address must be unicast" \
			-f "$CONF" "${DRY[@]}"
	done
	conf addr < <(printf 'interface %s\nrule 8445 8443 addr 192.0.2.2\nrule 8446 8443 addr 2001:db8::2\n' "$SERVER_IF")
	expect_cli_ok "unicast addr (v4 and v6) is accepted" server apply -f "$CONF" "${DRY[@]}"

	# Rules sharing a target share its hidden entry: they must ask for the same hiding.
	conf flags < <(printf 'interface %s\nrule 8445 8443\nrule 8446 8443 no-hide\n' "$SERVER_IF")
	refused "no-hide beside a hiding rule on the same target is refused, naming both" \
		"flags.conf:3:11: target 8443/tcp is left open \\(no-hide\\) by this rule but hidden by the rule at line 2; rules sharing a target must agree" \
		-f "$CONF" "${DRY[@]}"
	conf flags < <(printf 'interface %s\nrule 8445 8443 hide-local\nrule 8446 8443\n' "$SERVER_IF")
	refused "hide-local on one of two rules sharing a target is refused" \
		"flags.conf:3:11: target 8443/tcp is hidden by this rule but hidden with hide-local by the rule at line 2" \
		-f "$CONF" "${DRY[@]}"
	conf flags < <(printf 'interface %s\nrule 8445 8443\nrule 8446 8443 reject\n' "$SERVER_IF")
	refused "reject on one of two rules sharing a target is refused" \
		"flags.conf:3:11: target 8443/tcp is hidden with reject by this rule but hidden by the rule at line 2" \
		-f "$CONF" "${DRY[@]}"
	conf flags < <(printf 'interface %s\nrule 8445 8443 reject hide-local\nrule 8446 8443 hide-local reject\nrule 5353 5354 proto udp no-hide\nrule 8447 5354 no-hide\n' "$SERVER_IF")
	expect_cli_ok "rules sharing a target with the same hiding are accepted (other proto apart)" \
		server apply -f "$CONF" "${DRY[@]}"

	conf nocg < <(printf 'interface %s\ncgroup %s/not-a-cgroup\nrule 8445 8443\n' "$SERVER_IF" "$T_TMP")
	mkdir "$T_TMP/not-a-cgroup"
	refused "a cgroup path that is no cgroup2 directory: error at its line and column, the path's end shown" \
		"nocg.conf:2:8: cgroup '\\.\\.\\.[^']*/not-a-cgroup': not a cgroup2 directory" -f "$CONF" "${DRY[@]}"
	conf nocg < <(printf 'interface %s\n\ncgroup %s/missing\n' "$SERVER_IF" "$CGROUP2")
	refused "a missing cgroup: error at its line and column" "nocg.conf:3:8: cgroup '.*': No such file or directory" \
		-f "$CONF" "${DRY[@]}"
	conf twocg < <(printf 'interface %s\ncgroup %s\ncgroup %s/\n' "$SERVER_IF" "$CG" "$CG")
	refused "the same cgroup twice: error at the second path" "twocg.conf:3:8: cgroup '.*' already at line 2" \
		-f "$CONF" "${DRY[@]}"

	# Two names of one interface would attach it twice.
	if ip -n "$(ns server)" link property add dev "$SERVER_IF" altname srvalt0 2>/dev/null; then
		conf alt < <(printf 'interface %s\nrule 8445 8443\ninterface srvalt0\n' "$SERVER_IF")
		refused "an interface's altname beside its name is refused, naming both lines" \
			"alt.conf:3:11: interface 'srvalt0' is the interface '$SERVER_IF' of line 1 \\(ifindex [0-9]+\\)" \
			-f "$CONF" "${DRY[@]}"
	else
		echo "SKIP: config_input: interface altnames: needs 'ip link property add ... altname' (kernel 5.5)"
	fi
}

# --- what is repeated from it ----------------------------------------------------------------
test_repeated_words() {
	conf word < <(printf 'interface %s\nfrobnicate%s\n' "$SERVER_IF" "$(head -c 200 /dev/zero | tr '\0' y)")
	refused "a long word is cut to 32 bytes with an ellipsis" \
		"word.conf:2:1: unknown directive 'frobnicateyyyyyyyyyyyyyyyyyyyyyy'\\.\\.\\. \\(expected" -f "$CONF" "${DRY[@]}"
	conf esc < <(printf 'interface %s\nrule 8445 84\033[31m3\n' "$SERVER_IF")
	refused "control bytes in a word are shown as \\xNN" "esc.conf:2:11: invalid port '84\\\\x1b\\[31m3'" -f "$CONF" "${DRY[@]}"
	check "no escape byte reaches stderr" "stderr: $(cat -v <<<"$CLI_ERR")" lacks "$CLI_ERR" $'\033'
	# A file others cannot read: nothing of it is repeated, so that being allowed to run apply
	# (sudo) does not make every file root can read readable.
	# shellcheck disable=SC2016 # a hash, not an expansion
	conf shadow < <(printf 'root:$6$Zx9saltsalt$s3cr3thashs3cr3thashs3cr3thash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n')
	chown root:shadow "$CONF" 2>/dev/null || chown root:root "$CONF"
	chmod 0640 "$CONF"
	refused "a 0640 file shaped like /etc/shadow: its words are not repeated" \
		"^bpfredir apply: .*shadow.conf:1:1: unknown directive \\(expected interface, cgroup, flows, steering or rule\\)$" \
		-f "$CONF" "${DRY[@]}"
	# shellcheck disable=SC2016
	check "... not even the user name" "stderr: $CLI_ERR" lacks "$CLI_ERR" root: s3cr3t '$6'
	conf secret < <(printf 'interface %s\nrule 8445 s3cr3t\n' "$SERVER_IF")
	chmod 0600 "$CONF"
	refused "a 0600 config: the error names line and column, not the word" \
		"secret.conf:2:11: invalid port \\(expected 1-65535\\)$" -f "$CONF" "${DRY[@]}"
	# A 0644 file is no more readable than a 0600 one in a directory others cannot enter, such
	# as /root; reached through a symlink from a directory they can, all the same.
	mkdir -m 0700 "$T_TMP/private"
	printf 'interface %s\nrule 8445 s3cr3t\n' "$SERVER_IF" >"$T_TMP/private/secret.conf"
	chmod 0644 "$T_TMP/private/secret.conf"
	refused "a 0644 file in a 0700 directory: the word is not repeated" \
		"private/secret.conf:2:11: invalid port \\(expected 1-65535\\)$" -f "$T_TMP/private/secret.conf" "${DRY[@]}"
	ln -s "$T_TMP/private/secret.conf" "$T_TMP/open-link.conf"
	refused "... nor through a symlink in a directory others can enter" \
		"open-link.conf:2:11: invalid port \\(expected 1-65535\\)$" -f "$T_TMP/open-link.conf" "${DRY[@]}"
	chmod 0711 "$T_TMP/private"
	refused "... and is once others may pass through the directory" \
		"private/secret.conf:2:11: invalid port 's3cr3t' \\(expected 1-65535\\)$" -f "$T_TMP/private/secret.conf" "${DRY[@]}"
}

# --- against a loaded host -----------------------------------------------------------------
test_loaded_host() {
	conf live < <(printf 'interface %s\nrule 8445 8443\nrule 8446 8444\n' "$SERVER_IF")
	LIVE=$CONF
	expect_cli_ok "apply loads the instance" server apply -f "$LIVE" --pin-dir "$PIN"
	RULES=$'8445 8443 tcp true\n8446 8444 tcp true'
	conf norules < <(printf 'interface %s\n# the rules were here\n' "$SERVER_IF")
	refused "dry run: a file without rules on a host with rules is refused" \
		"norules.conf has no rule: applying it would remove the 2 rules in force; --allow-empty applies it anyway" \
		-f "$CONF" --dry-run --pin-dir "$PIN"
	refused "a file without rules on a host with rules is refused" "norules.conf has no rule: applying it would remove the 2 rules" \
		-f "$CONF" --pin-dir "$PIN"
	expect_rules "refused: the rules stay" server "$PIN" "$RULES"
	make_cert
	https_server server
	expect "refused: a client still reaches the service on 8445" ok "$(url "$SERVER_ADDR" 8445)" in_ns client
	expect "refused: 8443 is still hidden" dropped "$(url "$SERVER_ADDR" 8443)" in_ns client
	# Truncated mid-file, as an interrupted copy leaves it.
	head -c 15 "$LIVE" >"$T_TMP/truncated.conf" && chmod 0644 "$T_TMP/truncated.conf"
	refused "a truncated file (interface line only) is refused" "truncated.conf has no rule" \
		-f "$T_TMP/truncated.conf" --pin-dir "$PIN"
	refused "an empty file on a loaded host is refused" "empty.conf names no interface and no cgroup" \
		-f "$T_TMP/empty.conf" --pin-dir "$PIN"
	expect_rules "refused twice more: the rules stay" server "$PIN" "$RULES"

	conf flows < <(printf 'interface %s\nflows 4096\nrule 8445 8443\nrule 8446 8444\n' "$SERVER_IF")
	refused "flows other than the loaded table's is refused, not ignored" \
		"flows.conf:2:7: flows 4096, but the loaded connection table has 65536 entries; 'bpfredir unload' first" \
		-f "$CONF" --pin-dir "$PIN"
	refused "... in a dry run too" "flows.conf:2:7: flows 4096" -f "$CONF" --dry-run --pin-dir "$PIN"
	conf flows < <(printf 'interface %s\nflows 65536\nrule 8445 8443\nrule 8446 8444\n' "$SERVER_IF")
	cli server apply -f "$CONF" --pin-dir "$PIN"
	check "flows equal to the loaded table's is fine" "$(cli_result) out: $CLI_OUT" \
		test "$CLI_RC:$CLI_OUT" = "0:nothing to change"

	cli server apply -f "$T_TMP/norules.conf" --allow-empty --pin-dir "$PIN"
	check "--allow-empty removes every rule" "$(cli_result) out: $CLI_OUT" \
		test "$CLI_RC:$(sort <<<"$CLI_OUT")" = $'0:- rule 8445 8443 proto tcp\n- rule 8446 8444 proto tcp'
	expect_rules "--allow-empty: no rule left" server "$PIN" ""
	expect_cli_ok "with no rule in force, a file without rules needs no --allow-empty" \
		server apply -f "$T_TMP/norules.conf" --pin-dir "$PIN"
	cli server apply -f "$T_TMP/empty.conf" --allow-empty --pin-dir "$PIN"
	check "--allow-empty with an empty file detaches the interface" "$(cli_result) out: $CLI_OUT" \
		test "$CLI_RC:$CLI_OUT" = "0:- interface $SERVER_IF"
	expect_cli_ok "unload" server unload --pin-dir "$PIN"
}

t_run_tests config_input "$@"
