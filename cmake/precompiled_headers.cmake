# Precompiled headers for the tests, the examples and the tool.
#
# Asio, Beast, Boost.Test and Asio's ssl take seconds to parse in every source that includes
# them, longer than most of our sources take to compile. Each header set below is compiled
# once per build, by the target that owns it, and reused (REUSE_FROM) by the targets built
# with the same flags. GCC ignores a precompiled header made with other flags, and
# -Winvalid-pch (which CMake adds) says so in the build log.
#
#   sluice_use_pch(<target> ASIO)   <boost/asio.hpp>, for the examples, the tool and the doc
#                                   snippets: compiled with sluice::sluice's usage
#                                   requirements and sluice_warnings, as they are.
#   sluice_use_pch(<target> TESTS)  test/support/precompiled.hpp, for the tests: compiled with
#                                   the flags of sluice_test_support, which owns it and which
#                                   every test links. It holds Boost.Test, so a target that
#                                   does not link Boost.Test cannot use it.
option(SLUICE_PCH "Use precompiled headers for the tests, examples and tool" ON)

function(sluice_use_pch target set)
  if(NOT SLUICE_PCH)
    return()
  endif()
  if(set STREQUAL "TESTS")
    if(target STREQUAL "sluice_test_support")
      target_precompile_headers(${target} PRIVATE
                                ${PROJECT_SOURCE_DIR}/test/support/precompiled.hpp)
    else()
      target_precompile_headers(${target} REUSE_FROM sluice_test_support)
    endif()
  elseif(set STREQUAL "ASIO")
    if(NOT TARGET sluice_pch_asio)
      # An object library with an empty source, made only to own the header.
      file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/sluice_pch_asio.cpp
           CONTENT "// Owns the precompiled <boost/asio.hpp> (cmake/precompiled_headers.cmake).\n")
      add_library(sluice_pch_asio OBJECT ${PROJECT_BINARY_DIR}/sluice_pch_asio.cpp)
      target_link_libraries(sluice_pch_asio PRIVATE sluice::sluice sluice_warnings)
      target_precompile_headers(sluice_pch_asio PRIVATE <boost/asio.hpp>)
    endif()
    target_precompile_headers(${target} REUSE_FROM sluice_pch_asio)
  else()
    message(FATAL_ERROR "sluice_use_pch: no header set ${set} (ASIO or TESTS)")
  endif()
endfunction()
