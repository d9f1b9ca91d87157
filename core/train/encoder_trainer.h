// File: core/train/encoder_trainer.h
//
// Gives a trainable encoder its own objective (issue 3): the native conv encoder is trained as the
// encoder half of an autoencoder that reconstructs normal images from z0, then frozen before the
// denoiser is trained. Training the encoder through the ε-MSE instead would let it shrink z0 until
// the noise prediction is trivial (a collapsed latent). The decoder is discarded.
//
// Decoder: 1×1 conv C→w, SiLU; then log2(input/latent) times ×2 nearest upsampling, 3×3 conv,
// SiLU; a final 3×3 conv to the input channels. Loss: mean squared error on the normalised image.
// AdamW with linear warm-up and cosine decay, as the denoiser.
//
// Torch-free header; the implementation is core/train/encoder_trainer.cc (LibTorch).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"

#include "core/runtime/native.h"
#include "core/tensor.h"
#include "core/train/denoiser_trainer.h"

namespace invad::core {

struct AutoencoderTrainOptions {
  int steps = 300;
  int batch_size = 8;
  double peak_lr = 2e-3;
  double min_lr = 1e-5;
  int warmup_steps = -1;  // -1: 10 % of steps
  int decoder_width = 64;
  uint64_t seed = 7;

  absl::Status Validate() const;  // InvalidArgument naming the field
};

struct AutoencoderTrainResult {
  NamedTensors encoder_weights;  // the native conv encoder's names, ready for a bundle
  std::vector<double> losses;    // per step
};

// `images` [N, in, S, S] are preprocessed normal images matching `config`; `init` the encoder's
// starting weights (InitConvEncoderWeights). Deterministic for a seed and thread count.
absl::StatusOr<AutoencoderTrainResult> TrainConvAutoencoder(
    const ConvEncoderConfig& config, const NamedTensors& init, const Tensor& images,
    const AutoencoderTrainOptions& options,
    const std::function<void(const TrainProgress&)>& progress = {});

}  // namespace invad::core
