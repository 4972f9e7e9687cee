#!/usr/bin/env python3
"""`vmatrace report --folded` read by a real consumer: speedscope's importer.

    check_speedscope.py VMATRACE WORKLOADS SPEEDSCOPE_DIR WORKDIR MODULES_DIR

Records the mallocgrowth workload (loads BPF: needs root; fails, never skips,
when it cannot), writes `report --malloc --folded` and `report --faults
--folded`, and has speedscope (npm, in Debian's headless Chromium:
speedscope/import.mjs) read both. Checks that speedscope reads them as folded
stacks, that it finds exactly the stacks and weights of each file, and that its
totals equal `report --malloc --json`'s bytes and `report --faults --json`'s
faults. MODULES_DIR gets `npm ci` of SPEEDSCOPE_DIR's lock file when it is
not installed yet.
"""
import collections
import filecmp
import json
import os
import shutil
import sys

from export_check import Checks

VMATRACE, WORKLOADS, SPEEDSCOPE, WORK, MODULES = sys.argv[1:6]
checks = Checks(WORK)
check = checks.check


def run(argv, ok=(0,), timeout=300):
    return checks.run(argv, ok, timeout=timeout, text=True)


# speedscope and playwright-core from the committed lock file, once.
os.makedirs(MODULES, exist_ok=True)
lock = os.path.join(SPEEDSCOPE, "package-lock.json")
if not (os.path.exists(os.path.join(MODULES, "package-lock.json"))
        and filecmp.cmp(lock, os.path.join(MODULES, "package-lock.json"), shallow=False)
        and os.path.exists(os.path.join(MODULES, "node_modules/speedscope/package.json"))):
    shutil.copy(os.path.join(SPEEDSCOPE, "package.json"), MODULES)
    shutil.copy(lock, MODULES)
    run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", MODULES])

rec = os.path.join(WORK, "mallocgrowth.vmat")
run([VMATRACE, "record", "-o", rec, "--", os.path.join(WORKLOADS, "mallocgrowth"), os.path.join(WORK, "steps")])

malloc = json.loads(run([VMATRACE, "report", rec, "--malloc", "--json", "--top", "0"]).stdout)
faults = json.loads(run([VMATRACE, "report", rec, "--faults", "--json"]).stdout)
files = {}
for kind, want_total in (("malloc", malloc["bytes"]), ("faults", faults["faults"])):
    path = os.path.join(WORK, kind + ".folded")
    text = run([VMATRACE, "report", rec, "--" + kind, "--folded"]).stdout
    open(path, "w").write(text)
    stacks = collections.Counter()
    for line in text.splitlines():
        stack, value = line.rsplit(" ", 1)
        stacks[stack] += int(value)
    check(want_total > 0 and sum(stacks.values()) == want_total,
          f"{kind}: folded total {sum(stacks.values())}, report --{kind} --json {want_total}")
    files[path] = (kind, stacks, want_total)

out = run(["node", os.path.join(SPEEDSCOPE, "import.mjs"), MODULES, *files], timeout=240).stdout
read = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
check(len(read) == len(files), f"speedscope read {len(read)} of {len(files)} files: {out!r}")
summary = []
for r in read:
    kind, want, total = files[r["file"]]
    got = collections.Counter(r["stacks"])
    check(r["importer"] == "Importing as collapsed stack format",
          f"{kind}: speedscope read it as folded stacks, not {r['importer']!r}")
    check(sum(got.values()) == total, f"{kind}: speedscope's total {sum(got.values())}, report's {total}")
    missing, extra = want - got, got - want
    check(not missing and not extra, f"{kind}: speedscope's stacks differ\n  only in the file: "
          f"{sorted(missing.items())[:10]}\n  only in speedscope: {sorted(extra.items())[:10]}")
    summary.append(f"{kind} {len(got)} stacks, total {total}")

checks.finish("speedscope: " + "; ".join(summary) + ": all match")
