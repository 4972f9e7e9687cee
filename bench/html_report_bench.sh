#!/usr/bin/env bash
# The timeline page on a big recording: how long `vmatrace report --html`
# takes against the bare replay engine (`replay --stats`) on the same
# recording, and how the page behaves in headless Chromium
# (bench/html_page_bench.mjs). Prints ratios; asserts nothing.
#
# usage: sudo bench/html_report_bench.sh [ITERATIONS]   (storm workload: 3 records each; default 340000 ~ 1M records)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VMATRACE_BUILD:-$root/build}
iters=${1:-340000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/vmatrace" record -o "$tmp/storm.vmat" -- "$build/workloads/storm" "$iters" >/dev/null 2>"$tmp/record.err" ||
  { cat "$tmp/record.err" >&2; exit 1; }
cpu() { /usr/bin/time -f %U+%S -o "$tmp/t" "$@" >/dev/null 2>&1; python3 -c "print(round($(cat "$tmp/t"), 3))"; }
replay=$(cpu "$build/vmatrace" replay "$tmp/storm.vmat" --stats)
faults=$(cpu "$build/vmatrace" report "$tmp/storm.vmat" --faults)
html=$(cpu "$build/vmatrace" report "$tmp/storm.vmat" --html "$tmp/storm.html")
records=$("$build/vmatrace" info "$tmp/storm.vmat" | sed -n 's/^records: *\([0-9]*\).*/\1/p')
echo "recording: $records records (storm $iters)"
echo "CPU seconds: replay --stats $replay, report --faults $faults, report --html $html"
python3 -c "print('report --html / replay --stats: %.1fx; / report --faults: %.1fx' % ($html / $replay, $html / $faults))"
modules=$build/html-tests
if [[ ! -d $modules/node_modules/playwright-core ]]; then
  cp "$root/tests/html/package.json" "$root/tests/html/package-lock.json" "$modules/" 2>/dev/null ||
    { mkdir -p "$modules"; cp "$root/tests/html/package.json" "$root/tests/html/package-lock.json" "$modules/"; }
  npm ci --no-audit --no-fund --prefix "$modules" >/dev/null
fi
node "$root/bench/html_page_bench.mjs" "$modules" "$tmp/storm.html"
