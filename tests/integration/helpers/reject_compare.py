#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The kernel's and bpfredir's answers to one rejectprobe.py probe, field by field: prints
what is the same, or exits non-zero saying what differs.

  reject_compare.py KERNEL.json BPFREDIR.json CLOSED4.json

CLOSED4.json is the kernel's answer at a closed IPv4 port, a few seconds earlier: the IP ID
of an IPv4 ICMP error must go on from it. (tests/integration/reject_icmp.sh compare.)
"""
import json
import sys

k = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
closed4 = json.load(open(sys.argv[3]))
if "error" in k or "error" in b:
    sys.exit("probe failed")
ka = [bytes.fromhex(a) for a in k["answers"]]; ba = [bytes.fromhex(a) for a in b["answers"]]
if len(ka) != len(ba) or len(ka) > 1:
    sys.exit(f"kernel answered {len(ka)} time(s), bpfredir {len(ba)}")
if not ka:
    print("no answer from either"); sys.exit(0)
kf, bf = ka[0], ba[0]
if len(kf) != len(bf):
    sys.exit(f"length: kernel {len(kf)}, bpfredir {len(bf)}")
ethertype = kf[12:14]
varied = set()
if ethertype == b"\x08\x00" and kf[23] == 1:
    varied = {18, 19, 24, 25}             # IPv4 ICMP: IP ID, so the header checksum
    last = bytes.fromhex(closed4["answers"][0])
    delta = (int.from_bytes(bf[18:20], "big") - int.from_bytes(last[18:20], "big")) % 65536
    # The kernel's counter grows by 1 and a random amount below the jiffies elapsed (HZ
    # 250 to 1000): the closed-port probe was a few seconds before.
    if not 1 <= delta <= 10000:
        sys.exit(f"IP ID {bf[18:20].hex()} does not go on from the kernel's "
                 f"{last[18:20].hex()} (delta {delta})")
elif ethertype == b"\x86\xdd" and kf[20] == 6:
    varied = {15, 16, 17}                 # IPv6 RST flow label (low nibble of 15, 16, 17)
diff = [i for i in range(len(kf)) if kf[i] != bf[i] and
        not (i in varied and (i != 15 or (kf[i] ^ bf[i]) & 0xf0 == 0))]
if diff:
    i = diff[0]
    sys.exit(f"{len(diff)} byte(s) differ, first at {i}: kernel {kf[i]:#04x}, "
             f"bpfredir {bf[i]:#04x}; kernel {kf.hex()} bpfredir {bf.hex()}")
print(f"{len(kf)} bytes, same but for bytes {sorted(i for i in varied if kf[i] != bf[i])}")
