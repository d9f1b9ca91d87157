#include "core/batching/policy.h"

#include <algorithm>

namespace invad::core {

BatchDecision Decide(const SchedulerOptions& o, int queued, absl::Time oldest_enqueued,
                     absl::Time now, bool draining) {
  BatchDecision d;
  if (queued <= 0) return d;
  if (queued >= o.max_batch_size) {
    d.dispatch = o.max_batch_size;
    return d;
  }
  int preferred = 0;
  for (int p : o.preferred_batch_sizes) {
    if (p <= queued) preferred = std::max(preferred, p);
  }
  if (preferred > 0 && !draining) {
    d.dispatch = preferred;
    return d;
  }
  const absl::Time due = oldest_enqueued + absl::Microseconds(o.max_queue_delay_us);
  if (draining || now >= due) {
    d.dispatch = queued;
    return d;
  }
  d.recheck_at = due;
  return d;
}

int AdmitBetweenSteps(const SchedulerOptions& o, int queued, int active) {
  return std::max(0, std::min(queued, o.max_batch_size - active));
}

}  // namespace invad::core
