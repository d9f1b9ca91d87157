// File: tests/testing/fake_allocator.h
//
// A HostAllocator for tests: counts allocations, answers whether a pointer lies in memory it
// handed out, and can be told to fail (null = out of memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/mutex.h"
#include "core/host_allocator.h"

namespace invad::testing {

class RecordingAllocator final : public core::HostAllocator {
 public:
  std::shared_ptr<void> Allocate(size_t bytes) override {
    core::MutexLock l(&mu_);
    if (fail_) return nullptr;
    std::shared_ptr<void> p = core::CpuHostAllocator().Allocate(bytes);
    blocks_.emplace_back(reinterpret_cast<uintptr_t>(p.get()), bytes);
    return p;
  }
  std::string_view name() const override { return "recording"; }

  int allocations() const {
    core::MutexLock l(&mu_);
    return static_cast<int>(blocks_.size());
  }
  // Whether [p, p + bytes) lies inside one block this allocator handed out.
  bool Contains(const void* p, size_t bytes) const {
    core::MutexLock l(&mu_);
    const auto a = reinterpret_cast<uintptr_t>(p);
    for (const auto& [start, size] : blocks_) {
      if (a >= start && a + bytes <= start + size) return true;
    }
    return false;
  }
  void set_fail(bool fail) {
    core::MutexLock l(&mu_);
    fail_ = fail;
  }

 private:
  mutable core::Mutex mu_;
  std::vector<std::pair<uintptr_t, size_t>> blocks_ ABSL_GUARDED_BY(mu_);
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace invad::testing
