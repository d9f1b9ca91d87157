#include "core/model/calibrate.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/fakes.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::LinearDenoiser;
using ::invad::testing::PoolingEncoder;
using ::invad::testing::StatusIs;

constexpr LatentShape kShape{4, 4, 4};

std::unique_ptr<Pipeline> MakePipeline() {
  auto p =
      Pipeline::Create(std::make_unique<PoolingEncoder>(kShape),
                       std::make_unique<LinearDenoiser>(kShape), *NoiseSchedule::Linear(), {1, 3});
  EXPECT_OK(p);
  return std::move(*p);
}

Tensor Images(int n, uint64_t seed) {
  Tensor t({n, 3, 16, 16});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (float& v : t.span()) v = nd(rng);
  return t;
}

// Calibrating in batches of 3 equals calibrating all at once, for every K, and each K's image
// threshold lets through at most the target share of the validation images.
TEST(CalibratePipelineTest, EveryStepCountCalibratedIndependentOfBatching) {
  auto p = MakePipeline();
  const Tensor images = Images(40, 1);
  const CalibrationOptions opts{.target_fpr = 0.05, .pixel_quantile = 0.99};
  auto batched = CalibratePipeline(*p, images, std::vector<int>{1, 3}, opts, 3);
  auto whole = CalibratePipeline(*p, images, std::vector<int>{1, 3}, opts, 40);
  ASSERT_OK(batched);
  ASSERT_OK(whole);
  ASSERT_EQ(batched->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const Calibration& a = (*batched)[i].calibration;
    const Calibration& b = (*whole)[i].calibration;
    EXPECT_EQ((*batched)[i].steps, i == 0 ? 1 : 3);
    EXPECT_EQ(a.num_images, 40);
    EXPECT_DOUBLE_EQ(a.image_threshold, b.image_threshold);
    EXPECT_DOUBLE_EQ(a.pixel_threshold, b.pixel_threshold);
    EXPECT_DOUBLE_EQ(a.sq_norm.center, b.sq_norm.center);
  }
  // K changes z_T, so the two calibrations differ.
  EXPECT_NE((*batched)[0].calibration.sq_norm.center, (*batched)[1].calibration.sq_norm.center);
  // On the validation images themselves, at most 5 % (2 of 40) score above the threshold.
  for (const StepsCalibration& sc : *batched) {
    Tensor z;
    ASSERT_OK(p->Encode(images, &z));
    ASSERT_OK(p->Invert(sc.steps, z));
    int above = 0;
    for (const LatentScore& s : ScoreLatents(z, nullptr))
      above += CalibratedScore(sc.calibration, s, nullptr) > sc.calibration.image_threshold;
    EXPECT_LE(above, 2) << "steps=" << sc.steps;
  }
}

TEST(CalibratePipelineTest, RejectsStepsTheModelDoesNotAllow) {
  auto p = MakePipeline();
  EXPECT_THAT(CalibratePipeline(*p, Images(4, 1), std::vector<int>{2}),
              StatusIs(absl::StatusCode::kInvalidArgument, "allowed"));
  EXPECT_THAT(CalibratePipeline(*p, Images(1, 1), std::vector<int>{1}),
              StatusIs(absl::StatusCode::kInvalidArgument, "at least 2"));
}

// Position statistics: fitted per K on the reference images (the latent grid's size, other values
// for each K), or taken from `positions` without reference images; under positional_max_norm a K
// with neither is refused, and the threshold still lets through at most the target share.
TEST(CalibratePipelineTest, PositionsComeFromReferenceImagesOrAreGiven) {
  auto p = MakePipeline();
  const Tensor val = Images(40, 1), ref = Images(60, 2);
  CalibrationOptions o{.rule = ScoreRule::kPositionalMaxNorm, .target_fpr = 0.05};
  EXPECT_THAT(CalibratePipeline(*p, val, std::vector<int>{1, 3}, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "position statistics"));
  auto fitted = CalibratePipeline(*p, val, std::vector<int>{1, 3}, o, 16, ref);
  ASSERT_OK(fitted);
  ASSERT_EQ(fitted->size(), 2u);
  for (const StepsCalibration& sc : *fitted) {
    const Calibration& c = sc.calibration;
    EXPECT_EQ(c.position.height, kShape.height);
    EXPECT_EQ(c.position.width, kShape.width);
    ASSERT_EQ(c.position.center.size(), static_cast<size_t>(kShape.height * kShape.width));
    EXPECT_GT(c.positional_max.scale, 0);
    Tensor z, maps;
    ASSERT_OK(p->Encode(val, &z));
    ASSERT_OK(p->Invert(sc.steps, z));
    const std::vector<LatentScore> scores = ScoreLatents(z, &maps);
    int above = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      above +=
          CalibratedScore(c, scores[i], maps.sample(static_cast<int64_t>(i))) > c.image_threshold;
    }
    EXPECT_LE(above, 2) << "steps=" << sc.steps;
  }
  EXPECT_NE((*fitted)[0].calibration.position.center, (*fitted)[1].calibration.position.center);
  // Given positions (K = 3 only): K = 3 keeps them, K = 1 has none and fails under the rule.
  std::map<int, PositionStats> given{{3, (*fitted)[1].calibration.position}};
  auto kept = CalibratePipeline(*p, val, std::vector<int>{3}, o, 16, Tensor(), given);
  ASSERT_OK(kept);
  EXPECT_EQ((*kept)[0].calibration.position.center, given[3].center);
  EXPECT_THAT(CalibratePipeline(*p, val, std::vector<int>{1}, o, 16, Tensor(), given),
              StatusIs(absl::StatusCode::kInvalidArgument, "steps=1"));
}

}  // namespace
}  // namespace invad::core
