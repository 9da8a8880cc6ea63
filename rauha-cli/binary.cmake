# The `rauha` executable. An agent starts `rauha` for every tool call, so its start-up is paid
# thousands of times a session. By default (RAUHA_STATIC_CLI):
# - gRPC, protobuf, Abseil, OpenSSL and libstdc++ are linked statically and without PIE.
#   Linked against the shared gRPC, protobuf and Abseil (60 libraries) the dynamic loader alone
#   did ~15 000 symbol relocations: ~9 ms of CPU for `rauha --help`; static and without PIE
#   ~1.5 ms (PIE costs ~0.8 ms more: 36 000 relative relocations touching ~150 pages). No ASLR
#   for the CLI's own code is the price. glibc stays shared (NSS, getaddrinfo);
# - its protobuf code is generated again with optimize_for = LITE_RUNTIME (rauha's protos with
#   their gRPC stubs, ttrpc's and any.proto) and linked with libprotobuf-lite, and the CLI's
#   sources (and ttrpc's) are compiled again against it: the full runtime parsed and indexed
#   the descriptors of 9 files at every start (~0.2 ms of CPU), for reflection the CLI never
#   uses. Same messages, same wire. rauha_cli_lib (full protobuf) is what the unit tests link.
# Measurements in eval/bench/README.md. rauhad, the shims and the tests keep the shared
# libraries.
option(RAUHA_STATIC_CLI
  "link the rauha CLI statically (but for glibc), without PIE, with protobuf-lite (fast start)" ON)
set(rauha_static_ok OFF)
if(RAUHA_STATIC_CLI)
  set(rauha_static_archives)
  set(rauha_static_ok ON)
  foreach(lib grpc++ grpc gpr upb address_sorting protobuf-lite re2 cares z ssl crypto seccomp
              bpf elf)
    find_library(RAUHA_STATIC_${lib} NAMES lib${lib}.a)
    if(NOT RAUHA_STATIC_${lib})
      message(STATUS "rauha CLI: lib${lib}.a not found; linking the CLI with shared libraries")
      set(rauha_static_ok OFF)
    endif()
    list(APPEND rauha_static_archives ${RAUHA_STATIC_${lib}})
  endforeach()
  get_filename_component(rauha_static_dir ${RAUHA_STATIC_protobuf-lite} DIRECTORY)
  file(GLOB rauha_static_absl ${rauha_static_dir}/libabsl_*.a)
  find_file(RAUHA_CLI_ANY_PROTO google/protobuf/any.proto PATHS ${Protobuf_INCLUDE_DIRS})
  if(NOT rauha_static_absl OR NOT RAUHA_CLI_ANY_PROTO)
    set(rauha_static_ok OFF)
  endif()
endif()

# The commands compile as objects (with every usage requirement of the libraries) so that the
# executable can choose how the libraries are linked.
if(NOT rauha_static_ok)
  add_library(rauha_cli_objs OBJECT ${RAUHA_CLI_SRCS})
  rauha_target_defaults(rauha_cli_objs)
  target_include_directories(rauha_cli_objs SYSTEM PRIVATE ${CLI11_INCLUDE})
  # --preset falls back to the source tree's policies/ when nothing is installed.
  target_compile_definitions(rauha_cli_objs PRIVATE RAUHA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(rauha_cli_objs PRIVATE rauha_cli_lib rauha_audit)
  add_executable(rauha $<TARGET_OBJECTS:rauha_cli_objs>)
  target_link_libraries(rauha PRIVATE rauha_cli_lib rauha_audit)
  return()
endif()

# protobuf-lite copies of the protos the CLI speaks (make_lite.cmake adds the option).
get_filename_component(rauha_cli_wkt_dir ${RAUHA_CLI_ANY_PROTO} DIRECTORY)
set(CLI_LITE_PROTO_DIR ${CMAKE_CURRENT_BINARY_DIR}/lite-proto)
set(CLI_LITE_GEN_DIR ${CMAKE_CURRENT_BINARY_DIR}/lite-gen)
file(MAKE_DIRECTORY ${CLI_LITE_GEN_DIR})
set(make_lite ${PROJECT_SOURCE_DIR}/containerd-shim-rauha-v2/proto/make_lite.cmake)
set(cli_lite_rels ttrpc.proto google/protobuf/any.proto)
set(cli_lite_from ${PROJECT_SOURCE_DIR}/containerd-shim-rauha-v2/proto/ttrpc.proto
  ${RAUHA_CLI_ANY_PROTO})
set(cli_lite_grpc_rels)
foreach(proto ${RAUHA_PROTOS})
  get_filename_component(name ${proto} NAME)
  list(APPEND cli_lite_rels rauha/v1/${name})
  list(APPEND cli_lite_grpc_rels rauha/v1/${name})
  list(APPEND cli_lite_from ${proto})
endforeach()
set(cli_lite_protos)
foreach(rel from IN ZIP_LISTS cli_lite_rels cli_lite_from)
  add_custom_command(
    OUTPUT ${CLI_LITE_PROTO_DIR}/${rel}
    COMMAND ${CMAKE_COMMAND} -DIN=${from} -DOUT=${CLI_LITE_PROTO_DIR}/${rel} -P ${make_lite}
    DEPENDS ${from} ${make_lite}
    COMMENT "lite copy for the CLI: ${rel}")
  list(APPEND cli_lite_protos ${CLI_LITE_PROTO_DIR}/${rel})
endforeach()
set(cli_lite_gen_srcs)
foreach(rel ${cli_lite_rels})
  string(REGEX REPLACE "\\.proto$" "" stem ${rel})
  set(out ${CLI_LITE_GEN_DIR}/${stem}.pb.cc ${CLI_LITE_GEN_DIR}/${stem}.pb.h)
  set(grpc_args)
  if(rel IN_LIST cli_lite_grpc_rels)
    list(APPEND out ${CLI_LITE_GEN_DIR}/${stem}.grpc.pb.cc ${CLI_LITE_GEN_DIR}/${stem}.grpc.pb.h)
    list(APPEND cli_lite_gen_srcs ${CLI_LITE_GEN_DIR}/${stem}.grpc.pb.cc)
    set(grpc_args --grpc_out=${CLI_LITE_GEN_DIR} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN})
  endif()
  list(APPEND cli_lite_gen_srcs ${CLI_LITE_GEN_DIR}/${stem}.pb.cc)
  add_custom_command(
    OUTPUT ${out}
    COMMAND protobuf::protoc --proto_path=${CLI_LITE_PROTO_DIR} --cpp_out=${CLI_LITE_GEN_DIR}
      ${grpc_args} ${CLI_LITE_PROTO_DIR}/${rel}
    DEPENDS ${cli_lite_protos}
    COMMENT "protoc (lite, CLI) ${rel}")
endforeach()
# protoc's code, not ours: no warning flags. GRPC_USE_PROTO_LITE: gRPC's headers then name
# MessageLite where they would name Message.
add_library(cli_lite_proto STATIC ${cli_lite_gen_srcs})
target_include_directories(cli_lite_proto BEFORE PRIVATE ${CLI_LITE_GEN_DIR})
target_compile_definitions(cli_lite_proto PRIVATE GRPC_USE_PROTO_LITE)

# The CLI's sources and ttrpc's, compiled against the lite headers (found before any full
# ones). Linking the libraries' targets to an object library brings their include directories
# and definitions only; rauha_proto, rauha_cli_lib and rauha_ttrpc are left out, since their
# include directories hold the full headers.
get_target_property(rauha_ttrpc_srcs rauha_ttrpc SOURCES)
get_target_property(rauha_ttrpc_dir rauha_ttrpc SOURCE_DIR)
list(TRANSFORM rauha_ttrpc_srcs PREPEND ${rauha_ttrpc_dir}/)
add_library(rauha_cli_lite_objs OBJECT ${RAUHA_CLI_SRCS} ${rauha_cli_lib_paths}
  ${rauha_ttrpc_srcs})
rauha_target_defaults(rauha_cli_lite_objs)
target_include_directories(rauha_cli_lite_objs SYSTEM BEFORE PRIVATE ${CLI_LITE_GEN_DIR})
target_include_directories(rauha_cli_lite_objs SYSTEM PRIVATE ${CLI11_INCLUDE})
target_compile_definitions(rauha_cli_lite_objs PRIVATE GRPC_USE_PROTO_LITE
  RAUHA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(rauha_cli_lite_objs PRIVATE rauha_common rauha_audit gRPC::grpc++
  nlohmann_json::nlohmann_json absl::status absl::statusor absl::strings absl::time)
add_dependencies(rauha_cli_lite_objs cli_lite_proto)
add_executable(rauha $<TARGET_OBJECTS:rauha_cli_lite_objs>)

# Our libraries by file, so that their shared imported dependencies do not follow; the archives
# as one group, since Abseil's 64 archives refer to each other in cycles.
add_dependencies(rauha cli_lite_proto rauha_audit rauha_common)
target_link_libraries(rauha PRIVATE $<TARGET_FILE:cli_lite_proto> $<TARGET_FILE:rauha_audit>
  $<TARGET_FILE:rauha_common>
  -Wl,--start-group ${rauha_static_archives} ${rauha_static_absl} -Wl,--end-group
  Threads::Threads ${CMAKE_DL_LIBS} m rt)
target_link_options(rauha PRIVATE -no-pie -static-libstdc++ -static-libgcc
  -Wl,-O1,--hash-style=gnu,--as-needed)
