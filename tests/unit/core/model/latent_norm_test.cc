#include <cmath>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/model/model.h"
#include "tests/testing/fakes.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::StatusIs;

TEST(LatentNormTest, FitsPerChannelAndStandardises) {
  // Channel 0: values 1, 3 (mean 2, std 1); channel 1: constant 5 (std → 1).
  Tensor z({2, 2, 1, 1}, {1, 5, 3, 5});
  const LatentNorm n = FitLatentNorm(z);
  ASSERT_EQ(n.mean.size(), 2u);
  EXPECT_FLOAT_EQ(n.mean[0], 2.0f);
  EXPECT_FLOAT_EQ(n.std[0], 1.0f);
  EXPECT_FLOAT_EQ(n.mean[1], 5.0f);
  EXPECT_FLOAT_EQ(n.std[1], 1.0f);
  ApplyLatentNorm(n, &z);
  EXPECT_THAT(z.span(), ::testing::ElementsAre(-1.0f, 0.0f, 1.0f, 0.0f));
  EXPECT_OK(n.Validate({2, 1, 1}));
  EXPECT_OK(n.Validate({2, 4, 4}));  // per channel, whatever the latent size
  EXPECT_THAT(n.Validate({3, 1, 1}), StatusIs(absl::StatusCode::kInvalidArgument, "3 channels"));
  LatentNorm bad = n;
  bad.std[1] = 0;
  EXPECT_THAT(bad.Validate({2, 1, 1}), StatusIs(absl::StatusCode::kInvalidArgument, "value 1"));
}

TEST(LatentNormTest, PerLocationFitsEveryCellWithAFlooredStd) {
  // One channel, two locations, three samples. Location 0: 0, 2, 4 (mean 2, std √(8/3));
  // location 1: always 10 (its std floors at a tenth of the channel's pooled std).
  Tensor z({3, 1, 1, 2}, {0, 10, 2, 10, 4, 10});
  const LatentNorm channel = FitLatentNorm(z);
  const LatentNorm n = FitLatentNorm(z, /*per_location=*/true);
  ASSERT_EQ(n.mean.size(), 2u);
  EXPECT_TRUE(n.per_location({1, 1, 2}));
  EXPECT_FALSE(channel.per_location({1, 1, 2}));
  EXPECT_FLOAT_EQ(n.mean[0], 2.0f);
  EXPECT_FLOAT_EQ(n.std[0], std::sqrt(8.0f / 3));
  EXPECT_FLOAT_EQ(n.mean[1], 10.0f);
  EXPECT_FLOAT_EQ(n.std[1], kLocationStdFloor * channel.std[0]);
  EXPECT_OK(n.Validate({1, 1, 2}));
  EXPECT_THAT(n.Validate({1, 1, 3}), StatusIs(absl::StatusCode::kInvalidArgument));
  Tensor one({1, 1, 1, 2}, {4, 10.5f});
  ApplyLatentNorm(n, &one);
  EXPECT_FLOAT_EQ(one.data()[0], 2.0f / std::sqrt(8.0f / 3));
  EXPECT_FLOAT_EQ(one.data()[1], 0.5f / (kLocationStdFloor * channel.std[0]));
}

TEST(LatentNormTest, WrappedEncoderStandardisesItsOutput) {
  auto inner = std::make_unique<::invad::testing::PoolingEncoder>(LatentShape{3, 2, 2});
  LatentNorm n{{0.5f, 0.5f, 0.5f}, {2.0f, 2.0f, 2.0f}};
  Tensor images({1, 3, 4, 4});
  for (int64_t i = 0; i < images.numel(); ++i) images.data()[i] = static_cast<float>(i % 7);
  Tensor raw;
  ASSERT_OK(inner->Encode(images, &raw));
  auto wrapped = WithLatentNorm(std::move(inner), n);
  ASSERT_OK(wrapped);
  Tensor z;
  ASSERT_OK((*wrapped)->Encode(images, &z));
  ASSERT_EQ(z.shape(), raw.shape());
  for (int64_t i = 0; i < z.numel(); ++i) EXPECT_FLOAT_EQ(z.data()[i], (raw.data()[i] - 0.5f) / 2);
  EXPECT_THAT(
      WithLatentNorm(std::make_unique<::invad::testing::PoolingEncoder>(LatentShape{2, 2, 2}), n),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace invad::core
