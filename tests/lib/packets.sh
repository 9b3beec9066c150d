# shellcheck shell=bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Raw packets and socket probes, over net.sh: wrappers of the python helpers in
# tests/integration/helpers/ (scapy, run in a namespace).

[[ -z ${T_LIB_PACKETS:-} ]] || return 0
T_LIB_PACKETS=1
# shellcheck source=tests/lib/net.sh
. "$(dirname "${BASH_SOURCE[0]}")/net.sh"

# Debian's python3, which has scapy (a pyenv or venv python3 earlier in PATH may not).
SCAPY_PYTHON=${SCAPY_PYTHON:-/usr/bin/python3}

# t_require_scapy: the raw-packet helpers can run.
t_require_scapy() {
	"$SCAPY_PYTHON" -c 'import scapy.all' >/dev/null 2>&1 ||
		t_abort "$SCAPY_PYTHON cannot import scapy (run: sudo make deps)"
}

# syn_reply NS DST PORT [SPORT]: send one bare SYN from NS (helpers/syn_reply.py; from SPORT,
# else a random port); prints the reply's "sport flags" (e.g. "8445 SA"), or "none".
syn_reply() {
	in_ns "$1" timeout 30 "$SCAPY_PYTHON" "$T_HELPERS/syn_reply.py" "$2" "$3" "${4:-0}"
}

# expect_syn_reply NAME NS DST PORT WANT [SPORT]: the SYN to DST:PORT is answered with
# WANT ("sport flags").
expect_syn_reply() {
	local got
	got=$(syn_reply "$2" "$3" "$4" "${6:-}" 2>&1)
	expect_eq "$1" "$5" "$got" "SYN to $3:$4, the reply"
}

# raw_probe CASE ADDR PORT ...: crafted packets from the client (helpers/rawprobe.py, which
# lists the cases), every answer sniffed; the JSON result is in RAW_OUT. A probe that could
# not run leaves RAW_OUT empty and says why in RAW_ERR, which the checks report as a failure.
raw_probe() {
	if ! RAW_OUT=$(in_ns client timeout 60 "$SCAPY_PYTHON" "$T_HELPERS/rawprobe.py" "$@" 2>"$T_TMP/raw.err") ||
		! jq -e '.cases' <<<"$RAW_OUT" >/dev/null 2>&1; then
		RAW_ERR="rawprobe failed: $(tail -c 300 "$T_TMP/raw.err") $RAW_OUT"
		RAW_OUT=
	fi
}

# raw_answers CASE ADDR PORT: the answers to one probe of the last raw_probe, one a line:
# "tcp SPORT FLAGS", "udp SPORT echo|payload-differs" or "icmp QUOTED-SPORT QUOTED-DPORT".
# shellcheck disable=SC2016 # jq variables
raw_answers() {
	jq -r --arg c "$1" --arg a "$2" --argjson p "$3" '.cases[]
		| select(.case == $c and .addr == $a and .port == $p) | .answers[]
		| if .proto == "tcp" then "tcp \(.sport) \(.flags)"
		  elif .proto == "udp" then "udp \(.sport) \(if .payload_ok then "echo" else "payload-differs" end)"
		  else "icmp \(.sport) \(.dport)" end' <<<"$RAW_OUT" 2>/dev/null
}

# expect_answer NAME CASE ADDR PORT WANT: the probe's answers (see raw_answers), joined by
# commas, are WANT, e.g. "tcp 8445 SA" ("" for none at all, ICMP errors included).
expect_answer() {
	local got
	if [[ -z $RAW_OUT ]]; then
		fail "$1" "$RAW_ERR"
		return
	fi
	got=$(raw_answers "$2" "$3" "$4" | paste -sd, -)
	if [[ $got == "$5" ]]; then
		pass "$1"
	else
		fail "$1" "$2 to $(endpoint "$3" "$4"): expected '${5:-no answer}', got '${got:-no answer}'"
	fi
}

# udp_connected NS ADDR PORT [SECONDS]: one datagram from a socket in NS connected to
# ADDR:PORT (helpers/udp_connected.py); prints "echo", "payload-differs", "refused" or "none"
# (nothing at all within SECONDS, default 1.5).
udp_connected() {
	in_ns "$1" timeout 10 "$SCAPY_PYTHON" "$T_HELPERS/udp_connected.py" "$2" "$3" "${4:-1.5}"
}

# xfer ADDR PORT: XFER_BYTES (the test sets it) echoed through ADDR:PORT from the client
# (helpers/xfer.py, sha256 compared); prints "ok" or what went wrong.
xfer() {
	local out
	out=$(in_ns client timeout 60 "$SCAPY_PYTHON" "$T_HELPERS/xfer.py" echo "$1" "$2" "${XFER_BYTES:?}" 2>&1)
	if jq -e '.ok' <<<"$out" >/dev/null 2>&1; then
		echo ok
	else
		printf '%s: %s\n' "$(endpoint "$1" "$2")" "$(tail -c 300 <<<"$out")"
	fi
}

