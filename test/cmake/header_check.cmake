# Compiles each public header of sluice alone (include/sluice/**.hpp but detail/ and impl/),
# then test/headers/instantiations.cpp, with COMPILER and FLAGS (the strict warnings and
# -Werror): a header that misses an include, or that warns in users' builds, fails.
# Called by CTest with
#   -DCOMPILER=... -DSOURCE_DIR=... -DWORK_DIR=... -DFLAGS=<list> -DINCLUDES=<list>
# The headers are found when the test runs, so a new one is checked without reconfiguring.
file(REMOVE_RECURSE ${WORK_DIR})
file(GLOB_RECURSE headers RELATIVE ${SOURCE_DIR}/include ${SOURCE_DIR}/include/sluice/*.hpp)
list(FILTER headers EXCLUDE REGEX "/(detail|impl)/")

set(command ${COMPILER} -std=c++20 -fsyntax-only -I${SOURCE_DIR}/include)
foreach(dir IN LISTS INCLUDES)
  list(APPEND command -isystem ${dir})
endforeach()
list(APPEND command ${FLAGS})

set(failed "")
function(check source what)
  execute_process(COMMAND ${command} ${source} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message("${what}:\n${out}")
    set(failed "${failed} ${what}" PARENT_SCOPE)
  endif()
endfunction()

foreach(header IN LISTS headers)
  string(MAKE_C_IDENTIFIER ${header} name)
  file(WRITE ${WORK_DIR}/${name}.cpp "#include <${header}>\n")
  check(${WORK_DIR}/${name}.cpp ${header})
endforeach()
check(${SOURCE_DIR}/test/headers/instantiations.cpp test/headers/instantiations.cpp)

list(LENGTH headers count)
if(failed)
  message(FATAL_ERROR "failed with ${COMPILER}:${failed}")
endif()
message(STATUS "${count} headers and their instantiations clean with ${COMPILER}")
