# Helpers that keep every module's CMakeLists.txt to a few lines.
#
#   dspool_library(NAME SRCS a.cc b.cc DEPS other_lib ...)
#     A static library `dspool_<NAME>`; its include root is src/, so code
#     includes "module/file.h".
#   dspool_test(NAME SRCS x_test.cc DEPS ... [LABEL integration])
#     A GoogleTest binary registered with CTest under the label `unit`
#     (default) or the one given.
#   dspool_script_test(NAME COMMAND program args... [LABEL integration]
#                      [TIMEOUT seconds] [ENVIRONMENT VAR=value ...])
#     A test run by a program (a shell or Python script), under the label
#     `unit` (default) or the one given.
#
# A test that cannot run on this host (not root, no LXC, no overlayfs, a
# package missing) reports as skipped to CTest, never as passed: a script
# exits 77 (SKIP_RETURN_CODE), a GoogleTest test calls GTEST_SKIP through
# DSP_CANNOT_RUN_HERE (base/testing/cannot_run.h), and a discovered test
# whose output holds "[  SKIPPED ]" is skipped (SKIP_REGULAR_EXPRESSION,
# which gtest_discover_tests sets on every test it adds since CMake 3.25 at
# the latest). Where every test must run (DSPOOL_REQUIRE_ALL=1: CI), the same
# tests fail instead (README.md, "Tests").

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

function(dspool_script_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "COMMAND;ENVIRONMENT" ${ARGN})
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  add_test(NAME ${name} COMMAND ${ARG_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS ${ARG_LABEL} SKIP_RETURN_CODE 77)
  if(ARG_TIMEOUT)
    set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  endif()
  if(ARG_ENVIRONMENT)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${ARG_ENVIRONMENT}")
  endif()
endfunction()
