#include "core/scoring/scoring.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/scoring/calibration.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::StatusIs;

TEST(ScoreLatentTest, NormMapDiffAndSquaredNorm) {
  // C = 2, H = 1, W = 3: locations (3,4) → 5, (0,0) → 0, (1,0) → 1.
  const std::vector<float> z = {3, 0, 1, /*channel 1*/ 4, 0, 0};
  std::vector<float> map(3);
  LatentScore s = ScoreLatent(z.data(), 2, 1, 3, map.data());
  EXPECT_FLOAT_EQ(map[0], 5.f);
  EXPECT_FLOAT_EQ(map[1], 0.f);
  EXPECT_FLOAT_EQ(map[2], 1.f);
  EXPECT_DOUBLE_EQ(s.sq_norm, 26.0);
  EXPECT_DOUBLE_EQ(s.diff, 5.0);
  EXPECT_DOUBLE_EQ(s.max_norm, 5.0);
  EXPECT_NEAR(s.nll, 13.0 + 0.5 * 6 * std::log(2 * M_PI), 1e-12);
}

TEST(ScoreLatentTest, NllConstantForPaperLatent) {
  EXPECT_NEAR(NllConstant(272 * 16 * 16), 63987.528, 1e-3);  // method.md §5.1
}

TEST(TensorTest, SliceCopiesBatchSamples) {
  const Tensor t({3, 2}, {1, 2, 3, 4, 5, 6});
  const Tensor s = t.Slice(1, 2);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(std::vector<float>(s.span().begin(), s.span().end()), (std::vector<float>{3, 4, 5, 6}));
}

TEST(ScoreLatentsTest, ScoresEveryBatchSample) {
  Tensor z({2, 1, 1, 2}, {1, 2, 3, 4});
  Tensor maps;
  std::vector<LatentScore> s = ScoreLatents(z, &maps);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(maps.shape(), (Shape{2, 1, 2}));
  EXPECT_DOUBLE_EQ(s[0].sq_norm, 5.0);
  EXPECT_DOUBLE_EQ(s[1].sq_norm, 25.0);
  EXPECT_DOUBLE_EQ(s[1].diff, 1.0);
}

// PyTorch's bilinear, align_corners = false, 2 → 4: source x = (d + 0.5)/2 − 0.5, clamped at 0:
// d = 0 → 0 (clamped), 1 → 0.25, 2 → 0.75, 3 → 1.25 (i0 = 1, no right neighbour).
TEST(UpsampleBilinearTest, MatchesAlignCornersFalseByHand) {
  const std::vector<float> in = {0, 4, 8, 12};  // [[0, 4], [8, 12]]
  std::vector<float> out(16);
  UpsampleBilinear(in.data(), 2, 2, out.data(), 4, 4);
  const float row0[] = {0, 1, 3, 4};
  const float rowv[] = {0, 2, 6, 8};  // vertical offsets for rows 0..3
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(out[y * 4 + x], row0[x] + rowv[y]) << y << "," << x;
  }
}

TEST(UpsampleBilinearTest, ConstantStaysConstantAndIdentityIsExact) {
  std::vector<float> in(16 * 16, 2.5f), out(256 * 256);
  UpsampleBilinear(in.data(), 16, 16, out.data(), 256, 256);
  for (float v : out) ASSERT_FLOAT_EQ(v, 2.5f);
  std::vector<float> ramp(16);
  for (int i = 0; i < 16; ++i) ramp[i] = static_cast<float>(i * i);
  std::vector<float> same(16);
  UpsampleBilinear(ramp.data(), 4, 4, same.data(), 4, 4);
  EXPECT_EQ(ramp, same);
}

TEST(ThresholdMapTest, StrictlyAboveThresholdIsDefect) {
  const std::vector<float> map = {0.5f, 2.0f, 2.5f, 9.0f};
  std::vector<uint8_t> mask(4);
  ThresholdMap(map.data(), 4, 2.0, mask.data());
  EXPECT_EQ(mask, (std::vector<uint8_t>{0, 0, 1, 1}));
}

TEST(QuantileTest, LinearInterpolationLikeNumpy) {
  // numpy.quantile([1, 2, 3, 4], q): 0.5 → 2.5, 0.9 → 3.7, 0 → 1, 1 → 4.
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_NEAR(Quantile({4, 1, 3, 2}, 0.9), 3.7, 1e-12);
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(Quantile({7}, 0.3), 7.0);
}

TEST(RobustStatsTest, MedianAndScaledMad) {
  // median 3; |x − 3| = 2, 1, 0, 1, 97 → MAD 1 → scale 1.4826 (robust to the outlier 100).
  const std::vector<double> v = {1, 2, 3, 4, 100};
  RobustStat s = RobustStats(v);
  EXPECT_DOUBLE_EQ(s.center, 3.0);
  EXPECT_NEAR(s.scale, 1.4826, 1e-12);
}

TEST(RobustStatsTest, ZeroMadFallsBackToMeanAbsoluteDeviation) {
  // median 5, MAD 0 (three of five equal); mean |x − 5| = (0+0+0+2+8)/5 = 2 → 1.2533·2.
  RobustStat s = RobustStats(std::vector<double>{5, 5, 5, 7, 13});
  EXPECT_DOUBLE_EQ(s.center, 5.0);
  EXPECT_NEAR(s.scale, 2.5066, 1e-12);
}

TEST(RobustStatsTest, ConstantValuesUseTheFloor) {
  RobustStat s = RobustStats(std::vector<double>{4, 4, 4});
  EXPECT_DOUBLE_EQ(s.center, 4.0);
  EXPECT_DOUBLE_EQ(s.scale, 4e-6);
  EXPECT_TRUE(std::isfinite(1.0 / s.scale));
}

TEST(CalibrationTest, ScoreIsSumOfRobustZScores) {
  Calibration cal;
  cal.diff = {2.0, 0.5};
  cal.sq_norm = {100.0, 10.0};
  LatentScore s;
  s.diff = 3.0;
  s.sq_norm = 130.0;
  EXPECT_DOUBLE_EQ(CalibratedScore(cal, s, nullptr), 2.0 + 3.0);
}

TEST(CalibrationTest, MaxNormRuleScoresTheMapPeakAlone) {
  Calibration cal;
  cal.rule = ScoreRule::kMaxNorm;
  cal.diff = {2.0, 0.5};
  cal.sq_norm = {100.0, 10.0};
  cal.max_norm = {4.0, 0.25};
  LatentScore s;
  s.diff = 3.0;
  s.sq_norm = 130.0;
  s.max_norm = 5.0;
  EXPECT_DOUBLE_EQ(CalibratedScore(cal, s, nullptr), 4.0);  // (5 − 4)/0.25; Diff and ‖z_T‖² ignored
  s.sq_norm = 1e9;
  EXPECT_DOUBLE_EQ(CalibratedScore(cal, s, nullptr), 4.0);
}

// Calibrate fits all three statistics whatever the rule, and the threshold follows the rule: a
// set whose Diff and ‖z_T‖² are constant but whose peaks spread calibrates kMaxNorm on the peaks.
TEST(CalibrationTest, CalibrateFitsEveryTermAndThresholdsTheChosenRule) {
  std::vector<LatentScore> normal(100);
  for (int i = 0; i < 100; ++i) {
    normal[i].diff = 1.0 + 0.01 * i;
    normal[i].sq_norm = 1000.0 + i;
    normal[i].max_norm = 10.0 + 0.1 * ((i * 37) % 100);  // 10.0 … 19.9, median 14.95
  }
  auto by_max = Calibrate(normal, {}, {1.0}, {.rule = ScoreRule::kMaxNorm, .target_fpr = 0.05});
  auto by_sum = Calibrate(normal, {}, {1.0}, {.rule = ScoreRule::kDiffSqNorm, .target_fpr = 0.05});
  ASSERT_OK(by_max);
  ASSERT_OK(by_sum);
  EXPECT_EQ(by_max->rule, ScoreRule::kMaxNorm);
  EXPECT_EQ(by_sum->rule, ScoreRule::kDiffSqNorm);
  for (const Calibration* c : {&*by_max, &*by_sum}) {
    EXPECT_NEAR(c->max_norm.center, 14.95, 1e-9);
    EXPECT_NEAR(c->max_norm.scale, 1.4826 * 2.5, 1e-9);
    EXPECT_NEAR(c->diff.center, 1.495, 1e-9);
    EXPECT_NEAR(c->sq_norm.center, 1049.5, 1e-9);
  }
  // The 95 % quantile of the peaks' z-scores: peak 19.405 → (19.405 − 14.95)/3.7065.
  EXPECT_NEAR(by_max->image_threshold, (19.405 - 14.95) / (1.4826 * 2.5), 1e-9);
  int above = 0;
  for (const LatentScore& s : normal)
    above += CalibratedScore(*by_max, s, nullptr) > by_max->image_threshold;
  EXPECT_EQ(above, 5);
  EXPECT_NE(by_max->image_threshold, by_sum->image_threshold);
}

TEST(CalibrationTest, ScoreRuleNamesRoundTripAndUnknownOnesAreRejected) {
  for (ScoreRule r : {ScoreRule::kMaxNorm, ScoreRule::kDiffSqNorm, ScoreRule::kPositionalMaxNorm}) {
    auto parsed = ParseScoreRule(ScoreRuleName(r));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_THAT(ParseScoreRule("map_max"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  "positional_max_norm, max_norm or diff_sq_norm"));
  // What a calibration means when nothing says otherwise (a manifest from before the rule).
  EXPECT_EQ(Calibration().rule, ScoreRule::kDiffSqNorm);
  EXPECT_EQ(CalibrationOptions().rule, ScoreRule::kMaxNorm);
}

TEST(CalibrationTest, ThresholdHitsTargetFalsePositiveRate) {
  std::vector<LatentScore> normal(200);
  for (int i = 0; i < 200; ++i) {
    normal[i].diff = 1.0 + 0.01 * ((i * 37) % 200);
    normal[i].sq_norm = 1000.0 + ((i * 53) % 200);
  }
  std::vector<double> pixels;
  for (int i = 0; i < 1000; ++i) pixels.push_back(i);
  auto cal =
      Calibrate(normal, {}, pixels,
                {.rule = ScoreRule::kDiffSqNorm, .target_fpr = 0.05, .pixel_quantile = 0.99});
  ASSERT_OK(cal);
  EXPECT_EQ(cal->num_images, 200);
  EXPECT_DOUBLE_EQ(cal->fpr_resolution(), 1.0 / 200);
  int above = 0;
  for (const LatentScore& s : normal)
    above += CalibratedScore(*cal, s, nullptr) > cal->image_threshold;
  EXPECT_LE(above, 10);  // ≤ 5 % of 200
  EXPECT_GE(above, 8);
  EXPECT_NEAR(cal->pixel_threshold, 989.01, 1e-9);
}

TEST(CalibrationTest, RejectsDegenerateInput) {
  std::vector<LatentScore> one(1);
  EXPECT_THAT(Calibrate(one, {}, {1.0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "at least 2"));
  std::vector<LatentScore> two(2);
  EXPECT_THAT(Calibrate(two, {}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Calibrate(two, {}, {1.0}, {.target_fpr = 0.0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // positional_max_norm without position statistics, or with maps of another size.
  EXPECT_THAT(Calibrate(two, {}, {1.0}, {.rule = ScoreRule::kPositionalMaxNorm}),
              StatusIs(absl::StatusCode::kInvalidArgument, "position statistics"));
  CalibrationOptions o;
  o.position = {.height = 1, .width = 2, .center = {0, 0}, .scale = {1, 1}};
  EXPECT_THAT(Calibrate(two, std::vector<float>{1, 2, 3}, {1.0}, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "do not match"));
}

// Hand-computed: maps of 1×2 locations, {1, 10}, {3, 10}, {2, 13}, {2, 11}. Location 0: mean 2,
// variance (1+1+0+0)/3 = 2/3; location 1: mean 11, variance (1+1+4+0)/3 = 2. Pooled: the mean of
// the two variances, 4/3.
TEST(PositionStatsTest, MeanAndScaleShrunkTowardThePooledVariance) {
  const std::vector<float> maps{1, 10, 3, 10, 2, 13, 2, 11};
  auto p = FitPositionStats(maps, 4, 1, 2);
  ASSERT_OK(p);
  EXPECT_EQ(p->height, 1);
  EXPECT_EQ(p->width, 2);
  EXPECT_FLOAT_EQ(p->center[0], 2.0f);
  EXPECT_FLOAT_EQ(p->center[1], 11.0f);
  const double pooled = 4.0 / 3.0;
  EXPECT_NEAR(p->scale[0], std::sqrt(0.5 * 2.0 / 3.0 + 0.5 * pooled), 1e-5);
  EXPECT_NEAR(p->scale[1], std::sqrt(0.5 * 2.0 + 0.5 * pooled), 1e-5);
  // A location that is always high is not an anomaly there: the raw peak is at location 1, the
  // standardised one at location 0.
  const std::vector<float> image{6, 12};
  EXPECT_NEAR(PositionalMax(*p, image.data()), (6.0 - 2.0) / p->scale[0], 1e-6);
  EXPECT_THAT(FitPositionStats(maps, 1, 1, 2), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FitPositionStats(maps, 4, 2, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, "map values"));
  const std::vector<float> bad{1, NAN, 2, 3};
  EXPECT_THAT(FitPositionStats(bad, 2, 1, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, "not finite"));
  // Constant maps: the scale is floored, never zero.
  const std::vector<float> flat{5, 5, 5, 5};
  auto f = FitPositionStats(flat, 2, 1, 2);
  ASSERT_OK(f);
  EXPECT_GT(f->scale[0], 0.0f);
}

// Under kPositionalMaxNorm the image score follows the standardised peak: an image whose raw peak
// sits where normal maps are always high scores below one with a smaller peak elsewhere, which
// kMaxNorm ranks the other way round; the threshold lets target_fpr of the validation set through.
TEST(CalibrationTest, PositionalRuleRanksByTheStandardisedPeak) {
  // 2 locations: location 1 is normally ~10 (spread 0.7), location 0 ~1 (spread 0.2).
  std::vector<float> reference;
  for (int i = 0; i < 100; ++i) {
    reference.push_back(1.0f + 0.3f * std::sin(1.3f * static_cast<float>(i)));
    reference.push_back(10.0f + std::cos(0.7f * static_cast<float>(i) + 0.4f));
  }
  auto pos = FitPositionStats(reference, 100, 1, 2);
  ASSERT_OK(pos);
  std::vector<LatentScore> normal(100);
  std::vector<float> maps;
  for (int i = 0; i < 100; ++i) {
    maps.push_back(reference[2 * ((i * 13) % 100)]);
    maps.push_back(reference[2 * ((i * 13) % 100) + 1]);
    normal[i].max_norm = std::max(maps[2 * i], maps[2 * i + 1]);
  }
  CalibrationOptions o;
  o.rule = ScoreRule::kPositionalMaxNorm;
  o.target_fpr = 0.05;
  o.position = *pos;
  auto cal = Calibrate(normal, maps, {1.0}, o);
  ASSERT_OK(cal);
  EXPECT_EQ(cal->rule, ScoreRule::kPositionalMaxNorm);
  EXPECT_GT(cal->positional_max.scale, 0.0);
  EXPECT_EQ(cal->position.center, pos->center);
  int above = 0;
  for (int i = 0; i < 100; ++i)
    above += CalibratedScore(*cal, normal[i], maps.data() + 2 * i) > cal->image_threshold;
  EXPECT_LE(above, 5);
  EXPECT_GE(above, 3);
  // Raw peak 12 at the always-high location vs 3 at the quiet one.
  const std::vector<float> rim{1.0f, 12.0f}, spot{3.0f, 10.0f};
  LatentScore a, b;
  a.max_norm = 12.0;
  b.max_norm = 10.0;
  EXPECT_GT(CalibratedScore(*cal, b, spot.data()), CalibratedScore(*cal, a, rim.data()));
  Calibration by_max = *cal;
  by_max.rule = ScoreRule::kMaxNorm;
  EXPECT_LT(CalibratedScore(by_max, b, spot.data()), CalibratedScore(by_max, a, rim.data()));
  // Without the map there is no positional score.
  EXPECT_TRUE(std::isnan(CalibratedScore(*cal, a, nullptr)));
}

}  // namespace
}  // namespace invad::core
