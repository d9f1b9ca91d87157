#include "core/diffusion/schedule.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace invad::core {

absl::StatusOr<NoiseSchedule> NoiseSchedule::Linear(int num_timesteps, double beta_start,
                                                    double beta_end) {
  if (num_timesteps < 2 || num_timesteps > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_timesteps must be in [2, 100000], got ", num_timesteps));
  }
  if (!(beta_start > 0.0 && beta_start <= beta_end && beta_end < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("need 0 < beta_start <= beta_end < 1, got ", beta_start, ", ", beta_end));
  }
  std::vector<double> alphas_cumprod(num_timesteps);
  double prod = 1.0;
  for (int i = 0; i < num_timesteps; ++i) {
    // numpy.linspace(start, end, n): start + i * (end - start) / (n - 1), with the last point
    // exact.
    const double beta = i == num_timesteps - 1
                            ? beta_end
                            : beta_start + i * ((beta_end - beta_start) / (num_timesteps - 1));
    prod *= 1.0 - beta;
    alphas_cumprod[i] = prod;
  }
  return NoiseSchedule(std::move(alphas_cumprod));
}

absl::StatusOr<std::vector<int>> SpaceTimesteps(int num_timesteps, int k) {
  if (k < 1 || k > num_timesteps) {
    return absl::InvalidArgumentError(
        absl::StrCat("steps must be in [1, ", num_timesteps, "], got ", k));
  }
  if (k == 1) return std::vector<int>{0};
  const double stride = static_cast<double>(num_timesteps - 1) / (k - 1);
  std::vector<int> steps;
  steps.reserve(k);
  double cur = 0.0;
  for (int i = 0; i < k; ++i) {
    steps.push_back(static_cast<int>(std::nearbyint(cur)));  // round half to even, like Python
    cur += stride;
  }
  return steps;
}

DdimCoefficients DdimCoefficients::Make(int timestep, double alpha_bar, double alpha_bar_target) {
  DdimCoefficients c;
  c.timestep = timestep;
  c.alpha_bar = alpha_bar;
  c.alpha_bar_target = alpha_bar_target;
  c.sqrt_recip_alpha_bar = std::sqrt(1.0 / alpha_bar);
  c.sqrt_recip_m1_alpha_bar = std::sqrt(1.0 / alpha_bar - 1.0);
  c.sqrt_alpha_bar_target = std::sqrt(alpha_bar_target);
  c.sqrt_one_minus_alpha_bar_target = std::sqrt(1.0 - alpha_bar_target);
  return c;
}

absl::StatusOr<std::vector<DdimCoefficients>> InversionPlan(const NoiseSchedule& schedule, int k,
                                                            ScheduleMode mode) {
  if (k < 1 || k > kMaxInversionSteps) {
    return absl::InvalidArgumentError(
        absl::StrCat("steps must be in [1, ", kMaxInversionSteps, "], got ", k));
  }
  const int points = mode == ScheduleMode::kCode ? k : k + 1;
  auto taus = SpaceTimesteps(schedule.num_timesteps(), points);
  if (!taus.ok()) return taus.status();
  std::vector<DdimCoefficients> plan;
  plan.reserve(k);
  for (int i = 0; i < k; ++i) {
    const int t = (*taus)[i];
    // The code path's last step targets ᾱ = 0 (guided-diffusion's alphas_cumprod_next convention).
    const double target = i + 1 < points ? schedule.alpha_bar((*taus)[i + 1]) : 0.0;
    plan.push_back(DdimCoefficients::Make(t, schedule.alpha_bar(t), target));
  }
  return plan;
}

}  // namespace invad::core
