#!/usr/bin/env python3
"""`vmatrace report --pprof` read by the real pprof (built from Debian's source).

    check_pprof.py VMATRACE WORKLOADS PPROF WORKDIR

Records the mallocgrowth workload (loads BPF: needs root; fails, never
skips, when it cannot), then checks that
  - `pprof -top -sample_index=growth/bytes` lists the call sites of
    `report --malloc --json` with the same bytes (per function, and per
    source line with -lines), and growth/count the same counts;
  - `pprof -traces` holds the same stacks, from the call site outwards, with
    the same bytes, as the malloc_growth events of `replay --json`;
  - with --faults, faults/count totals `report --faults --json`'s faults;
  - an existing output needs --force; a recording without malloc stacks says
    so in one line; a damaged recording writes what it can and exits 3.
"""
import collections
import json
import os
import re
import sys

from export_check import Checks

VMATRACE, WORKLOADS, PPROF, WORK = sys.argv[1:5]
checks = Checks(WORK)
check = checks.check


def run(argv, ok=(0,)):
    return checks.run(argv, ok, timeout=120, text=True)


def pprof(*args):
    # -symbolize=none: every location is symbolized in the file already;
    # -nodefraction=0: no small node is dropped from the listing.
    return run([PPROF, "-symbolize=none", "-nodefraction=0", *args]).stdout


def top_rows(text):
    """pprof -top rows with -unit=byte/count: {name: (flat, cum)}."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+)\S*\s+[\d.]+%\s+[\d.]+%\s+(\d+)\S*\s+[\d.]+%\s+(.+?)\s*$", line)
        if m:
            rows[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return rows


def traces(text):
    """pprof -traces: {(frame, ...): value}, innermost first."""
    out = collections.Counter()
    for block in text.split("-----------+-------------------------------------------------------")[1:]:
        # Labels first (" allocator:  malloc"), then "VALUE  leaf", then callers.
        lines = [l for l in block.splitlines() if l.strip() and not re.match(r"^\s*[A-Za-z_]+:\s", l)]
        if not lines:
            continue
        m = re.match(r"^\s*(\d+)\S*\s+(.*)$", lines[0])
        if not m:
            continue
        frames = [m.group(2).strip()] + [l.strip() for l in lines[1:]]
        out[tuple(frames)] += int(m.group(1))
    return out


rec = os.path.join(WORK, "mallocgrowth.vmat")
run([VMATRACE, "record", "-o", rec, "--", os.path.join(WORKLOADS, "mallocgrowth"), os.path.join(WORK, "steps")])

# --- the profile, and --force ---------------------------------------------
prof = os.path.join(WORK, "malloc.pb.gz")
r = run([VMATRACE, "report", rec, "--pprof", prof])
check(open(prof, "rb").read(2) == b"\x1f\x8b", "the profile is gzipped")
r = run([VMATRACE, "report", rec, "--pprof", prof], ok=(1,))
check("--force" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
      f"an existing output needs --force, said in one line: {r.stderr!r}")
run([VMATRACE, "report", rec, "--pprof", prof, "--force"])

# --- call sites: pprof -top against report --malloc ---------------------------
report = json.loads(run([VMATRACE, "report", rec, "--malloc", "--json", "--top", "0"]).stdout)
by_function, by_line = collections.Counter(), collections.Counter()
count_by_function = collections.Counter()
for s in report["sites"]:
    by_function[s["function"]] += s["bytes"]
    count_by_function[s["function"]] += s["count"]
    by_line[(s["function"], s["location"])] += s["bytes"]
check(report["bytes"] > 0 and len(report["sites"]) >= 6, f"the workload grew memory at 6+ sites: {report['sites']}")

top = top_rows(pprof("-top", "-nodecount=0", "-unit=byte", "-sample_index=growth/bytes", prof))
flat = {name: f for name, (f, _) in top.items() if f}
want = {fn: b for fn, b in by_function.items() if fn != "?"}
got = {fn: b for fn, b in flat.items() if not fn.startswith("0x")}
check(got == want, f"pprof -top growth/bytes by function\n  pprof:  {sorted(got.items())}\n  report: {sorted(want.items())}")
check(sum(flat.values()) == report["bytes"], f"total bytes: pprof {sum(flat.values())}, report {report['bytes']}")

counts = top_rows(pprof("-top", "-nodecount=0", "-sample_index=growth/count", prof))
got = {fn: f for fn, (f, _) in counts.items() if f and not fn.startswith("0x")}
want = {fn: c for fn, c in count_by_function.items() if fn != "?"}
check(got == want, f"pprof -top growth/count by function\n  pprof:  {sorted(got.items())}\n  report: {sorted(want.items())}")

lines = top_rows(pprof("-top", "-lines", "-nodecount=0", "-unit=byte", "-sample_index=growth/bytes", prof))
got = collections.Counter()
for name, (f, _) in lines.items():
    m = re.match(r"^(.+?) (\S+):(\d+)$", name)  # "fn /path/file.c:42"
    if f and m:
        got[(m.group(1), os.path.basename(m.group(2)) + ":" + m.group(3))] += f
want = {k: v for k, v in by_line.items() if k[0] != "?" and re.search(r":\d+$", k[1])}
check(dict(got) == want, f"pprof -top -lines by call site\n  pprof:  {sorted(got.items())}\n  report: {sorted(want.items())}")

# --- stacks: pprof -traces against replay --json's malloc_growth events -----------
events = [json.loads(l) for l in run([VMATRACE, "replay", "--json", rec]).stdout.splitlines() if l.startswith("{")]
growths = [e for e in events if e.get("event") == "malloc_growth"]
check(len(growths) == sum(count_by_function.values()), f"{len(growths)} malloc_growth events, report counts "
      f"{sum(count_by_function.values())}")
want = collections.Counter()
for g in growths:
    stack = g["stack"]
    cs = g.get("call_site")
    first = next((i for i, f in enumerate(stack) if cs and f["pc"] == cs["pc"]), 0)
    want[tuple(f["function"] or f["pc"] for f in stack[first:])] += g["bytes"]
got = traces(pprof("-traces", "-unit=byte", "-sample_index=growth/bytes", prof))
check(got == want, "pprof -traces stacks\n  pprof:  %s\n  replay: %s" % (sorted(got.items()), sorted(want.items())))

# --- folded stacks: the same stacks and bytes as pprof, the total of report --malloc ---
folded = collections.Counter()
total_folded = 0
for line in run([VMATRACE, "report", rec, "--malloc", "--folded"]).stdout.splitlines():
    stack, value = line.rsplit(" ", 1)
    frames = stack.split(";")  # comm; outermost ... call site; [allocator]
    check(frames[-1].startswith("[") and frames[-1].endswith("]"), f"folded leaf is the allocator: {line}")
    folded[tuple(reversed(frames[1:-1]))] += int(value)
    total_folded += int(value)
check(total_folded == report["bytes"], f"folded total {total_folded}, report --malloc {report['bytes']}")
check(folded == got, "folded stacks vs pprof -traces\n  folded: %s\n  pprof:  %s" % (sorted(folded.items()),
                                                                                  sorted(got.items())))

# --- mappings carry the recording's build ids -----------------------------------
raw = pprof("-raw", prof)
info = run([VMATRACE, "info", rec]).stdout
ids = set(re.findall(r"\b([0-9a-f]{40})\b", info))
check(any(i in raw for i in ids), "the mappings carry the build ids of `vmatrace info`")

# --- faults ----------------------------------------------------------------
fprof = os.path.join(WORK, "faults.pb.gz")
run([VMATRACE, "report", rec, "--pprof", fprof, "--faults"])
faults = json.loads(run([VMATRACE, "report", rec, "--faults", "--json"]).stdout)
total = sum(f for f, _ in top_rows(pprof("-top", "-nodecount=0", "-sample_index=faults/count", fprof)).values())
want = faults.get("faults")
check(want is not None and total == want, f"faults/count total {total}, report --faults {want}")
check("fault:" in pprof("-traces", "-sample_index=faults/count", fprof), "fault samples carry the fault label")

# --- bad input -------------------------------------------------------------
off = os.path.join(WORK, "off.vmat")
run([VMATRACE, "record", "--malloc=off", "-o", off, "--", os.path.join(WORKLOADS, "mallocgrowth"),
     os.path.join(WORK, "steps2")])
r = run([VMATRACE, "report", off, "--pprof", os.path.join(WORK, "off.pb.gz")], ok=(1,))
check(len(r.stderr.strip().splitlines()) == 1 and "malloc stacks" in r.stderr, f"no stacks: one line: {r.stderr!r}")
check(not os.path.exists(os.path.join(WORK, "off.pb.gz")), "no profile without stacks")

damaged = os.path.join(WORK, "damaged.vmat")
data = open(rec, "rb").read()
open(damaged, "wb").write(data[: len(data) * 2 // 3])
dprof = os.path.join(WORK, "damaged.pb.gz")
r = run([VMATRACE, "report", damaged, "--pprof", dprof], ok=(3,))
check(os.path.exists(dprof), "a damaged recording still writes its profile")
pprof("-top", dprof)  # and pprof reads it

checks.finish(f"pprof: {len(report['sites'])} call sites, {len(growths)} growths, "
              f"{report['bytes']} bytes, {total} faults: all match")
