# Helpers that keep every module's CMakeLists.txt to a few lines.
#
#   dspool_library(NAME SRCS a.cc b.cc DEPS other_lib ...)
#     A static library `dspool_<NAME>`; its include root is src/, so code
#     includes "module/file.h".
#   dspool_test(NAME SRCS x_test.cc DEPS ...)
#     A GoogleTest binary registered with CTest under the label `unit`.

function(dspool_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(dspool_${name} STATIC ${ARG_SRCS})
  target_include_directories(dspool_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(dspool_${name} PUBLIC ${ARG_DEPS})
endfunction()

function(dspool_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} PROPERTIES LABELS unit DISCOVERY_TIMEOUT 30)
endfunction()
