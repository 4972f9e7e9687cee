#!/usr/bin/env bash
# The Debian package, as a user gets it (test package.Deb, label package):
# `cpack -G DEB` from the build tree, then `apt-get install ./vmatrace_*.deb`,
# and from the installed /usr/sbin/vmatrace: --version, `features`, `man -w
# vmatrace`, the bash completion, and one real trace of ls whose mmap calls
# must be strace's; then the package is removed again. Needs root (apt-get,
# BPF): fails, never skips, without.
#   deb_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
out=$build/package
fail() { echo "package test: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "needs root (apt-get install, BPF)"

rm -rf "$out"
(cd "$build" && cpack -G DEB -B "$out" >/dev/null) || fail "cpack -G DEB failed"
debs=("$out"/vmatrace_*.deb)
[[ -f ${debs[0]} ]] || fail "cpack wrote no vmatrace_*.deb in $out"
deb=${debs[0]}
depends=$(dpkg-deb -f "$deb" Depends)
echo "package: $(basename "$deb") ($(du -h "$deb" | cut -f1)); Depends: $depends"
for lib in libbpf1 libelf1 libdw1 libzstd1 libc6 libstdc++6; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done

# Never leave it installed, whatever fails below.
# Another apt-get or dpkg (unattended upgrades, a second build's package
# test) may hold dpkg's lock: wait for it, as apt-get does when told to.
apt=(apt-get -o DPkg::Lock::Timeout=300)
dpkg -s vmatrace >/dev/null 2>&1 && "${apt[@]}" remove -y -qq vmatrace >/dev/null
trap '"${apt[@]}" remove -y -qq vmatrace >/dev/null 2>&1 || true' EXIT
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "$deb" >/dev/null 2>"$out/apt.err" ||
  fail "apt-get install $deb failed: $(cat "$out/apt.err")"
bin=/usr/sbin/vmatrace
[[ -x $bin ]] || fail "$bin not installed"

"$bin" --version | tee "$out/version"
grep -q '^libbpf [0-9]' "$out/version" && grep -q '^bpf object sha256 [0-9a-f]\{64\}$' "$out/version" ||
  fail "--version lacks the libbpf version or the BPF object hash"
"$bin" features >"$out/features" || fail "vmatrace features failed: $(cat "$out/features")"
grep -q 'syscalls' "$out/features" || fail "features printed no syscalls family"
man=$(man -w vmatrace) || fail "man -w vmatrace found no page"
[[ $man == /usr/share/man/man8/vmatrace.8.gz ]] || fail "man page at $man"
man vmatrace 2>/dev/null | grep -q 'VMATRACE_ATTACH' || fail "man vmatrace does not render"
[[ -f /usr/share/bash-completion/completions/vmatrace ]] || fail "no bash completion"
bash -c 'source /usr/share/bash-completion/bash_completion; source /usr/share/bash-completion/completions/vmatrace
  COMP_WORDS=(vmatrace rep); COMP_CWORD=1; _vmatrace; [[ " ${COMPREPLY[*]} " == *" replay "* && " ${COMPREPLY[*]} " == *" report "* ]]' ||
  fail "the completion does not complete subcommands"
[[ -f /usr/share/doc/vmatrace/docs/usage.md ]] || fail "docs not installed"

# One real trace: every mmap ls makes, as strace sees it for the same run.
"$bin" trace -- /bin/ls / >"$out/trace.txt" 2>"$out/trace.err" || fail "trace -- ls failed: $(cat "$out/trace.err")"
strace -f -qq -e trace=mmap -o "$out/strace.txt" /bin/ls / >/dev/null
want=$(grep -c "mmap(" "$out/strace.txt" || true)
got=$(grep -c ' ls mmap(.* => ' "$out/trace.txt" || true)
((want > 0 && got == want)) || fail "trace -- ls: $got mmap lines with their VMAs, strace saw $want"
grep -q "libc.so.6" "$out/trace.txt" || fail "no libc mapping in the trace"

"${apt[@]}" remove -y -qq vmatrace >/dev/null || fail "apt-get remove failed"
trap - EXIT
[[ ! -e $bin ]] || fail "$bin still there after remove"
echo "package test: installed, ran (features, man, completion, trace of ls: $got mmap calls as strace), removed"
