#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""nmap's XML output (nmap ... -oX -) on stdin, as one line per port scanned:

  PROTO PORT STATE REASON [TTL]      e.g. "tcp 8445 open syn-ack 64"

in the order nmap lists them. --ttl adds the TTL of the packet that gave the reason (0 when
none came). The XML must be one finished scan of one host, every port listed: a scan that
nmap ended with an error, a host that timed out or that nmap did not report, or ports folded
into <extraports> (their numbers are not all listed) print what went wrong on stderr and
exit 1, so that no half-read scan passes for an answer. (tests/integration/scanner.sh.)

  nmapxml.py [--ttl] < scan.xml
"""
import sys
import xml.etree.ElementTree as ET


def die(msg):
    print(f"nmapxml: {msg}", file=sys.stderr)
    sys.exit(1)


def port_lines(root, with_ttl):
    finished = root.find("runstats/finished")
    if finished is None:
        die("the scan did not finish (no <runstats><finished>)")
    if finished.get("exit") != "success":
        die(f"nmap exited with {finished.get('exit')}: {finished.get('errormsg', '')}")
    hosts = root.findall("host")
    if len(hosts) != 1:
        die(f"expected one host, the XML has {len(hosts)}")
    host = hosts[0]
    if host.get("timedout") == "true":
        die("the host timed out (--host-timeout)")
    for extra in host.findall("ports/extraports"):
        die(f"{extra.get('count')} ports folded into extraports ({extra.get('state')})")
    lines = []
    for port in host.findall("ports/port"):
        state = port.find("state")
        if state is None:
            die(f"port {port.get('portid')} has no <state>")
        fields = [port.get("protocol"), port.get("portid"), state.get("state"),
                  state.get("reason")]
        if with_ttl:
            fields.append(state.get("reason_ttl", "0"))
        if any(f is None or f == "" for f in fields):
            die(f"port {port.get('portid')}: a field is missing: {fields}")
        lines.append(" ".join(fields))
    if not lines:
        die("no port in the scan")
    return lines


def main():
    args = sys.argv[1:]
    if args not in ([], ["--ttl"]):
        print("usage: nmapxml.py [--ttl] < scan.xml", file=sys.stderr)
        sys.exit(2)
    try:
        root = ET.parse(sys.stdin).getroot()
    except ET.ParseError as e:
        die(f"not XML: {e}")
    if root.tag != "nmaprun":
        die(f"not nmap's XML (root <{root.tag}>)")
    print("\n".join(port_lines(root, args == ["--ttl"])))


main()
