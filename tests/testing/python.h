// Running Debian's /usr/bin/python3 (with python3-torch etc.) from tests. With CI=true a missing
// interpreter or module fails the test (the install script provides them); elsewhere it skips.
#pragma once

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace invad::testing {

inline std::string PythonInterpreter() {
  const char* p = std::getenv("INVAD_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

inline std::string SourceDir() {
  const char* p = std::getenv("INVAD_SOURCE_DIR");
  return p && *p ? p : ".";
}

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Runs `python -c 'import <modules>'`; true if it works.
inline bool PythonHas(const std::string& modules) {
  const std::string cmd = PythonInterpreter() + " -c 'import " + modules + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Runs a script from the source tree with arguments; returns the exit status.
inline int RunPython(const std::string& script, const std::string& args) {
  const std::string cmd = PythonInterpreter() + " " + SourceDir() + "/" + script + " " + args;
  return std::system(cmd.c_str());
}

}  // namespace invad::testing

// Skips (or fails under CI=true) when Debian's Python lacks the modules.
#define INVAD_REQUIRE_PYTHON(modules)                                                    \
  do {                                                                                   \
    if (!::invad::testing::PythonHas(modules)) {                                         \
      if (::invad::testing::InCi()) FAIL() << "CI=true but python lacks: " << (modules); \
      GTEST_SKIP() << "python lacks " << (modules) << " (run scripts/install-deps.sh)";  \
    }                                                                                    \
  } while (false)
