#include "server/log.h"

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "core/base/mutex.h"

namespace invad::server {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

core::Mutex& LogMutex() {
  static auto* m = new core::Mutex;
  return *m;
}

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

// Text values with spaces or quotes are quoted.
void AppendTextValue(std::string* out, absl::string_view s) {
  if (s.find_first_of(" \"=\n") == absl::string_view::npos) {
    out->append(s.data(), s.size());
  } else {
    AppendJsonString(out, s);
  }
}

}  // namespace

void SetLogFormat(LogFormat format) { g_format.store(format); }

bool ParseLogFormat(absl::string_view name, LogFormat* format) {
  if (name == "text") {
    *format = LogFormat::kText;
    return true;
  }
  if (name == "json") {
    *format = LogFormat::kJson;
    return true;
  }
  return false;
}

std::string FormatLogLine(LogFormat format, absl::string_view time, absl::string_view level,
                          absl::string_view message, std::initializer_list<LogField> fields) {
  std::string out;
  if (format == LogFormat::kJson) {
    out = "{\"time\":";
    AppendJsonString(&out, time);
    out += ",\"level\":";
    AppendJsonString(&out, level);
    out += ",\"msg\":";
    AppendJsonString(&out, message);
    for (const auto& [k, v] : fields) {
      if (v.empty()) continue;
      out += ",";
      AppendJsonString(&out, k);
      out += ":";
      AppendJsonString(&out, v);
    }
    out += "}\n";
    return out;
  }
  absl::StrAppend(&out, time, " ", level, " ", message);
  for (const auto& [k, v] : fields) {
    if (v.empty()) continue;
    absl::StrAppend(&out, " ", k, "=");
    AppendTextValue(&out, v);
  }
  out += "\n";
  return out;
}

void Log(absl::string_view level, absl::string_view message,
         std::initializer_list<LogField> fields) {
  const std::string time =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  const std::string line = FormatLogLine(g_format.load(), time, level, message, fields);
  core::MutexLock l(&LogMutex());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace invad::server
