// Batching benchmarks (issue 4), figures for docs/benchmarks.md via bench/run_batching_bench.sh:
//   BM_SchedulerCapacity   tasks/s through the scheduler with a zero-cost runner (its overhead);
//   BM_ClosedLoop          a real model behind the scheduler, C closed-loop clients: throughput,
//                          p50/p99 latency, by mode (whole-request | step-level) and
//                          max_batch_size;
//   BM_ModelCall           one encoder or denoiser call by batch size (per-image cost);
//   BM_OpenLoop            Poisson arrivals at 70 % of whole-request mode's measured peak, both
//                          modes at the same offered load: p50/p99 latency.
//
//   build/release/bench/batching_bench [--threads=2] [--model=BUNDLE_DIR]
//       [--config=default|small|latent32p2|compact] [--image_size=N --latent_size=N
//       --dit_hidden=N --dit_depth=N --dit_patch=N --precision=fp32|bf16] [--peak=TASKS_PER_S]
//       [benchmark flags]
//
// --model loads a bundle written by invad-train (what bench/run_batching_bench.sh does). Without
// it, a preset with random weights (only cost matters), each one invad-train can produce:
//   default     filter bank 256 px -> 36x16x16, DiT width 128, depth 2, patch 1 (the defaults)
//   small       the same with --dit_hidden 64
//   latent32p2  --latent_size 32 --dit_patch 2
//   compact     --image_size 128 --latent_size 8 (add --precision=bf16 for the shipped variant)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"

#include "bench/bench_flags.h"
#include "bundle/bundle.h"
#include "core/base/mutex.h"
#include "core/batching/scheduler.h"
#include "core/model/inversion.h"
#include "core/runtime/native.h"
#include "core/runtime/runtime.h"

namespace invad::bench {
namespace {

struct Flags {
  int threads = 2;
  std::string config = "default";
  double peak = 0;  // tasks/s for BM_OpenLoop; 0 = measure it first (closed loop, C = 32)
  int image_size = 0, latent_size = 0, hidden = 0, depth = 0, patch = 0;  // 0: the preset's
  bool bf16 = false;  // --precision=bf16: the denoiser in bfloat16
  std::string model;  // --model=DIR: a bundle written by invad-train instead of a preset
} flags;

// ---------------------------------------------------------------------------------------------
// Zero-cost runner: the scheduler's own overhead.

class NullRunner final : public core::BatchRunner {
 public:
  NullRunner() {
    auto s = core::NoiseSchedule::Linear();
    plan_ = *core::InversionPlan(*s, 3);
  }
  core::Shape input_shape() const override { return {1, 1, 1}; }
  core::LatentShape latent_shape() const override { return {1, 1, 1}; }
  absl::StatusOr<const std::vector<core::DdimCoefficients>*> Plan(int k) const override {
    if (k != 3) return absl::InvalidArgumentError("k");
    return &plan_;
  }
  absl::Status Encode(const core::Tensor& images, core::Tensor* z0) override {
    z0->Resize({images.batch(), 1, 1, 1});
    return absl::OkStatus();
  }
  absl::Status Step(absl::Span<const core::DdimCoefficients>, core::Tensor&) override {
    return absl::OkStatus();
  }

 private:
  std::vector<core::DdimCoefficients> plan_;
};

// Completion latch counting callbacks.
class Latch {
 public:
  void Add(int n) {
    core::MutexLock l(&mu_);
    pending_ += n;
  }
  void Done() {
    core::MutexLock l(&mu_);
    if (--pending_ == 0) cv_.notify_all();
  }
  void Wait() {
    core::MutexLock l(&mu_);
    cv_.wait(mu_, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return pending_ == 0; });
  }

 private:
  core::Mutex mu_;
  core::CondVar cv_;
  int64_t pending_ ABSL_GUARDED_BY(mu_) = 0;
};

void BM_SchedulerCapacity(benchmark::State& state) {
  core::SchedulerOptions o;
  o.max_batch_size = static_cast<int>(state.range(0));
  o.max_queue_delay_us = 0;
  o.max_queue_size = 1 << 20;
  o.mode = state.range(1) ? core::BatchingMode::kStepLevel : core::BatchingMode::kWholeRequest;
  std::vector<std::unique_ptr<core::BatchRunner>> runners;
  runners.push_back(std::make_unique<NullRunner>());
  auto s = core::ModelScheduler::Create(o, std::move(runners));
  if (!s.ok()) {
    state.SkipWithError(std::string(s.status().message()).c_str());
    return;
  }
  constexpr int kTasks = 20000, kSubmitters = 2;
  int64_t done = 0;
  for (auto _ : state) {
    Latch latch;
    latch.Add(kTasks);
    std::vector<std::thread> submitters;
    for (int t = 0; t < kSubmitters; ++t) {
      submitters.emplace_back([&] {
        for (int i = 0; i < kTasks / kSubmitters; ++i) {
          core::Task task;
          task.image = core::Tensor({1, 1, 1});
          task.steps = 3;
          task.done = [&latch](absl::StatusOr<core::TaskResult>) { latch.Done(); };
          // The queue holds every task of a run, so nothing is refused; if it were, the run
          // would not finish, so count it as done and let the figure show the failure.
          if (!(*s)->Submit(std::move(task)).ok()) latch.Done();
        }
      });
    }
    for (auto& th : submitters) th.join();
    latch.Wait();
    done += kTasks;
  }
  state.counters["tasks_per_s"] =
      benchmark::Counter(static_cast<double>(done), benchmark::Counter::kIsRate);
  (*s)->Shutdown(absl::Seconds(1));
}
BENCHMARK(BM_SchedulerCapacity)
    ->ArgsProduct({{1, 16}, {0, 1}})
    ->ArgNames({"max_batch", "step_level"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------------------------
// A real model behind the scheduler.

struct ModelConfig {
  int image_size = 256;
  int latent_size = 16;
  int patch = 1;
  int hidden = 128;
  int depth = 2;
};

// Presets, then any of --image_size, --latent_size, --dit_hidden, --dit_depth, --dit_patch.
ModelConfig Config() {
  ModelConfig c;
  if (flags.config == "small") c.hidden = 64;
  if (flags.config == "latent32p2") {
    c.latent_size = 32;
    c.patch = 2;
  }
  if (flags.config == "compact") {
    c.image_size = 128;
    c.latent_size = 8;
  }
  if (flags.image_size > 0) c.image_size = flags.image_size;
  if (flags.latent_size > 0) c.latent_size = flags.latent_size;
  if (flags.hidden > 0) c.hidden = flags.hidden;
  if (flags.depth > 0) c.depth = flags.depth;
  if (flags.patch > 0) c.patch = flags.patch;
  return c;
}

std::unique_ptr<core::BatchRunner> MakeRunner() {
  if (!flags.model.empty()) {
    auto m = bundle::LoadModel(flags.model);
    if (!m.ok()) {
      std::fprintf(stderr, "--model: %s\n", std::string(m.status().message()).c_str());
      std::exit(2);
    }
    const preprocess::InputSpec& in = m->input;
    return core::MakePipelineRunner(std::move(m->pipeline), {in.channels(), in.height, in.width});
  }
  const ModelConfig c = Config();
  core::FilterBankConfig fb;
  fb.input_size = c.image_size;
  fb.latent_size = c.latent_size;
  auto enc = core::CreateFilterBankEncoder(fb, {});
  core::DitConfig dit;
  dit.latent = fb.latent();
  dit.patch_size = c.patch;
  dit.hidden_size = c.hidden;
  dit.depth = c.depth;
  core::RuntimeOptions ro;
  if (flags.bf16) ro.precision = core::Precision::kBf16;
  auto den =
      core::CreateNativeDit(dit, core::InitDitWeights(dit, 1, /*zero_init_output=*/false), ro);
  auto pipeline =
      core::Pipeline::Create(std::move(*enc), std::move(*den), *core::NoiseSchedule::Linear(), {3});
  return core::MakePipelineRunner(std::move(*pipeline), {3, c.image_size, c.image_size});
}

core::Tensor RandomImages(int64_t b) {
  static const core::Shape shape = MakeRunner()->input_shape();
  core::Tensor t({b, shape[0], shape[1], shape[2]});
  std::mt19937 rng(static_cast<uint32_t>(b));
  std::normal_distribution<float> nd;
  for (float& v : t.span()) v = nd(rng);
  return t;
}

// One model call of the configuration, by kind and batch size: where batching gains or loses.
void BM_ModelCall(benchmark::State& state) {
  auto runner = MakeRunner();
  const bool denoise = state.range(0) != 0;
  const int64_t b = state.range(1);
  core::Tensor images = RandomImages(b);
  core::Tensor z0;
  if (!runner->Encode(images, &z0).ok()) return state.SkipWithError("encode failed");
  const std::vector<core::DdimCoefficients> coefs(b, (**runner->Plan(3))[1]);
  for (auto _ : state) {
    if (denoise) {
      core::Tensor z = z0;
      benchmark::DoNotOptimize(runner->Step(coefs, z));
    } else {
      benchmark::DoNotOptimize(runner->Encode(images, &z0));
    }
  }
  state.counters["images"] = static_cast<double>(b);  // per-image cost = time / images
}
BENCHMARK(BM_ModelCall)
    ->ArgsProduct({{0, 1}, {1, 4, 16}})
    ->ArgNames({"denoise", "batch"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

struct LoadResult {
  double throughput = 0;
  double p50_ms = 0, p99_ms = 0, mean_batch = 0;
  double busy = 0;               // fraction of wall time inside model calls
  double call_ms_per_image = 0;  // model-call time per completed image (encoder + K steps)
};

// Sums model-call time, so a figure can separate slow calls from time lost around them.
class CallTimer final : public core::SchedulerObserver {
 public:
  void OnModelCall(core::CallKind, int, absl::Duration compute, bool) override {
    core::MutexLock l(&mu_);
    total_ += compute;
  }
  absl::Duration Take() {
    core::MutexLock l(&mu_);
    absl::Duration t = total_;
    total_ = absl::ZeroDuration();
    return t;
  }

 private:
  core::Mutex mu_;
  absl::Duration total_ ABSL_GUARDED_BY(mu_);
};

CallTimer& Timer() {
  static auto* t = new CallTimer;
  return *t;
}

// `clients` > 0: closed loop, each client waits for its answer before the next request.
// `rate` > 0: open loop, Poisson arrivals at `rate` tasks/s from one thread.
LoadResult RunLoad(core::ModelScheduler& s, int clients, double rate, double seconds) {
  core::Tensor image = RandomImages(1);
  image.Resize({image.dim(1), image.dim(2), image.dim(3)});
  core::Mutex mu;
  std::vector<double> latencies;
  std::vector<double> batch;
  std::atomic<int64_t> completed{0};
  Timer().Take();
  const auto start = std::chrono::steady_clock::now();
  const auto stop = start + std::chrono::duration<double>(seconds);
  auto submit = [&](Latch* latch) {
    core::Task t;
    t.image = image;
    t.steps = 3;
    const auto t0 = std::chrono::steady_clock::now();
    if (latch) latch->Add(1);
    t.done = [&, t0, latch](absl::StatusOr<core::TaskResult> r) {
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      {
        core::MutexLock l(&mu);
        latencies.push_back(ms);
        if (r.ok()) batch.push_back(r->batch_sizes.back());
      }
      ++completed;
      if (latch) latch->Done();
    };
    return s.Submit(std::move(t));
  };
  if (clients > 0) {
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        while (std::chrono::steady_clock::now() < stop) {
          Latch one;
          if (submit(&one).ok()) one.Wait();
        }
      });
    }
    for (auto& th : threads) th.join();
  } else {
    Latch all;
    std::mt19937_64 rng(7);
    std::exponential_distribution<double> gap(rate);
    auto next = start;
    while (next < stop) {
      next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(gap(rng)));
      std::this_thread::sleep_until(next);
      (void)submit(&all);
    }
    all.Wait();
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  core::MutexLock l(&mu);
  LoadResult r;
  r.throughput = completed.load() / elapsed;
  r.p50_ms = Percentile(latencies, 0.5);
  r.p99_ms = Percentile(latencies, 0.99);
  double sum = 0;
  for (double b : batch) sum += b;
  r.mean_batch = batch.empty() ? 0 : sum / batch.size();
  const double call_s = absl::ToDoubleSeconds(Timer().Take());
  r.busy = call_s / elapsed;
  r.call_ms_per_image = completed.load() > 0 ? 1e3 * call_s / completed.load() : 0;
  return r;
}

std::unique_ptr<core::ModelScheduler> MakeScheduler(int max_batch, bool step_level) {
  core::SchedulerOptions o;
  o.max_batch_size = max_batch;
  o.max_queue_delay_us = 2000;
  o.mode = step_level ? core::BatchingMode::kStepLevel : core::BatchingMode::kWholeRequest;
  std::vector<std::unique_ptr<core::BatchRunner>> runners;
  runners.push_back(MakeRunner());
  return *core::ModelScheduler::Create(o, std::move(runners), &Timer());
}

void Report(benchmark::State& state, const LoadResult& r) {
  state.counters["tasks_per_s"] = r.throughput;
  state.counters["p50_ms"] = r.p50_ms;
  state.counters["p99_ms"] = r.p99_ms;
  state.counters["mean_batch"] = r.mean_batch;
  state.counters["busy"] = r.busy;
  state.counters["call_ms_per_img"] = r.call_ms_per_image;
}

void BM_ClosedLoop(benchmark::State& state) {
  auto s = MakeScheduler(static_cast<int>(state.range(0)), state.range(1) != 0);
  const int clients = static_cast<int>(state.range(2));
  RunLoad(*s, 1, 0, 0.5);  // warm-up
  LoadResult r;
  for (auto _ : state) r = RunLoad(*s, clients, 0, 4.0);
  Report(state, r);
  s->Shutdown(absl::Seconds(10));
}
BENCHMARK(BM_ClosedLoop)
    ->ArgsProduct({{1, 16}, {0, 1}, {1, 2, 4, 8, 16, 32}})
    ->ArgNames({"max_batch", "step_level", "clients"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

void BM_OpenLoop(benchmark::State& state) {
  const bool step = state.range(0) != 0;
  // One offered load for both modes: 70 % of whole-request mode's closed-loop peak (32 clients),
  // measured once per process unless --peak gives it.
  static double peak = 0;
  if (peak <= 0) {
    peak = flags.peak;
    if (peak <= 0) {
      auto probe = MakeScheduler(16, false);
      RunLoad(*probe, 1, 0, 0.5);
      peak = RunLoad(*probe, 32, 0, 4.0).throughput;
      probe->Shutdown(absl::Seconds(10));
    }
  }
  auto s = MakeScheduler(16, step);
  RunLoad(*s, 1, 0, 0.5);  // warm-up
  const double rate = peak * state.range(1) / 100.0;
  LoadResult r;
  for (auto _ : state) r = RunLoad(*s, 0, rate, 8.0);
  state.counters["offered_per_s"] = rate;
  Report(state, r);
  s->Shutdown(absl::Seconds(10));
}
BENCHMARK(BM_OpenLoop)
    ->ArgsProduct({{0, 1}, {70}})
    ->ArgNames({"step_level", "load_pct"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace invad::bench

int main(int argc, char** argv) {
  using invad::bench::flags;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (invad::bench::TakeFlag(argv[i], "--threads", &v)) {
      flags.threads = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--config", &v)) {
      flags.config = v;
    } else if (invad::bench::TakeFlag(argv[i], "--peak", &v)) {
      flags.peak = std::atof(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--model", &v)) {
      flags.model = v;
    } else if (invad::bench::TakeFlag(argv[i], "--precision", &v)) {
      flags.bf16 = v == "bf16";
    } else if (invad::bench::TakeFlag(argv[i], "--image_size", &v)) {
      flags.image_size = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--latent_size", &v)) {
      flags.latent_size = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--dit_hidden", &v)) {
      flags.hidden = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--dit_depth", &v)) {
      flags.depth = std::atoi(v.c_str());
    } else if (invad::bench::TakeFlag(argv[i], "--dit_patch", &v)) {
      flags.patch = std::atoi(v.c_str());
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (!invad::core::ConfigureProcess(flags.threads).ok()) return 2;
  benchmark::AddCustomContext("invad_threads", std::to_string(flags.threads));
  benchmark::AddCustomContext("invad_config", flags.config);
  return invad::bench::RunBenchmarks(rest);
}
