#!/usr/bin/env bash
# ctest unit.Format.Clean: every C/C++ source the repository tracks is as
# clang-format (the checked-in .clang-format files) would write it.
# Usage: check-format.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files '*.c' '*.cpp' '*.h'
else
  find bpf include src tests bench -name '*.c' -o -name '*.cpp' -o -name '*.h'
fi | grep -v '^vmlinux/' | grep -v node_modules | xargs clang-format --dry-run --Werror
echo "format: clean"
