// File: server/log.h
//
// invad-server's logs on stderr: one line per event, as text (`time level message k=v ...`) or as
// JSON lines (`--log_format=json`: {"time":...,"level":...,"msg":...,"k":"v"}) for log shippers.
// Request lines carry the correlation ids (request, camera, frame). Never pass secrets.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace invad::server {

enum class LogFormat { kText, kJson };

void SetLogFormat(LogFormat format);
// "text" or "json"; false otherwise.
bool ParseLogFormat(absl::string_view name, LogFormat* format);

using LogField = std::pair<absl::string_view, std::string>;

// Thread-safe; empty field values are left out.
void Log(absl::string_view level, absl::string_view message,
         std::initializer_list<LogField> fields = {});

// The line Log() would write (tests).
std::string FormatLogLine(LogFormat format, absl::string_view time, absl::string_view level,
                          absl::string_view message, std::initializer_list<LogField> fields);

}  // namespace invad::server
