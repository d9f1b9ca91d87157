#include "core/model/reconstruction.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/fakes.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::LinearDenoiser;
using ::invad::testing::StatusIs;
using ::testing::ElementsAre;

constexpr LatentShape kShape{3, 2, 2};

Tensor RandomLatents(int64_t b, uint64_t seed) {
  Tensor z({b, kShape.channels, kShape.height, kShape.width});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  for (float& v : z.span()) v = n(rng);
  return z;
}

// Predicts the exact noise that separates x from the known clean z0 at x's assumed level t.
class OracleDenoiser : public Denoiser {
 public:
  OracleDenoiser(Tensor z0, const NoiseSchedule& s) : z0_(std::move(z0)), s_(s) {}
  absl::Status Predict(const Tensor& z, absl::Span<const int> ts, Tensor* eps) override {
    eps->Resize(z.shape());
    for (int64_t i = 0; i < z.batch(); ++i) {
      const double ab = s_.alpha_bar(ts[i]);
      for (int64_t j = 0; j < z.sample_numel(); ++j) {
        eps->sample(i)[j] = static_cast<float>((z.sample(i)[j] - std::sqrt(ab) * z0_.sample(i)[j]) /
                                               std::sqrt(1 - ab));
      }
    }
    return absl::OkStatus();
  }
  LatentShape latent_shape() const override { return kShape; }
  std::string Describe() const override { return "oracle"; }

 private:
  Tensor z0_;
  const NoiseSchedule& s_;
};

TEST(ReconstructionTest, CorrectedVariantStartsAtNoiseLevelAndCallsRPlusOneTimes) {
  auto s = NoiseSchedule::Linear();
  LinearDenoiser den(kShape);
  ReconstructionOptions o;
  o.num_points = 10;  // τ = 0, 111, ..., 999
  o.noise_index = 3;
  ASSERT_OK(Reconstruct(den, *s, o, RandomLatents(2, 1), nullptr));
  std::vector<int> first;
  for (const auto& c : den.calls) first.push_back(c[0]);
  EXPECT_THAT(first, ElementsAre(333, 222, 111, 0));
  EXPECT_EQ(o.nfe(), 4);
}

TEST(ReconstructionTest, FaithfulVariantReproducesTheOffByOne) {
  auto s = NoiseSchedule::Linear();
  LinearDenoiser den(kShape);
  ReconstructionOptions o;
  o.noise_index = 3;
  o.faithful = true;
  ASSERT_OK(Reconstruct(den, *s, o, RandomLatents(1, 1), nullptr));
  std::vector<int> first;
  for (const auto& c : den.calls) first.push_back(c[0]);
  EXPECT_THAT(first, ElementsAre(222, 111, 0));
  EXPECT_EQ(o.nfe(), 3);
}

TEST(ReconstructionTest, PerfectDenoiserReconstructsExactlyAtAnyBatchSize) {
  auto s = NoiseSchedule::Linear();
  const Tensor z0 = RandomLatents(5, 9);
  OracleDenoiser den(z0, *s);
  ReconstructionOptions o;
  Tensor maps;
  auto scores = Reconstruct(den, *s, o, z0, &maps);
  ASSERT_OK(scores);
  ASSERT_EQ(scores->size(), 5u);
  EXPECT_EQ(maps.shape(), (Shape{5, 2, 2}));
  for (const auto& sc : *scores) EXPECT_LT(sc.mse, 1e-8);
}

TEST(ReconstructionTest, SharedNoiseMakesSamplesIndependentOfTheirBatch) {
  auto s = NoiseSchedule::Linear();
  const Tensor z0 = RandomLatents(3, 5);
  LinearDenoiser den(kShape);
  ReconstructionOptions o;
  auto batch = Reconstruct(den, *s, o, z0, nullptr);
  ASSERT_OK(batch);
  const Tensor last = z0.Slice(2, 1);
  auto alone = Reconstruct(den, *s, o, last, nullptr);
  ASSERT_OK(alone);
  EXPECT_DOUBLE_EQ((*alone)[0].mse, (*batch)[2].mse);
}

TEST(ReconstructionTest, ValidatesOptions) {
  auto s = NoiseSchedule::Linear();
  LinearDenoiser den(kShape);
  ReconstructionOptions o;
  o.noise_index = 10;
  EXPECT_THAT(Reconstruct(den, *s, o, RandomLatents(1, 1), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, "noise_index"));
  o.noise_index = 0;
  EXPECT_THAT(Reconstruct(den, *s, o, RandomLatents(1, 1), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace invad::core
