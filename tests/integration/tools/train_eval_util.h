// Helpers of the invad-train / invad-eval integration tests.
#pragma once

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"
#include "tools/datagen/synth.h"

namespace invad::tools {

namespace fs = std::filesystem;

inline fs::path Fresh(const std::string& name) {
  const fs::path p = fs::path(::testing::TempDir()) / ("train_eval_" + name);
  fs::remove_all(p);
  return p;
}

// A small data set: one category, `size` pixels.
inline fs::path MakeData(const std::string& name, const std::string& category, int size, int train,
                         int test_good, int per_defect) {
  const fs::path root = Fresh(name);
  DatagenOptions d;
  d.out = root.string();
  d.seed = 3;
  d.size = size;
  d.train = train;
  d.test_good = test_good;
  d.test_per_defect = per_defect;
  d.categories = {category};
  EXPECT_OK(GenerateDataset(d).status());
  return root / category;
}

}  // namespace invad::tools
