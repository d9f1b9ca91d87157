// A Clock for tests: time moves only when the test calls Advance(); waiters wake then (TF Serving's
// FakeClockEnv). BlockUntilWaiters(n) lets a test know the scheduler threads are asleep.
#pragma once

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/time/time.h"

#include "core/base/mutex.h"
#include "core/batching/clock.h"

namespace invad::testing {

class FakeClock final : public core::Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'000'000)) : now_(start) {}

  absl::Time Now() const override {
    core::MutexLock l(&mu_);
    return now_;
  }

  void WaitUntil(core::CondVar& cv, core::Mutex& mu, absl::Time deadline) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    {
      core::MutexLock l(&mu_);
      if (deadline <= now_) return;
      waiters_.push_back({&cv, &mu});
      changed_.notify_all();
    }
    cv.wait(mu);  // Advance() and the scheduler's own notifications wake it
    core::MutexLock l(&mu_);
    auto it = std::find(waiters_.begin(), waiters_.end(), std::make_pair(&cv, &mu));
    if (it != waiters_.end()) waiters_.erase(it);
    changed_.notify_all();
  }

  void Advance(absl::Duration d) {
    std::vector<std::pair<core::CondVar*, core::Mutex*>> ws;
    {
      core::MutexLock l(&mu_);
      now_ += d;
      ws = waiters_;
    }
    for (auto [cv, mu] : ws) {
      mu->lock();  // a waiter between its check and its wait holds `mu`: no lost wake-up
      mu->unlock();
      cv->notify_all();
    }
  }

  // Blocks until at least `n` threads wait in WaitUntil (real-time bound: 60 s, then returns
  // false so the test fails instead of hanging).
  bool BlockUntilWaiters(int n) {
    core::MutexLock l(&mu_);
    return changed_.wait_for(mu_, std::chrono::seconds(60), [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return static_cast<int>(waiters_.size()) >= n;
    });
  }

 private:
  mutable core::Mutex mu_;
  core::CondVar changed_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<core::CondVar*, core::Mutex*>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace invad::testing
