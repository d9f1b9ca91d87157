// Builds small, valid model bundles at test time (no committed weights): a native conv encoder and
// a native DiT with reference initialisation, calibrated with placeholder statistics.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "core/scoring/calibration.h"
#include "invad/v1/model_config.pb.h"

namespace invad::testing {

struct TinyBundleOptions {
  int image_size = 32;
  int latent_size = 4;
  int hidden_size = 32;
  int depth = 2;
  int num_heads = 4;
  std::vector<int> allowed_steps{1, 2, 3};
  int default_steps = 3;
  bool zero_init_output = false;  // false: the untrained DiT has a non-trivial output
  uint64_t seed = 1;
  // The calibration's image score; its statistics are placeholders (tiny_bundle.cc).
  core::ScoreRule score_rule = core::ScoreRule::kDiffSqNorm;
};

// The manifest (without `files`) that WriteTinyBundle writes.
v1::ModelConfig TinyManifest(const TinyBundleOptions& o = {});

// Writes the next version of `model_dir`; returns the version folder.
absl::StatusOr<std::string> WriteTinyBundle(const std::string& model_dir,
                                            const TinyBundleOptions& o = {});

}  // namespace invad::testing
