# One static library per folder of src/, and the include rule that keeps the
# layering: a folder's sources resolve "FOLDER/x.h" only for the folders it
# may use.
#
#   vmatrace_layer(NAME [DEPS folder...] [LIBS target...])
#
# builds vmatrace_NAME from src/NAME/*.cpp, links it PUBLIC to the
# libraries of its DEPS and to LIBS, and gives its sources an include
# directory (build/layers/NAME) holding symbolic links to src/NAME and to
# src/DEP for each DEP, plus include/ (the BPF ABI) for every folder.
# `#include "trace/session.h"` in src/core/ therefore fails to compile.

function(vmatrace_layer_includes target)
  cmake_parse_arguments(L "" "" "DEPS" ${ARGN})
  set(dir ${CMAKE_BINARY_DIR}/layers/${target})
  file(MAKE_DIRECTORY ${dir})
  foreach(folder ${L_DEPS})
    if(NOT EXISTS ${dir}/${folder})
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${folder} ${dir}/${folder} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PRIVATE ${dir} ${CMAKE_SOURCE_DIR}/include)
endfunction()

function(vmatrace_layer name)
  cmake_parse_arguments(L "" "" "DEPS;LIBS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp ${CMAKE_SOURCE_DIR}/src/${name}/*.h)
  if(NOT sources)
    # A folder with no code yet still takes its place in the order.
    set(sources ${CMAKE_BINARY_DIR}/layers/empty.cpp)
    file(WRITE ${sources} "// no sources in this folder yet\n")
  endif()
  add_library(vmatrace_${name} STATIC ${sources})
  set(dep_libs)
  foreach(dep ${L_DEPS})
    list(APPEND dep_libs vmatrace_${dep})
  endforeach()
  target_link_libraries(vmatrace_${name} PUBLIC ${dep_libs} ${L_LIBS})
  vmatrace_layer_includes(vmatrace_${name} DEPS ${name} ${L_DEPS})
endfunction()
