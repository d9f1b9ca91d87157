// Internal to core/runtime and core/train: the native conv encoder's parameters and forward pass,
// shared by the inference encoder (native_models.cc) and the autoencoder trainer
// (core/train/encoder_trainer.cc), so the trained and the served forward pass are one function.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

#include "core/runtime/native.h"

namespace invad::core::internal {

struct ConvStage {
  torch::Tensor w1, b1, w2, b2;
};

// Binds "stages.<s>.conv{1,2}.{weight,bias}" for every stage up to the last output stage; rejects
// missing, mis-shaped and unexpected weights.
absl::StatusOr<std::vector<ConvStage>> BindConvEncoder(const ConvEncoderConfig& cfg,
                                                       const NamedTensors& weights,
                                                       const torch::Device& device);

// images [B, in, S, S] → z0 [B, C, l, l]. A stage output larger than the latent by an integer
// factor is average-pooled (area), otherwise bilinearly resized (align_corners = false).
torch::Tensor ConvEncoderForward(const ConvEncoderConfig& cfg, const std::vector<ConvStage>& stages,
                                 torch::Tensor x);

// Resizes a feature map [B, C, h, w] to [B, C, l, l] as ConvEncoderForward does.
torch::Tensor ResizeToLatent(const torch::Tensor& x, int64_t l);

}  // namespace invad::core::internal
