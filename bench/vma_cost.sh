#!/bin/sh
# Kernel-side cost of the vma family (VMA-tree stores, bpf/vma.bpf.c): the
# storm workload's loop time (its own elapsed_ns, so tracer start-up is
# left out) untraced, recorded with vma=none (inference only) and recorded
# with the planned kernel source, in alternation. Prints medians and ratios.
#
# Wall time on a shared 2-CPU machine swings with the load, so it also
# prints figures that depend less on it (medians over the same runs):
#  - workload CPU: user+system time of the storm process (build/workloads/
#    timed); the BPF programs run in its context, so their cost is in it;
#  - tracer CPU: vmatrace's own user+system time (its loading and verifying
#    of the BPF programs included), which competes with the workload for
#    the CPUs;
# and, from one more run with kernel.bpf_stats_enabled=1, each vmatrace BPF
# program's runs per iteration and ns per run (machine-wide: other
# processes' VMA-tree stores run the vma program too, and leave after its
# first lookup), and the records per iteration of each kind in the
# recording.
# Usage: sudo bench/vma_cost.sh BUILD_DIR [ROUNDS] [ITERS]
set -eu
build=${1:?usage: vma_cost.sh BUILD_DIR [ROUNDS] [ITERS]}
rounds=${2:-7}
iters=${3:-200000}
tmp=$(mktemp -d)
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled="$stats_was"; rm -rf "$tmp"' EXIT
wl="$build/workloads/storm"
timed="$build/workloads/timed"
val() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" | head -n 1; }
run() {  # config -> "config loop_ns workload_cpu_ns tracer_cpu_ns"
  case $1 in
    untraced) "$timed" "$wl" "$iters" >"$tmp/out" ;;
    vma_off) "$timed" "$build/vmatrace" record --force -o "$tmp/r.vmat" --attach vma=none -- "$timed" "$wl" "$iters" \
      >"$tmp/out" 2>/dev/null ;;
    vma_on) "$timed" "$build/vmatrace" record --force -o "$tmp/r.vmat" -- "$timed" "$wl" "$iters" >"$tmp/out" 2>/dev/null ;;
  esac
  loop=$(val elapsed_ns <"$tmp/out")
  # timed prints after its child: the workload's line comes first, the tracer's (its whole tree) last.
  wcpu=$(grep cmd_cpu_ns "$tmp/out" | head -n 1 | val cmd_cpu_ns)
  all=$(grep cmd_cpu_ns "$tmp/out" | tail -n 1 | val cmd_cpu_ns)
  echo "$1 $loop $wcpu $((all - wcpu))"
}
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$rounds"); do
  for c in untraced vma_off vma_on; do run $c >>"$tmp/times"; done
done
echo "load average at end:   $(cut -d' ' -f1-3 /proc/loadavg)"
median() { grep "^$1 " "$tmp/times" | awk -v f="$2" '{print $f}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
u=$(median untraced 2); off=$(median vma_off 2); on=$(median vma_on 2)
echo "storm $iters iterations, $rounds rounds, median loop ns: untraced $u, vma=none $off, vma=$("$build/vmatrace" features | awk '$1=="vma"{print $2}') $on"
awk -v u="$u" -v off="$off" -v on="$on" 'BEGIN {
  printf "slowdown vs untraced: vma=none %.2fx, vma on %.2fx; vma on / vma=none: %.3fx\n", off/u, on/u, on/off }'
for c in untraced vma_off vma_on; do
  awk -v c=$c -v w="$(median $c 3)" -v t="$(median $c 4)" -v n="$iters" 'BEGIN {
    printf "median CPU, %-8s: workload %7.1f ms (%.2f us/iteration)", c, w/1e6, w/n/1e3
    if (c != "untraced") printf ", tracer %7.1f ms", t/1e6
    printf "\n" }'
done

# One more vma-on run with BPF run-time statistics: snapshots of every
# program's counters just before and just after the workload.
sysctl -qw kernel.bpf_stats_enabled=1
"$build/vmatrace" record --force -o "$tmp/s.vmat" -- sh -c \
  "bpftool -j prog show >'$tmp/before.json'; '$wl' '$iters' >/dev/null; bpftool -j prog show >'$tmp/after.json'" \
  2>/dev/null
python3 - "$tmp/before.json" "$tmp/after.json" "$iters" <<'EOF'
import json, sys
before = {p["id"]: p for p in json.load(open(sys.argv[1]))}
after = json.load(open(sys.argv[2]))
iters = int(sys.argv[3])
print(f"BPF programs during the workload (bpf_stats), per storm iteration:")
print(f"  {'program':<24} {'runs/iter':>9} {'ns/run':>8} {'ns/iter':>8}")
rows = []
for p in after:
    b = before.get(p["id"])
    if not b or "run_cnt" not in p:
        continue
    runs, ns = p["run_cnt"] - b.get("run_cnt", 0), p["run_time_ns"] - b.get("run_time_ns", 0)
    if runs >= iters // 100:
        rows.append((ns, p.get("name", "?"), runs))
for ns, name, runs in sorted(rows, reverse=True):
    print(f"  {name:<24} {runs / iters:9.2f} {ns / runs:8.0f} {ns / iters:8.0f}")
EOF
"$build/vmatrace" info --json "$tmp/s.vmat" | python3 -c '
import json, sys
c = json.load(sys.stdin)["counts"]; n = int(sys.argv[1])
print("records per iteration: " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(c.items()) if v >= n // 100))
' "$iters"
