// Internal to core/runtime (and core/train): helpers shared by the translation units that include
// LibTorch. Never include this from a header outside core/runtime or core/train.
#pragma once

#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"

#include "core/runtime/runtime.h"
#include "core/tensor.h"

namespace invad::core::internal {

absl::StatusOr<torch::Device> ParseDevice(const std::string& device);

// A float32 CPU view of `t` (no copy; `t` must outlive the view).
torch::Tensor View(const Tensor& t);

// Copies a float tensor (any device, any float dtype) into `out`, resizing it.
void CopyOut(const torch::Tensor& src, Tensor* out);

// Named tensors → torch tensors on `device` in float32 (BF16/F16 are widened).
absl::StatusOr<torch::Tensor> ToTorch(const RawTensor& raw, const torch::Device& device);
RawTensor FromTorch(const torch::Tensor& t);  // float32, contiguous copy

// Runs `fn` and turns LibTorch exceptions into a status mentioning `what`.
template <typename Fn>
absl::Status Guarded(const std::string& what, Fn&& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(what + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return absl::InternalError(what + ": " + e.what());
  }
}

}  // namespace invad::core::internal
