#include "core/scoring/scoring.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace invad::core {

double NllConstant(int64_t elements) {
  return 0.5 * static_cast<double>(elements) * std::log(2.0 * M_PI);
}

LatentScore ScoreLatent(const float* z, int64_t c, int64_t h, int64_t w, float* norm_map) {
  const int64_t hw = h * w;
  // Accumulate the per-location squares channel by channel (contiguous reads).
  std::vector<double> sq(hw, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    const float* plane = z + ch * hw;
    for (int64_t p = 0; p < hw; ++p) sq[p] += static_cast<double>(plane[p]) * plane[p];
  }
  LatentScore s;
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
  for (int64_t p = 0; p < hw; ++p) {
    s.sq_norm += sq[p];
    const float n = static_cast<float>(std::sqrt(sq[p]));
    if (norm_map != nullptr) norm_map[p] = n;
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  s.diff = hw > 0 ? static_cast<double>(hi) - lo : 0.0;
  s.max_norm = hw > 0 ? static_cast<double>(hi) : 0.0;
  s.nll = 0.5 * s.sq_norm + NllConstant(c * hw);
  return s;
}

std::vector<LatentScore> ScoreLatents(const Tensor& z_t, Tensor* norm_maps) {
  const int64_t b = z_t.dim(0), c = z_t.dim(1), h = z_t.dim(2), w = z_t.dim(3);
  if (norm_maps != nullptr) norm_maps->Resize({b, h, w});
  std::vector<LatentScore> out(b);
  for (int64_t i = 0; i < b; ++i) {
    out[i] = ScoreLatent(z_t.sample(i), c, h, w, norm_maps ? norm_maps->sample(i) : nullptr);
  }
  return out;
}

void ThresholdMap(const float* map, int64_t n, double threshold, uint8_t* mask) {
  for (int64_t i = 0; i < n; ++i) mask[i] = static_cast<double>(map[i]) > threshold ? 1 : 0;
}

namespace {
struct Tap {
  int64_t i0, i1;
  float w1;  // weight of i1; i0 gets 1 − w1
};
// Source taps of PyTorch's upsample_bilinear2d with align_corners = false.
std::vector<Tap> Taps(int64_t in, int64_t out) {
  std::vector<Tap> taps(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t d = 0; d < out; ++d) {
    float src = (static_cast<float>(d) + 0.5f) * scale - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int64_t i0 = static_cast<int64_t>(src);
    if (i0 > in - 1) i0 = in - 1;
    const int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
    taps[d] = {i0, i1, src - static_cast<float>(i0)};
  }
  return taps;
}
}  // namespace

void UpsampleBilinear(const float* in, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                      int64_t out_w) {
  const std::vector<Tap> ty = Taps(in_h, out_h);
  const std::vector<Tap> tx = Taps(in_w, out_w);
  for (int64_t y = 0; y < out_h; ++y) {
    const float wy1 = ty[y].w1, wy0 = 1.0f - wy1;
    const float* r0 = in + ty[y].i0 * in_w;
    const float* r1 = in + ty[y].i1 * in_w;
    float* o = out + y * out_w;
    for (int64_t x = 0; x < out_w; ++x) {
      const float wx1 = tx[x].w1, wx0 = 1.0f - wx1;
      o[x] = wy0 * (wx0 * r0[tx[x].i0] + wx1 * r0[tx[x].i1]) +
             wy1 * (wx0 * r1[tx[x].i0] + wx1 * r1[tx[x].i1]);
    }
  }
}

}  // namespace invad::core
