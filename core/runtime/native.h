// File: core/runtime/native.h
//
// Models defined in C++ (LibTorch), loaded from named tensors (a bundle's weights file):
//   - the DiT denoiser of method.md §3.2 (unconditional, adaLN-Zero, patch p), sized by config;
//     weight names are the official InvAD state-dict names without the "net." prefix, so
//     tools/interop/convert_official_dit.py converts an official checkpoint by renaming;
//   - a small multi-scale convolutional encoder (stride-2 stages, chosen stage outputs bilinearly
//     brought to the latent size (average-pooled by an integer factor, else bilinear) and
//     concatenated, as the paper's feature aggregation does). It computes no stage after the last
//     one it outputs;
//   - a handcrafted filter-bank encoder (no weights).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

#include "core/model/model.h"
#include "core/runtime/runtime.h"

namespace invad::core {

struct DitConfig {
  LatentShape latent{272, 16, 16};
  int patch_size = 1;        // tokens = (H/p)·(W/p)
  int hidden_size = 256;     // the paper's "gigant": 2048
  int depth = 4;             // the paper's: 16
  int num_heads = 4;         // the paper's: 8 (head dim 256)
  int mlp_ratio_x100 = 400;  // MLP width = hidden·ratio/100 (the paper's: ×4)
  int frequency_embedding_size = 256;

  absl::Status Validate() const;  // InvalidArgument naming the field
  int64_t NumParameters() const;
  int64_t mlp_hidden() const { return static_cast<int64_t>(hidden_size) * mlp_ratio_x100 / 100; }
};

absl::StatusOr<std::unique_ptr<Denoiser>> CreateNativeDit(const DitConfig& config,
                                                          const NamedTensors& weights,
                                                          const RuntimeOptions& options);

// Weights initialised as the reference (xavier-uniform linears, N(0, 0.02) timestep MLP, 2-D
// sin-cos position embedding, zero adaLN and output layers). With zero_init_output = false the zero
// layers get small random values too, so an untrained network has a non-trivial output (tests,
// benchmarks).
NamedTensors InitDitWeights(const DitConfig& config, uint64_t seed, bool zero_init_output = true);

struct ConvEncoderConfig {
  int input_channels = 3;
  int input_size = 256;                               // square input H = W
  std::vector<int> stage_channels{32, 64, 128, 128};  // stage s: conv3×3/2 → SiLU → conv3×3 → SiLU
  std::vector<int> output_stages{1, 2, 3};            // stages concatenated into z0, in this order
  int latent_size = 16;                               // z0 is [Σ channels of output stages, s, s]

  absl::Status Validate() const;
  LatentShape latent() const;
};

absl::StatusOr<std::unique_ptr<Encoder>> CreateNativeConvEncoder(const ConvEncoderConfig& config,
                                                                 const NamedTensors& weights,
                                                                 const RuntimeOptions& options);
// Handcrafted encoder: Gaussian-derivative filters (∂x, ∂y, ∂xx, ∂yy, ∂xy, σ-normalised) of the
// grey image at each scale, reflect-padded, summarised per latent cell (input/latent pixels square)
// by mean and max magnitude, plus the cell mean and standard deviation of every input channel.
struct FilterBankConfig {
  int input_channels = 3;
  int input_size = 256;  // square; a multiple of latent_size
  int latent_size = 16;
  std::vector<float> scales{1.0f, 2.0f, 4.0f};  // σ in pixels
  // Two channels of fine detail: per cell, the mean |discrete Laplacian| of the grey image and the
  // maximum of its square blurred with σ = 1.5 px.
  bool laplacian = false;
  // Four channels of periodic-texture residual: each image's dominant period along x and along y
  // (the highest local maximum of its autocorrelation between 4 px and half the image), the grey
  // image minus the mean of its neighbours one period away on both axes (those inside the image),
  // blurred with σ = 1.5 and 3 px; per cell the mean and maximum magnitude of each. A periodic
  // pattern cancels there and leaves the noise; a local defect does not cancel.
  bool periodic = false;
  // Four channels of rotational residual, for round parts (washers, caps, bearings) at any angle:
  // the grey image minus the mean of its rotations by ±kRotationalAngle about the foreground's
  // centroid (ForegroundOf below), blurred with σ = 1.5 and 3 px; per cell the mean and maximum
  // magnitude of each. Rings, rims and shading that vary slowly with the angle cancel there; a
  // local defect does not.
  bool rotational = false;
  // Four channels of lattice residual, for periodic textures whose period is not a whole number
  // of pixels or whose lattice is tilted (woven grids, meshes, tiles): each image's two lattice
  // vectors, to a fraction of a pixel (FindLattice below), the grey image minus the mean of its
  // eight lattice neighbours (±a1, ±a2, ±a1 ± a2; bicubic, those inside the image), then two
  // detectors of it: its 3×3 box mean ("blob") and the maximum over 16 orientations of its mean
  // along an 11-pixel digital line ("line", a matched filter for 1-px scratches and cracks); per
  // cell the mean and maximum magnitude of each. The pattern cancels to the pixel noise, which the
  // integer lags of `periodic` cannot do for such textures. An image without a lattice (no
  // autocorrelation peak >= kLatticeCorrelation on both axes) uses the periodic residual instead.
  bool lattice = false;
  // Four channels of pixel-standardised rotational residual, for round parts in a canonical pose
  // (pose normalisation; needs `rotational`): two detectors of the rotational residual — its 3×3
  // box mean magnitude ("blob") and LineResponse, the largest mean along an 11-px line in 16
  // orientations ("line") — each standardised pixel by pixel with the mean and standard deviation
  // of the training images at that pixel (FitPixelStats: the encoder's weights), then 3×3
  // box-blurred; per cell the mean and maximum of each. The rim, the ripple and a pose marker
  // vary where they are, and a cell's statistics of the raw residual follow them; judged against
  // its own pixel's normal spread, a faint defect in a quiet part of the same cell stands out.
  bool pixel_norm = false;
  // Only the channels above (Laplacian and residuals, as set): no Gaussian-derivative statistics
  // and no cell mean and standard deviation. For a lattice finer than a latent cell those swing
  // with the pattern's phase inside every cell, while the lattice residual is the texture without
  // its pattern; for a round part in a canonical pose they follow its rims and pose marker, which
  // the rotational residual and pixel_norm absorb. Channels that carry no defect evidence dilute
  // a latent location's norm. Needs periodic, rotational or lattice.
  bool residual_only = false;

  absl::Status Validate() const;
  // (residual_only ? 0 : 10·|scales| + 2·input_channels) + 2·laplacian + 4·periodic +
  // 4·rotational + 4·lattice + 4·pixel_norm channels
  LatentShape latent() const;
};

// `weights`: FitPixelStats's tensors when config.pixel_norm, else none.
absl::StatusOr<std::unique_ptr<Encoder>> CreateFilterBankEncoder(const FilterBankConfig& config,
                                                                 const RuntimeOptions& options,
                                                                 const NamedTensors& weights = {});

// The per-pixel statistics FilterBankConfig::pixel_norm needs, from preprocessed training images
// [N >= 2, C, S, S] (in the canonical pose when the bundle normalises it): "pixel_mean" and
// "pixel_std" [2, S, S], the mean and standard deviation over the images of the blob and line
// detectors at each pixel; a standard deviation below a tenth of its detector's mean one is raised
// to it (flat background, where the detectors barely move, must not turn noise into evidence).
absl::StatusOr<NamedTensors> FitPixelStats(const FilterBankConfig& config, const Tensor& images);

// The rotational channels' angle, radians (20°): a defect up to ~12 px across at 35 px from the
// centre does not overlap its own rotated copies; a part lit from one side (cos θ shading) leaves
// 1 − cos 20° = 6 % of its shading's amplitude.
inline constexpr double kRotationalAngle = 0.349066;

// How well FilterBankConfig::rotational suits a set of preprocessed images [N, C, H, W] (any
// normalisation): per image, the foreground is the class of a two-class (isodata) threshold of the
// grey image that holds fewer of the border pixels; the image's roundness is the IoU of that
// foreground with its own rotation by kRotationalAngle about its centroid, and 0 when the
// foreground covers more than 5 % of the border or less than 1 % of the image (a texture, no
// single part). Returns the median over the images. invad-train --filter_rotational=auto turns
// the channels on at >= kRoundPartThreshold.
absl::StatusOr<double> ForegroundRoundness(const Tensor& images);
inline constexpr double kRoundPartThreshold = 0.9;

// An image's lattice: the first peak of its normalised autocorrelation (lag >= 4 px, within ±10 %
// of each axis) on each axis, refined to a fraction of a pixel (parabolic fit, then its farthest
// multiple within half the image divided by the multiple). `found` when both peaks reach
// kLatticeCorrelation of the zero-lag value. Pixels, x then y.
struct Lattice {
  bool found = false;
  double a1x = 0, a1y = 0;  // the vector along x
  double a2x = 0, a2y = 0;  // the vector along y
  double correlation = 0;   // the smaller of the two peaks' normalised autocorrelations
};
inline constexpr double kLatticeCorrelation = 0.8;
// The lattice of each image in [N, C, H, W] (grey = the channels' mean; H, W >= 16).
absl::StatusOr<std::vector<Lattice>> FindLattices(const Tensor& images);
// How well FilterBankConfig::lattice suits a set of preprocessed images, from FindLattices's
// answer for them: the fraction of them with a lattice (0 for none). invad-train
// --filter_lattice=auto turns the channels on at >= kLatticeFraction.
double LatticeFraction(const std::vector<Lattice>& lattices);
inline constexpr double kLatticeFraction = 0.9;
// The median over the images with a lattice of its longer lattice vector's length, pixels (0 when
// none has one). invad-train --filter_residual_only=auto keeps only the residual channels when
// the lattice channels are on and this is shorter than a latent cell.
double LatticePeriod(const std::vector<Lattice>& lattices);

// Kaiming-uniform conv weights (fixed random features until a trained encoder replaces them).
NamedTensors InitConvEncoderWeights(const ConvEncoderConfig& config, uint64_t seed);

}  // namespace invad::core
