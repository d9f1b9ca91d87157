// ModelScheduler with a fake clock and a fake runner: every behaviour of issue 4's "Done when",
// without sleeping and without a model. Runs under ThreadSanitizer (tsan preset).
#include "core/batching/scheduler.h"

#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/base/mutex.h"
#include "tests/testing/fake_allocator.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fakes.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::FakeClock;
using ::invad::testing::StatusIs;
using ::testing::ElementsAre;

constexpr int64_t kC = 2, kH = 2, kW = 2;  // latent
const Shape kInput{1, 4, 4};

// z0 = the image's first pixel in every latent element; each Step adds 1 (so z_T = z0 + K) and
// records the timesteps it saw. Latency advances the fake clock. Failures are injected by call.
class FakeRunner final : public BatchRunner {
 public:
  FakeRunner(FakeClock* clock, absl::Duration latency) : clock_(clock), latency_(latency) {
    auto schedule = NoiseSchedule::Linear();
    for (int k : {1, 2, 3, 5}) plans_[k] = *InversionPlan(*schedule, k);
  }
  Shape input_shape() const override { return kInput; }
  LatentShape latent_shape() const override { return {kC, kH, kW}; }
  absl::StatusOr<const std::vector<DdimCoefficients>*> Plan(int k) const override {
    auto it = plans_.find(k);
    if (it == plans_.end()) return absl::InvalidArgumentError("steps not allowed");
    return &it->second;
  }
  absl::Status Encode(const Tensor& images, Tensor* z0) override {
    const int call =
        Record("encode", images.batch(), {}, images.data(), images.numel() * sizeof(float));
    if (hook) hook("encode", call);
    clock_->Advance(latency_);
    if (fail_encode_call == call) return absl::InternalError("injected encoder failure");
    z0->Resize({images.batch(), kC, kH, kW});
    for (int64_t i = 0; i < images.batch(); ++i) {
      for (int64_t j = 0; j < kC * kH * kW; ++j) z0->sample(i)[j] = images.sample(i)[0];
    }
    return absl::OkStatus();
  }
  absl::Status Step(absl::Span<const DdimCoefficients> coefs, Tensor& z) override {
    std::vector<int> ts;
    for (const auto& c : coefs) ts.push_back(c.timestep);
    const int call = Record("step", z.batch(), ts, z.data(), z.numel() * sizeof(float));
    if (hook) hook("step", call);
    clock_->Advance(latency_);
    if (fail_step_call == call) return absl::InternalError("injected denoiser failure");
    for (int64_t j = 0; j < z.numel(); ++j) z.data()[j] += 1.0f;
    return absl::OkStatus();
  }
  // With `fused`, a device-resident runner: the whole plan in one "invert" call.
  bool fused_inversion() const override { return fused; }
  absl::Status Invert(absl::Span<const DdimCoefficients> plan, Tensor& z) override {
    if (!fused) return BatchRunner::Invert(plan, z);
    std::vector<int> ts;
    for (const auto& c : plan) ts.push_back(c.timestep);
    const int call = Record("invert", z.batch(), ts, z.data(), z.numel() * sizeof(float));
    clock_->Advance(latency_ * static_cast<int64_t>(plan.size()));
    if (fail_step_call == call) return absl::InternalError("injected denoiser failure");
    for (int64_t j = 0; j < z.numel(); ++j) z.data()[j] += static_cast<float>(plan.size());
    return absl::OkStatus();
  }

  struct Call {
    std::string kind;
    int64_t batch;
    std::vector<int> timesteps;
    const void* input = nullptr;  // the batch buffer the call read
    size_t input_bytes = 0;
  };
  std::vector<Call> calls() {
    MutexLock l(&mu_);
    return calls_;
  }
  // Test hooks, set before the scheduler starts.
  std::function<void(const std::string&, int)> hook;
  int fail_encode_call = -1;  // 0-based index among all calls
  int fail_step_call = -1;
  bool fused = false;

 private:
  int Record(const std::string& kind, int64_t batch, std::vector<int> ts, const void* input,
             size_t input_bytes) {
    MutexLock l(&mu_);
    calls_.push_back({kind, batch, std::move(ts), input, input_bytes});
    return static_cast<int>(calls_.size()) - 1;
  }
  FakeClock* clock_;
  absl::Duration latency_;
  std::map<int, std::vector<DdimCoefficients>> plans_;
  Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

// Collects results by task id; Wait(n) bounds liveness with a real-time timeout.
class Collector {
 public:
  TaskCallback For(int id) {
    return [this, id](absl::StatusOr<TaskResult> r) {
      MutexLock l(&mu_);
      EXPECT_EQ(results_.count(id), 0u) << "callback called twice for task " << id;
      results_.emplace(id, std::move(r));
      cv_.notify_all();
    };
  }
  bool Wait(size_t n) {
    MutexLock l(&mu_);
    return cv_.wait_for(mu_, std::chrono::seconds(60),
                        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return results_.size() >= n; });
  }
  absl::StatusOr<TaskResult> Get(int id) {
    MutexLock l(&mu_);
    auto it = results_.find(id);
    if (it == results_.end()) return absl::NotFoundError("no result");
    return it->second;
  }
  size_t size() {
    MutexLock l(&mu_);
    return results_.size();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::map<int, absl::StatusOr<TaskResult>> results_ ABSL_GUARDED_BY(mu_);
};

class CountingObserver final : public SchedulerObserver {
 public:
  void OnTaskDone(TaskOutcome outcome, absl::Duration, absl::Duration) override {
    MutexLock l(&mu_);
    ++outcomes_[outcome];
  }
  int count(TaskOutcome o) {
    MutexLock l(&mu_);
    return outcomes_[o];
  }

 private:
  Mutex mu_;
  std::map<TaskOutcome, int> outcomes_ ABSL_GUARDED_BY(mu_);
};

Task MakeTask(int id, int steps, Collector& c) {
  Task t;
  t.image = Tensor(kInput);
  for (float& v : t.image.span()) v = static_cast<float>(id);
  t.steps = steps;
  t.done = c.For(id);
  return t;
}

class SchedulerTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelScheduler> Start(const SchedulerOptions& o,
                                        absl::Duration latency = absl::Milliseconds(1)) {
    auto r = std::make_unique<FakeRunner>(&clock_, latency);
    runner_ = r.get();
    if (setup_runner) setup_runner(*runner_);
    std::vector<std::unique_ptr<BatchRunner>> runners;
    runners.push_back(std::move(r));
    auto s = ModelScheduler::Create(o, std::move(runners), &observer_, &clock_);
    EXPECT_OK(s.status());
    return s.ok() ? std::move(*s) : nullptr;
  }
  FakeClock clock_;
  CountingObserver observer_;
  Collector results_;
  FakeRunner* runner_ = nullptr;
  std::function<void(FakeRunner&)> setup_runner;
};

TEST_F(SchedulerTest, PartialBatchIsFlushedAtTheMaxDelay) {
  SchedulerOptions o;
  o.max_batch_size = 4;
  o.max_queue_delay_us = 5000;
  auto s = Start(o);
  ASSERT_OK(s->Submit(MakeTask(1, 3, results_)));
  ASSERT_OK(s->Submit(MakeTask(2, 3, results_)));
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  clock_.Advance(absl::Milliseconds(4));
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  EXPECT_TRUE(runner_->calls().empty()) << "dispatched before the delay";
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(results_.Wait(2));
  auto r = results_.Get(1);
  ASSERT_OK(r);
  EXPECT_THAT(r->batch_sizes, ElementsAre(2, 2, 2, 2));  // encoder + K = 3 steps, batch of 2
  EXPECT_EQ(r->steps, 3);
  EXPECT_EQ(r->queue_time, absl::Milliseconds(5));
  EXPECT_EQ(r->compute_time, absl::Milliseconds(4));
  EXPECT_FLOAT_EQ(r->norm_map.data()[0], std::sqrt(2.0f) * (1 + 3));  // z_T = z0 + K, C = 2
}

TEST_F(SchedulerTest, FullAndPreferredBatchesGoWithoutWaiting) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  o.preferred_batch_sizes = {2};
  o.max_queue_delay_us = 1'000'000;
  auto s = Start(o, absl::ZeroDuration());
  for (int i = 0; i < 3; ++i) ASSERT_OK(s->Submit(MakeTask(i, 1, results_)));
  ASSERT_TRUE(results_.Wait(2));  // the preferred pair, with the clock frozen
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  EXPECT_EQ(results_.size(), 2u);  // the third waits for company or the delay
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(results_.Wait(3));
  const auto calls = runner_->calls();
  ASSERT_GE(calls.size(), 4u);
  EXPECT_EQ(calls[0].batch, 2);
  EXPECT_EQ(calls[2].batch, 1);
}

TEST_F(SchedulerTest, FullQueueRejectsImmediately) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  o.max_queue_size = 3;
  o.max_queue_delay_us = 1'000'000;
  auto s = Start(o);
  for (int i = 0; i < 3; ++i) ASSERT_OK(s->Submit(MakeTask(i, 1, results_)));
  EXPECT_THAT(s->Submit(MakeTask(9, 1, results_)),
              StatusIs(absl::StatusCode::kResourceExhausted, "queue full"));
  EXPECT_EQ(s->stats().rejected_queue_full, 1);
  EXPECT_EQ(observer_.count(TaskOutcome::kRejectedQueueFull), 1);
  EXPECT_EQ(s->queue_depth(), 3);
  // Invalid tasks are refused at the door too.
  Task wrong = MakeTask(10, 1, results_);
  wrong.image = Tensor({3, 4, 4});
  EXPECT_THAT(s->Submit(std::move(wrong)), StatusIs(absl::StatusCode::kInvalidArgument, "shape"));
  EXPECT_THAT(s->Submit(MakeTask(11, 4, results_)), StatusIs(absl::StatusCode::kInvalidArgument));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(results_.Wait(3));
  EXPECT_FALSE(results_.Get(9).ok()) << "a rejected task's callback must not run";
}

TEST_F(SchedulerTest, ExpiredAndCancelledTasksNeverReachTheRunner) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 10'000;
  auto s = Start(o);
  Task late = MakeTask(1, 3, results_);
  late.deadline = clock_.Now() + absl::Milliseconds(2);
  Task cancelled = MakeTask(2, 3, results_);
  cancelled.cancelled = std::make_shared<std::atomic<bool>>(false);
  auto flag = cancelled.cancelled;
  ASSERT_OK(s->Submit(std::move(late)));
  ASSERT_OK(s->Submit(std::move(cancelled)));
  Task past = MakeTask(3, 3, results_);
  past.deadline = clock_.Now();
  EXPECT_THAT(s->Submit(std::move(past)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  flag->store(true);
  ASSERT_TRUE(clock_.BlockUntilWaiters(1));
  clock_.Advance(absl::Milliseconds(3));
  ASSERT_TRUE(results_.Wait(2));
  EXPECT_THAT(results_.Get(1), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(results_.Get(2), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(runner_->calls().empty());
  EXPECT_EQ(s->stats().expired, 2);  // one queued, one at the door
  EXPECT_EQ(s->stats().cancelled, 1);
  EXPECT_EQ(observer_.count(TaskOutcome::kCancelled), 1);
}

TEST_F(SchedulerTest, CancelledBetweenStepsStopsBeforeTheNextCall) {
  SchedulerOptions o;
  o.max_batch_size = 4;
  o.max_queue_delay_us = 0;
  o.mode = BatchingMode::kStepLevel;
  auto flag = std::make_shared<std::atomic<bool>>(false);
  setup_runner = [flag](FakeRunner& r) {
    r.hook = [flag](const std::string& kind, int call) {
      if (kind == "step" && call == 2) flag->store(true);  // during its second step
    };
  };
  auto s = Start(o);
  Task t = MakeTask(1, 5, results_);
  t.cancelled = flag;
  ASSERT_OK(s->Submit(std::move(t)));
  ASSERT_TRUE(results_.Wait(1));
  EXPECT_THAT(results_.Get(1), StatusIs(absl::StatusCode::kCancelled, "after 2 of 5"));
  EXPECT_EQ(runner_->calls().size(), 3u);  // encoder + 2 steps, not 5
}

TEST_F(SchedulerTest, StepModeAdmitsNewTasksBetweenStepsAndRunsEachExactlyK) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 0;
  o.mode = BatchingMode::kStepLevel;
  ModelScheduler* sched = nullptr;
  setup_runner = [&](FakeRunner& r) {
    // While task 5 (K = 5) runs its first step, tasks with K = 1 and K = 3 arrive.
    r.hook = [&](const std::string& kind, int call) {
      if (kind == "step" && call == 1) {
        EXPECT_OK(sched->Submit(MakeTask(1, 1, results_)));
        EXPECT_OK(sched->Submit(MakeTask(3, 3, results_)));
      }
    };
  };
  auto s = Start(o);
  sched = s.get();
  ASSERT_OK(s->Submit(MakeTask(5, 5, results_)));
  ASSERT_TRUE(results_.Wait(3));
  for (int id : {1, 3, 5}) {
    auto r = results_.Get(id);
    ASSERT_OK(r) << id;
    EXPECT_EQ(r->steps, id);
    EXPECT_EQ(r->batch_sizes.size(), static_cast<size_t>(1 + id)) << "encoder + exactly K calls";
    // z_T = z0 + K: exactly K denoiser updates reached this task's latent.
    EXPECT_FLOAT_EQ(r->norm_map.data()[0], std::sqrt(2.0f) * (id + id)) << id;
  }
  // The late tasks joined task 5 in flight: calls mixed tasks at different steps.
  const auto calls = runner_->calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[0].kind, "encode");
  EXPECT_EQ(calls[1].kind, "step");
  EXPECT_EQ(calls[1].batch, 1);
  EXPECT_EQ(calls[2].kind, "encode");  // the newcomers' encoder pass, between steps
  EXPECT_EQ(calls[2].batch, 2);
  EXPECT_EQ(calls[3].batch, 3);  // task 5 at step 1, the newcomers at step 0
  EXPECT_THAT(calls[3].timesteps, ElementsAre(250, 0, 0));
  auto r5 = results_.Get(5);
  EXPECT_THAT(r5->batch_sizes, ElementsAre(1, 1, 3, 2, 2, 1));
}

TEST_F(SchedulerTest, WholeRequestBatchRunsMixedKAndShrinks) {
  SchedulerOptions o;
  o.max_batch_size = 3;
  o.max_queue_delay_us = 1'000'000;  // only a full batch goes before the delay
  auto s2 = Start(o);
  ASSERT_OK(s2->Submit(MakeTask(1, 1, results_)));
  ASSERT_OK(s2->Submit(MakeTask(3, 3, results_)));
  ASSERT_OK(s2->Submit(MakeTask(5, 5, results_)));  // a full batch: dispatched at once
  ASSERT_TRUE(results_.Wait(3));
  const auto calls = runner_->calls();
  std::vector<int64_t> sizes;
  for (const auto& c : calls) sizes.push_back(c.batch);
  EXPECT_THAT(sizes, ElementsAre(3, 3, 2, 2, 1, 1));
  for (int id : {3, 5}) {
    auto r = results_.Get(id);
    ASSERT_OK(r);
    EXPECT_EQ(r->batch_sizes.size(), static_cast<size_t>(1 + id));
    EXPECT_FLOAT_EQ(r->norm_map.data()[0], std::sqrt(2.0f) * (id + id));
  }
}

TEST_F(SchedulerTest, AFusedRunnerTakesAWholeBatchOfOneKInOneCall) {
  setup_runner = [](FakeRunner& r) { r.fused = true; };
  SchedulerOptions o;
  o.max_batch_size = 3;
  o.max_queue_delay_us = 1'000'000;
  auto s = Start(o);
  for (int id : {1, 2, 4}) ASSERT_OK(s->Submit(MakeTask(id, 3, results_)));
  ASSERT_TRUE(results_.Wait(3));
  auto calls = runner_->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].kind, "encode");
  EXPECT_EQ(calls[1].kind, "invert");
  EXPECT_EQ(calls[1].batch, 3);
  EXPECT_EQ(calls[1].timesteps.size(), 3u);  // the plan's three steps, in one call
  for (int id : {1, 2, 4}) {
    auto r = results_.Get(id);
    ASSERT_OK(r);
    EXPECT_THAT(r->batch_sizes, ElementsAre(3, 3, 3, 3));  // encode, then K denoiser steps
    EXPECT_EQ(r->steps, 3);
    EXPECT_FLOAT_EQ(r->norm_map.data()[0], std::sqrt(2.0f) * (id + 3));
  }
  EXPECT_EQ(s->stats().denoiser_calls, 3);

  // Mixed K in one batch: the same runner steps them one call per step instead.
  for (int id : {5, 6}) ASSERT_OK(s->Submit(MakeTask(id, id == 5 ? 1 : 2, results_)));
  ASSERT_OK(s->Submit(MakeTask(7, 2, results_)));
  ASSERT_TRUE(results_.Wait(6));
  calls = runner_->calls();
  std::vector<std::string> kinds;
  for (size_t i = 2; i < calls.size(); ++i) kinds.push_back(calls[i].kind);
  EXPECT_THAT(kinds, ElementsAre("encode", "step", "step"));
  auto r = results_.Get(6);
  ASSERT_OK(r);
  EXPECT_FLOAT_EQ(r->norm_map.data()[0], std::sqrt(2.0f) * (6 + 2));
}

TEST_F(SchedulerTest, AFailingCallFailsOnlyItsTasks) {
  SchedulerOptions o;
  o.max_batch_size = 2;
  o.max_queue_delay_us = 0;
  setup_runner = [](FakeRunner& r) { r.fail_encode_call = 0; };
  auto s = Start(o);
  ASSERT_OK(s->Submit(MakeTask(1, 1, results_)));
  ASSERT_OK(s->Submit(MakeTask(2, 1, results_)));
  ASSERT_TRUE(results_.Wait(2));
  ASSERT_OK(s->Submit(MakeTask(3, 1, results_)));
  ASSERT_TRUE(results_.Wait(3));
  const auto calls = runner_->calls();
  int failed = 0;
  for (int id : {1, 2}) {
    auto r = results_.Get(id);
    if (!r.ok()) {
      EXPECT_THAT(r, StatusIs(absl::StatusCode::kInternal, "injected"));
      ++failed;
    }
  }
  EXPECT_GE(failed, 1);
  EXPECT_EQ(failed, calls[0].batch) << "exactly the tasks of the failed call";
  EXPECT_OK(results_.Get(3).status());
  EXPECT_EQ(s->stats().failed, failed);
}

TEST_F(SchedulerTest, ShutdownDrainsQueuedWorkThenRefusesNewWork) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 1'000'000;
  auto s = Start(o);
  for (int i = 0; i < 3; ++i) ASSERT_OK(s->Submit(MakeTask(i, 3, results_)));
  s->Shutdown(absl::Seconds(10));  // draining: no waiting for company
  EXPECT_EQ(results_.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_OK(results_.Get(i).status());
  EXPECT_THAT(s->Submit(MakeTask(7, 3, results_)),
              StatusIs(absl::StatusCode::kUnavailable, "shutting down"));
  s->Shutdown(absl::Seconds(10));  // idempotent
}

TEST_F(SchedulerTest, ShutdownWithoutDrainTimeFailsQueuedTasksUnavailable) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 1'000'000;
  auto s = Start(o);
  for (int i = 0; i < 2; ++i) ASSERT_OK(s->Submit(MakeTask(i, 3, results_)));
  s->Shutdown(absl::ZeroDuration());
  ASSERT_EQ(results_.size(), 2u);
  EXPECT_THAT(results_.Get(0), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(runner_->calls().empty());
  EXPECT_EQ(observer_.count(TaskOutcome::kShutdown), 2);
}

TEST_F(SchedulerTest, AdmissionControlRejectsWhatCannotMeetItsDeadline) {
  SchedulerOptions o;
  o.max_batch_size = 1;
  o.max_queue_delay_us = 0;
  o.admission_control = true;
  auto s = Start(o, absl::Milliseconds(10));  // a K = 1 batch takes 20 ms (encoder + step)
  ASSERT_OK(s->Submit(MakeTask(1, 1, results_)));
  ASSERT_TRUE(results_.Wait(1));  // teaches the estimate
  Task t = MakeTask(2, 1, results_);
  t.deadline = clock_.Now() + absl::Milliseconds(5);
  EXPECT_THAT(s->Submit(std::move(t)), StatusIs(absl::StatusCode::kDeadlineExceeded, "admission"));
  Task ok = MakeTask(3, 1, results_);
  ok.deadline = clock_.Now() + absl::Seconds(1);
  EXPECT_OK(s->Submit(std::move(ok)));
  ASSERT_TRUE(results_.Wait(2));
  EXPECT_EQ(s->stats().rejected_admission, 1);
}

TEST(SchedulerCreateTest, RejectsBadOptionsAndRunnerCounts) {
  FakeClock clock;
  SchedulerOptions o;
  o.instances = 2;
  std::vector<std::unique_ptr<BatchRunner>> one;
  one.push_back(std::make_unique<FakeRunner>(&clock, absl::ZeroDuration()));
  EXPECT_THAT(ModelScheduler::Create(o, std::move(one), nullptr, &clock),
              StatusIs(absl::StatusCode::kInvalidArgument, "2 instances"));
  o.instances = 1;
  o.max_batch_size = 0;
  EXPECT_THAT(ModelScheduler::Create(o, {}, nullptr, &clock),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_batch_size"));
}

TEST(SchedulerAllocatorTest, BatchesAreAssembledInBuffersFromTheInjectedAllocator) {
  FakeClock clock;
  invad::testing::RecordingAllocator alloc;
  for (BatchingMode mode : {BatchingMode::kWholeRequest, BatchingMode::kStepLevel}) {
    SchedulerOptions o;
    o.max_batch_size = 4;
    o.max_queue_delay_us = 0;
    o.instances = 2;
    o.mode = mode;
    std::vector<FakeRunner*> fakes;
    std::vector<std::unique_ptr<BatchRunner>> runners;
    for (int i = 0; i < o.instances; ++i) {
      auto r = std::make_unique<FakeRunner>(&clock, absl::ZeroDuration());
      fakes.push_back(r.get());
      runners.push_back(std::move(r));
    }
    const int before = alloc.allocations();
    auto s = ModelScheduler::Create(o, std::move(runners), nullptr, &clock, &alloc);
    ASSERT_OK(s.status());
    // Two buffers (encoder and denoiser inputs) per instance, sized for max_batch_size, at once.
    EXPECT_EQ(alloc.allocations() - before, 2 * o.instances);
    Collector results;
    constexpr int kTasks = 20;
    for (int i = 0; i < kTasks; ++i) ASSERT_OK((*s)->Submit(MakeTask(i, 3, results)));
    ASSERT_TRUE(results.Wait(kTasks));
    for (int i = 0; i < kTasks; ++i) EXPECT_OK(results.Get(i).status());
    (*s)->Shutdown(absl::ZeroDuration());
    EXPECT_EQ(alloc.allocations() - before, 2 * o.instances) << "no allocation per batch";
    int calls = 0;
    for (FakeRunner* f : fakes) {
      for (const FakeRunner::Call& c : f->calls()) {
        ++calls;
        EXPECT_TRUE(alloc.Contains(c.input, c.input_bytes)) << c.kind << " input not from it";
      }
    }
    EXPECT_GE(calls, 2 * kTasks / o.max_batch_size);
  }
}

TEST(SchedulerAllocatorTest, CreateFailsWhenTheAllocatorIsOutOfMemory) {
  FakeClock clock;
  invad::testing::RecordingAllocator alloc;
  alloc.set_fail(true);
  std::vector<std::unique_ptr<BatchRunner>> runners;
  runners.push_back(std::make_unique<FakeRunner>(&clock, absl::ZeroDuration()));
  EXPECT_THAT(
      ModelScheduler::Create(SchedulerOptions(), std::move(runners), nullptr, &clock, &alloc),
      StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(SchedulerConcurrencyTest, ManySubmittersTwoInstancesEveryTaskCompletesOnce) {
  SchedulerOptions o;
  o.max_batch_size = 4;
  o.max_queue_delay_us = 0;
  o.instances = 2;
  o.max_queue_size = 1000;
  for (BatchingMode mode : {BatchingMode::kWholeRequest, BatchingMode::kStepLevel}) {
    o.mode = mode;
    FakeClock clock;
    Collector results;
    std::vector<std::unique_ptr<BatchRunner>> runners;
    for (int i = 0; i < 2; ++i)
      runners.push_back(std::make_unique<FakeRunner>(&clock, absl::ZeroDuration()));
    auto s = ModelScheduler::Create(o, std::move(runners), nullptr, &clock);
    ASSERT_OK(s);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          const int id = t * 100 + i;
          EXPECT_OK((*s)->Submit(MakeTask(id, (i % 3 == 0) ? 1 : (i % 3 == 1) ? 3 : 5, results)));
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_TRUE(results.Wait(200));
    (*s)->Shutdown(absl::Seconds(1));
    EXPECT_EQ(results.size(), 200u);
    EXPECT_EQ((*s)->stats().ok, 200);
  }
}

}  // namespace
}  // namespace invad::core

namespace invad::core {
namespace {

// The scheduler around a real Pipeline (fake models, no LibTorch): whatever the batching mode, a
// task's z_T equals Pipeline::Invert on that image alone, with its own K.
TEST(PipelineRunnerTest, BatchedResultsEqualUnbatchedInversionInBothModes) {
  const LatentShape latent{3, 2, 2};
  auto make_pipeline = [&] {
    auto p = Pipeline::Create(std::make_unique<::invad::testing::PoolingEncoder>(latent),
                              std::make_unique<::invad::testing::LinearDenoiser>(latent),
                              *NoiseSchedule::Linear(), {1, 3, 5});
    EXPECT_OK(p.status());
    return std::move(*p);
  };
  std::vector<Tensor> images;
  for (int i = 0; i < 9; ++i) {
    Tensor t({3, 4, 4});
    for (int64_t j = 0; j < t.numel(); ++j) t.data()[j] = std::sin(0.37f * (i + 1) * (j + 1));
    images.push_back(std::move(t));
  }
  const int ks[] = {1, 3, 5};
  for (BatchingMode mode : {BatchingMode::kWholeRequest, BatchingMode::kStepLevel}) {
    SchedulerOptions o;
    o.max_batch_size = 4;
    o.max_queue_delay_us = 1000;
    o.mode = mode;
    std::vector<std::unique_ptr<BatchRunner>> runners;
    runners.push_back(MakePipelineRunner(make_pipeline(), {3, 4, 4}));
    auto s = ModelScheduler::Create(o, std::move(runners));
    ASSERT_OK(s);
    Collector results;
    for (int i = 0; i < 9; ++i) {
      Task t;
      t.image = images[i];
      t.steps = ks[i % 3];
      t.done = results.For(i);
      ASSERT_OK((*s)->Submit(std::move(t)));
    }
    ASSERT_TRUE(results.Wait(9));
    auto reference = make_pipeline();
    for (int i = 0; i < 9; ++i) {
      Tensor one({1, 3, 4, 4},
                 std::vector<float>(images[i].span().begin(), images[i].span().end()));
      Tensor z;
      ASSERT_OK(reference->Encode(one, &z));
      ASSERT_OK(reference->Invert(ks[i % 3], z));
      Tensor map;
      const std::vector<LatentScore> want = ScoreLatents(z, &map);
      auto got = results.Get(i);
      ASSERT_OK(got);
      EXPECT_NEAR(got->score.sq_norm, want[0].sq_norm, 1e-4 * (1 + want[0].sq_norm)) << i;
      EXPECT_NEAR(got->score.diff, want[0].diff, 1e-4) << i;
      for (int64_t j = 0; j < map.numel(); ++j)
        EXPECT_NEAR(got->norm_map.data()[j], map.data()[j], 1e-4) << i;
    }
  }
}

}  // namespace
}  // namespace invad::core
