// File: core/batching/policy.h
//
// The batching decision as pure functions: no locks, no clock reads, no threads (table-tested in
// tests/unit/core/batching/policy_test.cc). The scheduler calls them with the lock held.
#pragma once

#include "absl/time/time.h"

#include "core/batching/options.h"

namespace invad::core {

struct BatchDecision {
  int dispatch = 0;                                // > 0: take this many tasks now
  absl::Time recheck_at = absl::InfiniteFuture();  // dispatch == 0: decide again then
};

// For an idle instance with `queued` tasks, the oldest enqueued at `oldest_enqueued`:
//   - a full batch (max_batch_size) goes at once;
//   - else the largest preferred batch size <= queued goes at once;
//   - else everything queued goes once the oldest has waited max_queue_delay;
//   - else wait until then. `draining`: no waiting, everything queued goes.
BatchDecision Decide(const SchedulerOptions& options, int queued, absl::Time oldest_enqueued,
                     absl::Time now, bool draining = false);

// Step-level mode, between two denoiser calls of a busy instance with `active` tasks in flight:
// how many queued tasks join now (the instance is busy anyway, so nobody waits for company).
int AdmitBetweenSteps(const SchedulerOptions& options, int queued, int active);

}  // namespace invad::core
