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
  EXPECT_OK(n.Validate(2));
  EXPECT_THAT(n.Validate(3), StatusIs(absl::StatusCode::kInvalidArgument, "3 channels"));
  LatentNorm bad = n;
  bad.std[1] = 0;
  EXPECT_THAT(bad.Validate(2), StatusIs(absl::StatusCode::kInvalidArgument, "channel 1"));
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
