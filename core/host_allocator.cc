#include "core/host_allocator.h"

#include <new>

namespace invad::core {
namespace {

class CpuAllocator final : public HostAllocator {
 public:
  std::shared_ptr<void> Allocate(size_t bytes) override {
    constexpr std::align_val_t kAlign{64};
    void* p = ::operator new(bytes == 0 ? 1 : bytes, kAlign, std::nothrow);
    if (p == nullptr) return nullptr;
    return std::shared_ptr<void>(p, [](void* q) { ::operator delete(q, kAlign); });
  }
  std::string_view name() const override { return "cpu"; }
};

}  // namespace

HostAllocator& CpuHostAllocator() {
  static auto* a = new CpuAllocator;
  return *a;
}

}  // namespace invad::core
