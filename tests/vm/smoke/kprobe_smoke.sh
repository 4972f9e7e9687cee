#!/bin/sh
# Runs inside the test VM (busybox sh). Exits 0 only if the guest kernel has
# what the BPF end-to-end tests need: BTF, tracefs, kprobes that attach and
# fire, and (if bpftool was copied in) kprobe/tracing BPF program types.
fails=0
ok() { echo "smoke: ok: $*"; }
bad() { echo "smoke: FAIL: $*"; fails=$((fails + 1)); }
T=/sys/kernel/tracing

echo "smoke: kernel $(uname -r)"
[ -s /sys/kernel/btf/vmlinux ] && ok "/sys/kernel/btf/vmlinux" || bad "no /sys/kernel/btf/vmlinux"
grep -q ' do_brk_flags$' /proc/kallsyms && ok "do_brk_flags in kallsyms" || bad "do_brk_flags not in /proc/kallsyms"
grep -qx 'do_brk_flags' $T/available_filter_functions 2>/dev/null &&
  ok "do_brk_flags in available_filter_functions" || bad "do_brk_flags not in $T/available_filter_functions"
if [ -e /boot/config-"$(uname -r)" ]; then
  grep -q '^CONFIG_KPROBES=y' /boot/config-"$(uname -r)" && ok "CONFIG_KPROBES=y" || bad "CONFIG_KPROBES not set"
fi

if echo 'p:vmat_smoke do_brk_flags' >$T/kprobe_events; then
  ok "kprobe p:vmat_smoke do_brk_flags created"
  echo 1 >$T/events/kprobes/vmat_smoke/enable
  # Any exec of a binary with a .bss, or a malloc in busybox, goes through brk.
  /bin/busybox true
  sh -c 'x=$(seq 1 2000 | wc -l)' >/dev/null
  echo 0 >$T/events/kprobes/vmat_smoke/enable
  n=$(grep -c 'vmat_smoke:' $T/trace)
  [ "$n" -gt 0 ] && ok "kprobe fired $n times" || bad "kprobe never fired"
  echo '-:vmat_smoke' >>$T/kprobe_events || bad "cannot remove kprobe"
  echo >$T/trace
else
  bad "writing p:vmat_smoke do_brk_flags to $T/kprobe_events failed"
fi

if command -v bpftool >/dev/null 2>&1; then
  probe=$(bpftool feature probe kernel 2>&1)
  for t in kprobe tracing raw_tracepoint tracepoint; do
    echo "$probe" | grep -q "eBPF program_type $t is available" &&
      ok "BPF program type $t" || bad "BPF program type $t not available"
  done
fi
# A full 'bpftool btf dump' takes ~8 s under TCG; the name in the BTF string
# table is enough here.
grep -q do_brk_flags /sys/kernel/btf/vmlinux && ok "do_brk_flags in vmlinux BTF strings" ||
  bad "do_brk_flags not in vmlinux BTF"

if [ "$fails" -ne 0 ]; then
  echo "smoke: $fails check(s) failed"
  exit 1
fi
echo "smoke: all checks passed"
