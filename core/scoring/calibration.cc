#include "core/scoring/calibration.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace invad::core {

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(lo);
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double v_lo = values[lo];
  if (frac == 0.0 || lo + 1 >= values.size()) return v_lo;
  const double v_hi = *std::min_element(values.begin() + lo + 1, values.end());
  return v_lo + frac * (v_hi - v_lo);
}

RobustStat RobustStats(absl::Span<const double> values) {
  RobustStat s;
  if (values.empty()) return s;
  std::vector<double> v(values.begin(), values.end());
  s.center = Quantile(v, 0.5);
  std::vector<double> dev(v.size());
  double mean_abs = 0.0;
  for (size_t i = 0; i < v.size(); ++i) {
    dev[i] = std::fabs(v[i] - s.center);
    mean_abs += dev[i];
  }
  mean_abs /= static_cast<double>(v.size());
  const double floor = std::max(1e-6 * std::fabs(s.center), 1e-12);
  s.scale = 1.4826 * Quantile(std::move(dev), 0.5);
  if (s.scale < floor) s.scale = std::max(1.2533 * mean_abs, floor);
  return s;
}

const char* ScoreRuleName(ScoreRule rule) {
  return rule == ScoreRule::kMaxNorm ? "max_norm" : "diff_sq_norm";
}

absl::StatusOr<ScoreRule> ParseScoreRule(absl::string_view name) {
  if (name == "max_norm") return ScoreRule::kMaxNorm;
  if (name == "diff_sq_norm") return ScoreRule::kDiffSqNorm;
  return absl::InvalidArgumentError(
      absl::StrCat("score rule '", name, "': expected max_norm or diff_sq_norm"));
}

double CalibratedScore(const Calibration& cal, const LatentScore& s) {
  if (cal.rule == ScoreRule::kMaxNorm)
    return (s.max_norm - cal.max_norm.center) / cal.max_norm.scale;
  return (s.diff - cal.diff.center) / cal.diff.scale +
         (s.sq_norm - cal.sq_norm.center) / cal.sq_norm.scale;
}

absl::StatusOr<Calibration> Calibrate(absl::Span<const LatentScore> normal_scores,
                                      std::vector<double> map_values,
                                      const CalibrationOptions& options) {
  if (normal_scores.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("calibration needs at least 2 normal images, got ", normal_scores.size()));
  }
  if (map_values.empty()) return absl::InvalidArgumentError("calibration needs map values");
  if (!(options.target_fpr > 0.0 && options.target_fpr < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_fpr must be in (0, 1), got ", options.target_fpr));
  }
  if (!(options.pixel_quantile > 0.0 && options.pixel_quantile <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pixel_quantile must be in (0, 1], got ", options.pixel_quantile));
  }
  std::vector<double> diffs, norms, maxima;
  for (const LatentScore& s : normal_scores) {
    diffs.push_back(s.diff);
    norms.push_back(s.sq_norm);
    maxima.push_back(s.max_norm);
  }
  Calibration cal;
  cal.rule = options.rule;
  cal.diff = RobustStats(diffs);
  cal.sq_norm = RobustStats(norms);
  cal.max_norm = RobustStats(maxima);
  cal.target_fpr = options.target_fpr;
  cal.pixel_quantile = options.pixel_quantile;
  cal.num_images = static_cast<int>(normal_scores.size());
  std::vector<double> scores;
  for (const LatentScore& s : normal_scores) scores.push_back(CalibratedScore(cal, s));
  cal.image_threshold = Quantile(std::move(scores), 1.0 - options.target_fpr);
  cal.pixel_threshold = Quantile(std::move(map_values), options.pixel_quantile);
  return cal;
}

}  // namespace invad::core
