// File: core/tensor.h
//
// `Tensor` is a dense, contiguous, row-major float32 host tensor: the currency between
// preprocessing, the core's arithmetic and the model runtime. It is deliberately tiny: the core
// must not depend on LibTorch (docs/adr/0001-layering.md), and the runtime converts at its boundary
// with zero copies on CPU (torch::from_blob).
//
// `RawTensor` carries model weights of any supported dtype as bytes, from a weights file to the
// runtime, so the core never parses a file format.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "core/host_allocator.h"

namespace invad::core {

using Shape = std::vector<int64_t>;

// Number of elements of `shape`; 1 for a scalar shape {}.
int64_t NumElements(const Shape& shape);
std::string ShapeToString(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of `shape`. Every dimension must be >= 0.
  explicit Tensor(Shape shape);
  // Takes `data`, whose size must equal NumElements(shape) (CHECKed: a programmer error).
  Tensor(Shape shape, std::vector<float> data);
  // Uninitialised storage from `allocator` with room for `capacity` (>= NumElements(shape))
  // elements: Resize() within it never reallocates. `allocator` must outlive the tensor; growing
  // beyond the capacity reallocates from it. ResourceExhausted when it returns null.
  static absl::StatusOr<Tensor> Allocate(HostAllocator& allocator, Shape shape, int64_t capacity);

  // Copies are deep and own ordinary heap storage; moves keep the storage (allocator-provided or
  // not).
  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;
  ~Tensor() = default;

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return numel_; }
  bool empty() const { return numel_ == 0; }

  float* data() { return external_ ? external_.get() : owned_.data(); }
  const float* data() const { return external_ ? external_.get() : owned_.data(); }
  absl::Span<float> span() { return absl::MakeSpan(data(), numel_); }
  absl::Span<const float> span() const { return absl::MakeConstSpan(data(), numel_); }

  // Batch views: the first dimension is the batch.
  int64_t batch() const { return shape_.empty() ? 0 : shape_[0]; }
  int64_t sample_numel() const;
  float* sample(int64_t i) { return data() + i * sample_numel(); }
  const float* sample(int64_t i) const { return data() + i * sample_numel(); }

  // Changes the shape, keeping capacity; the contents are unspecified when the size grows.
  void Resize(Shape shape);

  // A copy of samples [start, start + count) of the batch (the first dimension).
  Tensor Slice(int64_t start, int64_t count) const;

  // The allocator whose memory holds the data; null for ordinary (std::vector) storage.
  HostAllocator* allocator() const { return allocator_; }

 private:
  Shape shape_;
  int64_t numel_ = 0;
  std::vector<float> owned_;         // ordinary storage, unless external_ is set
  std::shared_ptr<float> external_;  // allocator-provided storage
  int64_t external_capacity_ = 0;    // elements
  HostAllocator* allocator_ = nullptr;
};

enum class DType { kFloat32, kBFloat16, kFloat16 };
const char* DTypeName(DType dtype);
int DTypeSize(DType dtype);

struct RawTensor {
  DType dtype = DType::kFloat32;
  Shape shape;
  std::string bytes;  // NumElements(shape) * DTypeSize(dtype) bytes, little-endian.
};
using NamedTensors = std::map<std::string, RawTensor>;

// Float32 tensor <-> RawTensor (float32).
RawTensor ToRaw(const Tensor& t);

// Checks that `t` has `rank` dimensions, and the given trailing dimensions (-1 = any).
absl::Status CheckShape(const Tensor& t, const Shape& expected, const char* what);

}  // namespace invad::core
