# Builds and runs test/cmake/consumer against sluice. Called by CTest with
#   -DMODE=package|subdirectory|fetchcontent -DSOURCE_DIR=... -DBINARY_DIR=... -DWORK_DIR=...
# In subdirectory mode it then installs the consumer's library, which installs the sluice it
# built too, and builds test/cmake/downstream against that installation.
file(REMOVE_RECURSE ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
endfunction()

set(args -DSLUICE_CONSUMER_MODE=${MODE})
if(MODE STREQUAL "package")
  run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix)
  list(APPEND args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "subdirectory")
  list(APPEND args -DSLUICE_SOURCE_DIR=${SOURCE_DIR})
elseif(MODE STREQUAL "fetchcontent")
  # A git repository of the source tree as it is, committed or not, for FetchContent to clone.
  execute_process(COMMAND git -C ${SOURCE_DIR} ls-files -co --exclude-standard
                  RESULT_VARIABLE rc OUTPUT_VARIABLE files OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
  if(NOT rc EQUAL 0)
    message(STATUS "skipped: ${SOURCE_DIR} is not a git checkout")
    return()
  endif()
  string(REPLACE "\n" ";" files "${files}")
  set(repo ${WORK_DIR}/repo)
  foreach(file IN LISTS files)
    if(EXISTS ${SOURCE_DIR}/${file}) # not deleted from the work tree
      get_filename_component(dir ${file} DIRECTORY)
      file(COPY ${SOURCE_DIR}/${file} DESTINATION ${repo}/${dir})
    endif()
  endforeach()
  run(git -C ${repo} init -q -b main)
  run(git -C ${repo} add -A)
  run(git -C ${repo} -c user.name=test -c user.email=test@localhost commit -q -m snapshot)
  list(APPEND args -DSLUICE_GIT_REPOSITORY=${repo})
else()
  message(FATAL_ERROR "MODE: package, subdirectory or fetchcontent")
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/test/cmake/consumer -B ${WORK_DIR}/build ${args}
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)

if(MODE STREQUAL "subdirectory")
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/build --prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/test/cmake/downstream -B ${WORK_DIR}/downstream
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/downstream)
  run(${WORK_DIR}/downstream/downstream)
endif()
message(STATUS "consumer (${MODE}) built and ran")
