#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The report of tests/bench/run.sh: results.md (tables) and plot.gp + plot.dat (for
results.png) from OUT/raw.tsv, OUT/prog_cost.tsv, OUT/memory.tsv (when bpfredir ran) and
OUT/env.txt, and docs/bench.md: the method (tests/bench/method.md), these tables and the
reading of them.

usage: report.py OUT "VARIANT ..." [DOC]

DOC (default: BENCH_DOC from the environment, else the repository's docs/bench.md) is
written whole, but for its reading of the ratios: that is prose about one run's figures,
written by hand between the READING markers, and kept as it is. When it was written for
another run than this one, it is marked so, and said on stderr, until someone reads it again
and changes its date.

Each cell is the median over the rounds and, in parentheses, its ratio to the baseline's
median of the same run. A variant that could not run says why in every cell of its column;
a measurement that failed says how.
"""
import os
import re
import statistics
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
READING_BEGIN = re.compile(r"<!-- reading of the run of (.*?): written by hand, kept by report.py -->")
READING_END = "<!-- end of the reading -->"

METRICS = [
    # key, label, unit; the baseline's figure for the row comes from baseline_key
    ("ingress_single", "2 ingress, one flow", "datagrams/s"),
    ("ingress_newport", "2 ingress, new source port per packet", "datagrams/s"),
    ("hidden_drop", "3 hidden port, new source port per packet", "drops/s"),
    ("conn_external", "4 connections, external (veth)", "conn/s"),
    ("conn_local", "4 connections, local (127.0.0.1)", "conn/s"),
    ("conn_local_nomark", "4 connections, local, recipe without its TCP MARK rule", "conn/s"),
    ("throughput", "5a iperf3 throughput", "Gbit/s"),
    ("throughput_nooffload", "5b iperf3, offloads off (TSO, GSO, GRO off on both veth ends)",
     "Gbit/s"),
]
# Rows whose baseline (and bpfredir) figure is another row's: see run.sh.
SAME_AS = {
    "hidden_drop": {"baseline": "ingress_newport"},
    "conn_local_nomark": {"baseline": "conn_local", "tc-pass": "conn_local",
                          "bpfredir": "conn_local", "bpfredir-xdp": "conn_local",
                          "bpfredir-socket": "conn_local"},
}
# Rows also measured, each round, in the variant's own namespaces seconds before its rules
# went in (run.sh's paired_rows: metric + "_pair").
PAIRED = ["ingress_single", "ingress_newport", "throughput_nooffload"]
SHORT = {
    "ingress_single": "ingress 1 flow",
    "ingress_newport": "ingress new flows",
    "hidden_drop": "hidden drops",
    "conn_external": "conn ext",
    "conn_local": "conn local",
    "conn_local_nomark": "conn local (no MARK)",
    "throughput": "iperf3",
    "throughput_nooffload": "iperf3 no offloads",
}


MIB = 1 << 20
# The maps the flow tables are by name; any other map of the instance that grows with
# --flows, or that the held connections filled, counts too.
FLOW_TABLES = ("flows", "pending_buckets")
GOAL_MIB = 128
GOAL_FLOWS = 1_000_000


def memory_section(path):
    """Benchmark 6 from memory.tsv (run.sh, bench_memory): its table and what it says."""
    loads, maps, held, fails = [], {}, {}, []
    for line in path.read_text().splitlines():
        f = line.split("\t")
        if f[0] == "map":
            load = int(f[1])
            if load not in loads:
                loads.append(load)
            maps[load, f[2]] = {"type": f[3], "max": int(f[4]), "mem": int(f[5]),
                                "flags": int(f[6])}
        elif f[0] == "held":
            held[f[2]] = (int(f[1]), int(f[3]), int(f[4]))
        elif f[0] == "fail":
            fails.append(f[1])
    md = ["Benchmark 6, memory of the connection tables: bpfredir (tcx) loaded with "
          "`--flows N`, the kernel's own accounting of the maps in the instance's pin dir "
          "(`bytes_memlock` of `bpftool map show`) that grow with `--flows` or that held "
          "connections filled. The XDP variant (`--mode xdp`) loads the very same maps (the "
          "loader pins one set, which TC, XDP and the socket hooks share), so its figures are "
          f"these. Goal (issue 16, stated here, not asserted): at most {GOAL_MIB} MiB for "
          f"{GOAL_FLOWS:,} flows.", ""]
    if not loads:
        return md + ["**Not measured**: " + ("; ".join(fails) or "no figure") + "."]
    names = {n for _, n in maps}
    per_conn = {n: (after - before) / k for n, (k, before, after) in held.items()}
    grows = {n for n in names if len({maps[l, n]["mem"] for l in loads if (l, n) in maps}) > 1}
    tables = [n for n in FLOW_TABLES if n in names]
    tables += sorted((grows | {n for n, e in per_conn.items() if e > 0}) - set(tables))
    first = loads[0]

    def capacity(load):
        """Held connections that a load of this size holds (None: they took no entry)."""
        caps = [maps[load, n]["max"] / per_conn[n] for n in tables
                if per_conn.get(n, 0) > 0 and (load, n) in maps]
        return min(caps) if caps else None

    def total(load):
        return sum(maps[load, n]["mem"] for n in tables if (load, n) in maps)

    md += ["| load | map (type) | entries | bytes_memlock | bytes per entry "
           "| entries per held connection |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for load in loads:
        for n in tables:
            if (load, n) not in maps:
                continue
            m = maps[load, n]
            note = " (not preallocated: counts only the entries present)" \
                if m["flags"] & 1 and "hash" in m["type"] else ""
            per = f"{per_conn[n]:g}" if load == first and n in per_conn else ""
            md.append(f"| `--flows {load}` | {n} ({m['type']}){note} | {m['max']:,} "
                      f"| {m['mem']:,} | {m['mem'] / m['max']:.1f} | {per} |")
        cap = capacity(load)
        room = f" (room for {cap:,.0f} connections)" if cap else ""
        md.append(f"| `--flows {load}` | **connection tables{room}** | | "
                  f"**{total(load):,} ({total(load) / MIB:.1f} MiB)** | | |")

    text = []
    if held:
        k = next(iter(held.values()))[0]
        took = ", ".join(f"{n} {per_conn[n]:g}" for n in tables if n in per_conn)
        text.append(f"A tracked flow here is one TCP connection through the public port, "
                    f"both directions: {k} of them, each having carried data both ways, kept "
                    f"open while every hash map of the instance was counted, took per "
                    f"connection: {took} entries.")
    cap = capacity(first)
    if cap:
        text.append(f"Per tracked flow at `--flows {first}`, which holds {cap:,.0f} of them: "
                    f"**{total(first) / cap:,.1f} bytes** of connection tables (their whole "
                    f"memory over the flows they hold).")
        at_goal = [l for l in loads if capacity(l) and round(capacity(l)) == GOAL_FLOWS]
        if at_goal:
            l = at_goal[0]
            text.append(f"Total at {GOAL_FLOWS:,} tracked flows (`--flows {l}`): "
                        f"**{total(l):,} bytes, {total(l) / MIB:.1f} MiB** (goal: at most "
                        f"{GOAL_MIB} MiB).")
        else:
            text.append(f"No load here holds exactly {GOAL_FLOWS:,} tracked flows; at the "
                        f"bytes per flow above (arithmetic, not the kernel's accounting) they "
                        f"would take {total(first) / cap * GOAL_FLOWS / MIB:.1f} MiB (goal: at "
                        f"most {GOAL_MIB} MiB).")
    elif held:
        text.append(f"The held connections left no entry in the instance's maps: the tables "
                    f"cost what `--flows` reserves, whatever the number of flows: "
                    f"{total(first) / MIB:.1f} MiB at `--flows {first}` (goal: at most "
                    f"{GOAL_MIB} MiB for {GOAL_FLOWS:,} flows).")
    others = [n for n in sorted(names) if n not in tables]
    other_mem = sum(maps[first, n]["mem"] for n in others)
    text.append(f"The instance's other {len(others)} maps, whose size does not follow "
                f"`--flows`, take {other_mem:,} bytes ({other_mem / MIB:.1f} MiB) more. A map "
                "of socket storage (sk_storage) is charged to the sockets that store in it, "
                "not to the map.")
    text += [f"Failed: {f}." for f in fails]
    return md + ["", " ".join(text)]


def paired_section(variants, na, by_round):
    """Rows 2 and 5b as each round's figure over its own pair (run.sh's paired_rows)."""
    shown = [v for v in variants if v != "baseline" and v not in na]
    if not any((v, k + "_pair") in by_round for v in shown for k in PAIRED):
        return []
    md = ["", "Rows 2 and 5b against a baseline of their own: each round, in the variant's fresh "
          "namespaces and seconds before its rules (or tc-pass's programs) went in, the same "
          "traffic to 8443 with no rule was measured; a round's ratio is the variant's figure "
          "over that one. Median of the rounds, and the lowest and highest in parentheses. The "
          "ratios in the table above compare figures taken minutes apart instead.", "",
          "| benchmark | " + " | ".join(shown) + " |", "| --- |" + " ---: |" * len(shown)]
    labels = {key: label for key, label, _ in METRICS}
    for key in PAIRED:
        cells = []
        for v in shown:
            figure, pair = by_round.get((v, key), {}), by_round.get((v, key + "_pair"), {})
            ratios = [float(figure[r]) / float(pair[r]) for r in figure
                      if r in pair and not figure[r].startswith("FAIL")
                      and not pair[r].startswith("FAIL") and float(pair[r])]
            cells.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                         if ratios else "-")
        md.append(f"| {labels[key]} | " + " | ".join(cells) + " |")
    return md


def fmt(x):
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}"


def main():
    out = Path(sys.argv[1])
    variants = sys.argv[2].split()
    raw = {}  # (variant, metric) -> [values or "FAIL: ..."]
    by_round = {}  # (variant, metric) -> {round: the round's last value}
    na = {}
    lines = (out / "raw.tsv").read_text().splitlines()[1:]
    for line in lines:
        rnd, variant, metric, value = line.split("\t", 3)
        if metric == "all":
            # Backticks (iptables quotes `like this') would start code in markdown.
            na[variant] = value[len("NA: "):].replace("`", "'")
            continue
        raw.setdefault((variant, metric), []).append(value)
        by_round.setdefault((variant, metric), {})[rnd] = value

    def median(variant, metric):
        src = SAME_AS.get(metric, {}).get(variant, metric)
        vals = raw.get((variant, src))
        if not vals:
            return None, None
        fails = [v for v in vals if v.startswith("FAIL: ")]
        if fails:
            return None, f"✗ {len(fails)}/{len(vals)} rounds failed: {fails[0][6:]}"
        return statistics.median(float(v) for v in vals), None

    env = dict(l.split("\t", 1) for l in (out / "env.txt").read_text().splitlines() if "\t" in l)
    md = [f"Measured {env.get('date', '?')} on {env.get('machine', '?')}, kernel "
          f"{env.get('kernel', '?')}, bpfredir {env.get('bpfredir', '?')}, libbpf "
          f"{env.get('libbpf', '?')}; {env.get('tools', '?')}. {env.get('knobs', '')}; "
          f"load average {env.get('load_before', '?')} before, {env.get('load_after', '?')} "
          f"after; {env.get('duration', '?')} in all.", ""]

    md += ["Benchmark 1, program cost: bpfredir's ingress programs (TC and XDP), ns per packet "
           "above an empty program of the same hook (BPF_PROG_TEST_RUN; medians over the "
           "rounds)", "",
           "| packet (path) | TC floor | TC with bpfredir | **TC cost** | XDP floor "
           "| XDP with bpfredir | **XDP cost** |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines = [l.split("\t") for l in (out / "prog_cost.tsv").read_text().splitlines()]
    for name, tc_floor, tc_prog, tc_cost, xdp_floor, xdp_prog, xdp_cost in (
            l for l in lines if len(l) == 7):
        md.append(f"| {name} | {tc_floor} | {tc_prog} | **{tc_cost}** | {xdp_floor} "
                  f"| {xdp_prog} | **{xdp_cost}** |")
    steering = [l for l in lines if len(l) == 4]
    if steering:
        md += ["", "Socket steering (`--steering socket`): its sk_lookup program per new "
               "connection, above an empty sk_lookup program; an established packet runs no "
               "program in that mode", "",
               "| connection (path) | floor | with bpfredir | **cost** |",
               "| --- | ---: | ---: | ---: |"]
        md += [f"| {name} | {floor} | {prog} | **{cost}** |" for name, floor, prog, cost in steering]
    for name, floor, prog, per_call, n in (l for l in lines if len(l) == 5):
        md += ["", f"The price of a call here: {n} calls of a helper that does next to nothing and "
               f"that the verifier does not inline (`bpf_get_numa_node_id`) take {prog} ns in an "
               f"sk_lookup program against the empty one's {floor}: **{per_call} ns per call**. "
               "Socket steering's mechanism makes three such calls (the sockmap lookup, "
               "`bpf_sk_assign`, `bpf_sk_release`). This kernel's guards on calls and returns: "
               f"{env.get('mitigations', '?')}."]

    md += ["", "Benchmarks 2-5: median over the rounds (ratio to the no-rule baseline of the "
           "same run; higher is better everywhere)", "",
           "| benchmark | unit | " + " | ".join(variants) + " |",
           "| --- | --- |" + " ---: |" * len(variants)]
    plot_rows = []
    for key, label, unit in METRICS:
        base, _ = median("baseline", key)
        cells, ratios = [], []
        for v in variants:
            if v in na:
                text = na[v]
                cells.append(f"**{text}**" if text.startswith("NOT") else text)
                ratios.append("?")
                continue
            m, err = median(v, key)
            if err:
                cells.append(err)
                ratios.append("?")
            elif m is None:
                cells.append("-")
                ratios.append("?")
            elif v == "baseline" or not base:
                cells.append(fmt(m))
                ratios.append("1" if v == "baseline" else "?")
            else:
                cells.append(f"{fmt(m)} ({m / base:.2f})")
                ratios.append(f"{m / base:.3f}")
        md.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
        plot_rows.append((SHORT[key], ratios))
    md += paired_section(variants, na, by_round)
    recipe_local_failed = [v for v in variants if v in ("ipt-nft", "ipt-legacy", "nft")
                           and (median(v, "conn_local")[1] or "").startswith("✗")]
    if recipe_local_failed:
        md += ["", f"Local connections through the exact recipe failed here "
               f"({', '.join(recipe_local_failed)}). Where they time out, the cause is the "
               "recipe itself: after nat OUTPUT REDIRECT the packets carry dport 8443 when "
               "they come back in through lo, the mangle MARK rule (no -i) marks them and "
               "the filter rule drops them. The row after measures the recipe with its TCP "
               "MARK rule taken out, i.e. the nat OUTPUT rule alone."]
    frames = [(v, median(v, "frame_nooffload")[0]) for v in variants if v not in na]
    frames = [f"{v} {m:,.0f}" for v, m in frames if m is not None]
    if frames:
        md += ["", "Row 5b: the mean size of the frames the server's veth received during "
               "iperf3 (Ethernet header included; medians over the rounds), which shows the "
               "segments were one MTU each, as on a wire without offloads: "
               + ", ".join(frames) + " bytes."]
    md += ["", "Rows 3 and the last local row have no figure of their own for some columns: "
           "the baseline of the hidden-port row is the same traffic delivered with no rule "
           "(row 2, new source ports; tc-pass has no hidden port either), and bpfredir "
           "(like tc-pass) has no MARK rule to take out, so its local figure stands there "
           "too."]
    memory = out / "memory.tsv"
    if memory.exists():
        md += [""] + memory_section(memory)
    # Prose wrapped like the docs it goes into; tables stay one row a line.
    md = [l if l.startswith("|") else textwrap.fill(l, 95) for l in md]
    (out / "results.md").write_text("\n".join(md) + "\n")
    doc = Path(sys.argv[3] if len(sys.argv) > 3 else
               os.environ.get("BENCH_DOC", HERE.parent.parent / "docs" / "bench.md"))
    write_doc(doc, md, env.get("date", "?"))

    # The baseline is the dashed line at 1; a variant with no figure at all is named under
    # the plot instead of drawing nothing.
    with open(out / "plot.dat", "w") as f:
        f.write("# metric\t" + "\t".join(variants) + "\n")
        for name, ratios in plot_rows:
            f.write(f'"{name}"\t' + "\t".join(ratios) + "\n")
    drawn = [(i, v) for i, v in enumerate(variants)
             if v != "baseline" and any(r[1][i] != "?" for r in plot_rows)]
    if not drawn:
        drawn = [(0, "baseline")]
    missing = [f"{v}: {na.get(v, 'no figure')}" for i, v in enumerate(variants)
               if v != "baseline" and all(r[1][i] == "?" for r in plot_rows)]
    # Inside a gnuplot string, a backtick would run a shell command.
    note = "not drawn: " + "; ".join(missing)
    for c in "'\"`":
        note = note.replace(c, "")
    cols = " ,\\\n     ".join(
        f"'plot.dat' using {i + 2}:xtic(1) title '{v}'" for i, v in drawn)
    (out / "plot.gp").write_text(f"""set terminal pngcairo size 1100,520 font ",10"
set output 'results.png'
set title "bpfredir vs the iptables recipe: ratio to the no-rule baseline (higher is better)\\n{env.get('date', '')}, {env.get('kernel', '')}"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key outside right top
set xtics rotate by -20
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2
set label 1 "{note if missing else ''}" at screen 0.01, screen 0.03 font ",9"
set bmargin 6
plot {cols}
""")


def write_doc(doc, results, date):
    """docs/bench.md: the method, the latest results, and the kept reading of them."""
    old = doc.read_text() if doc.exists() else ""
    m = READING_BEGIN.search(old)
    end = old.find(READING_END, m.end()) if m else -1
    if m and end >= 0:
        reading_date, reading = m.group(1), old[m.end():end].strip("\n")
    else:
        reading_date, reading = date, "Reading the ratios: not written yet."
    stale = []
    if reading_date != date:
        stale = [textwrap.fill(f"(The reading below was written for the run of {reading_date}; "
                               "read it again against these figures, then change the date in "
                               "its marker.)", 95), ""]
        print(f"report.py: {doc}: the reading of the ratios was written for the run of "
              f"{reading_date}, not this one ({date})", file=sys.stderr)
    text = ["# Benchmarks", "",
            "<!-- Written by tests/bench/report.py (make bench) from tests/bench/method.md and",
            "the run's results: edit those, not this page, but for the reading of the ratios",
            "between the markers at its end, which report.py keeps. -->", "",
            (HERE / "method.md").read_text().rstrip("\n"), "",
            "## Latest results", "",
            textwrap.fill("The plot of this run is `.output/bench/results.png` on the machine "
                          "that made it. Figures move by several percent from run to run, so a "
                          "ratio slightly above 1 is noise.", 95), ""]
    text += results + [""] + stale
    text += [f"<!-- reading of the run of {reading_date}: written by hand, kept by report.py -->",
             reading, READING_END]
    doc.write_text("\n".join(text) + "\n")


main()
