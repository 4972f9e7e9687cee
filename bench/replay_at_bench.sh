#!/bin/sh
# `replay FILE --maps --at T` on a big recording (issue 16: under 0.5 s for
# ~100 MB / ~20 M records): the storm workload recorded (3 records per
# iteration, ~4.4 bytes each on disk), then the layout at 85 % of it asked
# for from the recording's checkpoints (through the trailer's index, and
# through a walk over the chunk headers) and from the first record
# (VMATRACE_SEEK=off), side by side, ROUNDS times each in alternation;
# prints the medians, their ratio, whether the outputs are the same bytes,
# and the checkpoints' share of the file.
# Usage: sudo bench/replay_at_bench.sh BUILD_DIR [ITERS] [ROUNDS]
#   ITERS 7500000 makes the ~100 MB recording (5+ minutes to record).
set -eu
build=${1:?usage: replay_at_bench.sh BUILD_DIR [ITERS] [ROUNDS]}
iters=${2:-1000000}
rounds=${3:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vm="$build/vmatrace"
rec="$tmp/storm.vmat"
"$vm" record -o "$rec" -- "$build/workloads/storm" "$iters" > /dev/null 2>&1
size=$(stat -c %s "$rec")
records=$("$vm" info "$rec" | sed -n 's/^records: *\([0-9]*\).*/\1/p')
dur=$("$vm" info "$rec" | sed -n 's/^duration: *\([0-9.]*\) s.*/\1/p')
at="+$(awk "BEGIN { printf \"%.3f\", $dur * 0.85 }")s"
secs() {  # SEEK -> seconds of one replay --maps --at, output kept in $tmp/out.SEEK
  t0=$(date +%s%N)
  VMATRACE_SEEK=$1 "$vm" replay "$rec" --maps --at "$at" > "$tmp/out.$1"
  t1=$(date +%s%N)
  awk "BEGIN { printf \"%.3f\", ($t1 - $t0) / 1e9 }"
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
index="" scan="" off=""
i=0
while [ "$i" -lt "$rounds" ]; do
  index="$index $(secs index)"
  scan="$scan $(secs scan)"
  off="$off $(secs off)"
  i=$((i + 1))
done
mi=$(echo "$index" | median)
ms=$(echo "$scan" | median)
mo=$(echo "$off" | median)
same=yes
cmp -s "$tmp/out.index" "$tmp/out.off" || same=no
cmp -s "$tmp/out.scan" "$tmp/out.off" || same=no
# Bytes of checkpoint (5) and index (6) chunks, from the chunk headers.
ckpt=$(python3 - "$rec" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
off = 24 + struct.unpack_from("<I", data, 12)[0]
n = b = 0
while off + 48 <= len(data):
    magic, typ, hs, raw, stored = struct.unpack_from("<IHHII", data, off)
    if magic != 0x4B434D56:
        break
    if typ in (5, 6):
        n += typ == 5
        b += hs + stored
    off += hs + stored
print(n, b)
EOF
)
echo "recording: $records records, $size bytes, storm $iters; --at $at"
echo "replay --maps --at, median of $rounds: from checkpoints (index) $mi s, (header walk) $ms s, from the first record $mo s: $(awk "BEGIN { printf \"%.0f\", $mo / ($mi > 0 ? $mi : 0.001) }")x; same output: $same"
echo "checkpoints: ${ckpt% *}, $(awk "BEGIN { printf \"%.3f\", ${ckpt#* } * 100 / $size }") % of the file (index included)"
