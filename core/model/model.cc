#include "core/model/model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

#include "core/diffusion/ddim.h"

namespace invad::core {

absl::Status Denoiser::Invert(absl::Span<const DdimCoefficients> plan, Tensor& z) {
  std::vector<DdimCoefficients> step(z.batch());
  std::vector<int> timesteps(z.batch());
  Tensor eps;
  for (const DdimCoefficients& c : plan) {
    std::fill(step.begin(), step.end(), c);
    std::fill(timesteps.begin(), timesteps.end(), c.timestep);
    if (absl::Status s = Predict(z, timesteps, &eps); !s.ok()) return s;
    if (absl::Status s = DdimStep(step, eps, z); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateDenoiserInput(const Tensor& z, absl::Span<const int> timesteps,
                                   const LatentShape& shape, int num_timesteps) {
  if (absl::Status s =
          CheckShape(z, {-1, shape.channels, shape.height, shape.width}, "denoiser input");
      !s.ok()) {
    return s;
  }
  if (static_cast<int64_t>(timesteps.size()) != z.batch()) {
    return absl::InvalidArgumentError(
        absl::StrCat(timesteps.size(), " timesteps for a batch of ", z.batch()));
  }
  for (int t : timesteps) {
    if (t < 0 || t >= num_timesteps) {
      return absl::InvalidArgumentError(
          absl::StrCat("timestep ", t, " outside [0, ", num_timesteps, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status LatentNorm::Validate(const LatentShape& shape) const {
  const int64_t n = static_cast<int64_t>(mean.size());
  if (static_cast<int64_t>(std.size()) != n || (n != shape.channels && n != shape.numel())) {
    return absl::InvalidArgumentError(
        absl::StrCat("latent norm has ", mean.size(), " means and ", std.size(), " stds for ",
                     shape.channels, " channels (", shape.numel(), " values per location)"));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(mean[i]) || !std::isfinite(std[i]) || !(std[i] > 0)) {
      return absl::InvalidArgumentError(absl::StrCat("latent norm value ", i, ": mean ", mean[i],
                                                     ", std ", std[i],
                                                     " (must be finite, std > 0)"));
    }
  }
  return absl::OkStatus();
}

LatentNorm FitLatentNorm(const Tensor& z0, bool per_location) {
  LatentNorm n;
  if (z0.rank() != 4) return n;
  const int64_t b = z0.dim(0), c = z0.dim(1), hw = z0.dim(2) * z0.dim(3);
  n.mean.resize(c);
  n.std.resize(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < b; ++i) {
      const float* p = z0.sample(i) + ch * hw;
      for (int64_t k = 0; k < hw; ++k) sum += p[k];
    }
    const double count = static_cast<double>(b * hw), mean = sum / count;
    for (int64_t i = 0; i < b; ++i) {
      const float* p = z0.sample(i) + ch * hw;
      for (int64_t k = 0; k < hw; ++k) sq += (p[k] - mean) * (p[k] - mean);
    }
    const double sd = std::sqrt(sq / count);
    n.mean[ch] = static_cast<float>(mean);
    n.std[ch] = sd < 1e-6 ? 1.0f : static_cast<float>(sd);
  }
  if (!per_location) return n;
  LatentNorm loc;
  loc.mean.resize(c * hw);
  loc.std.resize(c * hw);
  for (int64_t j = 0; j < c * hw; ++j) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < b; ++i) sum += z0.sample(i)[j];
    const double mean = sum / static_cast<double>(b);
    for (int64_t i = 0; i < b; ++i) sq += (z0.sample(i)[j] - mean) * (z0.sample(i)[j] - mean);
    const float floor = kLocationStdFloor * n.std[j / hw];
    loc.mean[j] = static_cast<float>(mean);
    loc.std[j] = std::max(floor, static_cast<float>(std::sqrt(sq / static_cast<double>(b))));
  }
  return loc;
}

void ApplyLatentNorm(const LatentNorm& norm, Tensor* z0) {
  if (norm.empty()) return;
  const int64_t b = z0->dim(0), c = z0->dim(1), hw = z0->dim(2) * z0->dim(3);
  const bool per_location = static_cast<int64_t>(norm.mean.size()) == c * hw && hw > 1;
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t ch = 0; ch < c; ++ch) {
      float* p = z0->sample(i) + ch * hw;
      if (per_location) {
        const float* m = norm.mean.data() + ch * hw;
        const float* sd = norm.std.data() + ch * hw;
        for (int64_t k = 0; k < hw; ++k) p[k] = (p[k] - m[k]) / sd[k];
      } else {
        const float m = norm.mean[ch], inv = 1.0f / norm.std[ch];
        for (int64_t k = 0; k < hw; ++k) p[k] = (p[k] - m) * inv;
      }
    }
  }
}

namespace {

class NormalizedEncoder final : public Encoder {
 public:
  NormalizedEncoder(std::unique_ptr<Encoder> inner, LatentNorm norm)
      : inner_(std::move(inner)), norm_(std::move(norm)) {}
  absl::Status Encode(const Tensor& images, Tensor* z0) override {
    if (absl::Status s = inner_->Encode(images, z0); !s.ok()) return s;
    ApplyLatentNorm(norm_, z0);
    return absl::OkStatus();
  }
  LatentShape latent_shape() const override { return inner_->latent_shape(); }
  std::string Describe() const override {
    return absl::StrCat(inner_->Describe(), " + latent standardisation",
                        norm_.per_location(inner_->latent_shape()) ? " per location" : "");
  }

 private:
  std::unique_ptr<Encoder> inner_;
  LatentNorm norm_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> WithLatentNorm(std::unique_ptr<Encoder> inner,
                                                        LatentNorm norm) {
  if (absl::Status s = norm.Validate(inner->latent_shape()); !s.ok()) return s;
  return std::unique_ptr<Encoder>(new NormalizedEncoder(std::move(inner), std::move(norm)));
}

}  // namespace invad::core
