#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""An address as bpfredir's maps key it (IPv4 as ::ffff:a.b.c.d): bpftool's hex bytes
("0x00 0x00 ..."), or with `list` a JSON list of numbers.

  addr_key.py ADDR [list]

(tests/lib/bpfredir.sh addr_key.)
"""
import ipaddress
import sys

a = ipaddress.ip_address(sys.argv[1])
a = ipaddress.IPv6Address("::ffff:" + str(a)) if a.version == 4 else a
print(list(a.packed) if sys.argv[2:] == ["list"] else " ".join("0x%02x" % b for b in a.packed))
