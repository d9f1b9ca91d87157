// Small file and CSV helpers the `invad` subcommands share.
#ifndef INVAD_CLIENT_CLI_FILES_H_
#define INVAD_CLIENT_CLI_FILES_H_

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/common/csv.h"

namespace invad::cli {

// Extensions `invad score`, `stream` and `watch` take for images.
inline bool IsImageFile(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"}) {
    if (ext == e) return true;
  }
  return false;
}

// CSV fields as the other tools write them (tools/common/csv.h).
using ::invad::tools::CsvField;
using ::invad::tools::ParseCsvRow;

}  // namespace invad::cli

#endif  // INVAD_CLIENT_CLI_FILES_H_
