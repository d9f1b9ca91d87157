// File: tools/common/dataset.h
//
// Finds images in the folder layouts the offline tools accept (docs/training.md):
//   - a multi-category root: <root>/<category>/train/good/*, test/<defect>/*,
//     ground_truth/<defect>/<name>_mask.png (MVTec AD; what invad-datagen writes);
//   - one category: <dir>/train/good/* (and test/, ground_truth/); the category is the folder name;
//   - a flat folder of images (training only; no category).
// Difficulty labels come from <category>/labels.csv when present (invad-datagen writes it).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace invad::tools {

// File extensions (lower case) the tools treat as images.
bool IsImageFile(const std::string& path);

struct TrainImage {
  std::string path;
  std::string category;  // "" for a flat folder
};

// Normal training images of one --data argument, sorted by category then path. NotFound if the
// folder does not exist or holds no images in any accepted layout.
absl::StatusOr<std::vector<TrainImage>> FindTrainImages(const std::string& data);

struct TestImage {
  std::string path;
  std::string category;
  std::string defect;      // "good" or the defect folder's name
  bool anomalous = false;  // defect != "good"
  std::string mask_path;   // "" for good images (an all-zero mask)
  std::string difficulty;  // from labels.csv: none | subtle | obvious; "" if unknown
};

// The test split (<category>/test/<defect>/*) of a category folder or a multi-category root.
// NotFound if there is none; FailedPrecondition naming the image when a defective image lacks its
// mask.
absl::StatusOr<std::vector<TestImage>> FindTestImages(const std::string& data);

}  // namespace invad::tools
