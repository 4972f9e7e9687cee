#!/usr/bin/env python3
"""vmatrace benchmarks: slowdown of a workload traced by vmatrace and by the
tools people use now, measured side by side in one run.

Each workload prints its own loop time (elapsed_ns=N); we compare that, not
the tracer's start-up. Configurations run in alternation (A B C A B C ...)
for several rounds and the medians are reported, so drift on a shared
machine hits every configuration alike. Prints a markdown table and writes
JSON (--json-out).

Usage: sudo bench/bench.py [--rounds 5] [--storm-iters 200000] [--json-out bench/results.json]
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("VMATRACE_BUILD", os.path.join(ROOT, "build"))
VMATRACE = os.path.join(BUILD, "vmatrace")
WL = os.path.join(BUILD, "workloads")


def ensure_tools():
    need = [p for p, b in (("strace", "strace"), ("bpftrace", "bpftrace")) if not shutil.which(b)]
    if need:
        subprocess.run(["apt-get", "install", "-y", "-qq", *need], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not os.path.exists(VMATRACE):
        subprocess.run([os.path.join(ROOT, "scripts", "setup.sh")], check=True)


def elapsed(text):
    m = re.findall(r"elapsed_ns=(\d+)", text)
    if not m:
        raise RuntimeError("workload printed no elapsed_ns:\n" + text[-2000:])
    return int(m[-1])


def run(cmd, tmp):
    """Runs cmd; returns (workload ns, stderr text, extra dict)."""
    out_path = os.path.join(tmp, "out.txt")
    with open(out_path, "w") as out:
        p = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({p.returncode}): {p.stderr[-2000:]}")
    with open(out_path) as f:
        text = f.read()
    size = os.path.getsize(out_path)
    return elapsed(text), p.stderr, {"output_bytes": size}


def bpftrace_script():
    # Prints the same events vmatrace does for the storm: mmap/munmap
    # results and page faults, for the child only.
    return ('tracepoint:syscalls:sys_exit_mmap,tracepoint:syscalls:sys_exit_munmap /pid == cpid/ '
            '{ printf("%d %s %lx\\n", tid, probe, args->ret); } '
            'tracepoint:exceptions:page_fault_user /pid == cpid/ '
            '{ printf("%d fault %lx %lx %lx\\n", tid, args->address, args->ip, args->error_code); }')


def configs(workload, tmp):
    wl = [os.path.join(WL, workload[0]), *workload[1:]]
    rec = os.path.join(tmp, "rec.vmat")
    return {
        "untraced": wl,
        "vmatrace": [VMATRACE, "trace", "--", *wl],
        "vmatrace record": [VMATRACE, "record", "--force", "-o", rec, "--", *wl],
        "strace": ["strace", "-f", "-qq", "-e", "trace=%memory", "-o", os.path.join(tmp, "strace.txt"), *wl],
        "bpftrace": ["bpftrace", "-q", "-c", " ".join(wl), "-e", bpftrace_script()],
    }


def fault_configs(workload, tmp):
    """Page-fault tracing side by side: per-fault records (stream), in-kernel
    counting (--faults=summary), and perf recording every page fault."""
    wl = [os.path.join(WL, workload[0]), *workload[1:]]
    return {
        "untraced": wl,
        "vmatrace stream": [VMATRACE, "trace", "--", *wl],
        "vmatrace --summary": [VMATRACE, "trace", "--summary", "--", *wl],
        "vmatrace --faults=summary": [VMATRACE, "trace", "--faults=summary", "--", *wl],
        "perf record -e page-faults -c 1": ["perf", "record", "-q", "-e", "page-faults", "-c", "1", "-o",
                                            os.path.join(tmp, "perf.data"), "--", *wl],
    }


def vmatrace_stats(stderr):
    s = {}
    m = re.search(r"loaded in ([\d.]+) ms", stderr)
    if m:
        s["attach_ms"] = float(m.group(1))
    m = re.search(r"(\d+) records", stderr)
    if m:
        s["records"] = int(m.group(1))
    m = re.search(r"lost (\d+)", stderr)
    if m:
        s["lost"] = int(m.group(1))
    return s


def bench_workload(name, workload, rounds, tmp, cfgs=None):
    cfgs = cfgs or configs(workload, tmp)
    times = {k: [] for k in cfgs}
    stats = {k: [] for k in cfgs}
    for _ in range(rounds):
        for k, cmd in cfgs.items():
            ns, err, extra = run(cmd, tmp)
            times[k].append(ns)
            if k.startswith("vmatrace"):
                st = vmatrace_stats(err)
                if k == "vmatrace record":
                    st["file_bytes"] = os.path.getsize(os.path.join(tmp, "rec.vmat"))
                stats[k].append(st)
    base = statistics.median(times["untraced"])
    res = {"workload": name, "command": " ".join(workload), "untraced_ns": base, "tools": {}}
    for k in cfgs:
        med = statistics.median(times[k])
        entry = {"median_ns": med, "ratio": med / base, "runs": times[k]}
        if stats[k]:
            for key in ("attach_ms", "records", "lost", "file_bytes"):
                vals = [s[key] for s in stats[k] if key in s]
                if vals:
                    entry[key] = statistics.median(vals) if key != "lost" else max(vals)
            if "file_bytes" in entry and entry.get("records"):
                entry["bytes_per_record"] = entry["file_bytes"] / entry["records"]
        res["tools"][k] = entry
    return res


def replay_rate(tmp):
    rec = os.path.join(tmp, "rec.vmat")
    if not os.path.exists(rec):
        return None
    import time
    t0 = time.monotonic()
    p = subprocess.run([VMATRACE, "replay", rec], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    info = subprocess.run([VMATRACE, "info", "--json", rec], capture_output=True, text=True)
    records = json.loads(info.stdout)["records"] if info.returncode == 0 else 0
    return {"records": records, "seconds": dt, "records_per_s": records / dt if dt else 0, "rc": p.returncode}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--storm-iters", type=int, default=200000)
    ap.add_argument("--fault-pages", type=int, default=262144)
    ap.add_argument("--only", choices=["storm", "faultstorm"], help="run one workload")
    ap.add_argument("--json-out", default=os.path.join(ROOT, "bench", "results.json"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the tracers load BPF programs)")
    ensure_tools()
    results = {"machine": {"kernel": platform.release(), "cpus": os.cpu_count(),
                           "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                                        if l.startswith("model name")), "?")},
               "workloads": []}
    with tempfile.TemporaryDirectory() as tmp:
        if a.only in (None, "storm"):
            storm = bench_workload("storm", ["storm", str(a.storm_iters)], a.rounds, tmp)
            storm["replay"] = replay_rate(tmp)
            results["workloads"].append(storm)
        if a.only in (None, "faultstorm"):
            fs = ["faultstorm", str(a.fault_pages)]
            results["workloads"].append(
                bench_workload("faultstorm", fs, a.rounds, tmp, fault_configs(fs, tmp)))
    with open(a.json_out, "w") as f:
        json.dump(results, f, indent=2)
    m = results["machine"]
    print(f"Machine: {m['cpu']}, {m['cpus']} CPUs, kernel {m['kernel']}; {a.rounds} rounds, medians.\n")
    print("| workload | tool | slowdown (x untraced) | records | lost | attach ms | bytes/record |")
    print("|---|---|---|---|---|---|---|")
    for w in results["workloads"]:
        for k, e in w["tools"].items():
            print(f"| {w['workload']} | {k} | {e['ratio']:.2f}x | {e.get('records', '')} | {e.get('lost', '')} | "
                  f"{e.get('attach_ms', '')} | {('%.2f' % e['bytes_per_record']) if 'bytes_per_record' in e else ''} |")
        r = w.get("replay")
        if r:
            print(f"\nreplay of the {w['workload']} recording (text to /dev/null): "
                  f"{r['records_per_s'] / 1e6:.2f} M records/s")
    print(f"\nJSON: {a.json_out}")


if __name__ == "__main__":
    main()
