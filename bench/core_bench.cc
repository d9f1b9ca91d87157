// Core benchmarks: encoder, one denoiser call, and full K-step scoring (encode + K denoiser calls +
// DDIM updates + scores + maps upsampled to the input size) at batch 1, 4, 16, 32.
//
//   build/release/bench/core_bench [--threads=N] [--malloc_fix=0|1] [--precision=fp32|bf16]
//       [--model=tiny|small] [--encoder_torchscript=PATH --latent=C,H,W] [benchmark flags]
//
// bench/run_core_bench.sh runs the variants docs/benchmarks.md reports. Figures come from here,
// never from tests.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <malloc.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "benchmark/benchmark.h"

#include "bench/bench_flags.h"
#include "core/model/inversion.h"
#include "core/runtime/native.h"
#include "core/runtime/runtime.h"
#include "core/scoring/scoring.h"

namespace invad::bench {
namespace {

struct Flags {
  int threads = 2;
  bool malloc_fix = true;
  core::Precision precision = core::Precision::kFp32;
  std::string model = "small";
  std::string encoder_torchscript;
  core::LatentShape latent{272, 16, 16};
  int steps = 3;
} flags;

// Decorators that add up the wall time spent inside model calls, so full scoring can be divided by
// the sum of its own model calls, measured in the same iterations.
struct CallClock {
  int64_t ns = 0;
  int64_t calls = 0;

  // Runs `call`, adding its wall time to this clock.
  template <typename Call>
  absl::Status Time(Call&& call) {
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status s = call();
    ns +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    ++calls;
    return s;
  }
};

class TimedEncoder : public core::Encoder {
 public:
  TimedEncoder(std::unique_ptr<core::Encoder> inner, CallClock* clock)
      : inner_(std::move(inner)), clock_(clock) {}
  absl::Status Encode(const core::Tensor& images, core::Tensor* z0) override {
    return clock_->Time([&] { return inner_->Encode(images, z0); });
  }
  core::LatentShape latent_shape() const override { return inner_->latent_shape(); }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  std::unique_ptr<core::Encoder> inner_;
  CallClock* clock_;
};

class TimedDenoiser : public core::Denoiser {
 public:
  TimedDenoiser(std::unique_ptr<core::Denoiser> inner, CallClock* clock)
      : inner_(std::move(inner)), clock_(clock) {}
  absl::Status Predict(const core::Tensor& z, absl::Span<const int> t, core::Tensor* eps) override {
    return clock_->Time([&] { return inner_->Predict(z, t, eps); });
  }
  core::LatentShape latent_shape() const override { return inner_->latent_shape(); }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  std::unique_ptr<core::Denoiser> inner_;
  CallClock* clock_;
};

struct Model {
  std::unique_ptr<core::Pipeline> pipeline;
  CallClock encoder_calls;
  CallClock denoiser_calls;
};

core::ConvEncoderConfig EncoderConfig() {
  core::ConvEncoderConfig c;
  if (flags.model == "tiny") {
    c.stage_channels = {8, 16, 32, 32};
  } else {
    c.stage_channels = {16, 32, 64, 64};
  }
  c.output_stages = {1, 2, 3};
  return c;
}

core::DitConfig DitConfig(const core::LatentShape& latent) {
  core::DitConfig d;
  d.latent = latent;
  d.hidden_size = flags.model == "tiny" ? 64 : 128;
  d.depth = flags.model == "tiny" ? 2 : 4;
  d.num_heads = 4;
  return d;
}

Model& GetModel() {
  static Model* m = [] {
    auto* model = new Model();
    std::unique_ptr<core::Encoder> enc;
    if (!flags.encoder_torchscript.empty()) {
      auto e =
          core::LoadTorchScriptEncoder(flags.encoder_torchscript, {3, 256, 256, flags.latent}, {});
      if (!e.ok()) {
        std::fprintf(stderr, "%s\n", e.status().ToString().c_str());
        std::exit(2);
      }
      enc = std::move(*e);
    } else {
      const core::ConvEncoderConfig ec = EncoderConfig();
      enc = std::move(*core::CreateNativeConvEncoder(ec, core::InitConvEncoderWeights(ec, 1), {}));
    }
    const core::DitConfig dc = DitConfig(enc->latent_shape());
    auto den = core::CreateNativeDit(dc, core::InitDitWeights(dc, 2, /*zero_init_output=*/false),
                                     {"cpu", flags.precision});
    if (!den.ok()) {
      std::fprintf(stderr, "%s\n", den.status().ToString().c_str());
      std::exit(2);
    }
    auto p = core::Pipeline::Create(
        std::make_unique<TimedEncoder>(std::move(enc), &model->encoder_calls),
        std::make_unique<TimedDenoiser>(std::move(*den), &model->denoiser_calls),
        *core::NoiseSchedule::Linear(), {1, 2, 3, 5, 10});
    model->pipeline = std::move(*p);
    return model;
  }();
  return *m;
}

core::Tensor Images(int64_t batch) {
  core::Tensor t({batch, 3, 256, 256});
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  return t;
}

void Check(const absl::Status& s, benchmark::State& state) {
  if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
}

void BM_Encoder(benchmark::State& state) {
  Model& m = GetModel();
  const core::Tensor images = Images(state.range(0));
  core::Tensor z0;
  for (auto _ : state) Check(m.pipeline->Encode(images, &z0), state);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_DenoiserCall(benchmark::State& state) {
  Model& m = GetModel();
  core::Tensor z0;
  Check(m.pipeline->Encode(Images(state.range(0)), &z0), state);
  const std::vector<int> ts(state.range(0), 500);
  core::Tensor eps;
  for (auto _ : state) Check(m.pipeline->denoiser().Predict(z0, ts, &eps), state);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// The whole per-request work after preprocessing.
void BM_FullScoring(benchmark::State& state) {
  Model& m = GetModel();
  const int64_t b = state.range(0);
  const core::Tensor images = Images(b);
  core::Tensor z, maps, upsampled({b, 256, 256});
  m.encoder_calls = {};
  m.denoiser_calls = {};
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Check(m.pipeline->Encode(images, &z), state);
    Check(m.pipeline->Invert(flags.steps, z), state);
    std::vector<core::LatentScore> scores = core::ScoreLatents(z, &maps);
    benchmark::DoNotOptimize(scores);
    for (int64_t i = 0; i < b; ++i) {
      core::UpsampleBilinear(maps.sample(i), maps.dim(1), maps.dim(2), upsampled.sample(i), 256,
                             256);
    }
  }
  const double total_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  // Full scoring time ÷ the time inside its own encoder and denoiser calls (1.0 = no overhead).
  const CallClock& e = m.encoder_calls;
  const CallClock& d = m.denoiser_calls;
  state.counters["full_over_model_calls"] = total_ns / static_cast<double>(e.ns + d.ns);
  // Mean time of one encoder and one denoiser call inside the pipeline, in ms.
  state.counters["encoder_ms_in_loop"] = e.calls ? e.ns / 1e6 / e.calls : 0;
  state.counters["denoiser_ms_in_loop"] = d.calls ? d.ns / 1e6 / d.calls : 0;
  state.SetItemsProcessed(state.iterations() * b);
}

// What a load-time precomputation saves: the schedule and K-step plan, built per call vs looked up.
void BM_PlanPerCall(benchmark::State& state) {
  for (auto _ : state) {
    auto s = core::NoiseSchedule::Linear();
    auto p = core::InversionPlan(*s, flags.steps);
    benchmark::DoNotOptimize(p);
  }
}
void BM_PlanCached(benchmark::State& state) {
  Model& m = GetModel();
  for (auto _ : state) {
    auto p = m.pipeline->Plan(flags.steps);
    benchmark::DoNotOptimize(p);
  }
}

// The filter bank alone on 256² RGB woven grids (invad-datagen's pattern: period 12.4 px, lattice
// tilted by 0.015 rad, pixel noise), without (lattice:0) and with (lattice:1) the lattice channels,
// and the lattice channels alone (lattice:2, what --filter_residual_only=auto keeps for a lattice
// finer than a cell), at batch 1 and 16 (invad-eval's batch): what --filter_lattice=auto and
// --filter_residual_only=auto cost a periodic texture's model per image.
void BM_FilterBankLattice(benchmark::State& state) {
  core::FilterBankConfig cfg;
  cfg.residual_only = state.range(0) == 2;
  cfg.laplacian = !cfg.residual_only;
  cfg.periodic = !cfg.residual_only;
  cfg.lattice = state.range(0) != 0;
  auto enc = core::CreateFilterBankEncoder(cfg, {});
  if (!enc.ok()) return state.SkipWithError(std::string(enc.status().message()).c_str());
  const int64_t batch = state.range(1);
  core::Tensor images({batch, 3, 256, 256});
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 6.0f / 255);
  for (int64_t b = 0; b < batch; ++b) {
    for (int y = 0; y < 256; ++y) {
      for (int x = 0; x < 256; ++x) {
        const double u = x + 0.015 * y, v = y - 0.015 * x;
        const double wx = std::sin(2 * M_PI * u / 12.4 + b), wy = std::sin(2 * M_PI * v / 12.4 + 1);
        const float g = static_cast<float>((118 + 45 * std::max(wx, wy) + 10 * wx * wy) / 255);
        for (int c = 0; c < 3; ++c) images.sample(b)[(c * 256 + y) * 256 + x] = g + noise(rng);
      }
    }
  }
  core::Tensor z0;
  for (auto _ : state) Check((*enc)->Encode(images, &z0), state);
  state.SetItemsProcessed(state.iterations() * batch);
}

void Batches(benchmark::internal::Benchmark* b) {
  for (int n : {1, 4, 16, 32}) b->Arg(n);
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Encoder)->Apply(Batches);
BENCHMARK(BM_DenoiserCall)->Apply(Batches);
BENCHMARK(BM_FullScoring)->Apply(Batches);
BENCHMARK(BM_FilterBankLattice)
    ->ArgNames({"lattice", "batch"})
    ->ArgsProduct({{0, 1, 2}, {1, 16}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_PlanPerCall)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PlanCached)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace invad::bench

int main(int argc, char** argv) {
  using invad::bench::flags;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (invad::bench::TakeFlag(argv[i], "--threads", &v)) {
      flags.threads = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--malloc_fix", &v)) {
      flags.malloc_fix = v != "0";
    } else if (invad::bench::TakeFlag(argv[i], "--precision", &v)) {
      flags.precision = *invad::core::ParsePrecision(v);
    } else if (invad::bench::TakeFlag(argv[i], "--model", &v)) {
      flags.model = v;
    } else if (invad::bench::TakeFlag(argv[i], "--steps", &v)) {
      flags.steps = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--encoder_torchscript", &v)) {
      flags.encoder_torchscript = v;
    } else if (invad::bench::TakeFlag(argv[i], "--latent", &v)) {
      std::vector<std::string> parts = absl::StrSplit(v, ',');
      flags.latent = {std::stoll(parts.at(0)), std::stoll(parts.at(1)), std::stoll(parts.at(2))};
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (flags.malloc_fix) {  // platform.md P2: keep freed tensor memory in the process
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  if (!invad::core::ConfigureTorchThreads(flags.threads).ok()) return 2;

  benchmark::AddCustomContext("invad_threads", std::to_string(flags.threads));
  benchmark::AddCustomContext("invad_malloc_fix", flags.malloc_fix ? "1" : "0");
  benchmark::AddCustomContext("invad_precision", invad::core::PrecisionName(flags.precision));
  benchmark::AddCustomContext(
      "invad_model", flags.encoder_torchscript.empty() ? flags.model : flags.encoder_torchscript);
  return invad::bench::RunBenchmarks(rest);
}
