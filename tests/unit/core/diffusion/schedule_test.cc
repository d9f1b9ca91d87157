#include "core/diffusion/schedule.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"

namespace invad::core {
namespace {

using ::invad::testing::StatusIs;
using ::testing::ElementsAreArray;

// Expected lists come from the official respacing rule (accumulated float stride, Python round),
// method.md §4.2. K = 21 differs from round(i·stride) at τ_10 = 499.
struct TauCase {
  int k;
  std::vector<int> taus;
};

class SpaceTimestepsTest : public ::testing::TestWithParam<TauCase> {};

TEST_P(SpaceTimestepsTest, MatchesOfficialRespacing) {
  auto taus = SpaceTimesteps(1000, GetParam().k);
  ASSERT_OK(taus);
  EXPECT_THAT(*taus, ElementsAreArray(GetParam().taus));
}

INSTANTIATE_TEST_SUITE_P(
    K, SpaceTimestepsTest,
    ::testing::Values(
        TauCase{1, {0}}, TauCase{2, {0, 999}}, TauCase{3, {0, 500, 999}},
        TauCase{4, {0, 333, 666, 999}}, TauCase{5, {0, 250, 500, 749, 999}},
        TauCase{6, {0, 200, 400, 599, 799, 999}}, TauCase{7, {0, 166, 333, 500, 666, 832, 999}},
        TauCase{8, {0, 143, 285, 428, 571, 714, 856, 999}},
        TauCase{9, {0, 125, 250, 375, 500, 624, 749, 874, 999}},
        TauCase{10, {0, 111, 222, 333, 444, 555, 666, 777, 888, 999}},
        TauCase{21, {0,   50,  100, 150, 200, 250, 300, 350, 400, 450, 499,
                     549, 599, 649, 699, 749, 799, 849, 899, 949, 999}},
        TauCase{31, {0,   33,  67,  100, 133, 166, 200, 233, 266, 300, 333, 366, 400, 433, 466, 500,
                     533, 566, 599, 633, 666, 699, 733, 766, 799, 832, 866, 899, 932, 966, 999}},
        TauCase{100, {0,   10,  20,  30,  40,  50,  61,  71,  81,  91,  101, 111, 121, 131, 141,
                      151, 161, 172, 182, 192, 202, 212, 222, 232, 242, 252, 262, 272, 283, 293,
                      303, 313, 323, 333, 343, 353, 363, 373, 383, 394, 404, 414, 424, 434, 444,
                      454, 464, 474, 484, 494, 505, 515, 525, 535, 545, 555, 565, 575, 585, 595,
                      605, 616, 626, 636, 646, 656, 666, 676, 686, 696, 706, 716, 727, 737, 747,
                      757, 767, 777, 787, 797, 807, 817, 827, 838, 848, 858, 868, 878, 888, 898,
                      908, 918, 928, 938, 949, 959, 969, 979, 989, 999}}));

TEST(SpaceTimestepsTest, RejectsOutOfRangeK) {
  EXPECT_THAT(SpaceTimesteps(1000, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SpaceTimesteps(1000, 1001), StatusIs(absl::StatusCode::kInvalidArgument));
}

void ExpectRel(double got, double want, double rel) {
  EXPECT_LE(std::fabs(got - want), rel * std::fabs(want)) << "got " << got << " want " << want;
}

TEST(NoiseScheduleTest, AlphaBarAtKeyTimesteps) {
  auto s = NoiseSchedule::Linear();
  ASSERT_OK(s);
  ASSERT_EQ(s->num_timesteps(), 1000);
  // float64 values of numpy's cumprod(1 − linspace(1e-4, 0.02, 1000)).
  ExpectRel(s->alpha_bar(0), 0.9999, 1e-12);
  ExpectRel(s->alpha_bar(333), 0.31862485496644566, 1e-12);
  ExpectRel(s->alpha_bar(500), 0.07779665836502389, 1e-12);
  ExpectRel(s->alpha_bar(666), 0.010984230178593665, 1e-12);
  ExpectRel(s->alpha_bar(999), 4.035829765375676e-05, 1e-12);
}

TEST(NoiseScheduleTest, RejectsBadBetas) {
  EXPECT_THAT(NoiseSchedule::Linear(1000, 0.0, 0.02), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NoiseSchedule::Linear(1000, 0.03, 0.02),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NoiseSchedule::Linear(1, 1e-4, 0.02), StatusIs(absl::StatusCode::kInvalidArgument));
}

// method.md §4.3's K = 3 table, printed to ~10 significant digits: relative 1e-9.
TEST(InversionPlanTest, K3MatchesMethodTable) {
  auto s = NoiseSchedule::Linear();
  ASSERT_OK(s);
  auto plan = InversionPlan(*s, 3);
  ASSERT_OK(plan);
  ASSERT_EQ(plan->size(), 3u);
  struct Row {
    int t;
    double ab, sqrt_recip, sqrt_recip_m1, ab_next, sqrt_next, sqrt_one_minus_next;
  };
  const Row rows[] = {
      {0, 0.9999, 1.000050004, 0.01000050004, 0.07779665837, 0.2789205234, 0.960314189},
      {500, 0.07779665837, 3.585250694, 3.442967113, 4.035829765e-5, 0.006352818088, 0.9999798206},
      {999, 4.035829765e-5, 157.4104573, 157.4072808, 0.0, 0.0, 1.0},
  };
  for (int i = 0; i < 3; ++i) {
    const DdimCoefficients& c = (*plan)[i];
    const Row& r = rows[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(c.timestep, r.t);
    ExpectRel(c.alpha_bar, r.ab, 1e-9);
    ExpectRel(c.sqrt_recip_alpha_bar, r.sqrt_recip, 1e-9);
    ExpectRel(c.sqrt_recip_m1_alpha_bar, r.sqrt_recip_m1, 1e-9);
    if (r.ab_next == 0.0) {
      EXPECT_EQ(c.alpha_bar_target, 0.0);  // the last step maps to ᾱ = 0 exactly
      EXPECT_EQ(c.sqrt_alpha_bar_target, 0.0);
      EXPECT_EQ(c.sqrt_one_minus_alpha_bar_target, 1.0);
    } else {
      ExpectRel(c.alpha_bar_target, r.ab_next, 1e-9);
      ExpectRel(c.sqrt_alpha_bar_target, r.sqrt_next, 1e-9);
      ExpectRel(c.sqrt_one_minus_alpha_bar_target, r.sqrt_one_minus_next, 1e-9);
    }
  }
}

TEST(InversionPlanTest, K4AlphaBars) {
  auto s = NoiseSchedule::Linear();
  auto plan = InversionPlan(*s, 4);
  ASSERT_OK(plan);
  const double ab[] = {0.9999, 0.318624855, 0.01098423018, 4.035829765e-5};
  for (int i = 0; i < 4; ++i) ExpectRel((*plan)[i].alpha_bar, ab[i], 5e-9);
  EXPECT_EQ(plan->back().alpha_bar_target, 0.0);
}

TEST(InversionPlanTest, PaperModeStopsAtLastPointWithoutGoingToZero) {
  auto s = NoiseSchedule::Linear();
  auto plan = InversionPlan(*s, 3, ScheduleMode::kPaper);
  ASSERT_OK(plan);
  ASSERT_EQ(plan->size(), 3u);
  EXPECT_EQ((*plan)[0].timestep, 0);
  EXPECT_EQ((*plan)[1].timestep, 333);
  EXPECT_EQ((*plan)[2].timestep, 666);
  EXPECT_DOUBLE_EQ((*plan)[2].alpha_bar_target, s->alpha_bar(999));
}

TEST(InversionPlanTest, KOneAndTwo) {
  auto s = NoiseSchedule::Linear();
  auto k1 = InversionPlan(*s, 1);
  ASSERT_OK(k1);
  ASSERT_EQ(k1->size(), 1u);
  EXPECT_EQ((*k1)[0].timestep, 0);
  EXPECT_EQ((*k1)[0].alpha_bar_target, 0.0);
  auto k2 = InversionPlan(*s, 2);
  ASSERT_OK(k2);
  EXPECT_EQ((*k2)[0].timestep, 0);
  EXPECT_DOUBLE_EQ((*k2)[0].alpha_bar_target, s->alpha_bar(999));
  EXPECT_EQ((*k2)[1].timestep, 999);
  EXPECT_EQ((*k2)[1].alpha_bar_target, 0.0);
}

TEST(InversionPlanTest, RejectsKOutsideCoreRange) {
  auto s = NoiseSchedule::Linear();
  EXPECT_THAT(InversionPlan(*s, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(InversionPlan(*s, 51), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(InversionPlan(*s, 50));
}

}  // namespace
}  // namespace invad::core
