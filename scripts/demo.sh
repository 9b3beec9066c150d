#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The seed scenario, narrated: a client and a server in throwaway network namespaces, a real
# HTTPS service (openssl s_server on 8443) and real clients (curl, lwp-request). Each step
# shows the command as an operator would type it and what came of it. Everything is removed
# at the end, whatever happens; the exit status is non-zero when any step did not give the
# expected result. Run as root: `sudo make demo`.
set -uo pipefail
export BPFREDIR_TEST_PREFIX=bpfredir-demo
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../tests/lib/bpfredir.sh"

UNEXPECTED=0

section() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$@"; }

# verdict OK WHAT: print the outcome of a step, flagged when it is not the expected one.
verdict() {
	if [[ $1 == 0 ]]; then
		printf '   -> %s\n' "$2"
	else
		printf '   -> %s   <<< UNEXPECTED\n' "$2"
		UNEXPECTED=$((UNEXPECTED + 1))
	fi
}

describe_probe() {
	case $PROBE_RC in
	0) if served_page; then echo "HTTP $PROBE_HTTP, the s_server page (connected to 8443)"; else echo "HTTP $PROBE_HTTP"; fi ;;
	7) echo "connection refused (curl exit 7): nothing listens there" ;;
	28) echo "no answer, timed out (curl exit 28): the packets are dropped" ;;
	*) echo "curl exit $PROBE_RC: $(head -n1 "$T_TMP/curl.err")" ;;
	esac
}

# curl_step WANT PROMPT URL RUNNER...: show and run `curl -k URL`; WANT is ok, refused or
# dropped.
curl_step() {
	local want=$1 prompt=$2 url=$3
	shift 3
	printf '%s curl -k %s\n' "$prompt" "$url"
	probe "$url" "$@"
	probe_matches "$want"
	verdict $? "$(describe_probe)"
}

# lwp_step PROMPT URL RUNNER...: show and run lwp-request, which must get 200.
lwp_step() {
	local prompt=$1 url=$2 out
	shift 2
	printf '%s lwp-request %s\n' "$prompt" "$url"
	out=$(lwp_get "$url" "$@")
	[[ $? -eq 0 && $out == 200* ]]
	verdict $? "${out:-no output}"
}

# bpfredir_step ARGS...: show and run a loader command on the server; it must succeed.
bpfredir_step() {
	printf 'server# bpfredir %s\n' "$*"
	cli server "$@" --pin-dir "$PIN"
	[[ -z $CLI_OUT ]] || printf '%s\n' "$CLI_OUT" | sed '/./s/^/     /'
	if [[ $CLI_RC -eq 0 ]]; then
		verdict 0 "ok"
	else
		verdict 1 "exit $CLI_RC: $CLI_ERR"
	fi
}

# counters_step NAME...: show some counters of `list --json`; each must be above zero.
counters_step() {
	local keys name value shown=() ok=0
	keys=$(printf '%s,' "$@")
	printf "server# bpfredir list --json | jq -c '.stats | {%s}'\n" "${keys%,}"
	for name in "$@"; do
		value=$(counter server "$PIN" "$name")
		[[ $value =~ ^[0-9]+$ && $value -gt 0 ]] || ok=1
		shown+=("\"$name\":${value:-?}")
	done
	verdict "$ok" "{$(IFS=,; printf '%s' "${shown[*]}")}  (all above zero)"
}

t_init demo
t_topology
cgroup_add CG app
pin_dir PIN demo
https_server server

S="https://$SERVER_ADDR"
LO=https://127.0.0.1
client=(in_ns client)
in_cg=(in_cgroup server "$CG")

cat <<EOF
bpfredir demo: the iptables recipe
    nat PREROUTING REDIRECT 8445->8443, mangle MARK + filter DROP 8443,
    nat OUTPUT -o lo REDIRECT 8445->8443
done with eBPF, on throwaway network namespaces:
    client  $CLIENT_ADDR ($CLIENT_IF)  <-- veth -->  server  $SERVER_ADDR ($SERVER_IF)
The server runs \`openssl s_server -accept 8443 -www\` (HTTPS, self-signed certificate).
'client\$' and 'server\$' are shells on those hosts; 'server[app]\$' is a shell in the
server's cgroup $CG.
(Each bpfredir command also gets --pin-dir $PIN so as not to touch a real installation.)
EOF

section "Before bpfredir: the service answers on 8443 only"
curl_step ok 'client$' "$S:8443/" "${client[@]}"
curl_step refused 'client$' "$S:8445/" "${client[@]}"

section "Load the programs and move the service to 8445"
bpfredir_step load --iface "$SERVER_IF" --cgroup "$CG"
bpfredir_step add 8445 8443
bpfredir_step list
note "(no bpfredir process stays running: the programs, maps and links are pinned)"

section "External clients: 8445 works, 8443 is gone"
curl_step ok 'client$' "$S:8445/" "${client[@]}"
lwp_step 'client$' "$S:8445/" "${client[@]}"
curl_step dropped 'client$' "$S:8443/" "${client[@]}"
counters_step rewritten reverse_rewritten hidden_dropped

section "Local clients in the cgroup are redirected too (the nat OUTPUT rule)"
curl_step ok 'server[app]$' "$LO:8445/" "${in_cg[@]}"
curl_step ok 'server[app]$' "$S:8445/" "${in_cg[@]}"
lwp_step 'server[app]$' "$LO:8445/" "${in_cg[@]}"
note "outside the cgroup, nothing is redirected:"
curl_step refused 'server$' "$LO:8445/" in_ns server
counters_step sock_redirected

section "Move the public port again: add 8446, then delete 8445"
bpfredir_step add 8446 8443
bpfredir_step del 8445
bpfredir_step list
curl_step ok 'client$' "$S:8446/" "${client[@]}"
curl_step refused 'client$' "$S:8445/" "${client[@]}"
curl_step dropped 'client$' "$S:8443/" "${client[@]}"

section "Delete the last rule: the original state is back"
bpfredir_step del 8446
curl_step ok 'client$' "$S:8443/" "${client[@]}"
curl_step refused 'client$' "$S:8446/" "${client[@]}"

section "Unload: everything detached, pins removed"
bpfredir_step add 8445 8443
bpfredir_step unload
printf 'server# ls %s\n' "$PIN"
[[ ! -e $PIN ]]
verdict $? "$(if [[ -e $PIN ]]; then echo "still there"; else echo "no such directory"; fi)"
printf 'server# bpftool prog show | grep bpfredir_\n'
wait_for 5 no_new_bpfredir_progs
verdict $? "$(new_bpfredir_progs | sed 's/^/program id /' | paste -sd' ' - | grep . || echo 'nothing')"
curl_step ok 'client$' "$S:8443/" "${client[@]}"

echo
if ((UNEXPECTED == 0)); then
	echo "demo: every step gave the expected result"
else
	echo "demo: $UNEXPECTED step(s) did not give the expected result"
fi
((UNEXPECTED == 0))
