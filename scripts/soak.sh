#!/usr/bin/env bash
# Soak: hours-under-load behaviour in minutes (issue 22). One `vmatrace
# record` traces a redis-server (driven by an untraced redis-benchmark) and a
# multi-threaded JVM allocating, both started under it by one shell. Every
# 20 s each target is stopped from outside (SIGSTOP, all threads stopped,
# /proc/PID/maps read, SIGCONT); at the end each stop's layout replayed from
# the recording is compared with what /proc showed.
# Prints: tracer RSS at start, after the first minute and at the end, and its
# slope after the first minute; tracer CPU per record; lost records (live
# summary and `info`); recording size per minute; stops equal to /proc.
#   sudo scripts/soak.sh [--minutes N]     (default 10)
# Exits non-zero when a stop differs, records were lost, `info` disagrees with
# the live summary, or RSS grew more than 4 MiB after the first minute.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10
while (($#)); do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    *) echo "soak: unknown argument $1 (usage: soak.sh [--minutes N])" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "soak: vmatrace loads BPF programs: run as root" >&2; exit 1; }
for p in redis-server redis-benchmark java javac python3; do
  command -v "$p" >/dev/null || { echo "soak: $p missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
build=${VMATRACE_BUILD:-build}
vt=$(cd "$build" && pwd)/vmatrace
[[ -x $vt ]] || { echo "soak: $vt not built (cmake --build $build)" >&2; exit 1; }

tmp=$(mktemp -d)
echo "soak: work files in $tmp"
pids_to_kill=()
cleanup() {
  for p in "${pids_to_kill[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
mono() { python3 -c 'import time; print(time.monotonic_ns())'; }

# The JVM workload: threads allocating and keeping a sliding window of arrays.
cat >"$tmp/Alloc.java" <<'JAVA'
import java.util.ArrayDeque;
public class Alloc {
  public static void main(String[] a) throws Exception {
    int threads = Integer.parseInt(a[0]);
    for (int t = 0; t < threads; t++) {
      final int id = t;
      new Thread(() -> {
        ArrayDeque<byte[]> keep = new ArrayDeque<>();
        java.util.Random r = new java.util.Random(id);
        while (true) {
          keep.add(new byte[1024 + r.nextInt(256 * 1024)]);
          if (keep.size() > 200) keep.poll();
          if (r.nextInt(1000) == 0) try { Thread.sleep(5); } catch (InterruptedException e) { return; }
        }
      }).start();
    }
    Thread.currentThread().join();
  }
}
JAVA
javac -d "$tmp" "$tmp/Alloc.java"

port=$((20000 + RANDOM % 20000))
rec=$tmp/soak.vmat
"$vt" record -o "$rec" -- sh -c "redis-server --port $port --save '' --appendonly no >$tmp/redis.log 2>&1 & \
  java -Xmx512m -XX:+UseParallelGC -cp $tmp Alloc 4 >$tmp/java.log 2>&1 & wait" 2>"$tmp/vmatrace.err" &
vmpid=$!
pids_to_kill+=("$vmpid")

# The two targets, once they run under the traced shell (children of it, so
# nobody else's redis or java is ever touched).
redis="" jvm=""
for _ in $(seq 300); do
  sh_pid=$(pgrep -P "$vmpid" -x sh || true)
  if [[ -n $sh_pid ]]; then
    redis=$(pgrep -P "$sh_pid" -x redis-server || true)
    jvm=$(pgrep -P "$sh_pid" -x java || true)
  fi
  [[ -n $redis && -n $jvm ]] && break
  sleep 0.1
done
[[ -n $redis && -n $jvm ]] || { echo "soak: targets did not start" >&2; cat "$tmp/vmatrace.err" >&2; exit 1; }
pids_to_kill+=("$redis" "$jvm")
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
redis-benchmark -p "$port" -q -l -c 20 -P 8 -t set,get,lpush,lpop -d 512 -r 200000 >/dev/null 2>&1 &
bench=$!
pids_to_kill+=("$bench")

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$vmpid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$vmpid/stat"; }
all_stopped() {
  for s in /proc/"$1"/task/*/stat; do
    [[ $(awk '{print $3}' "$s" 2>/dev/null) == T ]] || return 1
  done
}
stop_and_read() {  # pid name index
  [[ -d /proc/$1 ]] || { echo "soak: the $2 target (pid $1) is gone; see $tmp/$2.log" >&2; exit 1; }
  kill -STOP "$1"
  until all_stopped "$1"; do
    [[ -d /proc/$1 ]] || { echo "soak: the $2 target (pid $1) died while stopped" >&2; exit 1; }
    sleep 0.01
  done
  sleep 0.2  # vmatrace drains what came before the stop
  echo "$1 $(mono)" >"$tmp/stop.$3.$2.meta"
  cat "/proc/$1/maps" >"$tmp/stop.$3.$2.maps"
  kill -CONT "$1"
}

start=$(date +%s)
rss_start=$(rss_kib)
rss_1min=""
i=0
printf 'soak: %d min, redis pid %d, JVM pid %d, vmatrace pid %d\n' "$minutes" "$redis" "$jvm" "$vmpid"
while (($(date +%s) - start < minutes * 60)); do
  sleep 20
  i=$((i + 1))
  stop_and_read "$redis" redis "$i"
  stop_and_read "$jvm" jvm "$i"
  rss=$(rss_kib)
  elapsed=$(($(date +%s) - start))
  ((elapsed >= 60)) && [[ -z $rss_1min ]] && rss_1min=$rss
  printf 'soak: %4d s  vmatrace RSS %d KiB  recording %s\n' "$elapsed" "$rss" "$(du -h "$rec" | cut -f1)"
done
rss_end=$(rss_kib)
ticks=$(cpu_ticks)
elapsed=$(($(date +%s) - start))
kill "$bench" 2>/dev/null || true
kill "$redis" "$jvm" 2>/dev/null || true
wait "$vmpid" || true
hz=$(getconf CLK_TCK)

summary=$(grep -E '[0-9]+ records' "$tmp/vmatrace.err" | tail -1)
live_records=$(sed -nE 's/.* ([0-9]+) records.*/\1/p' <<<"$summary")
live_lost=$(sed -nE 's/.*; lost ([0-9]+).*/\1/p' <<<"$summary")
info_lost=$("$vt" info --json "$rec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lost"])')
size=$(stat -c %s "$rec")

equal=0 differ=0
for meta in "$tmp"/stop.*.meta; do
  read -r pid ts <"$meta"
  want=${meta%.meta}.maps
  got=$("$vt" replay "$rec" --maps --at "$ts" --pid "$pid" | tail -n +2)
  if [[ $got == "$(cat "$want")" ]]; then equal=$((equal + 1)); else differ=$((differ + 1)); fi
done

python3 - "$rss_start" "${rss_1min:-$rss_start}" "$rss_end" "$elapsed" "$ticks" "$hz" "${live_records:-0}" \
  "${live_lost:-?}" "$info_lost" "$size" "$equal" "$differ" <<'PY'
import sys
rs, r1, re_, el, ticks, hz, recs, lost, ilost, size, eq, dif = sys.argv[1:]
rs, r1, re_, el, ticks, hz, recs, size = map(int, (rs, r1, re_, el, ticks, hz, recs, size))
mins = el / 60
slope = (re_ - r1) / max(mins - 1, 1e-9)
cpu = ticks / hz
print(f"soak: {mins:.1f} min; vmatrace RSS {rs} KiB at start, {r1} KiB after 1 min, {re_} KiB at end "
      f"(+{re_ - r1} KiB after the first minute, {slope:.0f} KiB/min)")
print(f"soak: vmatrace CPU {cpu:.1f} s for {recs} records: {cpu * 1e9 / max(recs, 1):.0f} ns/record")
print(f"soak: lost {lost} (live summary), {ilost} (info); recording {size / mins / 2**20:.1f} MiB/min")
print(f"soak: {eq} stops equal to /proc, {dif} differ")
bad = (int(dif) > 0 or lost != ilost or lost != "0" or re_ - r1 > 4096)
sys.exit(1 if bad else 0)
PY
