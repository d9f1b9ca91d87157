// File: core/model/model.h
//
// The two model roles of InvAD, as torch-free interfaces. Implementations live in core/runtime/
// (TorchScript and native LibTorch) and in tests (fakes). Both are stateless per call, and
// thread-compatible: callers serialise calls to one instance (the batcher owns an instance per
// execution thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "core/diffusion/schedule.h"
#include "core/tensor.h"

namespace invad::core {

// Latent layout [C, H, W] of z0 and z_T (272×16×16 for the paper's EfficientNet-B4 features).
struct LatentShape {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t numel() const { return channels * height * width; }
  bool operator==(const LatentShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
};

// Images → latent feature maps z0.
class Encoder {
 public:
  virtual ~Encoder() = default;
  // images: [B, 3 or 1, H, W], normalised as the bundle's input spec says. z0: resized to
  // [B, C, h, w] of latent_shape(). Errors: InvalidArgument (shape), Internal (runtime failure).
  virtual absl::Status Encode(const Tensor& images, Tensor* z0) = 0;
  virtual LatentShape latent_shape() const = 0;
  virtual std::string Describe() const = 0;
};

// ε-prediction network: (z, t) → ε̂, with one timestep per sample.
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  // z: [B, C, H, W]; timesteps: B original timesteps in [0, T); eps: resized to z's shape.
  virtual absl::Status Predict(const Tensor& z, absl::Span<const int> timesteps, Tensor* eps) = 0;
  // Every step of `plan` for the whole batch (the same plan for each sample): z0 in, z_T out.
  // The default loops Predict + DdimStep on the host; a device implementation overrides it to
  // copy z to the device once, keep it there for all steps (fp32 update arithmetic) and copy z_T
  // back once.
  virtual absl::Status Invert(absl::Span<const DdimCoefficients> plan, Tensor& z);
  // True when Invert keeps z on a device (cuda) for all steps: whole batches then go as one call.
  virtual bool device_resident() const { return false; }
  virtual LatentShape latent_shape() const = 0;
  virtual std::string Describe() const = 0;
};

// Standardisation of z0 (the manifest's LatentSpec mean/std): z0 ← (z0 − mean)/std, per channel
// (C values each) or per channel and location (C·H·W values each, CHW order). The paper feeds raw
// EfficientNet features; features of our own encoders differ in scale by orders of magnitude
// between channels, which the fixed ε-objective cannot absorb. Per location suits parts in a
// canonical pose: every cell is judged against its own normal spread (a rim, a notch).
struct LatentNorm {
  std::vector<float> mean;
  std::vector<float> std;
  bool empty() const { return mean.empty() && std.empty(); }
  bool per_location(const LatentShape& shape) const {
    return static_cast<int64_t>(mean.size()) == shape.numel() && shape.numel() != shape.channels;
  }
  // Both hold shape.channels or shape.numel() finite values, every std > 0. InvalidArgument
  // otherwise.
  absl::Status Validate(const LatentShape& shape) const;
};

// Mean and standard deviation per channel over batch and space of `z0` [N, C, H, W]; a std below
// 1e-6 (a constant channel) becomes 1. With per_location, per channel and location over the batch,
// each std floored at kLocationStdFloor × its channel's std (a location that barely varies in the
// training images must not turn noise into huge values).
LatentNorm FitLatentNorm(const Tensor& z0, bool per_location = false);
inline constexpr float kLocationStdFloor = 0.1f;
// Applies `norm` in place to `z0` [N, C, H, W].
void ApplyLatentNorm(const LatentNorm& norm, Tensor* z0);

// An encoder whose output is standardised by `norm` (validated against inner's latent shape).
absl::StatusOr<std::unique_ptr<Encoder>> WithLatentNorm(std::unique_ptr<Encoder> inner,
                                                        LatentNorm norm);

// Checks the arguments every Denoiser::Predict receives; implementations call it first.
absl::Status ValidateDenoiserInput(const Tensor& z, absl::Span<const int> timesteps,
                                   const LatentShape& shape, int num_timesteps = 1000);

}  // namespace invad::core
