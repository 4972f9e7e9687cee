#!/usr/bin/env bash
# The README's test command: sets everything up, builds, and runs every test
# (unit, end-to-end on this kernel, end-to-end in the 6.1 VM). Needs root:
# the end-to-end tests load BPF programs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure -j1 "$@"
