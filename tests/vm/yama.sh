#!/bin/sh
# Guest side of vm.yama: vmatrace without CAP_SYS_PTRACE under each Yama
# ptrace_scope of the 6.1 guest kernel (CONFIG_SECURITY_YAMA=y; the host's
# 6.18 kernel has no Yama). Tracer and target are root with the same
# capabilities (capsh drops cap_sys_ptrace from both: a target holding a
# capability the tracer lacks is refused whatever the scope), so only Yama
# decides:
#  - scope 0: `-p` of a process that is not vmatrace's descendant is traced;
#  - scope 1: refused, one line naming the sysctl and PR_SET_PTRACER; the
#    children of the command vmatrace starts (its descendants) are followed;
#  - scope 2: refused, one line naming CAP_SYS_PTRACE; with CAP_SYS_PTRACE
#    traced;
#  - scope 3 is one-way (it cannot be lowered again) and refuses every
#    attach, with or without CAP_SYS_PTRACE: not set here.
#
# usage: yama.sh VMATRACE
# Busybox sh compatible: it runs as the guest command.
set -u
[ $# -eq 1 ] || { echo "usage: $0 VMATRACE" >&2; exit 2; }
vmatrace=$1
scope_file=/proc/sys/kernel/yama/ptrace_scope
failed=0
fail() {
	echo "FAIL: $*"
	failed=1
}
[ -e $scope_file ] || { echo "FAIL: this kernel has no Yama ($scope_file)"; exit 1; }
echo "Yama ptrace_scope at boot: $(cat $scope_file)"
out=$(mktemp -d /tmp/vmatrace-yama.XXXXXX) || exit 2

# capsh runs /bin/bash unless told: the guest has busybox sh only.
no_ptrace() { capsh --shell=/bin/sh --drop=cap_sys_ptrace -- -c "$1"; }

# The target: not a descendant of any vmatrace below, same caps as the tracer.
capsh --shell=/bin/sh --drop=cap_sys_ptrace -- -c "exec sleep 600" &
target=$!
sleep 1

attach() { # attach SCOPE WITH_PTRACE: vmatrace -p target for 20 s; stderr in $out/err
	echo "$1" > $scope_file || fail "cannot set ptrace_scope $1"
	cmd="timeout -s INT 20 $vmatrace trace --faults=off -p $target"
	if [ "$2" = ptrace ]; then
		sh -c "$cmd" > $out/out 2> $out/err
	else
		no_ptrace "$cmd" > $out/out 2> $out/err
	fi
	echo "scope $1 $2: exit $?"
	cat $out/err
}

attach 0 no
grep -q "not allowed" $out/err && fail "scope 0: refused"
grep -q "pid $target" $out/err || fail "scope 0: no banner"

attach 1 no
grep -q "not allowed to trace pid $target: it belongs to you (uid 0), but kernel.yama.ptrace_scope is 1: only vmatrace's own descendants, or processes that name it with prctl(PR_SET_PTRACER)" $out/err ||
	fail "scope 1: no refusal naming Yama's rule"
[ "$(wc -l < $out/err)" -eq 1 ] || fail "scope 1: not one line"

# Scope 1, vmatrace's own descendants: the command's child is followed.
echo 1 > $scope_file
no_ptrace "$vmatrace trace --faults=off -- sh -c 'sh -c \"exec true\"; true'" > $out/out 2> $out/err
echo "scope 1, descendants: exit $?"
cat $out/err
grep -q "not tracing\|stopped following\|not allowed" $out/err && fail "scope 1: a descendant was refused"
grep -q " true " $out/out || fail "scope 1: the descendant's events are missing"

attach 2 no
grep -q "not allowed to trace pid $target: it belongs to you (uid 0), but kernel.yama.ptrace_scope is 2: only a tracer holding CAP_SYS_PTRACE may trace" $out/err ||
	fail "scope 2: no refusal naming Yama's rule"

attach 2 ptrace
grep -q "not allowed" $out/err && fail "scope 2 with CAP_SYS_PTRACE: refused"
grep -q "pid $target" $out/err || fail "scope 2 with CAP_SYS_PTRACE: no banner"

echo 1 > $scope_file
kill $target
rm -rf "$out"
[ $failed -eq 0 ] && echo "PASS"
exit $failed
