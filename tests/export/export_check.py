"""The prologue the export checks share (check_pprof.py, check_perfetto.py).

    from export_check import Checks
    c = Checks(WORKDIR)          # an empty work folder
    c.check(cond, "what")        # a failed check is printed and counted
    c.run(argv, ok=(0,), ...)    # a command whose status must be in ok
    c.finish("summary line")     # exits non-zero when any check failed

Every check runs to the end so one run shows all that differs; a command
that fails where it must not ends the check at once, with its output.
"""
import os
import shutil
import subprocess
import sys


class Checks:
    def __init__(self, workdir):
        self.failures = []
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
            print("FAIL:", what, file=sys.stderr)

    def run(self, argv, ok=(0,), timeout=300, **kw):
        r = subprocess.run(argv, capture_output=True, timeout=timeout, **kw)
        if r.returncode not in ok:
            def tail(s):
                s = s.decode(errors="replace") if isinstance(s, bytes) else s
                return s[-3000:]
            sys.exit(f"{' '.join(argv)}: status {r.returncode}\n{tail(r.stdout)}\n{tail(r.stderr)}")
        return r

    def finish(self, summary):
        if self.failures:
            sys.exit(f"{len(self.failures)} check(s) failed")
        print(summary)
