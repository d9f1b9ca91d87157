// File: core/batching/options.h
//
// Knobs of one model scheduler (core/batching/scheduler.h), in the spirit of TF Serving's
// BasicBatchScheduler::Options and Triton's dynamic_batching block. Every field: unit, default,
// and why.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace invad::core {

enum class BatchingMode {
  // Encoder + all K denoiser calls of one batch before the next batch starts.
  kWholeRequest,
  // Continuous batching across inversion steps: each denoiser call mixes tasks at different steps
  // (the core's per-sample step); new tasks join between steps after their encoder pass.
  kStepLevel,
};

struct SchedulerOptions {
  // Largest number of images in one model call (encoder or denoiser). Default 16: on 2 CPU cores
  // the default model's denoiser gains little beyond it, and it bounds the latency of a full batch.
  // Must be >= 1.
  int max_batch_size = 16;
  // How long the oldest queued task may wait for company before a partial batch is dispatched
  // (microseconds). Default 2000 µs: small next to a K = 3 inversion (tens of ms), enough to
  // collect concurrent arrivals. 0: dispatch whatever is queued at once. Must be >= 0.
  int64_t max_queue_delay_us = 2000;
  // Batch sizes the model runs best at (e.g. {4, 8, 16} for CUDA graphs or tuned kernels). When
  // the queue can form one, the largest such size is dispatched without waiting for the delay.
  // Empty: none. Each must be in [1, max_batch_size].
  std::vector<int> preferred_batch_sizes;
  // Accepted tasks not yet dispatched. Beyond it Submit() fails at once with RESOURCE_EXHAUSTED
  // (clients do not retry it), so overload sheds instead of growing latency and memory. Default
  // 256 = 16 full batches. Must be >= 1.
  int max_queue_size = 256;
  // Deadline given to tasks that arrive without one (a gRPC call without a deadline). Default 30 s;
  // absl::InfiniteDuration(): none. Must be > 0.
  absl::Duration default_timeout = absl::Seconds(30);
  // Model instances: execution threads, each with its own runner (model copy). Default 1.
  // Intra-op threads are a server-wide setting: keep instances × intra-op threads <= cores, or
  // instances fight over cores. Must be in [1, 64].
  int instances = 1;
  BatchingMode mode = BatchingMode::kWholeRequest;
  // Reject at Submit() with DEADLINE_EXCEEDED when the predicted wait (queued batches ahead of the
  // task × the recent batch time) already exceeds the task's deadline. Default off.
  bool admission_control = false;

  absl::Status Validate() const;  // InvalidArgument naming the bad field
};

}  // namespace invad::core
