#include "core/tensor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

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

Tensor::Tensor(Shape shape)
    : shape_(std::move(shape)), numel_(NumElements(shape_)), owned_(numel_, 0.0f) {}

Tensor::Tensor(Shape shape, std::vector<float> data)
    : shape_(std::move(shape)), numel_(NumElements(shape_)), owned_(std::move(data)) {
  if (static_cast<int64_t>(owned_.size()) != numel_) {
    std::fprintf(stderr, "Tensor: %zu values for shape %s\n", owned_.size(),
                 ShapeToString(shape_).c_str());
    std::abort();
  }
}

absl::StatusOr<Tensor> Tensor::Allocate(HostAllocator& allocator, Shape shape, int64_t capacity) {
  const int64_t n = NumElements(shape);
  capacity = std::max(capacity, n);
  std::shared_ptr<void> mem = allocator.Allocate(static_cast<size_t>(capacity) * sizeof(float));
  if (mem == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the ", std::string(allocator.name()), " host allocator could not provide ",
                     static_cast<int64_t>(capacity * sizeof(float)), " bytes"));
  }
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  t.external_ = std::static_pointer_cast<float>(std::move(mem));
  t.external_capacity_ = capacity;
  t.allocator_ = &allocator;
  return t;
}

Tensor::Tensor(const Tensor& other)
    : shape_(other.shape_),
      numel_(other.numel_),
      owned_(other.data(), other.data() + other.numel_) {}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);
  return *this;
}

Tensor::Tensor(Tensor&& other) noexcept
    : shape_(std::move(other.shape_)),
      numel_(std::exchange(other.numel_, 0)),
      owned_(std::move(other.owned_)),
      external_(std::move(other.external_)),
      external_capacity_(std::exchange(other.external_capacity_, 0)),
      allocator_(std::exchange(other.allocator_, nullptr)) {
  other.shape_.clear();
  other.owned_.clear();
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    shape_ = std::move(other.shape_);
    numel_ = std::exchange(other.numel_, 0);
    owned_ = std::move(other.owned_);
    external_ = std::move(other.external_);
    external_capacity_ = std::exchange(other.external_capacity_, 0);
    allocator_ = std::exchange(other.allocator_, nullptr);
    other.shape_.clear();
    other.owned_.clear();
  }
  return *this;
}

int64_t Tensor::sample_numel() const {
  if (shape_.empty() || shape_[0] == 0) return 0;
  return numel_ / shape_[0];
}

void Tensor::Resize(Shape shape) {
  const int64_t n = NumElements(shape);
  shape_ = std::move(shape);
  numel_ = n;
  if (!external_) {
    owned_.resize(n);
    return;
  }
  if (n <= external_capacity_) return;
  // Grow from the same allocator; out of host memory is fatal here, as it is for std::vector.
  std::shared_ptr<void> mem = allocator_->Allocate(static_cast<size_t>(n) * sizeof(float));
  if (mem == nullptr) {
    std::fprintf(stderr, "Tensor: the %s host allocator could not provide %lld bytes\n",
                 std::string(allocator_->name()).c_str(),
                 static_cast<long long>(n * sizeof(float)));
    std::abort();
  }
  external_ = std::static_pointer_cast<float>(std::move(mem));
  external_capacity_ = n;
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
