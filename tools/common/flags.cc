#include "tools/common/flags.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace invad::tools {

std::vector<std::string> RepeatedFlag(int argc, char** argv, const std::string& name) {
  std::vector<std::string> out;
  const std::string a = "--" + name, b = "-" + name;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    for (const std::string& p : {a, b}) {
      if (arg == p && i + 1 < argc) {
        out.push_back(argv[++i]);
        break;
      }
      if (arg.rfind(p + "=", 0) == 0) {
        out.push_back(arg.substr(p.size() + 1));
        break;
      }
    }
  }
  return out;
}

namespace {

template <typename T, typename Parse>
absl::StatusOr<std::vector<T>> ParseList(const std::vector<std::string>& items,
                                         const std::string& flag, const char* what, Parse parse) {
  std::vector<T> out;
  for (const std::string& s : items) {
    T v;
    if (!parse(s, &v))
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", s, "' is not ", what));
    out.push_back(v);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseIntList(const std::vector<std::string>& items,
                                              const std::string& flag) {
  return ParseList<int>(items, flag, "an integer",
                        [](const std::string& s, int* v) { return absl::SimpleAtoi(s, v); });
}

absl::StatusOr<std::vector<float>> ParseFloatList(const std::vector<std::string>& items,
                                                  const std::string& flag) {
  return ParseList<float>(items, flag, "a number",
                          [](const std::string& s, float* v) { return absl::SimpleAtof(s, v); });
}

}  // namespace invad::tools
