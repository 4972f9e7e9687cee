#!/usr/bin/env python3
"""`vmatrace report --perfetto` decoded by protoc against our .proto subset.

    check_perfetto.py VMATRACE WORKLOADS PROTO_DIR WORKDIR

Records the checkpoints workload (loads BPF: needs root; fails, never skips,
when it cannot), writes the Perfetto trace, decodes it with
`protoc --decode=vmatrace.perfetto.Trace` and checks, at moments between the
recording's records:
  - the VMA slices open then are exactly the VMAs `replay --maps --at T`
    prints for that process (start and end of every slice are therefore the
    recording's VMA lifetimes);
  - the mapped-bytes counters (summed over kinds) equal the total of
    `replay --pmap --at T`;
and that every slice closes, lineage flows exist, names are interned, and
the file stays <= 2x the recording's decompressed size for the storm.
"""
import bisect
import collections
import json
import os
import re
import signal
import subprocess
import sys
import time

from export_check import Checks

VMATRACE, WORKLOADS, PROTO_DIR, WORK = sys.argv[1:5]
checks = Checks(WORK)
check, run = checks.check, checks.run


def record_checkpoints(path):
    """record -- checkpoints, continuing it at each of its SIGSTOPs."""
    p = subprocess.Popen([VMATRACE, "record", "-o", path, "--", os.path.join(WORKLOADS, "checkpoints")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while p.poll() is None and time.time() < deadline:
        for task in os.listdir(f"/proc/{p.pid}/task") if os.path.exists(f"/proc/{p.pid}/task") else []:
            try:
                children = open(f"/proc/{p.pid}/task/{task}/children").read().split()
            except OSError:
                continue
            for c in children:
                for pid in [c] + descendants(c):
                    try:
                        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
                    except OSError:
                        continue
                    if state == "T":
                        os.kill(int(pid), signal.SIGCONT)
        time.sleep(0.02)
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        sys.exit(f"record -- checkpoints: status {p.returncode}\n{err.decode()[-3000:]}")


def descendants(pid):
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            for c in open(f"/proc/{pid}/task/{task}/children").read().split():
                out += [c] + descendants(c)
    except OSError:
        pass
    return out


def parse_text(text):
    """protobuf text format -> nested dicts of lists."""
    root = collections.defaultdict(list)
    stack = [root]
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
        elif line.endswith("{"):
            child = collections.defaultdict(list)
            stack[-1][line[:-1].strip()].append(child)
            stack.append(child)
        else:
            key, value = line.split(":", 1)
            value = value.strip()
            if value.startswith('"'):
                value = value[1:-1].encode().decode("unicode_escape")
            stack[-1][key.strip()].append(value)
    return root


def one(d, key, default=None):
    v = d.get(key)
    return v[0] if v else default


def decode(path):
    text = run(["protoc", "--decode=vmatrace.perfetto.Trace", "-I", PROTO_DIR, "perfetto_trace.proto"],
               stdin=open(path, "rb")).stdout.decode()
    return parse_text(text)["packet"]


def model(packets):
    tracks, names, process_of = {}, {}, {}
    slices, counters, flows_out, flows_in = [], collections.defaultdict(list), set(), set()
    open_ = collections.defaultdict(list)
    interned_names = 0
    for p in packets:
        for idata in p.get("interned_data", []):
            for e in idata.get("event_names", []):
                names[one(e, "iid")] = one(e, "name")
                interned_names += 1
        for d in p.get("track_descriptor", []):
            uuid = one(d, "uuid")
            proc = one(d, "process")
            tracks[uuid] = {"name": one(d, "name", ""), "parent": one(d, "parent_uuid"),
                            "pid": int(one(proc, "pid")) if proc else None, "counter": "counter" in d}
        for e in p.get("track_event", []):
            ts, track, kind = int(one(p, "timestamp")), one(e, "track_uuid"), one(e, "type")
            if kind == "TYPE_SLICE_BEGIN":
                open_[track].append({"name": names.get(one(e, "name_iid")), "begin": ts, "track": track})
                flows_out.update(e.get("flow_ids", []))
                flows_in.update(e.get("terminating_flow_ids", []))
            elif kind == "TYPE_SLICE_END":
                s = open_[track].pop()
                s["end"] = ts
                slices.append(s)
            elif kind == "TYPE_COUNTER":
                counters[track].append((ts, int(one(e, "counter_value"))))
    for t in tracks.values():
        parent = tracks.get(t["parent"]) if t["parent"] else None
        t["owner"] = t["pid"] if t["pid"] is not None else (parent["pid"] if parent else None)
    return tracks, slices, counters, flows_out, flows_in, sum(len(v) for v in open_.values()), interned_names


rec = os.path.join(WORK, "checkpoints.vmat")
record_checkpoints(rec)
out = os.path.join(WORK, "checkpoints.pftrace")
r = run([VMATRACE, "report", rec, "--perfetto", out])
print(r.stderr.decode().strip())
r = run([VMATRACE, "report", rec, "--perfetto", out], ok=(1,))
check(b"--force" in r.stderr, "an existing output needs --force")
run([VMATRACE, "report", rec, "--perfetto", out, "--force"])

tracks, slices, counters, flows_out, flows_in, unclosed, interned = model(decode(out))
check(unclosed == 0, f"{unclosed} slices never end")
check(len(flows_out) > 0 and flows_out == flows_in, f"lineage flows: {len(flows_out)} out, {len(flows_in)} in")
check(interned > 0, "event names are interned")
check(all(s["name"] for s in slices), "every slice has a name")
procs = {t["pid"] for t in tracks.values() if t["pid"] is not None}
check(len(procs) >= 2, f"process tracks for the workload and its fork child: {procs}")

# Moments: midway between consecutive distinct record timestamps of each process.
events = [json.loads(l) for l in run([VMATRACE, "replay", "--json", rec]).stdout.decode().splitlines()
          if l.startswith("{")]
by_pid = collections.defaultdict(list)
for e in events:
    if "ts" in e and "pid" in e:
        by_pid[e["pid"]].append(e["ts"])
main_pid = min(by_pid, key=lambda p: min(by_pid[p]))
stamps = sorted(set(by_pid[main_pid]))
moments = [(stamps[i] + stamps[i + 1]) // 2 for i in range(1, len(stamps) - 1, max(1, len(stamps) // 12))
           if stamps[i + 1] > stamps[i] + 1]
check(len(moments) >= 8, f"enough moments to compare: {len(moments)}")

def bytes_at(track, t):
    values = counters.get(track, [])
    i = bisect.bisect_right([ts for ts, _ in values], t)
    return values[i - 1][1] if i else 0

# replay --pmap's kinds as the trace's counters group them.
PMAP_GROUP = {"program text": "code", "shared-library code": "code", "program data": "file",
              "shared-library data": "file", "file mmap": "file", "program bss": "anon", "anonymous mmap": "anon",
              "heap": "heap", "stack": "stack", "shared memory": "shared", "vdso/vvar": "special"}
compared = 0
for t in moments:
    maps = run([VMATRACE, "replay", rec, "--maps", "--at", str(t), "--pid", str(main_pid)], ok=(0, 1)).stdout.decode()
    want = set()
    for line in maps.splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            want.add((int(m.group(1), 16), int(m.group(2), 16)))
    if not want:
        continue
    got = set()
    for s in slices:
        if tracks[s["track"]]["owner"] == main_pid and s["begin"] <= t < s["end"]:
            a, b = s["name"].split()[0].split("-")
            got.add((int(a, 16), int(b, 16)))
    check(got == want, f"at {t}: slices open {len(got)}, maps {len(want)}; only slices: "
          f"{sorted(got - want)[:5]}, only maps: {sorted(want - got)[:5]}")
    pmap = run([VMATRACE, "replay", rec, "--pmap", "--at", str(t), "--pid", str(main_pid)], ok=(0, 1)).stdout.decode()
    by_kind = collections.Counter()
    for name, kib in re.findall(r"^  (\S.*?)\s+(\d+) KiB in \d+ VMA", pmap, re.M):
        if name != "total":
            by_kind[PMAP_GROUP[name]] += int(kib)
    counted = {k: sum(bytes_at(u, t) for u, tr in tracks.items() if tr["counter"] and tr["name"] == "mapped " + k
                      and tr["owner"] == main_pid) // 1024 for k in set(PMAP_GROUP.values())}
    check({k: v for k, v in counted.items() if v} == {k: v for k, v in by_kind.items() if v},
          f"at {t}: mapped KiB by kind {counted}, pmap {dict(by_kind)}")
    m = re.search(r"^\s+total\s+(\d+) KiB", pmap, re.M)
    mapped = sum(bytes_at(u, t) for u, tr in tracks.items()
                 if tr["counter"] and tr["name"].startswith("mapped ") and tr["owner"] == main_pid)
    check(m and mapped // 1024 == int(m.group(1)), f"at {t}: mapped counters {mapped // 1024} KiB, pmap "
          f"{m.group(1) if m else None} KiB")
    compared += 1
check(compared >= 8, f"compared at {compared} moments")

# Size: the storm, against its recording's decompressed size.
storm = os.path.join(WORK, "storm.vmat")
run([VMATRACE, "record", "-o", storm, "--", os.path.join(WORKLOADS, "storm"), "20000"])
sout = os.path.join(WORK, "storm.pftrace")
run([VMATRACE, "report", storm, "--perfetto", sout])
raw = json.loads(run([VMATRACE, "info", "--json", storm]).stdout)["raw_bytes"]
size = os.path.getsize(sout)
check(size <= 2 * raw, f"storm: perfetto {size} bytes > 2x the recording's {raw} decompressed bytes")
stracks = sum(1 for _ in model(decode(sout))[0])
check(stracks < 2000, f"storm: {stracks} tracks")

checks.finish(f"perfetto: {len(slices)} slices, {len(flows_out)} flows, {compared} moments match maps and pmap; "
      f"storm {size} bytes for {raw} raw ({size / raw:.2f}x), {stracks} tracks")
