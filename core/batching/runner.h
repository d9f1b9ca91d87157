// File: core/batching/runner.h
//
// What the scheduler runs: one model instance, driven by one scheduler thread at a time. The
// production runner wraps a core::Pipeline (MakePipelineRunner); tests use fakes with injected
// latency and failures. No LibTorch here: the runtime hides behind the Pipeline's interfaces.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "core/diffusion/schedule.h"
#include "core/model/inversion.h"
#include "core/tensor.h"

namespace invad::core {

class BatchRunner {
 public:
  virtual ~BatchRunner() = default;
  // Per-image input layout [C, H, W] and latent layout.
  virtual Shape input_shape() const = 0;
  virtual LatentShape latent_shape() const = 0;
  // The K-step plan; InvalidArgument if K is not allowed. Thread-safe (read-only after creation).
  virtual absl::StatusOr<const std::vector<DdimCoefficients>*> Plan(int k) const = 0;
  // images [B, C, H, W] → z0 [B, c, h, w].
  virtual absl::Status Encode(const Tensor& images, Tensor* z0) = 0;
  // One denoiser call; sample i advances by step coefs[i] of its own plan, in place.
  virtual absl::Status Step(absl::Span<const DdimCoefficients> coefs, Tensor& z) = 0;
  // Whether Invert keeps z on a device for all steps (one upload, one download per batch): the
  // scheduler then runs a whole-request batch whose tasks share one K as one Invert call, with no
  // cancellation between its steps. False for host models, where per-step calls cost nothing more.
  virtual bool fused_inversion() const { return false; }
  // Every step of `plan` for the whole batch, in place. The default loops Step.
  virtual absl::Status Invert(absl::Span<const DdimCoefficients> plan, Tensor& z);
};

// `input_shape` [C, H, W] is the bundle's network input.
std::unique_ptr<BatchRunner> MakePipelineRunner(std::unique_ptr<Pipeline> pipeline,
                                                Shape input_shape);

}  // namespace invad::core
