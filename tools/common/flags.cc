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

absl::StatusOr<std::vector<int>> ParseIntList(const std::vector<std::string>& items,
                                              const std::string& flag) {
  std::vector<int> out;
  for (const std::string& s : items) {
    int v;
    if (!absl::SimpleAtoi(s, &v))
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", s, "' is not an integer"));
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<float>> ParseFloatList(const std::vector<std::string>& items,
                                                  const std::string& flag) {
  std::vector<float> out;
  for (const std::string& s : items) {
    float v;
    if (!absl::SimpleAtof(s, &v))
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", s, "' is not a number"));
    out.push_back(v);
  }
  return out;
}

}  // namespace invad::tools
