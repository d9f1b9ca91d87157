// File: core/host_allocator.h
//
// Where batch buffers live on the host. The scheduler assembles each model call's inputs in
// buffers from an injected HostAllocator: ordinary aligned memory on CPU, page-locked (pinned)
// memory when the model runs on CUDA, so host-to-device copies can run at full speed and
// asynchronously. The runtime picks the right one (core/runtime/runtime.h HostAllocatorFor).
// Torch-free.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace invad::core {

class HostAllocator {
 public:
  virtual ~HostAllocator() = default;
  // `bytes` of host memory aligned to at least 64 bytes, freed by the returned pointer's deleter
  // (which may outlive the allocator object). Null when out of memory. Thread-safe.
  virtual std::shared_ptr<void> Allocate(size_t bytes) = 0;
  // For logs and tests: "cpu", "cuda-pinned".
  virtual std::string_view name() const = 0;
};

// Ordinary 64-byte-aligned heap memory. A process-wide instance; never destroyed.
HostAllocator& CpuHostAllocator();

}  // namespace invad::core
