// File: core/model/calibrate.h
//
// Calibrates a pipeline on held-out normal images, for each allowed K (method.md §5.4): encode
// once, invert with every K, score, pool the maps at the network resolution, and derive the robust
// statistics and thresholds (core/scoring/calibration.h). Inference only, so re-calibrating a model
// for a new line condition needs no training.
#pragma once

#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "core/model/inversion.h"
#include "core/scoring/calibration.h"

namespace invad::core {

struct StepsCalibration {
  int steps = 0;
  Calibration calibration;
};

// `images` [N, ch, H, W] are normal validation images, preprocessed; N >= 2. Maps are upsampled to
// H×W before the pixel threshold is taken. Batches of `batch_size` images go through the model.
// Position statistics (ScoreRule::kPositionalMaxNorm) per K: fitted on `reference` [M, ch, H, W]
// when it is not empty (normal images other than `images`: the training images, M >= 2), else
// taken from `positions` (K → statistics: a source bundle's); with neither a K calibrates without
// them, which fails under kPositionalMaxNorm. options.position is ignored.
absl::StatusOr<std::vector<StepsCalibration>> CalibratePipeline(
    Pipeline& pipeline, const Tensor& images, absl::Span<const int> steps,
    const CalibrationOptions& options = {}, int batch_size = 16, const Tensor& reference = {},
    const std::map<int, PositionStats>& positions = {});

}  // namespace invad::core
