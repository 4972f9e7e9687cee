#!/bin/sh
# Kernel-side cost of the vma family (VMA-tree stores, bpf/vma.bpf.c): the
# storm workload's loop time (its own elapsed_ns, so tracer start-up is
# left out) untraced, recorded with vma=none (inference only) and recorded
# with the planned kernel source, in alternation. Prints medians and ratios.
# Usage: sudo bench/vma_cost.sh BUILD_DIR [ROUNDS] [ITERS]
set -eu
build=${1:?usage: vma_cost.sh BUILD_DIR [ROUNDS] [ITERS]}
rounds=${2:-7}
iters=${3:-200000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wl="$build/workloads/storm"
run() {  # config -> elapsed_ns on stdout
  case $1 in
    untraced) "$wl" "$iters" ;;
    vma_off) "$build/vmatrace" record --force -o "$tmp/r.vmat" --attach vma=none -- "$wl" "$iters" 2>/dev/null ;;
    vma_on) "$build/vmatrace" record --force -o "$tmp/r.vmat" -- "$wl" "$iters" 2>/dev/null ;;
  esac | sed -n 's/.*elapsed_ns=\([0-9]*\).*/\1/p'
}
for i in $(seq "$rounds"); do
  for c in untraced vma_off vma_on; do echo "$c $(run $c)" >>"$tmp/times"; done
done
median() { grep "^$1 " "$tmp/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
u=$(median untraced); off=$(median vma_off); on=$(median vma_on)
echo "storm $iters iterations, $rounds rounds, median loop ns: untraced $u, vma=none $off, vma=$("$build/vmatrace" features | awk '$1=="vma"{print $2}') $on"
awk -v u="$u" -v off="$off" -v on="$on" 'BEGIN {
  printf "slowdown vs untraced: vma=none %.2fx, vma on %.2fx; vma on / vma=none: %.3fx\n", off/u, on/u, on/off }'
