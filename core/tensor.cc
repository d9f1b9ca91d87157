#include "core/tensor.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace invad::core {

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), data_(NumElements(shape_), 0.0f) {}

Tensor::Tensor(Shape shape, std::vector<float> data)
    : shape_(std::move(shape)), data_(std::move(data)) {
  if (static_cast<int64_t>(data_.size()) != NumElements(shape_)) {
    std::fprintf(stderr, "Tensor: %zu values for shape %s\n", data_.size(),
                 ShapeToString(shape_).c_str());
    std::abort();
  }
}

int64_t Tensor::sample_numel() const {
  if (shape_.empty() || shape_[0] == 0) return 0;
  return numel() / shape_[0];
}

void Tensor::Resize(Shape shape) {
  shape_ = std::move(shape);
  data_.resize(NumElements(shape_));
}

Tensor Tensor::Slice(int64_t start, int64_t count) const {
  Shape shape = shape_;
  shape[0] = count;
  return Tensor(std::move(shape),
                std::vector<float>(sample(start), sample(start) + count * sample_numel()));
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kBFloat16:
      return "BF16";
    case DType::kFloat16:
      return "F16";
  }
  return "?";
}

int DTypeSize(DType dtype) { return dtype == DType::kFloat32 ? 4 : 2; }

RawTensor ToRaw(const Tensor& t) {
  RawTensor raw;
  raw.dtype = DType::kFloat32;
  raw.shape = t.shape();
  raw.bytes.resize(t.numel() * sizeof(float));
  if (t.numel() > 0) std::memcpy(raw.bytes.data(), t.data(), raw.bytes.size());
  return raw;
}

absl::Status CheckShape(const Tensor& t, const Shape& expected, const char* what) {
  bool ok = t.rank() == static_cast<int>(expected.size());
  for (size_t i = 0; ok && i < expected.size(); ++i) {
    if (expected[i] >= 0 && expected[i] != t.dim(static_cast<int>(i))) ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": expected shape ", ShapeToString(expected),
                                                 " (-1 = any), got ", ShapeToString(t.shape())));
}

}  // namespace invad::core
