// File: core/model/inversion.h
//
// The InvAD pipeline for one loaded model: encode → K DDIM inversion steps → score.
//
//   Pipeline p(encoder, denoiser, schedule, {1, 2, 3, 5, 10});  // plans computed here, once
//   Tensor z;  p.Encode(images, &z);  p.Invert(3, z);  auto scores = ScoreLatents(z, &maps);
//
// `InvertStep` is the per-sample step the batcher uses to mix samples at different steps and with
// different K in one denoiser call; `Invert` is the whole-request loop over it.
//
// Thread-compatible, not thread-safe: it keeps scratch buffers between calls, so one execution
// thread owns a Pipeline (the batcher creates one per model instance).
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

#include "core/diffusion/schedule.h"
#include "core/model/model.h"

namespace invad::core {

class Pipeline {
 public:
  // Precomputes the inversion plan of every K in `allowed_steps` (each in [1, 50]).
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(std::unique_ptr<Encoder> encoder,
                                                          std::unique_ptr<Denoiser> denoiser,
                                                          const NoiseSchedule& schedule,
                                                          const std::vector<int>& allowed_steps,
                                                          ScheduleMode mode = ScheduleMode::kCode);

  // images [B, ch, H, W] → z0 [B, C, h, w].
  absl::Status Encode(const Tensor& images, Tensor* z0);

  // The plan for K; InvalidArgument if K is not in the allowed list.
  absl::StatusOr<const std::vector<DdimCoefficients>*> Plan(int k) const;

  // One denoiser call for a batch whose sample i is at step coefs[i] of its own plan; z is
  // updated in place. `eps` is scratch space (resized as needed).
  absl::Status InvertStep(absl::Span<const DdimCoefficients> coefs, Tensor& z, Tensor* eps);

  // All K steps for the whole batch: z0 in, z_T out.
  absl::Status Invert(int k, Tensor& z);

  const LatentShape& latent_shape() const { return latent_; }
  const std::vector<int>& allowed_steps() const { return allowed_steps_; }
  Encoder& encoder() { return *encoder_; }
  Denoiser& denoiser() { return *denoiser_; }

 private:
  Pipeline() = default;
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Denoiser> denoiser_;
  LatentShape latent_;
  std::vector<int> allowed_steps_;
  std::map<int, std::vector<DdimCoefficients>> plans_;
  std::vector<int> timesteps_scratch_;
};

}  // namespace invad::core
