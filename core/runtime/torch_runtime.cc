// LibTorch translation unit 1 of the runtime: devices, precision, threads, tensor conversion and
// the TorchScript encoder and denoiser.
#include <cstring>
#include <thread>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <malloc.h>
#include <torch/script.h>

#include "absl/strings/str_cat.h"

#include "core/runtime/internal/torch_util.h"
#include "core/runtime/runtime.h"

namespace invad::core {
namespace internal {

absl::StatusOr<torch::Device> ParseDevice(const std::string& device) {
  try {
    return torch::Device(device);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad device '", device, "': expected cpu or cuda:N"));
  }
}

torch::Tensor View(const Tensor& t) {
  return torch::from_blob(const_cast<float*>(t.data()), t.shape(), torch::kFloat32);
}

void CopyOut(const torch::Tensor& src, Tensor* out) {
  torch::Tensor c = src.to(torch::kCPU, torch::kFloat32).contiguous();
  out->Resize(Shape(c.sizes().begin(), c.sizes().end()));
  if (c.numel() > 0) std::memcpy(out->data(), c.data_ptr<float>(), c.numel() * sizeof(float));
}

absl::StatusOr<torch::Tensor> ToTorch(const RawTensor& raw, const torch::Device& device) {
  const int64_t n = NumElements(raw.shape);
  if (static_cast<int64_t>(raw.bytes.size()) != n * DTypeSize(raw.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor of shape ", ShapeToString(raw.shape),
                                                   " and dtype ", DTypeName(raw.dtype), " has ",
                                                   raw.bytes.size(), " bytes"));
  }
  const torch::ScalarType st = raw.dtype == DType::kFloat32    ? torch::kFloat32
                               : raw.dtype == DType::kBFloat16 ? torch::kBFloat16
                                                               : torch::kFloat16;
  torch::Tensor t = torch::from_blob(const_cast<char*>(raw.bytes.data()), raw.shape, st);
  return t.to(device, torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
}

namespace {

c10::Stream InstanceStream(const torch::Device& device) {
  if (!device.is_cuda()) return c10::Stream(c10::Stream::DEFAULT, device);
  // A pooled stream (round-robin over LibTorch's pool), through the device-agnostic guard.
  return c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device);
}

}  // namespace

DeviceContext::DeviceContext(torch::Device device)
    : device_(device), stream_(InstanceStream(device)) {}

torch::Tensor DeviceContext::Upload(const Tensor& host) {
  torch::Tensor view = View(host);
  if (!device_.is_cuda()) return view;
  c10::StreamGuard guard(stream_);
  if (!at::globalContext().isPinnedPtr(const_cast<float*>(host.data()))) {
    Synchronize();  // the previous upload from staging_ has finished reading it
    if (!staging_.defined() || staging_.numel() < view.numel()) {
      staging_ = torch::empty({view.numel()},
                              torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
    }
    torch::Tensor staged = staging_.narrow(0, 0, view.numel()).view(view.sizes());
    staged.copy_(view);
    view = staged;
  }
  return view.to(device_, torch::kFloat32, /*non_blocking=*/true, /*copy=*/true);
}

void DeviceContext::Download(const torch::Tensor& src, Tensor* out) {
  c10::StreamGuard guard(stream_);
  // A blocking copy on this context's stream: it waits for the queued work first.
  CopyOut(src, out);
}

void DeviceContext::Synchronize() const {
  if (device_.is_cuda()) stream_.synchronize();
}

RawTensor FromTorch(const torch::Tensor& t) {
  Tensor host;
  CopyOut(t, &host);
  return ToRaw(host);
}

}  // namespace internal

using internal::Guarded;

absl::StatusOr<Precision> ParsePrecision(std::string_view name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") return Precision::kFp16;
  return absl::InvalidArgumentError(
      absl::StrCat("precision must be fp32, bf16 or fp16, got '", std::string(name), "'"));
}

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "?";
}

bool CudaAvailable() { return torch::cuda::is_available(); }

absl::Status CheckRuntimeOptions(const RuntimeOptions& options) {
  auto device = internal::ParseDevice(options.device);
  if (!device.ok()) return device.status();
  if (device->is_cuda()) {
    if (!CudaAvailable()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device ", options.device,
                       " requested, but this LibTorch has no CUDA (Debian's is CPU-only; build "
                       "against a CUDA LibTorch with -DTorch_DIR=...)"));
    }
    const int index = device->has_index() ? device->index() : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::FailedPreconditionError(
          absl::StrCat("device ", options.device, " requested, but only ",
                       torch::cuda::device_count(), " CUDA devices"));
    }
  } else if (!device->is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat("device must be cpu or cuda:N, got ", options.device));
  }
  if (options.precision == Precision::kFp16 && !device->is_cuda()) {
    return absl::InvalidArgumentError(
        "precision fp16 needs a CUDA device: Debian's LibTorch has no fp16 CPU kernels");
  }
  return absl::OkStatus();
}

namespace {

// Page-locked host memory through LibTorch (torch::empty with pinned_memory), so this file needs
// no CUDA headers; the tensor lives as long as the returned pointer.
class PinnedHostAllocator final : public HostAllocator {
 public:
  std::shared_ptr<void> Allocate(size_t bytes) override {
    try {
      torch::Tensor t =
          torch::empty({static_cast<int64_t>(bytes == 0 ? 1 : bytes)},
                       torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
      void* p = t.data_ptr();
      return std::shared_ptr<void>(p, [t](void*) mutable { t = torch::Tensor(); });
    } catch (const std::exception&) {
      return nullptr;
    }
  }
  std::string_view name() const override { return "cuda-pinned"; }
};

}  // namespace

absl::StatusOr<HostMemory> ParseHostMemory(std::string_view name) {
  if (name == "auto") return HostMemory::kAuto;
  if (name == "pageable") return HostMemory::kPageable;
  if (name == "pinned") return HostMemory::kPinned;
  return absl::InvalidArgumentError(
      absl::StrCat("host memory must be auto, pageable or pinned, got '", std::string(name), "'"));
}

absl::StatusOr<HostAllocator*> HostAllocatorFor(const RuntimeOptions& options, HostMemory memory) {
  if (absl::Status s = CheckRuntimeOptions(options); !s.ok()) return s;
  const bool cuda = internal::ParseDevice(options.device)->is_cuda();
  if (memory == HostMemory::kPinned && !cuda) {
    return absl::InvalidArgumentError(
        absl::StrCat("pinned host memory needs a CUDA device, but the model runs on ",
                     options.device, " (use pageable or auto)"));
  }
  if (memory == HostMemory::kPageable || !cuda) return &CpuHostAllocator();
  static auto* pinned = new PinnedHostAllocator;
  return pinned;
}

absl::Status ConfigureTorchThreads(int intra_op_threads, int inter_op_threads) {
  return Guarded("configuring LibTorch threads", [&] {
    if (intra_op_threads > 0) at::set_num_threads(intra_op_threads);
    // The inter-op pool can be sized only before its first use.
    if (inter_op_threads > 0 && at::get_num_interop_threads() != inter_op_threads) {
      at::set_num_interop_threads(inter_op_threads);
    }
  });
}

int TorchIntraOpThreads() { return at::get_num_threads(); }

absl::Status ConfigureProcess(int intra_op_threads) {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // One arena: threads other than main (the batcher's model threads) would otherwise get arenas
  // made of 64 MiB mmap'd heaps, where large tensors do not fit and freed memory is returned to
  // the kernel, so every batch faults its pages in again (platform.md P2). Measured: batch-16
  // model calls on a scheduler thread 45 → 18 ms per image (docs/benchmarks.md).
  mallopt(M_ARENA_MAX, 1);
  const int n = intra_op_threads > 0
                    ? intra_op_threads
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return ConfigureTorchThreads(n);
}

namespace {

// Autocast for TorchScript modules: GEMMs in the low precision, the rest fp32 (method.md §4.4).
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, Precision p) : active_(p != Precision::kFp32) {
    if (!active_) return;
    cuda_ = device.is_cuda();
    const auto dtype = p == Precision::kBf16 ? at::kBFloat16 : at::kHalf;
    if (cuda_) {
      prev_enabled_ = at::autocast::is_enabled();
      at::autocast::set_enabled(true);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      prev_enabled_ = at::autocast::is_cpu_enabled();
      at::autocast::set_cpu_enabled(true);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
  }
  ~AutocastScope() {
    if (!active_) return;
    if (cuda_) {
      at::autocast::set_enabled(prev_enabled_);
    } else {
      at::autocast::set_cpu_enabled(prev_enabled_);
    }
    at::autocast::clear_cache();
  }

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool prev_enabled_ = false;
};

absl::StatusOr<torch::jit::Module> LoadModule(const std::string& path,
                                              const torch::Device& device) {
  try {
    c10::InferenceMode guard;
    torch::jit::Module m = torch::jit::load(path, device);
    m.eval();
    return m;
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("loading TorchScript ", path, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("loading TorchScript ", path, ": ", e.what()));
  }
}

class TorchScriptEncoder final : public Encoder {
 public:
  TorchScriptEncoder(torch::jit::Module m, torch::Device device, Precision p, EncoderIo io,
                     std::string path)
      : module_(std::move(m)), device_(device), precision_(p), io_(io), path_(std::move(path)) {}

  absl::Status Encode(const Tensor& images, Tensor* z0) override {
    if (absl::Status s = CheckShape(
            images, {-1, io_.input_channels, io_.input_height, io_.input_width}, "encoder input");
        !s.ok()) {
      return s;
    }
    const LatentShape& l = io_.latent;
    return Guarded("TorchScript encoder " + path_, [&] {
      c10::InferenceMode guard;
      AutocastScope autocast(device_, precision_);
      torch::Tensor x = internal::View(images).to(device_);
      torch::Tensor y = module_.forward({x}).toTensor();
      TORCH_CHECK(y.dim() == 4 && y.size(0) == images.batch() && y.size(1) == l.channels &&
                      y.size(2) == l.height && y.size(3) == l.width,
                  "encoder returned ", y.sizes(), "; the bundle declares latent [", l.channels, ",",
                  l.height, ",", l.width, "]");
      internal::CopyOut(y, z0);
    });
  }
  LatentShape latent_shape() const override { return io_.latent; }
  std::string Describe() const override { return absl::StrCat("torchscript:", path_); }

 private:
  torch::jit::Module module_;
  torch::Device device_;
  Precision precision_;
  EncoderIo io_;
  std::string path_;
};

class TorchScriptDenoiser final : public Denoiser {
 public:
  TorchScriptDenoiser(torch::jit::Module m, torch::Device device, Precision p, LatentShape latent,
                      std::string path)
      : module_(std::move(m)),
        device_(device),
        precision_(p),
        latent_(latent),
        path_(std::move(path)) {}

  absl::Status Predict(const Tensor& z, absl::Span<const int> timesteps, Tensor* eps) override {
    if (absl::Status s = ValidateDenoiserInput(z, timesteps, latent_); !s.ok()) return s;
    return Guarded("TorchScript denoiser " + path_, [&] {
      c10::InferenceMode guard;
      AutocastScope autocast(device_, precision_);
      torch::Tensor x = internal::View(z).to(device_);
      std::vector<int64_t> tv(timesteps.begin(), timesteps.end());
      torch::Tensor t = torch::tensor(tv, torch::kInt64).to(device_);
      torch::Tensor y = module_.forward({x, t}).toTensor();
      TORCH_CHECK(y.sizes() == x.sizes(), "denoiser returned ", y.sizes(), " for input ",
                  x.sizes());
      internal::CopyOut(y, eps);
    });
  }
  LatentShape latent_shape() const override { return latent_; }
  std::string Describe() const override { return absl::StrCat("torchscript:", path_); }

 private:
  torch::jit::Module module_;
  torch::Device device_;
  Precision precision_;
  LatentShape latent_;
  std::string path_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Encoder>> LoadTorchScriptEncoder(const std::string& path,
                                                                const EncoderIo& io,
                                                                const RuntimeOptions& options) {
  if (absl::Status s = CheckRuntimeOptions(options); !s.ok()) return s;
  auto device = internal::ParseDevice(options.device);
  auto m = LoadModule(path, *device);
  if (!m.ok()) return m.status();
  return std::make_unique<TorchScriptEncoder>(std::move(*m), *device, options.precision, io, path);
}

absl::StatusOr<std::unique_ptr<Denoiser>> LoadTorchScriptDenoiser(const std::string& path,
                                                                  const LatentShape& latent,
                                                                  const RuntimeOptions& options) {
  if (absl::Status s = CheckRuntimeOptions(options); !s.ok()) return s;
  auto device = internal::ParseDevice(options.device);
  auto m = LoadModule(path, *device);
  if (!m.ok()) return m.status();
  return std::make_unique<TorchScriptDenoiser>(std::move(*m), *device, options.precision, latent,
                                               path);
}

}  // namespace invad::core
