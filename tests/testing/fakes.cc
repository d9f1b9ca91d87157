#include "tests/testing/fakes.h"

namespace invad::testing {

absl::Status PoolingEncoder::Encode(const core::Tensor& images, core::Tensor* z0) {
  if (images.rank() != 4) return absl::InvalidArgumentError("images must be [B, ch, H, W]");
  const int64_t b = images.dim(0), ch = images.dim(1), h = images.dim(2), w = images.dim(3);
  if (h % shape_.height != 0 || w % shape_.width != 0) {
    return absl::InvalidArgumentError("image size must be a multiple of the latent size");
  }
  const int64_t fy = h / shape_.height, fx = w / shape_.width;
  z0->Resize({b, shape_.channels, shape_.height, shape_.width});
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t c = 0; c < shape_.channels; ++c) {
      const float* plane = images.sample(i) + (c % ch) * h * w;
      float* out = z0->sample(i) + c * shape_.height * shape_.width;
      for (int64_t y = 0; y < shape_.height; ++y) {
        for (int64_t x = 0; x < shape_.width; ++x) {
          double s = 0.0;
          for (int64_t dy = 0; dy < fy; ++dy) {
            for (int64_t dx = 0; dx < fx; ++dx) s += plane[(y * fy + dy) * w + x * fx + dx];
          }
          out[y * shape_.width + x] =
              static_cast<float>(s / (fy * fx)) * (1.0f + 0.1f * static_cast<float>(c));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace invad::testing
