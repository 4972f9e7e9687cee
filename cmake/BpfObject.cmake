# Compile bpf/*.bpf.c with clang -target bpf, link them with `bpftool gen
# object` (which also drops DWARF) and wrap the skeleton in an INTERFACE
# library whose include directory is SYSTEM (the skeleton embeds one long
# string literal that -Wall would otherwise complain about).
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(VMATRACE_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/vmlinux/x86)

# Debian's multiarch include dirs, for <linux/types.h> and friends.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
  OUTPUT_VARIABLE VMATRACE_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)

function(vmatrace_bpf_skeleton target)
  cmake_parse_arguments(A "" "NAME" "SOURCES" ${ARGN})
  set(outdir ${CMAKE_BINARY_DIR}/bpf)
  file(MAKE_DIRECTORY ${outdir})
  set(objs)
  foreach(src ${A_SOURCES})
    get_filename_component(stem ${src} NAME_WE)
    set(obj ${outdir}/${stem}.bpf.o)
    add_custom_command(OUTPUT ${obj}
      COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall
              -I${VMATRACE_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/bpf
              -idirafter /usr/include/${VMATRACE_MULTIARCH} -idirafter /usr/include
              -MD -MF ${obj}.d -c ${src} -o ${obj}
      DEPENDS ${src}
      DEPFILE ${obj}.d
      COMMENT "BPF ${stem}.bpf.c"
      VERBATIM)
    list(APPEND objs ${obj})
  endforeach()
  set(linked ${outdir}/${A_NAME}.bpf.o)
  set(skel ${outdir}/${A_NAME}.skel.h)
  add_custom_command(OUTPUT ${linked} ${skel}
    COMMAND ${BPFTOOL} gen object ${linked} ${objs}
    COMMAND ${BPFTOOL} gen skeleton ${linked} name ${A_NAME} > ${skel}
    DEPENDS ${objs}
    COMMENT "BPF skeleton ${A_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} SYSTEM INTERFACE ${outdir})
endfunction()
