#!/bin/sh
# Checks the attach planner and every syscalls flavour against the kernel it
# runs on (the 6.1 guest in vm.attach_modes, this machine in
# attach_modes.host):
#  1. `vmatrace features --json` plans BEST for the syscalls family;
#  2. VMATRACE_ATTACH=syscalls=M is honoured by `vmatrace features` for each M;
#  3. `vmatrace trace --json --attach syscalls=M -- WORKLOAD` exits 0, says
#     it attached with M and emits mmap events (and one of each other traced
#     syscall the workload makes), and the syscall events are the
#     same, in the same order, as with the first mode (addresses, times, ids
#     and inode numbers aside: ASLR and tmpfs differ between runs).
#
# usage: attach_modes.sh VMATRACE WORKLOAD BEST MODE...
# Busybox sh compatible: it runs as the guest command.
set -u
if [ $# -lt 4 ]; then
	echo "usage: $0 VMATRACE WORKLOAD BEST MODE..." >&2
	exit 2
fi
vmatrace=$1 workload=$2 best=$3
shift 3
out=$(mktemp -d /tmp/vmatrace-modes.XXXXXX) || exit 2
failed=0
fail() {
	echo "FAIL: $*"
	failed=1
}

syscalls_mode() { # the syscalls mode in a features --json line
	sed -n 's/.*"syscalls":{"mode":"\([a-z_]*\)".*/\1/p'
}

features=$("$vmatrace" features --json) || fail "vmatrace features --json exited $?"
echo "features: $features"
got=$(echo "$features" | syscalls_mode)
[ "$got" = "$best" ] || fail "syscalls mode is '$got', expected '$best'"

# Fields that legitimately differ between two runs of the same workload.
normalize() {
	sed -e 's/"ts":[0-9]*,"pid":[0-9]*,"tid":[0-9]*,//' \
	    -e 's/,"duration_ns":[0-9]*//' \
	    -e 's/"inode":[0-9]*/"inode":N/g' \
	    -e 's/"shmid":[0-9]*/"shmid":N/' \
	    -e 's/0x[0-9a-f]*/0xX/g' \
	    -e 's/vmatrace-demo-[A-Za-z0-9]*/vmatrace-demo-X/g'
}

ref=
for mode in "$@"; do
	got=$(VMATRACE_ATTACH=syscalls=$mode "$vmatrace" features --json | syscalls_mode)
	[ "$got" = "$mode" ] || fail "VMATRACE_ATTACH=syscalls=$mode: features plans '$got'"

	start=$(date +%s)
	"$vmatrace" trace --json --attach "syscalls=$mode" -- "$workload" >"$out/$mode.json" 2>"$out/$mode.err"
	rc=$?
	secs=$(($(date +%s) - start))
	sed -n 's/^vmatrace: tracing .*attach: /attach: /p' "$out/$mode.err"
	[ $rc -eq 0 ] || { fail "$mode: vmatrace trace exited $rc"; cat "$out/$mode.err"; continue; }
	grep -q "attach: syscalls=$mode " "$out/$mode.err" || fail "$mode: not attached with $mode"
	grep -E '"event":"(mmap|munmap|brk|mremap|mprotect|madvise|mlock|munlock|mlock2|mlockall|munlockall|pkey_mprotect|shmat|shmdt)"' \
		"$out/$mode.json" | normalize >"$out/$mode.sys"
	n=$(grep -c . "$out/$mode.sys")
	nmmap=$(grep -c '"event":"mmap"' "$out/$mode.sys")
	echo "$mode: $n syscall events ($nmmap mmap) in ${secs} s"
	[ "$nmmap" -gt 0 ] || fail "$mode: no mmap events"
	# Every syscall the workload makes is traced, unless `features` says the
	# kernel lacks it (then in no mode: the events still agree).
	for sys in mlock munlock mlock2 mlockall munlockall pkey_mprotect shmat shmdt; do
		grep -q "\"event\":\"$sys\"" "$out/$mode.sys" ||
			echo "$features" | grep -q "\"absent\":\[[^]]*\"$sys\"" ||
			fail "$mode: no $sys events"
	done
	if [ -z "$ref" ]; then
		ref=$mode
	elif ! diff "$out/$ref.sys" "$out/$mode.sys" >"$out/$mode.diff"; then
		fail "$mode: syscall events differ from $ref's"
		head -20 "$out/$mode.diff"
	fi
done
rm -rf "$out"
[ $failed -eq 0 ] && echo "attach_modes: OK"
exit $failed
