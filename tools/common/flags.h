// File: tools/common/flags.h
//
// Small helpers for the tools' Abseil flags.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace invad::tools {

// Every value of a repeatable flag (`--name=V` or `--name V`), in order. Abseil flags keep only
// the last occurrence, so tools that accept a flag several times (invad-train --data) read argv.
std::vector<std::string> RepeatedFlag(int argc, char** argv, const std::string& name);

// "1,2,3" → {1, 2, 3}; InvalidArgument naming `flag` on a bad element.
absl::StatusOr<std::vector<int>> ParseIntList(const std::vector<std::string>& items,
                                              const std::string& flag);
absl::StatusOr<std::vector<float>> ParseFloatList(const std::vector<std::string>& items,
                                                  const std::string& flag);

}  // namespace invad::tools
