#!/bin/sh
# malloc attribution cost (issue #6): tests/workloads/mallocbench (small
# malloc/free pairs, occasional heap growth) untraced, under vmatrace with
# --malloc=stack (the mode trace/record use when asked for --malloc) and
# --malloc=off, recorded with --malloc=stack (unwound while recording, frames
# kept, symbolized at replay) and with --keep-stack-bytes (raw stacks kept,
# nothing unwound), and under heaptrack when installed. Rounds alternate the
# tools; prints the median of the workload's own loop time and the ratio
# to untraced. Run as root from the repository: sudo bench/malloc_bench.sh
# [BUILD_DIR] [PAIRS] [ROUNDS]
set -eu
build=${1:-build}
pairs=${2:-50000000}
rounds=${3:-5}
wl=$build/workloads/mallocbench
vt=$build/vmatrace
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

loop_ns() { sed -n 's/.* pairs in \([0-9.]*\) s.*/\1/p' | tail -1; }

for r in $(seq "$rounds"); do
  "$wl" "$pairs" 2>&1 | loop_ns >>"$tmp/untraced"
  "$vt" trace --faults=off --malloc=stack -- "$wl" "$pairs" 2>&1 >/dev/null | loop_ns >>"$tmp/stack"
  "$vt" trace --faults=off --malloc=off -- "$wl" "$pairs" 2>&1 >/dev/null | loop_ns >>"$tmp/off"
  # record unwinds each stack and keeps its frames; --keep-stack-bytes
  # keeps the raw stacks and unwinds nothing.
  "$vt" record --force -o "$tmp/rec" --faults=off --malloc=stack -- "$wl" "$pairs" 2>&1 >/dev/null |
    loop_ns >>"$tmp/record_stack"
  "$vt" record --force -o "$tmp/rec" --faults=off --keep-stack-bytes -- "$wl" "$pairs" 2>&1 >/dev/null |
    loop_ns >>"$tmp/record_keep"
  if command -v heaptrack >/dev/null; then
    heaptrack -o "$tmp/ht.$r" "$wl" "$pairs" 2>&1 | loop_ns >>"$tmp/heaptrack"
  fi
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=$(median "$tmp/untraced")
printf '%-28s %10s %8s\n' "mallocbench $pairs pairs" "median s" "ratio"
for t in untraced stack off record_stack record_keep heaptrack; do
  [ -s "$tmp/$t" ] || continue
  m=$(median "$tmp/$t")
  printf '%-28s %10s %7.2fx\n' "$t" "$m" "$(echo "$m $base" | awk '{print $1/$2}')"
done
