#include "core/batching/policy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/batching/options.h"
#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::StatusIs;

TEST(DecideTest, Table) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 5000;
  const absl::Time t0 = absl::FromUnixSeconds(100);
  const absl::Duration ms = absl::Milliseconds(1);
  struct Row {
    const char* what;
    std::vector<int> preferred;
    int queued;
    absl::Duration waited;  // of the oldest
    bool draining;
    int dispatch;
    absl::Time recheck;
  };
  const absl::Time never = absl::InfiniteFuture();
  const Row rows[] = {
      {"empty queue waits forever", {}, 0, 0 * ms, false, 0, never},
      {"partial batch waits for the delay", {}, 3, 4 * ms, false, 0, t0 + 5 * ms},
      {"partial batch flushed at the delay", {}, 3, 5 * ms, false, 3, never},
      {"full batch goes at once", {}, 8, 0 * ms, false, 8, never},
      {"over-full queue takes max_batch_size", {}, 20, 0 * ms, false, 8, never},
      {"largest preferred size <= queued goes at once", {2, 4}, 5, 0 * ms, false, 4, never},
      {"below every preferred size waits", {4}, 3, 1 * ms, false, 0, t0 + 5 * ms},
      {"draining never waits", {}, 3, 0 * ms, true, 3, never},
      {"draining takes everything up to max", {4}, 6, 0 * ms, true, 6, never},
  };
  for (const Row& r : rows) {
    SchedulerOptions opt = o;
    opt.preferred_batch_sizes = r.preferred;
    const BatchDecision d = Decide(opt, r.queued, t0, t0 + r.waited, r.draining);
    EXPECT_EQ(d.dispatch, r.dispatch) << r.what;
    EXPECT_EQ(d.recheck_at, r.recheck) << r.what;
  }
  o.max_queue_delay_us = 0;
  EXPECT_EQ(Decide(o, 1, t0, t0).dispatch, 1) << "zero delay dispatches at once";
}

TEST(AdmitBetweenStepsTest, FillsUpToTheBatchLimit) {
  SchedulerOptions o;
  o.max_batch_size = 8;
  EXPECT_EQ(AdmitBetweenSteps(o, 0, 3), 0);
  EXPECT_EQ(AdmitBetweenSteps(o, 2, 3), 2);
  EXPECT_EQ(AdmitBetweenSteps(o, 10, 3), 5);
  EXPECT_EQ(AdmitBetweenSteps(o, 10, 8), 0);
}

TEST(SchedulerOptionsTest, ValidateNamesTheField) {
  EXPECT_OK(SchedulerOptions{}.Validate());
  SchedulerOptions o;
  o.max_batch_size = 0;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "max_batch_size"));
  o = {};
  o.preferred_batch_sizes = {32};
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "preferred_batch_sizes"));
  o = {};
  o.max_queue_size = 0;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "max_queue_size"));
  o = {};
  o.max_queue_delay_us = -1;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "max_queue_delay_us"));
  o = {};
  o.default_timeout = absl::ZeroDuration();
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "default_timeout"));
  o = {};
  o.instances = 0;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, "instances"));
}

}  // namespace
}  // namespace invad::core
