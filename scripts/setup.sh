#!/usr/bin/env bash
# Installs everything vmatrace needs to build and test on Debian 12, then
# configures and builds it in ./build. Idempotent; needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake g++ make pkg-config clang llvm clang-format
  libbpf-dev bpftool libelf-dev zlib1g-dev libzstd-dev libdw-dev
  libcli11-dev libgtest-dev libbenchmark-dev
  libncurses-dev                        # vmatrace top's full-screen view
  tmux                                  # drives top in its e2e test (tests/e2e/top_e2e_test.cpp)
  python3 strace libcap2-bin
  libc6-dbg                             # separate debug info: libc frames with source lines (tests/e2e/containers_e2e_test.cpp)
  debuginfod xz-utils binutils          # a local debuginfod server; MiniDebugInfo built (tests/e2e/symbols_e2e_test.cpp)
  libjemalloc2                          # malloc attribution through jemalloc (tests/e2e/details_e2e_test.cpp)
  stress-ng                             # overload e2e tests (tests/e2e/overload_e2e_test.cpp)
  redis-server redis-tools openjdk-17-jdk-headless  # scripts/soak.sh
  libjs-d3                              # the HTML report bundles d3 (report --html)
  chromium                              # its e2e test drives the page headless (tests/html)
  qemu-system-x86 busybox-static cpio   # the second kernel (tests/vm)
  scdoc libprotobuf-dev protobuf-compiler   # the man page; the pprof/Perfetto encoders
  golang-go golang-github-google-pprof-dev  # pprof built from source, for export.Pprof
  dpkg-dev file man-db bash-completion      # cpack -G DEB (dpkg-shlibdeps) and its test
  # The real programs of the fidelity suite (tests/real: docs/fidelity.md; golang-go above).
  stress-ng redis-server redis-tools openjdk-17-jdk-headless
)
# Node.js and npm for that test: Debian's, unless the machine already has
# them (a NodeSource nodejs bundles npm and conflicts with Debian's npm).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages (${missing[*]}): run as root (sudo $0)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_type=${VMATRACE_BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -DCMAKE_BUILD_TYPE="$build_type" ${VMATRACE_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
