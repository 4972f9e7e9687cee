#!/usr/bin/env python3
"""vmatrace benchmarks: every workload untraced, under vmatrace in each of its
modes, and under the tools people use now, measured side by side in one run.

Run it through scripts/bench.sh (builds what it needs, installs the peers):
    sudo ./scripts/bench.sh [--quick] [--rounds N] [--only storm,faultstorm,...] [--update-docs]

Method
- Configurations of one workload run in alternation (A B C ... A B C ...) for
  several rounds and the medians are reported, so drift on a shared machine
  hits every configuration alike. /proc/loadavg is printed at start and end.
- Slowdown: the workload's own time (it prints elapsed_ns=N around its loop;
  a real program is timed by build/workloads/timed, which runs it) against
  the untraced median. Tracer start-up is never in it.
- Tracer CPU: utime+stime of the tracer's whole process tree (wait4) minus
  the CPU of the traced command (which `timed` reports) minus the same
  tracer's fixed cost measured on `true` (BPF load and verification, bpftrace's
  compiler...), divided by the events it delivered: the consumer's cost per
  event. In-kernel (BPF) work runs in the traced process: it shows in the
  slowdown, not here.
- Tracer peak memory: VmHWM of the tracer process, sampled while it runs.
- Events/lost: vmatrace's summary line on stderr; peers' output lines.
- Bytes per recorded event: `vmatrace record` file size / records.
- Replay: `vmatrace replay --stats FILE` (decode + apply) and
  `vmatrace replay FILE > /dev/null` (text), records per second.
- Cost as work grows: build/bench/vmatrace_layout_bench (Google Benchmark)
  applies synthetic records to one process of 10, 1,000 and 100,000 VMAs.

Prints markdown tables (targets marked met/missed) and writes JSON; with
--update-docs also docs/generated/performance.md (docs/performance.md links it).
`bench.py --self-test` checks the parsers and the table code without root.

--vm runs the storm, fault storm, 8-thread storm and mapmany rows inside
Debian's 6.1 kernel under qemu TCG (tests/vm/run-in-vm.sh, one boot): this
script itself runs there (--in-vm) with sizes TCG runs in seconds, vmatrace
in the VM's default plan (fentry) and forced to kprobes, and prints its
results for the host, which writes bench/results-vm61.{json,md} and, with
--update-docs, docs/generated/performance-vm61.md. TCG emulates the CPU, so
its ratios are comparable within that table only.
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
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_TABLES = os.path.join(ROOT, "docs", "generated", "performance.md")
DOCS_TABLES_VM = os.path.join(ROOT, "docs", "generated", "performance-vm61.md")
RUN_IN_VM = os.path.join(ROOT, "tests", "vm", "run-in-vm.sh")
# The guest prints its results on one line after this marker (serial console).
VM_RESULTS_MARKER = "VMATRACE_BENCH_RESULTS "
BUILD = os.environ.get("VMATRACE_BUILD", os.path.join(ROOT, "build"))
VMATRACE = os.path.join(BUILD, "vmatrace")
WL = os.path.join(BUILD, "workloads")
TIMED = os.path.join(WL, "timed")
LAYOUT_BENCH = os.path.join(BUILD, "bench", "vmatrace_layout_bench")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")

# Targets (issue #9). Ratios are x untraced.
TARGET = {
    "storm": 1.2,
    "faultstorm_stream": 1.05,
    "faultstorm_summary": 1.02,
    "mallocheavy_default": 1.02,
    "consumer_ns_per_event": 40.0,
    "replay_events_per_s": 20e6,
    "bytes_per_event": 5.0,
    "attach_ms": 100.0,
    "neighbour": 1.02,      # an untraced process while another is traced
    "threads": 1.3,         # 8-thread storm
    "exit_ms": 100.0,       # traced command's exit -> vmatrace's exit
    "true_s": 0.3,          # `trace -- /bin/true`, start to prompt
    # Issue #16: flat frontend cost at any layout size, fast replay.
    "mapmany_ratio": 1.5,
    "done_after_s": 1.0,
    "replay_text_events_per_s": 5e6,
    "replay_json_events_per_s": 3e6,
    # Issue #17: mapmany within 1.05x (the 1.5x above is issue #16's).
    "mapmany_17": 1.05,
}

# ---------------------------------------------------------------- parsing


def parse_elapsed(text):
    """The workload's own time: its last elapsed_ns=, else timed's cmd_wall_ns=."""
    m = re.findall(r"(?<![\w])elapsed_ns=(\d+)", text)
    if m:
        return int(m[-1])
    m = re.findall(r"cmd_wall_ns=(\d+)", text)
    if m:
        return int(m[-1])
    raise RuntimeError("the workload printed no elapsed_ns / cmd_wall_ns:\n" + text[-1500:])


def parse_cmd_end(text):
    """timed's cmd_end_ns= (CLOCK_MONOTONIC, as time.monotonic()), in seconds."""
    m = re.findall(r"cmd_end_ns=(\d+)", text)
    return int(m[-1]) / 1e9 if m else None


def parse_cmd_cpu(text):
    m = re.findall(r"cmd_cpu_ns=(\d+)", text)
    return int(m[-1]) if m else None


def parse_vmatrace_stderr(text):
    """Banner: '... (loaded in 123.4 ms)'; summary: 'vmatrace: N records, ...; lost M'."""
    s = {}
    m = re.search(r"loaded in ([\d.]+) ms", text)
    if m:
        s["attach_ms"] = float(m.group(1))
    m = re.search(r"^vmatrace: (\d+) records\b.*?; lost (\d+)", text, re.M)
    if m:
        s["events"] = int(m.group(1))
        s["lost"] = int(m.group(2))
    return s


def parse_attach(text):
    """The banner's plan: '...; attach: syscalls=fentry faults=raw_tracepoint ... (loaded in'."""
    m = re.search(r"; attach: (.*?) \(loaded in", text)
    return m.group(1) if m else None


def parse_perf_record_stderr(text):
    m = re.search(r"\((\d+) samples\)", text)
    return {"events": int(m.group(1))} if m else {}


def parse_heaptrack_stderr(text):
    m = re.search(r"allocations:\s+(\d+)", text)
    return {"events": int(m.group(1))} if m else {}


def parse_bpftrace_lost(text):
    m = re.findall(r"Lost (\d+) events", text)
    return sum(int(x) for x in m) if m else 0


def count_lines(path, prefix=None):
    if not os.path.exists(path):
        return None
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if prefix is None or line.startswith(prefix):
                n += 1
    return n


def vmatrace_has_malloc():
    try:
        out = subprocess.run([VMATRACE, "trace", "--help"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return False
    return re.search(r"--malloc\b", out) is not None


def vmatrace_malloc_modes():
    """The --malloc modes this build accepts (CLI11 lists them in --help)."""
    try:
        out = subprocess.run([VMATRACE, "trace", "--help"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return set()
    m = re.search(r"--malloc\s+TEXT:\{([^}]*)\}", out)
    return {x.strip() for x in m.group(1).split(",")} if m else set()


# ---------------------------------------------------------------- tools


class Tool:
    """One way to run a workload. argv(wl, tmp) gives the command for the
    workload's argv; events(run) fills events/lost after a run."""

    def __init__(self, key, label, argv, kind, wrap=True, events=None, record=False, mode=None):
        self.key, self.label, self.argv_fn, self.kind = key, label, argv, kind
        self.wrap = wrap  # run the workload through `timed` (CPU accounting)
        self.events_fn = events
        self.record = record
        self.mode = mode  # vmatrace mode name for the tables

    def argv(self, wl, tmp):
        inner = [TIMED, *wl] if self.wrap else list(wl)
        return self.argv_fn(inner, tmp)


def libc_path():
    for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
              "/lib64/libc.so.6", "/usr/lib64/libc.so.6"):
        if os.path.exists(p):
            return p
    return "libc"


def vmatrace_tools(has_malloc, exe=None):
    VMATRACE = exe or globals()["VMATRACE"]
    vt = lambda *opts: (lambda wl, tmp: [VMATRACE, "trace", *opts, "--", *wl])
    recf = lambda *opts: (lambda wl, tmp: [VMATRACE, "record", *opts, "--force", "-o", os.path.join(tmp, "rec.vmat"),
                                           "--", *wl])
    rec = recf()
    # Raw user stack memory kept (issue 22): what the default (frames unwound
    # while recording) saves in file size, and what it costs in tracer CPU.
    rec_keep = lambda wl, tmp: [VMATRACE, "record", "--keep-stack-bytes", "--force", "-o",
                                os.path.join(tmp, "rec.vmat"), "--", *wl]
    ev = lambda r: parse_vmatrace_stderr(r["stderr"])
    tools = {
        "vmatrace": Tool("vmatrace", "vmatrace trace (stream, text to a file)", vt(), "vmatrace", events=ev,
                         mode="stream"),
        "vmatrace_record": Tool("vmatrace_record", "vmatrace record", rec, "vmatrace", events=ev, record=True,
                                mode="record"),
        "vmatrace_record_keep": Tool("vmatrace_record_keep", "vmatrace record --keep-stack-bytes", rec_keep,
                                     "vmatrace", events=ev, record=True, mode="record, stack bytes"),
        "vmatrace_fsummary": Tool("vmatrace_fsummary", "vmatrace trace --faults=summary", vt("--faults=summary"),
                                  "vmatrace", events=ev, mode="faults summary"),
        # Resident memory per VMA (issue #21): the same stream plus the
        # residency model and its PAGEMAP_SCAN of changed ranges.
        "vmatrace_rss": Tool("vmatrace_rss", "vmatrace trace --rss", vt("--rss"), "vmatrace", events=ev,
                             mode="stream + rss"),
        # The 6.1 VM's other source (--vm): the syscalls and vma families on
        # kprobes, on the same kernel functions the default fentry hooks.
        "vmatrace_kprobe": Tool("vmatrace_kprobe", f"vmatrace trace --attach {KPROBES}", vt("--attach", KPROBES),
                                "vmatrace", events=ev, mode="stream, kprobes"),
        "vmatrace_kprobe_record": Tool("vmatrace_kprobe_record", f"vmatrace record --attach {KPROBES}",
                                       recf("--attach", KPROBES), "vmatrace", events=ev, record=True,
                                       mode="record, kprobes"),
    }
    # The workload untraced while vmatrace traces another process (a long
    # sleep): what every process on the machine pays for the programs'
    # traced-set lookup. Started first; the workload runs once its banner
    # says the programs are attached.
    neighbour = lambda wl, tmp: [
        "sh", "-c",
        'rm -f "$1.fifo"; mkfifo "$1.fifo" || exit 1; : > "$1"; '
        '"$0" trace -- sh -c \'read x < "$0"\' "$1.fifo" >/dev/null 2>"$1" & t=$!; '
        'until grep -q "loaded in" "$1" 2>/dev/null; do sleep 0.02; kill -0 $t || exit 1; done; '
        'f="$1.fifo"; shift; "$@"; rc=$?; echo > "$f"; wait $t; exit $rc',
        VMATRACE, os.path.join(tmp, "neighbour.err"), *wl]
    tools["vmatrace_neighbour"] = Tool("vmatrace_neighbour", "untraced, while vmatrace traces another process",
                                       neighbour, "vmatrace", mode="neighbour")
    modes = vmatrace_malloc_modes() if has_malloc else set()
    for m in ("stack", "exact"):
        key = "vmatrace_malloc_" + m
        label = f"vmatrace trace --malloc={m}"
        if m in modes:
            tools[key] = Tool(key, label, vt(f"--malloc={m}"), "vmatrace", events=ev, mode="malloc " + m)
        else:
            tools[key] = Tool(key, label, None, "unavailable", mode="malloc " + m)
    return tools


KPROBES = "syscalls=kprobe,vma=kprobe"


def peer_tools(workload_comm):
    comm = workload_comm[:15]
    out = lambda tmp, name: os.path.join(tmp, name)
    storm_bt = ('tracepoint:syscalls:sys_exit_mmap,tracepoint:syscalls:sys_exit_munmap /comm == "%s"/ '
                '{ printf("E %%d %%s %%lx\\n", tid, probe, args->ret); } '
                'tracepoint:exceptions:page_fault_user /comm == "%s"/ '
                '{ printf("E %%d fault %%lx %%lx %%lx\\n", tid, args->address, args->ip, args->error_code); }'
                % (comm, comm))
    malloc_bt = ('uprobe:%s:malloc /comm == "%s"/ { printf("E %%d malloc %%d\\n", tid, arg0); }'
                 % (libc_path(), comm))
    return {
        "strace": Tool("strace", "strace -f -e trace=%memory",
                       lambda wl, tmp: ["strace", "-f", "-qq", "-e", "trace=%memory", "-o", out(tmp, "strace.txt"), *wl],
                       "peer", events=lambda r: {"events": count_lines(out(r["tmp"], "strace.txt"))}),
        "bpftrace": Tool("bpftrace", "bpftrace (mmap/munmap exits + faults printed)",
                         lambda wl, tmp: ["bpftrace", "-q", "-c", " ".join(wl), "-e", storm_bt],
                         "peer", events=lambda r: {"events": count_lines(r["stdout_path"], b"E "),
                                                  "lost": parse_bpftrace_lost(r["stderr"] + r["stdout"])}),
        "perf_trace": Tool("perf_trace", "perf trace (mm syscalls)",
                           lambda wl, tmp: ["perf", "trace", "-o", out(tmp, "ptrace.txt"),
                                            "-e", "mmap,munmap,mprotect,mremap,brk,madvise", "--", *wl],
                           "peer", events=lambda r: {"events": count_lines(out(r["tmp"], "ptrace.txt"))}),
        "perf_trace_pf": Tool("perf_trace_pf", "perf trace -F all (page faults)",
                              lambda wl, tmp: ["perf", "trace", "--no-syscalls", "-F", "all", "-o",
                                               out(tmp, "ptrace.txt"), "--", *wl],
                              "peer", events=lambda r: {"events": count_lines(out(r["tmp"], "ptrace.txt"))}),
        "perf_record_pf": Tool("perf_record_pf", "perf record -e page-faults -c 1",
                               lambda wl, tmp: ["perf", "record", "-e", "page-faults", "-c", "1", "-o",
                                                out(tmp, "perf.data"), "--", *wl],
                               "peer", events=lambda r: parse_perf_record_stderr(r["stderr"])),
        # heaptrack preloads itself into the command: it runs the workload
        # directly (through `timed` its preload would sit in two processes).
        "heaptrack": Tool("heaptrack", "heaptrack",
                          lambda wl, tmp: ["heaptrack", "-o", out(tmp, "heaptrack"), *wl],
                          "peer", wrap=False, events=lambda r: parse_heaptrack_stderr(r["stdout"] + r["stderr"])),
        "bpftrace_malloc": Tool("bpftrace_malloc", "bpftrace uprobe on malloc (printed)",
                                lambda wl, tmp: ["bpftrace", "-q", "-c", " ".join(wl), "-e", malloc_bt],
                                "peer", events=lambda r: {"events": count_lines(r["stdout_path"], b"E "),
                                                  "lost": parse_bpftrace_lost(r["stderr"] + r["stdout"])}),
    }


# ---------------------------------------------------------------- workloads


def workloads(quick):
    q = lambda full, small: str(small if quick else full)
    checkpoints_c = os.path.join(ROOT, "tests", "workloads", "checkpoints.c")
    return [
        {"name": "storm", "desc": f"storm ({q(200000, 50000)} x mmap+touch+munmap)",
         "argv": [os.path.join(WL, "storm"), q(200000, 50000)], "comm": "storm",
         "tools": ["vmatrace", "vmatrace_record", "vmatrace_fsummary", "vmatrace_rss", "vmatrace_neighbour", "strace",
                   "bpftrace", "perf_trace"]},
        {"name": "faultstorm", "desc": f"fault storm ({q(262144, 65536)} fresh pages)",
         "argv": [os.path.join(WL, "faultstorm"), q(262144, 65536)], "comm": "faultstorm",
         "tools": ["vmatrace", "vmatrace_record", "vmatrace_fsummary", "vmatrace_rss", "perf_trace_pf",
                   "perf_record_pf"]},
        {"name": "mallocheavy", "desc": f"malloc-heavy ({q(5000000, 1000000)} malloc/free pairs)",
         "argv": [os.path.join(WL, "mallocheavy"), q(5000000, 1000000)], "comm": "mallocheavy",
         "tools": ["vmatrace", "vmatrace_record", "vmatrace_record_keep", "vmatrace_malloc_stack",
                   "vmatrace_malloc_exact", "heaptrack", "bpftrace_malloc"]},
        {"name": "python", "desc": "python3 running a script",
         "argv": [PYTHON, os.path.join(ROOT, "bench", "pywork.py"), q(200000, 50000)], "comm": "python3",
         "tools": ["vmatrace", "vmatrace_record", "vmatrace_record_keep", "strace", "perf_trace"]},
        {"name": "cc", "desc": "cc -O2 -c (a C file)",
         "argv": ["cc", "-O2", "-g", "-c", checkpoints_c, "-o", "/dev/null"], "comm": "cc1",
         "tools": ["vmatrace", "vmatrace_record", "strace", "perf_trace"]},
        {"name": "threads", "desc": f"8 threads x {q(20000, 5000)} x mmap+touch+munmap",
         "argv": [os.path.join(WL, "threads"), "8", q(20000, 5000)], "comm": "threads",
         "tools": ["vmatrace", "vmatrace_record", "strace", "perf_trace"]},
        {"name": "mapmany", "desc": "20000 VMAs in one process + 10000 mprotect pairs",
         "argv": [os.path.join(WL, "mapmany"), "20000", "10000"], "comm": "mapmany",
         "tools": ["vmatrace", "vmatrace_record", "strace"], "vmas": 20000},
        {"name": "mapmany100k", "desc": "100000 VMAs in one process + 10000 mprotect pairs",
         "argv": [os.path.join(WL, "mapmany"), "100000", "10000"], "comm": "mapmany",
         "tools": ["vmatrace", "vmatrace_record", "strace"], "vmas": 100000},
    ]


def vm_workloads():
    """The rows --vm runs in the 6.1 VM: sizes TCG runs in seconds (it
    emulates the CPU, tens of times slower than the host), each row with the
    number of records its workload must deliver at least (min_records: the
    ground truth the table checks beside lost = 0)."""
    n, pages, per_thread, vmas, toggles = 10000, 16384, 1000, 2000, 1000
    both = lambda *keys: [k for key in keys for k in (key, key.replace("vmatrace", "vmatrace_kprobe", 1))]
    return [
        {"name": "storm", "desc": f"storm ({n} x mmap+touch+munmap)", "argv": [os.path.join(WL, "storm"), str(n)],
         "comm": "storm", "tools": both("vmatrace", "vmatrace_record"),
         "min_records": 3 * n, "per": n, "per_what": "iteration: mmap, fault, munmap"},
        {"name": "faultstorm", "desc": f"fault storm ({pages} fresh pages)",
         "argv": [os.path.join(WL, "faultstorm"), str(pages)], "comm": "faultstorm",
         "tools": ["vmatrace", "vmatrace_fsummary", "vmatrace_kprobe"],
         "min_records": pages, "per": pages, "per_what": "page: its fault", "summary_exempt": True},
        {"name": "threads", "desc": f"8 threads x {per_thread} x mmap+touch+munmap",
         "argv": [os.path.join(WL, "threads"), "8", str(per_thread)], "comm": "threads",
         "tools": both("vmatrace"), "min_records": 3 * 8 * per_thread, "per": 8 * per_thread,
         "per_what": "iteration: mmap, fault, munmap"},
        {"name": "mapmany", "desc": f"{vmas} VMAs in one process + {toggles} mprotect pairs",
         "argv": [os.path.join(WL, "mapmany"), str(vmas), str(toggles)], "comm": "mapmany",
         "tools": both("vmatrace"), "vmas": vmas, "min_records": vmas + 2 * toggles, "per": vmas + 2 * toggles,
         "per_what": "syscall: each mmap and mprotect"},
    ]


# ---------------------------------------------------------------- running


def read_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_cmd(cmd, tmp, timeout=900):
    """Runs cmd with stdout/stderr to files; returns a dict with the texts,
    the tree's CPU (wait4), the tracer's sampled peak RSS and the exit code."""
    stdout_path, stderr_path = os.path.join(tmp, "stdout.txt"), os.path.join(tmp, "stderr.txt")
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        end = None
        hwm, status, ru = 0, 0, None
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                end = time.monotonic()
                break
            hwm = max(hwm, read_hwm_kb(p.pid))
            if time.monotonic() - t0 > timeout:
                p.kill()
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
    with open(stdout_path, errors="replace") as f:
        stdout = f.read()
    with open(stderr_path, errors="replace") as f:
        stderr = f.read()
    return {"stdout": stdout, "stderr": stderr, "stdout_path": stdout_path, "tmp": tmp, "rc": p.returncode,
            "tree_cpu_ns": int((ru.ru_utime + ru.ru_stime) * 1e9), "hwm_kb": hwm, "wall_s": wall, "end_s": end,
            "cmd": cmd}


def run_tool(tool, wl, tmp, calibrating=False):
    r = run_cmd(tool.argv(wl, tmp), tmp)
    if r["rc"] != 0:
        raise RuntimeError(f"{' '.join(r['cmd'])} exited {r['rc']}:\n{r['stderr'][-1500:]}")
    res = {"tree_cpu_ns": r["tree_cpu_ns"], "hwm_kb": r["hwm_kb"]}
    if not calibrating:  # `true` unwrapped prints no time
        res["elapsed_ns"] = parse_elapsed(r["stdout"])
    cmd_cpu = parse_cmd_cpu(r["stdout"])
    if cmd_cpu is not None:
        res["cmd_cpu_ns"] = cmd_cpu
    # How long the tool ran on after the command ended (20 ms polling).
    cmd_end = parse_cmd_end(r["stdout"])
    if cmd_end is not None and r.get("end_s") is not None and not calibrating:
        res["done_after_s"] = max(0.0, r["end_s"] - cmd_end)
    if tool.events_fn:
        res.update({k: v for k, v in tool.events_fn(r).items() if v is not None})
    if tool.kind == "vmatrace":
        res["attach"] = parse_attach(r["stderr"])
    if tool.record:
        res["file_bytes"] = os.path.getsize(os.path.join(tmp, "rec.vmat"))
    return res


def median_of(runs, key, agg=statistics.median):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return agg(vals) if vals else None


def calibrate(tools, rounds, tmp, log):
    """Each tool's fixed CPU cost on `true` (load, compile, teardown)."""
    cal = {}
    for k in tools:
        cal[k] = []
    for i in range(rounds):
        for k, t in tools.items():
            r = run_tool(t, ["/bin/true"], tmp, calibrating=True)
            cal[k].append(r["tree_cpu_ns"] - r.get("cmd_cpu_ns", 0))
            if "attach_ms" in r:
                cal.setdefault(k + ".attach_ms", []).append(r["attach_ms"])
    out = {k: statistics.median(v) for k, v in cal.items() if v}
    log(f"calibration (fixed CPU ms on `true`): "
        + ", ".join(f"{k} {v / 1e6:.0f}" for k, v in out.items() if not k.endswith("attach_ms")))
    return out


def bench_workload(w, tools, rounds, tmp, cal, log, replay=True):
    ts = {k: tools[k] for k in w["tools"]}
    runnable = {k: t for k, t in ts.items() if t.kind != "unavailable"}
    runs = {"untraced": []}
    runs.update({k: [] for k in runnable})
    for i in range(rounds):
        for k in ["untraced", *runnable]:
            if k == "untraced":
                r = run_cmd([TIMED, *w["argv"]], tmp)
                if r["rc"] != 0:
                    raise RuntimeError(f"{w['argv']} exited {r['rc']}:\n{r['stderr'][-1500:]}")
                runs[k].append({"elapsed_ns": parse_elapsed(r["stdout"]), "cmd_cpu_ns": parse_cmd_cpu(r["stdout"])})
            else:
                runs[k].append(run_tool(runnable[k], w["argv"], tmp))
        log(f"  {w['name']}: round {i + 1}/{rounds} done")
    base = statistics.median(r["elapsed_ns"] for r in runs["untraced"])
    base_cpu = statistics.median(r["cmd_cpu_ns"] for r in runs["untraced"])
    res = {"workload": w["name"], "desc": w["desc"], "argv": w["argv"], "untraced_ns": base,
           "untraced_runs": [r["elapsed_ns"] for r in runs["untraced"]], "untraced_cpu_ns": base_cpu,
           "untraced_cpu_runs": [r["cmd_cpu_ns"] for r in runs["untraced"]], "tools": {}}
    for k, t in ts.items():
        if t.kind == "unavailable":
            res["tools"][k] = {"label": t.label, "available": False, "mode": t.mode}
            continue
        rs = runs[k]
        e = {"label": t.label, "kind": t.kind, "mode": t.mode, "available": True,
             "runs_ns": [r["elapsed_ns"] for r in rs]}
        e["median_ns"] = statistics.median(e["runs_ns"])
        e["ratio"] = e["median_ns"] / base
        # The same against the traced command's CPU time (user + system,
        # BPF programs included: they run in its context). On a machine
        # shared with other work, wall time swings with everyone's load;
        # CPU time much less.
        if t.wrap and all(r.get("cmd_cpu_ns") is not None for r in rs):
            e["cpu_runs_ns"] = [r["cmd_cpu_ns"] for r in rs]
            e["cpu_ratio"] = statistics.median(e["cpu_runs_ns"]) / base_cpu if base_cpu else None
        e["events"] = median_of(rs, "events")
        e["lost"] = median_of(rs, "lost", max)
        e["attach_ms"] = median_of(rs, "attach_ms")
        e["hwm_kb"] = median_of(rs, "hwm_kb")
        e["done_after_s"] = median_of(rs, "done_after_s")
        e["attach"] = next((r["attach"] for r in rs if r.get("attach")), None)
        # Consumer CPU: tree minus the command minus the fixed cost.
        if t.wrap and all(r.get("cmd_cpu_ns") is not None for r in rs):
            # A tracer that does not reap the command (perf trace) has only
            # its own CPU in its tree: it is then less than the command's.
            cpu = statistics.median(r["tree_cpu_ns"] - r["cmd_cpu_ns"] if r["tree_cpu_ns"] >= r["cmd_cpu_ns"]
                                    else r["tree_cpu_ns"] for r in rs)
            e["tracer_cpu_ns"] = cpu
            e["fixed_cpu_ns"] = cal.get(k)
            # --faults=summary delivers aggregates, not one record per event.
            if e["events"] and cal.get(k) is not None and t.mode != "faults summary":
                # Not measurable when the run's CPU is within the fixed cost's noise.
                if cpu > cal[k]:
                    e["cpu_ns_per_event"] = (cpu - cal[k]) / e["events"]
        if t.record:
            e["file_bytes"] = median_of(rs, "file_bytes")
            if e["events"]:
                e["bytes_per_event"] = e["file_bytes"] / e["events"]
        res["tools"][k] = e
    if replay and "vmatrace_record" in runnable:
        res["replay"] = replay_rate(os.path.join(tmp, "rec.vmat"), tmp, 3)
    return res


def replay_rate(rec, tmp, reps):
    info = subprocess.run([VMATRACE, "info", "--json", rec], capture_output=True, text=True)
    records = json.loads(info.stdout)["records"] if info.returncode == 0 else 0
    stats_rates, text_rates, json_rates = [], [], []
    for _ in range(reps):
        p = subprocess.run([VMATRACE, "replay", "--stats", rec], capture_output=True, text=True)
        m = re.search(r"([\d.]+) M records/s", p.stdout)
        if m:
            stats_rates.append(float(m.group(1)) * 1e6)
        t0 = time.monotonic()
        subprocess.run([VMATRACE, "replay", rec], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.monotonic() - t0
        if dt > 0:
            text_rates.append(records / dt)
        t0 = time.monotonic()
        subprocess.run([VMATRACE, "replay", "--json", rec], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.monotonic() - t0
        if dt > 0:
            json_rates.append(records / dt)
    return {"records": records, "stats_events_per_s": statistics.median(stats_rates) if stats_rates else None,
            "text_events_per_s": statistics.median(text_rates) if text_rates else None,
            "json_events_per_s": statistics.median(json_rates) if json_rates else None}


def layout_scaling(quick, log):
    if not os.path.exists(LAYOUT_BENCH):
        log(f"{LAYOUT_BENCH} missing (Google Benchmark not installed?): no scaling table")
        return None
    p = subprocess.run([LAYOUT_BENCH, "--benchmark_format=json",
                        f"--benchmark_min_time={0.05 if quick else 0.3}"], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("layout bench failed: " + p.stderr[-1500:])
    return parse_layout_bench(json.loads(p.stdout))


def parse_layout_bench(doc):
    rows = {}
    for b in doc.get("benchmarks", []):
        name, _, n = b["name"].partition("/")
        n = int(n.split("/")[0])
        row = rows.setdefault(n, {"vmas": n})
        key = {"BM_ProcessorLive": "live_ns", "BM_ProcessorPrintText": "print_ns", "BM_ProcessorReplay": "replay_ns",
               "BM_LayoutMprotectMergeSplit": "layout_ns"}.get(name)
        if key and "ns_per_event" in b:
            row[key] = b["ns_per_event"] * 1e9  # Counter kIsRate|kInvert: seconds per event
        if name == "BM_LayoutMemory":
            row["bytes_per_vma"] = b.get("bytes_per_vma")
            row["sizeof_vma"] = b.get("sizeof_vma")
    return [rows[n] for n in sorted(rows)]


# ---------------------------------------------------------------- tables


def start_exit(rounds, tmp):
    """`trace -- /bin/true` wall time, and the time from the traced command's
    exit (it writes CLOCK_REALTIME last thing) to vmatrace's."""
    true_s, exit_ms, attach = [], [], []
    end = os.path.join(tmp, "end.ns")
    for _ in range(rounds):
        t0 = time.monotonic()
        r = subprocess.run([VMATRACE, "trace", "--", "/bin/true"], capture_output=True, text=True)
        true_s.append(time.monotonic() - t0)
        a = parse_vmatrace_stderr(r.stderr).get("attach_ms")
        if a is not None:
            attach.append(a)
        subprocess.run([VMATRACE, "trace", "--", "sh", "-c", f"exec date +%s%N > {end}"], capture_output=True)
        done = time.time_ns()
        with open(end) as f:
            exit_ms.append((done - int(f.read())) / 1e6)
    return {"true_s": statistics.median(true_s), "exit_ms": statistics.median(exit_ms),
            "attach_ms": statistics.median(attach) if attach else None, "true_runs_s": true_s, "exit_runs_ms": exit_ms}


def bpf_stats(quick, tmp):
    """`vmatrace trace --bpf-stats --json` on the storm and the fault storm:
    each program's runs per workload iteration and ns per run. Programs run
    for every process hitting their hook: runs above the workload's own are
    the rest of the machine."""
    n_storm, n_faults = (50000, 65536) if quick else (200000, 262144)
    rows = []
    for name, opts, argv, n in (("storm", [], [os.path.join(WL, "storm"), str(n_storm)], n_storm),
                                ("faultstorm", [], [os.path.join(WL, "faultstorm"), str(n_faults)], n_faults),
                                ("faultstorm --faults=summary", ["--faults=summary"],
                                 [os.path.join(WL, "faultstorm"), str(n_faults)], n_faults)):
        out = os.path.join(tmp, "bpfstats.json")
        with open(out, "w") as f:
            subprocess.run([VMATRACE, "trace", "--json", "--bpf-stats", *opts, "--", "sh", "-c",
                            'exec "$@" >/dev/null', "sh", *argv], stdout=f, stderr=subprocess.DEVNULL, check=True)
        with open(out) as f:
            last = f.read().splitlines()[-1]
        progs = json.loads(last)["programs"]
        rows.append({"workload": name, "iterations": n,
                     "programs": [p for p in progs if p["run_cnt"]],
                     "bpf_ns_per_iteration": sum(p["run_time_ns"] for p in progs) / n})
    return rows


def bpf_stats_markdown(rows):
    L = ["BPF programs (`vmatrace trace --bpf-stats`; runs include other processes hitting the hooks):", "",
         "| workload | program | runs per iteration | ns per run | ns per iteration |", "|---|---|---|---|---|"]
    for r in rows:
        first = True
        for p in r["programs"]:
            L.append("| {} | {} | {:.2f} | {:.0f} | {:.0f} |".format(
                r["workload"] if first else "", p["name"], p["run_cnt"] / r["iterations"], p["ns_per_run"],
                p["run_time_ns"] / r["iterations"]))
            first = False
        L.append(f"| | **all** | | | {r['bpf_ns_per_iteration']:.0f} |")
    return "\n".join(L)


def fmt(v, spec="{:.2f}", empty=""):
    return empty if v is None else spec.format(v)


def target_mark(value, target, lower_is_better=True):
    if value is None:
        return ""
    ok = value <= target if lower_is_better else value >= target
    return "met" if ok else "**missed**"


def ratio_target(wname, tool_key, has_malloc):
    # The kprobe rows of --vm have their default mode's targets.
    tool_key = {"vmatrace_kprobe": "vmatrace", "vmatrace_kprobe_record": "vmatrace_record"}.get(tool_key, tool_key)
    if wname == "storm" and tool_key == "vmatrace":
        return TARGET["storm"]
    if wname == "faultstorm" and tool_key == "vmatrace":
        return TARGET["faultstorm_stream"]
    if wname == "faultstorm" and tool_key == "vmatrace_fsummary":
        return TARGET["faultstorm_summary"]
    if wname == "storm" and tool_key == "vmatrace_record":
        return TARGET["storm"]
    if wname == "storm" and tool_key == "vmatrace_neighbour":
        return TARGET["neighbour"]
    if wname == "threads" and tool_key == "vmatrace":
        return TARGET["threads"]
    if wname == "mallocheavy" and tool_key == ("vmatrace_malloc_stack" if has_malloc else "vmatrace"):
        return TARGET["mallocheavy_default"]
    return None


def workload_table(results, target_fn=ratio_target):
    """The main table: one row per workload and configuration."""
    has_malloc = results.get("has_malloc", False)
    L = []
    L.append("| workload | tool | slowdown: wall (x untraced) | slowdown: CPU (x untraced) | target | events | lost "
             "| tracer CPU ns/event | tracer peak RSS MiB | bytes/recorded event | attach ms | done after command s |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w in results["workloads"]:
        first = True
        for k, e in w["tools"].items():
            wl = w["desc"] if first else ""
            first = False
            if not e.get("available", True):
                L.append(f"| {wl} | {e['label']} | not available in this build | | | | | | | | | |")
                continue
            tgt = target_fn(w["workload"], k, has_malloc)
            tcell = (f"≤{tgt}x: wall {target_mark(e['ratio'], tgt)}, CPU {target_mark(e.get('cpu_ratio'), tgt)}"
                     if tgt else "")
            L.append("| {} | {} | {:.2f}x | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                wl, e["label"], e["ratio"], fmt(e.get("cpu_ratio"), "{:.2f}x"), tcell, fmt(e.get("events"), "{:.0f}"), fmt(e.get("lost"), "{:.0f}"),
                fmt(e.get("cpu_ns_per_event"), "{:.0f}"), fmt(e["hwm_kb"] / 1024 if e.get("hwm_kb") else None,
                                                              "{:.1f}"),
                fmt(e.get("bytes_per_event")), fmt(e.get("attach_ms"), "{:.0f}"), fmt(e.get("done_after_s"))))
    return L


def markdown(results):
    L = workload_table(results)
    L.append("")
    L.append("Replay of each workload's `vmatrace record` file (records per second, in millions; "
             "small recordings are dominated by start-up):")
    L.append("")
    L.append("| workload | records | `replay --stats` (decode + apply) | `replay > /dev/null` (text) "
             "| `replay --json > /dev/null` |")
    L.append("|---|---|---|---|---|")
    for w in results["workloads"]:
        r = w.get("replay")
        if r:
            mps = lambda k: fmt(r.get(k) and r[k] / 1e6)
            L.append("| {} | {} | {} M/s | {} M/s | {} M/s |".format(
                w["workload"], r["records"], mps("stats_events_per_s"), mps("text_events_per_s"),
                mps("json_events_per_s")))
    sc = results.get("layout_scaling")
    if sc:
        L.append("")
        L.append("Cost as work grows (`build/bench/vmatrace_layout_bench`: one process of N VMAs, a cycle of "
                 "mprotect merge/split, munmap/mmap and faults in the middle; ns per applied record):")
        L.append("")
        L.append("| VMAs | live (changes derived) | live + text printer | replay (--stats path) "
                 "| layout model alone (mprotect) | heap bytes per VMA |")
        L.append("|---|---|---|---|---|---|")
        for r in sc:
            L.append("| {} | {} | {} | {} | {} | {} |".format(
                f"{r['vmas']:,}", fmt(r.get("live_ns"), "{:.0f}"), fmt(r.get("print_ns"), "{:.0f}"),
                fmt(r.get("replay_ns"), "{:.0f}"), fmt(r.get("layout_ns"), "{:.0f}"),
                fmt(r.get("bytes_per_vma"), "{:.0f}")))
    se = results.get("start_exit")
    if se:
        L.append("")
        L.append("Start and exit: `vmatrace trace -- /bin/true` {:.2f} s start to prompt (programs loaded in {} ms); "
                 "{:.0f} ms from the traced command's exit to vmatrace's (medians).".format(
                     se["true_s"], fmt(se.get("attach_ms"), "{:.0f}"), se["exit_ms"]))
    if results.get("bpf_stats"):
        L.append("")
        L.append(bpf_stats_markdown(results["bpf_stats"]))
    L.append("")
    L.append("Targets:")
    L.append("")
    L.append("| target | measured | |")
    L.append("|---|---|---|")
    for name, measured, target, lower in summarize_targets(results):
        L.append(f"| {name} | {measured if isinstance(measured, str) else fmt(measured)} | "
                 f"{target_mark(measured, target, lower) if not isinstance(measured, str) else ''} |")
    return "\n".join(L)


def vm_ratio_target(wname, tool_key, has_malloc):
    if wname == "mapmany" and tool_key in ("vmatrace", "vmatrace_kprobe"):
        return TARGET["mapmany_17"]
    return ratio_target(wname, tool_key, has_malloc)


def vm_targets(results):
    """--vm: issue #17's ratios for each of the VM's sources, lost = 0, and
    the records each workload must deliver at least."""
    ws = {w["workload"]: w for w in results["workloads"]}
    out = []

    def val(w, k, key):
        e = ws.get(w, {}).get("tools", {}).get(k)
        return e.get(key) if e and e.get("available", True) else None

    for mode, stream, rec in (("fentry", "vmatrace", "vmatrace_record"),
                              ("kprobes", "vmatrace_kprobe", "vmatrace_kprobe_record")):
        rows = [("storm ≤ 1.2x (trace", "storm", stream, TARGET["storm"]),
                ("storm ≤ 1.2x (record", "storm", rec, TARGET["storm"]),
                ("fault storm ≤ 1.05x (stream", "faultstorm", stream, TARGET["faultstorm_stream"])]
        if mode == "fentry":
            rows.append(("fault storm ≤ 1.02x (--faults=summary", "faultstorm", "vmatrace_fsummary",
                         TARGET["faultstorm_summary"]))
        rows += [("8-thread storm ≤ 1.3x (trace", "threads", stream, TARGET["threads"]),
                 ("mapmany ≤ 1.05x (trace", "mapmany", stream, TARGET["mapmany_17"])]
        for name, w, k, target in rows:
            for key, how in (("ratio", "wall"), ("cpu_ratio", "CPU")):
                out.append((f"{mode}: {name}, {how})", val(w, k, key), target, True))
    lost = [e.get("lost") for w in results["workloads"] for e in w["tools"].values()
            if e.get("available", True) and e.get("lost") is not None]
    out.append(("zero losses (max over all rows)", max(lost) if lost else None, 0, True))
    for w in results["workloads"]:
        if not w.get("min_records"):
            continue
        # --faults=summary delivers the faults as aggregates, not records.
        ev = [e["events"] for e in w["tools"].values()
              if e.get("available", True) and e.get("events") is not None and e.get("mode") != "faults summary"]
        out.append((f"{w['workload']}: records per {w['per_what']} ≥ {w['min_records'] / w['per']:.0f} "
                    f"(fewest over its rows)", min(ev) / w["per"] if ev else None, w["min_records"] / w["per"],
                    False))
    return out


def vm_markdown(results):
    m, h = results["machine"], results.get("host", {})
    L = [f"Inside the VM: kernel {m['kernel']} under qemu TCG (`-cpu max`, {m['cpus']} vCPU, {m['mem_gib']} GiB), "
         f"on the host's {h.get('cpu', '?')} ({h.get('cpus', '?')} CPUs, kernel {h.get('kernel', '?')}); "
         f"{results['rounds']} rounds, medians; host load average {results.get('host_loadavg_start', '?')} at start, "
         f"{results.get('host_loadavg_end', '?')} at end.",
         "",
         "TCG emulates every instruction (the programs, the kernel and the JIT-compiled BPF programs alike), so "
         "these ratios are comparable within this table only, not with the host's.",
         ""]
    L += workload_table(results, vm_ratio_target)
    plans = {}
    for w in results["workloads"]:
        for k, e in w["tools"].items():
            if e.get("attach"):
                plans.setdefault(e["label"], e["attach"])
    if plans:
        L += ["", "Attach plans (the banner of each configuration):", ""]
        L += [f"- {label}: `{plan}`" for label, plan in plans.items()]
    L += ["", "Targets (issue #17) and ground truth:", "", "| target | measured | |", "|---|---|---|"]
    for name, measured, target, lower in vm_targets(results):
        spec = "{:.0f}" if name.startswith("zero losses") else "{:.2f}"
        L.append(f"| {name} | {fmt(measured, spec)} | {target_mark(measured, target, lower)} |")
    return "\n".join(L)


def summarize_targets(results):
    has_malloc = results.get("has_malloc", False)
    ws = {w["workload"]: w for w in results["workloads"]}
    out = []

    def ratio(w, k, key):
        e = ws.get(w, {}).get("tools", {}).get(k)
        return e.get(key) if e and e.get("available", True) else None

    mk = "vmatrace_malloc_stack" if has_malloc else "vmatrace"
    for key, how in (("ratio", "wall"), ("cpu_ratio", "CPU")):
        out.append((f"storm ≤ 1.2x (vmatrace stream, {how})", ratio("storm", "vmatrace", key), TARGET["storm"], True))
        out.append((f"fault storm ≤ 1.05x (stream, {how})", ratio("faultstorm", "vmatrace", key),
                    TARGET["faultstorm_stream"], True))
        out.append((f"fault storm ≤ 1.02x (--faults=summary, {how})", ratio("faultstorm", "vmatrace_fsummary", key),
                    TARGET["faultstorm_summary"], True))
        out.append((f"malloc-heavy ≤ 1.02x ({'--malloc=stack' if has_malloc else 'no --malloc in this build: stream'}"
                    f", {how})", ratio("mallocheavy", mk, key), TARGET["mallocheavy_default"], True))
    for key, how in (("ratio", "wall"), ("cpu_ratio", "CPU")):
        out.append((f"storm ≤ 1.2x (vmatrace record, {how})", ratio("storm", "vmatrace_record", key), TARGET["storm"],
                    True))
        out.append((f"8-thread storm ≤ 1.3x (stream, {how})", ratio("threads", "vmatrace", key), TARGET["threads"],
                    True))
        out.append((f"untraced storm while another process is traced ≤ 1.02x ({how})",
                    ratio("storm", "vmatrace_neighbour", key), TARGET["neighbour"], True))
    se = results.get("start_exit")
    if se:
        out.append(("`trace -- /bin/true` ≤ 0.3 s, start to prompt (median)", se["true_s"], TARGET["true_s"], True))
        out.append(("exit ≤ 100 ms after the traced command's exit (median)", se["exit_ms"], TARGET["exit_ms"], True))
    lost = [e.get("lost") for w in results["workloads"] for k, e in w["tools"].items()
            if e.get("available", True) and e.get("kind") == "vmatrace" and e.get("lost") is not None]
    out.append(("zero losses, default ring buffer (max over all vmatrace rows)", max(lost) if lost else None, 0, True))
    # Consumer CPU on the big streams (small ones are start-up noise).
    cpu = [(e["cpu_ns_per_event"], w["workload"]) for w in results["workloads"] for k, e in w["tools"].items()
           if k == "vmatrace" and e.get("cpu_ns_per_event") is not None and (e.get("events") or 0) >= 100000]
    worst = max(cpu) if cpu else None
    out.append((f"consumer CPU ≤ 40 ns/event (worst stream row ≥100k events{': ' + worst[1] if worst else ''})",
                worst[0] if worst else None, TARGET["consumer_ns_per_event"], True))
    r = ws.get("storm", {}).get("replay")
    out.append(("replay ≥ 20 M events/s (storm, --stats)", r["stats_events_per_s"] if r else None,
                TARGET["replay_events_per_s"], False))
    out.append(("replay ≥ 5 M events/s (storm, text)", r.get("text_events_per_s") if r else None,
                TARGET["replay_text_events_per_s"], False))
    out.append(("replay ≥ 3 M events/s (storm, --json)", r.get("json_events_per_s") if r else None,
                TARGET["replay_json_events_per_s"], False))
    for wname, n in (("mapmany", "20k"), ("mapmany100k", "100k")):
        for key, how in (("ratio", "wall"), ("cpu_ratio", "CPU")):
            out.append((f"{n} VMAs + 10k mprotect pairs ≤ 1.5x ({how})", ratio(wname, "vmatrace", key),
                        TARGET["mapmany_ratio"], True))
        out.append((f"{n} VMAs: vmatrace done ≤ 1 s after the workload (s)", ratio(wname, "vmatrace", "done_after_s"),
                    TARGET["done_after_s"], True))
    st = ws.get("storm", {}).get("tools", {}).get("vmatrace_record")
    out.append(("≤ 5 bytes per recorded event (storm)", st.get("bytes_per_event") if st else None,
                TARGET["bytes_per_event"], True))
    att = [e["attach_ms"] for w in results["workloads"] for k, e in w["tools"].items()
           if k == "vmatrace" and e.get("attach_ms") is not None]
    out.append(("attach < 100 ms (median over stream rows)", statistics.median(att) if att else None,
                TARGET["attach_ms"], True))
    # Replay rate shown in M/s for readability.
    return [(n, (m / 1e6 if (m is not None and "M events/s" in n) else m),
             (t / 1e6 if "M events/s" in n else t), lo) for n, m, t, lo in out]


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 2**20, 1)}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- self-test


def self_test():
    assert parse_elapsed("x\nelapsed_ns=12\ncmd_wall_ns=99 cmd_cpu_ns=5 cmd_maxrss_kb=1\n") == 12
    assert parse_elapsed("cmd_wall_ns=99 cmd_cpu_ns=5 cmd_maxrss_kb=1\n") == 99
    assert parse_cmd_cpu("cmd_wall_ns=99 cmd_cpu_ns=5 cmd_maxrss_kb=1\n") == 5
    assert parse_cmd_end("cmd_wall_ns=99 cmd_cpu_ns=5 cmd_maxrss_kb=1 cmd_end_ns=2500000000\n") == 2.5
    s = parse_vmatrace_stderr("vmatrace: tracing 'x'; attach: syscalls=tracepoint (loaded in 151.2 ms)\n"
                              "vmatrace: 600092 records, 3 processes; lost 7 (2 layout resyncs)\n")
    assert s == {"attach_ms": 151.2, "events": 600092, "lost": 7}, s
    assert parse_perf_record_stderr("[ perf record: Captured and wrote 8 MB perf.data (262149 samples) ]") == \
        {"events": 262149}
    assert parse_bpftrace_lost("\nLost 870062 events\n") == 870062
    assert parse_heaptrack_stderr("heaptrack stats:\n\tallocations:          \t5000123\n") == {"events": 5000123}
    doc = {"benchmarks": [
        {"name": "BM_ProcessorLive/10", "ns_per_event": 1.5e-7},
        {"name": "BM_ProcessorReplay/10", "ns_per_event": 1e-7},
        {"name": "BM_LayoutMemory/10/iterations:3", "bytes_per_vma": 300.0, "sizeof_vma": 200.0}]}
    rows = parse_layout_bench(doc)
    assert len(rows) == 1 and abs(rows[0]["live_ns"] - 150) < 1e-6 and rows[0]["bytes_per_vma"] == 300.0, rows
    res = {"has_malloc": False, "workloads": [{
        "workload": "storm", "desc": "storm", "untraced_ns": 100,
        "tools": {"vmatrace": {"label": "vmatrace", "kind": "vmatrace", "available": True, "ratio": 1.5,
                               "cpu_ratio": 1.1,
                               "events": 200000, "lost": 0, "cpu_ns_per_event": 30.0, "hwm_kb": 2048,
                               "attach_ms": 90.0},
                  "vmatrace_malloc_stack": {"label": "m", "available": False}},
        "replay": {"records": 10, "stats_events_per_s": 25e6, "text_events_per_s": 1e6}}],
        "layout_scaling": rows}
    md = markdown(res)
    assert "| storm | vmatrace | 1.50x | 1.10x | ≤1.2x: wall **missed**, CPU met |" in md, md
    assert "not available in this build" in md
    assert "| consumer CPU ≤ 40 ns/event (worst stream row ≥100k events: storm) | 30.00 | met |" in md, md
    assert "| replay ≥ 20 M events/s (storm, --stats) | 25.00 | met |" in md, md
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "generated", "performance.md")
        write_docs_tables(out, "Machine: x\n\n" + md + "\n")
        with open(out) as f:
            doc = f.read()
        assert doc.startswith("<!-- Generated by") and "\nMachine: x\n\n| workload |" in doc, doc[:300]
        assert doc.endswith(md + "\n"), doc[-200:]
        # safe_replace: a planted symlink is refused and its target untouched.
        victim, link = os.path.join(tmp, "victim"), os.path.join(tmp, "link")
        with open(victim, "w") as f:
            f.write("victim")
        os.symlink(victim, link)
        try:
            safe_replace(link, "x")
            raise AssertionError("wrote through a symlink")
        except SystemExit as e:
            assert "symbolic link" in str(e), e
        assert open(victim).read() == "victim" and os.path.islink(link)
        safe_replace(victim, "new")
        assert open(victim).read() == "new" and len(os.listdir(tmp)) == 3, os.listdir(tmp)
    # --vm's table: the kprobe rows get their default mode's targets, the
    # records per iteration are checked against the workload's minimum.
    vres = {"machine": {"kernel": "6.1.0-x", "cpus": 2, "mem_gib": 1.9}, "rounds": 3, "workloads": [{
        "workload": "storm", "desc": "storm (10 x)", "min_records": 30, "per": 10, "per_what": "iteration",
        "tools": {"vmatrace": {"label": "vmatrace trace", "kind": "vmatrace", "ratio": 1.5, "cpu_ratio": 1.1,
                               "events": 62, "lost": 0, "attach": "syscalls=fentry vma=fentry"},
                  "vmatrace_kprobe": {"label": "vmatrace trace --attach k", "kind": "vmatrace", "ratio": 1.1,
                                      "cpu_ratio": 1.3, "events": 28, "lost": 0, "attach": "syscalls=kprobe"}}}]}
    vmd = vm_markdown(vres)
    assert "| storm (10 x) | vmatrace trace | 1.50x | 1.10x | ≤1.2x: wall **missed**, CPU met |" in vmd, vmd
    assert "|  | vmatrace trace --attach k | 1.10x | 1.30x | ≤1.2x: wall met, CPU **missed** |" in vmd, vmd
    assert "| kprobes: storm ≤ 1.2x (trace, wall) | 1.10 | met |" in vmd, vmd
    assert "| storm: records per iteration ≥ 3 (fewest over its rows) | 2.80 | **missed** |" in vmd, vmd
    assert "| zero losses (max over all rows) | 0 | met |" in vmd, vmd
    assert "- vmatrace trace: `syscalls=fentry vma=fentry`" in vmd, vmd
    assert parse_attach("vmatrace: tracing 'x'; attach: syscalls=fentry vma=kprobe (loaded in 3.0 ms)") == \
        "syscalls=fentry vma=kprobe"
    print("bench.py self-test: ok")


# ---------------------------------------------------------------- main


def select_workloads(wls, only):
    if not only:
        return wls
    want = set(only.split(","))
    unknown = want - {w["name"] for w in wls}
    if unknown:
        sys.exit(f"bench: unknown workload(s) {','.join(sorted(unknown))}: choose from "
                 + ",".join(w["name"] for w in wls))
    return [w for w in wls if w["name"] in want]


def in_vm(a, log):
    """The guest's half of --vm: the VM rows, results on stdout after VM_RESULTS_MARKER."""
    rounds = a.rounds or 5
    has_malloc = vmatrace_has_malloc()
    results = {"machine": machine(), "rounds": rounds, "quick": False, "has_malloc": has_malloc, "workloads": []}
    log(f"bench (in the VM, kernel {results['machine']['kernel']}): {rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="vmatrace-bench.") as tmp:
        for w in select_workloads(vm_workloads(), a.only):
            if a.tools:
                w["tools"] = [t for t in w["tools"] if t in a.tools.split(",")]
            log(f"bench: {w['desc']}")
            # No calibration on `true` (the consumer's CPU per event is the
            # host table's); no replay rates (the frontend is the same code).
            res = bench_workload(w, vmatrace_tools(has_malloc), rounds, tmp, {}, log, replay=False)
            res.update({k: w[k] for k in ("min_records", "per", "per_what")})
            results["workloads"].append(res)
    print(VM_RESULTS_MARKER + json.dumps(results, separators=(",", ":")), flush=True)


def run_vm(a, log):
    """The host's half of --vm: boots the 6.1 VM once and runs this script
    there with --in-vm; returns its results."""
    me = os.path.abspath(__file__)
    stdlib = subprocess.run([PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    cmd = [RUN_IN_VM, "--timeout", str(a.vm_timeout), "--smp", str(a.vm_smp), "--mem", "2048",
           "--env", "VMATRACE_BUILD=" + BUILD, "--file", VMATRACE, "--file", WL, "--file", me, "--file", stdlib,
           "--", PYTHON, me, "--in-vm"]
    if a.rounds:
        cmd += ["--rounds", str(a.rounds)]
    for opt, v in (("--only", a.only), ("--tools", a.tools)):
        if v:
            cmd += [opt, v]
    log("bench --vm: " + " ".join(cmd))
    results = None
    load_start = loadavg()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, errors="replace") as p:
        for line in p.stdout:
            at = line.find(VM_RESULTS_MARKER)
            if at >= 0:
                results = json.loads(line[at + len(VM_RESULTS_MARKER):])
            else:
                sys.stderr.write(line)
    if p.returncode != 0 or results is None:
        sys.exit(f"bench --vm: the run in the VM failed (run-in-vm.sh exited {p.returncode}"
                 f"{'' if results is None else ' after printing its results'}; its output is above)")
    results.update({"host": machine(), "host_loadavg_start": load_start, "host_loadavg_end": loadavg(),
                    "vm_smp": a.vm_smp})
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads, 3 rounds")
    ap.add_argument("--rounds", type=int, help="rounds per configuration (default 5, --quick 3)")
    ap.add_argument("--only", help="comma-separated workloads (storm,faultstorm,mallocheavy,python,cc,threads,mapmany,mapmany100k)")
    ap.add_argument("--tools", help="comma-separated configurations to run beside untraced (e.g. vmatrace,vmatrace_rss); "
                    "skips the start/exit, BPF-cost and layout-scaling sections")
    ap.add_argument("--baseline", metavar="VMATRACE",
                    help="another vmatrace binary (say, main's) run beside this one in the same rounds: "
                         "its configurations get the prefix base_ (before/after in one run)")
    ap.add_argument("--vm", action="store_true",
                    help="run the storm, faultstorm, threads and mapmany rows in Debian's 6.1 kernel under qemu TCG "
                         "(tests/vm/run-in-vm.sh), vmatrace's default plan there (fentry) and kprobes; writes "
                         "bench/results-vm61.{json,md} and, with --update-docs, "
                         + os.path.relpath(DOCS_TABLES_VM, ROOT))
    ap.add_argument("--vm-smp", type=int, default=2, help="--vm: vCPUs of the VM (default 2)")
    ap.add_argument("--vm-timeout", type=int, default=3600, help="--vm: seconds before the VM is stopped")
    ap.add_argument("--in-vm", action="store_true", help=argparse.SUPPRESS)  # --vm's guest side
    ap.add_argument("--json-out")
    ap.add_argument("--md-out")
    ap.add_argument("--update-docs", action="store_true",
                    help=f"also write the tables to {os.path.relpath(DOCS_TABLES, ROOT)} (linked from docs/performance.md)")
    # The old name, from when the tables lived in README.md; same effect now.
    ap.add_argument("--update-readme", dest="update_docs", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--self-test", action="store_true", help="check the parsers and tables (no root, no runs)")
    a = ap.parse_args()
    if a.self_test:
        self_test()
        return
    log = lambda s: print(s, file=sys.stderr, flush=True)
    if a.in_vm:
        in_vm(a, log)
        return
    suffix = "-vm61" if a.vm else ""
    a.json_out = a.json_out or os.path.join(ROOT, "bench", f"results{suffix}.json")
    a.md_out = a.md_out or os.path.join(ROOT, "bench", f"results{suffix}.md")
    if a.vm:
        for p in (VMATRACE, TIMED, RUN_IN_VM):
            if not os.path.exists(p):
                sys.exit(f"bench: {p} missing: build first (cmake --build build)")
        results = run_vm(a, log)
        md = vm_markdown(results) + "\n"
        safe_replace(a.json_out, json.dumps(results, indent=2))
        safe_replace(a.md_out, md)
        print(md)
        print(f"JSON: {a.json_out}\nMarkdown: {a.md_out}")
        if a.update_docs:
            write_docs_tables(DOCS_TABLES_VM, md, "`python3 bench/bench.py --vm --update-docs`")
            print(f"{os.path.relpath(DOCS_TABLES_VM, ROOT)}: tables replaced")
        return
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the tracers load BPF programs): sudo ./scripts/bench.sh")
    for p in (VMATRACE, TIMED):
        if not os.path.exists(p):
            sys.exit(f"bench: {p} missing: build first (./scripts/bench.sh builds it)")
    rounds = a.rounds or (3 if a.quick else 5)
    has_malloc = vmatrace_has_malloc()
    wls = select_workloads(workloads(a.quick), a.only)
    if a.tools:
        want_tools = a.tools.split(",")
        for w in wls:
            w["tools"] = [t for t in w["tools"] if t in want_tools]
    results = {"machine": machine(), "loadavg_start": loadavg(), "rounds": rounds, "quick": a.quick,
               "has_malloc": has_malloc, "workloads": []}
    log(f"bench: {rounds} rounds{' (quick)' if a.quick else ''}; load average at start {results['loadavg_start']}; "
        f"--malloc {'available' if has_malloc else 'not available in this build'}")
    saved_max_map = None
    need_maps = max([w.get("vmas", 0) for w in wls] + [0])
    with open("/proc/sys/vm/max_map_count") as f:
        cur_max_map = int(f.read())
    try:
        if need_maps + 1000 > cur_max_map:
            saved_max_map = cur_max_map
            with open("/proc/sys/vm/max_map_count", "w") as f:
                f.write(str(2 * need_maps + 1000))
            log(f"bench: vm.max_map_count {cur_max_map} -> {2 * need_maps + 1000} (restored at the end)")
        with tempfile.TemporaryDirectory(prefix="vmatrace-bench.") as tmp:
            for w in wls:
                tools = dict(vmatrace_tools(has_malloc))
                tools.update(peer_tools(w["comm"]))
                if a.baseline:
                    for k, t in vmatrace_tools(has_malloc, a.baseline).items():
                        t.key, t.label = "base_" + k, "baseline: " + t.label
                        tools["base_" + k] = t
                    w["tools"] = w["tools"] + ["base_" + k for k in w["tools"]
                                               if "base_" + k in tools and "base_" + k not in w["tools"]]
                used = {k: tools[k] for k in w["tools"] if tools[k].kind != "unavailable"}
                log(f"bench: {w['desc']}")
                cal = calibrate(used, rounds, tmp, log)
                res = bench_workload(w, tools, rounds, tmp, cal, log)
                res["calibration"] = cal
                results["workloads"].append(res)
            if not a.tools:
                log("bench: start and exit (`trace -- /bin/true`)")
                results["start_exit"] = start_exit(rounds, tmp)
                log("bench: per-program BPF cost (--bpf-stats)")
                results["bpf_stats"] = bpf_stats(a.quick, tmp)
        if not a.tools:
            log("bench: layout scaling (Google Benchmark)")
            results["layout_scaling"] = layout_scaling(a.quick, log)
    finally:
        if saved_max_map is not None:
            with open("/proc/sys/vm/max_map_count", "w") as f:
                f.write(str(saved_max_map))
    results["loadavg_end"] = loadavg()
    m = results["machine"]
    head = (f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['mem_gib']} GiB, kernel {m['kernel']}; "
            f"{rounds} rounds{' (--quick)' if a.quick else ''}, medians; load average "
            f"{results['loadavg_start']} at start, {results['loadavg_end']} at end.")
    md = head + "\n\n" + markdown(results) + "\n"
    safe_replace(a.json_out, json.dumps(results, indent=2))
    safe_replace(a.md_out, md)
    print(md)
    print(f"JSON: {a.json_out}\nMarkdown: {a.md_out}")
    if a.update_docs:
        write_docs_tables(DOCS_TABLES, md)
        print(f"{os.path.relpath(DOCS_TABLES, ROOT)}: tables replaced")


def docs_tables(md, how="`scripts/bench.sh --update-docs`"):
    """The whole of docs/generated/performance.md: a header, then the tables."""
    vm = "vm" in how
    return (f"<!-- Generated by {how} (bench/bench.py); do not edit by hand. -->\n"
            f"# Benchmark tables{' in the 6.1 VM' if vm else ''} (generated)\n\n"
            "How these are measured and what to trust: [../performance.md](../performance.md).\n\n" + md)


def write_docs_tables(path, md, how="`scripts/bench.sh --update-docs`"):
    # The tables have a file of their own, so a bench run never rewrites README.md or the prose around them.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    safe_replace(path, docs_tables(md, how))


def safe_replace(path, text):
    """Writes text to path as vmatrace writes its files (src/util/safe_file.h):
    never through a symbolic link (this runs as root), by a new file created
    O_EXCL in the same directory and renamed over path, so a reader never
    sees half a file. The outputs are the bench's own and regenerated on
    every run, so an existing regular file is replaced."""
    if os.path.islink(path):
        sys.exit(f"bench: {path} is a symbolic link; refusing to write through it (remove it or choose another path)")
    if os.path.exists(path) and not os.path.isfile(path):
        sys.exit(f"bench: {path} exists and is not a regular file; refusing to overwrite it")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".bench.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    main()
