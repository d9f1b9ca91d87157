// File: tools/datagen/synth.h
//
// Synthetic industrial images in the MVTec AD layout, for training and evaluating without any
// downloadable dataset:
//
//   <root>/<category>/train/good/NNN.png
//   <root>/<category>/test/good/NNN.png
//   <root>/<category>/test/<defect>/NNN.png
//   <root>/<category>/ground_truth/<defect>/NNN_mask.png   (exact: the painted region, 0/255)
//   <root>/<category>/labels.csv                           (split, label, defect, difficulty, ...)
//
// Six categories with natural variation between normal samples (grid, wood, metal, carpet, tile,
// washer — the last an object with pose jitter), grey and colour, and six defect kinds (scratch,
// hole, stain, crack, contamination, missing). Every image is a pure function of (seed, category,
// split, index), so output is deterministic whatever the order. Defects are "subtle" (mean
// contrast <= 15 grey levels and area <= 0.5 % of the image) for 2 of every 5 defect images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace invad::tools {

const std::vector<std::string>& DatagenCategories();
const std::vector<std::string>& DatagenDefects();

struct DatagenOptions {
  std::string out;  // root folder
  uint64_t seed = 0;
  int size = 256;                       // square images, pixels
  int train = 60;                       // normal training images per category
  int test_good = 20;                   // normal test images per category
  int test_per_defect = 5;              // test images per defect kind and category
  std::vector<std::string> categories;  // empty = all
  int threads = 2;                      // images are independent; output does not depend on it
  absl::Status Validate() const;
};

// A generated image with its ground truth. `mask` is width·height bytes, 0 or 255.
struct SynthImage {
  int size = 0;
  int channels = 0;             // 1 (grey categories) or 3 (BGR)
  std::vector<uint8_t> pixels;  // size·size·channels
  std::vector<uint8_t> mask;    // size·size
  std::string defect = "good";
  std::string difficulty = "none";  // none | subtle | obvious
  double area_fraction = 0.0;       // mask pixels / image pixels
  double contrast = 0.0;            // mean |defective − normal| over the mask, grey levels
};

// One image. `defect` is "good" or one of DatagenDefects(); `subtle` selects the difficulty.
absl::StatusOr<SynthImage> Synthesize(const std::string& category, const std::string& defect,
                                      bool subtle, uint64_t seed, int size);

struct DatagenReport {
  int images = 0;
  int subtle = 0;
  int defective = 0;
  double seconds = 0.0;
};
// Writes the whole data set. InvalidArgument for bad options, Internal for write failures.
absl::StatusOr<DatagenReport> GenerateDataset(const DatagenOptions& options);

}  // namespace invad::tools
