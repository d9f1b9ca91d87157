// Fakes behind core's model interfaces, for tests and benchmarks that must not depend on LibTorch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/model/model.h"

namespace invad::testing {

// ε̂(z, t) = a(t)·z: linear in z, so K inversion steps have a closed form; a depends on t, so a
// wrong timestep changes the result.
class LinearDenoiser : public core::Denoiser {
 public:
  explicit LinearDenoiser(core::LatentShape shape, std::function<double(int)> a = DefaultA)
      : shape_(shape), a_(std::move(a)) {}
  static double DefaultA(int t) { return 0.1 + t / 2000.0; }

  absl::Status Predict(const core::Tensor& z, absl::Span<const int> timesteps,
                       core::Tensor* eps) override {
    if (absl::Status s = core::ValidateDenoiserInput(z, timesteps, shape_); !s.ok()) return s;
    eps->Resize(z.shape());
    for (int64_t i = 0; i < z.batch(); ++i) {
      const float a = static_cast<float>(a_(timesteps[i]));
      const float* in = z.sample(i);
      float* out = eps->sample(i);
      for (int64_t j = 0; j < z.sample_numel(); ++j) out[j] = a * in[j];
    }
    calls.push_back(std::vector<int>(timesteps.begin(), timesteps.end()));
    return absl::OkStatus();
  }
  core::LatentShape latent_shape() const override { return shape_; }
  std::string Describe() const override { return "linear-fake"; }

  std::vector<std::vector<int>> calls;  // timesteps of every call, in order

 private:
  core::LatentShape shape_;
  std::function<double(int)> a_;
};

// z0 = average-pooled image channels, tiled to the latent's channel count.
class PoolingEncoder : public core::Encoder {
 public:
  explicit PoolingEncoder(core::LatentShape shape) : shape_(shape) {}
  absl::Status Encode(const core::Tensor& images, core::Tensor* z0) override;
  core::LatentShape latent_shape() const override { return shape_; }
  std::string Describe() const override { return "pooling-fake"; }

 private:
  core::LatentShape shape_;
};

}  // namespace invad::testing
