#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The seed scenario with the service it was written for: Tomcat 10 (Debian's tomcat10-common,
# a private instance under the test's temp dir) serving HTTPS on 8443 with the test
# certificate, in both steerings:
#   - packet (the default): TC rewrites, the cgroup hooks steer local clients;
#   - socket (--steering socket): the JVM's listener, running before load and outside every
#     attached cgroup, is registered by `add` (copied with pidfd_getfd from a Java process);
#     restarted in the attached cgroup, it is followed by the sock_ops program.
# In each: curl and lwp-request reach Tomcat through 8445, v4 and v6; 8443 is dropped; local
# clients reach it on 127.0.0.1, ::1 and the host's own address; a restart needs no command;
# a keep-alive connection outlives `del`; unload gives 8443 back.
#
#   client 192.0.2.1 / 2001:db8:7::1 (cli0) ---- (srv0) 192.0.2.2, .3 / 2001:db8:7::2 server
set -uo pipefail
# shellcheck source=tests/lib/bpfredir.sh
. "$(dirname "$0")/../lib/bpfredir.sh"

ALL_TESTS="test_before_load test_packet_load test_packet_public test_packet_local
	test_packet_restart test_packet_held_across_del test_packet_unload test_socket_load
	test_socket_public test_socket_local test_socket_restart test_socket_held_across_del
	test_socket_unload"
for mode in packet socket; do
	for t in public local restart held_across_del unload; do
		t_depends "test_${mode}_$t" "test_${mode}_load"
	done
done
t_depends test_socket_load test_packet_unload

CATALINA_HOME=${CATALINA_HOME:-/usr/share/tomcat10}
CLIENT6=2001:db8:7::1
SERVER6=2001:db8:7::2
# The JVM's start under a loaded CI host, or emulated in a kernel guest.
TOMCAT_START_SECONDS=$((60 * ${BPFREDIR_TEST_TIME_SCALE:-1}))
PAGE_MARK=bpfredir-tomcat-page

setup_tests() {
	t_require java python3
	[[ -x $CATALINA_HOME/bin/catalina.sh ]] ||
		t_abort "missing $CATALINA_HOME/bin/catalina.sh (tomcat10-common; run: sudo make deps)"
	t_topology
	ip -n "$(ns client)" addr add "$CLIENT6/64" dev "$CLIENT_IF" nodad
	ip -n "$(ns server)" addr add "$SERVER6/64" dev "$SERVER_IF" nodad
	cgroup_add CG tomcat
	pin_dir PIN tomcat
	P=(--pin-dir "$PIN")
	tomcat_base
	S="https://$SERVER_ADDR"
	S6="https://[$SERVER6]"
	client=(in_ns client)
	# Running before load, outside any attached cgroup.
	tomcat_start
}

# tomcat_base: the private instance's CATALINA_BASE: one HTTPS connector on 8443 with the
# test certificate (PEM), and a page the probes tell from any other server's. The global
# web.xml maps only the default servlet (tomcat10-common ships no conf/).
tomcat_base() {
	BASE=$T_TMP/tomcat
	mkdir -p "$BASE"/{conf,logs,temp,work,webapps/ROOT}
	printf '<html><body>%s</body></html>\n' "$PAGE_MARK" >"$BASE/webapps/ROOT/index.html"
	cat >"$BASE/conf/server.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="$TARGET_PORT" protocol="org.apache.coyote.http11.Http11NioProtocol"
               SSLEnabled="true" maxThreads="8" keepAliveTimeout="60000">
      <SSLHostConfig>
        <Certificate certificateFile="$CERT" certificateKeyFile="$KEY" />
      </SSLHostConfig>
    </Connector>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" />
    </Engine>
  </Service>
</Server>
EOF
	cat >"$BASE/conf/web.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0">
  <servlet>
    <servlet-name>default</servlet-name>
    <servlet-class>org.apache.catalina.servlets.DefaultServlet</servlet-class>
    <load-on-startup>1</load-on-startup>
  </servlet>
  <servlet-mapping>
    <servlet-name>default</servlet-name>
    <url-pattern>/</url-pattern>
  </servlet-mapping>
  <welcome-file-list>
    <welcome-file>index.html</welcome-file>
  </welcome-file-list>
</web-app>
EOF
}

started_count() { grep -cs 'Server startup in' "$T_TMP/tomcat.log"; }
tomcat_started() { (($(started_count) > STARTS_BEFORE)); }

# tomcat_start [CGROUP]: Tomcat in the server's namespace (a member of CGROUP when given),
# in the foreground of its own process (catalina.sh run execs the JVM, so its pid is the
# JVM's), until it has started and served one page. Tomcat listens from its init on, but
# accepts only once its web apps are deployed, and a cold JVM's first TLS handshake is slow:
# one local request to 8443 (no rule touches it) takes that before the checks time theirs.
tomcat_start() {
	local join=()
	[[ -z ${1:-} ]] || join=("${JOIN_CGROUP[@]}" "$1")
	STARTS_BEFORE=$(started_count)
	nsenter --net="$(ns_path server)" -- env CATALINA_HOME="$CATALINA_HOME" \
		CATALINA_BASE="$BASE" CATALINA_OPTS="-Xmx256m -XX:TieredStopAtLevel=1" \
		"${join[@]}" "$CATALINA_HOME/bin/catalina.sh" run </dev/null >>"$T_TMP/tomcat.log" 2>&1 &
	TOMCAT_PID=$!
	T_PIDS+=("$TOMCAT_PID")
	wait_for "$TOMCAT_START_SECONDS" tomcat_started ||
		t_abort "Tomcat did not start: $(tail -n 5 "$T_TMP/tomcat.log")"
	in_ns server curl -ksS --noproxy '*' --max-time "$TOMCAT_START_SECONDS" -o /dev/null \
		"https://127.0.0.1:$TARGET_PORT/" || t_abort "Tomcat served no first page on 127.0.0.1"
}

tomcat_stop() { server_stop "$TOMCAT_PID" server "$TARGET_PORT" 10; }

# tomcat_served: the last probe got HTTP 200 and Tomcat's page.
tomcat_served() {
	[[ $PROBE_RC -eq 0 && $PROBE_HTTP == 200 ]] && grep -qs "$PAGE_MARK" "$T_TMP/body"
}

# page NAME WANT URL [RUNNER...]: curl to URL gives WANT: ok (HTTP 200 and Tomcat's page),
# refused or dropped.
page() {
	local name=$1 want=$2 url=$3
	shift 3
	probe "$url" "$@"
	if [[ $want == ok ]]; then
		check "$name" "expected Tomcat's page, got $(probe_result)" tomcat_served
	else
		check "$name" "expected $want, got $(probe_result)" probe_matches "$want"
	fi
}

# mode_load MODE [ARGS...]: load in that steering with the seed's rule.
mode_load() {
	local mode=$1
	shift
	expect_cli_ok "$mode: load" server load --iface "$SERVER_IF" --cgroup "$CG" "$@" "${P[@]}"
	expect_cli_ok "$mode: add 8445 8443" server add 8445 8443 "${P[@]}"
}

mode_public() {
	page "$1: client curl -> :8445 gets Tomcat's page" ok "$S:8445/" "${client[@]}"
	page "$1: client curl -> [v6]:8445 gets Tomcat's page" ok "$S6:8445/" "${client[@]}"
	expect_lwp "$1: client lwp-request -> :8445 gets 200" "$S:8445/" "${client[@]}"
	page "$1: client curl -> :8443 times out (dropped)" dropped "$S:8443/" "${client[@]}"
	page "$1: client curl -> [v6]:8443 times out (dropped)" dropped "$S6:8443/" "${client[@]}"
}

# mode_local WHO RUNNER...: health checks on the server, run through RUNNER.
mode_local() {
	local who=$1
	shift
	page "$who: curl -> 127.0.0.1:8445 gets Tomcat's page" ok https://127.0.0.1:8445/ "$@"
	page "$who: curl -> [::1]:8445 gets Tomcat's page" ok "https://[::1]:8445/" "$@"
	page "$who: curl -> own address :8445 gets Tomcat's page" ok "$S:8445/" "$@"
}

mode_restart() {
	tomcat_stop
	tomcat_start "$CG"
	page "$1: restarted in the attached cgroup: client -> :8445, no command run" ok "$S:8445/" \
		"${client[@]}"
	page "$1: restarted: client -> [v6]:8445" ok "$S6:8445/" "${client[@]}"
}

# A keep-alive connection through 8445 serves its next request after the rule is gone, and
# on the same connection (held_https.py never reconnects).
mode_held_across_del() {
	local mode=$1 first='' second=''
	coproc HOLD { exec nsenter --net="$(ns_path client)" -- timeout 60 \
		python3 "$T_HELPERS/held_https.py" "$SERVER_ADDR" 8445; }
	T_PIDS+=("$HOLD_PID")
	read -r -t 15 first <&"${HOLD[0]}"
	check "$mode: held keep-alive connection: first GET 200" "got: $first" \
		test "${first%% *}" = 200
	expect_cli_ok "$mode: del 8445" server del 8445 "${P[@]}"
	echo again >&"${HOLD[1]}"
	read -r -t 15 second <&"${HOLD[0]}"
	check "$mode: held connection: GET after del 200, same connection" \
		"first: $first, after del: $second" test "$second" = "$first"
	page "$mode: after del: a new connection to :8445 refused" refused "$S:8445/" "${client[@]}"
	page "$mode: after del: client -> :8443 works" ok "$S:8443/" "${client[@]}"
	local fd=${HOLD[1]}
	exec {fd}>&-
	wait "$HOLD_PID" 2>/dev/null
	expect_cli_ok "$mode: add 8445 8443 again" server add 8445 8443 "${P[@]}"
	page "$mode: added again: client -> :8445" ok "$S:8445/" "${client[@]}"
}

mode_unload() {
	expect_cli_ok "$1: unload" server unload "${P[@]}"
	page "$1: after unload: client -> :8443 works directly" ok "$S:8443/" "${client[@]}"
	page "$1: after unload: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
}

test_before_load() {
	page "before load: client -> :8443 gets Tomcat's page" ok "$S:8443/" "${client[@]}"
	page "before load: client -> :8445 refused" refused "$S:8445/" "${client[@]}"
}

test_packet_load() { mode_load packet; }
test_packet_public() { mode_public packet; }
# Local clients in packet mode are those of the attached cgroup.
test_packet_local() { mode_local "packet, local in the cgroup" in_cgroup server "$CG"; }
test_packet_restart() { mode_restart packet; }
test_packet_held_across_del() { mode_held_across_del packet; }
test_packet_unload() { mode_unload packet; }

test_socket_load() {
	# The JVM runs outside every attached cgroup again, as before the first load: only the
	# loader's scan can register it.
	tomcat_stop
	tomcat_start
	mode_load socket --steering socket
	expect_cli_ok "socket: status --json" server status --json "${P[@]}"
	check "socket: Tomcat's listener is registered" "$CLI_OUT" \
		json_matches '[.steering.listeners[] | select(.port == 8443)] | length >= 1'
}

test_socket_public() { mode_public socket; }
# Socket steering serves every local client, in an attached cgroup or not.
test_socket_local() {
	mode_local "socket, local outside the cgroup" in_ns server
	mode_local "socket, local in the cgroup" in_cgroup server "$CG"
}
test_socket_restart() { mode_restart socket; }
test_socket_held_across_del() { mode_held_across_del socket; }
test_socket_unload() { mode_unload socket; }

t_run_tests tomcat "$@"
