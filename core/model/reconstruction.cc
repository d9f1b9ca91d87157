#include "core/model/reconstruction.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

#include "core/base/status_macros.h"
#include "core/diffusion/ddim.h"

namespace invad::core {

absl::Status ReconstructionOptions::Validate() const {
  if (num_points < 2 || num_points > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_points must be in [2, 1000], got ", num_points));
  }
  if (noise_index < 1 || noise_index >= num_points) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise_index must be in [1, ", num_points - 1, "], got ", noise_index));
  }
  return absl::OkStatus();
}

namespace {
void FillNoise(uint64_t seed, float* out, int64_t n) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) out[i] = normal(rng);
}
}  // namespace

absl::StatusOr<std::vector<ReconstructionScore>> Reconstruct(Denoiser& denoiser,
                                                             const NoiseSchedule& schedule,
                                                             const ReconstructionOptions& options,
                                                             const Tensor& z0, Tensor* error_maps) {
  INVAD_RETURN_IF_ERROR(options.Validate());
  const LatentShape ls = denoiser.latent_shape();
  INVAD_RETURN_IF_ERROR(
      CheckShape(z0, {-1, ls.channels, ls.height, ls.width}, "reconstruction input"));
  INVAD_ASSIGN_OR_RETURN(std::vector<int> taus,
                         SpaceTimesteps(schedule.num_timesteps(), options.num_points));
  const int64_t b = z0.batch(), n = z0.sample_numel();

  // Forward-noise to τ_r: x = √ᾱ·z0 + √(1−ᾱ)·ε.
  const int tau_r = taus[options.noise_index];
  const float sa = static_cast<float>(std::sqrt(schedule.alpha_bar(tau_r)));
  const float sb = static_cast<float>(std::sqrt(1.0 - schedule.alpha_bar(tau_r)));
  Tensor x(z0.shape());
  std::vector<float> noise(n);
  if (options.shared_noise) FillNoise(options.seed, noise.data(), n);
  for (int64_t i = 0; i < b; ++i) {
    if (!options.shared_noise) FillNoise(options.seed + static_cast<uint64_t>(i), noise.data(), n);
    const float* z = z0.sample(i);
    float* xi = x.sample(i);
    for (int64_t j = 0; j < n; ++j) xi[j] = sa * z[j] + sb * noise[j];
  }

  // Denoise index start..0; each step targets ᾱ of the previous point (ᾱ'_{-1} = 1, so the last
  // step outputs x̂0).
  const int start = options.faithful ? options.noise_index - 1 : options.noise_index;
  Tensor eps;
  std::vector<int> ts(b);
  for (int i = start; i >= 0; --i) {
    const double target = i > 0 ? schedule.alpha_bar(taus[i - 1]) : 1.0;
    const DdimCoefficients c = DdimCoefficients::Make(taus[i], schedule.alpha_bar(taus[i]), target);
    std::fill(ts.begin(), ts.end(), taus[i]);
    INVAD_RETURN_IF_ERROR(denoiser.Predict(x, ts, &eps));
    std::vector<DdimCoefficients> coefs(b, c);
    INVAD_RETURN_IF_ERROR(DdimStep(coefs, eps, x));
  }

  std::vector<ReconstructionScore> scores(b);
  const int64_t hw = ls.height * ls.width;
  if (error_maps != nullptr) error_maps->Resize({b, ls.height, ls.width});
  for (int64_t i = 0; i < b; ++i) {
    const float* xr = x.sample(i);
    const float* z = z0.sample(i);
    double total = 0.0;
    float* map = error_maps ? error_maps->sample(i) : nullptr;
    if (map) std::fill(map, map + hw, 0.0f);
    for (int64_t j = 0; j < n; ++j) {
      const double d = static_cast<double>(xr[j]) - z[j];
      total += d * d;
      if (map) map[j % hw] += static_cast<float>(d * d / ls.channels);
    }
    scores[i].mse = total / static_cast<double>(n);
  }
  return scores;
}

}  // namespace invad::core
