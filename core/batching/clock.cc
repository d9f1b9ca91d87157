#include "core/batching/clock.h"

#include <chrono>

#include "absl/time/clock.h"

namespace invad::core {
namespace {

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void WaitUntil(CondVar& cv, Mutex& mu, absl::Time deadline) override {
    if (deadline == absl::InfiniteFuture()) {
      cv.wait(mu);
    } else {
      cv.wait_until(mu, absl::ToChronoTime(deadline));
    }
  }
};

}  // namespace

Clock& RealClock() {
  static SystemClock* clock = new SystemClock();
  return *clock;
}

}  // namespace invad::core
