// invad-eval's metrics against Debian's scikit-learn on 2000 scores with many ties.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

#include "tests/testing/files.h"
#include "tests/testing/python.h"
#include "tools/eval/metrics.h"

namespace invad::tools {
namespace {

namespace fs = std::filesystem;

using ::invad::testing::ReadRaw;

TEST(MetricsSklearnTest, AurocApAndF1maxMatchSklearn) {
  INVAD_REQUIRE_PYTHON("numpy, sklearn");
  const fs::path dir = fs::temp_directory_path() / ("invad_sklearn_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ASSERT_EQ(testing::RunPython("tests/integration/python/sklearn_metrics.py", dir.string()), 0);
  const std::vector<double> scores = ReadRaw<double>(dir / "scores.f64");
  const std::vector<int32_t> labels32 = ReadRaw<int32_t>(dir / "labels.i32");
  const std::vector<int> labels(labels32.begin(), labels32.end());
  const std::vector<double> want = ReadRaw<double>(dir / "expected.f64");
  ASSERT_EQ(scores.size(), 2000u);
  ASSERT_EQ(want.size(), 3u);
  EXPECT_NEAR(Auroc(scores, labels), want[0], 1e-12);
  EXPECT_NEAR(AveragePrecision(scores, labels), want[1], 1e-12);
  EXPECT_NEAR(MaxF1(scores, labels).f1, want[2], 1e-12);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace invad::tools
