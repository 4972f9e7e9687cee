# The protobuf messages of the export formats (src/report/proto: our own
# subsets of pprof's profile.proto and Perfetto's trace packets), compiled by
# Debian's protoc into one library that vmatrace_report links. Generated
# code is not ours to keep warning-free: it builds with -w, and its headers
# are SYSTEM includes ("pprof.pb.h").
find_package(Protobuf REQUIRED)
if(NOT Protobuf_PROTOC_EXECUTABLE)
  message(FATAL_ERROR "protoc not found: install protobuf-compiler and libprotobuf-dev (scripts/setup.sh)")
endif()
set(VMATRACE_PROTO_DIR ${CMAKE_SOURCE_DIR}/src/report/proto)
set(VMATRACE_PROTO_OUT ${CMAKE_BINARY_DIR}/generated/proto)
file(MAKE_DIRECTORY ${VMATRACE_PROTO_OUT})
file(GLOB VMATRACE_PROTOS CONFIGURE_DEPENDS ${VMATRACE_PROTO_DIR}/*.proto)
set(generated)
foreach(proto ${VMATRACE_PROTOS})
  get_filename_component(stem ${proto} NAME_WE)
  set(out ${VMATRACE_PROTO_OUT}/${stem}.pb.cc ${VMATRACE_PROTO_OUT}/${stem}.pb.h)
  add_custom_command(OUTPUT ${out}
    COMMAND ${Protobuf_PROTOC_EXECUTABLE} --cpp_out=${VMATRACE_PROTO_OUT} -I ${VMATRACE_PROTO_DIR} ${proto}
    DEPENDS ${proto} ${Protobuf_PROTOC_EXECUTABLE}
    COMMENT "protoc ${stem}.proto"
    VERBATIM)
  list(APPEND generated ${out})
endforeach()
add_library(vmatrace_proto STATIC ${generated})
target_compile_options(vmatrace_proto PRIVATE -w)
target_include_directories(vmatrace_proto SYSTEM PUBLIC ${VMATRACE_PROTO_OUT})
target_link_libraries(vmatrace_proto PUBLIC protobuf::libprotobuf)
target_link_libraries(vmatrace_report PUBLIC vmatrace_proto)
# The report library's sources include the generated headers.
add_dependencies(vmatrace_report vmatrace_proto)
