// File: server/scoring.h
//
// The request path shared by Score, ScoreStream (and the KServe adapter): validate a ScoreRequest,
// decode and preprocess its image with the shared preprocessing library, submit it to the model's
// scheduler with the call's deadline and cancellation flag, and turn the core's result into a
// ScoreResponse (calibrated score, verdict, regions, map). No gRPC types here beyond the messages.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "core/scoring/calibration.h"
#include "core/tensor.h"
#include "invad/v1/inference.pb.h"
#include "preprocess/preprocess.h"
#include "server/model_repository.h"

namespace invad::server {

struct ScoringLimits {
  preprocess::DecodeLimits decode;  // encoded size and pixel count, checked before allocating
};

using ScoreCallback = std::function<void(absl::StatusOr<v1::ScoreResponse>)>;

// A request checked against its model's manifest and turned into model inputs: everything
// StartScore does before it submits work (steps, category, calibration, threshold, map kind,
// decode, region, tiling, preprocessing). Exposed for the request fuzzer.
struct PreparedRequest {
  int steps = 0;
  core::Calibration calibration;
  int original_width = 0, original_height = 0;  // of the scored image (the region if any)
  int offset_x = 0, offset_y = 0;               // of the region in the full image
  int tile_width = 0, tile_height = 0;          // = the scored image without tiling
  std::vector<std::pair<int, int>> origins;     // of each tile in the scored image
  std::vector<core::Tensor> inputs;             // preprocessed, one per tile
  std::vector<preprocess::Pose> poses;          // of each input (identity unless pose-normalised)
};
absl::StatusOr<PreparedRequest> PrepareRequest(const v1::ScoreRequest& request,
                                               const v1::ModelConfig& config,
                                               const preprocess::InputSpec& spec,
                                               const ScoringLimits& limits);

// Starts scoring `request`. A non-OK return means rejected at once (bad input, unknown model,
// queue full, ...) and `done` is never called; otherwise `done` is called exactly once, from a
// scheduler thread. `received` is when the server got the request (for timings.total_us).
absl::Status StartScore(const ModelRepository& repo, const v1::ScoreRequest& request,
                        const ScoringLimits& limits, absl::Time deadline,
                        std::shared_ptr<std::atomic<bool>> cancelled, absl::Time received,
                        ScoreCallback done);

}  // namespace invad::server
