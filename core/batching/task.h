// File: core/batching/task.h
//
// One image to score, as the scheduler sees it, and what it gets back.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "core/scoring/scoring.h"
#include "core/tensor.h"

namespace invad::core {

struct TaskResult {
  LatentScore score;             // of z_T
  Tensor norm_map;               // [h, w]: per-location ‖z_T‖ at the latent resolution
  int steps = 0;                 // K it ran
  absl::Duration queue_time;     // from Submit() to its first model call
  absl::Duration compute_time;   // sum over the model calls it took part in
  std::vector<int> batch_sizes;  // of those calls, in order (encoder first)
};

// Called exactly once per accepted task, from a scheduler thread with no lock held. It must not
// block for long (it delays the task's batch-mates' callbacks, not their compute).
using TaskCallback = std::function<void(absl::StatusOr<TaskResult>)>;

struct Task {
  Tensor image;   // [C, H, W], preprocessed as the model's input spec says
  int steps = 0;  // K; must be one of the model's allowed steps
  // InfiniteFuture: the scheduler's default_timeout applies.
  absl::Time deadline = absl::InfiniteFuture();
  // Optional: set to true (e.g. by the RPC's cancellation) to drop the task before its next
  // model call; it then completes with CANCELLED.
  std::shared_ptr<std::atomic<bool>> cancelled;
  TaskCallback done;
};

// Why a task ended; observers count them.
enum class TaskOutcome {
  kOk,
  kFailed,             // its model call failed (INTERNAL ...)
  kExpired,            // deadline passed before or between its model calls
  kCancelled,          // cancelled before or between its model calls
  kShutdown,           // still queued when the drain deadline passed (UNAVAILABLE)
  kRejectedQueueFull,  // Submit(): RESOURCE_EXHAUSTED
  kRejectedAdmission,  // Submit(): predicted wait beyond the deadline (DEADLINE_EXCEEDED)
  kRejectedShutdown,   // Submit() after Shutdown(): UNAVAILABLE
};
const char* TaskOutcomeName(TaskOutcome o);

}  // namespace invad::core
