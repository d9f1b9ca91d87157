#include "core/train/denoiser_trainer.h"

#include <cmath>
#include <numeric>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/runtime/runtime.h"
#include "core/train/encoder_trainer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_models.h"

namespace invad::core {
namespace {

using ::invad::testing::StatusIs;

TEST(LearningRateTest, WarmsUpLinearlyThenCosineDecays) {
  DenoiserTrainOptions o;
  o.steps = 110;
  o.warmup_steps = 10;
  o.peak_lr = 1e-3;
  o.min_lr = 1e-6;
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 1e-6);  // the first update uses the floor (the paper's)
  EXPECT_NEAR(LearningRate(o, 5), 1e-6 + (1e-3 - 1e-6) * 0.5, 1e-15);
  EXPECT_DOUBLE_EQ(LearningRate(o, 10), 1e-3);
  EXPECT_NEAR(LearningRate(o, 60), 1e-6 + (1e-3 - 1e-6) * 0.5, 1e-15);  // half-way down the cosine
  EXPECT_NEAR(LearningRate(o, 109), 1e-6, 1e-6);
  o.warmup_steps = -1;
  EXPECT_EQ(o.warmup(), 11);  // 10 % of steps
}

TEST(EmaDecayTest, WarmsUpToTheCeiling) {
  EXPECT_DOUBLE_EQ(EmaDecay(0.999, 0), 0.1);
  EXPECT_DOUBLE_EQ(EmaDecay(0.999, 10), 11.0 / 20.0);
  EXPECT_DOUBLE_EQ(EmaDecay(0.999, 100000), 0.999);
}

TEST(DenoiserTrainOptionsTest, ValidateNamesTheField) {
  DenoiserTrainOptions o;
  o.batch_size = 0;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "batch_size"));
  o = {};
  o.min_lr = 1.0;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "min_lr"));
}

// Latents from a low-dimensional family (two fixed patterns mixed by a random coefficient, plus
// small noise), so a denoiser can learn them.
Tensor Latents(int n, uint64_t seed) {
  Tensor z({n, 8, 4, 4});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int i = 0; i < n; ++i) {
    const float a = nd(rng);
    for (int j = 0; j < 128; ++j) {
      const float p1 = std::sin(0.7f * j), p2 = (j % 3) - 1.0f;
      z.sample(i)[j] = 1.5f * p1 + a * p2 + 0.05f * nd(rng);
    }
  }
  return z;
}

double Mean(const std::vector<double>& v, size_t from, size_t to) {
  return std::accumulate(v.begin() + from, v.begin() + to, 0.0) / static_cast<double>(to - from);
}

TEST(TrainDenoiserTest, LossFallsByHalfAndTheTrainedModelPredictsNoise) {
  ASSERT_OK(ConfigureTorchThreads(1));
  const DitConfig cfg = ::invad::testing::TinyDit();
  auto schedule = NoiseSchedule::Linear();
  DenoiserTrainOptions o;
  o.steps = 300;
  o.batch_size = 32;
  o.peak_lr = 3e-3;
  int calls = 0;
  auto r = TrainDenoiser(cfg, InitDitWeights(cfg, 1), Latents(64, 2), *schedule, o,
                         [&](const TrainProgress& p) { calls += p.step > 0; });
  ASSERT_OK(r);
  EXPECT_EQ(calls, 300);
  ASSERT_EQ(r->losses.size(), 300u);
  // The zero-initialised output predicts 0, so the first losses are E[ε²] ≈ 1.
  const double first = Mean(r->losses, 0, 20), last = Mean(r->losses, 280, 300);
  RecordProperty("first_20_loss", std::to_string(first));
  RecordProperty("last_20_loss", std::to_string(last));
  EXPECT_GT(first, 0.8);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  // The shipped EMA weights load into the inference DiT and beat the untrained one on held-out
  // latents at a mid timestep.
  auto trained = CreateNativeDit(cfg, r->ema_weights, {});
  auto untrained = CreateNativeDit(cfg, InitDitWeights(cfg, 1), {});
  ASSERT_OK(trained);
  ASSERT_OK(untrained);
  const Tensor z0 = Latents(16, 99);
  Tensor noise({16, 8, 4, 4}), xt({16, 8, 4, 4});
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const double ab = schedule->alpha_bar(300);
  for (int64_t j = 0; j < noise.numel(); ++j) {
    noise.data()[j] = nd(rng);
    xt.data()[j] =
        static_cast<float>(std::sqrt(ab) * z0.data()[j] + std::sqrt(1 - ab) * noise.data()[j]);
  }
  const std::vector<int> ts(16, 300);
  auto mse = [&](Denoiser& d) {
    Tensor eps;
    EXPECT_OK(d.Predict(xt, ts, &eps));
    double s = 0;
    for (int64_t j = 0; j < eps.numel(); ++j) s += std::pow(eps.data()[j] - noise.data()[j], 2);
    return s / eps.numel();
  };
  EXPECT_LT(mse(**trained), 0.5 * mse(**untrained));
}

TEST(TrainDenoiserTest, SameSeedAndThreadsGiveBitIdenticalWeights) {
  ASSERT_OK(ConfigureTorchThreads(1));
  const DitConfig cfg = ::invad::testing::TinyDit();
  auto schedule = NoiseSchedule::Linear();
  DenoiserTrainOptions o;
  o.steps = 20;
  o.batch_size = 8;
  auto a = TrainDenoiser(cfg, InitDitWeights(cfg, 1), Latents(16, 2), *schedule, o);
  auto b = TrainDenoiser(cfg, InitDitWeights(cfg, 1), Latents(16, 2), *schedule, o);
  o.seed = 43;
  auto c = TrainDenoiser(cfg, InitDitWeights(cfg, 1), Latents(16, 2), *schedule, o);
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_EQ(a->ema_weights.at("blocks.1.mlp.fc2.weight").bytes,
            b->ema_weights.at("blocks.1.mlp.fc2.weight").bytes);
  EXPECT_EQ(a->losses, b->losses);
  EXPECT_NE(a->losses, c->losses);
}

TEST(TrainDenoiserTest, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
  ASSERT_OK(ConfigureTorchThreads(1));
  const DitConfig cfg = ::invad::testing::TinyDit();
  auto schedule = NoiseSchedule::Linear();
  DenoiserTrainOptions o;
  o.steps = 24;
  o.batch_size = 8;
  const Tensor data = Latents(16, 2);
  auto whole = TrainDenoiser(cfg, InitDitWeights(cfg, 1), data, *schedule, o);
  ASSERT_OK(whole);
  std::vector<DenoiserTrainState> saved;
  DenoiserCheckpointing ck;
  ck.every_steps = 5;
  ck.stop_after = 13;
  ck.save = [&](const DenoiserTrainState& st) {
    saved.push_back(st);
    return absl::OkStatus();
  };
  auto part = TrainDenoiser(cfg, InitDitWeights(cfg, 1), data, *schedule, o, {}, nullptr, ck);
  EXPECT_THAT(part, StatusIs(absl::StatusCode::kAborted, "stopped after step 13"));
  ASSERT_EQ(saved.size(), 3u);  // steps 5, 10 and the stop at 13
  EXPECT_EQ(saved.back().step, 13);
  ASSERT_EQ(saved.back().losses.size(), 13u);
  auto resumed =
      TrainDenoiser(cfg, InitDitWeights(cfg, 1), data, *schedule, o, {}, &saved.back(), {});
  ASSERT_OK(resumed);
  for (const auto& [name, t] : whole->ema_weights) {
    EXPECT_EQ(t.bytes, resumed->ema_weights.at(name).bytes) << name;
    EXPECT_EQ(whole->weights.at(name).bytes, resumed->weights.at(name).bytes) << name;
  }
  EXPECT_EQ(whole->losses, resumed->losses);
  // A checkpoint beyond the run, or with missing tensors, is refused.
  DenoiserTrainState bad = saved.back();
  bad.step = 99;
  EXPECT_THAT(TrainDenoiser(cfg, InitDitWeights(cfg, 1), data, *schedule, o, {}, &bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "beyond"));
  bad = saved.back();
  bad.adam_v.clear();
  EXPECT_THAT(TrainDenoiser(cfg, InitDitWeights(cfg, 1), data, *schedule, o, {}, &bad),
              StatusIs(absl::StatusCode::kInternal, "second moment"));
}

TEST(TrainConvAutoencoderTest, ReconstructionLossFallsAndTheEncoderChanges) {
  ASSERT_OK(ConfigureTorchThreads(1));
  ConvEncoderConfig cfg;
  cfg.input_size = 32;
  cfg.stage_channels = {8, 16};
  cfg.output_stages = {0, 1};
  cfg.latent_size = 8;
  // Smooth random images: a few low-frequency waves.
  Tensor images({24, 3, 32, 32});
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(0.f, 6.28f);
  for (int i = 0; i < 24; ++i) {
    const float a = u(rng), b = u(rng);
    for (int c = 0; c < 3; ++c) {
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x)
          images.sample(i)[(c * 32 + y) * 32 + x] = std::sin(0.3f * x + a) * std::cos(0.2f * y + b);
      }
    }
  }
  const NamedTensors init = InitConvEncoderWeights(cfg, 1);
  AutoencoderTrainOptions o;
  o.steps = 150;
  o.decoder_width = 16;
  auto r = TrainConvAutoencoder(cfg, init, images, o);
  ASSERT_OK(r);
  ASSERT_EQ(r->losses.size(), 150u);
  const double first = Mean(r->losses, 0, 10), last = Mean(r->losses, 140, 150);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  EXPECT_NE(r->encoder_weights.at("stages.0.conv1.weight").bytes,
            init.at("stages.0.conv1.weight").bytes);
  // The trained weights load into the inference encoder.
  EXPECT_OK(CreateNativeConvEncoder(cfg, r->encoder_weights, {}).status());
  auto again = TrainConvAutoencoder(cfg, init, images, o);
  ASSERT_OK(again);
  EXPECT_EQ(again->losses, r->losses);  // deterministic
  cfg.input_size = 48;                  // not latent · 2^k
  EXPECT_THAT(TrainConvAutoencoder(cfg, init, Tensor({1, 3, 48, 48}), o),
              StatusIs(absl::StatusCode::kInvalidArgument, "power of two"));
}

TEST(TrainDenoiserTest, RejectsLatentsOfTheWrongShape) {
  const DitConfig cfg = ::invad::testing::TinyDit();
  auto schedule = NoiseSchedule::Linear();
  EXPECT_THAT(TrainDenoiser(cfg, InitDitWeights(cfg, 1), Tensor({4, 7, 4, 4}), *schedule, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "training latents"));
}

}  // namespace
}  // namespace invad::core
