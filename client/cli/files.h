// Small file and CSV helpers the `invad` subcommands share.
#ifndef INVAD_CLIENT_CLI_FILES_H_
#define INVAD_CLIENT_CLI_FILES_H_

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

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

// RFC 4180 field: quoted when it holds a comma, a quote or a line break.
inline std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// The fields of one CSV line written by CsvField (no line breaks inside fields).
inline std::vector<std::string> ParseCsvRow(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  return fields;
}

}  // namespace invad::cli

#endif  // INVAD_CLIENT_CLI_FILES_H_
