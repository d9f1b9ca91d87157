// File: core/batching/scheduler.h
//
// ModelScheduler: the dynamic batcher of one (model version, precision). Many concurrent Submit()
// calls become few, full model calls, with bounded memory and latency.
//
// PARAMETERS AND BEHAVIOR (core/batching/options.h has every knob):
//   - Submit() validates the task (image shape, K allowed, deadline not already past) and queues
//     it, or rejects at once: a full queue is RESOURCE_EXHAUSTED, a scheduler shutting down is
//     UNAVAILABLE, optional admission control answers DEADLINE_EXCEEDED when the predicted wait
//     already exceeds the deadline. A rejected task's callback is never called.
//   - `instances` execution threads each own a BatchRunner (a model copy) and take batches from
//     the one queue by the pure policy of core/batching/policy.h.
//   - Expired and cancelled tasks are dropped before their next model call (DEADLINE_EXCEEDED,
//     CANCELLED) — queued ones before any compute, running ones between inversion steps — and
//     counted by reason.
//   - kWholeRequest: encoder + the K denoiser calls of one batch (tasks may have different K;
//     each stops after its own K). kStepLevel: each denoiser call mixes tasks at different steps;
//     queued tasks join between steps after one encoder pass, up to max_batch_size in flight.
//   - A failing model call fails exactly the tasks in that call; others are unaffected.
//   - Callbacks run on the instance threads with no lock held.
//
// EXAMPLE USE-CASE FLOW:
//   auto s = ModelScheduler::Create(options, std::move(runners), &observer);
//   Task t; t.image = ...; t.steps = 3; t.deadline = rpc_deadline; t.done = [](auto r) {...};
//   if (absl::Status st = (*s)->Submit(std::move(t)); !st.ok()) answer(st);
//   ...
//   (*s)->Shutdown(absl::Seconds(10));  // stop accepting, drain, join
//
// Thread-safe. Time comes only from the injected Clock (a FakeClock in tests).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "core/base/mutex.h"
#include "core/batching/clock.h"
#include "core/batching/options.h"
#include "core/batching/runner.h"
#include "core/batching/task.h"
#include "core/host_allocator.h"

namespace invad::core {

enum class CallKind { kEncode, kDenoise };

// Hooks the server implements (Prometheus lives there, not in core). Called from scheduler and
// submitting threads without the scheduler's lock; implementations must be thread-safe and fast.
class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  virtual void OnQueueDepth(int /*depth*/) {}
  virtual void OnModelCall(CallKind /*kind*/, int /*batch_size*/, absl::Duration /*compute*/,
                           bool /*ok*/) {}
  // Every submitted task ends in exactly one outcome (rejections included; queue and compute time
  // are zero for those).
  virtual void OnTaskDone(TaskOutcome /*outcome*/, absl::Duration /*queue_time*/,
                          absl::Duration /*compute_time*/) {}
};

struct SchedulerStats {
  int64_t accepted = 0;
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t expired = 0;
  int64_t cancelled = 0;
  int64_t shutdown = 0;
  int64_t rejected_queue_full = 0;
  int64_t rejected_admission = 0;
  int64_t rejected_shutdown = 0;
  int64_t rejected_invalid = 0;
  int64_t encoder_calls = 0;
  int64_t denoiser_calls = 0;
};

class ModelScheduler {
 public:
  // One runner per instance (options.instances of them). `observer`, `clock` and `allocator` must
  // outlive the scheduler; null observer = none. Batch inputs are assembled in buffers from
  // `allocator` (null = CpuHostAllocator(); the runtime's HostAllocatorFor() gives pinned memory
  // for CUDA models), allocated here for max_batch_size per instance: ResourceExhausted if it
  // cannot.
  static absl::StatusOr<std::unique_ptr<ModelScheduler>> Create(
      const SchedulerOptions& options, std::vector<std::unique_ptr<BatchRunner>> runners,
      SchedulerObserver* observer = nullptr, Clock* clock = &RealClock(),
      HostAllocator* allocator = nullptr);
  // Shutdown(zero drain) if not shut down yet.
  ~ModelScheduler();
  ModelScheduler(const ModelScheduler&) = delete;
  ModelScheduler& operator=(const ModelScheduler&) = delete;

  // OK: accepted, `task.done` will be called exactly once. Otherwise rejected and `task.done` is
  // never called: INVALID_ARGUMENT (image shape, K not allowed), DEADLINE_EXCEEDED (deadline past,
  // or admission control), RESOURCE_EXHAUSTED (queue full), UNAVAILABLE (shutting down).
  absl::Status Submit(Task task) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops accepting; instances keep serving the queue until `drain_timeout` has passed by the
  // clock, then what is still queued fails with UNAVAILABLE; tasks already in a model call finish.
  // Joins the threads. Idempotent; blocks until done.
  void Shutdown(absl::Duration drain_timeout) ABSL_LOCKS_EXCLUDED(mu_);

  int queue_depth() const ABSL_LOCKS_EXCLUDED(mu_);
  SchedulerStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  const SchedulerOptions& options() const { return options_; }

  // Implementation details follow. API users need not read.
 private:
  struct Queued {
    Task task;
    absl::Time enqueued;
    const std::vector<DdimCoefficients>* plan = nullptr;
  };
  struct Slot;  // a task in a model call (scheduler.cc)
  struct Instance;

  ModelScheduler(const SchedulerOptions& options, SchedulerObserver* observer, Clock* clock);
  void Loop(Instance* instance) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves expired and cancelled tasks out of the queue.
  void PurgeLocked(absl::Time now, std::vector<Queued>* expired, std::vector<Queued>* cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunWholeRequest(Instance* instance, std::vector<Queued> batch) ABSL_LOCKS_EXCLUDED(mu_);
  void AdmitAndStep(Instance* instance, std::vector<Queued> admitted) ABSL_LOCKS_EXCLUDED(mu_);
  // Encodes `batch` into new slots appended to `out`; on a failed call its tasks fail instead.
  void Encode(Instance* instance, std::vector<Queued>& batch, std::vector<Slot>* out);
  // One denoiser call over `slots` (each at its own next step); failed slots are completed and
  // removed, finished ones scored, completed and removed.
  void Step(Instance* instance, std::vector<Slot>* slots);
  // Whole-request mode on a fused runner: every slot (all at step 0 of one plan) in one Invert.
  void InvertFused(Instance* instance, std::vector<Slot>* slots);
  // Drops expired and cancelled slots between steps.
  void DropStale(std::vector<Slot>* slots);
  void Finish(Slot& slot);
  void Complete(Task& task, TaskOutcome outcome, absl::StatusOr<TaskResult> result,
                absl::Duration queue_time, absl::Duration compute_time) ABSL_LOCKS_EXCLUDED(mu_);
  void Count(TaskOutcome outcome) ABSL_LOCKS_EXCLUDED(mu_);
  static void UpdateEma(double* ema, double seconds);

  const SchedulerOptions options_;
  SchedulerObserver* const observer_;
  Clock* const clock_;
  Shape input_shape_;
  LatentShape latent_;
  const BatchRunner* plans_ = nullptr;  // runner 0, for Plan() lookups at Submit (thread-safe)

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Admission control's estimates: recent encoder and denoiser call times (EMA, weight 0.2),
  // updated before the call's callbacks run. Predicted wait of a task with K steps:
  // (1 + ⌊queued / (max_batch_size · instances)⌋) · (encode + K · step).
  double encode_seconds_ema_ ABSL_GUARDED_BY(mu_) = 0.0;
  double step_seconds_ema_ ABSL_GUARDED_BY(mu_) = 0.0;
  SchedulerStats stats_ ABSL_GUARDED_BY(mu_);
  Mutex join_mu_;  // serialises Shutdown's joins
  bool joined_ ABSL_GUARDED_BY(join_mu_) = false;

  std::vector<std::unique_ptr<Instance>> instances_;  // threads last: start after the fields above
};

}  // namespace invad::core
