#!/usr/bin/env python3
"""The man page and the bash completion list exactly the options `--help` does.

    check-man.py VMATRACE MAN.scd COMPLETION

For each subcommand, the options CLI11 prints in `vmatrace SUB --help` are
compared with those the man page's section for SUB (`# TRACE`, ...) defines
(lines starting with `*-`) and with the completion's list for SUB. -h/--help
is everywhere and is left out. Exit 1 naming every difference.
"""
import re
import subprocess
import sys

SUBCOMMANDS = ["trace", "record", "replay", "report", "info", "features", "top"]
OPTION = re.compile(r"--?[A-Za-z][-A-Za-z0-9]*")
IGNORED = {"-h", "--help"}


def help_options(binary, sub):
    out = subprocess.run([binary, sub, "--help"], capture_output=True, text=True, check=True).stdout
    opts, in_options = set(), False
    for line in out.splitlines():
        if re.match(r"^\S.*:$", line):
            in_options = line.startswith("Options")
            continue
        m = re.match(r"^\s+(-\S+)", line)
        if in_options and m:
            opts.update(name for name in m.group(1).split(",") if name.startswith("-"))
    return opts - IGNORED


def man_options(path):
    sections, current = {}, None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^# (\S+)\s*$", line)
        if m:
            current = m.group(1).lower()
            sections.setdefault(current, set())
            continue
        if current and line.startswith("*-"):
            # Only the bold parts name options: "*-p, --pid* _PID_, *--json*".
            for bold in re.findall(r"\*([^*]+)\*", line):
                sections[current].update(OPTION.findall(bold))
    return {k: v - IGNORED for k, v in sections.items()}


def completion_options(path):
    text = open(path, encoding="utf-8").read()
    return {sub: set(m.group(1).split()) - IGNORED
            for sub in SUBCOMMANDS
            for m in [re.search(r"\[" + sub + r'\]="([^"]*)"', text)] if m}


def main():
    binary, man, completion = sys.argv[1:4]
    man_opts, comp_opts = man_options(man), completion_options(completion)
    problems = []
    for sub in SUBCOMMANDS:
        want = help_options(binary, sub)
        if not want:
            problems.append(f"{sub}: `--help` listed no options (parser out of date?)")
        for what, have in (("man page", man_opts.get(sub)), ("completion", comp_opts.get(sub))):
            if have is None:
                problems.append(f"{sub}: the {what} has no section for it")
                continue
            if want - have:
                problems.append(f"{sub}: the {what} lacks {' '.join(sorted(want - have))}")
            if have - want:
                problems.append(f"{sub}: the {what} lists {' '.join(sorted(have - want))}, which --help does not")
        print(f"{sub}: {len(want)} options")
    top = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    if "--version" not in top or "--version" not in open(man, encoding="utf-8").read():
        problems.append("--version: missing from `vmatrace --help` or the man page")
    for p in problems:
        print("check-man:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
