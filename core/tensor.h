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
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

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

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  bool empty() const { return data_.empty(); }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  absl::Span<float> span() { return absl::MakeSpan(data_); }
  absl::Span<const float> span() const { return absl::MakeConstSpan(data_); }

  // Batch views: the first dimension is the batch.
  int64_t batch() const { return shape_.empty() ? 0 : shape_[0]; }
  int64_t sample_numel() const;
  float* sample(int64_t i) { return data_.data() + i * sample_numel(); }
  const float* sample(int64_t i) const { return data_.data() + i * sample_numel(); }

  // Changes the shape, keeping capacity; the contents are unspecified when the size grows.
  void Resize(Shape shape);

  // A copy of samples [start, start + count) of the batch (the first dimension).
  Tensor Slice(int64_t start, int64_t count) const;

 private:
  Shape shape_;
  std::vector<float> data_;
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
