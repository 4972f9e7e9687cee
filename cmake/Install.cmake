# Installing vmatrace as a system tool (docs/install.md): `vmatrace --version`'s
# build facts, the man page, bash completion, `cmake --install` and
# `cpack -G DEB`. Included from the top-level CMakeLists.txt after the
# vmatrace target and the BPF skeleton exist.
include(GNUInstallDirs)

# ---- `vmatrace --version`: git commit and the BPF object's hash ------------
# Regenerated on every build (the commit moves without a reconfigure); the
# header is rewritten only when it changes.
set(VMATRACE_VERSION_INFO ${CMAKE_BINARY_DIR}/generated/version_info.h)
add_custom_target(vmatrace_version_info
  COMMAND ${CMAKE_COMMAND} -DOUT=${VMATRACE_VERSION_INFO} -DSOURCE_DIR=${CMAKE_SOURCE_DIR}
    -DBPF_OBJECT=${CMAKE_BINARY_DIR}/bpf/vmatrace_bpf.bpf.o -P ${CMAKE_SOURCE_DIR}/cmake/VersionInfo.cmake
  BYPRODUCTS ${VMATRACE_VERSION_INFO}
  COMMENT "vmatrace --version: git commit and BPF object hash")
add_dependencies(vmatrace_version_info vmatrace_skel_gen)
add_dependencies(vmatrace_cli vmatrace_version_info)
target_include_directories(vmatrace_cli PRIVATE ${CMAKE_BINARY_DIR}/generated)

# ---- the man page: vmatrace(8), written in scdoc ----------------------------
# scdoc (Debian package scdoc, installed by scripts/setup.sh) is one small C
# program with no dependencies, its source reads like the page it makes, and
# Debian packages build it as easily as plain roff.
find_program(VMATRACE_SCDOC scdoc)
if(NOT VMATRACE_SCDOC)
  message(FATAL_ERROR "scdoc not found: install it (apt-get install scdoc, or scripts/setup.sh); it builds the man page")
endif()
set(VMATRACE_MAN_SOURCE ${CMAKE_SOURCE_DIR}/docs/man/vmatrace.8.scd)
set(VMATRACE_MAN ${CMAKE_BINARY_DIR}/man/vmatrace.8)
add_custom_command(OUTPUT ${VMATRACE_MAN} ${VMATRACE_MAN}.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
  COMMAND sh -c "${VMATRACE_SCDOC} < ${VMATRACE_MAN_SOURCE} > ${VMATRACE_MAN}"
  # -n: no name or time stamp in the archive, so the package is reproducible.
  COMMAND sh -c "gzip -9n < ${VMATRACE_MAN} > ${VMATRACE_MAN}.gz"
  DEPENDS ${VMATRACE_MAN_SOURCE}
  COMMENT "man page vmatrace(8)"
  VERBATIM)
add_custom_target(vmatrace_man ALL DEPENDS ${VMATRACE_MAN} ${VMATRACE_MAN}.gz)

# ---- install ----------------------------------------------------------------
# `cmake --install` and cpack install what is built (scripts/setup.sh builds
# everything first) instead of building every test target on the way.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
# sbin: every command but replay, report and info needs root (or CAP_BPF and
# CAP_PERFMON) to load BPF, as for perf's and bpftrace's peers in section 8.
install(TARGETS vmatrace RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${VMATRACE_MAN}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/bash-completion/vmatrace
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
  FILES_MATCHING PATTERN "*.md" PATTERN "*.png")

# ---- the Debian package: cpack -G DEB (in the build folder) -----------------
set(CPACK_PACKAGE_NAME vmatrace)
set(CPACK_PACKAGE_VENDOR "vmatrace")
set(CPACK_PACKAGE_CONTACT "vmatrace maintainers <vmatrace@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "trace a Linux process's address space with eBPF")
set(CPACK_PACKAGE_DESCRIPTION
  "vmatrace traces every mmap, munmap, brk, mremap, mprotect and madvise call of a process with the VMAs the kernel built, page faults and the malloc call sites that made memory grow; it rebuilds /proc/PID/maps from events, records and replays, and exports to Perfetto, pprof and folded stacks.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the binary's own NEEDED libraries (dpkg-shlibdeps, from
# dpkg-dev): libbpf1, libelf1, libdw1, libzstd1, libncursesw6, libtinfo6, libstdc++6, libc6, ...
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
include(CPack)

# ---- tests of the above -------------------------------------------------------
find_package(Python3 COMPONENTS Interpreter REQUIRED)
# The man page and the completion list exactly the options `--help` does.
add_test(NAME unit.Man.MatchesHelp COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/check-man.py
  $<TARGET_FILE:vmatrace> ${VMATRACE_MAN_SOURCE} ${CMAKE_SOURCE_DIR}/packaging/bash-completion/vmatrace)

# ---- the real readers of the export formats, for their tests ----------------
# pprof, built from Debian's golang-github-google-pprof-dev source with
# Debian's golang-go, offline (GOPATH mode: no module download), into this
# build tree (scripts/setup.sh installs both packages).
find_program(VMATRACE_GO go)
set(VMATRACE_PPROF_SRC /usr/share/gocode/src/github.com/google/pprof)
set(VMATRACE_PPROF ${CMAKE_BINARY_DIR}/tools/pprof)
if(VMATRACE_GO AND EXISTS ${VMATRACE_PPROF_SRC}/pprof.go)
  add_custom_command(OUTPUT ${VMATRACE_PPROF}
    COMMAND ${CMAKE_COMMAND} -E env GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=${CMAKE_BINARY_DIR}/tools/go-cache
      GOFLAGS= CGO_ENABLED=0 ${VMATRACE_GO} build -o ${VMATRACE_PPROF} github.com/google/pprof
    COMMENT "pprof from Debian's source (golang-github-google-pprof-dev), for the --pprof test"
    VERBATIM)
  add_custom_target(vmatrace_pprof_tool ALL DEPENDS ${VMATRACE_PPROF})
else()
  message(WARNING "golang-go or golang-github-google-pprof-dev missing (scripts/setup.sh): export.Pprof will fail")
endif()
# Records the malloc workload, then reads `report --pprof` with pprof and
# compares it with `report --malloc`, `replay --json` and `report --faults`.
add_test(NAME export.Pprof COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/export/check_pprof.py
  $<TARGET_FILE:vmatrace> ${CMAKE_BINARY_DIR}/workloads ${VMATRACE_PPROF} ${CMAKE_BINARY_DIR}/export-tests/pprof)
set_tests_properties(export.Pprof PROPERTIES LABELS export RUN_SERIAL TRUE TIMEOUT 300)

# The package as a user gets it: cpack -G DEB, apt-get install, features, man,
# completion, a trace of ls against strace, apt-get remove (tests/package).
add_test(NAME package.Deb COMMAND ${CMAKE_SOURCE_DIR}/tests/package/deb_test.sh ${CMAKE_BINARY_DIR})
set_tests_properties(package.Deb PROPERTIES LABELS package RUN_SERIAL TRUE TIMEOUT 180)

# Records the checkpoints workload and the storm, then decodes `report
# --perfetto` with protoc against our .proto and compares it with replay.
add_test(NAME export.Perfetto COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/export/check_perfetto.py
  $<TARGET_FILE:vmatrace> ${CMAKE_BINARY_DIR}/workloads ${CMAKE_SOURCE_DIR}/src/report/proto
  ${CMAKE_BINARY_DIR}/export-tests/perfetto)
set_tests_properties(export.Perfetto PROPERTIES LABELS export RUN_SERIAL TRUE TIMEOUT 600)

# Records the malloc workload and has speedscope's own importer (npm, headless
# Chromium) read `report --malloc --folded` and `report --faults --folded`.
add_test(NAME export.Speedscope COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/export/check_speedscope.py
  $<TARGET_FILE:vmatrace> ${CMAKE_BINARY_DIR}/workloads ${CMAKE_SOURCE_DIR}/tests/export/speedscope
  ${CMAKE_BINARY_DIR}/export-tests/speedscope ${CMAKE_BINARY_DIR}/speedscope-modules)
set_tests_properties(export.Speedscope PROPERTIES LABELS export RUN_SERIAL TRUE TIMEOUT 600)
