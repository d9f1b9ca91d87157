#include "bundle/safetensors.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

#include "bundle/files.h"

namespace invad::bundle {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;

absl::StatusOr<core::DType> ParseDType(const std::string& s) {
  if (s == "F32") return core::DType::kFloat32;
  if (s == "BF16") return core::DType::kBFloat16;
  if (s == "F16") return core::DType::kFloat16;
  return absl::InvalidArgumentError(absl::StrCat("unsupported dtype '", s, "' (F32, BF16, F16)"));
}

absl::StatusOr<int64_t> AsIndex(const google::protobuf::Value& v) {
  if (v.kind_case() != google::protobuf::Value::kNumberValue)
    return absl::InvalidArgumentError("not a number");
  const double d = v.number_value();
  if (!(d >= 0 && d <= 9007199254740992.0) || std::floor(d) != d) {
    return absl::InvalidArgumentError(absl::StrCat("not a non-negative integer: ", d));
  }
  return static_cast<int64_t>(d);
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<core::NamedTensors> ParseSafetensors(std::string_view bytes,
                                                    const std::string& what) {
  auto bad = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", msg));
  };
  if (bytes.size() < 8) return bad("truncated: shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > kMaxHeaderBytes || n > bytes.size() - 8) {
    return bad(absl::StrCat("header length ", n, " exceeds the file (", bytes.size(),
                            " bytes): truncated or corrupt"));
  }
  google::protobuf::Struct header;
  const std::string json(bytes.substr(8, n));
  if (!google::protobuf::util::JsonStringToMessage(json, &header).ok())
    return bad("header is not a JSON object");
  const std::string_view data = bytes.substr(8 + n);
  core::NamedTensors out;
  for (const auto& entry : header.fields()) {
    const std::string& name = entry.first;
    const google::protobuf::Value& value = entry.second;
    if (name == "__metadata__") continue;
    auto field = [&](const char* key) -> const google::protobuf::Value* {
      if (value.kind_case() != google::protobuf::Value::kStructValue) return nullptr;
      auto it = value.struct_value().fields().find(key);
      return it == value.struct_value().fields().end() ? nullptr : &it->second;
    };
    const auto* dtype = field("dtype");
    const auto* shape = field("shape");
    const auto* offsets = field("data_offsets");
    if (!dtype || dtype->kind_case() != google::protobuf::Value::kStringValue || !shape ||
        shape->kind_case() != google::protobuf::Value::kListValue || !offsets ||
        offsets->kind_case() != google::protobuf::Value::kListValue ||
        offsets->list_value().values_size() != 2) {
      return bad(
          absl::StrCat("tensor '", name, "': needs dtype, shape and data_offsets [begin, end]"));
    }
    core::RawTensor t;
    auto dt = ParseDType(dtype->string_value());
    if (!dt.ok()) return bad(absl::StrCat("tensor '", name, "': ", dt.status().message()));
    t.dtype = *dt;
    int64_t numel = 1;
    for (const auto& d : shape->list_value().values()) {
      auto v = AsIndex(d);
      if (!v.ok() || *v > (int64_t{1} << 40))
        return bad(absl::StrCat("tensor '", name, "': bad shape"));
      t.shape.push_back(*v);
      numel *= *v;
      if (numel > (int64_t{1} << 40)) return bad(absl::StrCat("tensor '", name, "': too large"));
    }
    auto begin = AsIndex(offsets->list_value().values(0));
    auto end = AsIndex(offsets->list_value().values(1));
    if (!begin.ok() || !end.ok() || *begin > *end || static_cast<uint64_t>(*end) > data.size()) {
      return bad(
          absl::StrCat("tensor '", name, "': data_offsets outside the data (truncated file?)"));
    }
    if (*end - *begin != numel * core::DTypeSize(t.dtype)) {
      return bad(absl::StrCat("tensor '", name, "': ", *end - *begin, " bytes for shape ",
                              core::ShapeToString(t.shape), " of ", core::DTypeName(t.dtype)));
    }
    t.bytes.assign(data.substr(*begin, *end - *begin));
    out.emplace(name, std::move(t));
  }
  return out;
}

absl::StatusOr<core::NamedTensors> ReadSafetensors(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return ParseSafetensors(*bytes, path);
}

std::string SerializeSafetensors(const core::NamedTensors& tensors) {
  std::string header = "{";
  uint64_t offset = 0;
  bool first = true;
  for (const auto& [name, t] : tensors) {
    absl::StrAppend(&header, first ? "" : ",", "\"", JsonEscape(name), "\":{\"dtype\":\"",
                    core::DTypeName(t.dtype), "\",\"shape\":[");
    for (size_t i = 0; i < t.shape.size(); ++i) absl::StrAppend(&header, i ? "," : "", t.shape[i]);
    absl::StrAppend(&header, "],\"data_offsets\":[", offset, ",", offset + t.bytes.size(), "]}");
    offset += t.bytes.size();
    first = false;
  }
  header += "}";
  while ((header.size() + 8) % 8 != 0) header += ' ';
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  out.reserve(out.size() + offset);
  for (const auto& [name, t] : tensors) out += t.bytes;
  return out;
}

}  // namespace invad::bundle
