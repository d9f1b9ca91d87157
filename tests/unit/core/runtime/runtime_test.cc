// Runtime tests: TorchScript models built in the test (Module::define + save, no committed
// weights), native DiT and conv encoder, device and precision checks. This TU includes LibTorch.
#include "core/runtime/runtime.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <torch/script.h>
#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/diffusion/schedule.h"
#include "core/model/inversion.h"
#include "core/runtime/internal/torch_util.h"
#include "core/runtime/native.h"
#include "core/scoring/scoring.h"
#include "tests/testing/fakes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_models.h"

namespace invad::core {
namespace {

using ::invad::testing::LinearDenoiser;
using ::invad::testing::PoolingEncoder;
using ::invad::testing::StatusIs;
using ::invad::testing::TinyDit;
namespace fs = std::filesystem;

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("invad_runtime_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Save(const std::string& name, const std::string& source) {
    torch::jit::Module m(name);
    m.define(source);
    const std::string path = (dir_ / (name + ".pt")).string();
    m.save(path);
    return path;
  }
  fs::path dir_;
};

Tensor Random(Shape shape, uint64_t seed, float scale = 1.f) {
  Tensor t(std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, scale);
  for (float& v : t.span()) v = n(rng);
  return t;
}

double MaxRelError(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a.data()[i] - b.data()[i])));
    den = std::max(den, static_cast<double>(std::fabs(b.data()[i])));
  }
  return num / std::max(den, 1e-30);
}

constexpr LatentShape kLatent{4, 4, 4};

TEST_F(RuntimeTest, TorchScriptDenoiserGetsPerSampleTimesteps) {
  const std::string path = Save("den", R"(
def forward(self, x, t):
    return x * 0.5 + t.float().view(-1, 1, 1, 1) * 0.001
)");
  auto den = LoadTorchScriptDenoiser(path, kLatent, {});
  ASSERT_OK(den);
  Tensor z = Random({2, 4, 4, 4}, 1), eps;
  const int ts[] = {0, 500};
  ASSERT_OK((*den)->Predict(z, ts, &eps));
  ASSERT_EQ(eps.shape(), z.shape());
  EXPECT_FLOAT_EQ(eps.sample(0)[5], z.sample(0)[5] * 0.5f);
  EXPECT_FLOAT_EQ(eps.sample(1)[5], z.sample(1)[5] * 0.5f + 0.5f);
}

// The same closed-form linear denoiser through TorchScript and through the core fake: the whole
// K = 3 inversion must agree (the runtime adds no arithmetic of its own).
TEST_F(RuntimeTest, TorchScriptInversionMatchesCoreFake) {
  const std::string path = Save("lin", R"(
def forward(self, x, t):
    return x * (0.1 + t.float() / 2000.0).view(-1, 1, 1, 1)
)");
  auto schedule = NoiseSchedule::Linear();
  auto den = LoadTorchScriptDenoiser(path, kLatent, {});
  ASSERT_OK(den);
  auto p_ts =
      Pipeline::Create(std::make_unique<PoolingEncoder>(kLatent), std::move(*den), *schedule, {3});
  auto p_fake = Pipeline::Create(std::make_unique<PoolingEncoder>(kLatent),
                                 std::make_unique<LinearDenoiser>(kLatent), *schedule, {3});
  ASSERT_OK(p_ts);
  ASSERT_OK(p_fake);
  Tensor a = Random({3, 4, 4, 4}, 2), b = a;
  ASSERT_OK((*p_ts)->Invert(3, a));
  ASSERT_OK((*p_fake)->Invert(3, b));
  EXPECT_LE(MaxRelError(a, b), 1e-6);
}

TEST_F(RuntimeTest, TorchScriptEncoderShapeIsChecked) {
  const std::string path = Save("enc", R"(
def forward(self, x):
    return torch.adaptive_avg_pool2d(x, [4, 4]).repeat(1, 2, 1, 1)
)");
  EncoderIo io{2, 16, 16, {4, 4, 4}};
  auto enc = LoadTorchScriptEncoder(path, io, {});
  ASSERT_OK(enc);
  Tensor images = Random({2, 2, 16, 16}, 3), z0;
  ASSERT_OK((*enc)->Encode(images, &z0));
  EXPECT_EQ(z0.shape(), (Shape{2, 4, 4, 4}));
  // Wrong input shape: InvalidArgument before LibTorch sees it.
  EXPECT_THAT((*enc)->Encode(Random({1, 3, 16, 16}, 1), &z0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A manifest that disagrees with what the module returns: a clear Internal error, not a crash.
  EncoderIo wrong = io;
  wrong.latent = {8, 4, 4};
  auto enc2 = LoadTorchScriptEncoder(path, wrong, {});
  ASSERT_OK(enc2);
  EXPECT_THAT((*enc2)->Encode(images, &z0), StatusIs(absl::StatusCode::kInternal, "declares"));
}

// bf16 for TorchScript modules runs under LibTorch's CPU autocast: the matrix product in bf16, the
// result close to fp32 but not equal.
TEST_F(RuntimeTest, TorchScriptBf16RunsUnderAutocast) {
  const std::string path = Save("mm", R"(
def forward(self, x, t):
    w = torch.ones(4, 4) * 0.37 + torch.eye(4) * 0.011
    y = torch.matmul(x.permute(0, 2, 3, 1), w).permute(0, 3, 1, 2)
    return y.float()
)");
  auto f32 = LoadTorchScriptDenoiser(path, kLatent, {"cpu", Precision::kFp32});
  auto b16 = LoadTorchScriptDenoiser(path, kLatent, {"cpu", Precision::kBf16});
  ASSERT_OK(f32);
  ASSERT_OK(b16);
  Tensor z = Random({2, 4, 4, 4}, 8), e32, e16;
  const int ts[] = {0, 1};
  ASSERT_OK((*f32)->Predict(z, ts, &e32));
  ASSERT_OK((*b16)->Predict(z, ts, &e16));
  const double err = MaxRelError(e16, e32);
  EXPECT_GT(err, 1e-5);  // really computed in bf16
  EXPECT_LT(err, 2e-2);
  // Autocast is scoped to the call: fp32 afterwards is exact again.
  Tensor again;
  ASSERT_OK((*f32)->Predict(z, ts, &again));
  EXPECT_EQ(0, std::memcmp(again.data(), e32.data(), e32.numel() * sizeof(float)));
}

TEST_F(RuntimeTest, ForwardFailureBecomesInternalStatus) {
  const std::string path = Save("bad", R"(
def forward(self, x, t):
    return x.view(-1, 7)
)");
  auto den = LoadTorchScriptDenoiser(path, kLatent, {});
  ASSERT_OK(den);
  Tensor eps;
  const int ts[] = {0};
  EXPECT_THAT((*den)->Predict(Random({1, 4, 4, 4}, 1), ts, &eps),
              StatusIs(absl::StatusCode::kInternal));
}

TEST_F(RuntimeTest, CorruptOrMissingTorchScriptIsInvalidArgument) {
  const std::string path = (dir_ / "corrupt.pt").string();
  std::ofstream(path) << "this is not a zip archive";
  EXPECT_THAT(LoadTorchScriptDenoiser(path, kLatent, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "corrupt.pt"));
  EXPECT_THAT(LoadTorchScriptDenoiser((dir_ / "missing.pt").string(), kLatent, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RuntimeOptionsTest, DeviceAndPrecisionAreChecked) {
  EXPECT_OK(CheckRuntimeOptions({"cpu", Precision::kFp32}));
  EXPECT_OK(CheckRuntimeOptions({"cpu", Precision::kBf16}));
  EXPECT_THAT(CheckRuntimeOptions({"cpu", Precision::kFp16}),
              StatusIs(absl::StatusCode::kInvalidArgument, "fp16"));
  EXPECT_THAT(CheckRuntimeOptions({"tpu:0", Precision::kFp32}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  if (!CudaAvailable()) {
    EXPECT_THAT(CheckRuntimeOptions({"cuda:0", Precision::kBf16}),
                StatusIs(absl::StatusCode::kFailedPrecondition, "CUDA"));
  }
  EXPECT_THAT(ParsePrecision("int8"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(*ParsePrecision("bf16"), Precision::kBf16);
}

TEST(HostAllocatorTest, CpuModelsGetOrdinaryMemoryCudaModelsPinnedOrAClearError) {
  absl::StatusOr<HostAllocator*> cpu = HostAllocatorFor({.device = "cpu"});
  ASSERT_OK(cpu.status());
  EXPECT_EQ(*cpu, &CpuHostAllocator());
  absl::StatusOr<HostAllocator*> cuda = HostAllocatorFor({.device = "cuda:0"});
  if (!CudaAvailable()) {
    EXPECT_THAT(cuda, StatusIs(absl::StatusCode::kFailedPrecondition, "no CUDA"));
    return;
  }
  ASSERT_OK(cuda.status());
  EXPECT_EQ((*cuda)->name(), "cuda-pinned");
  std::shared_ptr<void> p = (*cuda)->Allocate(1 << 20);
  ASSERT_NE(p, nullptr);
  std::memset(p.get(), 1, 1 << 20);
  EXPECT_THAT(HostAllocatorFor({.device = "gpu"}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HostAllocatorTest, PinnedMemoryOnCpuIsAClearErrorNeverASilentFallback) {
  EXPECT_THAT(HostAllocatorFor({.device = "cpu"}, HostMemory::kPinned),
              StatusIs(absl::StatusCode::kInvalidArgument, "pinned host memory needs a CUDA"));
  absl::StatusOr<HostAllocator*> pageable =
      HostAllocatorFor({.device = "cpu"}, HostMemory::kPageable);
  ASSERT_OK(pageable.status());
  EXPECT_EQ((*pageable)->name(), "cpu");
  EXPECT_EQ(*ParseHostMemory("pinned"), HostMemory::kPinned);
  EXPECT_EQ(*ParseHostMemory("auto"), HostMemory::kAuto);
  EXPECT_THAT(ParseHostMemory("locked"), StatusIs(absl::StatusCode::kInvalidArgument, "pinned"));
  if (CudaAvailable()) {
    absl::StatusOr<HostAllocator*> pinned =
        HostAllocatorFor({.device = "cuda:0"}, HostMemory::kPinned);
    ASSERT_OK(pinned.status());
    EXPECT_EQ((*pinned)->name(), "cuda-pinned");
    absl::StatusOr<HostAllocator*> plain =
        HostAllocatorFor({.device = "cuda:0"}, HostMemory::kPageable);
    ASSERT_OK(plain.status());
    EXPECT_EQ((*plain)->name(), "cpu");
  }
}

// The device-agnostic execution path (c10::Stream, StreamGuard, to(device, non_blocking)) runs on
// CPU here and on cuda:N unchanged.
TEST(DeviceContextTest, StreamsUploadsAndDownloadsWorkOnCpu) {
  c10::InferenceMode mode;
  internal::DeviceContext ctx(torch::Device("cpu"));
  EXPECT_FALSE(ctx.is_cuda());
  EXPECT_EQ(ctx.stream().device_type(), c10::DeviceType::CPU);
  {
    c10::StreamGuard guard(ctx.stream());  // a no-op guard on CPU, but it must work
    const Tensor host = Random({2, 3, 4, 4}, 7);
    torch::Tensor x = ctx.Upload(host);
    EXPECT_EQ(x.data_ptr<float>(), host.data());  // no copy on the CPU
    EXPECT_EQ(x.sizes(), torch::IntArrayRef({2, 3, 4, 4}));
    Tensor back;
    ctx.Download(x * 2.0f, &back);
    ctx.Synchronize();
    ASSERT_EQ(back.shape(), host.shape());
    for (int64_t i = 0; i < back.numel(); ++i) ASSERT_EQ(back.data()[i], 2.0f * host.data()[i]);
  }
  if (CudaAvailable()) {
    internal::DeviceContext gpu(torch::Device("cuda:0"));
    const Tensor host = Random({4, 8, 4, 4}, 8);
    Tensor back;
    gpu.Download(gpu.Upload(host), &back);
    EXPECT_EQ(MaxRelError(back, host), 0.0);
  }
}

TEST(NativeDitTest, DeviceResidentInversionMatchesTheHostStepLoop) {
  const DitConfig cfg = TinyDit();
  const NamedTensors w = InitDitWeights(cfg, 9, /*zero_init_output=*/false);
  auto schedule = NoiseSchedule::Linear();
  ASSERT_OK(schedule.status());
  absl::StatusOr<std::vector<DdimCoefficients>> plan = InversionPlan(*schedule, 3);
  ASSERT_OK(plan.status());
  const Tensor z0 = Random({3, 8, 4, 4}, 10);
  Tensor zt[2];
  for (Precision p : {Precision::kFp32, Precision::kBf16}) {
    auto den = CreateNativeDit(cfg, w, {"cpu", p});
    ASSERT_OK(den);
    Tensor fused = z0, loop = z0;
    ASSERT_OK((*den)->Invert(*plan, fused));           // z on the device for all K steps
    ASSERT_OK((*den)->Denoiser::Invert(*plan, loop));  // Predict + host DdimStep per step
    EXPECT_LE(MaxRelError(fused, loop), 1e-5) << PrecisionName(p);
    EXPECT_GT(MaxRelError(fused, z0), 1e-2);  // it moved
    zt[p == Precision::kBf16] = fused;
  }
  // bf16 GEMMs with fp32 update arithmetic: close to fp32, but really in bf16.
  EXPECT_LT(MaxRelError(zt[1], zt[0]), 5e-2);
  EXPECT_GT(MaxRelError(zt[1], zt[0]), 0.0);

  auto den = CreateNativeDit(cfg, w, {});
  ASSERT_OK(den);
  std::vector<DdimCoefficients> no_noise = *plan;
  no_noise[1] = DdimCoefficients::Make(0, 1.0, 1.0);
  Tensor z = z0;
  EXPECT_THAT((*den)->Invert(no_noise, z),
              StatusIs(absl::StatusCode::kInvalidArgument, "no noise"));
  Tensor wrong = Random({1, 4, 4, 4}, 11);
  EXPECT_THAT((*den)->Invert(*plan, wrong), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RuntimeThreadsTest, IntraOpThreadsAreSetExplicitly) {
  ASSERT_OK(ConfigureTorchThreads(2));
  EXPECT_EQ(TorchIntraOpThreads(), 2);
  ASSERT_OK(ConfigureTorchThreads(1));
  EXPECT_EQ(TorchIntraOpThreads(), 1);
}

TEST(NativeDitTest, ZeroInitialisedOutputPredictsZero) {
  const DitConfig cfg = TinyDit();
  auto den = CreateNativeDit(cfg, InitDitWeights(cfg, 1), {});
  ASSERT_OK(den);
  Tensor eps;
  const int ts[] = {0, 999};
  ASSERT_OK((*den)->Predict(Random({2, 8, 4, 4}, 1), ts, &eps));
  for (float v : eps.span()) ASSERT_EQ(v, 0.f);
}

TEST(NativeDitTest, BatchedEqualsAloneAndDependsOnTimestep) {
  const DitConfig cfg = TinyDit();
  auto den = CreateNativeDit(cfg, InitDitWeights(cfg, 2, /*zero_init_output=*/false), {});
  ASSERT_OK(den);
  Tensor z = Random({2, 8, 4, 4}, 3), both, one;
  const int ts[] = {0, 999};
  ASSERT_OK((*den)->Predict(z, ts, &both));
  const Tensor z1 = z.Slice(1, 1);
  const int t1[] = {999};
  ASSERT_OK((*den)->Predict(z1, t1, &one));
  for (int64_t j = 0; j < one.numel(); ++j) ASSERT_NEAR(one.data()[j], both.sample(1)[j], 1e-5);
  const int t0[] = {0};
  Tensor at0;
  ASSERT_OK((*den)->Predict(z1, t0, &at0));
  EXPECT_GT(MaxRelError(at0, one), 1e-5);  // timestep reaches the output (small: N(0, 0.02) t-MLP)
}

TEST(NativeDitTest, Bf16StaysWithinTwoPercentOfFp32) {
  const DitConfig cfg = TinyDit();
  const NamedTensors w = InitDitWeights(cfg, 4, false);
  auto f32 = CreateNativeDit(cfg, w, {"cpu", Precision::kFp32});
  auto b16 = CreateNativeDit(cfg, w, {"cpu", Precision::kBf16});
  ASSERT_OK(f32);
  ASSERT_OK(b16);
  Tensor z = Random({2, 8, 4, 4}, 5), e32, e16;
  const int ts[] = {0, 500};
  ASSERT_OK((*f32)->Predict(z, ts, &e32));
  ASSERT_OK((*b16)->Predict(z, ts, &e16));
  const double err = MaxRelError(e16, e32);
  EXPECT_LT(err, 2e-2);
  EXPECT_GT(err, 0.0);  // it really ran in bf16
}

TEST(NativeDitTest, MismatchedWeightsNameTheProblem) {
  const DitConfig cfg = TinyDit();
  NamedTensors w = InitDitWeights(cfg, 1);
  NamedTensors missing = w;
  missing.erase("blocks.1.mlp.fc2.weight");
  EXPECT_THAT(CreateNativeDit(cfg, missing, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "blocks.1.mlp.fc2.weight"));
  DitConfig deeper = cfg;
  deeper.depth = 1;  // block 1's weights are now unexpected
  EXPECT_THAT(CreateNativeDit(deeper, w, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unexpected"));
  DitConfig wider = cfg;
  wider.hidden_size = 64;
  EXPECT_THAT(CreateNativeDit(wider, w, {}), StatusIs(absl::StatusCode::kInvalidArgument, "shape"));
  DitConfig bad = cfg;
  bad.num_heads = 5;
  EXPECT_THAT(CreateNativeDit(bad, w, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "num_heads"));
}

TEST(NativeDitTest, PaperGigantParameterCount) {
  DitConfig gigant;
  gigant.hidden_size = 2048;
  gigant.depth = 16;
  gigant.num_heads = 8;
  // method.md §3.2: 1,223,827,728 including 589,824 unused (x_embedder_linear, y/cls embeddings).
  EXPECT_EQ(gigant.NumParameters(), 1223827728 - 559104 - 30720 - 30720);
}

TEST(NativeConvEncoderTest, OutputsConcatenatedStagesAtLatentSize) {
  ConvEncoderConfig cfg;
  cfg.input_size = 64;
  cfg.stage_channels = {4, 8, 16, 32};
  cfg.output_stages = {1, 2};
  cfg.latent_size = 8;
  EXPECT_EQ(cfg.latent(), (LatentShape{24, 8, 8}));
  const NamedTensors w = InitConvEncoderWeights(cfg, 1);
  EXPECT_EQ(w.count("stages.3.conv1.weight"), 0u);  // truncated after the last used stage
  auto enc = CreateNativeConvEncoder(cfg, w, {});
  ASSERT_OK(enc);
  Tensor z0;
  ASSERT_OK((*enc)->Encode(Random({2, 3, 64, 64}, 1), &z0));
  EXPECT_EQ(z0.shape(), (Shape{2, 24, 8, 8}));
  cfg.output_stages = {1};
  EXPECT_THAT(CreateNativeConvEncoder(cfg, w, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unexpected"));
}

// A grey filter bank with one scale (σ = 2 px) and no optional channels: what the channel tests
// switch their channels on in.
FilterBankConfig GreyBank(int input_size, int latent_size) {
  FilterBankConfig cfg;
  cfg.input_channels = 1;
  cfg.input_size = input_size;
  cfg.latent_size = latent_size;
  cfg.scales = {2.0f};
  return cfg;
}

TEST(FilterBankEncoderTest, RespondsToAnEdgeWhereItIs) {
  FilterBankConfig cfg;
  cfg.input_channels = 1;
  cfg.input_size = 32;
  cfg.latent_size = 4;
  cfg.scales = {1.0f, 2.0f};
  EXPECT_EQ(cfg.latent(), (LatentShape{22, 4, 4}));
  auto enc = CreateFilterBankEncoder(cfg, {});
  ASSERT_OK(enc);
  // A vertical step edge at x = 12 (inside cell column 1 of 4).
  Tensor img({1, 1, 32, 32});
  for (int y = 0; y < 32; ++y) {
    for (int x = 12; x < 32; ++x) img.data()[y * 32 + x] = 1.0f;
  }
  Tensor z;
  ASSERT_OK((*enc)->Encode(img, &z));
  ASSERT_EQ(z.shape(), (Shape{1, 22, 4, 4}));
  auto at = [&](int c, int y, int x) { return z.data()[(c * 4 + y) * 4 + x]; };
  // Channel 0: mean |∂x| at σ = 1; channel 1: mean |∂y|.
  EXPECT_GT(at(0, 2, 1), 0.01f);
  EXPECT_NEAR(at(0, 2, 3), 0.0f, 1e-6f);
  EXPECT_NEAR(at(1, 2, 1), 0.0f, 1e-6f);
  // Cell means (channel 20) and standard deviations (21) of the raw channel.
  EXPECT_NEAR(at(20, 0, 0), 0.0f, 1e-6f);
  EXPECT_NEAR(at(20, 0, 3), 1.0f, 1e-6f);
  EXPECT_NEAR(at(20, 0, 1), 0.5f, 1e-6f);  // half the cell is bright
  EXPECT_NEAR(at(21, 0, 1), 0.5f, 1e-3f);
  cfg.latent_size = 5;  // 32 is not a multiple
  EXPECT_THAT(CreateFilterBankEncoder(cfg, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FilterBankEncoderTest, LaplacianChannelsSeeFineDetailOnlyWhereItIs) {
  FilterBankConfig cfg = GreyBank(32, 4);
  cfg.laplacian = true;
  EXPECT_EQ(cfg.latent(), (LatentShape{14, 4, 4}));
  auto enc = CreateFilterBankEncoder(cfg, {});
  ASSERT_OK(enc);
  // A linear ramp (zero Laplacian) with one bright pixel in cell (2, 1).
  Tensor img({1, 1, 32, 32});
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 32; ++x) img.data()[y * 32 + x] = 0.02f * x + 0.01f * y;
  }
  img.data()[20 * 32 + 11] += 1.0f;
  Tensor z;
  ASSERT_OK((*enc)->Encode(img, &z));
  ASSERT_EQ(z.shape(), (Shape{1, 14, 4, 4}));
  auto at = [&](int c, int y, int x) { return z.data()[(c * 4 + y) * 4 + x]; };
  // Channel 12: mean |Laplacian| per cell; 13: peak of its blurred energy.
  EXPECT_NEAR(at(12, 2, 1), (4.0f + 4 * 1.0f) / 64, 1e-5f);  // −4 at the pixel, +1 at 4 neighbours
  // The energy (16 at the pixel, 1 at each neighbour) blurred with a normalised Gaussian of
  // σ = 1.5 px (taps at offsets −5..5) peaks at the pixel: 16·g0² + 4·g0·g1.
  double sum = 0;
  for (int i = -5; i <= 5; ++i) sum += std::exp(-0.5 * i * i / 2.25);
  const double g0 = 1 / sum, g1 = std::exp(-0.5 / 2.25) / sum;
  EXPECT_NEAR(at(13, 2, 1), 16 * g0 * g0 + 4 * g0 * g1, 1e-5);
  // Interior cells away from it: the ramp has no Laplacian (border cells see the reflection's
  // kink).
  EXPECT_NEAR(at(12, 1, 2), 0.0f, 1e-5f);
  EXPECT_NEAR(at(13, 1, 2), 0.0f, 1e-4f);
}

TEST(FilterBankEncoderTest, PeriodicChannelsCancelThePatternAndKeepTheDefect) {
  FilterBankConfig cfg = GreyBank(64, 8);
  cfg.periodic = true;
  EXPECT_EQ(cfg.latent(), (LatentShape{16, 8, 8}));
  auto enc = CreateFilterBankEncoder(cfg, {});
  ASSERT_OK(enc);
  // A pattern with period 8 px along x and 16 px along y, and a 2×2 bright defect in cell (5, 5).
  Tensor img({1, 1, 64, 64});
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      img.data()[y * 64 + x] =
          static_cast<float>(std::sin(2 * M_PI * x / 8) + 0.5 * std::cos(2 * M_PI * y / 16));
    }
  }
  Tensor clean({1, 1, 64, 64});
  std::copy(img.data(), img.data() + img.numel(), clean.data());
  for (int y = 42; y < 44; ++y) {
    for (int x = 42; x < 44; ++x) img.data()[y * 64 + x] += 1.0f;
  }
  Tensor z, z_clean;
  ASSERT_OK((*enc)->Encode(img, &z));
  ASSERT_OK((*enc)->Encode(clean, &z_clean));
  ASSERT_EQ(z.shape(), (Shape{1, 16, 8, 8}));
  auto at = [](const Tensor& t, int c, int y, int x) { return t.data()[(c * 8 + y) * 8 + x]; };
  // Channels 12..15: mean and max |residual| blurred with σ = 1.5, then σ = 3. The clean pattern
  // cancels everywhere (its gradient channels do not: they see the pattern).
  for (int c = 12; c < 16; ++c) {
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) ASSERT_NEAR(at(z_clean, c, y, x), 0.0f, 1e-4f) << c;
    }
  }
  EXPECT_GT(at(z_clean, 0, 0, 0), 0.1f);
  // The defect's cell holds the peak; a cell one period away sees a quarter of it (the defect is
  // one of its four neighbours); cells beyond a period plus the blur's reach see nothing.
  const float peak = at(z, 13, 5, 5);
  EXPECT_GT(peak, 0.1f);
  EXPECT_LT(at(z, 13, 5, 4), 0.5f * peak);  // 8 px to the left
  EXPECT_GT(at(z, 13, 5, 4), 0.05f * peak);
  EXPECT_NEAR(at(z, 13, 0, 0), 0.0f, 1e-4f);
  EXPECT_NEAR(at(z, 15, 0, 0), 0.0f, 1e-4f);
  EXPECT_GT(at(z, 12, 5, 5), at(z, 12, 0, 0) + 0.01f);
  // Too small an input for the σ = 3 blur: refused by the config, not by LibTorch at Encode.
  cfg.input_size = 8;
  cfg.scales = {1.0f};
  EXPECT_THAT(CreateFilterBankEncoder(cfg, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "periodic needs input_size >= 16"));
  cfg.periodic = false;
  EXPECT_OK(CreateFilterBankEncoder(cfg, {}));
}

// A washer-like part off the image centre: a ring (inner radius 8, outer 22 px, soft 2-px rims)
// with a radial ripple and one-sided shading, optionally with a 3×3 bright defect on it.
Tensor RingImage(bool defect) {
  Tensor img({1, 1, 64, 64});
  const double cx = 35.3, cy = 30.7;
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      const double r = std::hypot(x - cx, y - cy), theta = std::atan2(y - cy, x - cx);
      const double edge = std::clamp((r - 8) / 2, 0.0, 1.0) * std::clamp((22 - r) / 2, 0.0, 1.0);
      img.data()[y * 64 + x] =
          static_cast<float>(edge * (1 + 0.3 * std::cos(2 * M_PI * r / 5) + 0.2 * std::cos(theta)));
    }
  }
  if (defect) {  // cell (3, 5) of the 8×8 latent, 10.8 px from the centre
    for (int y = 25; y < 28; ++y) {
      for (int x = 44; x < 47; ++x) img.data()[y * 64 + x] += 1.0f;
    }
  }
  return img;
}

TEST(FilterBankEncoderTest, RotationalChannelsCancelTheRingAndKeepTheDefect) {
  FilterBankConfig cfg = GreyBank(64, 8);
  cfg.rotational = true;
  EXPECT_EQ(cfg.latent(), (LatentShape{16, 8, 8}));
  auto enc = CreateFilterBankEncoder(cfg, {});
  ASSERT_OK(enc);
  Tensor z, z_clean;
  ASSERT_OK((*enc)->Encode(RingImage(true), &z));
  ASSERT_OK((*enc)->Encode(RingImage(false), &z_clean));
  ASSERT_EQ(z.shape(), (Shape{1, 16, 8, 8}));
  auto at = [](const Tensor& t, int c, int y, int x) { return t.data()[(c * 8 + y) * 8 + x]; };
  // Channels 12..15: mean and max |residual| blurred with σ = 1.5, then σ = 3. The ring, its
  // ripple and its shading cancel about the part's own centre (not the image's) to within
  // interpolation error; the gradient channels see them.
  float clean_peak = 0, gradient_peak = 0;
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      for (int c = 12; c < 16; ++c) clean_peak = std::max(clean_peak, at(z_clean, c, y, x));
      gradient_peak = std::max(gradient_peak, at(z_clean, 0, y, x));
    }
  }
  EXPECT_LT(clean_peak, 0.04f);
  EXPECT_GT(gradient_peak, 0.1f);
  // The defect's cell holds the peak, well above the clean residual and twice any other cell's
  // (its rotated copies, at half weight, land in neighbouring cells).
  const float peak = at(z, 13, 3, 5);
  EXPECT_GT(peak, 0.3f);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      if (y != 3 || x != 5) {
        EXPECT_LT(at(z, 13, y, x), 0.5f * peak) << y << "," << x;
      }
    }
  }
  // The other channels are the same with and without the rotational ones.
  FilterBankConfig plain = cfg;
  plain.rotational = false;
  auto enc_plain = CreateFilterBankEncoder(plain, {});
  ASSERT_OK(enc_plain);
  Tensor z_plain;
  ASSERT_OK((*enc_plain)->Encode(RingImage(true), &z_plain));
  ASSERT_EQ(z_plain.shape(), (Shape{1, 12, 8, 8}));
  for (int64_t i = 0; i < z_plain.numel(); ++i) ASSERT_EQ(z_plain.data()[i], z.data()[i]) << i;

  cfg.input_size = 8;
  cfg.scales = {1.0f};
  EXPECT_THAT(CreateFilterBankEncoder(cfg, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "rotational needs input_size >= 16"));
}

// A washer in the canonical pose (centre (32, 32), rim 8..22 px, ripple) whose rim notch, a pose
// marker, sits at an angle jittered by ±0.05 rad from image to image, plus pixel noise; optionally
// a faint 3×3 spot (+0.12 on a ring of ~0.8) at 19.5 px and 0.4 rad, in the latent cell (4, 6) the
// notch's edge also crosses.
Tensor NotchedWasher(double notch_angle, bool spot, uint64_t seed) {
  Tensor img({1, 1, 64, 64});
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.01);
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      const double r = std::hypot(x - 32.0, y - 32.0), theta = std::atan2(y - 32.0, x - 32.0);
      double v = std::clamp((r - 8) / 1.5, 0.0, 1.0) * std::clamp((22 - r) / 1.5, 0.0, 1.0) *
                 (0.8 + 0.15 * std::cos(2 * M_PI * r / 5));
      if (r > 17 && std::fabs(theta - notch_angle) < 0.12) v = 0;
      img.data()[y * 64 + x] = static_cast<float>(v + noise(rng));
    }
  }
  if (spot) {
    const int x0 = static_cast<int>(32 + 19.5 * std::cos(0.4)),
              y0 = static_cast<int>(32 + 19.5 * std::sin(0.4));
    for (int y = y0; y < y0 + 3; ++y) {
      for (int x = x0; x < x0 + 3; ++x) img.data()[y * 64 + x] += 0.12f;
    }
  }
  return img;
}

TEST(FilterBankEncoderTest, PixelNormChannelsJudgeEachPixelAgainstItsOwnNormalSpread) {
  FilterBankConfig cfg = GreyBank(64, 8);
  cfg.rotational = true;
  cfg.pixel_norm = true;
  EXPECT_EQ(cfg.latent(), (LatentShape{20, 8, 8}));
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> jitter(-0.05, 0.05);
  Tensor train({32, 1, 64, 64});
  for (int i = 0; i < 32; ++i) {
    const Tensor one = NotchedWasher(jitter(rng), false, 100 + i);
    std::copy_n(one.data(), one.numel(), train.sample(i));
  }
  auto stats = FitPixelStats(cfg, train);
  ASSERT_OK(stats);
  ASSERT_EQ(stats->at("pixel_std").shape, (Shape{2, 64, 64}));
  auto enc = CreateFilterBankEncoder(cfg, {}, *stats);
  ASSERT_OK(enc);
  auto at = [](const Tensor& t, int c, int y, int x) { return t.data()[(c * 8 + y) * 8 + x]; };
  // Cell (4, 6) on new normal parts and on one with the spot. Channel 13: the rotational
  // residual's cell maximum (σ = 1.5), where the notch's jittering edge sets the statistic and
  // hides the spot; channel 18: the cell maximum of the blob detector's per-pixel z.
  std::vector<double> raw, pix;
  for (int i = 0; i < 12; ++i) {
    Tensor z;
    ASSERT_OK((*enc)->Encode(NotchedWasher(jitter(rng), false, 500 + i), &z));
    ASSERT_EQ(z.shape(), (Shape{1, 20, 8, 8}));
    raw.push_back(at(z, 13, 4, 6));
    pix.push_back(at(z, 18, 4, 6));
  }
  Tensor zd;
  ASSERT_OK((*enc)->Encode(NotchedWasher(0.03, true, 900), &zd));
  auto separation = [](const std::vector<double>& normal, double defect) {
    double m = 0, v = 0;
    for (double x : normal) m += x / normal.size();
    for (double x : normal) v += (x - m) * (x - m) / (normal.size() - 1);
    return (defect - m) / std::sqrt(v);
  };
  const double s_raw = separation(raw, at(zd, 13, 4, 6));
  const double s_pix = separation(pix, at(zd, 18, 4, 6));
  RecordProperty("separation_raw", std::to_string(s_raw));
  RecordProperty("separation_pixel_norm", std::to_string(s_pix));
  // Measured: raw 2.0, pixel-standardised 7.7 standard deviations of the normal parts.
  EXPECT_GT(s_pix, 5.0);
  EXPECT_GT(s_pix, 2.5 * s_raw) << "raw " << s_raw << " pixel-standardised " << s_pix;
  // The other channels are the same with and without them.
  FilterBankConfig plain = cfg;
  plain.pixel_norm = false;
  auto enc_plain = CreateFilterBankEncoder(plain, {});
  ASSERT_OK(enc_plain);
  Tensor z_plain;
  ASSERT_OK((*enc_plain)->Encode(NotchedWasher(0.03, true, 900), &z_plain));
  ASSERT_EQ(z_plain.shape(), (Shape{1, 16, 8, 8}));
  for (int64_t i = 0; i < z_plain.numel(); ++i) ASSERT_EQ(z_plain.data()[i], zd.data()[i]) << i;
  // Errors: no statistics, statistics of another size, statistics without the channels, the
  // channels without the rotational ones, too few images to fit.
  EXPECT_THAT(CreateFilterBankEncoder(cfg, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "missing weight 'pixel_mean'"));
  NamedTensors wrong = *stats;
  wrong["pixel_std"].shape = {2, 32, 128};
  EXPECT_THAT(CreateFilterBankEncoder(cfg, {}, wrong),
              StatusIs(absl::StatusCode::kInvalidArgument, "pixel_std"));
  EXPECT_THAT(CreateFilterBankEncoder(plain, {}, *stats),
              StatusIs(absl::StatusCode::kInvalidArgument, "only pixel_norm"));
  FilterBankConfig no_rot = cfg;
  no_rot.rotational = false;
  EXPECT_THAT(CreateFilterBankEncoder(no_rot, {}, *stats),
              StatusIs(absl::StatusCode::kInvalidArgument, "pixel_norm needs rotational"));
  Tensor one({1, 1, 64, 64});
  EXPECT_THAT(FitPixelStats(cfg, one), StatusIs(absl::StatusCode::kInvalidArgument, "N >= 2"));
}

// A woven grid as invad-datagen draws it (scaled to [0, 1]): period 10.6 px, lattice tilted by
// 0.02 rad, so neither the period nor its direction falls on whole pixels; plus Gaussian pixel
// noise (σ grey levels) and, optionally, a faint 1-px line (−10 grey levels, 11 px long, 30°)
// centred in cell (5, 2) of the 8×8 latent.
constexpr double kGridPeriod = 10.6, kGridTilt = 0.02;
Tensor GridImage(bool line, uint64_t seed, double sigma = 2.0) {
  Tensor img({1, 1, 128, 128});
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  for (int y = 0; y < 128; ++y) {
    for (int x = 0; x < 128; ++x) {
      const double u = x + kGridTilt * y, v = y - kGridTilt * x;
      const double wx = std::sin(2 * M_PI * u / kGridPeriod + 0.7),
                   wy = std::sin(2 * M_PI * v / kGridPeriod + 2.1);
      img.data()[y * 128 + x] =
          static_cast<float>((118 + 45 * std::max(wx, wy) + 10 * wx * wy + noise(rng)) / 255);
    }
  }
  if (line) {
    for (int t = -5; t <= 5; ++t) {
      const int x = 40 + static_cast<int>(std::lround(t * std::cos(M_PI / 6)));
      const int y = 88 + static_cast<int>(std::lround(t * std::sin(M_PI / 6)));
      img.data()[y * 128 + x] -= 10.0f / 255;
    }
  }
  return img;
}

TEST(FilterBankEncoderTest, LatticeChannelsCancelATiltedSubPixelGridAndFindAFaintLine) {
  // The lattice, to a fraction of a pixel: u = x + t·y, v = y − t·x advance by one period.
  auto lattices = FindLattices(GridImage(false, 1));
  ASSERT_OK(lattices);
  ASSERT_EQ(lattices->size(), 1u);
  const Lattice& l = (*lattices)[0];
  ASSERT_TRUE(l.found);
  const double len = kGridPeriod / (1 + kGridTilt * kGridTilt);
  EXPECT_NEAR(l.a1x, len, 0.05);
  EXPECT_NEAR(l.a1y, kGridTilt * len, 0.05);
  EXPECT_NEAR(l.a2x, -kGridTilt * len, 0.05);
  EXPECT_NEAR(l.a2y, len, 0.05);
  EXPECT_GE(l.correlation, kLatticeCorrelation);

  FilterBankConfig cfg = GreyBank(128, 8);
  cfg.periodic = true;
  cfg.lattice = true;
  EXPECT_EQ(cfg.latent(), (LatentShape{20, 8, 8}));
  auto enc = CreateFilterBankEncoder(cfg, {});
  ASSERT_OK(enc);
  Tensor z, z_clean, z_exact;
  ASSERT_OK((*enc)->Encode(GridImage(true, 2), &z));
  ASSERT_OK((*enc)->Encode(GridImage(false, 2), &z_clean));
  ASSERT_OK((*enc)->Encode(GridImage(false, 2, /*sigma=*/0), &z_exact));
  ASSERT_EQ(z.shape(), (Shape{1, 20, 8, 8}));
  auto at = [](const Tensor& t, int c, int y, int x) { return t.data()[(c * 8 + y) * 8 + x]; };
  // Channels 12..15: the periodic residual (integer lags); 16..19: the lattice residual's box
  // mean (cell mean, max) and line response (cell mean, max). Without noise the lattice residual
  // cancels the pattern to about a grey level everywhere (bicubic error at its sharp ridges), where
  // the integer lags leave several (grey levels of 255 below). With noise it is the noise: its mean
  // |box mean| is near σ/3·√(2/π)·√(9/8) ≈ 0.56.
  float lattice_mean = 0, exact_lattice_peak = 0, exact_periodic_peak = 0, line_peak = 0;
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      lattice_mean += 255 * at(z_clean, 16, y, x) / 64;
      exact_lattice_peak = std::max(exact_lattice_peak, 255 * at(z_exact, 17, y, x));
      exact_periodic_peak = std::max(exact_periodic_peak, 255 * at(z_exact, 13, y, x));
      if (y != 5 || x != 2) line_peak = std::max(line_peak, 255 * at(z, 19, y, x));
    }
  }
  EXPECT_LT(exact_lattice_peak, 1.5f);   // measured 1.09
  EXPECT_GT(exact_periodic_peak, 3.0f);  // measured 4.27
  EXPECT_LT(lattice_mean, 0.8f);         // measured 0.64
  // The faint line: its cell's peak line response is near its contrast (10 grey levels, less where
  // the digital line and the filter's differ) and stands clear of every other cell's noise
  // (measured 7.4 against 3.3).
  EXPECT_GT(255 * at(z, 19, 5, 2), 6.0f);
  EXPECT_GT(255 * at(z, 19, 5, 2), 1.8f * line_peak);
  EXPECT_LT(255 * at(z_clean, 19, 5, 2), 1.2f * line_peak);

  // The other channels are the same with and without the lattice ones.
  FilterBankConfig plain = cfg;
  plain.lattice = false;
  auto enc_plain = CreateFilterBankEncoder(plain, {});
  ASSERT_OK(enc_plain);
  Tensor z_plain;
  ASSERT_OK((*enc_plain)->Encode(GridImage(true, 2), &z_plain));
  ASSERT_EQ(z_plain.shape(), (Shape{1, 16, 8, 8}));
  for (int64_t i = 0; i < z_plain.numel(); ++i) ASSERT_EQ(z_plain.data()[i], z.data()[i]) << i;

  // Residual-only: the periodic and lattice channels alone, exactly as in the full bank (its
  // channels 12..19); without any residual family it is refused.
  FilterBankConfig residual = cfg;
  residual.residual_only = true;
  EXPECT_EQ(residual.latent(), (LatentShape{8, 8, 8}));
  auto enc_residual = CreateFilterBankEncoder(residual, {});
  ASSERT_OK(enc_residual);
  Tensor z_residual;
  ASSERT_OK((*enc_residual)->Encode(GridImage(true, 2), &z_residual));
  ASSERT_EQ(z_residual.shape(), (Shape{1, 8, 8, 8}));
  for (int64_t i = 0; i < z_residual.numel(); ++i)
    ASSERT_EQ(z_residual.data()[i], z.data()[12 * 64 + i]) << i;
  residual.periodic = false;
  residual.lattice = false;
  EXPECT_THAT(CreateFilterBankEncoder(residual, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "residual_only needs periodic, rotational or lattice"));

  cfg.input_size = 8;
  cfg.scales = {1.0f};
  cfg.periodic = false;
  EXPECT_THAT(CreateFilterBankEncoder(cfg, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "lattice needs input_size >= 16"));
}

TEST(FilterBankEncoderTest, LatticeFractionTellsAGridFromNoiseAndAFlatImage) {
  Tensor images({3, 1, 128, 128});
  const Tensor grid = GridImage(false, 3);
  std::copy(grid.data(), grid.data() + grid.numel(), images.sample(0));
  std::mt19937_64 rng(4);
  std::normal_distribution<float> noise(0.5f, 0.1f);
  for (int64_t i = 0; i < 128 * 128; ++i) images.sample(1)[i] = noise(rng);
  std::fill(images.sample(2), images.sample(2) + 128 * 128, 0.5f);
  auto lattices = FindLattices(images);
  ASSERT_OK(lattices);
  ASSERT_EQ(lattices->size(), 3u);
  EXPECT_TRUE((*lattices)[0].found);
  EXPECT_FALSE((*lattices)[1].found);
  EXPECT_LT((*lattices)[1].correlation, kLatticeCorrelation);
  EXPECT_FALSE((*lattices)[2].found);
  EXPECT_NEAR(LatticeFraction(*lattices), 1.0 / 3, 1e-9);
  EXPECT_EQ(LatticeFraction({}), 0.0);
  // The period: the grid's lattice vectors (one period along the tilted axes), the only image
  // with a lattice; none among noise and a flat image.
  EXPECT_NEAR(LatticePeriod(*lattices), kGridPeriod / std::sqrt(1 + kGridTilt * kGridTilt), 0.05);
  EXPECT_EQ(LatticePeriod({(*lattices)[1], (*lattices)[2]}), 0.0);
  // A noise image's lattice channels fall back to the periodic residual and stay finite.
  FilterBankConfig cfg = GreyBank(128, 8);
  cfg.lattice = true;
  auto enc = CreateFilterBankEncoder(cfg, {});
  ASSERT_OK(enc);
  Tensor z;
  ASSERT_OK((*enc)->Encode(images, &z));
  for (int64_t i = 0; i < z.numel(); ++i) ASSERT_TRUE(std::isfinite(z.data()[i])) << i;
  EXPECT_THAT(FindLattices(Tensor({1, 1, 8, 8})),
              StatusIs(absl::StatusCode::kInvalidArgument, "H >= 16"));
}

TEST(FilterBankEncoderTest, ForegroundRoundnessTellsARoundPartFromTexturesAndOtherShapes) {
  // The ring (IoU with its 20° turn about its centroid ≈ 0.96), with and without a defect.
  Tensor rings({2, 1, 64, 64});
  const Tensor a = RingImage(false), b = RingImage(true);
  std::copy(a.data(), a.data() + a.numel(), rings.sample(0));
  std::copy(b.data(), b.data() + b.numel(), rings.sample(1));
  auto round = ForegroundRoundness(rings);
  ASSERT_OK(round);
  EXPECT_GT(*round, kRoundPartThreshold);
  EXPECT_LE(*round, 1.0);
  // A dark ring on a bright background: the foreground is the class off the border.
  Tensor inverted({1, 1, 64, 64});
  for (int64_t i = 0; i < a.numel(); ++i) inverted.data()[i] = 2.0f - a.data()[i];
  round = ForegroundRoundness(inverted);
  ASSERT_OK(round);
  EXPECT_GT(*round, kRoundPartThreshold);
  // A square part: IoU with its turn ≈ 0.78.
  Tensor square({1, 1, 64, 64});
  for (int y = 16; y < 48; ++y) {
    for (int x = 16; x < 48; ++x) square.data()[y * 64 + x] = 1.0f;
  }
  round = ForegroundRoundness(square);
  ASSERT_OK(round);
  EXPECT_GT(*round, 0.6);
  EXPECT_LT(*round, kRoundPartThreshold);
  // A texture (both classes on the border) and a blank image: no part, 0.
  Tensor texture({1, 1, 64, 64}), blank({1, 1, 64, 64});
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      texture.data()[y * 64 + x] =
          static_cast<float>(std::sin(2 * M_PI * x / 8) * std::cos(2 * M_PI * y / 11));
    }
  }
  for (const Tensor* none : {&texture, &blank}) {
    round = ForegroundRoundness(*none);
    ASSERT_OK(round);
    EXPECT_EQ(*round, 0.0);
  }
  EXPECT_THAT(ForegroundRoundness(Tensor({4, 4})), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UpsampleCrossCheckTest, CoreBilinearEqualsLibTorch) {
  Tensor m = Random({1, 1, 16, 16}, 9);
  std::vector<float> ours(256 * 256);
  UpsampleBilinear(m.data(), 16, 16, ours.data(), 256, 256);
  torch::Tensor ref =
      torch::upsample_bilinear2d(torch::from_blob(m.data(), {1, 1, 16, 16}), {256, 256}, false);
  const float* r = ref.data_ptr<float>();
  for (int i = 0; i < 256 * 256; ++i) ASSERT_NEAR(ours[i], r[i], 1e-5) << i;
}

}  // namespace
}  // namespace invad::core
