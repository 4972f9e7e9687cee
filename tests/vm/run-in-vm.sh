#!/usr/bin/env bash
# run-in-vm.sh [options] -- COMMAND [ARGS...]
#
# Runs COMMAND inside a throwaway qemu (TCG) VM booted from Debian's 6.1 kernel
# and an initramfs built from busybox-static plus the requested host files
# (copied to the same absolute paths, with the shared libraries ldd lists for
# every ELF file). Streams the guest serial console to stdout and exits with
# COMMAND's exit status. Exits non-zero with a clear message when the guest
# never reports a status (kernel panic, init failure, timeout, qemu failure).
#
# Options:
#   --file PATH      copy PATH (file or directory) into the guest at PATH;
#                    repeatable. An absolute COMMAND is added automatically.
#   --env K=V        export K=V for COMMAND; repeatable.
#   --cwd DIR        working directory of COMMAND in the guest (default /).
#   --timeout SECS   kill qemu and fail after SECS seconds (default 600).
#   --mem MB         guest memory (default 2048).
#   --smp N          guest CPUs (default 1; see README for why).
#   --kernel FILE    vmlinuz (or ELF vmlinux) to boot (default:
#                    $VMATRACE_VM_KERNEL, else the output of fetch-kernel.sh).
#   --append ARGS    extra kernel command-line arguments.
#   --keep-initrd F  also save the generated initramfs to F (debugging).
#   -h, --help       show this help.
#
# Environment: VMATRACE_VM_CACHE (kernel cache dir, see fetch-kernel.sh),
# VMATRACE_VM_KERNEL (as --kernel), VMATRACE_VM_QEMU (qemu binary, default
# qemu-system-x86_64).
#
# Exit status: COMMAND's status; 2 for a usage or host-side error (missing
# file, library or tool); 125 if the guest never reported a status.
set -euo pipefail

prog=run-in-vm.sh
die() { echo "$prog: error: $*" >&2; exit 2; }
log() { echo "$prog: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

files=()
envs=()
cwd=/
timeout_s=600
mem=2048
smp=1
kernel=${VMATRACE_VM_KERNEL:-}
append_extra=
keep_initrd=
while [[ $# -gt 0 ]]; do
  case $1 in
    --file) [[ $# -ge 2 ]] || die "--file needs a path"; files+=("$2"); shift 2 ;;
    --env) [[ $# -ge 2 ]] || die "--env needs K=V"; envs+=("$2"); shift 2 ;;
    --cwd) [[ $# -ge 2 ]] || die "--cwd needs a directory"; cwd=$2; shift 2 ;;
    --timeout) [[ $# -ge 2 ]] || die "--timeout needs seconds"; timeout_s=$2; shift 2 ;;
    --mem) [[ $# -ge 2 ]] || die "--mem needs megabytes"; mem=$2; shift 2 ;;
    --smp) [[ $# -ge 2 ]] || die "--smp needs a CPU count"; smp=$2; shift 2 ;;
    --kernel) [[ $# -ge 2 ]] || die "--kernel needs a vmlinuz path"; kernel=$2; shift 2 ;;
    --append) [[ $# -ge 2 ]] || die "--append needs arguments"; append_extra=$2; shift 2 ;;
    --keep-initrd) [[ $# -ge 2 ]] || die "--keep-initrd needs a path"; keep_initrd=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (the command goes after --; see --help)" ;;
  esac
done
[[ $# -ge 1 ]] || die "no command given (usage: $prog [options] -- COMMAND [ARGS...])"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer, got '$timeout_s'"
[[ $mem =~ ^[1-9][0-9]*$ ]] || die "--mem must be a positive integer, got '$mem'"
[[ $smp =~ ^[1-9][0-9]*$ ]] || die "--smp must be a positive integer, got '$smp'"
[[ $cwd == /* ]] || die "--cwd must be an absolute path, got '$cwd'"
for kv in "${envs[@]+"${envs[@]}"}"; do
  [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env expects NAME=VALUE, got '$kv'"
done

qemu=${VMATRACE_VM_QEMU:-qemu-system-x86_64}
for tool in "$qemu" cpio ldd timeout mkfifo od; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (apt-get install qemu-system-x86 cpio)"
done
busybox=
for b in /bin/busybox /usr/bin/busybox; do
  [[ -x $b ]] && { busybox=$b; break; }
done
[[ -n $busybox ]] || die "busybox not found (apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; install busybox-static"
fi

if [[ -z $kernel ]]; then
  kernel=$("$script_dir/fetch-kernel.sh") || die "fetch-kernel.sh failed"
fi
[[ -f $kernel ]] || die "kernel '$kernel' not found"
kdir=$(dirname "$kernel")
kver=$(basename "$kernel"); kver=${kver#vmlinuz-}; kver=${kver#vmlinux-}
# fetch-kernel.sh leaves the ELF vmlinux next to vmlinuz: qemu boots it via
# PVH without the in-guest xz decompression (~6 s less under TCG).
boot_image=$kernel
if [[ $(basename "$kernel") == vmlinuz-* && -s $kdir/vmlinux-$kver ]]; then
  boot_image=$kdir/vmlinux-$kver
fi

# ---------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmatrace-vm.XXXXXX")
qpid=
# shellcheck disable=SC2317 # invoked by trap
cleanup() {
  # qpid is timeout(1), which passes TERM on to qemu (a KILL would orphan it).
  if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'log "interrupted; stopping qemu"; exit 130' INT
trap 'log "terminated; stopping qemu"; exit 143' TERM
root=$tmp/root
mkdir "$root"

t_start=$EPOCHREALTIME
declare -A added=()   # host paths already placed in the guest
declare -A dirs=()    # directories already created in the guest

# Create directory $1 in the guest, mirroring host symlinks along its path
# (e.g. /lib -> usr/lib on merged-/usr systems), without copying contents.
ensure_dir() {
  local d=$1 t phys
  [[ $d == / || -n ${dirs[$d]:-} ]] && return 0
  dirs[$d]=1
  ensure_dir "$(dirname "$d")"
  if [[ -L $d ]]; then
    t=$(readlink "$d")
    [[ -e $root$d || -L $root$d ]] || ln -s "$t" "$root$d"
    if [[ $t == /* ]]; then
      ensure_dir "$(realpath -m -s "$t")"
    else
      phys=$(cd "$(dirname "$d")" && pwd -P)
      ensure_dir "$(realpath -m -s "$phys/$t")"
    fi
  elif [[ -d $d ]]; then
    [[ -d $root$d ]] || mkdir "$root$d"
  else
    mkdir -p "$root$d"
  fi
}

is_elf() {
  [[ $(od -An -N4 -tx1 "$1" 2>/dev/null | tr -d ' \n') == 7f454c46 ]]
}

# Add the shared libraries (and loader) ldd lists for ELF file $1.
add_deps() {
  local f=$1 out line lib
  # Static executables, BPF objects etc.: ldd fails, nothing to add.
  out=$(ldd "$f" 2>/dev/null) || return 0
  while IFS= read -r line; do
    if [[ $line == *"=> not found"* ]]; then
      die "$f: missing shared library on the host: ${line%%=>*}"
    fi
    lib=
    if [[ $line =~ =\>\ (/[^ ]+) ]]; then
      lib=${BASH_REMATCH[1]}
    elif [[ $line =~ ^[[:space:]]*(/[^ ]+)\ \( ]]; then
      lib=${BASH_REMATCH[1]}
    fi
    [[ -n $lib ]] && add_path "$lib"
  done <<<"$out"
  return 0
}

# For a '#!' script, add its interpreter unless busybox provides it.
add_interpreter() {
  local first interp
  IFS= read -r first <"$1" 2>/dev/null || true
  [[ $first == '#!'* ]] || return 0
  read -r interp _ <<<"${first#'#!'}"
  case $interp in
    /bin/sh|/usr/bin/env|/bin/busybox|/usr/bin/busybox|'') return 0 ;;
    /*) [[ -e $interp ]] && add_path "$interp" ;;
  esac
  return 0
}

# Copy host path $1 (absolute) into the guest at the same path.
add_path() {
  local p=$1 t phys f
  [[ $p == /* ]] || p=$(realpath -m -s "$PWD/$p")
  [[ -n ${added[$p]:-} ]] && return 0
  added[$p]=1
  [[ -e $p || -L $p ]] || die "file '$p' does not exist on the host"
  ensure_dir "$(dirname "$p")"
  if [[ -L $p ]]; then
    t=$(readlink "$p")
    rm -rf "${root:?}$p"
    ln -s "$t" "$root$p"
    if [[ $t == /* ]]; then
      add_path "$(realpath -m -s "$t")"
    else
      phys=$(cd "$(dirname "$p")" && pwd -P)
      add_path "$(realpath -m -s "$phys/$t")"
    fi
  elif [[ -d $p ]]; then
    dirs[$p]=1
    mkdir -p "$root$p"
    cp -a "$p/." "$root$p/" || die "cannot copy directory $p"
    while IFS= read -r -d '' f; do
      is_elf "$f" && add_deps "$f"
    done < <(find "$p" -type f -print0)
  else
    cp -a "$p" "$root$p" || die "cannot copy $p"
    if is_elf "$p"; then
      add_deps "$p"
    else
      add_interpreter "$p"
    fi
  fi
  return 0
}

add_path "$busybox"
for f in "${files[@]+"${files[@]}"}"; do
  add_path "$f"
done
if [[ $1 == /* ]]; then
  add_path "$1"
fi

# The kernel config next to vmlinuz goes to the guest's /boot
# (libbpf reads /boot/config-$(uname -r); 6.1 Debian has no /proc/config.gz).
mkdir -p "$root/boot"
if [[ -f $kdir/config-$kver && ! -e $root/boot/config-$kver ]]; then
  cp "$kdir/config-$kver" "$root/boot/config-$kver"
fi

# Skeleton.
for d in /bin /sbin /usr/bin /usr/sbin /etc /proc /sys /dev /tmp /run /root; do
  ensure_dir "$d"
done
[[ -e $root/etc/passwd ]] || echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
[[ -e $root/etc/group ]] || echo 'root:x:0:' >"$root/etc/group"
# The kernel opens /dev/console for init before devtmpfs is mounted.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
marker="VMATRACE_VM_EXIT"
{
  printf '#!%s sh\n' "$busybox"
  printf 'BB=%q\n' "$busybox"
  cat <<'EOF'
$BB mkdir -p /bin /sbin /usr/bin /usr/sbin
$BB --install -s
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
fail() { echo "vmatrace-vm: init: $*"; exec </dev/null >/dev/null 2>&1; poweroff -f; }
mnt() { mkdir -p "$4" && mount -t "$1" "$2" "$4" -o "$3" || fail "mount -t $1 $4 failed"; }
mnt proc proc nosuid,nodev,noexec /proc
mnt sysfs sysfs nosuid,nodev,noexec /sys
mnt devtmpfs devtmpfs mode=0755 /dev
exec </dev/console >/dev/console 2>&1
mnt devpts devpts gid=5,mode=620 /dev/pts
mnt tmpfs tmpfs nosuid,nodev /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# /run, /tmp: fresh tmpfs unless test files were copied under them.
if [ -z "$(ls -A /run 2>/dev/null)" ]; then mnt tmpfs tmpfs nosuid,nodev,mode=0755 /run; fi
if [ -z "$(ls -A /tmp 2>/dev/null)" ]; then mnt tmpfs tmpfs nosuid,nodev,mode=1777 /tmp; fi
mnt tracefs tracefs defaults /sys/kernel/tracing
mnt debugfs debugfs defaults /sys/kernel/debug
mnt bpf bpf mode=0700 /sys/fs/bpf
mnt cgroup2 cgroup2 nsdelegate /sys/fs/cgroup
ulimit -l unlimited || fail "ulimit -l unlimited failed"
[ -e /sys/kernel/btf/vmlinux ] || echo "vmatrace-vm: warning: no /sys/kernel/btf/vmlinux"
EOF
  for kv in "${envs[@]+"${envs[@]}"}"; do
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
  done
  printf 'cd %q || fail %q\n' "$cwd" "cannot cd to $cwd"
  printf 'echo %q\n' "vmatrace-vm: running: $*"
  printf '%q ' "$@"
  printf '</dev/null\n'
  cat <<EOF
rc=\$?
echo "$marker=\$rc ($nonce)"
# Closing the last descriptor of the console waits until the UART has sent
# everything, so the marker is not lost at power-off.
exec </dev/null >/dev/null 2>&1
poweroff -f
EOF
} >"$root/init"
chmod 755 "$root/init"

initrd=$tmp/initrd.cpio
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
  cpio --quiet -o -0 -H newc -R 0:0 >"$initrd") || die "cpio failed"
if [[ -n $keep_initrd ]]; then
  cp "$initrd" "$keep_initrd" || die "cannot write $keep_initrd"
fi
t_built=$EPOCHREALTIME
initrd_mb=$(( $(stat -c %s "$initrd") / 1048576 ))

elapsed() { # ms between two $EPOCHREALTIME values -> "S.s"
  local a=${1/./} b=${2/./}
  local ms=$(( (10#$b - 10#$a) / 1000 ))
  printf '%d.%01d' $((ms / 1000)) $(((ms % 1000) / 100))
}
log "initramfs ${initrd_mb} MB (${#added[@]} host paths) built in $(elapsed "$t_start" "$t_built") s; booting $(basename "$boot_image")"

# ---------------------------------------------------------------------------
# -nodefaults/-display none + -serial stdio is -nographic without the monitor
# multiplexer, so nothing in the stream is interpreted as a qemu command.
fifo=$tmp/console
mkfifo "$fifo"
timeout -k 5 "$timeout_s" "$qemu" \
  -nodefaults -display none -no-reboot \
  -accel tcg -cpu max -smp "$smp" -m "$mem" \
  -kernel "$boot_image" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 quiet ${append_extra}" \
  -serial stdio </dev/null >"$fifo" 2>&1 &
qpid=$!

rc=
while IFS= read -r line || [[ -n $line ]]; do
  line=${line%$'\r'}
  if [[ $line =~ $marker=([0-9]+)\ \($nonce\) ]]; then
    rc=${BASH_REMATCH[1]}
    # Output without a final newline ends up in front of the marker.
    line=${line%%"$marker="*}
    [[ -n $line ]] && printf '%s\n' "$line"
    continue
  fi
  [[ $line == *"] reboot: Power down" ]] && continue
  printf '%s\n' "$line"
done <"$fifo"

qrc=0
wait "$qpid" || qrc=$?
qpid=
t_done=$EPOCHREALTIME
took=$(elapsed "$t_built" "$t_done")

if [[ -n $rc ]]; then
  log "guest command exited with status $rc (VM ran $took s, total $(elapsed "$t_start" "$t_done") s)"
  exit "$rc"
fi
if [[ $qrc -eq 124 || $qrc -eq 137 ]]; then
  echo "$prog: error: timed out after ${timeout_s} s; qemu killed, guest never reported an exit status" >&2
elif [[ $qrc -ne 0 ]]; then
  echo "$prog: error: qemu failed (exit status $qrc) after $took s without a guest exit status" >&2
else
  echo "$prog: error: VM stopped after $took s without reporting an exit status (kernel panic or init failure; see console output above)" >&2
fi
exit 125
