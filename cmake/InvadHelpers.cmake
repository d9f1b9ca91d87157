# Shared helpers: warnings, test registration with labels.
include_guard(GLOBAL)

add_library(invad_warnings INTERFACE)
target_compile_options(invad_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # g++ ignores thread-safety annotations; clang checks them (the tsan preset makes them errors).
  target_compile_options(invad_warnings INTERFACE -Wthread-safety)
endif()
if(INVAD_WERROR)
  target_compile_options(invad_warnings INTERFACE -Werror)
endif()

# invad_add_library(<name> SOURCES ... DEPS ... [PRIVATE_DEPS ...])
# Creates invad_<name> with the alias invad::<name>; includes are rooted at the repository root.
function(invad_add_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(invad_${name} STATIC ${A_SOURCES})
  add_library(invad::${name} ALIAS invad_${name})
  target_include_directories(invad_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(invad_${name} PUBLIC ${A_DEPS} PRIVATE invad_warnings ${A_PRIVATE_DEPS})
endfunction()

# invad_add_test(<name> SOURCES ... DEPS ... LABELS unit|integration|slow [TIMEOUT s])
# Labels: `unit` (fast, no sockets), `integration` (several components, real files or processes),
# `slow` alone for training and load tests.
function(invad_add_test name)
  cmake_parse_arguments(A "" "TIMEOUT;PROCESSORS" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  # PROCESSORS: the cores the test keeps busy. Tests that train use LibTorch's OpenMP pool on every
  # core; two of them side by side under `ctest -j2` spin against each other in libgomp's barriers
  # and ran 20x slower in CI (66 s alone, 1526 s paired). `slow` tests therefore claim 2 cores, so
  # ctest runs them alone.
  if(NOT A_PROCESSORS)
    if("slow" IN_LIST A_LABELS)
      set(A_PROCESSORS 2)
    else()
      set(A_PROCESSORS 1)
    endif()
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} invad_warnings GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 120
    PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT} PROCESSORS ${A_PROCESSORS}
               ENVIRONMENT "INVAD_SOURCE_DIR=${PROJECT_SOURCE_DIR};INVAD_PYTHON=${INVAD_PYTHON}")
endfunction()
