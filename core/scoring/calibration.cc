#include "core/scoring/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

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
  switch (rule) {
    case ScoreRule::kMaxNorm:
      return "max_norm";
    case ScoreRule::kPositionalMaxNorm:
      return "positional_max_norm";
    case ScoreRule::kDiffSqNorm:
      break;
  }
  return "diff_sq_norm";
}

absl::StatusOr<ScoreRule> ParseScoreRule(absl::string_view name) {
  if (name == "positional_max_norm") return ScoreRule::kPositionalMaxNorm;
  if (name == "max_norm") return ScoreRule::kMaxNorm;
  if (name == "diff_sq_norm") return ScoreRule::kDiffSqNorm;
  return absl::InvalidArgumentError(absl::StrCat(
      "score rule '", name, "': expected positional_max_norm, max_norm or diff_sq_norm"));
}

absl::StatusOr<PositionStats> FitPositionStats(absl::Span<const float> maps, int64_t count,
                                               int64_t height, int64_t width) {
  if (count < 2 || height < 1 || width < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("position statistics need >= 2 maps of >= 1×1 locations, got ", count, " of ",
                     height, "×", width));
  }
  const int64_t hw = height * width;
  if (static_cast<int64_t>(maps.size()) != count * hw) {
    return absl::InvalidArgumentError(absl::StrCat("position statistics: ", maps.size(),
                                                   " map values for ", count, " maps of ", hw));
  }
  std::vector<double> mean(hw, 0.0), var(hw, 0.0);
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t p = 0; p < hw; ++p) {
      const double v = maps[i * hw + p];
      if (!std::isfinite(v))
        return absl::InvalidArgumentError("position statistics: a map value is not finite");
      mean[p] += v;
    }
  }
  const double n = static_cast<double>(count);
  for (int64_t p = 0; p < hw; ++p) {
    mean[p] /= n;
    total += mean[p];
  }
  total /= static_cast<double>(hw);
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t p = 0; p < hw; ++p) {
      const double d = maps[i * hw + p] - mean[p];
      var[p] += d * d;
    }
  }
  double pooled = 0.0;  // the mean of the locations' variances
  for (int64_t p = 0; p < hw; ++p) {
    var[p] /= n - 1.0;
    pooled += var[p];
  }
  pooled /= static_cast<double>(hw);
  const double floor = std::max(1e-6 * std::fabs(total), 1e-12);
  PositionStats out;
  out.height = height;
  out.width = width;
  out.center.resize(hw);
  out.scale.resize(hw);
  for (int64_t p = 0; p < hw; ++p) {
    out.center[p] = static_cast<float>(mean[p]);
    out.scale[p] = static_cast<float>(std::max(std::sqrt(0.5 * var[p] + 0.5 * pooled), floor));
  }
  return out;
}

double PositionalMax(const PositionStats& p, const float* norm_map) {
  double best = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < p.center.size(); ++i)
    best = std::max(best, (static_cast<double>(norm_map[i]) - p.center[i]) / p.scale[i]);
  return best;
}

double CalibratedScore(const Calibration& cal, const LatentScore& s, const float* norm_map) {
  switch (cal.rule) {
    case ScoreRule::kMaxNorm:
      return (s.max_norm - cal.max_norm.center) / cal.max_norm.scale;
    case ScoreRule::kPositionalMaxNorm:
      if (norm_map == nullptr || cal.position.empty())
        return std::numeric_limits<double>::quiet_NaN();
      return (PositionalMax(cal.position, norm_map) - cal.positional_max.center) /
             cal.positional_max.scale;
    case ScoreRule::kDiffSqNorm:
      break;
  }
  return (s.diff - cal.diff.center) / cal.diff.scale +
         (s.sq_norm - cal.sq_norm.center) / cal.sq_norm.scale;
}

absl::StatusOr<Calibration> Calibrate(absl::Span<const LatentScore> normal_scores,
                                      absl::Span<const float> normal_maps,
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
  const PositionStats& pos = options.position;
  const int64_t hw = pos.height * pos.width;
  if (options.rule == ScoreRule::kPositionalMaxNorm && pos.empty()) {
    return absl::InvalidArgumentError(
        "score rule positional_max_norm needs position statistics (normal reference images)");
  }
  if (!pos.empty() && (static_cast<int64_t>(pos.center.size()) != hw ||
                       static_cast<int64_t>(pos.scale.size()) != hw ||
                       normal_maps.size() != normal_scores.size() * static_cast<size_t>(hw))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "position statistics of ", pos.height, "×", pos.width, " locations do not match ",
        normal_maps.size(), " map values for ", normal_scores.size(), " images"));
  }
  std::vector<double> diffs, norms, maxima, positional;
  for (const LatentScore& s : normal_scores) {
    diffs.push_back(s.diff);
    norms.push_back(s.sq_norm);
    maxima.push_back(s.max_norm);
  }
  Calibration cal;
  cal.rule = options.rule;
  if (!pos.empty()) {
    for (size_t i = 0; i < normal_scores.size(); ++i)
      positional.push_back(PositionalMax(pos, normal_maps.data() + i * hw));
    cal.position = pos;
    cal.positional_max = RobustStats(positional);
  }
  cal.diff = RobustStats(diffs);
  cal.sq_norm = RobustStats(norms);
  cal.max_norm = RobustStats(maxima);
  cal.target_fpr = options.target_fpr;
  cal.pixel_quantile = options.pixel_quantile;
  cal.num_images = static_cast<int>(normal_scores.size());
  std::vector<double> scores;
  for (size_t i = 0; i < normal_scores.size(); ++i) {
    scores.push_back(CalibratedScore(cal, normal_scores[i],
                                     pos.empty() ? nullptr : normal_maps.data() + i * hw));
  }
  cal.image_threshold = Quantile(std::move(scores), 1.0 - options.target_fpr);
  cal.pixel_threshold = Quantile(std::move(map_values), options.pixel_quantile);
  return cal;
}

}  // namespace invad::core
