#!/usr/bin/env python3
"""The fidelity suite: vmatrace on real programs we did not write.

One run of one program in one mode (ctest runs each as real.PROGRAM.MODE):

  traced  `vmatrace record -o F -- CMD`
  attach  CMD runs untraced for about a second, then `vmatrace record -o F -p PID`
  strace  `vmatrace record -o F -- strace -f -o S CMD`: both observe the same run

In traced and attach runs, once vmatrace has printed its banner, the program
is stopped from outside at 5 random moments while it (or its load generator)
works: SIGSTOP to it and to every descendant, wait until every thread of each
is stopped (/proc/PID/task/*/stat state T), read /proc/PID/maps,
/proc/PID/stat and CLOCK_MONOTONIC, SIGCONT. Afterwards
`vmatrace replay F --maps --at NS [--pid PID]` (NS: absolute CLOCK_MONOTONIC
nanoseconds, the clock of the events) must print exactly /proc/PID/maps for
every process at every stop; the recording must have lost nothing; for the
programs marked `faults`, the page faults vmatrace recorded for each process
between its first and last stop must equal the kernel's minflt + majflt
delta over the same interval within 1%.

In strace runs, the memory syscalls of every thread (name and return value,
in order) must be the same in vmatrace's recording and in strace's log.

Nothing here skips: a missing program, a vmatrace that cannot load BPF, a
program that does not start are failures. The vmatrace binary is
$VMATRACE_BIN if set, else --vmatrace. --results DIR writes one JSON file per
run, which scripts/fidelity-report.sh turns into docs/generated/fidelity.md.
"""
import argparse
import concurrent.futures
import difflib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STOPS = 5
# The syscalls vmatrace records (include/vmatrace/abi/syscalls.h).
MEMORY_SYSCALLS = [
    "mmap", "munmap", "brk", "mremap", "mprotect", "madvise", "mlock", "munlock", "mlock2", "mlockall",
    "munlockall", "pkey_mprotect", "shmat", "shmdt"
]


class Failure(Exception):
    pass


# ---- the programs -----------------------------------------------------------


class Program:
    """How to build, start, load and end one program.

    warmup: seconds from start (or from the banner, traced) to the first stop.
    faults: whether fault totals are compared with the kernel's counters. Not
      for programs whose faults the kernel takes through get_user_pages()
      (mlock, MAP_POPULATE): those count in /proc/PID/stat but raise no
      exception and no perf event, so no tracer sees them (docs/faults.md).
    """

    def __init__(self, name, faults=True, strace=False, warmup=0.6):
        self.name, self.faults, self.strace, self.warmup = name, faults, strace, warmup

    def prepare(self, tmp, build_dir):
        pass

    def argv(self, tmp):
        raise NotImplementedError

    def ready(self, pid):
        """Blocks until the program serves (for load generators)."""

    def start_load(self, tmp):
        return None

    def end(self, pid):
        """Asks the program to end (it is not the tracer's child in attach mode)."""
        os.kill(pid, signal.SIGTERM)


class StressNg(Program):
    # Worker options keep each stressor small: six engineers share 2 cores.
    OPTS = {
        "mmap": ["--mmap-bytes", "32M"],
        "mremap": ["--mremap-bytes", "32M"],
        "brk": [],
        "madvise": [],
        "mlock": [],
        "stack": [],
        "vm": ["--vm-bytes", "64M"],
        "shm": ["--shm-bytes", "8M", "--shm-objs", "8"],
        "malloc": ["--malloc-bytes", "32M"],
        "fork": ["--fork-max", "4"],
    }

    def __init__(self, stressor):
        # Fault totals are compared for fork and stack. mlock, and the
        # MAP_POPULATE of mmap and vm, fault pages in through
        # get_user_pages() (16388 recorded vs 49156 counted in one vm run);
        # brk's, malloc's and the others' recordings are heavy enough that
        # the JSON replay (which unwinds every growth's stack) takes minutes
        # here.
        super().__init__("stress-ng-" + stressor, faults=stressor in ("fork", "stack"), warmup=0.4)
        self.stressor = stressor

    def argv(self, tmp):
        # --timeout bounds a run whose test died; the test ends it with SIGINT.
        return ["stress-ng", "--" + self.stressor, "1", *self.OPTS[self.stressor], "--timeout", "60s", "--quiet",
                "--temp-path", tmp]

    def end(self, pid):
        os.kill(pid, signal.SIGINT)  # stress-ng stops its workers and exits


class Redis(Program):

    def __init__(self):
        super().__init__("redis", strace=True)
        self.port = 0

    def argv(self, tmp):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", tmp, "--logfile", os.path.join(tmp, "redis.log")]

    def ready(self, pid):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if r.stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise Failure(f"redis-server (pid {pid}) did not answer PING on 127.0.0.1:{self.port} within 20 s")

    def start_load(self, tmp):
        # Loopback only; -l loops until killed; values of 2 KiB over 20000 keys.
        return subprocess.Popen([
            "redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port), "-q", "-l", "-c", "8", "-d", "2048", "-r",
            "20000", "-t", "set,get,lpush,lpop"
        ],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True)


class Java(Program):

    def __init__(self):
        super().__init__("jvm", warmup=1.2)

    def prepare(self, tmp, build_dir):
        r = subprocess.run(["javac", "-d", tmp, os.path.join(HERE, "Alloc.java")], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"javac failed ({r.returncode}): {r.stderr.strip()}")

    def argv(self, tmp):
        return ["java", "-Xmx256m", "-cp", tmp, "Alloc", "8"]


class Go(Program):

    def __init__(self):
        super().__init__("go", strace=True)

    def prepare(self, tmp, build_dir):
        # The build cache lives in the build tree, so only the first run
        # compiles the runtime; nothing is downloaded (no modules).
        cache = os.path.join(build_dir, "go-cache")
        os.makedirs(cache, exist_ok=True)
        env = dict(os.environ, GOCACHE=cache, HOME=tmp, GOPATH=os.path.join(tmp, "gopath"), GOFLAGS="",
                   GOTOOLCHAIN="local", GOPROXY="off", CGO_ENABLED="0")
        r = subprocess.run(["go", "build", "-o", os.path.join(tmp, "alloc"),
                            os.path.join(HERE, "alloc.go")],
                           capture_output=True,
                           text=True,
                           env=env)
        if r.returncode != 0:
            raise Failure(f"go build failed ({r.returncode}): {r.stderr.strip()}")

    def argv(self, tmp):
        return [os.path.join(tmp, "alloc")]


class Node(Program):

    def __init__(self):
        super().__init__("node", strace=True)

    def argv(self, tmp):
        return ["node", os.path.join(HERE, "alloc.js")]


class PythonThreads(Program):

    def __init__(self):
        super().__init__("python3-threads", strace=True)

    def argv(self, tmp):
        # Debian's python3 (scripts/setup.sh), whatever runs this script.
        return ["/usr/bin/python3", os.path.join(HERE, "churn.py"), "4"]


def programs():
    ps = [StressNg(s) for s in StressNg.OPTS]
    ps += [Redis(), Java(), Go(), Node(), PythonThreads()]
    return {p.name: p for p in ps}


def modes_of(p):
    return ["traced", "attach"] + (["strace"] if p.strace else [])


# ---- /proc -------------------------------------------------------------------


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def task_states(pid):
    """The state letter of every thread of pid, or None when it is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return None
    states = []
    for t in tids:
        s = read(f"/proc/{pid}/task/{t}/stat")
        if s:
            states.append(s[s.rfind(")") + 2])
    return states


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tids:
            for c in (read(f"/proc/{p}/task/{t}/children") or "").split():
                if int(c) not in out:
                    out.append(int(c))
                    todo.append(int(c))
    return out


def fault_counters(pid):
    s = read(f"/proc/{pid}/stat")
    f = s[s.rfind(")") + 2:].split()
    return int(f[7]) + int(f[9])  # minflt (field 10) + majflt (field 12)


def stop_and_look(pids, deadline_s=10):
    """SIGSTOPs pids, waits until each is fully stopped, reads what the test
    compares, SIGCONTs them. Processes that exit meanwhile are left out."""
    for p in pids:
        try:
            os.kill(p, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    try:
        live, deadline = list(pids), time.monotonic() + deadline_s
        while True:
            waiting = []
            for p in list(live):
                st = task_states(p)
                # Zombie threads cannot change anything; a process with only
                # those has exited.
                if st is None or all(c in "ZX" for c in st):
                    live.remove(p)
                elif any(c not in "TZX" for c in st):
                    waiting.append(p)
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise Failure(f"pids {waiting} did not stop within {deadline_s} s: states "
                              f"{[task_states(p) for p in waiting]}")
            time.sleep(0.002)
        seen = {}
        for p in live:
            maps, faults = read(f"/proc/{p}/maps"), fault_counters(p)
            if maps is not None:
                seen[p] = {"maps": maps, "faults": faults}
        ts = time.monotonic_ns()  # CLOCK_MONOTONIC, the events' clock
        return ts, seen
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass


# ---- vmatrace ----------------------------------------------------------------


class Tracer:
    """`vmatrace record` in the background; its stderr goes to a file."""

    def __init__(self, vmatrace, argv, tmp, out):
        self.err_path = os.path.join(tmp, "vmatrace.err")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen([vmatrace, "record", *argv],
                                     stdout=out,
                                     stderr=self.err,
                                     start_new_session=True)

    def stderr(self):
        return read(self.err_path) or ""

    def wait_banner(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "vmatrace: tracing " in self.stderr():
                return
            if self.proc.poll() is not None:
                raise Failure(f"vmatrace exited ({self.proc.returncode}) before its banner: {self.stderr().strip()}")
            time.sleep(0.02)
        raise Failure(f"no banner from vmatrace within {timeout} s: {self.stderr().strip()}")

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure(f"vmatrace did not exit within {timeout} s: {self.stderr().strip()}")

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def first_differences(expected, actual, n=16):
    d = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), "/proc/PID/maps", "replay --maps",
                                  lineterm="", n=0))
    return "\n".join(d[:n + 2]) + ("\n..." if len(d) > n + 2 else "")


def maps_sections(text):
    """pid -> layout, from `replay --maps` output ("# maps of PID (comm) at T"
    headers, each followed by that process's maps lines)."""
    layouts = {}
    for section in re.split(r"^(?=# maps of \d+ )", text, flags=re.M):
        m = re.match(r"# maps of (\d+) .*\n", section)
        if m:
            layouts[int(m[1])] = section[m.end():]
    return layouts


def replayed_maps(vmatrace, rec, ts, pids):
    """pid -> the layout `vmatrace replay --maps --at ts` prints for it, and
    the replay's error text. One replay for all pids of a stop (each replay
    reads the whole recording): `--pid P` when there is one."""
    r = run([vmatrace, "replay", rec, "--maps", "--at", str(ts)] + (["--pid", str(pids[0])] if len(pids) == 1 else []))
    err = f"exit {r.returncode}" + (f", {r.stderr.strip()}" if r.stderr.strip() else "")
    return (maps_sections(r.stdout) if r.returncode == 0 else {}), err


def compare_stops(vmatrace, rec, stops):
    """Replays the layout of every process at every stop (two replays at a
    time); returns (matched, total, failure messages)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        replies = list(pool.map(lambda st: replayed_maps(vmatrace, rec, st[0], sorted(st[1])), stops))
    matched, total, missing, failures = 0, 0, 0, []
    for i, ((ts, seen), (layouts, err)) in enumerate(zip(stops, replies)):
        for pid, s in sorted(seen.items()):
            total += 1
            body = layouts.get(pid)
            if body == s["maps"]:
                matched += 1
                continue
            cmd = f"vmatrace replay {rec} --maps --at {ts}" + (f" --pid {pid}" if len(seen) == 1 else "")
            what = "has no layout for it" if body is None else "differs from /proc"
            missing += body is None
            failures.append(f"stop {i} (ts {ts}), pid {pid}: `{cmd}` ({err}) {what}:\n" +
                            first_differences(s["maps"], body or ""))
    return matched, total, missing, failures


def recording_info(vmatrace, rec):
    r = run([vmatrace, "info", rec, "--json"])
    if r.returncode != 0:
        raise Failure(f"vmatrace info {rec} failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def json_events(vmatrace, rec, extra=()):
    """Yields the recording's events as dicts (faults as cheap stubs)."""
    p = subprocess.Popen([vmatrace, "replay", rec, "--json", *extra],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL,
                         text=True)
    fault = re.compile(r'"ts":(\d+),"pid":(\d+),"tid":(\d+),.*?"event":"fault"')
    for line in p.stdout:
        if '"event":"fault"' in line:
            m = fault.search(line)
            if m:
                yield {"event": "fault", "ts": int(m[1]), "pid": int(m[2]), "tid": int(m[3])}
                continue
        yield json.loads(line)
    if p.wait() != 0:
        raise Failure(f"vmatrace replay {rec} --json failed ({p.returncode})")


def compare_faults(vmatrace, rec, stops):
    """Per process: faults recorded between its first and last stop against
    the kernel's minflt + majflt delta."""
    spans = {}
    for ts, seen in stops:
        for pid, s in seen.items():
            first = spans.setdefault(pid, [ts, s["faults"], ts, s["faults"]])
            first[2], first[3] = ts, s["faults"]
    spans = {p: s for p, s in spans.items() if s[2] > s[0]}
    counted = {p: 0 for p in spans}
    for e in json_events(vmatrace, rec):
        if e["event"] == "fault" and e["pid"] in spans:
            s = spans[e["pid"]]
            if s[0] < e["ts"] <= s[2]:
                counted[e["pid"]] += 1
    rows, failures = [], []
    for pid, s in sorted(spans.items()):
        kernel = s[3] - s[1]
        rows.append({"pid": pid, "vmatrace": counted[pid], "kernel": kernel})
        if abs(counted[pid] - kernel) > 0.01 * kernel:
            failures.append(f"pid {pid}: {counted[pid]} faults recorded between its first and last stop, the kernel "
                            f"counted {kernel} (minflt + majflt): more than 1% apart")
    return rows, failures


# ---- strace ------------------------------------------------------------------

STRACE_CALL = re.compile(r"^(\d+) +(\w+)\(")
STRACE_RESUMED = re.compile(r"^(\d+) +<\.\.\. (\w+) resumed>")
STRACE_RESULT = re.compile(r"\) += (-1 (E\w+)|0x[0-9a-f]+|-?\d+)(?: .*)?$")


def strace_streams(path):
    """tid -> [(syscall, result)] from `strace -f -o path`; a call that never
    returned to strace (`= ?`: a fatal signal, e.g. a sibling's exit_group,
    reached the thread in it) has the result "?": strace cannot say whether
    it ran (see unknown_results)."""
    streams, pending = {}, {}
    for line in open(path):
        line = line.rstrip("\n")
        m = STRACE_RESUMED.match(line)
        if m:
            tid, name = int(m[1]), m[2]
            pending.pop(tid, None)
        else:
            m = STRACE_CALL.match(line)
            if not m:
                continue
            tid, name = int(m[1]), m[2]
            if line.endswith("<unfinished ...>"):
                pending[tid] = name
                continue
        if name not in MEMORY_SYSCALLS:
            continue
        r = STRACE_RESULT.search(line)
        if r:
            streams.setdefault(tid, []).append((name, r[2] if r[2] else int(r[1], 0)))
        elif line.endswith("= ?"):
            streams.setdefault(tid, []).append((name, "?"))
    return streams


def unknown_results(theirs, ours):
    """strace's stream with each "?" (a call strace saw enter but not return)
    decided by ours: the same call with whatever result the kernel gave, or
    nothing if the thread died before it ran (its exit reports -ENOSYS, which
    vmatrace leaves out). Every known call must still match exactly."""
    out, j = [], 0
    for call in theirs:
        if call[1] == "?":
            if j < len(ours) and ours[j][0] == call[0]:
                out.append(ours[j])
                j += 1
            continue
        out.append(call)
        j += 1
    return out


def vmatrace_streams(vmatrace, rec):
    """tid -> [(syscall, result)], and tid -> pid."""
    streams, pid_of = {}, {}
    for e in json_events(vmatrace, rec):
        if e["event"] in MEMORY_SYSCALLS:
            pid_of[e["tid"]] = e["pid"]
            if "error" in e:
                result = e["error"]
            else:
                ret = e.get("ret")
                result = int(ret, 0) if isinstance(ret, str) else ret
            streams.setdefault(e["tid"], []).append((e["event"], result))
    return streams, pid_of


def compare_strace(ours, pid_of, theirs):
    """Every thread of the processes strace traced (vmatrace also follows
    strace itself and the children it forks to probe ptrace)."""
    traced = {pid_of[t] for t in theirs if t in pid_of}
    ours = {t: s for t, s in ours.items() if pid_of[t] in traced}
    tids = sorted(set(ours) | set(theirs))
    equal, failures = 0, []
    for t in tids:
        b = ours.get(t, [])
        a = unknown_results(theirs.get(t, []), b)
        if a == b:
            equal += 1
            continue
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        failures.append(f"tid {t}: strace saw {len(a)} memory syscalls, vmatrace {len(b)}; first difference at #{i}: "
                        f"strace {a[i:i + 3]}, vmatrace {b[i:i + 3]}")
    return equal, len(tids), sum(len(s) for s in theirs.values()), failures


# ---- one run -----------------------------------------------------------------


def wait_for_program(parent, argv, timeout=20):
    """The first descendant of parent that runs argv's executable (after its
    exec; redis rewrites its command line, so that is not compared): strace
    and vmatrace may fork helpers of their own first."""
    exe = os.path.realpath(shutil.which(argv[0]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in descendants(parent):
            try:
                if os.readlink(f"/proc/{pid}/exe") == exe:
                    return pid
            except OSError:
                pass
        time.sleep(0.01)
    raise Failure(f"pid {parent} started no {exe} within {timeout} s")


def take_stops(rng, root):
    stops = []
    for _ in range(STOPS):
        time.sleep(rng.uniform(0.15, 0.6))
        pids = [root] + descendants(root)
        ts, seen = stop_and_look(pids)
        if root not in seen:
            raise Failure(f"pid {root} exited before stop {len(stops)}")
        stops.append((ts, seen))
    return stops


def why_gone(target, tmp):
    """The exit status (attach mode) and the end of the program's output."""
    status = f"exit status {target.poll()}; " if target else ""
    out = []
    for name in ("program.out", "vmatrace.err"):  # traced, its stderr is vmatrace's
        out += [f"{name}: {line}" for line in (read(os.path.join(tmp, name)) or "").strip().splitlines()[-4:]]
    return status + (" | ".join(out) if out else "no output")


def run_case(p, mode, vmatrace, build_dir, rng, tmp):
    result = {"program": p.name, "mode": mode, "binary": vmatrace}
    failures = []
    p.prepare(tmp, build_dir)
    t0 = time.monotonic()
    rec = os.path.join(tmp, "rec.vmat")
    argv = p.argv(tmp)
    for tool in [argv[0]] + (["strace"] if mode == "strace" else []):
        if not shutil.which(tool):
            raise Failure(f"{tool} is not installed (scripts/setup.sh installs it)")
    target = None  # the untraced program (attach mode)
    program_out = open(os.path.join(tmp, "program.out"), "w")
    tracer = None
    load = None
    try:
        if mode == "attach":
            target = subprocess.Popen(argv,
                                      stdout=program_out,
                                      stderr=subprocess.STDOUT,
                                      start_new_session=True,
                                      cwd=tmp)
            root = target.pid
            p.ready(root)
            load = p.start_load(tmp)
            time.sleep(1.0)
            if target.poll() is not None:
                raise Failure(f"{argv[0]} exited ({target.returncode}) before the attach")
            tracer = Tracer(vmatrace, ["-o", rec, "-p", str(root)], tmp, subprocess.DEVNULL)
            tracer.wait_banner()
            time.sleep(rng.uniform(0, 0.3))
        else:
            strace_log = os.path.join(tmp, "strace.log")
            cmd = argv if mode == "traced" else [
                "strace", "-f", "-qq", "-e", "signal=none", "-e", "trace=" + ",".join(MEMORY_SYSCALLS), "-o",
                strace_log, "--", *argv
            ]
            tracer = Tracer(vmatrace, ["-o", rec, "--", *cmd], tmp, program_out)
            tracer.wait_banner()
            root = wait_for_program(tracer.proc.pid, argv)
            p.ready(root)
            load = p.start_load(tmp)
            time.sleep(p.warmup)
        if mode == "strace":
            time.sleep(3.0)
            stops = []
        else:
            try:
                stops = take_stops(rng, root)
            except Failure as e:
                raise Failure(f"{e} ({why_gone(target, tmp)})")
        if load:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()
            load = None
        if mode == "attach":
            # Detach first, then end the program: the recording ends with it alive.
            tracer.proc.send_signal(signal.SIGINT)
            tracer.wait()
        try:
            p.end(root)
        except ProcessLookupError:
            raise Failure(f"{argv[0]} (pid {root}) exited before the test ended it: {tracer.stderr().strip()}")
        if mode == "attach":
            target.wait(30)
        else:
            tracer.wait()
        if tracer.proc.returncode not in (0, 128 + signal.SIGTERM, 128 + signal.SIGINT):
            failures.append(f"vmatrace record exited {tracer.proc.returncode}: {tracer.stderr().strip()}")
    finally:
        if load:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()
        if tracer:
            tracer.kill()
        if target and target.poll() is None:
            os.killpg(target.pid, signal.SIGKILL)
            target.wait()
        program_out.close()

    result["run_seconds"] = round(time.monotonic() - t0, 1)
    info = recording_info(vmatrace, rec)
    result["lost"] = info.get("lost", 0)
    if result["lost"] != 0:
        failures.append(f"{result['lost']} events lost (vmatrace info {rec})")
    if info.get("state") != "clean":
        failures.append(f"recording state {info.get('state')!r}, not clean")
    if mode == "strace":
        equal, tids, calls, fails = compare_strace(*vmatrace_streams(vmatrace, rec), strace_streams(strace_log))
        result["strace"] = {"tids_equal": equal, "tids": tids, "syscalls": calls}
        failures += fails
        if calls == 0:
            failures.append("strace logged no memory syscall: nothing was compared")
    else:
        t1 = time.monotonic()
        matched, total, missing, fails = compare_stops(vmatrace, rec, stops)
        result["maps_missing"] = missing  # of the pairs that did not match: no layout printed at all
        result["replay_seconds"] = round(time.monotonic() - t1, 1)
        result["stops"] = len(stops)
        result["maps_matched"], result["maps_compared"] = matched, total
        failures += fails
        if p.faults:
            rows, fails = compare_faults(vmatrace, rec, stops)
            result["faults"] = rows
            failures += fails
    return result, failures


def self_test():
    """The parsers, on fixed text (no root, no BPF): unit.RealSuite.SelfTest."""
    log = "\n".join([
        "10 brk(NULL)                         = 0x55d000",
        "10 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000",
        "11 munmap(0x7f0000001000, 4096 <unfinished ...>",
        "10 mprotect(0x7f0000000000, 4096, PROT_NONE) = -1 ENOMEM (Cannot allocate memory)",
        "11 <... munmap resumed>)            = 0",
        "12 madvise(0x7f0000000000, 4096, MADV_DONTNEED <unfinished ...>) = ?",
        "11 +++ exited with 0 +++",
        "10 openat(AT_FDCWD, \"x\", O_RDONLY) = 3",
    ])
    with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
        f.write(log + "\n")
        f.flush()
        got = strace_streams(f.name)
    want = {10: [("brk", 0x55d000), ("mmap", 0x7f0000000000), ("mprotect", "ENOMEM")], 11: [("munmap", 0)],
            12: [("madvise", "?")]}
    assert got == want, got
    ours = {10: want[10], 11: want[11], 12: [("madvise", 0)], 99: [("mmap", 1)]}
    pid_of = {10: 10, 11: 10, 12: 10, 99: 99}
    assert compare_strace(ours, pid_of, want)[:2] == (3, 3)
    ours[12] = []  # killed before it ran: vmatrace has nothing
    assert compare_strace(ours, pid_of, want)[:2] == (3, 3)
    ours[12] = [("munmap", 0)]  # a "?" stands for its own call only
    assert compare_strace(ours, pid_of, want)[:2] == (2, 3)
    ours[12] = []
    ours[11] = [("munmap", -1)]
    equal, tids, _, fails = compare_strace(ours, pid_of, want)
    assert (equal, tids) == (2, 3) and "tid 11" in fails[0], fails
    text = "# maps of 5 (a b) at +1.000s\n1000-2000 r--p 00000000 00:00 0 \n# maps of 6 (c) at +1.000s\n"
    assert maps_sections(text) == {5: "1000-2000 r--p 00000000 00:00 0 \n", 6: ""}
    assert "-a\n+b" in first_differences("x\na\n", "x\nb\n")
    print("self-test passed")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print PROGRAM.MODE for every run and exit")
    ap.add_argument("--self-test", action="store_true", help="test the parsers on fixed text and exit")
    ap.add_argument("--case", help="PROGRAM.MODE")
    ap.add_argument("--vmatrace", help="the vmatrace binary ($VMATRACE_BIN wins)")
    ap.add_argument("--build-dir", default=".", help="where caches (Go's) live")
    ap.add_argument("--results", help="write RESULTS/PROGRAM.MODE.json ($VMATRACE_REAL_RESULTS wins)")
    ap.add_argument("--seed", type=int, help="seed of the stop moments (default: random, printed)")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    ps = programs()
    if a.list:
        for p in ps.values():
            for m in modes_of(p):
                print(f"{p.name}.{m}")
        return 0
    name, _, mode = (a.case or "").rpartition(".")
    if name not in ps or mode not in modes_of(ps[name]):
        ap.error(f"unknown case {a.case!r} (see --list)")
    vmatrace = os.environ.get("VMATRACE_BIN") or a.vmatrace
    if not vmatrace or not os.access(vmatrace, os.X_OK):
        ap.error(f"no vmatrace binary at {vmatrace!r}: set VMATRACE_BIN or --vmatrace")
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    print(f"{a.case}: vmatrace {vmatrace}, seed {seed}", flush=True)
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="vmatrace-real-")
    try:
        try:
            result, failures = run_case(ps[name], mode, vmatrace, os.path.abspath(a.build_dir), random.Random(seed),
                                        tmp)
        except Failure as e:
            result, failures = {"program": name, "mode": mode, "binary": vmatrace, "error": str(e)}, [str(e)]
        except Exception as e:  # a bug here, or a tool that misbehaved: still a failure with a result file
            import traceback
            traceback.print_exc()
            result, failures = {"program": name, "mode": mode, "binary": vmatrace, "error": repr(e)}, [repr(e)]
        result["seed"], result["seconds"] = seed, round(time.monotonic() - started, 1)
        result["failures"] = len(failures)
        results = os.environ.get("VMATRACE_REAL_RESULTS") or a.results
        if results:
            os.makedirs(results, exist_ok=True)
            with open(os.path.join(results, a.case + ".json"), "w") as f:
                json.dump(result, f, indent=1)
        print(json.dumps({k: v for k, v in result.items() if k != "binary"}))
        for f in failures:
            print("FAIL: " + f)
        if os.environ.get("VMATRACE_REAL_KEEP"):
            print(f"kept {tmp}")
            tmp = None
        return 1 if failures else 0
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
