// Internal to core/runtime and core/train: the native DiT's parameters and forward pass, shared by
// inference (NativeDit, core/runtime/native_models.cc) and training (core/train). Includes
// LibTorch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

#include "core/runtime/native.h"

namespace invad::core::internal {

// A linear layer; its low-precision copy (if any) is made once by Prepare.
struct DitLinear {
  torch::Tensor w, b, w_lp, b_lp;
  void Prepare(std::optional<torch::ScalarType> lp);
  torch::Tensor operator()(const torch::Tensor& x) const;
};

struct DitBlock {
  DitLinear qkv, proj, fc1, fc2, ada;
};

struct DitParameter {
  std::string name;  // official state-dict name without "net."
  torch::Tensor* tensor;
  Shape shape;
};

struct DitModel {
  DitConfig cfg;
  torch::Tensor patch_w, patch_b, patch_w_lp, patch_b_lp, pos_embed, freqs;
  DitLinear t_mlp0, t_mlp2, final_ada, final_linear;
  std::vector<DitBlock> blocks;
  std::optional<torch::ScalarType> lp;  // bf16/fp16 matrix products, or fp32

  // Every parameter with its name and shape, in a fixed order (binding, optimiser, export).
  std::vector<DitParameter> Parameters();
  // Makes the low-precision copies and the timestep frequencies; call after the weights change.
  void Prepare();
  // ε̂ for x [B, C, H, W] and t [B] (int64). Differentiable when the parameters require grad.
  torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& t) const;
};

// Binds named weights (every name present with its exact shape, nothing else) on `device`.
absl::StatusOr<DitModel> BindDit(const DitConfig& cfg, const NamedTensors& weights,
                                 const torch::Device& device, Precision precision);

}  // namespace invad::core::internal
