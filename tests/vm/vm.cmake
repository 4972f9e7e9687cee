# Tests that run inside Debian's 6.1 kernel under qemu TCG (label "vm").
#
# Usage (root CMakeLists.txt, after enable_testing()):
#   include(tests/vm/vm.cmake)
#   vmatrace_add_vm_smoke_test()
#   vmatrace_add_vm_test(NAME vm.e2e COMMAND $<TARGET_FILE:vmatrace_e2e_tests>
#                        FILES $<TARGET_FILE:vmatrace> ${CMAKE_BINARY_DIR}/workloads)
#
# vmatrace_add_vm_test(NAME <name> COMMAND <cmd> [<arg>...]
#                      [FILES <path>...] [ENV <K=V>...] [WORKING_DIRECTORY <dir>]
#                      [TIMEOUT <secs>] [MEM <MB>] [SMP <n>] [LABELS <label>...])
#   Adds a ctest test that boots the VM, runs <cmd> <args> there and passes
#   iff it exits 0. FILES (files or directories, generator expressions allowed)
#   are copied into the guest at the same absolute paths, with the shared
#   libraries of every ELF file; an absolute <cmd> is copied automatically.
#   WORKING_DIRECTORY is the guest cwd (default /; it must be among FILES to
#   exist). TIMEOUT (default VMATRACE_VM_TIMEOUT) bounds the VM; the ctest
#   TIMEOUT is 120 s larger so the harness reports the timeout itself.
#   Every VM test requires the fixture test vm.fetch_kernel, which downloads
#   and caches the kernel once (so the download is not charged to a test).
#
# Cache variables: VMATRACE_VM_TESTS (ON), VMATRACE_VM_TIMEOUT (600),
# VMATRACE_VM_MEM (2048), VMATRACE_VM_CACHE (empty: $VMATRACE_VM_CACHE or
# ~/.cache/vmatrace-vm at test time).
include_guard(GLOBAL)

option(VMATRACE_VM_TESTS "Add tests that run in a Debian 6.1 kernel under qemu (label vm)" ON)
set(VMATRACE_VM_TIMEOUT 600 CACHE STRING "Default per-test VM timeout in seconds")
set(VMATRACE_VM_MEM 2048 CACHE STRING "Default VM memory in MB")
set(VMATRACE_VM_CACHE "" CACHE PATH "Kernel cache directory for VM tests (empty: default)")

set(VMATRACE_VM_DIR "${CMAKE_CURRENT_LIST_DIR}" CACHE INTERNAL "tests/vm directory")

if(VMATRACE_VM_TESTS)
  find_program(VMATRACE_VM_QEMU qemu-system-x86_64)
  if(NOT VMATRACE_VM_QEMU)
    message(WARNING "qemu-system-x86_64 not found: the 'vm' tests will fail "
                    "(apt-get install qemu-system-x86 busybox-static cpio, or -DVMATRACE_VM_TESTS=OFF)")
  endif()
endif()

function(_vmatrace_vm_env out)
  set(env "")
  if(VMATRACE_VM_CACHE)
    list(APPEND env "VMATRACE_VM_CACHE=${VMATRACE_VM_CACHE}")
  endif()
  set(${out} "${env}" PARENT_SCOPE)
endfunction()

# The fixture that fetches (or finds cached) the kernel, added once.
function(_vmatrace_vm_fixture)
  get_property(done GLOBAL PROPERTY VMATRACE_VM_FIXTURE_ADDED)
  if(done)
    return()
  endif()
  set_property(GLOBAL PROPERTY VMATRACE_VM_FIXTURE_ADDED TRUE)
  add_test(NAME vm.fetch_kernel COMMAND "${VMATRACE_VM_DIR}/fetch-kernel.sh")
  _vmatrace_vm_env(env)
  set_tests_properties(vm.fetch_kernel PROPERTIES
    FIXTURES_SETUP vmatrace_vm_kernel LABELS vm TIMEOUT 900 RESOURCE_LOCK vmatrace_vm_kernel_cache)
  if(env)
    set_tests_properties(vm.fetch_kernel PROPERTIES ENVIRONMENT "${env}")
  endif()
endfunction()

function(vmatrace_add_vm_test)
  cmake_parse_arguments(PARSE_ARGV 0 VMT ""
    "NAME;WORKING_DIRECTORY;TIMEOUT;MEM;SMP" "COMMAND;FILES;ENV;LABELS")
  if(VMT_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "vmatrace_add_vm_test: unknown arguments: ${VMT_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT VMT_NAME OR NOT VMT_COMMAND)
    message(FATAL_ERROR "vmatrace_add_vm_test: NAME and COMMAND are required")
  endif()
  if(NOT VMATRACE_VM_TESTS)
    return()
  endif()
  if(NOT VMT_TIMEOUT)
    set(VMT_TIMEOUT ${VMATRACE_VM_TIMEOUT})
  endif()
  if(NOT VMT_MEM)
    set(VMT_MEM ${VMATRACE_VM_MEM})
  endif()
  if(NOT VMT_SMP)
    set(VMT_SMP 1)
  endif()

  set(args --timeout ${VMT_TIMEOUT} --mem ${VMT_MEM} --smp ${VMT_SMP})
  foreach(f IN LISTS VMT_FILES)
    list(APPEND args --file "${f}")
  endforeach()
  foreach(kv IN LISTS VMT_ENV)
    list(APPEND args --env "${kv}")
  endforeach()
  if(VMT_WORKING_DIRECTORY)
    list(APPEND args --cwd "${VMT_WORKING_DIRECTORY}")
  endif()

  _vmatrace_vm_fixture()
  add_test(NAME ${VMT_NAME} COMMAND "${VMATRACE_VM_DIR}/run-in-vm.sh" ${args} -- ${VMT_COMMAND})
  math(EXPR ctest_timeout "${VMT_TIMEOUT} + 120")
  _vmatrace_vm_env(env)
  set_tests_properties(${VMT_NAME} PROPERTIES
    LABELS "vm;${VMT_LABELS}"
    TIMEOUT ${ctest_timeout}
    PROCESSORS ${VMT_SMP}
    FIXTURES_REQUIRED vmatrace_vm_kernel)
  if(env)
    set_tests_properties(${VMT_NAME} PROPERTIES ENVIRONMENT "${env}")
  endif()
endfunction()

# Two tests proving the harness itself:
#   vm.smoke        kprobes, tracefs, BTF and (with bpftool) BPF kprobe/tracing
#                   program types work in the guest kernel;
#   vm.exit_status  the guest command's exit status reaches ctest.
function(vmatrace_add_vm_smoke_test)
  if(NOT VMATRACE_VM_TESTS)
    return()
  endif()
  find_program(VMATRACE_VM_BPFTOOL bpftool PATHS /usr/sbin /sbin)
  set(files "")
  if(VMATRACE_VM_BPFTOOL)
    list(APPEND files "${VMATRACE_VM_BPFTOOL}")
  endif()
  vmatrace_add_vm_test(NAME vm.smoke TIMEOUT 300
    COMMAND "${VMATRACE_VM_DIR}/smoke/kprobe_smoke.sh" FILES ${files})
  vmatrace_add_vm_test(NAME vm.exit_status TIMEOUT 300 COMMAND sh -c "exit 3")
  set_tests_properties(vm.exit_status PROPERTIES
    PASS_REGULAR_EXPRESSION "guest command exited with status 3")
endfunction()

# The real programs the e2e suite runs (Layout.Python: python3 with its
# standard library; Layout.CCompilerRun: the gcc driver, cc1, as and the
# headers its test unit includes), as FILES for a VM test, so the guest
# runs them too. Sets ${out} to the list, or to "" (with a warning) when
# this machine lacks one of them: callers then filter those tests out.
function(vmatrace_vm_real_program_files out)
  set(${out} "" PARENT_SCOPE)
  # The paths the tests run (not whatever PATH finds first, e.g. pyenv shims).
  set(_vm_python3 /usr/bin/python3)
  set(_vm_gcc /usr/bin/gcc)
  set(_vm_env /usr/bin/env)
  if(NOT EXISTS ${_vm_python3} OR NOT EXISTS ${_vm_gcc} OR NOT EXISTS ${_vm_env})
    message(WARNING "python3, gcc or env missing: the VM runs skip Layout.Python and Layout.CCompilerRun")
    return()
  endif()
  execute_process(COMMAND ${_vm_python3} -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])"
    OUTPUT_VARIABLE stdlib OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc1)
  execute_process(COMMAND ${_vm_gcc} -print-prog-name=cc1
    OUTPUT_VARIABLE cc1 OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc2)
  execute_process(COMMAND ${_vm_gcc} -print-prog-name=as
    OUTPUT_VARIABLE as OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc3)
  if(NOT IS_ABSOLUTE "${as}")
    find_program(_vm_as ${as})
    set(as "${_vm_as}")
  endif()
  # The headers tests/e2e/layout_e2e_test.cpp's unit includes (keep in step).
  set(unit "${CMAKE_BINARY_DIR}/vm-cc-unit.c")
  file(WRITE "${unit}" "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n")
  execute_process(COMMAND ${_vm_gcc} -O2 -g -M "${unit}"
    OUTPUT_VARIABLE deps RESULT_VARIABLE rc4)
  if(rc1 OR rc2 OR rc3 OR rc4 OR NOT EXISTS "${stdlib}" OR NOT IS_ABSOLUTE "${cc1}" OR NOT as)
    message(WARNING "could not list python3's or gcc's files: the VM runs skip Layout.Python and Layout.CCompilerRun")
    return()
  endif()
  string(REPLACE "\\\n" " " deps "${deps}")
  string(REGEX REPLACE "[ \t\n]+" ";" deps "${deps}")
  set(files "${_vm_python3}" "${stdlib}" "${_vm_gcc}" "${cc1}" "${as}" "${_vm_env}")
  foreach(d IN LISTS deps)
    if(IS_ABSOLUTE "${d}" AND NOT d STREQUAL unit)
      list(APPEND files "${d}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES files)
  set(${out} "${files}" PARENT_SCOPE)
endfunction()
