#!/usr/bin/env bash
# The README's demo command: sets everything up, builds, and traces the
# bundled demo workload, printing every address-space event and, at the end,
# the rebuilt layout in /proc/PID/maps format.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec ./build/vmatrace trace --maps "$@" -- ./build/workloads/demo
