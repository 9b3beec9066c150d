#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Write the synopsis of every verb into README.md and scripts/dist/bpfredir.8, between their
GENERATED SYNOPSIS markers, from what the binary's help says; with --check, change nothing
and fail when either file is out of step (make docs, make docs-check).

usage: scripts/docs.py [--check] BINARY

The help is the source for now: `BINARY --help` names the verbs, `BINARY VERB --help` gives
each verb's usage (its first line, and the lines after it indented by four spaces), and the
two must agree. When the verbs are declared in tables, the synopsis will come from those.
"""
import difflib
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MANPAGE = REPO / "scripts" / "dist" / "bpfredir.8"
MD_BEGIN = "<!-- BEGIN GENERATED SYNOPSIS (make docs, from bpfredir --help) -->"
MD_END = "<!-- END GENERATED SYNOPSIS -->"
ROFF_BEGIN = '.\\" BEGIN GENERATED SYNOPSIS (make docs)'
ROFF_END = '.\\" END GENERATED SYNOPSIS'


def die(msg):
    print(f"docs.py: {msg}", file=sys.stderr)
    sys.exit(1)


def run_help(binary, *args):
    res = subprocess.run([binary, *args, "--help"], capture_output=True, text=True)
    if res.returncode != 0:
        die(f"'{' '.join([binary, *args, '--help'])}' exited with {res.returncode}")
    return res.stdout.splitlines()


def usage_of(lines, first):
    """The usage lines of one verb: its first line, and the continuation lines after it."""
    out = [first]
    for line in lines:
        if not line.startswith("    "):
            break
        out.append(line)
    return out


def synopsis(binary):
    """[lines of the general usage], then one [lines] per verb, in --help's order."""
    top = run_help(binary)
    if not top or not top[0].startswith("Usage: bpfredir "):
        die(f"'{binary} --help' does not start with 'Usage: bpfredir'")
    verbs = []
    for i, line in enumerate(top):
        m = re.match(r"bpfredir ([a-z][a-z-]*)( |$)", line)
        if not m:
            continue
        own = run_help(binary, m.group(1))
        if not own or not own[0].startswith(f"Usage: bpfredir {m.group(1)}"):
            die(f"'{binary} {m.group(1)} --help' does not start with its usage")
        usage = usage_of(own[1:], own[0][len("Usage: "):])
        if usage != usage_of(top[i + 1:], line):
            die(f"the usage of '{m.group(1)}' differs between '--help' and "
                f"'{m.group(1)} --help'")
        verbs.append(usage)
    if not verbs:
        die(f"'{binary} --help' names no verb")
    return [top[0][len("Usage: "):]], verbs


def markdown(general, verbs):
    lines = ["```"] + general + [""]
    for usage in verbs:
        lines += usage
    return lines + ["```"]


def roff_line(line):
    """One usage in roff: literal words bold, placeholders italic, '-' escaped, no break
    inside brackets, no word hyphenated."""
    out, depth = [], 0
    for tok in re.split(r"(\s+|[\[\]|]|\.\.\.)", line.strip()):
        if not tok:
            continue
        depth += tok == "["
        depth -= tok == "]"
        text = tok.replace("\\", "\\e").replace("-", "\\-")
        if tok.isspace():
            out.append("\\~" if depth else " ")
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*", tok):
            out.append(f"\\fI{text}\\fR")
        elif re.fullmatch(r"-{1,2}[a-z][a-z-]*|[a-z][a-z0-9-]*", tok):
            out.append(f"\\fB{text}\\fR")
        else:
            out.append(text)
    # \\% at the start of every word: roff neither hyphenates it nor breaks it at a '-'.
    return "\\%" + re.sub(r"( |\\~)", lambda m: m.group(1) + "\\%", "".join(out))


def roff(general, verbs):
    """Filled, left-aligned, each verb's usage hanging from its first line."""
    lines = [".ad l", roff_line(general[0]), ".sp", ".in +4n"]
    for i, usage in enumerate(verbs):
        lines += ([".br"] if i else []) + [".ti -4n", roff_line(" ".join(usage))]
    return lines + [".in -4n", ".ad"]


def replace_between(path, begin, end, block):
    text = path.read_text()
    lines = text.split("\n")
    try:
        b, e = lines.index(begin), lines.index(end)
    except ValueError:
        die(f"{path.relative_to(REPO)}: the markers '{begin}' and '{end}' are missing")
    if e < b:
        die(f"{path.relative_to(REPO)}: '{end}' comes before '{begin}'")
    return text, "\n".join(lines[:b + 1] + block + lines[e:])


def main():
    args = sys.argv[1:]
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        sys.exit(0)
    check = bool(args) and args[0] == "--check"
    if check:
        args = args[1:]
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    general, verbs = synopsis(args[0])
    stale = False
    for path, begin, end, block in ((README, MD_BEGIN, MD_END, markdown(general, verbs)),
                                    (MANPAGE, ROFF_BEGIN, ROFF_END, roff(general, verbs))):
        old, new = replace_between(path, begin, end, block)
        if old == new:
            continue
        name = str(path.relative_to(REPO))
        if check:
            stale = True
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), name, name + " (from --help)"))
        else:
            path.write_text(new)
            print(f"docs.py: {name}: synopsis written")
    if stale:
        die("the synopsis is out of step with the binary's help: run 'make docs'")


main()
