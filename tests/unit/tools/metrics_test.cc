#include "tools/eval/metrics.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace invad::tools {
namespace {

// sklearn's documented example: roc_auc_score = 0.75, average_precision_score = 0.8333.
const std::vector<double> kScores = {0.1, 0.4, 0.35, 0.8};
const std::vector<int> kLabels = {0, 0, 1, 1};

TEST(AurocTest, HandComputed) {
  EXPECT_DOUBLE_EQ(Auroc(kScores, kLabels), 0.75);
  EXPECT_DOUBLE_EQ(Auroc(std::vector<double>{1, 2, 3, 4}, std::vector<int>{0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(Auroc(std::vector<double>{4, 3, 2, 1}, std::vector<int>{0, 0, 1, 1}), 0.0);
}

// Positives {0.5, 0.9} against negatives {0.5, 0.5}: two wins and two ties → (2 + 2·½)/4.
TEST(AurocTest, TiesCountOneHalf) {
  EXPECT_DOUBLE_EQ(Auroc(std::vector<double>{0.5, 0.5, 0.5, 0.9}, std::vector<int>{0, 0, 1, 1}),
                   0.75);
  EXPECT_DOUBLE_EQ(Auroc(std::vector<double>{1, 1, 1, 1}, std::vector<int>{0, 1, 0, 1}), 0.5);
}

TEST(AurocTest, OneClassIsNaN) {
  EXPECT_TRUE(std::isnan(Auroc(std::vector<double>{1, 2}, std::vector<int>{1, 1})));
}

TEST(AveragePrecisionTest, HandComputed) {
  // Thresholds 0.8 (R .5, P 1), 0.4 (R .5), 0.35 (R 1, P 2/3), 0.1 (R 1): .5·1 + .5·(2/3).
  EXPECT_NEAR(AveragePrecision(kScores, kLabels), 0.5 + 0.5 * 2.0 / 3.0, 1e-12);
  // A tie of one positive and one negative at the top: P = 1/2 for all recall.
  EXPECT_DOUBLE_EQ(AveragePrecision(std::vector<double>{1, 1}, std::vector<int>{0, 1}), 0.5);
}

TEST(MaxF1Test, HandComputed) {
  // F1 at thresholds 0.8, 0.4, 0.35, 0.1: 2/3, 1/2, 0.8, 2/3.
  const F1Max f = MaxF1(kScores, kLabels);
  EXPECT_NEAR(f.f1, 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(f.threshold, 0.35);
}

// Ten normal pixels at 0.05, 0.15, ..., 0.95; region 1 = {0.97, 0.55}, region 2 = {0.9}.
// Descending: 0.97 (PRO .25), 0.95 (FPR .1), 0.9 (PRO .75), 0.85 (FPR .2), 0.75 (FPR .3):
// area to 0.3 = .1·.25 + .1·.75 + .1·.75 = .175 → /.3; to 0.25: .1·.25 + .1·.75 + .05·.75 = .1375 →
// /.25.
TEST(AuproTest, HandComputedWithInterpolationAtTheLimit) {
  std::vector<float> s;
  std::vector<int32_t> r;
  for (int i = 0; i < 10; ++i) {
    s.push_back(0.05f + 0.1f * i);
    r.push_back(0);
  }
  s.insert(s.end(), {0.97f, 0.55f, 0.9f});
  r.insert(r.end(), {1, 1, 2});
  EXPECT_NEAR(Aupro(s, r, 0.3), 0.175 / 0.3, 1e-6);
  EXPECT_NEAR(Aupro(s, r, 0.25), 0.1375 / 0.25, 1e-6);
}

TEST(AuproTest, PerfectAndNoRegions) {
  std::vector<float> s = {0.1f, 0.2f, 0.9f, 0.8f};
  std::vector<int32_t> r = {0, 0, 1, 2};
  EXPECT_NEAR(Aupro(s, r), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(Aupro(s, std::vector<int32_t>{0, 0, 0, 0})));
}

}  // namespace
}  // namespace invad::tools
