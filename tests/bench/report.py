#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The report of tests/bench/run.sh: results.md (tables) and plot.gp + plot.dat (for
results.png) from OUT/raw.tsv, OUT/prog_cost.tsv and OUT/env.txt, and docs/bench.md: the
method (tests/bench/method.md), these tables and the reading of them.

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
    "conn_local_nomark": {"baseline": "conn_local", "bpfredir": "conn_local",
                          "bpfredir-xdp": "conn_local"},
}
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


def fmt(x):
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}"


def main():
    out = Path(sys.argv[1])
    variants = sys.argv[2].split()
    raw = {}  # (variant, metric) -> [values or "FAIL: ..."]
    na = {}
    lines = (out / "raw.tsv").read_text().splitlines()[1:]
    for line in lines:
        _, variant, metric, value = line.split("\t", 3)
        if metric == "all":
            # Backticks (iptables quotes `like this') would start code in markdown.
            na[variant] = value[len("NA: "):].replace("`", "'")
            continue
        raw.setdefault((variant, metric), []).append(value)

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
    for line in (out / "prog_cost.tsv").read_text().splitlines():
        name, tc_floor, tc_prog, tc_cost, xdp_floor, xdp_prog, xdp_cost = line.split("\t")
        md.append(f"| {name} | {tc_floor} | {tc_prog} | **{tc_cost}** | {xdp_floor} "
                  f"| {xdp_prog} | **{xdp_cost}** |")

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
           "(row 2, new source ports), and bpfredir has no MARK rule to take out, so its "
           "local figure stands there too."]
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
