#include "core/tensor.h"

#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/fake_allocator.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::RecordingAllocator;
using ::invad::testing::StatusIs;

TEST(TensorAllocateTest, StorageComesFromTheAllocatorAndResizesWithinCapacity) {
  RecordingAllocator alloc;
  absl::StatusOr<Tensor> t = Tensor::Allocate(alloc, {2, 3}, 4 * 3);
  ASSERT_OK(t.status());
  EXPECT_EQ(t->shape(), (Shape{2, 3}));
  EXPECT_EQ(t->numel(), 6);
  EXPECT_EQ(t->allocator(), &alloc);
  EXPECT_EQ(alloc.allocations(), 1);
  EXPECT_TRUE(alloc.Contains(t->data(), 12 * sizeof(float)));

  const float* before = t->data();
  t->Resize({4, 3});  // within capacity: same memory, no new allocation
  EXPECT_EQ(t->data(), before);
  EXPECT_EQ(t->numel(), 12);
  EXPECT_EQ(alloc.allocations(), 1);

  t->Resize({8, 3});  // beyond: a new block from the same allocator
  EXPECT_EQ(alloc.allocations(), 2);
  EXPECT_TRUE(alloc.Contains(t->data(), 24 * sizeof(float)));
}

TEST(TensorAllocateTest, CopiesAreDeepAndOwnedMovesKeepTheStorage) {
  RecordingAllocator alloc;
  absl::StatusOr<Tensor> t = Tensor::Allocate(alloc, {2}, 2);
  ASSERT_OK(t.status());
  t->data()[0] = 1;
  t->data()[1] = 2;

  Tensor copy = *t;
  EXPECT_EQ(copy.allocator(), nullptr);
  EXPECT_NE(copy.data(), t->data());
  copy.data()[0] = 7;
  EXPECT_EQ(t->data()[0], 1);

  const float* storage = t->data();
  Tensor moved = *std::move(t);
  EXPECT_EQ(moved.data(), storage);
  EXPECT_EQ(moved.allocator(), &alloc);
  EXPECT_EQ(std::vector<float>(moved.span().begin(), moved.span().end()),
            (std::vector<float>{1, 2}));
  EXPECT_EQ(alloc.allocations(), 1);
}

TEST(TensorAllocateTest, OutOfMemoryIsResourceExhausted) {
  RecordingAllocator alloc;
  alloc.set_fail(true);
  EXPECT_THAT(Tensor::Allocate(alloc, {1024}, 1024),
              StatusIs(absl::StatusCode::kResourceExhausted, "recording host allocator"));
}

TEST(TensorAllocateTest, CpuAllocatorAlignsTo64Bytes) {
  absl::StatusOr<Tensor> t = Tensor::Allocate(CpuHostAllocator(), {3, 5}, 15);
  ASSERT_OK(t.status());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data()) % 64, 0u);
  EXPECT_EQ(CpuHostAllocator().name(), "cpu");
}

}  // namespace
}  // namespace invad::core
