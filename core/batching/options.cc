#include "core/batching/options.h"

#include "absl/strings/str_cat.h"

namespace invad::core {

absl::Status SchedulerOptions::Validate() const {
  auto bad = [](const char* field, auto value, const char* want) {
    return absl::InvalidArgumentError(absl::StrCat(field, " = ", value, ": ", want));
  };
  if (max_batch_size < 1) return bad("max_batch_size", max_batch_size, "must be >= 1");
  if (max_queue_delay_us < 0) return bad("max_queue_delay_us", max_queue_delay_us, "must be >= 0");
  for (int p : preferred_batch_sizes) {
    if (p < 1 || p > max_batch_size)
      return bad("preferred_batch_sizes", p, "each must be in [1, max_batch_size]");
  }
  if (max_queue_size < 1) return bad("max_queue_size", max_queue_size, "must be >= 1");
  if (default_timeout <= absl::ZeroDuration())
    return bad("default_timeout", absl::FormatDuration(default_timeout), "must be > 0");
  if (instances < 1 || instances > 64) return bad("instances", instances, "must be in [1, 64]");
  return absl::OkStatus();
}

}  // namespace invad::core
