# Run at every build (the build_commit target): writes the commit the build
# tree's binaries are built from into OUT, "abc1234", with a remark if
# src/, apps/ or bench/ had uncommitted changes, or "of unknown commit"
# outside a git checkout. The file changes only when its text does, so
# nothing that reads it is rebuilt for nothing. bench/lib.sh's build_commit
# reads it: a results block names the commit of the measured binary, not
# the checkout's HEAD when the run ended.
execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE failed ERROR_QUIET)
if(failed)
  set(text "of unknown commit")
else()
  execute_process(COMMAND git -C "${SOURCE_DIR}" diff --quiet HEAD -- src apps bench
                  RESULT_VARIABLE dirty ERROR_QUIET)
  set(text "${commit}")
  if(dirty)
    set(text "${commit} (with uncommitted changes in src/, apps/ or bench/)")
  endif()
endif()
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT "${old}" STREQUAL "${text}\n")
  file(WRITE "${OUT}" "${text}\n")
endif()
