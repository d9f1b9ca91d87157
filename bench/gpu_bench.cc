// invad-gpu-bench: the GPU check of issue 9 as a plain main() (no Google Benchmark, no flags
// library, no OpenCV or protobuf), so it builds on a GPU machine that has only a CUDA LibTorch and
// the Abseil that bench/fetch_gpu_deps.sh brings. Driven by bench/gpu_check.sh.
//
//   prepare --out=DIR [--tiny]           (here, on CPU, main build only) a DiT trained as
//       invad-train trains it on synthetic normal latents, latents z0 of normal and anomalous
//       samples, the expected z_T in fp32, a calibration, and the CPU bf16-vs-fp32 error that
//       bounds the device's; all as raw little-endian float32 files
//   check --data=DIR --device=D --precision=P    device z_T against the CPU fp32 z_T: relative
//       error <= 2x the CPU bf16 error, verdicts agree on >= 99 %, no flip beyond the margin
//   matmul --device=D --precision=P [--n=8192]   the dense GEMM rate (FLOP/s) of this device
//   sweep --device=D --precision=P --model=default|paper|tiny|tiny_paper --batches=1,2,...
//       [--k=3] [--reps=20] [--peak_flops=F]    images/s, p50/p99 per batch, memory, FLOP/s
//
// Output: one `key=value ...` line per result, for the script's table. Exit 1 when a check fails.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <c10/core/StreamGuard.h>
#include <torch/torch.h>
#if defined(INVAD_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "absl/strings/str_cat.h"

#include "core/diffusion/schedule.h"
#include "core/runtime/internal/torch_util.h"
#include "core/runtime/native.h"
#include "core/runtime/runtime.h"
#include "core/scoring/calibration.h"
#include "core/scoring/scoring.h"
#if defined(INVAD_GPU_BENCH_PREPARE)
#include "core/train/denoiser_trainer.h"
#endif

namespace invad::core {
namespace {

using Args = std::map<std::string, std::string>;

std::string Get(const Args& a, const std::string& key, const std::string& def = "") {
  auto it = a.find(key);
  return it == a.end() ? def : it->second;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gpu_bench: %s\n", what.c_str());
  std::exit(2);
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + v.status().ToString());
  return *std::move(v);
}
void OrDie(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

// Model configurations. "default" is what invad-train built by default when the GPU check was
// prepared (hidden 128, depth 2, the filter-bank latent 36x16x16; today's default adds two
// Laplacian channels, 38, which changes only the first and last layers); "paper" is the paper's DiT
// (depth 16, width 2048, 8 heads, patch 1, 272x16x16). The tiny ones keep the dry run on CPU short.
DitConfig ModelConfig(const std::string& name) {
  DitConfig c;
  if (name == "default") {
    c.latent = {36, 16, 16};
    c.hidden_size = 128;
    c.depth = 2;
    c.num_heads = 4;
  } else if (name == "paper") {
    c.latent = {272, 16, 16};
    c.hidden_size = 2048;
    c.depth = 16;
    c.num_heads = 8;
  } else if (name == "tiny") {
    c.latent = {8, 8, 8};
    c.hidden_size = 32;
    c.depth = 1;
    c.num_heads = 2;
  } else if (name == "tiny_paper") {  // the paper's shape of latent, a small network
    c.latent = {272, 16, 16};
    c.hidden_size = 64;
    c.depth = 2;
    c.num_heads = 2;
  } else {
    Die("unknown model " + name);
  }
  return c;
}

// Multiply-adds x2 of one DiT forward pass for one image (the GEMMs and attention products;
// elementwise work is not counted).
double ForwardFlops(const DitConfig& c) {
  const double n = static_cast<double>(c.latent.height / c.patch_size) *
                   static_cast<double>(c.latent.width / c.patch_size);
  const double h = c.hidden_size, m = static_cast<double>(c.mlp_hidden());
  const double pc = static_cast<double>(c.patch_size * c.patch_size * c.latent.channels);
  const double block =
      2 * h * 6 * h + 2 * n * h * 3 * h + 2 * 2 * n * n * h + 2 * n * h * h + 2 * n * h * m * 2;
  return 2 * n * pc * h + 2 * (c.frequency_embedding_size * h + h * h) + c.depth * block +
         2 * h * 2 * h + 2 * n * h * pc;
}

// --- raw files -------------------------------------------------------------------------------

void WriteFloats(const std::string& path, const std::vector<float>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  if (!f) Die("cannot write " + path);
}

std::vector<float> ReadFloats(const std::string& path, size_t n) {
  std::vector<float> v(n);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
  if (!f || f.peek() != EOF) Die(absl::StrCat(path, ": expected exactly ", n, " float32 values"));
  return v;
}

// weights.idx: one line "name d0 d1 ..." per tensor, in the order of weights.f32.
void WriteWeights(const std::string& dir, const NamedTensors& w) {
  std::ofstream idx(dir + "/weights.idx");
  std::vector<float> all;
  for (const auto& [name, raw] : w) {
    idx << name;
    for (int64_t d : raw.shape) idx << ' ' << d;
    idx << '\n';
    if (raw.dtype != DType::kFloat32) Die("weight " + name + " is not float32");
    const float* f = reinterpret_cast<const float*>(raw.bytes.data());
    all.insert(all.end(), f, f + NumElements(raw.shape));
  }
  WriteFloats(dir + "/weights.f32", all);
}

NamedTensors ReadWeights(const std::string& dir) {
  std::ifstream idx(dir + "/weights.idx");
  if (!idx) Die("no " + dir + "/weights.idx");
  std::vector<std::pair<std::string, Shape>> entries;
  size_t total = 0;
  for (std::string line; std::getline(idx, line);) {
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    Shape shape;
    for (int64_t d; ls >> d;) shape.push_back(d);
    total += static_cast<size_t>(NumElements(shape));
    entries.emplace_back(name, shape);
  }
  const std::vector<float> all = ReadFloats(dir + "/weights.f32", total);
  NamedTensors w;
  size_t off = 0;
  for (const auto& [name, shape] : entries) {
    Tensor t(shape);
    std::copy_n(all.data() + off, t.numel(), t.data());
    off += static_cast<size_t>(t.numel());
    w[name] = ToRaw(t);
  }
  return w;
}

Args ReadMeta(const std::string& dir) {
  std::ifstream f(dir + "/meta.txt");
  if (!f) Die("no " + dir + "/meta.txt (run prepare first)");
  Args a;
  for (std::string k, v; f >> k >> v;) a[k] = v;
  return a;
}

// --- inversion helpers -----------------------------------------------------------------------

std::unique_ptr<Denoiser> MakeDit(const DitConfig& c, const NamedTensors& w,
                                  const std::string& device, const std::string& precision) {
  RuntimeOptions o;
  o.device = device;
  o.precision = OrDie(ParsePrecision(precision), "precision");
  return OrDie(CreateNativeDit(c, w, o), "DiT on " + device);
}

std::vector<DdimCoefficients> Plan(int k) {
  NoiseSchedule s = OrDie(NoiseSchedule::Linear(), "schedule");
  return OrDie(InversionPlan(s, k), "plan");
}

// z_T of every sample of `z0` [N, C, H, W], in batches of `batch`.
Tensor InvertAll(Denoiser& d, const Tensor& z0, const std::vector<DdimCoefficients>& plan,
                 int64_t batch) {
  Tensor out = z0;
  for (int64_t i = 0; i < z0.batch(); i += batch) {
    const int64_t n = std::min(batch, z0.batch() - i);
    Tensor part = z0.Slice(i, n);
    OrDie(d.Invert(plan, part), "inversion");
    std::copy_n(part.data(), part.numel(), out.sample(i));
  }
  return out;
}

double RelError(const Tensor& a, const Tensor& ref) {  // ‖a − ref‖₂ / ‖ref‖₂ over the set
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - ref.data()[i];
    num += d * d;
    den += static_cast<double>(ref.data()[i]) * ref.data()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

std::vector<double> Scores(const Calibration& cal, const Tensor& zt) {
  std::vector<double> s;
  for (const LatentScore& l : ScoreLatents(zt, nullptr))
    s.push_back(CalibratedScore(cal, l, nullptr));
  return s;
}

// --- prepare ---------------------------------------------------------------------------------

// Latents with the structure of a normal class: each sample mixes 4 fixed smooth patterns (per
// channel sinusoids, seed 99) with random weights, plus noise of std 0.3, so a denoiser trained
// on them learns a low-dimensional normal set. Anomalous samples add a 3x3 patch of amplitude
// 1..4 in a random direction across channels, from subtle to obvious. Sweeps only need shapes.
Tensor Latents(const LatentShape& l, int n, bool anomalous, uint64_t seed) {
  std::mt19937_64 basis_rng(99);
  std::uniform_real_distribution<float> freq(0.2f, 1.2f), phase(0.f, 6.2832f);
  std::vector<std::vector<float>> basis(4, std::vector<float>(l.numel()));
  for (auto& b : basis) {
    for (int64_t c = 0; c < l.channels; ++c) {
      const float fy = freq(basis_rng), fx = freq(basis_rng), ph = phase(basis_rng);
      for (int64_t y = 0; y < l.height; ++y)
        for (int64_t x = 0; x < l.width; ++x)
          b[(c * l.height + y) * l.width + x] = std::sin(fy * y + fx * x + ph);
    }
  }
  Tensor z({n, l.channels, l.height, l.width});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_int_distribution<int64_t> py(0, l.height - 3), px(0, l.width - 3);
  std::uniform_real_distribution<float> amp(1.0f, 4.0f);
  for (int i = 0; i < n; ++i) {
    float* zi = z.sample(i);
    float w[4];
    for (float& v : w) v = g(rng) * 0.6f;
    for (int64_t j = 0; j < l.numel(); ++j) {
      float v = 0.3f * g(rng);
      for (int b = 0; b < 4; ++b) v += w[b] * basis[b][j];
      zi[j] = v;
    }
    if (!anomalous) continue;
    const int64_t y0 = py(rng), x0 = px(rng);
    const float a = amp(rng);
    for (int64_t c = 0; c < l.channels; ++c) {
      const float dir = g(rng);
      for (int64_t y = y0; y < y0 + 3; ++y)
        for (int64_t x = x0; x < x0 + 3; ++x) zi[(c * l.height + y) * l.width + x] += a * dir;
    }
  }
  return z;
}

#if defined(INVAD_GPU_BENCH_PREPARE)
// The denoiser as invad-train trains it (ε-MSE, AdamW, warm-up + cosine, EMA), on normal latents.
NamedTensors TrainedWeights(const DitConfig& cfg, int steps) {
  DenoiserTrainOptions o;
  o.steps = steps;
  o.batch_size = 16;
  o.seed = 11;
  const auto t0 = std::chrono::steady_clock::now();
  DenoiserTrainResult r =
      OrDie(TrainDenoiser(cfg, InitDitWeights(cfg, 2024), Latents(cfg.latent, 512, false, 0),
                          OrDie(NoiseSchedule::Linear(), "schedule"), o),
            "training");
  std::printf("train steps=%d first_loss=%.4f last_loss=%.4f seconds=%.1f\n", steps,
              r.losses.front(), r.losses.back(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r.ema_weights;
}
#endif

int Prepare(const Args& a) {
#if !defined(INVAD_GPU_BENCH_PREPARE)
  Die("prepare runs in the main build (it trains the model): bench/gpu_check.sh --prepare");
#else
  const std::string dir = Get(a, "out");
  if (dir.empty()) Die("prepare needs --out");
  const bool tiny = a.count("tiny") > 0;
  const std::string model = tiny ? "tiny" : "default";
  const DitConfig cfg = ModelConfig(model);
  const int k = std::stoi(Get(a, "k", "3"));
  const int n_cal = tiny ? 40 : 100, n_test = tiny ? 40 : 200;
  const NamedTensors w =
      TrainedWeights(cfg, std::stoi(Get(a, "train_steps", tiny ? "300" : "600")));
  WriteWeights(dir, w);
  const auto plan = Plan(k);
  auto f32 = MakeDit(cfg, w, "cpu", "fp32");
  auto b16 = MakeDit(cfg, w, "cpu", "bf16");

  // Calibrate on normal latents' fp32 z_T, as invad-train calibrates on held-out normal images.
  const Tensor cal_zt = InvertAll(*f32, Latents(cfg.latent, n_cal, false, 1), plan, 32);
  Tensor maps;
  const std::vector<LatentScore> cal_scores = ScoreLatents(cal_zt, &maps);
  CalibrationOptions co;
  co.target_fpr = 0.05;
  const Calibration cal = OrDie(
      Calibrate(cal_scores, {}, std::vector<double>(maps.data(), maps.data() + maps.numel()), co),
      "calibrate");

  // The test set: half normal, half anomalous, interleaved.
  Tensor z0({n_test, cfg.latent.channels, cfg.latent.height, cfg.latent.width});
  const Tensor normal = Latents(cfg.latent, n_test / 2, false, 2);
  const Tensor anomal = Latents(cfg.latent, n_test - n_test / 2, true, 3);
  for (int i = 0; i < n_test; ++i) {
    const Tensor& src = i % 2 == 0 ? normal : anomal;
    std::copy_n(src.sample(i / 2), src.sample_numel(), z0.sample(i));
  }
  const Tensor zt32 = InvertAll(*f32, z0, plan, 32);
  const Tensor zt16 = InvertAll(*b16, z0, plan, 32);
  const std::vector<double> s32 = Scores(cal, zt32), s16 = Scores(cal, zt16);
  double max_dev = 0;
  int flagged = 0;
  for (size_t i = 0; i < s32.size(); ++i) {
    max_dev = std::max(max_dev, std::fabs(s16[i] - s32[i]));
    flagged += s32[i] > cal.image_threshold;
  }
  const double bf16_err = RelError(zt16, zt32);
  // A verdict may flip only where the fp32 score is this close to the threshold: 4x the largest
  // score change bf16 caused on CPU, and never less than 0.1 % of the threshold.
  const double margin = std::max(4 * max_dev, 1e-3 * std::fabs(cal.image_threshold));

  std::vector<float> z0v(z0.data(), z0.data() + z0.numel());
  WriteFloats(dir + "/z0.f32", z0v);
  WriteFloats(dir + "/zt_fp32.f32", std::vector<float>(zt32.data(), zt32.data() + zt32.numel()));
  std::ofstream meta(dir + "/meta.txt");
  meta.precision(17);
  meta << "model " << model << "\nk " << k << "\nn " << n_test << "\ndiff_center "
       << cal.diff.center << "\ndiff_scale " << cal.diff.scale << "\nsq_center "
       << cal.sq_norm.center << "\nsq_scale " << cal.sq_norm.scale << "\nthreshold "
       << cal.image_threshold << "\ncpu_bf16_rel_err " << bf16_err << "\nmargin " << margin << "\n";
  std::printf(
      "prepare model=%s n=%d k=%d threshold=%.6g flagged_fp32=%d cpu_bf16_rel_err=%.3g "
      "max_bf16_score_dev=%.3g margin=%.3g\n",
      model.c_str(), n_test, k, cal.image_threshold, flagged, bf16_err, max_dev, margin);
  return meta ? 0 : 2;
#endif
}

// --- check -----------------------------------------------------------------------------------

int Check(const Args& a) {
  const std::string dir = Get(a, "data"), device = Get(a, "device", "cpu");
  const std::string precision = Get(a, "precision", "bf16");
  const Args m = ReadMeta(dir);
  const DitConfig cfg = ModelConfig(Get(m, "model"));
  const int n = std::stoi(Get(m, "n")), k = std::stoi(Get(m, "k"));
  Calibration cal;
  cal.diff = {std::stod(Get(m, "diff_center")), std::stod(Get(m, "diff_scale"))};
  cal.sq_norm = {std::stod(Get(m, "sq_center")), std::stod(Get(m, "sq_scale"))};
  cal.image_threshold = std::stod(Get(m, "threshold"));
  const double bound = 2 * std::stod(Get(m, "cpu_bf16_rel_err"));
  const double margin = std::stod(Get(m, "margin"));

  const Shape shape = {n, cfg.latent.channels, cfg.latent.height, cfg.latent.width};
  const size_t numel = static_cast<size_t>(NumElements(shape));
  Tensor z0(shape), ref(shape);
  std::vector<float> v = ReadFloats(dir + "/z0.f32", numel);
  std::copy(v.begin(), v.end(), z0.data());
  v = ReadFloats(dir + "/zt_fp32.f32", numel);
  std::copy(v.begin(), v.end(), ref.data());

  auto dit = MakeDit(cfg, ReadWeights(dir), device, precision);
  const Tensor zt = InvertAll(*dit, z0, Plan(k), 64);
  const double err = RelError(zt, ref);
  const std::vector<double> got = Scores(cal, zt), want = Scores(cal, ref);
  int agree = 0, far_flips = 0;
  double worst_flip = 0;
  for (int i = 0; i < n; ++i) {
    const bool same = (got[i] > cal.image_threshold) == (want[i] > cal.image_threshold);
    agree += same;
    if (!same) {
      const double dist = std::fabs(want[i] - cal.image_threshold);
      worst_flip = std::max(worst_flip, dist);
      far_flips += dist > margin;
    }
  }
  const double agreement = static_cast<double>(agree) / n;
  const bool ok = err <= bound && agreement >= 0.99 && far_flips == 0;
  std::printf(
      "check device=%s precision=%s n=%d rel_err=%.3g bound=%.3g agreement=%.4f "
      "worst_flip_distance=%.3g margin=%.3g far_flips=%d result=%s\n",
      device.c_str(), precision.c_str(), n, err, bound, agreement, worst_flip, margin, far_flips,
      ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

// --- timing ----------------------------------------------------------------------------------

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double PeakRssBytes() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024;
  }
  return 0;
}

void ResetDeviceMemoryPeak(const torch::Device& d) {
#if defined(INVAD_WITH_CUDA)
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.index());
#else
  (void)d;
#endif
}

// Peak bytes the device allocator held since the last reset (cuda); the process's peak RSS (cpu).
double DeviceMemoryPeak(const torch::Device& d) {
#if defined(INVAD_WITH_CUDA)
  if (d.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index());
    // allocated_bytes[0]: the aggregate over pools (StatType::AGGREGATE is 0 in every LibTorch;
    // the enum's namespace moved in 2.5, the index did not).
    return static_cast<double>(stats.allocated_bytes[0].peak);
  }
#else
  (void)d;
#endif
  return PeakRssBytes();
}

torch::Device DeviceOf(const std::string& name) {
  torch::Device d = OrDie(internal::ParseDevice(name), "device");
  if (d.is_cuda() && !d.has_index()) d = torch::Device(torch::kCUDA, 0);
  OrDie(CheckRuntimeOptions({name, Precision::kFp32}), "device");
  return d;
}

int Matmul(const Args& a) {
  const std::string device = Get(a, "device", "cpu"), precision = Get(a, "precision", "bf16");
  const torch::Device d = DeviceOf(device);
  const int64_t n = std::stoll(Get(a, "n", d.is_cuda() ? "8192" : "512"));
  const int reps = std::stoi(Get(a, "reps", d.is_cuda() ? "50" : "5"));
  const auto dtype = precision == "fp32"   ? torch::kFloat32
                     : precision == "fp16" ? torch::kFloat16
                                           : torch::kBFloat16;
  c10::InferenceMode mode;
  internal::DeviceContext ctx(d);
  c10::StreamGuard guard(ctx.stream());
  const auto opts = torch::TensorOptions().dtype(dtype).device(d);
  torch::Tensor x = torch::randn({n, n}, opts), y = torch::randn({n, n}, opts), out;
  for (int i = 0; i < 3; ++i) out = torch::mm(x, y);
  ctx.Synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) out = torch::mm(x, y);
  ctx.Synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double flops = 2.0 * n * n * n * reps / s;
  std::printf("matmul device=%s precision=%s n=%lld reps=%d flops=%.4g\n", device.c_str(),
              precision.c_str(), static_cast<long long>(n), reps, flops);
  return 0;
}

int Sweep(const Args& a) {
  const std::string device = Get(a, "device", "cpu"), precision = Get(a, "precision", "bf16");
  const std::string model = Get(a, "model", "default");
  const torch::Device d = DeviceOf(device);
  const int k = std::stoi(Get(a, "k", "3"));
  const int reps = std::stoi(Get(a, "reps", "20"));
  const double peak = std::stod(Get(a, "peak_flops", "0"));
  const double budget_s = std::stod(Get(a, "time_limit", "120"));
  std::vector<int64_t> batches;
  for (std::stringstream ss(Get(a, "batches", "1,2,4,8,16,32,64,128,256")); ss.good();) {
    std::string b;
    std::getline(ss, b, ',');
    if (!b.empty()) batches.push_back(std::stoll(b));
  }
  const DitConfig cfg = ModelConfig(model);
  const auto t_init = std::chrono::steady_clock::now();
  auto dit = MakeDit(cfg, InitDitWeights(cfg, 7, /*zero_init_output=*/false), device, precision);
  const double init_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_init).count();
  const auto plan = Plan(k);
  const double flops_per_image = ForwardFlops(cfg) * k;
  std::printf("model name=%s params=%lld flops_per_image=%.4g init_s=%.1f\n", model.c_str(),
              static_cast<long long>(cfg.NumParameters()), flops_per_image, init_s);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t b : batches) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
        budget_s) {
      std::printf("sweep model=%s batch=%lld skipped=time_limit\n", model.c_str(),
                  static_cast<long long>(b));
      continue;
    }
    Tensor z = Latents(cfg.latent, static_cast<int>(b), false, 5);
    const Tensor z0 = z;
    ResetDeviceMemoryPeak(d);
    for (int i = 0; i < 2; ++i) {  // warm-up (allocator, kernels)
      z = z0;
      OrDie(dit->Invert(plan, z), "inversion");
    }
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      z = z0;
      const auto t0 = std::chrono::steady_clock::now();
      OrDie(dit->Invert(plan, z), "inversion");  // upload, K steps, download (synchronous)
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    const double p50 = Percentile(ms, 0.5), p99 = Percentile(ms, 0.99);
    const double ips = static_cast<double>(b) / (p50 / 1e3);
    const double fl = ips * flops_per_image;
    std::printf(
        "sweep model=%s device=%s precision=%s k=%d batch=%lld reps=%d p50_ms=%.3f p99_ms=%.3f "
        "images_per_s=%.1f mem_mib=%.0f flops=%.4g frac_of_matmul=%.3f\n",
        model.c_str(), device.c_str(), precision.c_str(), k, static_cast<long long>(b), reps, p50,
        p99, ips, DeviceMemoryPeak(d) / (1 << 20), fl, peak > 0 ? fl / peak : 0.0);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace invad::core

int main(int argc, char** argv) {
  using namespace invad::core;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s prepare|check|matmul|sweep [--key=value ...]\n", argv[0]);
    return 2;
  }
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) != 0) Die("bad argument " + s);
    const size_t eq = s.find('=');
    a[s.substr(2, eq == std::string::npos ? std::string::npos : eq - 2)] =
        eq == std::string::npos ? "1" : s.substr(eq + 1);
  }
  if (absl::Status s = ConfigureProcess(std::stoi(Get(a, "threads", "0"))); !s.ok())
    Die(s.ToString());
  const std::string cmd = argv[1];
  if (cmd == "prepare") return Prepare(a);
  if (cmd == "check") return Check(a);
  if (cmd == "matmul") return Matmul(a);
  if (cmd == "sweep") return Sweep(a);
  Die("unknown command " + cmd);
}
