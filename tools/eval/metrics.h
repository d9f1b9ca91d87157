// File: tools/eval/metrics.h
//
// Anomaly-detection metrics as the field reports them (MVTec AD protocol), computed exactly — no
// histograms or threshold grids:
//   - AUROC: area under the ROC curve; tied scores count one half (Mann-Whitney), as sklearn's
//     roc_auc_score.
//   - AP: average precision, sum over distinct thresholds of (R_n − R_{n−1})·P_n, as sklearn's
//     average_precision_score.
//   - F1max: the best F1 over all distinct thresholds, with its threshold.
//   - AUPRO: the per-region overlap curve (mean over ground-truth connected components of the
//     fraction of each component above the threshold) against the pixel FPR, integrated by the
//     trapezoid rule up to FPR 0.3 (interpolating at 0.3) and divided by 0.3.
// Labels are 0 (normal) / 1 (anomalous). Degenerate inputs (one class only) return NaN.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace invad::tools {

double Auroc(absl::Span<const double> scores, absl::Span<const int> labels);
double AveragePrecision(absl::Span<const double> scores, absl::Span<const int> labels);

struct F1Max {
  double f1 = 0.0;
  double threshold = 0.0;  // predict anomalous when score >= threshold
};
F1Max MaxF1(absl::Span<const double> scores, absl::Span<const int> labels);

// The three above from one sort of the scores (what an evaluation of 13 M pixels wants).
struct RankingMetrics {
  double auroc = 0.0;
  double ap = 0.0;
  F1Max f1;
};
RankingMetrics Ranking(absl::Span<const double> scores, absl::Span<const int> labels);

// `scores` and `regions` are pixel arrays of equal length (all images concatenated). regions[i] is
// 0 for a normal pixel, or the 1-based id of the ground-truth connected component it belongs to
// (ids unique across images).
double Aupro(absl::Span<const float> scores, absl::Span<const int32_t> regions,
             double fpr_limit = 0.3);

}  // namespace invad::tools
