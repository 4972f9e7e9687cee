#!/bin/sh
# Runs inside the test VM (busybox sh). Exits 0 only if the guest kernel has
# what the BPF end-to-end tests need: BTF, tracefs, kprobes that attach and
# fire, and (if bpftool was copied in) kprobe/tracing BPF program types.
fails=0
T=/sys/kernel/tracing
# check DESCRIPTION COMMAND...: run COMMAND, report ok/FAIL.
check() {
  desc=$1
  shift
  if "$@"; then
    echo "smoke: ok: $desc"
  else
    echo "smoke: FAIL: $desc"
    fails=$((fails + 1))
  fi
}

echo "smoke: kernel $(uname -r)"
check "/sys/kernel/btf/vmlinux exists" test -s /sys/kernel/btf/vmlinux
check "do_brk_flags in /proc/kallsyms" grep -q ' do_brk_flags$' /proc/kallsyms
check "do_brk_flags in available_filter_functions" grep -qx do_brk_flags $T/available_filter_functions
# A full 'bpftool btf dump' takes ~8 s under TCG; the name in the BTF string
# table is enough here.
check "do_brk_flags in vmlinux BTF" grep -q do_brk_flags /sys/kernel/btf/vmlinux
config=/boot/config-$(uname -r)
if [ -e "$config" ]; then
  check "CONFIG_KPROBES=y" grep -q '^CONFIG_KPROBES=y' "$config"
fi

if echo 'p:vmat_smoke do_brk_flags' >$T/kprobe_events; then
  echo "smoke: ok: kprobe p:vmat_smoke do_brk_flags created"
  echo 1 >$T/events/kprobes/vmat_smoke/enable
  # Exec of a binary with a .bss, and malloc in busybox, go through brk.
  /bin/busybox true
  sh -c 'seq 1 2000 | wc -l' >/dev/null
  echo 0 >$T/events/kprobes/vmat_smoke/enable
  n=$(grep -c 'vmat_smoke:' $T/trace)
  check "kprobe fired ($n hits)" test "$n" -gt 0
  check "kprobe removed" sh -c "echo '-:vmat_smoke' >>$T/kprobe_events"
  echo >$T/trace
else
  check "create kprobe p:vmat_smoke do_brk_flags" false
fi

if command -v bpftool >/dev/null 2>&1; then
  probe=/tmp/vmat_smoke_probe.txt
  bpftool feature probe kernel >"$probe" 2>&1
  for t in kprobe tracing raw_tracepoint tracepoint; do
    check "BPF program type $t available" grep -q "eBPF program_type $t is available" "$probe"
  done
else
  echo "smoke: bpftool not in the guest; BPF program types not probed"
fi

if [ "$fails" -ne 0 ]; then
  echo "smoke: $fails check(s) failed"
  exit 1
fi
echo "smoke: all checks passed"
