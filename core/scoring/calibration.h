// File: core/scoring/calibration.h
//
// Online scoring calibrated on held-out normal images (method.md §5.4). The reference fuses Diff
// and NLL by min-max over each category's *test set*, which no online system can know; we use
// robust z-scores from normal validation images instead, under one of two rules:
//
//   kDiffSqNorm: score = (Diff − median_D)/σ_D + (‖z_T‖² − median_N)/σ_N   (the reference's terms)
//   kMaxNorm:    score = (max n − median_M)/σ_M                            (the map's peak)
//
// with σ = 1.4826·MAD and a floor on σ so a degenerate set (MAD = 0) cannot divide by zero. A
// calibration holds all three statistics; the rule picks the terms. kMaxNorm is invad-train's
// default (docs/accuracy.md: on two test splits it ranks images better than the fused terms, whose
// ‖z_T‖² term sums every location's noise); a manifest without a rule means kDiffSqNorm. The image
// threshold is the (1 − target_fpr) quantile of the validation scores; the pixel threshold is a
// high quantile of the pooled validation map values.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "core/scoring/scoring.h"

namespace invad::core {

struct RobustStat {
  double center = 0.0;  // median
  double scale = 1.0;   // 1.4826·MAD, floored (see RobustStats)
};

// Median and scale of `values` (non-empty). scale = 1.4826·MAD; if that is below
// floor = max(1e-6·|median|, 1e-12), the scale falls back to 1.2533·mean|x − median| (the
// normal-consistent mean absolute deviation), and then to the floor itself.
RobustStat RobustStats(absl::Span<const double> values);

// Quantile with linear interpolation between order statistics (numpy's default), q in [0, 1].
double Quantile(std::vector<double> values, double q);

enum class ScoreRule { kDiffSqNorm = 0, kMaxNorm = 1 };

// "diff_sq_norm" / "max_norm" (flags, reports) and back; InvalidArgument names the choices.
const char* ScoreRuleName(ScoreRule rule);
absl::StatusOr<ScoreRule> ParseScoreRule(absl::string_view name);

struct Calibration {
  ScoreRule rule = ScoreRule::kDiffSqNorm;
  RobustStat diff;
  RobustStat sq_norm;
  RobustStat max_norm;       // scale 0 = not calibrated (manifests written before the rule existed)
  double target_fpr = 0.01;  // normal false-positive rate the image threshold aims at
  double image_threshold = 0.0;  // on the calibrated score
  double pixel_quantile = 0.999;
  double pixel_threshold = 0.0;  // on the map values (norm of z_T at a location)
  int num_images = 0;            // validation images behind these statistics
  // The smallest FPR step these images can resolve: 1/num_images.
  double fpr_resolution() const { return num_images > 0 ? 1.0 / num_images : 1.0; }
};

double CalibratedScore(const Calibration& cal, const LatentScore& s);

struct CalibrationOptions {
  ScoreRule rule = ScoreRule::kMaxNorm;
  // Normal false-positive rate for the image threshold; in (0, 1).
  double target_fpr = 0.01;
  // Quantile of the pooled normal map values used as the pixel threshold; in (0, 1].
  double pixel_quantile = 0.999;
};

// Calibrates from the scores of normal validation images and their map values (any resolution,
// pooled). Requires >= 2 images and non-empty `map_values`.
absl::StatusOr<Calibration> Calibrate(absl::Span<const LatentScore> normal_scores,
                                      std::vector<double> map_values,
                                      const CalibrationOptions& options = {});

}  // namespace invad::core
