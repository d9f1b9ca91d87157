// File: core/runtime/runtime.h
//
// The LibTorch runtime behind torch-free declarations: device and precision selection, process-wide
// thread settings, and TorchScript implementations of core::Encoder and core::Denoiser.
// Native (C++-defined) models are in core/runtime/native.h.
//
// Every LibTorch call runs under c10::InferenceMode, and LibTorch exceptions stop here: they come
// back as absl::Status (Internal for a failed forward, InvalidArgument for an unloadable file).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "core/host_allocator.h"
#include "core/model/model.h"

namespace invad::core {

enum class Precision {
  kFp32,
  // bf16 GEMMs with fp32 LayerNorm, residual stream and update arithmetic (the reference's
  // autocast, method.md §4.4). CPU and CUDA.
  kBf16,
  // CUDA only: Debian's LibTorch has no fp16 CPU kernels (InvalidArgument on CPU).
  kFp16,
};
absl::StatusOr<Precision> ParsePrecision(std::string_view name);  // "fp32" | "bf16" | "fp16"
const char* PrecisionName(Precision p);

struct RuntimeOptions {
  // "cpu" or "cuda:N" ("cuda" = "cuda:0").
  std::string device = "cpu";
  Precision precision = Precision::kFp32;
};

// InvalidArgument for a malformed device or fp16 on CPU; FailedPrecondition for cuda when this
// LibTorch has no CUDA or no such device.
absl::Status CheckRuntimeOptions(const RuntimeOptions& options);

// Whether this LibTorch build can use CUDA devices now.
bool CudaAvailable();

// Which host memory batch buffers use.
enum class HostMemory {
  kAuto,      // page-locked for cuda:N, ordinary for cpu
  kPageable,  // ordinary aligned memory, on any device
  // Page-locked (pinned): cuda:N only. On cpu it is InvalidArgument, never a silent fallback:
  // LibTorch's pin_memory() throws on a CPU-only build, and pinning buys nothing without a device.
  kPinned,
};
absl::StatusOr<HostMemory> ParseHostMemory(
    std::string_view name);  // "auto" | "pageable" | "pinned"

// Host memory for batch buffers of models on `options.device`: ordinary aligned memory
// (CpuHostAllocator()) or page-locked memory from LibTorch's CUDA host allocator (fast,
// asynchronous host-to-device copies), as `memory` asks. A process-wide instance, never
// destroyed; errors as CheckRuntimeOptions, and InvalidArgument for kPinned on cpu.
absl::StatusOr<HostAllocator*> HostAllocatorFor(const RuntimeOptions& options,
                                                HostMemory memory = HostMemory::kAuto);

// Process-wide LibTorch threads (platform.md P4: the default is 1 on our VMs). Call once at
// startup, before any model runs. Values <= 0 leave the setting unchanged.
absl::Status ConfigureTorchThreads(int intra_op_threads, int inter_op_threads = 0);
int TorchIntraOpThreads();

// Start-up settings every invad binary that runs models applies first (platform.md P2, P4):
// glibc keeps freed tensor memory in the process (mallopt: no mmap for large blocks, no trim, one
// arena for every thread), because page faults are very expensive on our VMs; LibTorch gets
// `intra_op_threads` threads
// (<= 0: one per hardware thread, not LibTorch's physical-core guess).
absl::Status ConfigureProcess(int intra_op_threads);

// What a TorchScript encoder takes and returns.
struct EncoderIo {
  int input_channels = 3;
  int input_height = 256;
  int input_width = 256;
  LatentShape latent;
};

// A TorchScript module whose forward(images: Tensor[B, ch, H, W]) returns z0 [B, C, h, w] with the
// manifest's latent shape.
absl::StatusOr<std::unique_ptr<Encoder>> LoadTorchScriptEncoder(const std::string& path,
                                                                const EncoderIo& io,
                                                                const RuntimeOptions& options);

// A TorchScript module whose forward(x: Tensor[B, C, H, W] float32, t: Tensor[B] int64) returns ε̂.
absl::StatusOr<std::unique_ptr<Denoiser>> LoadTorchScriptDenoiser(const std::string& path,
                                                                  const LatentShape& latent,
                                                                  const RuntimeOptions& options);

}  // namespace invad::core
