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

// Where one model instance runs: its device, its own stream, and page-locked staging for
// uploads. Written against LibTorch's device-agnostic API (c10::Stream, c10::StreamGuard,
// Tensor::to(device, non_blocking)), so the same code runs on CPU in CI:
//   - cuda:N: a stream from LibTorch's pool (one per instance, so instances overlap on one GPU);
//     uploads go through pinned memory and are non-blocking on that stream; Download waits for it.
//   - cpu: the default stream (LibTorch's no-op guard); uploads are views of host memory, and work
//     is synchronous.
// Thread-compatible: the execution thread that owns the model instance uses it.
class DeviceContext {
 public:
  explicit DeviceContext(torch::Device device);

  const torch::Device& device() const { return device_; }
  const c10::Stream& stream() const { return stream_; }
  bool is_cuda() const { return device_.is_cuda(); }

  // `host` as a float32 tensor on the device. On cuda:N the copy is queued on stream() (staged
  // in pinned memory unless `host` already lives there, e.g. a batch buffer from
  // HostAllocatorFor); `host` must stay unchanged until the next Download or Synchronize. On
  // cpu, a view of `host` (no copy): do not write into it.
  torch::Tensor Upload(const Tensor& host);
  // Copies a device tensor into `out` (resized) after the stream's work: the one device-to-host
  // copy of a call.
  void Download(const torch::Tensor& src, Tensor* out);
  // Waits for the stream's queued work (no-op on cpu, whose work is synchronous).
  void Synchronize() const;

 private:
  torch::Device device_;
  c10::Stream stream_;
  torch::Tensor staging_;  // pinned, cuda only; grows
};

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
