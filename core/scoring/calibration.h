// File: core/scoring/calibration.h
//
// Online scoring calibrated on held-out normal images (method.md §5.4). The reference fuses Diff
// and NLL by min-max over each category's *test set*, which no online system can know; we use
// robust z-scores from normal validation images instead, under one of two rules:
//
//   kDiffSqNorm: score = (Diff − median_D)/σ_D + (‖z_T‖² − median_N)/σ_N   (the reference's terms)
//   kMaxNorm:    score = (max n − median_M)/σ_M                            (the map's peak)
//   kPositionalMaxNorm: score = (max over (i,j) of (n(i,j) − μ(i,j))/s(i,j) − median_P)/σ_P
//
// where μ and s describe where the model's normal maps vary (PositionStats, fitted on normal
// reference images, the training images: the border cells, which see padding and partial
// lattices, and a posed part's rims vary more than the interior)
// with σ = 1.4826·MAD and a floor on σ so a degenerate set (MAD = 0) cannot divide by zero. A
// calibration holds every statistic it has images for; the rule picks the terms.
// kPositionalMaxNorm is invad-train's default (docs/accuracy.md: on two test splits it ranks images
// better than kMaxNorm, which ranks them better than the fused terms, whose ‖z_T‖² term sums every
// location's noise); a manifest without a rule means kDiffSqNorm. The image
// threshold is the (1 − target_fpr) quantile of the validation scores; the pixel threshold is a
// high quantile of the pooled validation map values.
#pragma once

#include <cstdint>
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

enum class ScoreRule { kDiffSqNorm = 0, kMaxNorm = 1, kPositionalMaxNorm = 2 };

// "diff_sq_norm" / "max_norm" / "positional_max_norm" (flags, reports) and back; InvalidArgument
// names the choices.
const char* ScoreRuleName(ScoreRule rule);
absl::StatusOr<ScoreRule> ParseScoreRule(absl::string_view name);

// Per latent location (row-major, height × width) of normal norm maps: center = the mean,
// scale = sqrt(½·the location's variance + ½·the mean of every location's variance), so that a
// location's few samples cannot make its scale tiny (shrunk toward the pooled scale).
struct PositionStats {
  int64_t height = 0, width = 0;
  std::vector<float> center, scale;
  bool empty() const { return center.empty(); }
};

// Fits PositionStats on `count` normal norm maps of height × width each, back to back in `maps`.
// Needs count >= 2 and maps.size() == count·height·width; scales are floored at
// max(1e-6·|mean over the locations|, 1e-12).
absl::StatusOr<PositionStats> FitPositionStats(absl::Span<const float> maps, int64_t count,
                                               int64_t height, int64_t width);

// max over locations of (map − center)/scale; `norm_map` holds p.height·p.width values.
double PositionalMax(const PositionStats& p, const float* norm_map);

struct Calibration {
  ScoreRule rule = ScoreRule::kDiffSqNorm;
  RobustStat diff;
  RobustStat sq_norm;
  RobustStat max_norm;     // scale 0 = not calibrated (manifests written before the rule existed)
  PositionStats position;  // empty = none (manifests written before the rule existed)
  RobustStat positional_max;     // of PositionalMax over the validation images; scale 0 = none
  double target_fpr = 0.01;      // normal false-positive rate the image threshold aims at
  double image_threshold = 0.0;  // on the calibrated score
  double pixel_quantile = 0.999;
  double pixel_threshold = 0.0;  // on the map values (norm of z_T at a location)
  int num_images = 0;            // validation images behind these statistics
  // The smallest FPR step these images can resolve: 1/num_images.
  double fpr_resolution() const { return num_images > 0 ? 1.0 / num_images : 1.0; }
};

// The image score under cal.rule. `norm_map`: the image's latent norm map (ScoreLatent's), needed
// under kPositionalMaxNorm (NaN without it), unused otherwise.
double CalibratedScore(const Calibration& cal, const LatentScore& s, const float* norm_map);

struct CalibrationOptions {
  // kMaxNorm needs no reference images; invad-train asks for kPositionalMaxNorm.
  ScoreRule rule = ScoreRule::kMaxNorm;
  // Normal false-positive rate for the image threshold; in (0, 1).
  double target_fpr = 0.01;
  // Quantile of the pooled normal map values used as the pixel threshold; in (0, 1].
  double pixel_quantile = 0.999;
  // Fitted on normal reference images other than the validation images (the training images).
  // Needed under kPositionalMaxNorm; when given, its statistics are calibrated under every rule.
  PositionStats position = {};
};

// Calibrates from the scores of normal validation images, their latent norm maps (back to back,
// options.position's height × width each; needed when options.position is set) and their map
// values (any resolution, pooled). Requires >= 2 images and non-empty `map_values`.
absl::StatusOr<Calibration> Calibrate(absl::Span<const LatentScore> normal_scores,
                                      absl::Span<const float> normal_maps,
                                      std::vector<double> map_values,
                                      const CalibrationOptions& options = {});

}  // namespace invad::core
