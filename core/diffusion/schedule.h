// File: core/diffusion/schedule.h
//
// The diffusion noise schedule and the timestep plans of DDIM inversion and reconstruction,
// exactly as ../shared/docs/method.md §4 (and the official InvAD code) define them:
//   - linear β from 1e-4 to 0.02 over T = 1000 steps, ᾱ_t = Π_{s<=t}(1-β_s), all in float64;
//   - respacing with the *accumulating* rule (§4.2): K = 3 gives τ = [0, 500, 999];
//   - an inversion plan: per step the timestep τ_i given to the model, ᾱ'_i, and the ᾱ to step to
//     (ᾱ'_{i+1}; 0 on the last step in `kCode` mode, so z_T = ε'(z_{τ_{K-1}}, τ_{K-1})).
//
// Plans are computed once when a model loads, never per call.
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace invad::core {

// Which timesteps a K-step inversion visits (method.md §4.5).
enum class ScheduleMode {
  // The official code: K respaced points including 0 and T-1; the last step maps to ᾱ = 0.
  kCode,
  // The paper text: K+1 respaced points, K steps, ending at x_{T-1} (e.g. K = 3: t = 0, 333, 666).
  kPaper,
};

class NoiseSchedule {
 public:
  // Linear β schedule. Requires 2 <= num_timesteps <= 100000 and 0 < beta_start <= beta_end < 1.
  static absl::StatusOr<NoiseSchedule> Linear(int num_timesteps = 1000, double beta_start = 1e-4,
                                              double beta_end = 0.02);

  int num_timesteps() const { return static_cast<int>(alphas_cumprod_.size()); }
  // ᾱ_t for t in [0, T).
  double alpha_bar(int t) const { return alphas_cumprod_[t]; }
  const std::vector<double>& alphas_cumprod() const { return alphas_cumprod_; }

 private:
  explicit NoiseSchedule(std::vector<double> alphas_cumprod)
      : alphas_cumprod_(std::move(alphas_cumprod)) {}
  std::vector<double> alphas_cumprod_;
};

// The K timesteps kept when respacing T steps to K (method.md §4.2): stride = (T-1)/(K-1) in
// float64, accumulated (cur += stride), each rounded half-to-even. Requires 1 <= K <= T.
absl::StatusOr<std::vector<int>> SpaceTimesteps(int num_timesteps, int k);

// Coefficients of one deterministic DDIM step for one sample, in float64. The step computes
//   x̂0 = a·z − b·ε̂,  z' = c·x̂0 + d·ε̂   (ε' = (a·z − x̂0)/b = ε̂ in exact arithmetic)
// with a = √(1/ᾱ), b = √(1/ᾱ − 1), c = √ᾱ_target, d = √(1 − ᾱ_target). Inversion steps to a larger
// t (ᾱ_target < ᾱ), reconstruction to a smaller one; both use the same arithmetic.
struct DdimCoefficients {
  int timestep = 0;               // τ given to the model (an original timestep, 0..T-1)
  double alpha_bar = 1.0;         // ᾱ at τ
  double alpha_bar_target = 0.0;  // ᾱ of the state this step produces
  double sqrt_recip_alpha_bar = 1.0;
  double sqrt_recip_m1_alpha_bar = 0.0;
  double sqrt_alpha_bar_target = 0.0;
  double sqrt_one_minus_alpha_bar_target = 1.0;

  static DdimCoefficients Make(int timestep, double alpha_bar, double alpha_bar_target);
};

// The K inversion steps, in order. Requires 1 <= K <= 50 (the core's range; bundles narrow it).
absl::StatusOr<std::vector<DdimCoefficients>> InversionPlan(
    const NoiseSchedule& schedule, int k, ScheduleMode mode = ScheduleMode::kCode);

inline constexpr int kMaxInversionSteps = 50;

}  // namespace invad::core
