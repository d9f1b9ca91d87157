#include "core/model/inversion.h"

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/diffusion/ddim.h"
#include "tests/testing/fakes.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::LinearDenoiser;
using ::invad::testing::PoolingEncoder;
using ::invad::testing::StatusIs;

// An independent float64 reference: the schedule, the respacing and the DDIM inversion are
// recomputed here from the method's definitions, not taken from the code under test.
namespace reference {
std::vector<double> AlphaBars() {
  std::vector<double> ab(1000);
  double prod = 1.0;
  for (int i = 0; i < 1000; ++i) {
    const double beta = i == 999 ? 0.02 : 1e-4 + i * ((0.02 - 1e-4) / 999.0);
    prod *= 1.0 - beta;
    ab[i] = prod;
  }
  return ab;
}
std::vector<int> Taus(int k) {
  if (k == 1) return {0};
  std::vector<int> t;
  double cur = 0.0;
  for (int i = 0; i < k; ++i) {
    t.push_back(static_cast<int>(std::nearbyint(cur)));
    cur += 999.0 / (k - 1);
  }
  return t;
}
// With ε̂ = a(t)·z, each step multiplies z by √ᾱ_next·(√(1/ᾱ) − √(1/ᾱ−1)·a) + √(1−ᾱ_next)·a.
double LinearInversionGain(int k) {
  const std::vector<double> ab = AlphaBars();
  const std::vector<int> taus = Taus(k);
  double g = 1.0;
  for (int i = 0; i < k; ++i) {
    const double a = LinearDenoiser::DefaultA(taus[i]);
    const double cur = ab[taus[i]];
    const double next = i + 1 < k ? ab[taus[i + 1]] : 0.0;
    g *= std::sqrt(next) * (std::sqrt(1 / cur) - std::sqrt(1 / cur - 1) * a) +
         std::sqrt(1 - next) * a;
  }
  return g;
}
}  // namespace reference

constexpr LatentShape kShape{4, 3, 3};

Tensor RandomLatents(int64_t b, uint64_t seed) {
  Tensor z({b, kShape.channels, kShape.height, kShape.width});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  for (float& v : z.span()) v = n(rng);
  return z;
}

std::unique_ptr<Pipeline> MakePipeline(LinearDenoiser** denoiser_out = nullptr) {
  auto den = std::make_unique<LinearDenoiser>(kShape);
  if (denoiser_out) *denoiser_out = den.get();
  auto schedule = NoiseSchedule::Linear();
  auto p = Pipeline::Create(std::make_unique<PoolingEncoder>(kShape), std::move(den), *schedule,
                            {1, 2, 3, 4, 5, 10, 21, 50});
  EXPECT_OK(p);
  return std::move(*p);
}

class InversionClosedFormTest : public ::testing::TestWithParam<int> {};

TEST_P(InversionClosedFormTest, MatchesFloat64Reference) {
  const int k = GetParam();
  LinearDenoiser* den = nullptr;
  auto p = MakePipeline(&den);
  const Tensor z0 = RandomLatents(2, 7);
  Tensor z = z0;
  ASSERT_OK(p->Invert(k, z));
  ASSERT_EQ(static_cast<int>(den->calls.size()), k);  // exactly K model calls
  for (int i = 0; i < k; ++i) EXPECT_EQ(den->calls[i][0], reference::Taus(k)[i]);
  const double gain = reference::LinearInversionGain(k);
  for (int64_t j = 0; j < z.numel(); ++j) {
    const double want = gain * z0.data()[j];
    ASSERT_LE(std::fabs(z.data()[j] - want), 1e-5 * std::fabs(want) + 1e-30) << "element " << j;
  }
}

INSTANTIATE_TEST_SUITE_P(K, InversionClosedFormTest, ::testing::Values(1, 2, 3, 4, 5, 10, 21, 50));

TEST(InversionTest, KOneGivesNoisePredictionAtZero) {
  auto p = MakePipeline();
  const Tensor z0 = RandomLatents(1, 3);
  Tensor z = z0;
  ASSERT_OK(p->Invert(1, z));
  // ᾱ_next = 0: z_T = ε'(z0, 0) = a(0)·z0.
  for (int64_t j = 0; j < z.numel(); ++j) {
    EXPECT_NEAR(z.data()[j], LinearDenoiser::DefaultA(0) * z0.data()[j],
                1e-6 * std::fabs(z0.data()[j]) + 1e-7);
  }
}

TEST(InversionTest, RejectsStepsOutsideAllowedList) {
  auto p = MakePipeline();
  Tensor z = RandomLatents(1, 1);
  EXPECT_THAT(p->Invert(7, z), StatusIs(absl::StatusCode::kInvalidArgument, "allowed"));
}

// The batcher mixes samples at different steps of different plans in one call.
TEST(InversionTest, MixedPerSampleStepsEqualSamplesSteppedAlone) {
  auto p = MakePipeline();
  const Tensor batch0 = RandomLatents(3, 11);
  std::vector<DdimCoefficients> coefs = {(**p->Plan(3))[0], (**p->Plan(5))[2], (**p->Plan(1))[0]};
  Tensor mixed = batch0, eps;
  ASSERT_OK(p->InvertStep(coefs, mixed, &eps));
  for (int64_t i = 0; i < 3; ++i) {
    Tensor alone = batch0.Slice(i, 1);
    ASSERT_OK(p->InvertStep({&coefs[i], 1}, alone, &eps));
    for (int64_t j = 0; j < alone.numel(); ++j) {
      ASSERT_EQ(alone.data()[j], mixed.sample(i)[j]) << "sample " << i << " element " << j;
    }
  }
}

TEST(InversionTest, EncoderAndDenoiserMustAgreeOnLatentShape) {
  auto schedule = NoiseSchedule::Linear();
  auto p = Pipeline::Create(std::make_unique<PoolingEncoder>(LatentShape{4, 2, 2}),
                            std::make_unique<LinearDenoiser>(kShape), *schedule, {3});
  EXPECT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument, "latent"));
}

TEST(DdimStepTest, RejectsMismatchedBatch) {
  Tensor z = RandomLatents(2, 1), eps = RandomLatents(2, 2);
  auto s = NoiseSchedule::Linear();
  std::vector<DdimCoefficients> one = {(*InversionPlan(*s, 3))[0]};
  EXPECT_THAT(DdimStep(one, eps, z), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace invad::core
