// Small file helpers shared by the bundle library and the tools: whole-file I/O with statuses, and
// SHA-256 (OpenSSL) for bundle checksums.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace invad::bundle {

// NotFound if the file does not exist; Internal on read errors.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes atomically: a temporary file in the same folder, then rename.
absl::Status WriteFile(const std::string& path, std::string_view contents);
// Lower-case hex SHA-256.
std::string Sha256Hex(std::string_view data);

}  // namespace invad::bundle
