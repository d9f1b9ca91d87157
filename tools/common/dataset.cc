#include "tools/common/dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace invad::tools {
namespace fs = std::filesystem;

bool IsImageFile(const std::string& path) {
  const std::string ext = absl::AsciiStrToLower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tif" ||
         ext == ".tiff" || ext == ".pgm" || ext == ".ppm" || ext == ".pnm";
}

namespace {

std::vector<std::string> ImagesIn(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && IsImageFile(e.path().string())) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Category folders of a multi-category root (those with train/good or test/), sorted.
std::vector<fs::path> CategoryDirs(const fs::path& root, const char* marker) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.is_directory(ec) && IsDir(e.path() / marker)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Name(const fs::path& dir) {
  fs::path p = dir;
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// labels.csv: path,split,label,defect,difficulty,...
std::map<std::string, std::string> ReadDifficulties(const fs::path& category_dir) {
  std::map<std::string, std::string> out;
  std::ifstream in(category_dir / "labels.csv");
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    std::vector<std::string> f = absl::StrSplit(line, ',');
    if (f.size() >= 5) out[f[0]] = f[4];
  }
  return out;
}

absl::Status AddTestCategory(const fs::path& dir, std::vector<TestImage>* out) {
  const std::string category = Name(dir);
  const auto difficulty = ReadDifficulties(dir);
  std::error_code ec;
  std::vector<fs::path> defects;
  for (const auto& e : fs::directory_iterator(dir / "test", ec)) {
    if (e.is_directory(ec)) defects.push_back(e.path());
  }
  std::sort(defects.begin(), defects.end());
  for (const fs::path& d : defects) {
    const std::string defect = d.filename().string();
    for (const std::string& path : ImagesIn(d)) {
      TestImage t;
      t.path = path;
      t.category = category;
      t.defect = defect;
      t.anomalous = defect != "good";
      const fs::path rel = fs::path("test") / defect / fs::path(path).filename();
      auto it = difficulty.find(rel.generic_string());
      t.difficulty = it != difficulty.end() ? it->second : (t.anomalous ? "" : "none");
      if (t.anomalous) {
        const fs::path mask =
            dir / "ground_truth" / defect / (fs::path(path).stem().string() + "_mask.png");
        if (!fs::exists(mask, ec)) {
          return absl::FailedPreconditionError(
              absl::StrCat("defective test image ", path, " has no mask ", mask.string()));
        }
        t.mask_path = mask.string();
      }
      out->push_back(std::move(t));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TrainImage>> FindTrainImages(const std::string& data) {
  const fs::path root(data);
  if (!IsDir(root)) return absl::NotFoundError(absl::StrCat("--data ", data, ": no such folder"));
  std::vector<TrainImage> out;
  if (IsDir(root / "train" / "good")) {
    for (const std::string& p : ImagesIn(root / "train" / "good")) out.push_back({p, Name(root)});
  } else if (std::vector<fs::path> cats = CategoryDirs(root, "train/good"); !cats.empty()) {
    for (const fs::path& c : cats) {
      for (const std::string& p : ImagesIn(c / "train" / "good")) out.push_back({p, Name(c)});
    }
  } else {
    for (const std::string& p : ImagesIn(root)) out.push_back({p, ""});
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "--data ", data,
        ": no images (expected <root>/<category>/train/good/, <category>/train/good/ or a folder "
        "of images)"));
  }
  return out;
}

absl::StatusOr<std::vector<TestImage>> FindTestImages(const std::string& data) {
  const fs::path root(data);
  if (!IsDir(root)) return absl::NotFoundError(absl::StrCat("--data ", data, ": no such folder"));
  std::vector<TestImage> out;
  if (IsDir(root / "test")) {
    if (absl::Status s = AddTestCategory(root, &out); !s.ok()) return s;
  } else {
    for (const fs::path& c : CategoryDirs(root, "test")) {
      if (absl::Status s = AddTestCategory(c, &out); !s.ok()) return s;
    }
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "--data ", data, ": no test images (expected <category>/test/<defect>/ folders)"));
  }
  return out;
}

}  // namespace invad::tools
