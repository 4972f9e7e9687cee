#!/usr/bin/env bash
# The benchmark suite in one command: installs the peer tools (strace,
# linux-perf, bpftrace, heaptrack) and Google Benchmark from Debian, builds
# vmatrace, the workloads and the layout benchmark in ./build, then runs
# bench/bench.py, which prints markdown tables and writes bench/results.json
# and bench/results.md; --update-docs also writes them to
# docs/generated/performance.md (--update-readme is the old name of it).
#   sudo ./scripts/bench.sh [--quick] [--rounds N] [--only storm,faultstorm,...] [--update-docs]
# Not part of the test suite: a full run takes tens of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "bench: the tracers load BPF programs: run as root (sudo $0 $*)" >&2
  exit 1
fi

packages=(strace linux-perf bpftrace heaptrack libbenchmark-dev python3 gcc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# perf trace and bpftrace's tracepoints need tracefs.
if [[ ! -d /sys/kernel/tracing/events ]]; then
  mount -t tracefs nodev /sys/kernel/tracing
fi

build=${VMATRACE_BUILD:-build}
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${VMATRACE_CMAKE_ARGS:-} >/dev/null
else
  cmake "$build" >/dev/null  # picks up a Google Benchmark installed just now
fi
targets=(vmatrace wl_storm wl_faultstorm wl_mallocheavy wl_threads wl_mapmany wl_timed vmatrace_layout_bench)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

VMATRACE_BUILD=$(cd "$build" && pwd) exec python3 bench/bench.py "$@"
