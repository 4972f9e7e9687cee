#!/usr/bin/env bash
# Soak: hours-under-load behaviour in minutes (issue 22). One `vmatrace
# record` traces a redis-server (driven by an untraced redis-benchmark) and a
# multi-threaded JVM allocating, both started under it by one shell. Every
# 20 s each target is stopped from outside (SIGSTOP, all threads stopped,
# /proc/PID/maps read, SIGCONT); at the end each stop's layout replayed from
# the recording is compared with what /proc showed.
# The long attach: a single-threaded churner (tests/workloads/churnthreads)
# runs for the whole soak under a second `vmatrace record -p`, stopped at
# the same moments; SIGINT ends that recording, and a third `record -p` of
# the same process follows for two more stops. Both must be exact.
# Prints: tracer RSS at start, after the first minute and at the end, and its
# slope after the first minute; tracer CPU per record; lost records (live
# summary and `info`); recording size per minute; stops equal to /proc.
#   sudo scripts/soak.sh [--minutes N]     (default 10)
# Exits non-zero when a stop differs, records were lost, a recording does not
# replay completely, `info` disagrees with the live summary (records lost and
# the count of each event type), or RSS grew more than 4 MiB after the first
# minute. scripts/test.sh runs `--minutes 3`; docs/reliability.md has the
# figures of a 10-minute run.
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
churner=$(cd "$build" && pwd)/workloads/churnthreads
[[ -x $churner ]] || { echo "soak: $churner not built (cmake --build $build)" >&2; exit 1; }

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

# The long attach target: one thread mapping, splitting, moving and unmapping
# for the whole soak (and the second attach after it), at a gentle pace.
"$churner" 1 $(((minutes * 60 + 180) * 1000)) 20000 >"$tmp/churn.log" 2>&1 &
churn=$!
pids_to_kill+=("$churn")
until grep -q ready "$tmp/churn.log" 2>/dev/null; do
  [[ -d /proc/$churn ]] || { echo "soak: the churner exited: $(cat "$tmp/churn.log")" >&2; exit 1; }
  sleep 0.05
done
attached() {  # pid of a `record -p` and its stderr: wait for its banner
  for _ in $(seq 600); do
    grep -q '^vmatrace: tracing' "$2" 2>/dev/null && return 0
    [[ -d /proc/$1 ]] || { echo "soak: record -p failed: $(cat "$2")" >&2; exit 1; }
    sleep 0.1
  done
  echo "soak: record -p did not attach in 60 s: $(cat "$2")" >&2
  exit 1
}
"$vt" record -o "$tmp/attach1.vmat" -p "$churn" 2>"$tmp/attach1.err" &
att1=$!
pids_to_kill+=("$att1")
attached "$att1" "$tmp/attach1.err"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$vmpid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$vmpid/stat"; }
all_stopped() {
  # The state follows the last ')': a thread name may hold spaces and
  # parentheses (the JVM's "C2 CompilerThread0").
  local s st
  for s in /proc/"$1"/task/*/stat; do
    st=$(cat "$s" 2>/dev/null) || continue  # a thread that just ended
    st=${st##*) }
    [[ ${st%% *} == T ]] || return 1
  done
}
stop_and_read() {  # pid name index recording
  [[ -d /proc/$1 ]] || { echo "soak: the $2 target (pid $1) is gone; see $tmp/$2.log" >&2; exit 1; }
  kill -STOP "$1"
  until all_stopped "$1"; do
    [[ -d /proc/$1 ]] || { echo "soak: the $2 target (pid $1) died while stopped" >&2; exit 1; }
    sleep 0.01
  done
  sleep 0.2  # vmatrace drains what came before the stop
  echo "$1 $(mono) $4" >"$tmp/stop.$3.$2.meta"
  cat "/proc/$1/maps" >"$tmp/stop.$3.$2.maps"
  kill -CONT "$1"
}

start=$(date +%s)
rss_start=$(rss_kib)
rss_1min=""
i=0
printf 'soak: %d min, redis pid %d, JVM pid %d, vmatrace pid %d; long attach: churner pid %d, record -p pid %d\n' \
  "$minutes" "$redis" "$jvm" "$vmpid" "$churn" "$att1"
while (($(date +%s) - start < minutes * 60)); do
  sleep 20
  i=$((i + 1))
  stop_and_read "$redis" redis "$i" "$rec"
  stop_and_read "$jvm" jvm "$i" "$rec"
  stop_and_read "$churn" churn1 "$i" "$tmp/attach1.vmat"
  rss=$(rss_kib)
  elapsed=$(($(date +%s) - start))
  ((elapsed >= 60)) && [[ -z $rss_1min ]] && rss_1min=$rss
  printf 'soak: %4d s  vmatrace RSS %d KiB  recording %s\n' "$elapsed" "$rss" "$(du -h "$rec" | cut -f1)"
done
rss_end=$(rss_kib)
ticks=$(cpu_ticks)  # its whole life: start-up, attach and the soak
elapsed=$(($(date +%s) - start))
kill "$bench" 2>/dev/null || true
kill "$redis" "$jvm" 2>/dev/null || true
wait "$vmpid" || true
hz=$(getconf CLK_TCK)

# The long attach ends with SIGINT; a second attach to the same process
# follows, for two stops.
kill -INT "$att1"
wait "$att1" || true
"$vt" record -o "$tmp/attach2.vmat" -p "$churn" 2>"$tmp/attach2.err" &
att2=$!
pids_to_kill+=("$att2")
attached "$att2" "$tmp/attach2.err"
for j in 1 2; do
  sleep 5
  stop_and_read "$churn" churn2 "$j" "$tmp/attach2.vmat"
done
kill -INT "$att2"
wait "$att2" || true
kill "$churn" 2>/dev/null || true

# Per recording: the live summary (records lost, count of each event type)
# against `info`, and a complete replay.
check_recording() {  # recording stderr-of-its-record
  python3 - "$1" "$2" "$vt" <<'PY'
import json, re, subprocess, sys
rec, err, vt = sys.argv[1:]
lines = [l for l in open(err) if re.search(r"^vmatrace: \d+ records", l)]
if not lines:
    print(f"soak: {rec}: no live summary in {err}"); sys.exit(1)
s = lines[-1]
live = {k: int(v) for v, k in re.findall(r"(\d+) (syscall|fault|fork|exec|exit)\b", s)}
lost = int(re.search(r"; lost (\d+)", s).group(1))
info = json.loads(subprocess.run([vt, "info", "--json", rec], check=True, capture_output=True, text=True).stdout)
counts = {k: info["counts"].get(k, 0) for k in ("syscall", "fault", "fork", "exec", "exit")}
live = {k: live.get(k, 0) for k in counts}
replay = subprocess.run([vt, "replay", "--stats", rec], capture_output=True, text=True)
bad = []
if counts != live: bad.append(f"counts differ: live {live}, info {counts}")
if info["lost"] != lost: bad.append(f"lost differs: live {lost}, info {info['lost']}")
if info.get("lost_in_kernel", lost) != lost: bad.append(f"the kernel failed to deliver {info['lost_in_kernel']}")
if lost: bad.append(f"lost {lost}")
if info["state"] != "clean": bad.append(f"state {info['state']}")
if replay.returncode != 0: bad.append(f"replay exits {replay.returncode}: {replay.stderr.strip()}")
name = rec.rsplit("/", 1)[-1]
print(f"soak: {name}: {info['records']} records ({', '.join(f'{v} {k}' for k, v in live.items() if v)}); "
      f"lost {lost} live, {info['lost']} info; replay {'complete' if replay.returncode == 0 else 'FAILED'}"
      + ("" if not bad else "; " + "; ".join(bad)))
sys.exit(1 if bad else 0)
PY
}
recs_bad=0
check_recording "$rec" "$tmp/vmatrace.err" || recs_bad=1
check_recording "$tmp/attach1.vmat" "$tmp/attach1.err" || recs_bad=1
check_recording "$tmp/attach2.vmat" "$tmp/attach2.err" || recs_bad=1
live_records=$(sed -nE 's/^vmatrace: ([0-9]+) records.*/\1/p' "$tmp/vmatrace.err" | tail -1)
live_lost=$(sed -nE 's/.*; lost ([0-9]+).*/\1/p' "$tmp/vmatrace.err" | tail -1)
info_lost=$("$vt" info --json "$rec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lost"])')
size=$(stat -c %s "$rec")

declare -A equal differ
for meta in "$tmp"/stop.*.meta; do
  read -r pid ts file <"$meta"
  want=${meta%.meta}.maps
  name=${meta%.meta}; name=${name##*.}
  got=$("$vt" replay "$file" --maps --at "$ts" --pid "$pid" | tail -n +2)
  if [[ $got == "$(cat "$want")" ]]; then
    equal[$name]=$((${equal[$name]:-0} + 1))
  else
    differ[$name]=$((${differ[$name]:-0} + 1))
    echo "soak: $name stop $(basename "$meta" .meta) differs from /proc:" >&2
    diff <(echo "$got") "$want" | head -20 >&2 || true
  fi
done
stops=""
differ_total=0
for name in redis jvm churn1 churn2; do
  stops+="$name ${equal[$name]:-0}/$((${equal[$name]:-0} + ${differ[$name]:-0})), "
  differ_total=$((differ_total + ${differ[$name]:-0}))
  ((${equal[$name]:-0} > 0)) || differ_total=$((differ_total + 1))  # no stop at all is a failure
done

python3 - "$rss_start" "${rss_1min:-$rss_start}" "$rss_end" "$elapsed" "$ticks" "$hz" "${live_records:-0}" \
  "${live_lost:-?}" "$info_lost" "$size" "${stops%, }" "$differ_total" "$recs_bad" <<'PY'
import sys
rs, r1, re_, el, ticks, hz, recs, lost, ilost, size, stops, dif, recs_bad = sys.argv[1:]
rs, r1, re_, el, ticks, hz, recs, size = map(int, (rs, r1, re_, el, ticks, hz, recs, size))
mins = el / 60
slope = (re_ - r1) / max(mins - 1, 1e-9)
cpu = ticks / hz
print(f"soak: {mins:.1f} min; vmatrace RSS {rs} KiB at start, {r1} KiB after 1 min, {re_} KiB at end "
      f"(+{re_ - r1} KiB after the first minute, {slope:.0f} KiB/min)")
print(f"soak: vmatrace CPU {cpu:.1f} s for {recs} records: {cpu * 1e9 / max(recs, 1):.0f} ns/record")
print(f"soak: lost {lost} (live summary), {ilost} (info); recording {size / mins / 2**20:.1f} MiB/min")
print(f"soak: stops equal to /proc: {stops}")
bad = (int(dif) > 0 or int(recs_bad) or lost != ilost or lost != "0" or re_ - r1 > 4096)
print("soak: " + ("FAILED" if bad else "passed"))
sys.exit(1 if bad else 0)
PY
