# containerd-shim-rauha-v2, the binary. One shim runs per pod, so its memory is multiplied by
# the pods. It talks to rauhad over ttrpc (no gRPC client). Linked like rauhad (dynamically,
# full protobuf) it still cost a pod ~1.5 MiB PSS; so, by default:
# - its protobuf code is generated again with optimize_for = LITE_RUNTIME (containerd's protos,
#   ttrpc's, rauha's zone and process protos, and the well-known types they import) and linked
#   with libprotobuf-lite: no descriptors, reflection or text format. Same messages, same wire.
#   The shim's sources are compiled again against that code; rauha_cshim_lib (the full-protobuf
#   build of the same sources) is what tests link beside rauhad_lib;
# - it is linked statically and without PIE, with --gc-sections: only what it uses, no
#   relocated pages, its text shared by all shims (as rauha-shim is). Our libraries go in as
#   plain archives so that their shared-library interface (absl .so, libprotobuf.so,
#   libcrypto.so, libseccomp, libbpf) does not come along.
option(RAUHA_CSHIM_STATIC
  "Link containerd-shim-rauha-v2 statically with protobuf-lite (smaller per-pod memory)" ON)
find_library(RAUHA_ABSL_STATUS_ARCHIVE libabsl_status.a)
find_library(RAUHA_PROTOBUF_LITE_ARCHIVE libprotobuf-lite.a)
find_library(RAUHA_CRYPTO_ARCHIVE libcrypto.a)
find_library(RAUHA_LIBSECCOMP_ARCHIVE libseccomp.a)
find_file(RAUHA_PROTOBUF_ANY_PROTO google/protobuf/any.proto PATHS ${Protobuf_INCLUDE_DIRS})
if(NOT (RAUHA_CSHIM_STATIC AND RAUHA_ABSL_STATUS_ARCHIVE AND RAUHA_PROTOBUF_LITE_ARCHIVE
        AND RAUHA_CRYPTO_ARCHIVE AND RAUHA_LIBSECCOMP_ARCHIVE AND RAUHA_PROTOBUF_ANY_PROTO))
  add_executable(containerd-shim-rauha-v2 main.cc)
  rauha_target_defaults(containerd-shim-rauha-v2)
  target_link_libraries(containerd-shim-rauha-v2 PRIVATE rauha_cshim_lib)
  return()
endif()

get_filename_component(RAUHA_PROTOBUF_WKT_DIR ${RAUHA_PROTOBUF_ANY_PROTO} DIRECTORY)
set(LITE_PROTO_DIR ${CMAKE_CURRENT_BINARY_DIR}/lite-proto)
set(LITE_GEN_DIR ${CMAKE_CURRENT_BINARY_DIR}/lite-gen)
file(MAKE_DIRECTORY ${LITE_GEN_DIR})
# relative name -> where its text comes from
set(LITE_RELS)
set(LITE_FROM)
foreach(rel ${CONTAINERD_PROTOS} ttrpc.proto)
  list(APPEND LITE_RELS ${rel})
  list(APPEND LITE_FROM ${CTR_PROTO_DIR}/${rel})
endforeach()
foreach(name zone process)
  list(APPEND LITE_RELS rauha/v1/${name}.proto)
  list(APPEND LITE_FROM ${PROJECT_SOURCE_DIR}/proto/rauha/v1/${name}.proto)
endforeach()
foreach(name any empty timestamp)
  list(APPEND LITE_RELS google/protobuf/${name}.proto)
  list(APPEND LITE_FROM ${RAUHA_PROTOBUF_WKT_DIR}/${name}.proto)
endforeach()

set(LITE_PROTOS)
foreach(rel from IN ZIP_LISTS LITE_RELS LITE_FROM)
  add_custom_command(
    OUTPUT ${LITE_PROTO_DIR}/${rel}
    COMMAND ${CMAKE_COMMAND} -DIN=${from} -DOUT=${LITE_PROTO_DIR}/${rel}
      -P ${CMAKE_CURRENT_SOURCE_DIR}/proto/make_lite.cmake
    DEPENDS ${from} ${CMAKE_CURRENT_SOURCE_DIR}/proto/make_lite.cmake
    COMMENT "lite copy: ${rel}")
  list(APPEND LITE_PROTOS ${LITE_PROTO_DIR}/${rel})
endforeach()
set(LITE_GEN_SRCS)
foreach(rel ${LITE_RELS})
  string(REGEX REPLACE "\\.proto$" "" stem ${rel})
  list(APPEND LITE_GEN_SRCS ${LITE_GEN_DIR}/${stem}.pb.cc)
  add_custom_command(
    OUTPUT ${LITE_GEN_DIR}/${stem}.pb.cc ${LITE_GEN_DIR}/${stem}.pb.h
    COMMAND protobuf::protoc --proto_path=${LITE_PROTO_DIR} --cpp_out=${LITE_GEN_DIR}
      ${LITE_PROTO_DIR}/${rel}
    DEPENDS ${LITE_PROTOS}
    COMMENT "protoc (lite) ${rel}")
endforeach()
# protoc's code, not ours: no warning flags.
add_library(cshim_lite_proto STATIC ${LITE_GEN_SRCS})
target_include_directories(cshim_lite_proto BEFORE PRIVATE ${LITE_GEN_DIR})
target_compile_options(cshim_lite_proto PRIVATE -Os -ffunction-sections -fdata-sections)

get_target_property(CSHIM_LIB_SRCS rauha_cshim_lib SOURCES)
get_target_property(CSHIM_TTRPC_SRCS rauha_ttrpc SOURCES)
add_executable(containerd-shim-rauha-v2 main.cc ${CSHIM_LIB_SRCS} ${CSHIM_TTRPC_SRCS})
rauha_target_defaults(containerd-shim-rauha-v2)
# The lite headers before anything that could hold the full ones (/usr/include has the
# well-known types' full headers).
target_include_directories(containerd-shim-rauha-v2 BEFORE PRIVATE ${LITE_GEN_DIR})
target_include_directories(containerd-shim-rauha-v2 SYSTEM PRIVATE ${TOMLPP_INCLUDE})
target_compile_options(containerd-shim-rauha-v2 PRIVATE -Os -ffunction-sections -fdata-sections)
get_filename_component(RAUHA_ABSL_LIBDIR ${RAUHA_ABSL_STATUS_ARCHIVE} DIRECTORY)
file(GLOB RAUHA_ABSL_ARCHIVES ${RAUHA_ABSL_LIBDIR}/libabsl_*.a)
add_dependencies(containerd-shim-rauha-v2 cshim_lite_proto rauha_common)
target_link_libraries(containerd-shim-rauha-v2 PRIVATE nlohmann_json::nlohmann_json
  $<TARGET_FILE:cshim_lite_proto> $<TARGET_FILE:rauha_common> ${RAUHA_PROTOBUF_LITE_ARCHIVE}
  -Wl,--start-group ${RAUHA_ABSL_ARCHIVES} -Wl,--end-group
  ${RAUHA_CRYPTO_ARCHIVE} ${RAUHA_LIBSECCOMP_ARCHIVE} Threads::Threads)
target_link_options(containerd-shim-rauha-v2 PRIVATE -no-pie -static-libstdc++ -static-libgcc -Wl,--gc-sections,-O1,--as-needed)
