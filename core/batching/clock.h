// File: core/batching/clock.h
//
// The scheduler reads time and sleeps only through a Clock, so tests drive it with a FakeClock
// (tests/testing/fake_clock.h) instead of sleeping (style.md §2.1: TF Serving's FakeClockEnv).
#pragma once

#include "absl/time/time.h"

#include "core/base/mutex.h"

namespace invad::core {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Waits on `cv` (with `mu` held, released while waiting) until notified or until `deadline` by
  // this clock. May return early (spuriously); callers re-check their condition.
  virtual void WaitUntil(CondVar& cv, Mutex& mu, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
};

// absl::Now() and condition-variable timeouts.
Clock& RealClock();

}  // namespace invad::core
