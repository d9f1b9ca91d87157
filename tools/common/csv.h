// File: tools/common/csv.h
//
// RFC 4180 CSV fields, written and read the same way by every tool (invad-eval's predictions.csv,
// the `invad` CLI's --csv output and its watch journal). Header-only, no dependencies.
#pragma once

#include <string>
#include <vector>

namespace invad::tools {

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

}  // namespace invad::tools
