#include "core/batching/scheduler.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

#include "core/batching/policy.h"
#include "core/scoring/scoring.h"

namespace invad::core {

const char* TaskOutcomeName(TaskOutcome o) {
  switch (o) {
    case TaskOutcome::kOk:
      return "ok";
    case TaskOutcome::kFailed:
      return "failed";
    case TaskOutcome::kExpired:
      return "expired";
    case TaskOutcome::kCancelled:
      return "cancelled";
    case TaskOutcome::kShutdown:
      return "shutdown";
    case TaskOutcome::kRejectedQueueFull:
      return "rejected_queue_full";
    case TaskOutcome::kRejectedAdmission:
      return "rejected_admission";
    case TaskOutcome::kRejectedShutdown:
      return "rejected_shutdown";
  }
  return "unknown";
}

struct ModelScheduler::Slot {
  Task task;
  absl::Time enqueued;
  absl::Time dispatched;
  const std::vector<DdimCoefficients>* plan = nullptr;
  int next = 0;  // steps done
  absl::Duration compute;
  std::vector<int> batch_sizes;
  std::vector<float> z;  // [c, h, w]
};

struct ModelScheduler::Instance {
  std::unique_ptr<BatchRunner> runner;
  std::vector<Slot> active;  // step-level mode: tasks in flight
  // Batch inputs, from the injected HostAllocator with room for max_batch_size (allocated once):
  // images for encoder calls, zsub for denoiser calls. z: the encoder's output.
  Tensor images, z, zsub;
  std::thread thread;
};

namespace {

bool IsCancelled(const Task& t) { return t.cancelled != nullptr && t.cancelled->load(); }

}  // namespace

ModelScheduler::ModelScheduler(const SchedulerOptions& options, SchedulerObserver* observer,
                               Clock* clock)
    : options_(options), observer_(observer), clock_(clock) {}

absl::StatusOr<std::unique_ptr<ModelScheduler>> ModelScheduler::Create(
    const SchedulerOptions& options, std::vector<std::unique_ptr<BatchRunner>> runners,
    SchedulerObserver* observer, Clock* clock, HostAllocator* allocator) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (allocator == nullptr) allocator = &CpuHostAllocator();
  if (static_cast<int>(runners.size()) != options.instances) {
    return absl::InvalidArgumentError(
        absl::StrCat(runners.size(), " runners for ", options.instances, " instances"));
  }
  for (const auto& r : runners) {
    if (r == nullptr) return absl::InvalidArgumentError("null runner");
    if (r->input_shape() != runners[0]->input_shape() ||
        !(r->latent_shape() == runners[0]->latent_shape())) {
      return absl::InvalidArgumentError("runners disagree on input or latent shape");
    }
  }
  std::unique_ptr<ModelScheduler> s(new ModelScheduler(options, observer, clock));
  s->input_shape_ = runners[0]->input_shape();
  s->latent_ = runners[0]->latent_shape();
  s->plans_ = runners[0].get();
  const int64_t max_batch = options.max_batch_size;
  Shape images = s->input_shape_;
  images.insert(images.begin(), max_batch);
  const Shape latents = {max_batch, s->latent_.channels, s->latent_.height, s->latent_.width};
  for (auto& r : runners) {
    auto inst = std::make_unique<Instance>();
    inst->runner = std::move(r);
    const std::pair<Tensor*, const Shape*> buffers[] = {{&inst->images, &images},
                                                        {&inst->zsub, &latents}};
    for (auto [buffer, shape] : buffers) {
      absl::StatusOr<Tensor> t = Tensor::Allocate(*allocator, *shape, NumElements(*shape));
      if (!t.ok()) return t.status();
      *buffer = *std::move(t);
    }
    s->instances_.push_back(std::move(inst));
  }
  for (auto& inst : s->instances_) {
    Instance* p = inst.get();
    ModelScheduler* self = s.get();
    inst->thread = std::thread([self, p] { self->Loop(p); });
  }
  return s;
}

ModelScheduler::~ModelScheduler() { Shutdown(absl::ZeroDuration()); }

absl::Status ModelScheduler::Submit(Task task) {
  absl::Status invalid;
  if (task.image.shape() != input_shape_) {
    invalid = absl::InvalidArgumentError(
        absl::StrCat("image tensor has shape ", ShapeToString(task.image.shape()),
                     ", the model takes ", ShapeToString(input_shape_)));
  } else if (!task.done) {
    invalid = absl::InvalidArgumentError("task has no completion callback");
  }
  auto plan = plans_->Plan(task.steps);
  if (invalid.ok() && !plan.ok()) invalid = plan.status();
  if (!invalid.ok()) {
    MutexLock l(&mu_);
    ++stats_.rejected_invalid;
    return invalid;
  }
  TaskOutcome rejected = TaskOutcome::kOk;  // kOk: accepted
  int depth = 0;
  {
    MutexLock l(&mu_);
    const absl::Time now = clock_->Now();
    if (task.deadline == absl::InfiniteFuture() &&
        options_.default_timeout != absl::InfiniteDuration()) {
      task.deadline = now + options_.default_timeout;
    }
    const double batches_ahead = 1.0 + std::floor(static_cast<double>(queue_.size()) /
                                                  (options_.max_batch_size * options_.instances));
    if (stopping_) {
      rejected = TaskOutcome::kRejectedShutdown;
      ++stats_.rejected_shutdown;
    } else if (task.deadline <= now) {
      rejected = TaskOutcome::kExpired;
      ++stats_.expired;
    } else if (static_cast<int>(queue_.size()) >= options_.max_queue_size) {
      rejected = TaskOutcome::kRejectedQueueFull;
      ++stats_.rejected_queue_full;
    } else if (options_.admission_control && encode_seconds_ema_ > 0 && step_seconds_ema_ > 0 &&
               now + absl::Seconds(batches_ahead *
                                   (encode_seconds_ema_ +
                                    static_cast<double>((*plan)->size()) * step_seconds_ema_)) >
                   task.deadline) {
      rejected = TaskOutcome::kRejectedAdmission;
      ++stats_.rejected_admission;
    } else {
      ++stats_.accepted;
      queue_.push_back({std::move(task), now, *plan});
      depth = static_cast<int>(queue_.size());
      cv_.notify_one();
    }
  }
  if (rejected == TaskOutcome::kOk) {
    if (observer_) observer_->OnQueueDepth(depth);
    return absl::OkStatus();
  }
  if (observer_) observer_->OnTaskDone(rejected, absl::ZeroDuration(), absl::ZeroDuration());
  switch (rejected) {
    case TaskOutcome::kRejectedShutdown:
      return absl::UnavailableError("the model scheduler is shutting down; retry elsewhere");
    case TaskOutcome::kExpired:
      return absl::DeadlineExceededError("the deadline passed before the task was queued");
    case TaskOutcome::kRejectedQueueFull:
      return absl::ResourceExhaustedError(
          absl::StrCat("queue full (", options_.max_queue_size, " tasks waiting)"));
    default:
      return absl::DeadlineExceededError(
          "the predicted queueing time exceeds the deadline (admission control)");
  }
}

void ModelScheduler::Shutdown(absl::Duration drain_timeout) {
  {
    MutexLock l(&mu_);
    const absl::Time deadline = clock_->Now() + drain_timeout;
    if (!stopping_) {
      stopping_ = true;
      drain_deadline_ = deadline;
    } else {
      drain_deadline_ = std::min(drain_deadline_, deadline);
    }
    cv_.notify_all();
  }
  MutexLock j(&join_mu_);
  if (joined_) return;
  for (auto& inst : instances_) {
    if (inst->thread.joinable()) inst->thread.join();
  }
  joined_ = true;
}

int ModelScheduler::queue_depth() const {
  MutexLock l(&mu_);
  return static_cast<int>(queue_.size());
}

SchedulerStats ModelScheduler::stats() const {
  MutexLock l(&mu_);
  return stats_;
}

void ModelScheduler::Count(TaskOutcome outcome) {
  MutexLock l(&mu_);
  switch (outcome) {
    case TaskOutcome::kOk:
      ++stats_.ok;
      break;
    case TaskOutcome::kFailed:
      ++stats_.failed;
      break;
    case TaskOutcome::kExpired:
      ++stats_.expired;
      break;
    case TaskOutcome::kCancelled:
      ++stats_.cancelled;
      break;
    case TaskOutcome::kShutdown:
      ++stats_.shutdown;
      break;
    case TaskOutcome::kRejectedQueueFull:
      ++stats_.rejected_queue_full;
      break;
    case TaskOutcome::kRejectedAdmission:
      ++stats_.rejected_admission;
      break;
    case TaskOutcome::kRejectedShutdown:
      ++stats_.rejected_shutdown;
      break;
  }
}

void ModelScheduler::Complete(Task& task, TaskOutcome outcome, absl::StatusOr<TaskResult> result,
                              absl::Duration queue_time, absl::Duration compute_time) {
  Count(outcome);
  if (observer_) observer_->OnTaskDone(outcome, queue_time, compute_time);
  TaskCallback done = std::move(task.done);
  task.done = nullptr;
  if (done) done(std::move(result));
}

void ModelScheduler::PurgeLocked(absl::Time now, std::vector<Queued>* expired,
                                 std::vector<Queued>* cancelled) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->task.deadline <= now) {
      expired->push_back(std::move(*it));
      it = queue_.erase(it);
    } else if (IsCancelled(it->task)) {
      cancelled->push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

void ModelScheduler::Loop(Instance* inst) {
  const bool step_mode = options_.mode == BatchingMode::kStepLevel;
  while (true) {
    std::vector<Queued> taken, expired, cancelled, abandoned;
    bool exit = false;
    int depth = -1;
    {
      MutexLock l(&mu_);
      while (true) {
        const absl::Time now = clock_->Now();
        PurgeLocked(now, &expired, &cancelled);
        if (stopping_ && now >= drain_deadline_) {
          for (Queued& q : queue_) abandoned.push_back(std::move(q));
          queue_.clear();
        }
        if (step_mode && !inst->active.empty()) {
          const int n = AdmitBetweenSteps(options_, static_cast<int>(queue_.size()),
                                          static_cast<int>(inst->active.size()));
          for (int i = 0; i < n; ++i) {
            taken.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
          break;
        }
        if (queue_.empty() && stopping_) {
          exit = true;
          break;
        }
        const BatchDecision d =
            Decide(options_, static_cast<int>(queue_.size()),
                   queue_.empty() ? now : queue_.front().enqueued, now, stopping_);
        if (d.dispatch > 0) {
          for (int i = 0; i < d.dispatch; ++i) {
            taken.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
          break;
        }
        if (!expired.empty() || !cancelled.empty() || !abandoned.empty()) break;
        const absl::Time wake = stopping_ ? std::min(d.recheck_at, drain_deadline_) : d.recheck_at;
        clock_->WaitUntil(cv_, mu_, wake);
      }
      if (!taken.empty() || !expired.empty() || !cancelled.empty() || !abandoned.empty())
        depth = static_cast<int>(queue_.size());
    }
    if (depth >= 0 && observer_) observer_->OnQueueDepth(depth);
    const absl::Time now = clock_->Now();
    for (Queued& q : expired) {
      Complete(q.task, TaskOutcome::kExpired,
               absl::DeadlineExceededError("the deadline passed while the task was queued"),
               now - q.enqueued, absl::ZeroDuration());
    }
    for (Queued& q : cancelled) {
      Complete(q.task, TaskOutcome::kCancelled, absl::CancelledError("cancelled while queued"),
               now - q.enqueued, absl::ZeroDuration());
    }
    for (Queued& q : abandoned) {
      Complete(q.task, TaskOutcome::kShutdown,
               absl::UnavailableError("the model scheduler shut down before the task ran"),
               now - q.enqueued, absl::ZeroDuration());
    }
    if (exit) return;
    if (step_mode) {
      if (!taken.empty() || !inst->active.empty()) AdmitAndStep(inst, std::move(taken));
    } else if (!taken.empty()) {
      RunWholeRequest(inst, std::move(taken));
    }
  }
}

void ModelScheduler::Encode(Instance* inst, std::vector<Queued>& batch, std::vector<Slot>* out) {
  const int64_t n = static_cast<int64_t>(batch.size());
  Shape shape = input_shape_;
  shape.insert(shape.begin(), n);
  inst->images.Resize(shape);
  const int64_t per = inst->images.sample_numel();
  const absl::Time dispatched = clock_->Now();
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(batch[i].task.image.data(), per, inst->images.sample(i));
  }
  const absl::Time t0 = clock_->Now();
  absl::Status st = inst->runner->Encode(inst->images, &inst->z);
  const absl::Duration took = clock_->Now() - t0;
  {
    MutexLock l(&mu_);
    ++stats_.encoder_calls;
    UpdateEma(&encode_seconds_ema_, absl::ToDoubleSeconds(took));
  }
  if (observer_) observer_->OnModelCall(CallKind::kEncode, static_cast<int>(n), took, st.ok());
  if (st.ok() &&
      (inst->z.rank() != 4 || inst->z.dim(0) != n || inst->z.sample_numel() != latent_.numel())) {
    st = absl::InternalError(absl::StrCat("the encoder returned ", ShapeToString(inst->z.shape()),
                                          " for a batch of ", n));
  }
  for (int64_t i = 0; i < n; ++i) {
    Queued& q = batch[i];
    if (!st.ok()) {
      Complete(q.task, TaskOutcome::kFailed, st, dispatched - q.enqueued, took);
      continue;
    }
    Slot s;
    s.enqueued = q.enqueued;
    s.dispatched = dispatched;
    s.plan = q.plan;
    s.compute = took;
    s.batch_sizes.push_back(static_cast<int>(n));
    s.z.assign(inst->z.sample(i), inst->z.sample(i) + latent_.numel());
    s.task = std::move(q.task);
    out->push_back(std::move(s));
  }
}

void ModelScheduler::DropStale(std::vector<Slot>* slots) {
  const absl::Time now = clock_->Now();
  for (auto it = slots->begin(); it != slots->end();) {
    if (it->task.deadline <= now) {
      Complete(
          it->task, TaskOutcome::kExpired,
          absl::DeadlineExceededError(absl::StrCat("the deadline passed after ", it->next, " of ",
                                                   it->plan->size(), " inversion steps")),
          it->dispatched - it->enqueued, it->compute);
      it = slots->erase(it);
    } else if (IsCancelled(it->task)) {
      Complete(it->task, TaskOutcome::kCancelled,
               absl::CancelledError(absl::StrCat("cancelled after ", it->next, " of ",
                                                 it->plan->size(), " inversion steps")),
               it->dispatched - it->enqueued, it->compute);
      it = slots->erase(it);
    } else {
      ++it;
    }
  }
}

void ModelScheduler::Finish(Slot& s) {
  TaskResult r;
  r.norm_map = Tensor({latent_.height, latent_.width});
  r.score =
      ScoreLatent(s.z.data(), latent_.channels, latent_.height, latent_.width, r.norm_map.data());
  r.steps = static_cast<int>(s.plan->size());
  r.queue_time = s.dispatched - s.enqueued;
  r.compute_time = s.compute;
  r.batch_sizes = s.batch_sizes;
  Complete(s.task, TaskOutcome::kOk, std::move(r), s.dispatched - s.enqueued, s.compute);
}

void ModelScheduler::Step(Instance* inst, std::vector<Slot>* slots) {
  const int64_t m = static_cast<int64_t>(slots->size());
  if (m == 0) return;
  inst->zsub.Resize({m, latent_.channels, latent_.height, latent_.width});
  std::vector<DdimCoefficients> coefs;
  coefs.reserve(m);
  for (int64_t i = 0; i < m; ++i) {
    const Slot& s = (*slots)[i];
    std::copy(s.z.begin(), s.z.end(), inst->zsub.sample(i));
    coefs.push_back((*s.plan)[s.next]);
  }
  const absl::Time t0 = clock_->Now();
  absl::Status st = inst->runner->Step(coefs, inst->zsub);
  const absl::Duration took = clock_->Now() - t0;
  {
    MutexLock l(&mu_);
    ++stats_.denoiser_calls;
    UpdateEma(&step_seconds_ema_, absl::ToDoubleSeconds(took));
  }
  if (observer_) observer_->OnModelCall(CallKind::kDenoise, static_cast<int>(m), took, st.ok());
  std::vector<Slot> keep;
  keep.reserve(m);
  for (int64_t i = 0; i < m; ++i) {
    Slot& s = (*slots)[i];
    s.compute += took;
    s.batch_sizes.push_back(static_cast<int>(m));
    if (!st.ok()) {
      Complete(s.task, TaskOutcome::kFailed, st, s.dispatched - s.enqueued, s.compute);
      continue;
    }
    std::copy_n(inst->zsub.sample(i), latent_.numel(), s.z.begin());
    if (++s.next == static_cast<int>(s.plan->size())) {
      Finish(s);
    } else {
      keep.push_back(std::move(s));
    }
  }
  *slots = std::move(keep);
}

void ModelScheduler::UpdateEma(double* ema, double seconds) {
  *ema = *ema == 0 ? seconds : 0.8 * *ema + 0.2 * seconds;
}

void ModelScheduler::InvertFused(Instance* inst, std::vector<Slot>* slots) {
  const int64_t m = static_cast<int64_t>(slots->size());
  if (m == 0) return;
  const std::vector<DdimCoefficients>& plan = *(*slots)[0].plan;
  const int k = static_cast<int>(plan.size());
  inst->zsub.Resize({m, latent_.channels, latent_.height, latent_.width});
  for (int64_t i = 0; i < m; ++i) {
    std::copy((*slots)[i].z.begin(), (*slots)[i].z.end(), inst->zsub.sample(i));
  }
  const absl::Time t0 = clock_->Now();
  absl::Status st = inst->runner->Invert(plan, inst->zsub);
  const absl::Duration took = clock_->Now() - t0;
  {
    MutexLock l(&mu_);
    stats_.denoiser_calls += k;
    UpdateEma(&step_seconds_ema_, absl::ToDoubleSeconds(took) / k);
  }
  // Observers see K denoiser calls of batch m, as in the per-step path.
  if (observer_) {
    for (int j = 0; j < k; ++j)
      observer_->OnModelCall(CallKind::kDenoise, static_cast<int>(m), took / k, st.ok());
  }
  for (int64_t i = 0; i < m; ++i) {
    Slot& s = (*slots)[i];
    s.compute += took;
    s.batch_sizes.insert(s.batch_sizes.end(), k, static_cast<int>(m));
    if (!st.ok()) {
      Complete(s.task, TaskOutcome::kFailed, st, s.dispatched - s.enqueued, s.compute);
      continue;
    }
    std::copy_n(inst->zsub.sample(i), latent_.numel(), s.z.begin());
    s.next = k;
    Finish(s);
  }
  slots->clear();
}

void ModelScheduler::RunWholeRequest(Instance* inst, std::vector<Queued> batch) {
  std::vector<Slot> slots;
  Encode(inst, batch, &slots);
  if (inst->runner->fused_inversion()) {
    DropStale(&slots);
    const bool one_plan = std::all_of(slots.begin(), slots.end(), [&](const Slot& s) {
      return s.plan == slots.front().plan && s.next == 0;
    });
    if (one_plan) {
      InvertFused(inst, &slots);
      return;
    }
  }
  // Every task runs its own K; the batch shrinks as the shorter ones finish.
  while (!slots.empty()) {
    DropStale(&slots);
    Step(inst, &slots);
  }
}

void ModelScheduler::AdmitAndStep(Instance* inst, std::vector<Queued> admitted) {
  if (!admitted.empty()) Encode(inst, admitted, &inst->active);
  DropStale(&inst->active);
  Step(inst, &inst->active);
}

}  // namespace invad::core
