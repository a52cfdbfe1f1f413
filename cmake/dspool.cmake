# Helpers that keep every module's CMakeLists.txt to a few lines.
#
#   dspool_library(NAME SRCS a.cc b.cc DEPS other_lib ...)
#     A static library `dspool_<NAME>`; its include root is src/, so code
#     includes "module/file.h".
#   dspool_test(NAME SRCS x_test.cc DEPS ... [LABEL integration])
#     A GoogleTest binary registered with CTest under the label `unit`
#     (default) or the one given.

function(dspool_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(dspool_${name} STATIC ${ARG_SRCS})
  target_include_directories(dspool_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(dspool_${name} PUBLIC ${ARG_DEPS})
endfunction()

function(dspool_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SRCS;DEPS" ${ARGN})
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} DISCOVERY_TIMEOUT 30)
endfunction()
