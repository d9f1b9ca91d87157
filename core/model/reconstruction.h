// File: core/model/reconstruction.h
//
// The reconstruction baseline InvAD is compared with (method.md §7): noise z0 to a respaced level
// τ_r, denoise with deterministic DDIM back to t = 0, and score the reconstruction error.
//
// Two variants: `faithful` reproduces the official code, which noises to τ_r but starts denoising
// at index r−1 (NFE = r); the default corrects that off-by-one and starts at r (NFE = r + 1).
// Unlike the reference, any batch size works: shared noise is broadcast over the batch.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

#include "core/diffusion/schedule.h"
#include "core/model/model.h"

namespace invad::core {

struct ReconstructionOptions {
  // S: number of respaced points (method.md §7: the reference's eval_step). In [2, 1000].
  int num_points = 10;
  // r: index into those points of the noise level, in [1, S−1].
  int noise_index = 7;
  // true: start denoising at r−1 like the official code (NFE = r); false: at r (NFE = r + 1).
  bool faithful = false;
  // Seed of the Gaussian noise (std::mt19937_64 + std::normal_distribution<float>).
  uint64_t seed = 42;
  // true: one noise tensor for every image (the reference); false: sample i of a call draws from
  // seed + i.
  bool shared_noise = true;

  absl::Status Validate() const;
  int nfe() const { return faithful ? noise_index : noise_index + 1; }
};

struct ReconstructionScore {
  double mse = 0.0;  // mean over C, H, W of (x_rec − z0)²
};

// Reconstructs z0 [B, C, H, W]; returns per-sample scores and, if non-null, the per-location
// channel-mean squared error maps [B, H, W] (upsample them like the inversion map).
absl::StatusOr<std::vector<ReconstructionScore>> Reconstruct(Denoiser& denoiser,
                                                             const NoiseSchedule& schedule,
                                                             const ReconstructionOptions& options,
                                                             const Tensor& z0, Tensor* error_maps);

}  // namespace invad::core
