#!/usr/bin/env bash
# ctest fuzz.recording: builds a seed corpus from real recordings (the storm
# and checkpoints workloads recorded by the vmatrace binary just built), adds
# the crash regressions, and runs the fuzzer bounded. A crash leaves its
# input in ARTIFACTS (printed) and fails the test; keep it in
# tests/fuzz/regressions/ once fixed.
# Usage: run_fuzz.sh FUZZER VMATRACE SEED_TOOL WORKLOADS REGRESSIONS WORKDIR [SECONDS]
set -euo pipefail
fuzzer=$1 vmatrace=$2 seed_tool=$3 workloads=$4 regressions=$5 work=$6 seconds=${7:-60}
seeds=$work/seeds corpus=$work/corpus artifacts=$work/artifacts
rm -rf "$seeds" "$artifacts"
mkdir -p "$seeds" "$corpus" "$artifacts"

"$vmatrace" record --force -o "$seeds/storm.vmat" -- "$workloads/storm" 300 >/dev/null
"$vmatrace" record --force -o "$seeds/storm-faults-off.vmat" --faults=off -- "$workloads/storm" 50 3 >/dev/null

# checkpoints stops itself (SIGSTOP) after each step; continue it from here,
# by pid, until the recording ends.
"$vmatrace" record --force -o "$seeds/checkpoints.vmat" -- "$workloads/checkpoints" >/dev/null 2>&1 &
rec=$!
for _ in $(seq 600); do
  kill -0 "$rec" 2>/dev/null || break
  for c in $(cat /proc/"$rec"/task/*/children 2>/dev/null); do
    for g in $c $(cat /proc/"$c"/task/*/children 2>/dev/null); do kill -CONT "$g" 2>/dev/null || true; done
  done
  sleep 0.05
done
wait "$rec" || { echo "run_fuzz: recording checkpoints failed" >&2; exit 1; }

# Uncompressed 4 KiB chunks too, so mutations land in records, and a
# truncated copy of each (the "cut short" path).
for f in "$seeds"/*.vmat; do
  "$seed_tool" "$f" "${f%.vmat}.raw"
  head -c 65536 "${f%.vmat}.raw" >"${f%.vmat}.raw64k"
  head -c 65536 "$f" >"${f%.vmat}.head64k"
done
cp "$regressions"/* "$seeds"/ 2>/dev/null || true
rm -f "$seeds/README.md"
ls -la "$seeds"

# The first directory collects what the fuzzer finds (kept across runs in
# the build dir); the seeds are read only.
exec "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$corpus" "$seeds"
