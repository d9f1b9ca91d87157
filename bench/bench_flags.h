// Flag parsing shared by the benchmark binaries: `--name=value` arguments that are ours are taken
// out before Google Benchmark sees the rest.
#pragma once

#include <cstring>
#include <string>

namespace invad::bench {

// True (and `value` set) if `arg` is `name=value`.
inline bool TakeFlag(const char* arg, const char* name, std::string* value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *value = arg + n + 1;
  return true;
}

}  // namespace invad::bench
