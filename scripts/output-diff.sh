#!/usr/bin/env bash
# Byte-for-byte check of the event encoders: replays recordings with two
# vmatrace binaries (a baseline built from main, and this tree's) in every
# output mode the printer has, and diffs what they print. A change to the
# encoders (src/output) must leave this empty.
#   scripts/output-diff.sh OLD_VMATRACE NEW_VMATRACE FILE.vmat...
#   scripts/output-diff.sh --record DIR OLD NEW   (records storm, faultstorm,
#       mapmany, churnthreads and python3 with malloc stacks into DIR first; root)
set -euo pipefail
cd "$(dirname "$0")/.."

record_dir=""
if [[ ${1:-} == --record ]]; then
  record_dir=$2
  shift 2
fi
if (($# < 2)); then
  echo "usage: $0 [--record DIR] OLD_VMATRACE NEW_VMATRACE [FILE.vmat...]" >&2
  exit 2
fi
old=$1 new=$2
shift 2
files=("$@")

if [[ -n $record_dir ]]; then
  mkdir -p "$record_dir"
  wl=build/workloads
  rec() {
    local name=$1
    shift
    "$new" record --force -o "$record_dir/$name.vmat" -- "$@" >/dev/null 2>"$record_dir/$name.log" ||
      { echo "output-diff: recording $name failed:" >&2; tail -3 "$record_dir/$name.log" >&2; exit 1; }
    files+=("$record_dir/$name.vmat")
  }
  rec storm "$wl/storm" 50000
  rec faults "$wl/faultstorm" 65536
  rec mapmany "$wl/mapmany"
  rec threads "$wl/churnthreads"
  rec python python3 bench/pywork.py 20000
fi
((${#files[@]})) || { echo "output-diff: no recordings given" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
for f in "${files[@]}"; do
  pid=$( ("$new" replay --json "$f" || true) | head -1 | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
  modes=("" "--json" "--maps" "--json --maps" "--pmap")
  [[ -n $pid ]] && modes+=("--pid $pid" "--json --pid $pid")
  for m in "${modes[@]}"; do
    # shellcheck disable=SC2086 # the mode is several words on purpose
    "$old" replay $m "$f" >"$out/old" 2>&1 || true
    # shellcheck disable=SC2086
    "$new" replay $m "$f" >"$out/new" 2>&1 || true
    if cmp -s "$out/old" "$out/new"; then
      printf 'same  %-28s replay %s (%s lines)\n' "$(basename "$f")" "${m:-(text)}" "$(wc -l <"$out/new")"
    else
      printf 'DIFF  %-28s replay %s\n' "$(basename "$f")" "${m:-(text)}"
      diff "$out/old" "$out/new" | head -10
      fail=1
    fi
  done
done
exit $fail
