#!/usr/bin/env bash
# fetch-kernel.sh [CACHE_DIR]
#
# Ensures a Debian 6.1 kernel (linux-image-6.1.0-N-amd64-unsigned) is unpacked
# in CACHE_DIR and prints the absolute path of its vmlinuz on stdout.
#
# CACHE_DIR defaults to ${VMATRACE_VM_CACHE:-$HOME/.cache/vmatrace-vm}.
# VMATRACE_VM_KERNEL_PKG=<package name> pins a package instead of the newest.
#
# Only boot/ (vmlinuz, config, System.map) is kept; modules are dropped, and
# the ELF vmlinux-VER inside vmlinuz is extracted next to it (faster boot).
# Cached: if the chosen package (or, when apt knows no such package, any
# previously unpacked one) is already in CACHE_DIR, nothing is downloaded.
# Safe to run concurrently (flock on CACHE_DIR/.lock).
set -euo pipefail

die() { echo "fetch-kernel.sh: error: $*" >&2; exit 1; }
log() { echo "fetch-kernel.sh: $*" >&2; }

[[ $# -le 1 ]] || die "usage: fetch-kernel.sh [CACHE_DIR]"
cache_dir=${1:-${VMATRACE_VM_CACHE:-${HOME:?HOME is not set}/.cache/vmatrace-vm}}

for tool in apt-cache apt-get dpkg-deb flock; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (this script needs a Debian/Ubuntu host)"
done

mkdir -p "$cache_dir" || die "cannot create cache dir $cache_dir"
cache_dir=$(cd "$cache_dir" && pwd -P)

# Serialise concurrent runs (ctest -j) on the same cache.
exec 9>"$cache_dir/.lock"
flock -w 900 9 || die "timed out waiting for lock $cache_dir/.lock"

pkg_regex='^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$'

# "NAME VERSION" of the newest matching package with an installable
# candidate (one apt-cache policy call: each call costs ~0.6 s).
newest_pkg() {
  local names
  names=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null | grep -E "$pkg_regex" || true)
  [[ -n "$names" ]] || return 0
  # shellcheck disable=SC2086 # one word per package name
  apt-cache policy $names 2>/dev/null |
    awk '/^[^ ]/ {name=$1; sub(/:$/, "", name)}
         /^[[:space:]]*Candidate:/ && $2 != "(none)" {print name, $2}' |
    sort -V -r -k1,1 | head -n 1
}

# vmlinuz inside an unpacked package dir (empty if incomplete).
vmlinuz_in() {
  local dir=$1 f
  [[ -f "$dir/.complete" ]] || return 0
  for f in "$dir"/boot/vmlinuz-*; do
    [[ -f "$f" ]] && { echo "$f"; return 0; }
  done
}

# Newest already-unpacked kernel in the cache (for offline use).
cached_any() {
  local d v
  while read -r d; do
    v=$(vmlinuz_in "$d")
    [[ -n "$v" ]] && { echo "$v"; return 0; }
  done < <(find "$cache_dir" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-6.1.0-*' | sort -V -r)
}

# Next to vmlinuz-VER, unpack the ELF vmlinux-VER it wraps (xz payload).
# qemu boots that directly through its PVH entry point, skipping the
# in-guest decompression, which costs ~6 s under TCG. Best effort: without
# it run-in-vm.sh boots vmlinuz.
ensure_vmlinux() {
  local vmlinuz=$1 elf off part
  elf="$(dirname "$vmlinuz")/vmlinux-$(basename "$vmlinuz" | sed 's/^vmlinuz-//')"
  [[ -s "$elf" ]] && return 0
  command -v xz >/dev/null 2>&1 || { log "xz not found; booting vmlinuz (slower)"; return 0; }
  part="$elf.part.$$"
  # The payload may not start at the first match of the xz magic.
  while read -r off; do
    tail -c "+$((off + 1))" "$vmlinuz" | xz -dc >"$part" 2>/dev/null || true
    if [[ $(od -An -N4 -tx1 "$part" 2>/dev/null | tr -d ' \n') == 7f454c46 ]]; then
      mv "$part" "$elf"
      return 0
    fi
  done < <(LC_ALL=C grep -abo $'\xfd7zXZ' "$vmlinuz" | cut -d: -f1)
  rm -f "$part"
  log "could not extract an ELF vmlinux from $vmlinuz; booting vmlinuz (slower)"
}

# Print the vmlinuz path after making sure vmlinux is extracted next to it.
emit() {
  ensure_vmlinux "$1"
  echo "$1"
  exit 0
}

pkg=${VMATRACE_VM_KERNEL_PKG:-}
version=
if [[ -z "$pkg" ]]; then
  read -r pkg version < <(newest_pkg) || true
  if [[ -z "$pkg" ]]; then
    # Nothing in the package lists: prefer an existing cache over the network.
    v=$(cached_any)
    [[ -n "$v" ]] && emit "$v"
    log "no linux-image-6.1.0-*-amd64-unsigned in apt lists; running apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    read -r pkg version < <(newest_pkg) || true
    [[ -n "$pkg" ]] || die "no package matching $pkg_regex in apt lists (is a Debian 12 'bookworm' source configured?)"
  fi
else
  version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/^[[:space:]]*Candidate:/ {print $2; exit}')
fi

# Cache key: package name + candidate version.
if [[ -z "$version" || "$version" == "(none)" ]]; then
  # Apt does not know the pinned name (stale lists?): accept any cached copy.
  for d in "$cache_dir/${pkg}"_*; do
    v=$(vmlinuz_in "$d")
    [[ -n "$v" ]] && emit "$v"
  done
  die "package $pkg has no installable candidate in apt lists (try: apt-get update)"
fi
dest="$cache_dir/${pkg}_${version//:/%3a}"

v=$(vmlinuz_in "$dest")
[[ -n "$v" ]] && emit "$v"

log "downloading $pkg=$version into $cache_dir"
tmp=$(mktemp -d "$cache_dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$version" >&2) || die "apt-get download $pkg=$version failed"
deb=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
[[ -n "$deb" ]] || die "apt-get download produced no .deb for $pkg"
mkdir "$tmp/unpack"
dpkg-deb -x "$deb" "$tmp/unpack" || die "dpkg-deb -x $deb failed"
compgen -G "$tmp/unpack/boot/vmlinuz-*" >/dev/null || die "$pkg contains no /boot/vmlinuz-*"
# Every feature the VM tests need is built in; the modules are ~400 MB.
rm -rf "$tmp/unpack/lib/modules" "$tmp/unpack/usr/lib/modules"
touch "$tmp/unpack/.complete"
rm -rf "$dest"
mv "$tmp/unpack" "$dest"

v=$(vmlinuz_in "$dest")
[[ -n "$v" ]] || die "unpacked $pkg but found no vmlinuz in $dest"
log "unpacked $pkg=$version"
emit "$v"
