// File: tools/eval/evaluator.h
//
// invad-eval as a library: scores an MVTec-layout test split through the core (no server) and
// computes the field's metrics (method.md §5.3, with the exact computations of metrics.h):
// per category, per difficulty bucket (all | subtle | obvious: each bucket is the normal test
// images plus that bucket's defective ones) and the mean over categories:
//   I-AUROC, I-AP, I-F1max on the image score; P-AUROC, P-AP, AUPRO (FPR ≤ 0.3, normalised) on the
//   anomaly maps at the network resolution against nearest-resized masks (> 0);
//   at the bundle's calibrated thresholds: image precision, recall and FPR (inversion mode);
//   ms per image (model time: encode + invert + score) and images per second end to end.
// Writes report.json, report.md and PNG overlays (image | heat map | ground-truth contour in green,
// thresholded map in red) of the worst false negatives and false positives.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace invad::tools {

struct EvalOptions {
  std::string model;  // model folder (latest version) or version folder
  std::string data;   // category folder or multi-category root (MVTec layout)
  std::string out;    // report folder (created)
  // inversion | reconstruction | pixel_gaussian (a simple baseline fitted on the data's
  // <category>/train/good at the model's input resolution; the model gives only the input spec).
  std::string mode = "inversion";
  int steps = 0;  // inversion: K (0 = the bundle's default); reconstruction: points S (0 = 10)
  int noise_index = 0;  // reconstruction: r (0 = 7, clipped to S−1)
  int batch_size = 16;
  int overlays = 5;  // worst false negatives and false positives to draw, each
  std::string device = "cpu";
  int threads = 0;
  bool progress = true;
};

// metric name → value; names as above ("I-AUROC", ..., "precision", "recall", "FPR").
using Metrics = std::map<std::string, double>;

struct EvalReport {
  std::map<std::string, std::map<std::string, Metrics>> categories;  // category → bucket → metrics
  std::map<std::string, Metrics> mean;                               // bucket → mean metrics
  int images = 0;
  double ms_per_image = 0;       // model time
  double images_per_second = 0;  // end to end, decoding included
  int nfe = 0;                   // network evaluations per image
  std::string json_path, markdown_path;
  // One row per test image: path, category, defect, difficulty, label, score and, in inversion
  // mode, the raw components (‖z_T‖², Diff); map_max is the upsampled map's maximum.
  std::string predictions_path;
};

absl::StatusOr<EvalReport> RunEvaluation(const EvalOptions& options);

// The table report.md holds (also printed by invad-eval and make demo).
std::string FormatMarkdown(const EvalReport& report, const EvalOptions& options);

}  // namespace invad::tools
