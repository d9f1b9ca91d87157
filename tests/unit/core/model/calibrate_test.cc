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

}  // namespace
}  // namespace invad::core
