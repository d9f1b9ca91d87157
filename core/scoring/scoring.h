// File: core/scoring/scoring.h
//
// Anomaly scores from the inverted latent z_T (method.md §5):
//   - norm map n(i,j) = ‖z_T[:, i, j]‖₂ over channels;
//   - Diff = max n − min n (on the raw map);
//   - max n, the raw map's maximum (the image score of ScoreRule::kMaxNorm);
//   - ‖z_T‖² (the NLL is ½‖z_T‖² + ½·D·ln 2π, D = C·H·W);
//   - the pixel map: n upsampled bilinearly with align_corners = false (PyTorch semantics),
//     no smoothing and no per-image normalisation.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace invad::core {

struct LatentScore {
  double sq_norm = 0.0;   // ‖z_T‖², summed in float64
  double diff = 0.0;      // max n − min n
  double max_norm = 0.0;  // max n
  // −Σ log N(z_T; 0, I) = ½‖z_T‖² + ½·D·ln(2π), D = number of latent elements.
  double nll = 0.0;
};

// Scores one sample z of shape [C, H, W]; writes the H×W norm map into `norm_map` if non-null.
LatentScore ScoreLatent(const float* z, int64_t c, int64_t h, int64_t w, float* norm_map);

// Scores every sample of z_T [B, C, H, W]; fills `norm_maps` [B, H, W] if non-null.
std::vector<LatentScore> ScoreLatents(const Tensor& z_t, Tensor* norm_maps);

// Bilinear resize of one [in_h, in_w] map, align_corners = false, as
// torch.nn.functional.interpolate (source coordinate (dst + 0.5)·in/out − 0.5, clamped at 0).
void UpsampleBilinear(const float* in, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                      int64_t out_w);

// The predicted defect mask: mask[i] = map[i] > threshold (the calibrated pixel threshold).
void ThresholdMap(const float* map, int64_t n, double threshold, uint8_t* mask);

// ½·D·ln(2π) for D elements.
double NllConstant(int64_t elements);

}  // namespace invad::core
