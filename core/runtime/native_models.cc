// LibTorch translation unit 2 of the runtime: native models (DiT denoiser, conv encoder) and their
// reference initialisation.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "core/base/status_macros.h"
#include "core/runtime/internal/conv_encoder.h"
#include "core/runtime/internal/dit.h"
#include "core/runtime/internal/torch_util.h"
#include "core/runtime/native.h"

namespace invad::core {

using internal::Guarded;

// ---------------------------------------------------------------------------------------------
// Configs

absl::Status DitConfig::Validate() const {
  auto bad = [](const char* field, auto v, const char* want) {
    return absl::InvalidArgumentError(absl::StrCat("dit.", field, " = ", v, ": ", want));
  };
  if (latent.channels < 1) return bad("latent.channels", latent.channels, "must be >= 1");
  if (patch_size < 1) return bad("patch_size", patch_size, "must be >= 1");
  if (latent.height < patch_size || latent.height % patch_size != 0) {
    return bad("latent.height", latent.height, "must be a positive multiple of patch_size");
  }
  if (latent.width < patch_size || latent.width % patch_size != 0) {
    return bad("latent.width", latent.width, "must be a positive multiple of patch_size");
  }
  if (hidden_size < 4 || hidden_size % 4 != 0)
    return bad("hidden_size", hidden_size, "must be a multiple of 4");
  if (num_heads < 1 || hidden_size % num_heads != 0)
    return bad("num_heads", num_heads, "must divide hidden_size");
  if (depth < 1 || depth > 64) return bad("depth", depth, "must be in [1, 64]");
  if (mlp_ratio_x100 < 25) return bad("mlp_ratio_x100", mlp_ratio_x100, "must be >= 25");
  if (frequency_embedding_size < 2 || frequency_embedding_size % 2 != 0) {
    return bad("frequency_embedding_size", frequency_embedding_size, "must be even and >= 2");
  }
  return absl::OkStatus();
}

int64_t DitConfig::NumParameters() const {
  const int64_t h = hidden_size, c = latent.channels, p = patch_size, f = frequency_embedding_size;
  const int64_t n = (latent.height / p) * (latent.width / p);
  const int64_t m = mlp_hidden();
  const int64_t block =
      (3 * h * h + 3 * h) + (h * h + h) + (m * h + m) + (h * m + h) + (6 * h * h + 6 * h);
  return (c * p * p * h + h) + n * h + (f * h + h) + (h * h + h) + depth * block +
         (2 * h * h + 2 * h) + (p * p * c * h + p * p * c);
}

absl::Status ConvEncoderConfig::Validate() const {
  if (input_channels != 1 && input_channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("conv_encoder.input_channels = ", input_channels, ": must be 1 or 3"));
  }
  if (input_size < 8) return absl::InvalidArgumentError("conv_encoder.input_size must be >= 8");
  if (stage_channels.empty())
    return absl::InvalidArgumentError("conv_encoder.stage_channels is empty");
  for (int c : stage_channels) {
    if (c < 1) return absl::InvalidArgumentError("conv_encoder.stage_channels must be >= 1");
  }
  if (output_stages.empty())
    return absl::InvalidArgumentError("conv_encoder.output_stages is empty");
  for (int s : output_stages) {
    if (s < 0 || s >= static_cast<int>(stage_channels.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("conv_encoder.output_stages: stage ", s, " does not exist"));
    }
  }
  if (latent_size < 1) return absl::InvalidArgumentError("conv_encoder.latent_size must be >= 1");
  return absl::OkStatus();
}

LatentShape ConvEncoderConfig::latent() const {
  int64_t c = 0;
  for (int s : output_stages) c += stage_channels[s];
  return {c, latent_size, latent_size};
}

namespace {

// ---------------------------------------------------------------------------------------------
// Weight binding: every expected name present with its exact shape, nothing unexpected.

class WeightBinder {
 public:
  WeightBinder(const NamedTensors& w, torch::Device device, std::string model)
      : weights_(w), device_(device), model_(std::move(model)) {}

  torch::Tensor Take(const std::string& name, const Shape& shape) {
    used_.insert(name);
    if (!status_.ok()) return {};
    auto it = weights_.find(name);
    if (it == weights_.end()) {
      status_ = absl::InvalidArgumentError(absl::StrCat(model_, ": missing weight '", name, "'"));
      return {};
    }
    if (it->second.shape != shape) {
      status_ = absl::InvalidArgumentError(absl::StrCat(model_, ": weight '", name, "' has shape ",
                                                        ShapeToString(it->second.shape),
                                                        ", expected ", ShapeToString(shape)));
      return {};
    }
    auto t = internal::ToTorch(it->second, device_);
    if (!t.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat(model_, ": weight '", name, "': ", t.status().message()));
      return {};
    }
    return *t;
  }

  absl::Status Finish() const {
    if (!status_.ok()) return status_;
    std::vector<std::string> extra;
    for (const auto& [name, _] : weights_) {
      if (!used_.count(name)) extra.push_back(name);
    }
    if (!extra.empty()) {
      if (extra.size() > 5) extra.resize(5);
      return absl::InvalidArgumentError(absl::StrCat(
          model_,
          ": unexpected weights (config and weights disagree): ", absl::StrJoin(extra, ", ")));
    }
    return absl::OkStatus();
  }

 private:
  const NamedTensors& weights_;
  torch::Device device_;
  std::string model_;
  std::set<std::string> used_;
  absl::Status status_;
};

std::optional<torch::ScalarType> LowPrecision(Precision p) {
  if (p == Precision::kBf16) return torch::kBFloat16;
  if (p == Precision::kFp16) return torch::kFloat16;
  return std::nullopt;
}

torch::Tensor Modulate(const torch::Tensor& x, const torch::Tensor& shift,
                       const torch::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// DiT (method.md §3.2)

namespace internal {

void DitLinear::Prepare(std::optional<torch::ScalarType> lp) {
  if (lp && w.defined()) {
    w_lp = w.detach().to(*lp);
    b_lp = b.detach().to(*lp);
  }
}

torch::Tensor DitLinear::operator()(const torch::Tensor& x) const {
  if (w_lp.defined())
    return torch::linear(x.to(w_lp.scalar_type()), w_lp, b_lp).to(torch::kFloat32);
  return torch::linear(x, w, b);
}

std::vector<DitParameter> DitModel::Parameters() {
  const int64_t h = cfg.hidden_size, c = cfg.latent.channels, p = cfg.patch_size;
  const int64_t tokens = (cfg.latent.height / p) * (cfg.latent.width / p), m = cfg.mlp_hidden();
  std::vector<DitParameter> out = {
      {"x_embedder.proj.weight", &patch_w, {h, c, p, p}},
      {"x_embedder.proj.bias", &patch_b, {h}},
      {"pos_embed", &pos_embed, {1, tokens, h}},
  };
  auto linear = [&](const std::string& name, DitLinear& l, int64_t o, int64_t i) {
    out.push_back({name + ".weight", &l.w, {o, i}});
    out.push_back({name + ".bias", &l.b, {o}});
  };
  linear("t_embedder.mlp.0", t_mlp0, h, cfg.frequency_embedding_size);
  linear("t_embedder.mlp.2", t_mlp2, h, h);
  blocks.resize(cfg.depth);
  for (int i = 0; i < cfg.depth; ++i) {
    const std::string pre = absl::StrCat("blocks.", i, ".");
    linear(pre + "attn.qkv", blocks[i].qkv, 3 * h, h);
    linear(pre + "attn.proj", blocks[i].proj, h, h);
    linear(pre + "mlp.fc1", blocks[i].fc1, m, h);
    linear(pre + "mlp.fc2", blocks[i].fc2, h, m);
    linear(pre + "adaLN_modulation.1", blocks[i].ada, 6 * h, h);
  }
  linear("final_layer.adaLN_modulation.1", final_ada, 2 * h, h);
  linear("final_layer.linear", final_linear, p * p * c, h);
  return out;
}

void DitModel::Prepare() {
  for (DitLinear* l : {&t_mlp0, &t_mlp2, &final_ada, &final_linear}) l->Prepare(lp);
  for (DitBlock& b : blocks) {
    for (DitLinear* l : {&b.qkv, &b.proj, &b.fc1, &b.fc2, &b.ada}) l->Prepare(lp);
  }
  if (lp) {
    patch_w_lp = patch_w.detach().to(*lp);
    patch_b_lp = patch_b.detach().to(*lp);
  }
  const int64_t half = cfg.frequency_embedding_size / 2;
  freqs = torch::exp(-std::log(10000.0) *
                     torch::arange(0, half, torch::TensorOptions().dtype(torch::kFloat32)) / half)
              .to(patch_w.device());
}

torch::Tensor DitModel::Forward(const torch::Tensor& x_in, const torch::Tensor& t) const {
  const int64_t bsz = x_in.size(0), h = cfg.hidden_size, p = cfg.patch_size,
                c = cfg.latent.channels;
  const int64_t gh = cfg.latent.height / p, gw = cfg.latent.width / p, n = gh * gw;
  const int64_t heads = cfg.num_heads, hd = h / heads;

  // Patch embedding (conv p×p, stride p) → tokens n = gw·row + col; then the trainable position
  // embedding.
  torch::Tensor x = lp ? torch::conv2d(x_in.to(*lp), patch_w_lp, patch_b_lp, p).to(torch::kFloat32)
                       : torch::conv2d(x_in, patch_w, patch_b, p);
  x = x.flatten(2).transpose(1, 2) + pos_embed;  // [B, N, h]

  // Timestep embedding: [cos, sin] (cos first) → Linear → SiLU → Linear.
  torch::Tensor args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
  torch::Tensor temb = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  torch::Tensor cond =
      torch::silu(t_mlp2(torch::silu(t_mlp0(temb))));  // SiLU(c), shared by every adaLN

  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (const DitBlock& blk : blocks) {
    std::vector<torch::Tensor> mod =
        blk.ada(cond).chunk(6, 1);  // shift/scale/gate msa, shift/scale/gate mlp
    torch::Tensor y = Modulate(torch::layer_norm(x, {h}, {}, {}, 1e-6), mod[0], mod[1]);
    torch::Tensor qkv = blk.qkv(y).view({bsz, n, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    torch::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
    if (lp) {
      q = q.to(*lp);
      k = k.to(*lp);
      v = v.to(*lp);
    }
    torch::Tensor attn =
        torch::softmax(torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat32) * scale, -1);
    if (lp) attn = attn.to(*lp);
    torch::Tensor o =
        torch::matmul(attn, v).to(torch::kFloat32).transpose(1, 2).reshape({bsz, n, h});
    x = x + mod[2].unsqueeze(1) * blk.proj(o);
    y = Modulate(torch::layer_norm(x, {h}, {}, {}, 1e-6), mod[3], mod[4]);
    x = x + mod[5].unsqueeze(1) * blk.fc2(torch::gelu(blk.fc1(y), "tanh"));
  }
  std::vector<torch::Tensor> fmod = final_ada(cond).chunk(2, 1);  // shift, scale
  x = final_linear(
      Modulate(torch::layer_norm(x, {h}, {}, {}, 1e-6), fmod[0], fmod[1]));  // [B, N, p·p·C]
  // Unpatchify: (B, gh, gw, p, p, C) → (B, C, gh·p, gw·p).
  return x.reshape({bsz, gh, gw, p, p, c})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({bsz, c, gh * p, gw * p});
}

absl::StatusOr<DitModel> BindDit(const DitConfig& cfg, const NamedTensors& weights,
                                 const torch::Device& device, Precision precision) {
  if (absl::Status s = cfg.Validate(); !s.ok()) return s;
  DitModel m;
  m.cfg = cfg;
  m.lp = LowPrecision(precision);
  absl::Status bound;
  absl::Status s = Guarded("binding DiT weights", [&] {
    WeightBinder wb(weights, device, "DiT");
    for (DitParameter& p : m.Parameters()) *p.tensor = wb.Take(p.name, p.shape);
    bound = wb.Finish();
    if (bound.ok()) m.Prepare();  // everything input-independent is prepared once, here
  });
  if (!s.ok()) return s;
  if (!bound.ok()) return bound;
  return m;
}

}  // namespace internal

namespace {

class NativeDit final : public Denoiser {
 public:
  NativeDit(internal::DitModel model, torch::Device device, Precision p)
      : model_(std::move(model)), ctx_(device), device_(device), precision_(p) {}

  absl::Status Predict(const Tensor& z, absl::Span<const int> timesteps, Tensor* eps) override {
    if (absl::Status s = ValidateDenoiserInput(z, timesteps, model_.cfg.latent); !s.ok()) return s;
    return Guarded("native DiT forward", [&] {
      c10::InferenceMode guard;
      c10::StreamGuard on_stream(ctx_.stream());
      std::vector<int64_t> tv(timesteps.begin(), timesteps.end());
      torch::Tensor t = torch::tensor(tv, torch::kInt64).to(device_, /*non_blocking=*/true);
      ctx_.Download(model_.Forward(ctx_.Upload(z), t), eps);
    });
  }

  // z goes to the device once, stays there for every step, and z_T comes back once. The update is
  // DdimStep's arithmetic, in float32 on the device: x̂0 = a·z − b·ε̂, z ← c·x̂0 + d·ε̂ (the
  // model's bf16/fp16 GEMMs return float32).
  absl::Status Invert(absl::Span<const DdimCoefficients> plan, Tensor& z) override {
    if (plan.empty()) return absl::OkStatus();
    std::vector<int> first(z.batch(), plan.front().timestep);
    if (absl::Status s = ValidateDenoiserInput(z, first, model_.cfg.latent); !s.ok()) return s;
    for (const DdimCoefficients& c : plan) {  // as DdimStep checks
      if (!(c.sqrt_recip_m1_alpha_bar > 0.0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "DDIM step at t=", c.timestep, " has alpha_bar=", c.alpha_bar, " (no noise)"));
      }
    }
    return Guarded("native DiT inversion", [&] {
      c10::InferenceMode guard;
      c10::StreamGuard on_stream(ctx_.stream());
      torch::Tensor x = ctx_.Upload(z);
      const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device_);
      for (const DdimCoefficients& c : plan) {
        const torch::Tensor t = torch::full({z.batch()}, c.timestep, i64);
        const torch::Tensor eps = model_.Forward(x, t);
        const torch::Tensor x0 = x * static_cast<float>(c.sqrt_recip_alpha_bar) -
                                 eps * static_cast<float>(c.sqrt_recip_m1_alpha_bar);
        x = x0 * static_cast<float>(c.sqrt_alpha_bar_target) +
            eps * static_cast<float>(c.sqrt_one_minus_alpha_bar_target);
      }
      ctx_.Download(x, &z);
    });
  }

  bool device_resident() const override { return ctx_.is_cuda(); }
  LatentShape latent_shape() const override { return model_.cfg.latent; }
  std::string Describe() const override {
    const DitConfig& c = model_.cfg;
    return absl::StrCat("native-dit(depth=", c.depth, ", hidden=", c.hidden_size,
                        ", heads=", c.num_heads, ", patch=", c.patch_size,
                        ", params=", c.NumParameters(), ", ", PrecisionName(precision_), ", ",
                        device_.str(), ")");
  }

 private:
  internal::DitModel model_;
  internal::DeviceContext ctx_;
  torch::Device device_;
  Precision precision_;
};

// ---------------------------------------------------------------------------------------------
// Conv encoder

class NativeConvEncoder final : public Encoder {
 public:
  static absl::StatusOr<std::unique_ptr<NativeConvEncoder>> Create(const ConvEncoderConfig& cfg,
                                                                   const NamedTensors& weights,
                                                                   const RuntimeOptions& options) {
    if (absl::Status s = cfg.Validate(); !s.ok()) return s;
    if (absl::Status s = CheckRuntimeOptions(options); !s.ok()) return s;
    auto device = internal::ParseDevice(options.device);
    if (!device.ok()) return device.status();
    auto stages = internal::BindConvEncoder(cfg, weights, *device);
    if (!stages.ok()) return stages.status();
    return std::unique_ptr<NativeConvEncoder>(
        new NativeConvEncoder(cfg, *device, std::move(*stages)));
  }

  absl::Status Encode(const Tensor& images, Tensor* z0) override {
    if (absl::Status s = CheckShape(
            images, {-1, cfg_.input_channels, cfg_.input_size, cfg_.input_size}, "encoder input");
        !s.ok()) {
      return s;
    }
    return Guarded("native conv encoder forward", [&] {
      c10::InferenceMode guard;
      internal::CopyOut(
          internal::ConvEncoderForward(cfg_, stages_, internal::View(images).to(device_)), z0);
    });
  }
  LatentShape latent_shape() const override { return cfg_.latent(); }
  std::string Describe() const override {
    return absl::StrCat("native-conv-encoder(stages=", absl::StrJoin(cfg_.stage_channels, "/"),
                        ", outputs=", absl::StrJoin(cfg_.output_stages, "/"), ", ", device_.str(),
                        ")");
  }

 private:
  NativeConvEncoder(const ConvEncoderConfig& cfg, torch::Device device,
                    std::vector<internal::ConvStage> stages)
      : cfg_(cfg), device_(device), stages_(std::move(stages)) {}
  ConvEncoderConfig cfg_;
  torch::Device device_;
  std::vector<internal::ConvStage> stages_;
};

// ---------------------------------------------------------------------------------------------
// Filter-bank encoder: fixed Gaussian-derivative responses of the grey image at several scales,
// summarised per latent cell by their mean and maximum magnitude, plus each channel's cell mean and
// standard deviation. Nothing is learned; it is the "handcrafted features" encoder candidate.

// Normalised Gaussian taps at offsets −r..r.
std::vector<double> GaussianTaps(double sigma, int r) {
  std::vector<double> taps(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += taps[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& t : taps) t /= sum;
  return taps;
}

// Blur of the Laplacian's energy before its per-cell maximum: integrates a defect's edge over a few
// pixels so one noisy pixel does not dominate the maximum.
constexpr double kLaplacianEnergySigma = 1.5;

// Blurs of the periodic residual before its per-cell statistics, pixels.
constexpr double kPeriodicSigmas[] = {1.5, 3.0};
// The smallest input the periodic channels accept: the σ = 3 blur reflect-pads by 9 px.
constexpr int kPeriodicMinInput = 16;

// The lag in [lo, hi) of the highest local maximum of the autocorrelation `ac` (indexed by lag);
// lo when there is none.
int64_t AutocorrelationPeak(const float* ac, int64_t stride, int64_t lo, int64_t hi) {
  int64_t best = lo;
  float best_value = -std::numeric_limits<float>::infinity();
  for (int64_t i = std::max<int64_t>(lo, 1); i < hi; ++i) {
    const float v = ac[i * stride];
    if (v >= ac[(i - 1) * stride] && v >= ac[(i + 1) * stride] && v > best_value) {
      best_value = v;
      best = i;
    }
  }
  return best;
}

// grey [N, 1, H, W] minus, per image, the mean of its neighbours one dominant period away along x
// and along y (those inside the image; FilterBankConfig::periodic).
torch::Tensor PeriodicResidual(const torch::Tensor& grey) {
  const int64_t h = grey.size(2), w = grey.size(3);
  const torch::Tensor centred = grey - grey.mean({2, 3}, /*keepdim=*/true);
  const torch::Tensor f = torch::fft::rfft2(centred);
  // Circular autocorrelation; lags are read only up to half the image, as the period.
  const torch::Tensor ac =
      torch::fft::irfft2(f * f.conj(), c10::IntArrayRef{h, w}).to(torch::kCPU).contiguous();
  torch::Tensor out = torch::empty_like(grey);
  for (int64_t b = 0; b < grey.size(0); ++b) {
    const float* a = ac.data_ptr<float>() + b * h * w;
    const int64_t px = AutocorrelationPeak(a, 1, 4, w / 2 - 1);
    const int64_t py = AutocorrelationPeak(a, w, 4, h / 2 - 1);
    const torch::Tensor g = grey[b][0];
    torch::Tensor sum = torch::zeros_like(g), count = torch::zeros_like(g);
    auto add = [&](int64_t dim, int64_t lag) {  // neighbours at +lag and −lag along dim
      const int64_t n = g.size(dim) - lag;
      if (n <= 0) return;
      sum.narrow(dim, 0, n).add_(g.narrow(dim, lag, n));
      count.narrow(dim, 0, n).add_(1);
      sum.narrow(dim, lag, n).add_(g.narrow(dim, 0, n));
      count.narrow(dim, lag, n).add_(1);
    };
    add(1, px);
    add(0, py);
    out[b][0].copy_(g - sum / count.clamp_min(1));
  }
  return out;
}

// grey [N, 1, H, W]: the foreground mask (1 inside) of each image and the fraction of its border
// pixels the foreground covers (ForegroundRoundness).
struct Foreground {
  torch::Tensor mask;    // [N, 1, H, W], 0/1
  torch::Tensor border;  // [N]
};
Foreground ForegroundOf(const torch::Tensor& grey) {
  const std::vector<int64_t> hw{2, 3};
  torch::Tensor t = grey.mean(hw, /*keepdim=*/true);
  for (int i = 0; i < 10; ++i) {  // isodata: the threshold halfway between the classes' means
    const torch::Tensor hi = (grey > t).to(grey.dtype()), lo = 1 - hi;
    t = 0.5 * ((grey * hi).sum(hw, true) / hi.sum(hw, true).clamp_min(1) +
               (grey * lo).sum(hw, true) / lo.sum(hw, true).clamp_min(1));
  }
  torch::Tensor mask = (grey > t).to(grey.dtype());
  const int64_t h = grey.size(2), w = grey.size(3);
  torch::Tensor border =
      torch::cat(
          {mask.select(2, 0), mask.select(2, h - 1), mask.select(3, 0), mask.select(3, w - 1)}, 2)
          .mean({1, 2});
  const torch::Tensor dark = (border > 0.5).to(grey.dtype()).view({-1, 1, 1, 1});
  mask = dark * (1 - mask) + (1 - dark) * mask;  // the class that holds fewer border pixels
  border = torch::min(border, 1 - border);
  return {mask, border};
}

// x [N, C, H, W] rotated by `angle` about per-image centres cx, cy [N] (normalised coordinates,
// align_corners = false), bilinear, border-padded: out(p) = x(R(angle)·(p − c) + c).
torch::Tensor RotateAbout(const torch::Tensor& x, const torch::Tensor& cx, const torch::Tensor& cy,
                          double angle, bool nearest = false) {
  namespace F = torch::nn::functional;
  const double c = std::cos(angle), s = std::sin(angle);
  const torch::Tensor theta =
      torch::stack({torch::full_like(cx, c), torch::full_like(cx, -s), cx - (c * cx - s * cy),
                    torch::full_like(cx, s), torch::full_like(cx, c), cy - (s * cx + c * cy)},
                   1)
          .view({-1, 2, 3});
  const torch::Tensor grid = F::affine_grid(theta, x.sizes(), /*align_corners=*/false);
  auto options = F::GridSampleFuncOptions().padding_mode(torch::kBorder).align_corners(false);
  if (nearest) options.mode(torch::kNearest);
  return F::grid_sample(x, grid, options);
}

// The foreground's centroid per image, normalised coordinates (image centre when empty).
std::pair<torch::Tensor, torch::Tensor> CentroidOf(const torch::Tensor& mask) {
  const int64_t h = mask.size(2), w = mask.size(3);
  const auto opt = mask.options();
  const torch::Tensor xs = (2 * torch::arange(w, opt) + 1) / w - 1;  // pixel centres
  const torch::Tensor ys = (2 * torch::arange(h, opt) + 1) / h - 1;
  const torch::Tensor n = mask.sum({1, 2, 3});
  const torch::Tensor cx = (mask * xs.view({1, 1, 1, w})).sum({1, 2, 3}) / n.clamp_min(1);
  const torch::Tensor cy = (mask * ys.view({1, 1, h, 1})).sum({1, 2, 3}) / n.clamp_min(1);
  return {cx, cy};
}

// grey [N, 1, H, W] minus the mean of its rotations by ±kRotationalAngle about each image's
// foreground centroid (FilterBankConfig::rotational).
torch::Tensor RotationalResidual(const torch::Tensor& grey) {
  const auto [cx, cy] = CentroidOf(ForegroundOf(grey).mask);
  return grey - 0.5 * (RotateAbout(grey, cx, cy, kRotationalAngle) +
                       RotateAbout(grey, cx, cy, -kRotationalAngle));
}

// x [N, 1, H, W] blurred with the 1-D `taps` (odd length) along both axes, reflect-padded, as
// weighted sums of shifted slices.
torch::Tensor SeparableBlur(const torch::Tensor& x, const std::vector<double>& taps) {
  const int64_t r = static_cast<int64_t>(taps.size() / 2);
  const int64_t h = x.size(2), w = x.size(3);
  const torch::Tensor p = torch::reflection_pad2d(x, {r, r, r, r});
  torch::Tensor rows = torch::zeros({x.size(0), x.size(1), h + 2 * r, w}, x.options());
  for (int64_t i = 0; i <= 2 * r; ++i) rows.add_(p.narrow(3, i, w), taps[i]);
  torch::Tensor out = torch::zeros_like(x);
  for (int64_t i = 0; i <= 2 * r; ++i) out.add_(rows.narrow(2, i, h), taps[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lattice residual (FilterBankConfig::lattice).

// The normalised linear autocorrelation of each grey image [N, 1, H, W], on the CPU as [N, 2H, 2W]:
// lag (dy, dx) at ((dy mod 2H), (dx mod 2W)), divided by the overlap (H − |dy|)(W − |dx|) and by
// the zero lag (all zeros for a flat image).
torch::Tensor NormalisedAutocorrelation(const torch::Tensor& grey) {
  const int64_t h = grey.size(2), w = grey.size(3);
  const torch::Tensor centred = grey - grey.mean({2, 3}, /*keepdim=*/true);
  const torch::Tensor f = torch::fft::rfft2(torch::constant_pad_nd(centred, {0, w, 0, h}));
  torch::Tensor ac =
      torch::fft::irfft2(f * f.conj(), c10::IntArrayRef{2 * h, 2 * w}).squeeze(1).to(torch::kCPU);
  const auto overlap = [&](int64_t n) {  // n − |lag| for the 2n circular lag indices
    const torch::Tensor i = torch::arange(2 * n, ac.options());
    return (n - torch::minimum(i, 2 * n - i)).clamp_min(1);
  };
  ac = ac / (overlap(h).view({1, -1, 1}) * overlap(w).view({1, 1, -1}));
  const torch::Tensor zero = ac.select(1, 0).select(1, 0).view({-1, 1, 1});
  return torch::where(zero > 1e-12, ac / zero.clamp_min(1e-12), torch::zeros_like(ac)).contiguous();
}

// FindLattices for one image's normalised autocorrelation `a` [2h, 2w] (row-major).
Lattice LatticeOf(const float* a, int64_t h, int64_t w) {
  const int64_t rows = 2 * h, cols = 2 * w;
  auto at = [&](int64_t dy, int64_t dx) {
    return a[((dy % rows + rows) % rows) * cols + ((dx % cols + cols) % cols)];
  };
  auto local_max = [&](int64_t dy, int64_t dx) {
    const float v = at(dy, dx);
    for (int64_t i = -1; i <= 1; ++i) {
      for (int64_t j = -1; j <= 1; ++j) {
        if ((i || j) && at(dy + i, dx + j) > v) return false;
      }
    }
    return true;
  };
  auto parabola = [](double l, double c, double r) {
    const double den = l - 2 * c + r;
    return den < 0 ? std::clamp(0.5 * (l - r) / den, -0.5, 0.5) : 0.0;
  };
  // (x, y) of the sub-pixel peak at the integer lag (dy, dx).
  auto refine = [&](int64_t dy, int64_t dx) {
    return std::pair<double, double>{dx + parabola(at(dy, dx - 1), at(dy, dx), at(dy, dx + 1)),
                                     dy + parabola(at(dy - 1, dx), at(dy, dx), at(dy + 1, dx))};
  };
  Lattice out;
  out.correlation = 1;
  for (const bool along_x : {true, false}) {
    const int64_t half = (along_x ? w : h) / 2;
    int64_t best_l = 0, best_d = 0;
    float best = -1;
    for (int64_t l = 4; l < half - 2 && best < 0; ++l) {  // the smallest lag with a peak
      const int64_t span = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(0.1 * l)));
      for (int64_t d = -span; d <= span; ++d) {
        const int64_t dy = along_x ? d : l, dx = along_x ? l : d;
        const float v = at(dy, dx);
        if (v >= kLatticeCorrelation && v > best && local_max(dy, dx)) {
          best = v;
          best_l = l;
          best_d = d;
        }
      }
    }
    if (best < 0) {
      out.correlation = 0;
      return out;
    }
    out.correlation = std::min<double>(out.correlation, best);
    auto [x, y] = refine(along_x ? best_d : best_l, along_x ? best_l : best_d);
    // The farthest multiple within half the image divides the fit's error by the multiple.
    const int64_t n = static_cast<int64_t>((half - 3) / std::max(std::abs(x), std::abs(y)));
    if (n >= 2) {
      int64_t fy = std::lround(n * y), fx = std::lround(n * x), my = fy, mx = fx;
      for (int64_t i = -2; i <= 2; ++i) {
        for (int64_t j = -2; j <= 2; ++j) {
          if (at(fy + i, fx + j) > at(my, mx)) my = fy + i, mx = fx + j;
        }
      }
      const auto [fx2, fy2] = refine(my, mx);
      x = fx2 / n;
      y = fy2 / n;
    }
    (along_x ? out.a1x : out.a2x) = x;
    (along_x ? out.a1y : out.a2y) = y;
  }
  out.found = true;
  return out;
}

std::vector<Lattice> LatticesOf(const torch::Tensor& grey) {
  const torch::Tensor ac = NormalisedAutocorrelation(grey);
  const int64_t h = grey.size(2), w = grey.size(3);
  std::vector<Lattice> out;
  for (int64_t b = 0; b < grey.size(0); ++b)
    out.push_back(LatticeOf(ac.data_ptr<float>() + b * 4 * h * w, h, w));
  return out;
}

// Cubic-convolution weights (A = −0.75, as bicubic grid_sample) of the taps at ⌊s⌋ − 1 .. ⌊s⌋ + 2
// for the fraction t = s − ⌊s⌋.
std::array<double, 4> CubicWeights(double t) {
  constexpr double kA = -0.75;
  auto inner = [](double x) { return ((kA + 2) * x - (kA + 3)) * x * x + 1; };          // |x| ≤ 1
  auto outer = [](double x) { return ((kA * x - 5 * kA) * x + 8 * kA) * x - 4 * kA; };  // 1–2
  return {outer(t + 1), inner(t), inner(1 - t), outer(2 - t)};
}

// g [1, 1, H, W] minus the mean of its eight lattice neighbours inside the image. Each neighbour
// is the image shifted by a constant sub-pixel offset, so its bicubic interpolation is two
// separable 4-tap passes over the replicate-padded image: grid_sample's bicubic values with
// border padding, for less (docs/benchmarks.md, "Filter bank: lattice channels").
torch::Tensor LatticeTemplateResidual(const torch::Tensor& g, const Lattice& l) {
  const int64_t h = g.size(2), w = g.size(3);
  std::vector<std::pair<double, double>> shifts;
  double reach = 0;
  for (int i = -1; i <= 1; ++i) {
    for (int j = -1; j <= 1; ++j) {
      if (i == 0 && j == 0) continue;
      const double dx = i * l.a1x + j * l.a2x, dy = i * l.a1y + j * l.a2y;
      shifts.emplace_back(dx, dy);
      reach = std::max({reach, std::abs(dx), std::abs(dy)});
    }
  }
  const int64_t pad = static_cast<int64_t>(std::ceil(reach)) + 2;
  const torch::Tensor p = torch::replication_pad2d(g, {pad, pad, pad, pad});
  const auto opt = g.options();
  const torch::Tensor xs = torch::arange(w, opt).view({1, 1, 1, w});
  const torch::Tensor ys = torch::arange(h, opt).view({1, 1, h, 1});
  torch::Tensor sum = torch::zeros_like(g), count = torch::zeros_like(g);
  for (const auto& [dx, dy] : shifts) {
    const double fx = std::floor(dx), fy = std::floor(dy);
    const std::array<double, 4> wx = CubicWeights(dx - fx), wy = CubicWeights(dy - fy);
    const int64_t ix = static_cast<int64_t>(fx), iy = static_cast<int64_t>(fy);
    const torch::Tensor band = p.narrow(2, pad + iy - 1, h + 3);
    torch::Tensor rows = torch::zeros({g.size(0), 1, h + 3, w}, opt);
    for (int t = 0; t < 4; ++t) rows.add_(band.narrow(3, pad + ix - 1 + t, w), wx[t]);
    torch::Tensor shifted = torch::zeros_like(g);
    for (int t = 0; t < 4; ++t) shifted.add_(rows.narrow(2, t, h), wy[t]);
    const torch::Tensor valid = (((xs + dx) >= 0) & ((xs + dx) <= w - 1)).to(g.dtype()) *
                                (((ys + dy) >= 0) & ((ys + dy) <= h - 1)).to(g.dtype());
    sum.add_(shifted * valid);
    count.add_(valid);
  }
  return torch::where(count > 0, g - sum / count.clamp_min(1), torch::zeros_like(g));
}

// The half-length of the lattice channels' line detector: 2·5 + 1 = 11 pixels.
constexpr int64_t kLineHalf = 5;
constexpr int kLineOrientations = 16;

// The maximum over kLineOrientations orientations of |the mean of r [N, 1, H, W] along an
// 11-pixel digital line| (one pixel per step along the line's major axis), reflect-padded.
torch::Tensor LineResponse(const torch::Tensor& r) {
  const int64_t h = r.size(2), w = r.size(3), k = kLineHalf;
  const torch::Tensor p = torch::reflection_pad2d(r, {k, k, k, k});
  torch::Tensor best;
  for (int o = 0; o < kLineOrientations; ++o) {
    const double th = M_PI * o / kLineOrientations, c = std::cos(th), s = std::sin(th);
    torch::Tensor acc = torch::zeros_like(r);
    for (int64_t t = -k; t <= k; ++t) {
      const int64_t dx = std::abs(c) >= std::abs(s) ? t : std::lround(t * c / s);
      const int64_t dy = std::abs(c) >= std::abs(s) ? std::lround(t * s / c) : t;
      acc.add_(p.narrow(2, k + dy, h).narrow(3, k + dx, w));
    }
    acc = acc.abs_().div_(2 * k + 1);
    best = best.defined() ? torch::maximum(best, acc) : acc;
  }
  return best;
}

// FilterBankConfig::pixel_norm's detectors of a residual r [N, 1, H, W]: its 3×3 box mean
// magnitude and LineResponse, as [N, 2, H, W].
torch::Tensor PartDetectors(const torch::Tensor& r) {
  const torch::Tensor blob =
      torch::avg_pool2d(r, 3, 1, 1, /*ceil_mode=*/false, /*count_include_pad=*/false).abs();
  return torch::cat({blob, LineResponse(r)}, 1);
}

// grey [N, 1, H, W] minus, per image, its lattice template (LatticeTemplateResidual), or its
// periodic residual (PeriodicResidual) where no lattice is found.
torch::Tensor LatticeResidual(const torch::Tensor& grey) {
  const std::vector<Lattice> lattices = LatticesOf(grey);
  torch::Tensor out = torch::empty_like(grey);
  for (int64_t b = 0; b < grey.size(0); ++b) {
    const torch::Tensor g = grey.narrow(0, b, 1);
    out.narrow(0, b, 1).copy_(lattices[b].found ? LatticeTemplateResidual(g, lattices[b])
                                                : PeriodicResidual(g));
  }
  return out;
}

class FilterBankEncoder final : public Encoder {
 public:
  static absl::StatusOr<std::unique_ptr<FilterBankEncoder>> Create(const FilterBankConfig& cfg,
                                                                   const RuntimeOptions& options,
                                                                   const NamedTensors& weights) {
    if (absl::Status s = cfg.Validate(); !s.ok()) return s;
    if (absl::Status s = CheckRuntimeOptions(options); !s.ok()) return s;
    auto device = internal::ParseDevice(options.device);
    if (!device.ok()) return device.status();
    std::unique_ptr<FilterBankEncoder> m(new FilterBankEncoder(cfg, *device));
    absl::Status bind_status;
    absl::Status s = Guarded("building the filter bank", [&] {
      if (cfg.pixel_norm) {
        WeightBinder wb(weights, *device, "filter bank");
        const int64_t n = cfg.input_size;
        const torch::Tensor mean = wb.Take("pixel_mean", {2, n, n});
        const torch::Tensor sd = wb.Take("pixel_std", {2, n, n});
        bind_status = wb.Finish();
        if (!bind_status.ok()) return;
        if (!(sd.min().item<float>() > 0) || !torch::isfinite(mean).all().item<bool>()) {
          bind_status = absl::InvalidArgumentError(
              "filter bank: pixel_mean must be finite and pixel_std > 0 everywhere");
          return;
        }
        m->pixel_mean_ = mean.unsqueeze(0);
        m->pixel_std_ = sd.unsqueeze(0);
      } else if (!weights.empty()) {
        bind_status =
            absl::InvalidArgumentError("filter bank: weights given, but only pixel_norm takes any");
      }
      for (float sigma : cfg.scales) {
        const int r = static_cast<int>(std::ceil(3 * sigma));
        const std::vector<double> taps = GaussianTaps(sigma, r);
        std::vector<float> g(2 * r + 1), d1(2 * r + 1), d2(2 * r + 1);
        for (int i = -r; i <= r; ++i) {
          const double gi = taps[i + r];
          g[i + r] = static_cast<float>(gi);
          d1[i + r] = static_cast<float>(-i / (sigma * sigma) * gi * sigma);  // σ-normalised
          d2[i + r] = static_cast<float>((i * i / (sigma * sigma) - 1) / (sigma * sigma) * gi *
                                         sigma * sigma);
        }
        const torch::Tensor G = torch::tensor(g), D1 = torch::tensor(d1), D2 = torch::tensor(d2);
        auto outer = [](const torch::Tensor& y, const torch::Tensor& x) {
          return torch::outer(y, x);
        };
        // Responses: ∂x, ∂y, ∂xx, ∂yy, ∂xy (rows are y, columns x).
        torch::Tensor k =
            torch::stack({outer(G, D1), outer(D1, G), outer(G, D2), outer(D2, G), outer(D1, D1)})
                .unsqueeze(1)
                .to(m->device_);
        m->kernels_.push_back(k);
        m->radii_.push_back(r);
      }
      if (cfg.laplacian) {
        m->laplacian_taps_ = GaussianTaps(kLaplacianEnergySigma,
                                          static_cast<int>(std::ceil(3 * kLaplacianEnergySigma)));
      }
      if (cfg.periodic || cfg.rotational) {
        for (double sigma : kPeriodicSigmas)
          m->periodic_taps_.push_back(GaussianTaps(sigma, static_cast<int>(std::ceil(3 * sigma))));
      }
    });
    if (!s.ok()) return s;
    if (!bind_status.ok()) return bind_status;
    return m;
  }

  absl::Status Encode(const Tensor& images, Tensor* z0) override {
    if (absl::Status s = CheckShape(
            images, {-1, cfg_.input_channels, cfg_.input_size, cfg_.input_size}, "encoder input");
        !s.ok()) {
      return s;
    }
    return Guarded("filter-bank encoder forward", [&] {
      c10::InferenceMode guard;
      const torch::Tensor x = internal::View(images).to(device_);
      const int64_t cell = cfg_.input_size / cfg_.latent_size;
      const torch::Tensor grey = x.mean(1, /*keepdim=*/true);
      std::vector<torch::Tensor> parts;
      if (!cfg_.residual_only) {
        for (size_t i = 0; i < kernels_.size(); ++i) {
          const int64_t r = radii_[i];
          const torch::Tensor padded = torch::reflection_pad2d(grey, {r, r, r, r});
          const torch::Tensor resp = torch::conv2d(padded, kernels_[i]).abs();
          parts.push_back(torch::avg_pool2d(resp, cell));
          parts.push_back(torch::max_pool2d(resp, cell));
        }
        const torch::Tensor mean = torch::avg_pool2d(x, cell);
        const torch::Tensor var = (torch::avg_pool2d(x * x, cell) - mean * mean).clamp_min(0);
        parts.push_back(mean);
        parts.push_back(var.add(1e-12).sqrt());
      }
      if (cfg_.laplacian) {
        // Shifted slices, not conv2d: with conv2d (one input, one output channel) these two
        // channels added ~7 ms per 256² image to invad-eval's model time at K = 1 (medians of 3
        // runs); as elementwise sums their cost is within the run-to-run noise.
        const torch::Tensor p = torch::reflection_pad2d(grey, {1, 1, 1, 1});
        const int64_t h = grey.size(2), w = grey.size(3);
        auto at = [&](const torch::Tensor& t, int64_t dy, int64_t dx) {
          return t.narrow(2, dy, h).narrow(3, dx, w);
        };
        const torch::Tensor lap =
            at(p, 0, 1) + at(p, 2, 1) + at(p, 1, 0) + at(p, 1, 2) - 4 * at(p, 1, 1);
        parts.push_back(torch::avg_pool2d(lap.abs(), cell));
        parts.push_back(torch::max_pool2d(SeparableBlur(lap * lap, laplacian_taps_), cell));
      }
      // Residuals (periodic, rotational): per blur, the cell mean and maximum magnitude.
      auto residual_stats = [&](const torch::Tensor& residual) {
        for (const std::vector<double>& taps : periodic_taps_) {
          const torch::Tensor r = SeparableBlur(residual, taps).abs();
          parts.push_back(torch::avg_pool2d(r, cell));
          parts.push_back(torch::max_pool2d(r, cell));
        }
      };
      if (cfg_.periodic) residual_stats(PeriodicResidual(grey));
      if (cfg_.rotational) {
        const torch::Tensor r = RotationalResidual(grey);
        residual_stats(r);
        if (cfg_.pixel_norm) {  // per-pixel z of the detectors, blurred; per cell mean and max
          const torch::Tensor z = torch::avg_pool2d((PartDetectors(r) - pixel_mean_) / pixel_std_,
                                                    3, 1, 1, /*ceil_mode=*/false,
                                                    /*count_include_pad=*/false);
          parts.push_back(torch::avg_pool2d(z, cell));
          parts.push_back(torch::max_pool2d(z, cell));
        }
      }
      if (cfg_.lattice) {  // blob and line detectors: per cell the mean and maximum
        const torch::Tensor r = LatticeResidual(grey);
        const torch::Tensor blob =
            torch::avg_pool2d(r, 3, 1, 1, /*ceil_mode=*/false, /*count_include_pad=*/false).abs();
        const torch::Tensor line = LineResponse(r);
        for (const torch::Tensor& d : {blob, line}) {
          parts.push_back(torch::avg_pool2d(d, cell));
          parts.push_back(torch::max_pool2d(d, cell));
        }
      }
      internal::CopyOut(torch::cat(parts, 1), z0);
    });
  }
  LatentShape latent_shape() const override { return cfg_.latent(); }
  std::string Describe() const override {
    return absl::StrCat("filter-bank-encoder(scales=", absl::StrJoin(cfg_.scales, "/"),
                        cfg_.laplacian ? ", laplacian" : "", cfg_.periodic ? ", periodic" : "",
                        cfg_.rotational ? ", rotational" : "", cfg_.lattice ? ", lattice" : "",
                        cfg_.pixel_norm ? ", pixel_norm" : "",
                        cfg_.residual_only ? ", residual_only" : "", ", ", device_.str(), ")");
  }

 private:
  FilterBankEncoder(const FilterBankConfig& cfg, torch::Device device)
      : cfg_(cfg), device_(device) {}
  FilterBankConfig cfg_;
  torch::Device device_;
  std::vector<torch::Tensor> kernels_;  // per scale [5, 1, k, k]
  std::vector<int64_t> radii_;
  std::vector<double> laplacian_taps_;              // Gaussian σ = kLaplacianEnergySigma
  std::vector<std::vector<double>> periodic_taps_;  // one per kPeriodicSigmas (both residuals)
  torch::Tensor pixel_mean_, pixel_std_;            // [1, 2, S, S] (pixel_norm)
};

// ---------------------------------------------------------------------------------------------
// Initialisation

torch::Tensor XavierUniform(int64_t out, int64_t in, torch::Generator& gen) {
  const double bound = std::sqrt(6.0 / static_cast<double>(in + out));
  return torch::empty({out, in}).uniform_(-bound, bound, gen);
}

// 2-D sin-cos position embedding, MAE layout: for token (r, c): [sin(c·ω), cos(c·ω), sin(r·ω),
// cos(r·ω)].
torch::Tensor SinCos2d(int64_t dim, int64_t gh, int64_t gw) {
  const int64_t quarter = dim / 4;
  torch::Tensor omega =
      1.0 / torch::pow(10000.0, torch::arange(quarter, torch::kFloat64) / quarter);
  torch::Tensor rows =
      torch::arange(gh, torch::kFloat64).repeat_interleave(gw);          // token n → n / gw
  torch::Tensor cols = torch::arange(gw, torch::kFloat64).repeat({gh});  // token n → n % gw
  torch::Tensor oc = cols.unsqueeze(1) * omega.unsqueeze(0),
                orr = rows.unsqueeze(1) * omega.unsqueeze(0);
  return torch::cat({torch::sin(oc), torch::cos(oc), torch::sin(orr), torch::cos(orr)}, 1)
      .to(torch::kFloat32)
      .unsqueeze(0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Denoiser>> CreateNativeDit(const DitConfig& config,
                                                          const NamedTensors& weights,
                                                          const RuntimeOptions& options) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (absl::Status s = CheckRuntimeOptions(options); !s.ok()) return s;
  auto device = internal::ParseDevice(options.device);
  auto model = internal::BindDit(config, weights, *device, options.precision);
  if (!model.ok()) return model.status();
  std::unique_ptr<Denoiser> dit;
  INVAD_RETURN_IF_ERROR(Guarded("creating the DiT's device context", [&] {
    dit = std::make_unique<NativeDit>(std::move(*model), *device, options.precision);
  }));
  return dit;
}

NamedTensors InitDitWeights(const DitConfig& cfg, uint64_t seed, bool zero_init_output) {
  c10::InferenceMode guard;
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  const int64_t h = cfg.hidden_size, c = cfg.latent.channels, p = cfg.patch_size;
  const int64_t gh = cfg.latent.height / p, gw = cfg.latent.width / p;
  NamedTensors w;
  auto put = [&](const std::string& name, const torch::Tensor& t) {
    w[name] = internal::FromTorch(t);
  };
  auto lin = [&](const std::string& name, int64_t out, int64_t in, bool zero) {
    if (zero && zero_init_output) {
      put(name + ".weight", torch::zeros({out, in}));
    } else if (zero) {
      put(name + ".weight", torch::empty({out, in}).normal_(0.0, 0.02, gen));
    } else {
      put(name + ".weight", XavierUniform(out, in, gen));
    }
    put(name + ".bias", zero && !zero_init_output ? torch::empty({out}).normal_(0.0, 0.02, gen)
                                                  : torch::zeros({out}));
  };
  put("x_embedder.proj.weight", XavierUniform(h, c * p * p, gen).view({h, c, p, p}));
  put("x_embedder.proj.bias", torch::zeros({h}));
  put("pos_embed", SinCos2d(h, gh, gw));
  put("t_embedder.mlp.0.weight",
      torch::empty({h, cfg.frequency_embedding_size}).normal_(0.0, 0.02, gen));
  put("t_embedder.mlp.0.bias", torch::zeros({h}));
  put("t_embedder.mlp.2.weight", torch::empty({h, h}).normal_(0.0, 0.02, gen));
  put("t_embedder.mlp.2.bias", torch::zeros({h}));
  for (int i = 0; i < cfg.depth; ++i) {
    const std::string pre = absl::StrCat("blocks.", i, ".");
    lin(pre + "attn.qkv", 3 * h, h, false);
    lin(pre + "attn.proj", h, h, false);
    lin(pre + "mlp.fc1", cfg.mlp_hidden(), h, false);
    lin(pre + "mlp.fc2", h, cfg.mlp_hidden(), false);
    lin(pre + "adaLN_modulation.1", 6 * h, h, true);
  }
  lin("final_layer.adaLN_modulation.1", 2 * h, h, true);
  lin("final_layer.linear", p * p * c, h, true);
  return w;
}

namespace internal {

absl::StatusOr<std::vector<ConvStage>> BindConvEncoder(const ConvEncoderConfig& cfg,
                                                       const NamedTensors& weights,
                                                       const torch::Device& device) {
  std::vector<ConvStage> stages;
  absl::Status bind_status;
  absl::Status s = Guarded("binding conv encoder weights", [&] {
    WeightBinder wb(weights, device, "conv encoder");
    int in = cfg.input_channels;
    // Stages after the last output stage are never computed, so they carry no weights.
    const int last = *std::max_element(cfg.output_stages.begin(), cfg.output_stages.end());
    for (int st = 0; st <= last; ++st) {
      const int out = cfg.stage_channels[st];
      const std::string pre = absl::StrCat("stages.", st, ".");
      stages.push_back(
          {wb.Take(pre + "conv1.weight", {out, in, 3, 3}), wb.Take(pre + "conv1.bias", {out}),
           wb.Take(pre + "conv2.weight", {out, out, 3, 3}), wb.Take(pre + "conv2.bias", {out})});
      in = out;
    }
    bind_status = wb.Finish();
  });
  if (!s.ok()) return s;
  if (!bind_status.ok()) return bind_status;
  return stages;
}

torch::Tensor ResizeToLatent(const torch::Tensor& x, int64_t l) {
  const int64_t h = x.size(2), w = x.size(3);
  if (h == l && w == l) return x;
  if (h == w && h > l && h % l == 0) return torch::avg_pool2d(x, h / l);
  return torch::upsample_bilinear2d(x, {l, l}, /*align_corners=*/false);
}

torch::Tensor ConvEncoderForward(const ConvEncoderConfig& cfg, const std::vector<ConvStage>& stages,
                                 torch::Tensor x) {
  std::vector<torch::Tensor> outs(stages.size());
  for (size_t st = 0; st < stages.size(); ++st) {
    const ConvStage& p = stages[st];
    x = torch::silu(torch::conv2d(x, p.w1, p.b1, 2, 1));
    x = torch::silu(torch::conv2d(x, p.w2, p.b2, 1, 1));
    outs[st] = x;
  }
  std::vector<torch::Tensor> parts;
  for (int st : cfg.output_stages) parts.push_back(ResizeToLatent(outs[st], cfg.latent_size));
  return torch::cat(parts, 1);
}

}  // namespace internal

absl::Status FilterBankConfig::Validate() const {
  if (input_channels != 1 && input_channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter_bank.input_channels = ", input_channels, ": must be 1 or 3"));
  }
  if (latent_size < 1 || input_size < latent_size || input_size % latent_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("filter_bank: input size ", input_size,
                                                   " must be a multiple of the latent size ",
                                                   latent_size));
  }
  if (scales.empty()) return absl::InvalidArgumentError("filter_bank.scales is empty");
  for (float s : scales) {
    if (!(s >= 0.5f && s <= input_size / 8.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("filter_bank.scales: ", s, " must be in [0.5, input_size/8]"));
    }
  }
  // The periodic residual looks for periods from 4 px and blurs with σ up to 3 px (reflect-padded
  // by 9 px, which needs a larger image).
  if (periodic && input_size < kPeriodicMinInput) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter_bank.periodic needs input_size >= ", kPeriodicMinInput, ", got ", input_size));
  }
  if (rotational && input_size < kPeriodicMinInput) {  // the same blurs
    return absl::InvalidArgumentError(absl::StrCat(
        "filter_bank.rotational needs input_size >= ", kPeriodicMinInput, ", got ", input_size));
  }
  if (lattice && input_size < kPeriodicMinInput) {  // lattice lags from 4 px, its fallback's blurs
    return absl::InvalidArgumentError(absl::StrCat(
        "filter_bank.lattice needs input_size >= ", kPeriodicMinInput, ", got ", input_size));
  }
  if (pixel_norm && !rotational)
    return absl::InvalidArgumentError("filter_bank.pixel_norm needs rotational");
  if (residual_only && !periodic && !rotational && !lattice) {
    return absl::InvalidArgumentError(
        "filter_bank.residual_only needs periodic, rotational or lattice");
  }
  return absl::OkStatus();
}

LatentShape FilterBankConfig::latent() const {
  return {static_cast<int64_t>((residual_only ? 0 : 10 * scales.size() + 2 * input_channels) +
                               (laplacian ? 2 : 0) + (periodic ? 4 : 0) + (rotational ? 4 : 0) +
                               (lattice ? 4 : 0) + (pixel_norm ? 4 : 0)),
          latent_size, latent_size};
}

absl::StatusOr<std::unique_ptr<Encoder>> CreateFilterBankEncoder(const FilterBankConfig& config,
                                                                 const RuntimeOptions& options,
                                                                 const NamedTensors& weights) {
  auto m = FilterBankEncoder::Create(config, options, weights);
  if (!m.ok()) return m.status();
  return std::unique_ptr<Encoder>(std::move(*m));
}

absl::StatusOr<NamedTensors> FitPixelStats(const FilterBankConfig& config, const Tensor& images) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (!config.pixel_norm) return absl::InvalidArgumentError("FitPixelStats: pixel_norm is off");
  const int64_t n = config.input_size;
  if (images.rank() != 4 || images.dim(0) < 2 || images.dim(1) != config.input_channels ||
      images.dim(2) != n || images.dim(3) != n) {
    return absl::InvalidArgumentError(absl::StrCat("FitPixelStats: images must be [N >= 2, ",
                                                   config.input_channels, ", ", n, ", ", n, "]"));
  }
  NamedTensors out;
  absl::Status s = Guarded("fitting the filter bank's pixel statistics", [&] {
    c10::InferenceMode guard;
    const torch::Tensor x = internal::View(images);
    torch::Tensor sum = torch::zeros({2, n, n}, torch::kFloat64);
    torch::Tensor sq = torch::zeros({2, n, n}, torch::kFloat64);
    constexpr int64_t kBatch = 16;  // bounds the detectors' memory
    for (int64_t b = 0; b < x.size(0); b += kBatch) {
      const torch::Tensor grey = x.narrow(0, b, std::min(kBatch, x.size(0) - b)).mean(1, true);
      const torch::Tensor d = PartDetectors(RotationalResidual(grey)).to(torch::kFloat64);
      sum += d.sum(0);
      sq += (d * d).sum(0);
    }
    const double count = static_cast<double>(x.size(0));
    const torch::Tensor mean = sum / count;
    torch::Tensor sd = (sq / count - mean * mean).clamp_min(0).sqrt();
    // Each detector's floor: a tenth of its mean SD over the image.
    const torch::Tensor floor = sd.mean({1, 2}, /*keepdim=*/true).mul(0.1).clamp_min(1e-6);
    sd = torch::maximum(sd, floor);
    out["pixel_mean"] = internal::FromTorch(mean.to(torch::kFloat32));
    out["pixel_std"] = internal::FromTorch(sd.to(torch::kFloat32));
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<double> ForegroundRoundness(const Tensor& images) {
  if (images.rank() != 4 || images.dim(0) < 1 || images.dim(2) < 8 || images.dim(3) < 8) {
    return absl::InvalidArgumentError(
        "ForegroundRoundness: images must be [N >= 1, C, H >= 8, W >= 8]");
  }
  double out = 0;
  absl::Status s = Guarded("measuring the foreground's roundness", [&] {
    c10::InferenceMode guard;
    std::vector<torch::Tensor> scores;
    constexpr int64_t kChunk = 32;  // bounds the temporaries for large training sets
    for (int64_t i = 0; i < images.dim(0); i += kChunk) {
      const Tensor chunk = images.Slice(i, std::min(kChunk, images.dim(0) - i));
      const torch::Tensor grey = internal::View(chunk).mean(1, /*keepdim=*/true);
      const Foreground fg = ForegroundOf(grey);
      const auto [cx, cy] = CentroidOf(fg.mask);
      const torch::Tensor turned = RotateAbout(fg.mask, cx, cy, kRotationalAngle, /*nearest=*/true);
      const std::vector<int64_t> dims{1, 2, 3};
      const torch::Tensor iou =
          (fg.mask * turned).sum(dims) / torch::max(fg.mask, turned).sum(dims).clamp_min(1);
      const torch::Tensor area = fg.mask.mean(dims);
      const torch::Tensor part = (fg.border <= 0.05).logical_and(area >= 0.01);
      scores.push_back(torch::where(part, iou, torch::zeros_like(iou)));
    }
    out = torch::cat(scores).median().item<double>();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<Lattice>> FindLattices(const Tensor& images) {
  if (images.rank() != 4 || images.dim(0) < 1 || images.dim(2) < 16 || images.dim(3) < 16) {
    return absl::InvalidArgumentError("FindLattices: images must be [N >= 1, C, H >= 16, W >= 16]");
  }
  std::vector<Lattice> out;
  absl::Status s = Guarded("finding the images' lattices", [&] {
    c10::InferenceMode guard;
    constexpr int64_t kChunk = 32;  // bounds the autocorrelations' memory for large sets
    for (int64_t i = 0; i < images.dim(0); i += kChunk) {
      const Tensor chunk = images.Slice(i, std::min(kChunk, images.dim(0) - i));
      for (const Lattice& l : LatticesOf(internal::View(chunk).mean(1, /*keepdim=*/true)))
        out.push_back(l);
    }
  });
  if (!s.ok()) return s;
  return out;
}

double LatticeFraction(const std::vector<Lattice>& lattices) {
  if (lattices.empty()) return 0;
  double found = 0;
  for (const Lattice& l : lattices) found += l.found;
  return found / static_cast<double>(lattices.size());
}

double LatticePeriod(const std::vector<Lattice>& lattices) {
  std::vector<double> periods;
  for (const Lattice& l : lattices) {
    if (l.found) periods.push_back(std::max(std::hypot(l.a1x, l.a1y), std::hypot(l.a2x, l.a2y)));
  }
  if (periods.empty()) return 0.0;
  const auto mid = periods.begin() + static_cast<std::ptrdiff_t>(periods.size() / 2);
  std::nth_element(periods.begin(), mid, periods.end());
  return *mid;
}

absl::StatusOr<std::unique_ptr<Encoder>> CreateNativeConvEncoder(const ConvEncoderConfig& config,
                                                                 const NamedTensors& weights,
                                                                 const RuntimeOptions& options) {
  auto m = NativeConvEncoder::Create(config, weights, options);
  if (!m.ok()) return m.status();
  return std::unique_ptr<Encoder>(std::move(*m));
}

NamedTensors InitConvEncoderWeights(const ConvEncoderConfig& cfg, uint64_t seed) {
  c10::InferenceMode guard;
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  NamedTensors w;
  int in = cfg.input_channels;
  const int last = *std::max_element(cfg.output_stages.begin(), cfg.output_stages.end());
  for (int s = 0; s <= last; ++s) {
    const int out = cfg.stage_channels[s];
    const std::string pre = absl::StrCat("stages.", s, ".");
    for (auto [name, cin] : {std::pair<const char*, int>{"conv1", in}, {"conv2", out}}) {
      const double bound = std::sqrt(6.0 / (cin * 9));  // Kaiming-uniform for SiLU-ish gains
      w[pre + name + ".weight"] =
          internal::FromTorch(torch::empty({out, cin, 3, 3}).uniform_(-bound, bound, gen));
      w[pre + name + ".bias"] = internal::FromTorch(torch::zeros({out}));
    }
    in = out;
  }
  return w;
}

}  // namespace invad::core
