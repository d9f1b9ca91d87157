#include "tools/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace invad::tools {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Indices sorted by descending score.
template <typename T>
std::vector<size_t> Descending(absl::Span<const T> scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

// The (fp, tp) counts at each distinct threshold, descending, as sklearn's _binary_clf_curve.
struct Curve {
  std::vector<double> fp, tp, threshold;
  double positives = 0, negatives = 0;
};

Curve BinaryCurve(absl::Span<const double> scores, absl::Span<const int> labels) {
  Curve c;
  const std::vector<size_t> order = Descending(scores);
  double fp = 0, tp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    (labels[i] ? tp : fp) += 1;
    if (k + 1 == order.size() || scores[order[k + 1]] != scores[i]) {
      c.fp.push_back(fp);
      c.tp.push_back(tp);
      c.threshold.push_back(scores[i]);
    }
  }
  c.positives = tp;
  c.negatives = fp;
  return c;
}

}  // namespace

double Auroc(absl::Span<const double> scores, absl::Span<const int> labels) {
  const Curve c = BinaryCurve(scores, labels);
  if (c.positives == 0 || c.negatives == 0) return kNaN;
  double area = 0, prev_fp = 0, prev_tp = 0;
  for (size_t k = 0; k < c.fp.size(); ++k) {
    area += (c.fp[k] - prev_fp) * (c.tp[k] + prev_tp) / 2;  // trapezoid: ties count one half
    prev_fp = c.fp[k];
    prev_tp = c.tp[k];
  }
  return area / (c.positives * c.negatives);
}

double AveragePrecision(absl::Span<const double> scores, absl::Span<const int> labels) {
  const Curve c = BinaryCurve(scores, labels);
  if (c.positives == 0) return kNaN;
  double ap = 0, prev_recall = 0;
  for (size_t k = 0; k < c.fp.size(); ++k) {
    const double recall = c.tp[k] / c.positives, precision = c.tp[k] / (c.tp[k] + c.fp[k]);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
  }
  return ap;
}

F1Max MaxF1(absl::Span<const double> scores, absl::Span<const int> labels) {
  const Curve c = BinaryCurve(scores, labels);
  F1Max best;
  if (c.positives == 0) {
    best.f1 = kNaN;
    return best;
  }
  for (size_t k = 0; k < c.fp.size(); ++k) {
    const double p = c.tp[k] / (c.tp[k] + c.fp[k]), r = c.tp[k] / c.positives;
    const double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
    if (f1 > best.f1) best = {f1, c.threshold[k]};
  }
  return best;
}

double Aupro(absl::Span<const float> scores, absl::Span<const int32_t> regions, double fpr_limit) {
  std::unordered_map<int32_t, double> region_size;
  double negatives = 0;
  for (int32_t r : regions) {
    if (r == 0) {
      negatives += 1;
    } else {
      region_size[r] += 1;
    }
  }
  if (region_size.empty() || negatives == 0) return kNaN;
  const double k = static_cast<double>(region_size.size());
  const std::vector<size_t> order = Descending(scores);
  // Sweep thresholds from high to low; PRO = (1/K) Σ_k covered_k / size_k grows by 1/(K·size_k) per
  // positive pixel, FPR by 1/negatives per normal pixel. Tied scores move together.
  double fpr = 0, pro = 0, prev_fpr = 0, prev_pro = 0, area = 0;
  for (size_t n = 0; n < order.size(); ++n) {
    const size_t i = order[n];
    if (regions[i] == 0) {
      fpr += 1 / negatives;
    } else {
      pro += 1 / (k * region_size[regions[i]]);
    }
    if (n + 1 < order.size() && scores[order[n + 1]] == scores[i]) continue;
    if (fpr >= fpr_limit) {  // interpolate the segment's end at the limit
      const double t = fpr > prev_fpr ? (fpr_limit - prev_fpr) / (fpr - prev_fpr) : 0.0;
      const double pro_at_limit = prev_pro + t * (pro - prev_pro);
      area += (fpr_limit - prev_fpr) * (prev_pro + pro_at_limit) / 2;
      return area / fpr_limit;
    }
    area += (fpr - prev_fpr) * (prev_pro + pro) / 2;
    prev_fpr = fpr;
    prev_pro = pro;
  }
  return area / fpr_limit;  // only when every normal pixel fits under the limit (fpr_limit >= 1)
}

}  // namespace invad::tools
